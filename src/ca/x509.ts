// Issuing X.509 v3 certificates with ECDSA (docs/CONTRACT.md §2, §3): the TBSCertificate is built
// with the DER helpers in der.ts and signed with node:crypto.
import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import { bitString, bool, ctx, type Der, extension, name, OID, octets, oid, seq, smallInt, time, uint } from "./der.ts";

/** Signature algorithm Go's x509 picks for an ECDSA signer of this curve. */
export function sigAlgFor(key: KeyObject): { oid: string; hash: string } {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === "secp384r1") return { oid: "1.2.840.10045.4.3.3", hash: "sha384" };
  if (curve === "secp521r1") return { oid: "1.2.840.10045.4.3.4", hash: "sha512" };
  return { oid: OID.ecdsaWithSHA256, hash: "sha256" };
}

/**
 * Reads one DER TLV at `off`: [tag, contentStart, end]. Single-byte tags only (all X.509 needs);
 * throws on a header or content past the end, on the indefinite form and on lengths over 4 bytes.
 */
export function readTLV(b: Uint8Array, off: number): [number, number, number] {
  if (off + 2 > b.length) throw new Error("asn1: truncated");
  const tag = b[off]!;
  let len = b[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("asn1: unsupported length");
    if (start + n > b.length) throw new Error("asn1: truncated");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  if (start + len > b.length) throw new Error("asn1: truncated");
  return [tag, start, start + len];
}

/** SubjectPublicKeyInfo DER of a key (private or public). */
export function spkiDer(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: "spki", format: "der" }));
}

/** RFC 5280 method 1 (what Go uses): SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyId(spki: Uint8Array): Uint8Array {
  const [, s] = readTLV(spki, 0); // SubjectPublicKeyInfo
  const [, , algEnd] = readTLV(spki, s); // AlgorithmIdentifier
  const [, bs, be] = readTLV(spki, algEnd); // BIT STRING
  return new Uint8Array(
    createHash("sha1")
      .update(spki.subarray(bs + 1, be))
      .digest(),
  );
}

/** Random positive serial < 2^128 (Go: rand.Int(rand.Reader, 1<<128)), never zero. */
export function randomSerial(): Uint8Array {
  for (;;) {
    const b = new Uint8Array(randomBytes(16));
    if (b.some((x) => x !== 0)) return b;
  }
}

export function serialHex(serial: Uint8Array): string {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  return Buffer.from(serial.subarray(i)).toString("hex").toUpperCase();
}

export interface CertTemplate {
  serial: Uint8Array;
  issuer: Der; // encoded Name
  subject: Der; // encoded Name
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array; // subject public key
  extensions: Der[];
}

export function issue(t: CertTemplate, signer: KeyObject): Uint8Array {
  const alg = sigAlgFor(signer);
  const algId = seq(oid(alg.oid));
  const tbs = seq(
    ctx(0, smallInt(2)), // v3
    uint(t.serial),
    algId,
    t.issuer,
    seq(time(t.notBefore), time(t.notAfter)),
    t.subject,
    t.spki,
    ctx(3, seq(...t.extensions)),
  );
  const sig = sign(alg.hash, tbs, { key: signer, dsaEncoding: "der" });
  return seq(tbs, algId, bitString(new Uint8Array(sig)));
}

export const ROOT_NAME: Array<[string, string]> = [
  [OID.organization, "clef-sh"],
  [OID.commonName, "clef-proxy"],
];

/** Root CA certificate for `key`, as the reference issues it (§2). */
export function issueRoot(key: KeyObject, now = new Date(), serial = randomSerial()): Uint8Array {
  const spki = spkiDer(key);
  const subj = name(ROOT_NAME);
  return issue(
    {
      serial,
      issuer: subj,
      subject: subj,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3650 * 86_400_000),
      spki,
      extensions: [
        extension(OID.keyUsage, true, bitString(Uint8Array.of(0x06), 1)), // keyCertSign | cRLSign
        extension(OID.basicConstraints, true, seq(bool(true), smallInt(0))), // CA:TRUE, pathlen:0
        extension(OID.subjectKeyId, false, octets(keyId(spki))),
      ],
    },
    key,
  );
}

// src/ca/x509.ts: TLV reading, key identifiers, serials, the signature algorithm, and the root
// certificate as the reference issues it (docs/CONTRACT.md §2), from source, with node:crypto as the
// independent parser.
import { describe, expect, test } from "bun:test";
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto";
import { name, OID, seq } from "../../../src/ca/der.ts";
import {
  issue,
  issueRoot,
  keyId,
  randomSerial,
  readTLV,
  ROOT_NAME,
  serialHex,
  sigAlgFor,
  spkiDer,
} from "../../../src/ca/x509.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const p256 = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;

/** The TBSCertificate's fields: [tag, DER of the whole field]. */
function tbsFields(cert: Uint8Array): Array<[number, Uint8Array]> {
  const [, cs] = readTLV(cert, 0);
  const [, ts, te] = readTLV(cert, cs);
  const out: Array<[number, Uint8Array]> = [];
  for (let off = ts; off < te; ) {
    const [tag, , end] = readTLV(cert, off);
    out.push([tag, cert.subarray(off, end)]);
    off = end;
  }
  return out;
}

describe("readTLV", () => {
  test("short and long lengths: [tag, contentStart, end]", () => {
    expect(readTLV(Uint8Array.of(0x04, 0x02, 1, 2), 0)).toEqual([0x04, 2, 4]);
    const long = new Uint8Array(3 + 200);
    long.set([0x30, 0x81, 200]);
    expect(readTLV(long, 0)).toEqual([0x30, 3, 203]);
    expect(readTLV(Uint8Array.of(0xff, 0x30, 0x00), 1)).toEqual([0x30, 3, 3]);
  });

  test("a length past the end throws", () => {
    expect(() => readTLV(Uint8Array.of(0x04, 0x05, 1), 0)).toThrow("asn1: truncated");
    expect(() => readTLV(Uint8Array.of(0x30, 0x82, 0x01), 0)).toThrow("asn1: truncated");
    expect(() => readTLV(Uint8Array.of(0x30), 0)).toThrow("asn1: truncated");
    expect(() => readTLV(Uint8Array.of(0x30, 0x00), 2)).toThrow("asn1: truncated");
  });

  test("the indefinite form and lengths over 4 bytes are refused (not DER)", () => {
    expect(() => readTLV(Uint8Array.of(0x30, 0x80, 0, 0), 0)).toThrow("asn1: unsupported length");
    expect(() => readTLV(Uint8Array.of(0x30, 0x85, 0, 0, 0, 0, 1, 0), 0)).toThrow("asn1: unsupported length");
  });
});

describe("key identifiers", () => {
  test("keyId = SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 method 1, what Go uses)", () => {
    const k = p256();
    const jwk = k.export({ format: "jwk" });
    const point = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
    expect(hex(keyId(spkiDer(k)))).toBe(createHash("sha1").update(point).digest("hex"));
  });

  test("spkiDer: the same SPKI from the private key and from its public half", () => {
    const k = p256();
    const pub = new X509Certificate(Buffer.from(issueRoot(k))).publicKey;
    expect(hex(spkiDer(k))).toBe(hex(spkiDer(pub)));
  });
});

describe("serials", () => {
  test("randomSerial: 16 random bytes, never all zero; serialHex: upper-case, no leading zero bytes", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = randomSerial();
      expect(s.length).toBe(16);
      expect(s.some((b) => b !== 0)).toBe(true);
      seen.add(hex(s));
    }
    expect(seen.size).toBe(50);
    expect(serialHex(Uint8Array.of(0, 0, 0x0a, 0xbc))).toBe("0ABC");
    expect(serialHex(Uint8Array.of(0, 0))).toBe("00");
  });
});

describe("signature algorithm (Go's choice for an ECDSA signer)", () => {
  test("P-256 → ecdsa-with-SHA256, P-384 → SHA384, P-521 → SHA512", () => {
    expect(sigAlgFor(p256())).toEqual({ oid: "1.2.840.10045.4.3.2", hash: "sha256" });
    const k384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    expect(sigAlgFor(k384)).toEqual({ oid: "1.2.840.10045.4.3.3", hash: "sha384" });
    const k521 = generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey;
    expect(sigAlgFor(k521)).toEqual({ oid: "1.2.840.10045.4.3.4", hash: "sha512" });
  });

  test("issue(): v3, the algorithm in TBS and outer, a signature node:crypto verifies (P-384 signer too)", () => {
    const k = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    const subj = name([[OID.commonName, "t"]]);
    const der = issue(
      {
        serial: Uint8Array.of(7),
        issuer: subj,
        subject: subj,
        notBefore: new Date("2026-01-01T00:00:00Z"),
        notAfter: new Date("2026-01-02T00:00:00Z"),
        spki: spkiDer(k),
        extensions: [],
      },
      k,
    );
    const f = tbsFields(der);
    expect(hex(f[0]![1])).toBe("a003020102"); // [0] EXPLICIT version v3
    expect(hex(f[1]![1])).toBe("020107");
    expect(hex(f[2]![1])).toBe("300a06082a8648ce3d040303"); // ecdsa-with-SHA384, no parameters
    expect(hex(f[7]![1])).toBe("a3023000"); // empty extensions
    const x = new X509Certificate(Buffer.from(der));
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.validFrom).toBe("Jan  1 00:00:00 2026 GMT");
  });
});

describe("root certificate (§2)", () => {
  const key = p256();
  const now = new Date("2026-11-30T12:00:00.500Z");
  const serial = Uint8Array.of(0x9f, 0x01, 0x02, 0x03);
  const der = issueRoot(key, now, serial);
  const x = new X509Certificate(Buffer.from(der));

  test("subject = issuer = O=clef-sh, CN=clef-proxy; CA; self-signed; the given serial", () => {
    expect(x.subject).toBe("O=clef-sh\nCN=clef-proxy");
    expect(x.issuer).toBe(x.subject);
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.serialNumber).toBe("9F010203");
    expect(hex(tbsFields(der)[1]![1])).toBe("0205009f010203"); // positive: 0x00 pad
    expect(hex(tbsFields(der)[5]![1])).toBe(hex(name(ROOT_NAME)));
  });

  test("validity: now − 1 min to now + 3650 days, whole seconds, UTCTime", () => {
    expect(new Date(x.validFrom).toISOString()).toBe("2026-11-30T11:59:00.000Z");
    expect(new Date(x.validTo).toISOString()).toBe("2036-11-27T12:00:00.000Z");
    expect(hex(tbsFields(der)[4]![1]).slice(0, 8)).toBe("301e170d"); // two UTCTimes
  });

  test("extensions, exactly: KU critical {certSign, cRLSign}, BC critical CA:TRUE pathlen 0, SKI; no AKI", () => {
    const ski = hex(keyId(spkiDer(key)));
    const exts = tbsFields(der)[7]![1];
    expect(hex(exts)).toBe(
      "a3453043" +
        "300e0603551d0f0101ff040403020106" +
        "30120603551d130101ff040830060101ff020100" +
        `301d0603551d0e04160414${ski}`,
    );
  });

  test("the same inputs give the same TBSCertificate (only the ECDSA signature is random)", () => {
    const again = issueRoot(key, now, serial);
    const tbs = (d: Uint8Array) => hex(seq(...tbsFields(d).map(([, b]) => b)));
    expect(tbs(again)).toBe(tbs(der));
    expect(hex(again)).not.toBe(hex(der));
  });
});

// Leaf certificates for MITM (docs/CONTRACT.md §3) and their LRU cache.
//
// Leaf keys: a fresh ECDSA P-256 key pair for every leaf, as the reference does; generating one
// costs tens of microseconds in BoringSSL, so a shared per-minter key buys nothing measurable (see
// docs/DESIGN.md "Leaf keys"). `sharedKey: true` reuses one key per minter.
import { generateKeyPairSync, type KeyObject, X509Certificate } from "node:crypto";
import { type Der, extension, ipBytes, name, OID, oid, seq, tlv, toPem } from "./der.ts";
import type { CA, Leaf, LeafMinter } from "./types.ts";
import { issue, keyId, randomSerial, readTLV, serialHex, spkiDer } from "./x509.ts";

export interface MinterOptions {
  /** LRU capacity in names (the reference: 1024). */
  cap?: number;
  /** A cached leaf with less than this left before NotAfter is re-minted (default 1 h). */
  refreshBeforeMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /** One key pair per minter, reused by every leaf (default: a fresh key per leaf). */
  sharedKey?: boolean;
}

const LEAF_LIFETIME_MS = 24 * 3600_000;
const BACKDATE_MS = 60_000;

/** The CA certificate's raw subject Name and its SubjectKeyIdentifier (or a computed one). */
function caIdentity(ca: CA): { subject: Uint8Array; ski: Uint8Array } {
  const c = ca.certDer;
  const [, certStart] = readTLV(c, 0);
  const [, tbsStart, tbsEnd] = readTLV(c, certStart);
  let off = tbsStart;
  const fields: Array<[number, number, number]> = [];
  while (off < tbsEnd) {
    const f = readTLV(c, off);
    fields.push([f[0], off, f[2]]);
    off = f[2];
  }
  const i = fields[0]![0] === 0xa0 ? 1 : 0; // optional [0] version
  const subj = fields[i + 4]!;
  const subject = c.subarray(subj[1], subj[2]);
  const x = new X509Certificate(Buffer.from(c));
  let ski: Uint8Array | undefined;
  // Find the SKI extension value: OID 2.5.29.14 = 06 03 55 1d 0e, then OCTET STRING { OCTET STRING keyid }.
  const extField = fields.find((f) => f[0] === 0xa3);
  if (extField) {
    const needle = [0x06, 0x03, 0x55, 0x1d, 0x0e];
    for (let p = extField[1]; p < extField[2] - needle.length; p++) {
      if (needle.every((v, k) => c[p + k] === v)) {
        let q = p + needle.length;
        if (c[q] === 0x01) q += 3; // critical flag
        const [, os, oe] = readTLV(c, q);
        const [, ks, ke] = readTLV(c, os);
        if (oe >= ke) ski = c.slice(ks, ke);
        break;
      }
    }
  }
  return { subject, ski: ski ?? keyId(spkiDer(x.publicKey)) };
}

function sanFor(host: string): Der {
  const ip = ipBytes(host);
  if (ip) return seq(tlv(0x87, ip));
  return seq(tlv(0x82, new TextEncoder().encode(host)));
}

/** Lower-cases, strips IPv6 brackets; rejects what cannot be a certificate name. */
export function canonicalLeafName(raw: string): string {
  let n = raw.toLowerCase();
  if (n.startsWith("[") && n.endsWith("]")) n = n.slice(1, -1);
  if (n === "" || n.length > 253 || !/^[\x21-\x7e]+$/.test(n))
    throw new Error(`leaf: invalid name ${JSON.stringify(raw)}`);
  return n;
}

export function createLeafMinter(ca: CA, opts: MinterOptions = {}): LeafMinter & { size(): number } {
  const cap = opts.cap ?? 1024;
  const refreshBefore = opts.refreshBeforeMs ?? 3600_000;
  const now = opts.now ?? Date.now;
  const { subject: issuer, ski } = caIdentity(ca);
  const aki = extension(OID.authorityKeyId, false, seq(tlv(0x80, ski)));
  const ku = extension(OID.keyUsage, true, Uint8Array.of(0x03, 0x02, 0x05, 0xa0)); // digitalSignature | keyEncipherment
  const eku = extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth)));
  const bc = extension(OID.basicConstraints, true, seq()); // CA:FALSE (DEFAULT, so empty)

  let shared: { key: KeyObject; spki: Uint8Array; pem: string } | undefined;
  const keyPair = () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    return {
      key: privateKey,
      spki: spkiDer(privateKey),
      pem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    };
  };

  function mint(host: string): Leaf {
    const k = opts.sharedKey ? (shared ??= keyPair()) : keyPair();
    const t = now();
    const serial = randomSerial();
    const notAfter = new Date(t + LEAF_LIFETIME_MS);
    const der = issue(
      {
        serial,
        issuer,
        subject: name([[OID.commonName, host]]),
        notBefore: new Date(t - BACKDATE_MS),
        notAfter,
        spki: k.spki,
        extensions: [ku, eku, bc, aki, extension(OID.subjectAltName, false, sanFor(host))],
      },
      ca.key,
    );
    // NotAfter as encoded (whole seconds).
    return {
      certPem: toPem("CERTIFICATE", der),
      keyPem: k.pem,
      serialHex: serialHex(serial),
      notAfter: new Date(Math.floor(notAfter.getTime() / 1000) * 1000),
    };
  }

  interface Entry {
    promise: Promise<Leaf>;
    leaf?: Leaf;
  }
  const lru = new Map<string, Entry>(); // insertion order = recency (oldest first)

  return {
    size: () => lru.size,
    leafFor(raw: string): Promise<Leaf> {
      let host: string;
      try {
        host = canonicalLeafName(raw);
      } catch (e) {
        return Promise.reject(e);
      }
      const hit = lru.get(host);
      if (hit) {
        lru.delete(host);
        if (!hit.leaf || hit.leaf.notAfter.getTime() - now() > refreshBefore) {
          lru.set(host, hit); // most recent
          return hit.promise;
        }
      }
      let entry: Entry;
      try {
        const leaf = mint(host);
        entry = { promise: Promise.resolve(leaf), leaf };
      } catch (e) {
        return Promise.reject(e);
      }
      lru.set(host, entry);
      while (lru.size > cap) lru.delete(lru.keys().next().value!);
      return entry.promise;
    },
  };
}

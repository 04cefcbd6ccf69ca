// Leaf certificates for MITM (docs/CONTRACT.md §3) and their LRU cache.
//
// Leaf keys: a fresh ECDSA P-256 key pair for every leaf, as the reference does; generating one
// costs tens of microseconds in BoringSSL, so a shared per-minter key buys nothing measurable (see
// docs/DESIGN.md "Leaf keys"). `sharedKey: true` reuses one key per minter.
import { generateKeyPairSync } from "node:crypto";
import { bitString, type Der, extension, ipBytes, name, OID, oid, seq, tlv, toPem } from "./der.ts";
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

/**
 * The CA certificate's raw subject Name (the leaves' issuer, byte for byte, as Go's parent.RawSubject)
 * and its SubjectKeyIdentifier, or one computed from its key (RFC 5280 method 1) when it has none.
 */
export function caIdentity(certDer: Uint8Array): { subject: Uint8Array; ski: Uint8Array } {
  const c = certDer;
  const [, certStart] = readTLV(c, 0); // Certificate
  const [, tbsStart, tbsEnd] = readTLV(c, certStart); // TBSCertificate
  const fields: Array<[tag: number, start: number, contentStart: number, end: number]> = [];
  for (let off = tbsStart; off < tbsEnd; ) {
    const [tag, cs, end] = readTLV(c, off);
    fields.push([tag, off, cs, end]);
    off = end;
  }
  const i = fields[0]?.[0] === 0xa0 ? 1 : 0; // optional [0] version
  // serial, signature, issuer, validity, subject, subjectPublicKeyInfo
  const subj = fields[i + 4];
  const spki = fields[i + 5];
  if (!subj || subj[0] !== 0x30 || !spki || spki[0] !== 0x30) throw new Error("ca: malformed TBSCertificate");
  const subject = c.subarray(subj[1], subj[3]);
  let ski: Uint8Array | undefined;
  const exts = fields.find((f) => f[0] === 0xa3); // [3] EXPLICIT Extensions
  if (exts) {
    const [, ls, le] = readTLV(c, exts[2]); // SEQUENCE OF Extension
    for (let off = ls; off < le && !ski; ) {
      const [, es, ee] = readTLV(c, off); // Extension
      off = ee;
      const [idTag, is, ie] = readTLV(c, es); // extnID
      if (idTag !== 0x06 || !sameBytes(c.subarray(is, ie), SKI_OID_BODY)) continue;
      let q = ie;
      if (c[q] === 0x01) q = readTLV(c, q)[2]; // critical BOOLEAN
      const [vTag, vs] = readTLV(c, q); // extnValue OCTET STRING
      const [kTag, ks, ke] = readTLV(c, vs); // KeyIdentifier OCTET STRING
      if (vTag === 0x04 && kTag === 0x04 && ke > ks) ski = c.slice(ks, ke);
    }
  }
  return { subject, ski: ski ?? keyId(c.subarray(spki[1], spki[3])) };
}

const SKI_OID_BODY = Uint8Array.of(0x55, 0x1d, 0x0e); // 2.5.29.14

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, k) => v === b[k]);
}

function sanFor(host: string): Der {
  const ip = ipBytes(host);
  if (ip) return seq(tlv(0x87, ip)); // [7] iPAddress
  return seq(tlv(0x82, new TextEncoder().encode(host))); // [2] dNSName (IA5String)
}

/** Lower-cases, strips IPv6 brackets; rejects what cannot be a certificate name. */
export function canonicalLeafName(raw: string): string {
  let n = raw.toLowerCase();
  if (n.startsWith("[") && n.endsWith("]")) n = n.slice(1, -1);
  if (n === "" || n.length > 253 || !/^[\x21-\x7e]+$/.test(n))
    throw new Error(`leaf: invalid name ${JSON.stringify(raw)}`);
  return n;
}

/** What one leaf certificate is made of, besides the CA (the minter draws `spki` and `serial` fresh). */
export interface LeafParams {
  /** A canonical name (canonicalLeafName): DNS name or IP literal. */
  host: string;
  /** The leaf's SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** Positive serial, big-endian magnitude. */
  serial: Uint8Array;
  /** Mint time (ms); NotBefore = now − 1 min, NotAfter = now + 24 h, whole seconds. */
  now: number;
}

/**
 * The leaf signer of `ca` (docs/CONTRACT.md §3): certificate DER for the given parameters. The parts
 * that are the same for every leaf (issuer, AKI, KU, EKU, BC) are encoded once, here.
 */
export function leafIssuer(ca: CA): (p: LeafParams) => Uint8Array {
  const { subject: issuer, ski } = caIdentity(ca.certDer);
  const ku = extension(OID.keyUsage, true, bitString(Uint8Array.of(0xa0), 5)); // digitalSignature | keyEncipherment
  const eku = extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth)));
  const bc = extension(OID.basicConstraints, true, seq()); // CA:FALSE (DEFAULT, so empty)
  const aki = extension(OID.authorityKeyId, false, seq(tlv(0x80, ski))); // [0] keyIdentifier
  return (p) =>
    issue(
      {
        serial: p.serial,
        issuer,
        subject: name([[OID.commonName, p.host]]),
        notBefore: new Date(p.now - BACKDATE_MS),
        notAfter: new Date(p.now + LEAF_LIFETIME_MS),
        spki: p.spki,
        // The reference's order (§3): KU, EKU, BC, AKI, SAN; no SKI on leaves.
        extensions: [ku, eku, bc, aki, extension(OID.subjectAltName, false, sanFor(p.host))],
      },
      ca.key,
    );
}

/** The minter as built by createLeafMinter; `size()` is the current cache size (also in `stats()`). */
export type Minter = LeafMinter & { size(): number };

export function createLeafMinter(ca: CA, opts: MinterOptions = {}): Minter {
  const cap = opts.cap ?? 1024;
  const refreshBefore = opts.refreshBeforeMs ?? 3600_000;
  const now = opts.now ?? Date.now;
  const sign = leafIssuer(ca);
  let mints = 0;

  let shared: { spki: Uint8Array; pem: string } | undefined;
  const keyPair = () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    return { spki: spkiDer(privateKey), pem: privateKey.export({ type: "pkcs8", format: "pem" }) as string };
  };

  function mint(host: string): Leaf {
    const k = opts.sharedKey ? (shared ??= keyPair()) : keyPair();
    const t = now();
    const serial = randomSerial();
    const der = sign({ host, spki: k.spki, serial, now: t });
    mints++;
    return {
      certPem: toPem("CERTIFICATE", der),
      keyPem: k.pem,
      serialHex: serialHex(serial),
      notAfter: new Date(Math.floor((t + LEAF_LIFETIME_MS) / 1000) * 1000), // as encoded (whole seconds)
    };
  }

  interface Entry {
    promise: Promise<Leaf>;
    leaf?: Leaf;
  }
  const lru = new Map<string, Entry>(); // insertion order = recency (oldest first)

  return {
    size: () => lru.size,
    stats: () => ({ mints, size: lru.size }),
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

// Minimal DER encoder for the two certificate shapes we issue (root CA and leaf), plus the X.509
// pieces around them; the signature comes from node:crypto (ECDSA-Sig-Value, DER). Measured against
// node-forge's asn1 module and @peculiar/x509 (bench/x509.ts, docs/DESIGN.md "Leaf minting and
// X.509"): the same bytes, minted faster, in a smaller binary, with no dependency.
import { isIP } from "node:net";

export type Der = Uint8Array;

function concat(parts: Der[]): Der {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function lengthBytes(n: number): Der {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

export function tlv(tag: number, ...content: Der[]): Der {
  const body = concat(content);
  return concat([Uint8Array.of(tag), lengthBytes(body.length), body]);
}

export const seq = (...c: Der[]): Der => tlv(0x30, ...c);
export const set = (...c: Der[]): Der => tlv(0x31, ...c);
export const octets = (b: Der): Der => tlv(0x04, b);
export const bool = (v: boolean): Der => tlv(0x01, Uint8Array.of(v ? 0xff : 0));
export const ctx = (n: number, ...c: Der[]): Der => tlv(0xa0 | n, ...c); // [n] EXPLICIT, constructed
export const bitString = (b: Der, unused = 0): Der => tlv(0x03, Uint8Array.of(unused), b);

/** INTEGER from unsigned big-endian magnitude (minimal, with a 0x00 pad when the top bit is set). */
export function uint(bytes: Der): Der {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let b = bytes.subarray(i);
  if (b.length === 0) b = Uint8Array.of(0);
  if (b[0]! & 0x80) b = concat([Uint8Array.of(0), b]);
  return tlv(0x02, b);
}
export const smallInt = (n: number): Der => uint(Uint8Array.of(n));

export function oid(dotted: string): Der {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      chunk.unshift(0x80 | (v & 0x7f));
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

const enc = new TextEncoder();

/**
 * Go's asn1 marshalling picks PrintableString when the text allows it, else UTF8String. '*' and '&'
 * are not in X.680's PrintableString set; Go tolerates '*' when parsing but not when marshalling,
 * so a name with either is a UTF8String (a CN of "*.example.com" too).
 */
export function dirString(s: string): Der {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
  return tlv(printable ? 0x13 : 0x0c, enc.encode(s));
}

/** UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), whole seconds. */
export function time(d: Date): Der {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, enc.encode(p(y % 100) + rest));
  return tlv(0x18, enc.encode(p(y, 4) + rest));
}

export const OID = {
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  organization: "2.5.4.10",
  commonName: "2.5.4.3",
  keyUsage: "2.5.29.15",
  basicConstraints: "2.5.29.19",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

export function extension(id: string, critical: boolean, value: Der): Der {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

/** Name as a sequence of single-attribute RDNs, in the given order (Go: O before CN). */
export function name(attrs: Array<[string, string]>): Der {
  return seq(...attrs.map(([t, v]) => set(seq(oid(t), dirString(v)))));
}

/**
 * The bytes of an IPv4 (4) or IPv6 (16) literal; null when not an IP literal as Go's net.ParseIP
 * sees it (node's isIP also accepts a zone, "fe80::1%eth0", which Go refuses: such a name is a DNS name).
 */
export function ipBytes(s: string): Der | null {
  if (s.includes("%")) return null;
  const kind = isIP(s);
  if (kind === 4) return Uint8Array.from(s.split(".").map(Number));
  if (kind !== 6) return null;
  let text = s;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail = text
      .slice(lastColon + 1)
      .split(".")
      .map(Number);
    text = text.slice(0, lastColon + 1) + "0:0"; // placeholder groups, replaced below
  }
  const [head, rest] = text.includes("::") ? (text.split("::") as [string, string]) : [text, undefined];
  const h = head ? head.split(":") : [];
  const r = rest !== undefined && rest !== "" ? rest.split(":") : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill("0"), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

export function toPem(type: string, der: Der): string {
  const b64 = Buffer.from(der).toString("base64");
  let out = `-----BEGIN ${type}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + "\n";
  return out + `-----END ${type}-----\n`;
}

/**
 * Go's pem.Decode: the first well-formed PEM block anywhere in the data (text before it and other
 * blocks after it are ignored). Returns its type and decoded bytes, or null.
 */
export function pemDecode(text: string): { type: string; bytes: Uint8Array } | null {
  const re = /-----BEGIN ([^\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let body = m[2]!;
    // Optional RFC 1421 headers ("Key: value" lines followed by a blank line).
    const blank = body.search(/\r?\n\r?\n/);
    if (/^[^\n]*:/.test(body) && blank >= 0) body = body.slice(blank).trimStart();
    const clean = body.replace(/[\r\n\t ]/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) continue;
    return { type: m[1]!, bytes: new Uint8Array(Buffer.from(clean, "base64")) };
  }
  return null;
}

// node-forge's asn1 module builds the certificate structure; node:crypto generates keys and signs
// (forge has no ECDSA). Only lib/asn1.js is imported (it pulls forge.js, util.js and oids.js), not
// the whole library, so the bundle carries as little of forge as this use can.
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { isIP } from "node:net";
import asn1 from "node-forge/lib/asn1.js";
import type { CA } from "../../src/ca/index.ts";
import { caIdentity } from "../../src/ca/leaf.ts";
import { keyId, randomSerial, serialHex, spkiDer } from "../../src/ca/x509.ts";
import { LEAF_LIFETIME_MS, leafNotAfter, type MintedLeaf, type Variant } from "./variant.ts";

type Asn1 = ReturnType<typeof asn1.create>;
const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;

const bin = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const der = (a: Asn1) => bytes(asn1.toDer(a).getBytes());

const seq = (...v: Asn1[]) => asn1.create(U, T.SEQUENCE, true, v);
const oid = (o: string) => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
const bool = () => asn1.create(U, T.BOOLEAN, false, "\xff");
const octets = (b: string) => asn1.create(U, T.OCTETSTRING, false, b);
const bits = (b: string, unused = 0) => asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + b);

function uint(b: Uint8Array): Asn1 {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const s = bin(b.subarray(i));
  return asn1.create(U, T.INTEGER, false, s.charCodeAt(0) & 0x80 ? "\x00" + s : s);
}

function time(d: Date): Asn1 {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function dirString(s: string): Asn1 {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s); // Go's marshalling rule (no '*', no '&')
  return asn1.create(U, printable ? T.PRINTABLESTRING : T.UTF8, false, printable ? s : bin(Buffer.from(s)));
}

function name(attrs: Array<[string, string]>): Asn1 {
  return seq(...attrs.map(([t, v]) => asn1.create(U, T.SET, true, [seq(oid(t), dirString(v))])));
}

function ext(id: string, critical: boolean, value: Asn1): Asn1 {
  return critical
    ? seq(oid(id), bool(), octets(asn1.toDer(value).getBytes()))
    : seq(oid(id), octets(asn1.toDer(value).getBytes()));
}

function ipBytes(host: string): string | null {
  const kind = isIP(host);
  if (kind === 4) return String.fromCharCode(...host.split(".").map(Number));
  if (kind === 6) {
    // forge has no IP parser: let the URL parser expand the literal (it prints 8 hex groups).
    const full = new URL(`http://[${host}]/`).hostname.slice(1, -1);
    const [head, tail] = full.split("::") as [string, string | undefined];
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
    return groups.map((g) => String.fromCharCode(parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff)).join("");
  }
  return null;
}

const ALG = "1.2.840.10045.4.3.2"; // ecdsa-with-SHA256

function issue(
  t: {
    serial: Uint8Array;
    issuer: Asn1;
    subject: Asn1;
    notBefore: Date;
    notAfter: Date;
    spki: Uint8Array;
    exts: Asn1[];
  },
  signer: KeyObject,
): Uint8Array {
  const tbs = seq(
    asn1.create(CTX, 0, true, [asn1.create(U, T.INTEGER, false, "\x02")]),
    uint(t.serial),
    seq(oid(ALG)),
    t.issuer,
    seq(time(t.notBefore), time(t.notAfter)),
    t.subject,
    asn1.fromDer(bin(t.spki)),
    asn1.create(CTX, 3, true, [seq(...t.exts)]),
  );
  const sig = sign("sha256", der(tbs), { key: signer, dsaEncoding: "der" });
  return der(seq(tbs, seq(oid(ALG)), bits(bin(sig))));
}

interface CaCtx {
  issuerDer: string;
  fixed: Asn1[]; // KU, EKU, BC, AKI
}
const ctxs = new WeakMap<CA, CaCtx>();
function caCtx(ca: CA): CaCtx {
  let c = ctxs.get(ca);
  if (!c) {
    const id = caIdentity(ca.certDer);
    c = {
      issuerDer: bin(id.subject),
      fixed: [
        ext("2.5.29.15", true, bits("\xa0", 5)),
        ext("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))),
        ext("2.5.29.19", true, seq()),
        ext("2.5.29.35", false, seq(asn1.create(CTX, 0, false, bin(id.ski)))),
      ],
    };
    ctxs.set(ca, c);
  }
  return c;
}

function leafDer(ca: CA, host: string, spki: Uint8Array, serial: Uint8Array, now: number): Uint8Array {
  const c = caCtx(ca);
  const ip = ipBytes(host);
  const san = seq(ip !== null ? asn1.create(CTX, 7, false, ip) : asn1.create(CTX, 2, false, host));
  return issue(
    {
      serial,
      issuer: asn1.fromDer(c.issuerDer), // a fresh tree each time: toDer may cache into the nodes
      subject: name([["2.5.4.3", host]]),
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + LEAF_LIFETIME_MS),
      spki,
      exts: [...c.fixed, ext("2.5.29.17", false, san)],
    },
    ca.key,
  );
}

const pem = (type: string, b: Uint8Array) =>
  `-----BEGIN ${type}-----\n${Buffer.from(b)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n?$/, "\n")}-----END ${type}-----\n`;

export const variant: Variant = {
  name: "node-forge asn1 + node:crypto",
  mintLeaf(ca, host, now): MintedLeaf {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const serial = randomSerial();
    const certDer = leafDer(ca, host, spkiDer(privateKey), serial, now);
    return {
      certDer,
      certPem: pem("CERTIFICATE", certDer),
      keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      serialHex: serialHex(serial),
      notAfter: leafNotAfter(now),
    };
  },
  async leafWith(ca, p) {
    return leafDer(ca, p.host, p.spki, p.serial, p.now);
  },
  async issueRoot(key, now, serial) {
    const spki = spkiDer(key);
    const subj = () =>
      name([
        ["2.5.4.10", "clef-sh"],
        ["2.5.4.3", "clef-proxy"],
      ]);
    return issue(
      {
        serial,
        issuer: subj(),
        subject: subj(),
        notBefore: new Date(now.getTime() - 60_000),
        notAfter: new Date(now.getTime() + 3650 * 86_400_000),
        spki,
        exts: [
          ext("2.5.29.15", true, bits("\x06", 1)),
          ext("2.5.29.19", true, seq(bool(), asn1.create(U, T.INTEGER, false, "\x00"))),
          ext("2.5.29.14", false, octets(bin(keyId(spki)))),
        ],
      },
      key,
    );
  },
};

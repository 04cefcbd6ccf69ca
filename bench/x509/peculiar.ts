// @peculiar/x509 on WebCrypto: keys generated, certificates built and signed by the library through
// crypto.subtle (asynchronous). The CA key is imported into WebCrypto once per CA. tsyringe (the
// library's dependency container) needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import type { KeyObject } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import type { CA } from "../../src/ca/index.ts";
import { randomSerial, serialHex, spkiDer } from "../../src/ca/x509.ts";
import { LEAF_LIFETIME_MS, leafNotAfter, type MintedLeaf, type Variant } from "./variant.ts";

const subtle = globalThis.crypto.subtle;
x509.cryptoProvider.set(globalThis.crypto);
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIG = { name: "ECDSA", hash: "SHA-256" } as const;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

async function importSigner(key: KeyObject): Promise<CryptoKey> {
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  return subtle.importKey("pkcs8", pkcs8, EC, false, ["sign"]);
}

interface CaCtx {
  signingKey: CryptoKey;
  issuer: x509.Name;
  fixed: x509.Extension[]; // KU, EKU, BC, AKI
}
const ctxs = new WeakMap<CA, Promise<CaCtx>>();
function caCtx(ca: CA): Promise<CaCtx> {
  let c = ctxs.get(ca);
  if (!c) {
    c = (async () => {
      const cert = new x509.X509Certificate(ca.certDer);
      const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
      if (!ski) throw new Error("CA has no SKI");
      return {
        signingKey: await importSigner(ca.key),
        issuer: new x509.Name(cert.subjectName.toArrayBuffer()),
        fixed: [
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.AuthorityKeyIdentifierExtension(ski.keyId, false),
        ],
      };
    })();
    ctxs.set(ca, c);
  }
  return c;
}

async function leafCert(
  ca: CA,
  host: string,
  publicKey: CryptoKey | Uint8Array,
  serial: Uint8Array,
  now: number,
): Promise<x509.X509Certificate> {
  const c = await caCtx(ca);
  return x509.X509CertificateGenerator.create({
    serialNumber: hex(serial),
    issuer: c.issuer,
    // The JSON form, not "CN=" + host: the string form parses ',', '+' and '=' inside the name.
    subject: new x509.Name([{ CN: [host] }]),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + LEAF_LIFETIME_MS),
    publicKey,
    signingKey: c.signingKey,
    signingAlgorithm: SIG,
    extensions: [
      ...c.fixed,
      new x509.SubjectAlternativeNameExtension([{ type: isIP(host) ? "ip" : "dns", value: host }], false),
    ],
  });
}

export const variant: Variant = {
  name: "@peculiar/x509 on WebCrypto",
  async mintLeaf(ca, host, now): Promise<MintedLeaf> {
    const keys = (await subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
    const serial = randomSerial();
    const cert = await leafCert(ca, host, keys.publicKey, serial, now);
    const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
    return {
      certDer: new Uint8Array(cert.rawData),
      certPem: cert.toString("pem") + "\n",
      keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") + "\n",
      serialHex: serialHex(serial),
      notAfter: leafNotAfter(now),
    };
  },
  async leafWith(ca, p) {
    return new Uint8Array((await leafCert(ca, p.host, p.spki, p.serial, p.now)).rawData);
  },
  async issueRoot(key, now, serial) {
    const spki = spkiDer(key);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: hex(serial),
      name: new x509.Name([{ O: ["clef-sh"] }, { CN: ["clef-proxy"] }]),
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 3650 * 86_400_000),
      keys: {
        privateKey: await importSigner(key),
        publicKey: await subtle.importKey("spki", new Uint8Array(spki), EC, true, ["verify"]),
      },
      signingAlgorithm: SIG,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.BasicConstraintsExtension(true, 0, true),
        await x509.SubjectKeyIdentifierExtension.create(spki),
      ],
    });
    return new Uint8Array(cert.rawData);
  },
};

// Today's code (src/ca/der.ts, x509.ts, leaf.ts): hand-written DER, signed with node:crypto.
import { generateKeyPairSync } from "node:crypto";
import type { CA } from "../../src/ca/index.ts";
import { toPem } from "../../src/ca/der.ts";
import { leafIssuer } from "../../src/ca/leaf.ts";
import { issueRoot, randomSerial, serialHex, spkiDer } from "../../src/ca/x509.ts";
import { leafNotAfter, type MintedLeaf, type Variant } from "./variant.ts";

const issuers = new WeakMap<CA, ReturnType<typeof leafIssuer>>();
const issuerOf = (ca: CA) => issuers.get(ca) ?? issuers.set(ca, leafIssuer(ca)).get(ca)!;

export const variant: Variant = {
  name: "hand-written DER + node:crypto",
  mintLeaf(ca, host, now): MintedLeaf {
    // The minter's mint() step for step (src/ca/leaf.ts), without the cache.
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const serial = randomSerial();
    const certDer = issuerOf(ca)({ host, spki: spkiDer(privateKey), serial, now });
    return {
      certDer,
      certPem: toPem("CERTIFICATE", certDer),
      keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      serialHex: serialHex(serial),
      notAfter: leafNotAfter(now),
    };
  },
  async leafWith(ca, p) {
    return issuerOf(ca)(p);
  },
  async issueRoot(key, now, serial) {
    return issueRoot(key, now, serial);
  },
};

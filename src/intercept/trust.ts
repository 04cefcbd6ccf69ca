// Which certificates upstream TLS trusts (docs/CONTRACT.md §18.2, §18.15): the runtime's bundled
// roots plus PEM bundles named by SSL_CERT_FILE and NODE_EXTRA_CA_CERTS, read once at startup.
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { warn } from "../log/slog.ts";

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function loadTrust(env: Record<string, string | undefined>): string[] {
  const certs = [...rootCertificates];
  for (const name of ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"]) {
    const file = env[name];
    if (!file) continue;
    try {
      const found = readFileSync(file, "utf8").match(PEM) ?? [];
      certs.push(...found);
      if (found.length === 0) warn("no certificates found in trust file", { env: name, file });
    } catch (e) {
      warn("cannot read trust file", { env: name, file, err: (e as Error).message });
    }
  }
  return certs;
}

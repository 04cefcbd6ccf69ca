// Which certificates upstream TLS trusts (docs/CONTRACT.md §18.2, §18.15): Bun's default store,
// which fetch and node:tls use whenever no `ca` option is given — the bundled Mozilla roots, the
// system store (OpenSSL's default paths: $SSL_CERT_FILE else /etc/ssl/cert.pem, $SSL_CERT_DIR else
// /etc/ssl/certs) and $NODE_EXTRA_CA_CERTS, all read by the runtime at start-up. We pass no `ca`:
// handing the same ≈150 roots to every fetch made each request hash a ≈200 KB TLS configuration
// (fetch was the top CPU entry in bench/ profiles). What is left here is saying so on stderr when
// a file named by those variables cannot be used.
import { readFileSync } from "node:fs";
import { warn } from "../log/slog.ts";

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function checkTrustEnv(env: Record<string, string | undefined>): void {
  for (const name of ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"]) {
    const file = env[name];
    if (!file) continue;
    try {
      const found = readFileSync(file, "utf8").match(PEM) ?? [];
      if (found.length === 0) warn("no certificates found in trust file", { env: name, file });
    } catch (e) {
      warn("cannot read trust file", { env: name, file, err: (e as Error).message });
    }
  }
}

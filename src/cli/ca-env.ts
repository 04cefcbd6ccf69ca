// `clef-proxy ca env [--shell sh|fish|powershell]`: make common clients trust the proxy's CA.
//
// Most tools take one CA *file* that replaces their roots, so pointing them at ca.crt alone would
// break every other HTTPS connection they make. We write a merged bundle beside the CA —
// the runtime's bundled Mozilla roots (`tls.rootCertificates`), the system bundle when present, and
// our CA, each certificate once — and print the variables that point the usual clients at it.
// Node is the exception: NODE_EXTRA_CA_CERTS *adds* to its roots, so it gets ca.crt alone.
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rootCertificates } from "node:tls";

export const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
export const BUNDLE_NAME = "ca-bundle.pem";

/** Variables that take the merged bundle (each replaces the tool's roots). */
export const BUNDLE_VARS = [
  "SSL_CERT_FILE", // OpenSSL-based tools, Python's ssl, Go on Linux, Ruby
  "CURL_CA_BUNDLE", // curl
  "REQUESTS_CA_BUNDLE", // Python requests (and pip, where it overrides --cert)
  "PIP_CERT", // pip
  "GIT_SSL_CAINFO", // git over https
  "AWS_CA_BUNDLE", // AWS CLI and SDKs
  "DENO_CERT", // Deno
  "CARGO_HTTP_CAINFO", // cargo
] as const;

export type Shell = "sh" | "fish" | "powershell";

/** The shell for a --shell value (bash/zsh are sh, pwsh is powershell), or null. */
export function parseShell(s: string): Shell | null {
  switch (s) {
    case "sh":
    case "bash":
    case "zsh":
      return "sh";
    case "fish":
      return "fish";
    case "powershell":
    case "pwsh":
      return "powershell";
  }
  return null;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every certificate PEM block in `text`, normalised (LF line ends, one trailing newline). */
function pemBlocks(text: string): string[] {
  return (text.match(PEM_BLOCK) ?? []).map((b) => b.replace(/\r\n/g, "\n").trim() + "\n");
}

/** The merged bundle text: runtime roots, then the system bundle, then our CA; duplicates dropped. */
export function buildBundle(caPem: string, systemBundle: string | null): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const block of [...rootCertificates.flatMap(pemBlocks), ...pemBlocks(systemBundle ?? ""), ...pemBlocks(caPem)]) {
    const key = block.replace(/-----[A-Z ]+-----|\s/g, "");
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(block);
  }
  return out.join("");
}

/** Writes `<caDir>/ca-bundle.pem` (0644, replaced atomically) and returns its path. */
export function writeBundle(caDir: string, caPem: string, systemBundlePath = SYSTEM_BUNDLE): string {
  const system = existsSync(systemBundlePath) ? readFileSync(systemBundlePath, "utf8") : null;
  const path = join(caDir, BUNDLE_NAME);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, buildBundle(caPem, system), { mode: 0o644 });
  chmodSync(tmp, 0o644); // whatever the umask
  renameSync(tmp, path);
  return path;
}

function quote(shell: Shell, s: string): string {
  switch (shell) {
    case "sh":
      return `'${s.replace(/'/g, `'\\''`)}'`;
    case "fish":
      return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
    case "powershell":
      return `'${s.replace(/'/g, "''")}'`;
  }
}

function assign(shell: Shell, name: string, value: string): string {
  switch (shell) {
    case "sh":
      return `export ${name}=${quote(shell, value)}`;
    case "fish":
      return `set -gx ${name} ${quote(shell, value)}`;
    case "powershell":
      return `$env:${name} = ${quote(shell, value)}`;
  }
}

/** The lines `ca env` prints for `shell` (comments start with `#` in all three). */
export function renderEnv(shell: Shell, bundlePath: string, caCertPath: string): string {
  const evalHint =
    shell === "sh"
      ? 'eval "$(clef-proxy ca env)"'
      : shell === "fish"
        ? "clef-proxy ca env --shell fish | source"
        : "clef-proxy ca env --shell powershell | Out-String | Invoke-Expression";
  const lines = [
    `# clef-proxy: make clients trust the proxy's CA. Apply with: ${evalHint}`,
    `# ${BUNDLE_NAME} = the usual public roots + the clef-proxy CA (these variables replace a tool's roots).`,
    ...BUNDLE_VARS.map((v) => assign(shell, v, bundlePath)),
    "# Node adds NODE_EXTRA_CA_CERTS to its own roots, so it gets the CA alone.",
    assign(shell, "NODE_EXTRA_CA_CERTS", caCertPath),
    "# Node's built-in fetch (and the AI SDKs built on it) ignores HTTPS_PROXY: on Node >= 24 also set",
    "# NODE_USE_ENV_PROXY=1; on older Node, install undici's EnvHttpProxyAgent in the program:",
    "#   import { setGlobalDispatcher, EnvHttpProxyAgent } from 'undici'; setGlobalDispatcher(new EnvHttpProxyAgent());",
  ];
  return lines.join("\n") + "\n";
}

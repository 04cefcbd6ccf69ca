// The CA store (docs/CONTRACT.md §2): where the root lives, loading it with the reference's checks
// and error texts, creating it when missing, regenerating it, exporting the certificate. Where it lives
// is ./dir.ts (no crypto: `ca path` loads only that).
import { createPrivateKey, generateKeyPairSync, type KeyObject, X509Certificate } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { CAError, type CAPaths } from "./dir.ts";
import { pemDecode, toPem } from "./der.ts";
import type { CA } from "./types.ts";
import { issueRoot } from "./x509.ts";

/** Go's error text for an fs failure: "<op> <path>: <reason>". */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file or directory";
    case "ENOTDIR":
      return "not a directory";
    case "EISDIR":
      return "is a directory";
    case "EACCES":
      return "permission denied";
    case "EEXIST":
      return "file exists";
    case "EROFS":
      return "read-only file system";
    case "ENOSPC":
      return "no space left on device";
    case "ELOOP":
      return "too many levels of symbolic links";
    case "ENAMETOOLONG":
      return "file name too long";
    default:
      return (e as Error)?.message ?? String(e);
  }
}

/** Go's os.MkdirAll(dir, 0700), but created directories are 0700 whatever the umask. Returns Go's error text. */
function mkdirAll(dir: string): void {
  // Find the first existing ancestor (Go reports "mkdir <that path>: not a directory" when it is a file).
  const missing: string[] = [];
  let p = dir;
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        missing.unshift(p);
        const parent = dirname(p);
        if (parent === p) break;
        p = parent;
        continue;
      }
      if (code === "ENOTDIR") {
        missing.unshift(p);
        const parent = dirname(p);
        if (parent === p) break;
        p = parent;
        continue;
      }
      throw new CAError(`mkdir ${dir}: mkdir ${p}: ${fsReason(e)}`);
    }
    if (!st.isDirectory()) throw new CAError(`mkdir ${dir}: mkdir ${p}: not a directory`);
    break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
      chmodSync(d, 0o700);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST" && statSync(d).isDirectory()) continue;
      throw new CAError(`mkdir ${dir}: mkdir ${d}: ${fsReason(e)}`);
    }
  }
}

/** Writes the file (created or truncated in place) and sets its mode exactly (umask-independent). */
function writeExact(path: string, data: string | Uint8Array, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, "w", mode);
  } catch (e) {
    throw new CAError(`write ${path}: open ${path}: ${fsReason(e)}`);
  }
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    chmodSync(path, mode);
  } catch (e) {
    throw new CAError(`write ${path}: ${fsReason(e)}`);
  } finally {
    closeSync(fd);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, "latin1");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CAError(`${code === "EISDIR" ? "read" : "open"} ${path}: ${fsReason(e)}`);
  }
}

/** Exists as far as Go's os.Stat is concerned (anything but "not exist" counts as present). */
export function present(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ENOENT";
  }
}

function goSubject(x: X509Certificate): string {
  // Go's pkix.Name.String(): RDNs in reverse order, comma-joined.
  return x.subject.split("\n").filter(Boolean).reverse().join(",");
}

function makeCA(certDer: Uint8Array, key: KeyObject, paths: CAPaths, x?: X509Certificate): CA {
  const cert = x ?? new X509Certificate(Buffer.from(certDer));
  return {
    certPem: toPem("CERTIFICATE", certDer),
    certDer,
    key,
    keyPem: key.export({ type: "sec1", format: "pem" }) as string,
    subject: goSubject(cert),
    notAfter: new Date(cert.validTo),
    certPath: paths.certPath,
    keyPath: paths.keyPath,
  };
}

function parseKey(keyPath: string): KeyObject {
  const block = pemDecode(readText(keyPath));
  if (!block || block.type !== "EC PRIVATE KEY") throw new CAError(`ca: ${keyPath}: not an EC PRIVATE KEY PEM block`);
  try {
    const key = createPrivateKey({ key: Buffer.from(block.bytes), format: "der", type: "sec1" });
    if (key.asymmetricKeyType !== "ec") throw new Error("not ec");
    return key;
  } catch {
    throw new CAError(`ca: parse ${keyPath}: x509: failed to parse EC private key`);
  }
}

/** Loads an existing pair with the reference's checks, in its order. */
function loadPair(paths: CAPaths): CA {
  const { certPath, keyPath } = paths;
  const certText = readText(certPath);
  readText(keyPath); // both files are read before either is parsed
  const certBlock = pemDecode(certText);
  if (!certBlock || certBlock.type !== "CERTIFICATE") throw new CAError(`ca: ${certPath}: not a CERTIFICATE PEM block`);
  let x: X509Certificate;
  try {
    x = new X509Certificate(Buffer.from(certBlock.bytes));
  } catch {
    throw new CAError(`ca: parse ${certPath}: x509: malformed certificate`);
  }
  if (!x.ca) throw new CAError(`ca: ${certPath}: not marked as CA`);
  const key = parseKey(keyPath);
  if (x.publicKey.asymmetricKeyType !== "ec") throw new CAError(`ca: ${certPath}: not an ECDSA public key`);
  if (!x.checkPrivateKey(key)) throw new CAError("ca: cert and key do not match");
  return makeCA(certBlock.bytes, key, paths, x);
}

function newKey(): KeyObject {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
}

/** Generates a fresh key and root and writes both (key first, so a crash leaves a recoverable lone key). */
export function regenerateCA(paths: CAPaths): CA {
  mkdirAll(dirname(paths.certPath));
  if (dirname(paths.keyPath) !== dirname(paths.certPath)) mkdirAll(dirname(paths.keyPath));
  const key = newKey();
  const certDer = issueRoot(key);
  const ca = makeCA(certDer, key, paths);
  writeExact(paths.keyPath, ca.keyPem, 0o600);
  writeExact(paths.certPath, ca.certPem, 0o644);
  return ca;
}

/**
 * Loads the CA, creating it when both files are missing. Deliberate improvement (§18.12): a lone
 * `ca.key` gets a new root certificate for that same key (the key file is left untouched); a lone
 * `ca.crt` is an error. Throws CAError with the reference's message texts.
 */
export function loadOrCreateCA(paths: CAPaths): CA {
  const haveCert = present(paths.certPath);
  const haveKey = present(paths.keyPath);
  if (haveCert && haveKey) return loadPair(paths);
  if (!haveCert && !haveKey) return regenerateCA(paths);
  if (haveCert) {
    throw new CAError(
      `ca: ${paths.certPath} exists but its key ${paths.keyPath} is missing (run \`clef-proxy ca regenerate --confirm\` to start over)`,
    );
  }
  // Lone key: issue a certificate for it.
  const key = parseKey(paths.keyPath);
  mkdirAll(dirname(paths.certPath));
  const certDer = issueRoot(key);
  writeExact(paths.certPath, toPem("CERTIFICATE", certDer), 0o644);
  return makeCA(certDer, key, paths);
}

export type ExportFormat = "pem" | "der" | "der-base64";

export function isExportFormat(f: string): f is ExportFormat {
  return f === "pem" || f === "der" || f === "der-base64";
}

/** The certificate in an export format (PEM re-encoded from the DER, as Go's pem.Encode). */
export function exportCA(ca: CA, format: ExportFormat): Uint8Array {
  switch (format) {
    case "pem":
      return Buffer.from(ca.certPem);
    case "der":
      return ca.certDer;
    case "der-base64":
      return Buffer.from(Buffer.from(ca.certDer).toString("base64"));
  }
}

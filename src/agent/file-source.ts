// Standalone mode's credential source (`serve --services <file>`): the services file has the shape
// of the agent's /v1/services answer plus a `secrets` map from credential handle to where the value
// lives: `env:NAME` (an environment variable) or `file:PATH` (a file, trailing newline dropped,
// relative to the services file). Same validation and the same CredentialSource interface as the
// agent client, so the data path cannot tell them apart.
//
// Diagnostics: `problems()` lists every handle the services use whose value cannot be read (no
// entry, variable unset, file unreadable) — serve WARNs each at startup, `clef-proxy check` reports
// them — and a failed lookup logs the same WARN per request. They name the variable or file, never
// a value.
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import * as v from "valibot";
import { parseHandle } from "../inject/index.ts";
import { warn } from "../log/slog.ts";
import { manifestFromJson } from "./client.ts";
import { CredentialError, type CredentialSource, type Manifest } from "./types.ts";

const SecretsSchema = v.optional(
  v.record(v.string(), v.pipe(v.string(), v.regex(/^(env|file):.+$/, "must be env:NAME or file:PATH"))),
  {},
);

/** A credential handle whose value cannot be read; `source` is `env:NAME` / `file:PATH` (or "" when unmapped). */
export interface SecretProblem {
  handle: string;
  source: string;
  problem: string;
}

export interface FileCredentialSource extends CredentialSource {
  manifest: Manifest;
  /** SHA-256 (hex) of the services file's bytes (metrics manifest_info). */
  sha256: string;
  /** Every handle the services use that cannot be resolved now, in manifest order. */
  problems(): SecretProblem[];
}

const FS_REASONS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
};

/** Why a file's value cannot be read (`<path>: <reason>`), or null when it can (opened, never read). */
function fileProblem(path: string): string | null {
  try {
    if (statSync(path).isDirectory()) return `${path}: is a directory`;
    closeSync(openSync(path, "r"));
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    return `${path}: ${FS_REASONS[code] ?? (code || "read error")}`;
  }
}

/** The WARN line for an unavailable secret (at startup for each problem, and per request). */
export function warnSecretProblem(p: SecretProblem): void {
  warn("standalone secret unavailable", { handle: p.handle, source: p.source, problem: p.problem });
}

/**
 * The distinct credential handles the services use, in manifest order, split; malformed handles are
 * left out (they are reported as unusable services by checkServices).
 */
export function credentialHandles(m: Manifest): Array<{ handle: string; namespace: string; key: string }> {
  const seen = new Set<string>();
  const out: Array<{ handle: string; namespace: string; key: string }> = [];
  for (const s of m.services) {
    const handle = s.auth.credential;
    if (seen.has(handle)) continue;
    seen.add(handle);
    try {
      out.push({ handle, ...parseHandle(handle) });
    } catch {}
  }
  return out;
}

export function loadServicesFile(path: string, env: Record<string, string | undefined>): FileCredentialSource {
  let json: Record<string, unknown>;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`services file ${JSON.stringify(path)}: ${(e as Error).message}`);
  }
  const manifest = manifestFromJson(json, path);
  const parsed = v.safeParse(SecretsSchema, json.secrets);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new Error(
      `services file ${JSON.stringify(path)}: secrets.${issue.path?.map((p) => String(p.key)).join(".") ?? ""}: ${issue.message}`,
    );
  }
  const secrets = parsed.output;
  const base = dirname(resolve(path));
  /** The problem with one handle now, or null when its value can be read. */
  const problemOf = (handle: string): SecretProblem | null => {
    const where = secrets[handle];
    if (!where) return { handle, source: "", problem: 'no entry in the services file\'s "secrets" map' };
    if (where.startsWith("env:"))
      return env[where.slice(4)] === undefined ? { handle, source: where, problem: "is not set" } : null;
    const why = fileProblem(resolve(base, where.slice(5)));
    return why ? { handle, source: where, problem: why } : null;
  };
  return {
    manifest,
    sha256: createHash("sha256").update(text).digest("hex"),
    problems() {
      return credentialHandles(manifest)
        .map((h) => problemOf(h.handle))
        .filter((p): p is SecretProblem => p !== null);
    },
    async secret(namespace, key) {
      const handle = `${namespace}/${key}`;
      const where = secrets[handle];
      if (!where) {
        warnSecretProblem(problemOf(handle)!);
        throw new CredentialError("not_found", `agent: credential ${handle} not found`);
      }
      if (where.startsWith("env:")) {
        const value = env[where.slice(4)];
        if (value === undefined) {
          warnSecretProblem(problemOf(handle)!);
          throw new CredentialError("not_found", `agent: credential ${handle} not found (${where} is not set)`);
        }
        return value;
      }
      try {
        return readFileSync(resolve(base, where.slice(5)), "utf8").replace(/\r?\n$/, "");
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? "read error";
        warnSecretProblem(problemOf(handle) ?? { handle, source: where, problem: code });
        throw new CredentialError("agent", `agent: credential ${handle}: ${code} reading ${where}`);
      }
    },
  };
}

// Standalone mode's credential source (`serve --services <file>`): the services file has the shape
// of the agent's /v1/services answer plus a `secrets` map from credential handle to where the value
// lives: `env:NAME` (an environment variable) or `file:PATH` (a file, trailing newline dropped,
// relative to the services file). Same validation and the same CredentialSource interface as the
// agent client, so the data path cannot tell them apart.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import * as v from "valibot";
import { manifestFromJson } from "./client.ts";
import { CredentialError, type CredentialSource, type Manifest } from "./types.ts";

const SecretsSchema = v.optional(
  v.record(v.string(), v.pipe(v.string(), v.regex(/^(env|file):.+$/, "must be env:NAME or file:PATH"))),
  {},
);

export interface FileCredentialSource extends CredentialSource {
  manifest: Manifest;
}

export function loadServicesFile(path: string, env: Record<string, string | undefined>): FileCredentialSource {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
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
  return {
    manifest,
    async secret(namespace, key) {
      const handle = `${namespace}/${key}`;
      const where = secrets[handle];
      if (!where) throw new CredentialError("not_found", `agent: credential ${handle} not found`);
      if (where.startsWith("env:")) {
        const value = env[where.slice(4)];
        if (value === undefined)
          throw new CredentialError("not_found", `agent: credential ${handle} not found (${where} is not set)`);
        return value;
      }
      try {
        return readFileSync(resolve(base, where.slice(5)), "utf8").replace(/\r?\n$/, "");
      } catch (e) {
        throw new CredentialError(
          "agent",
          `agent: credential ${handle}: ${(e as NodeJS.ErrnoException).code ?? "read error"} reading ${where}`,
        );
      }
    },
  };
}

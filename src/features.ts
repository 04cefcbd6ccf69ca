// Capability discovery (shared/PHASE2.md §1.3): what this binary implements beyond Phase 1, printed
// by `clef-proxy features` so the agent learns it without probing (Go 0.0.4 answers
// `unknown subcommand "features"`, exit 1). A name is listed only once its feature really works in
// this build; whoever lands a feature adds its name here, and its tests assert it is listed.
import { goJsonEncode } from "./gojson/encode.ts";

export const FEATURES: readonly string[] = [
  "auth_basic",
  "auth_template",
  "blocked_cidrs",
  "blocked_hosts",
  "metrics",
  "multi_host",
  "otlp",
  "webhook",
  "wildcard_hosts",
];

/** The audit line `schema_version` this binary writes. */
export const AUDIT_SCHEMA_VERSION = 1;
/** The `/v1/services` `schema_version` values this binary accepts. */
export const MANIFEST_SCHEMA_VERSIONS: readonly number[] = [1];

/** The one JSON line `clef-proxy features` prints (keys sorted, features sorted, trailing newline). */
export function featuresLine(version: string): string {
  return goJsonEncode({
    audit_schema_version: AUDIT_SCHEMA_VERSION,
    features: [...new Set(FEATURES)].sort(),
    manifest_schema_versions: [...MANIFEST_SCHEMA_VERSIONS],
    version,
  });
}

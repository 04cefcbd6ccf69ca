// Where the binaries under test live. Tests exercise the *compiled* clef-proxy (what ships), built by
// `npm test` (scripts/test.ts) before `bun test` runs. CLEF_PROXY_BIN overrides the path (e.g. a
// private build while developing); REF_BIN overrides the reference binary.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

export function hostTarget(): string {
  const os = process.platform === "win32" ? "win32" : process.platform;
  return `${os}-${process.arch}`;
}

export const OUR_BIN: string =
  process.env.CLEF_PROXY_BIN ??
  join(ROOT, "bin", `clef-proxy-${hostTarget()}${process.platform === "win32" ? ".exe" : ""}`);

/** The Go reference binary (the oracle), when installed and runnable here; else null. */
export const REF_BIN: string | null = (() => {
  const p = process.env.REF_BIN ?? join(ROOT, "node_modules", "@clef-sh", "proxy-linux-x64", "bin", "clef-proxy");
  return process.platform === "linux" && process.arch === "x64" && existsSync(p) ? p : null;
})();

if (!existsSync(OUR_BIN)) {
  throw new Error(`compiled binary not found at ${OUR_BIN}: run \`npm run build\` first (npm test does it)`);
}

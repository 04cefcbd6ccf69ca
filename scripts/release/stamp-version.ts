// Set "version" in package.json files (the root one before building, so the binary's --version
// says it, and each platform package before publishing).
//
//   bun scripts/release/stamp-version.ts <version|vX.Y.Z|refs/tags/vX.Y.Z> <package.json>...
import { readFileSync, writeFileSync } from "node:fs";
import { args, fail, normaliseVersion } from "./lib.ts";

const USAGE = `usage: stamp-version.ts <version> <package.json>...
  Sets "version" in each package.json (key order and 2-space formatting kept).
  <version> is a semantic version; a leading "v" or "refs/tags/" is stripped.
`;

const [raw, ...files] = args(USAGE, 2);
const version = normaliseVersion(raw!);
if (!version) fail(`not a semantic version: ${JSON.stringify(raw)}`);
for (const file of files) {
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    fail(`${file}: ${(e as Error).message}`);
  }
  if (typeof pkg !== "object" || pkg === null || Array.isArray(pkg)) fail(`${file}: not a package.json object`);
  pkg.version = version;
  writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  console.log(`${file}: version ${version}`);
}

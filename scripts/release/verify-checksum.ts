// Check a downloaded binary against its `.sha256` file (sha256sum format). Exit 1 on mismatch.
//
//   bun scripts/release/verify-checksum.ts <file> [<checksum file>]   (default: <file>.sha256)
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { args, fail, sha256File } from "./lib.ts";

const USAGE = `usage: verify-checksum.ts <file> [<checksum file>]
  Compares the SHA-256 of <file> with the entry for its name in <checksum file> (default <file>.sha256).
`;

const [file, sumsArg] = args(USAGE, 1);
const sums = sumsArg ?? `${file}.sha256`;
if (!existsSync(file!)) fail(`${file}: no such file`);
if (!existsSync(sums)) fail(`${sums}: no such file`);
const name = basename(file!);
const entries = readFileSync(sums, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => /^([0-9a-f]{64}) [ *](.+)$/i.exec(l));
if (entries.some((e) => e === null)) fail(`${sums}: not in sha256sum format`);
// a single-entry file may name the binary differently (renamed on download): accept it
const entry = entries.find((e) => e![2] === name) ?? (entries.length === 1 ? entries[0] : undefined);
if (!entry) fail(`${sums}: no entry for ${name}`);
const actual = await sha256File(file!);
if (actual !== entry![1]!.toLowerCase()) fail(`${file}: checksum mismatch (expected ${entry![1]}, got ${actual})`);
console.log(`${file}: OK ${actual}`);

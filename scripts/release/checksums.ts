// Write `<file>.sha256` next to each file, in `sha256sum` format, so `sha256sum -c` accepts it.
//
//   bun scripts/release/checksums.ts <file>...
import { existsSync, statSync, writeFileSync } from "node:fs";
import { args, fail, sha256File, sumLine } from "./lib.ts";

const USAGE = `usage: checksums.ts <file>...
  Writes <file>.sha256 containing "<sha256 hex>  <file name>" for each file.
`;

for (const file of args(USAGE, 1)) {
  if (!existsSync(file) || !statSync(file).isFile()) fail(`${file}: no such file`);
  const line = sumLine(await sha256File(file), file);
  writeFileSync(`${file}.sha256`, line);
  process.stdout.write(line);
}

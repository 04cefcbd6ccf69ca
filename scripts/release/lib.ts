// Shared bits of the release helpers: argument handling, failures, SHA-256 in `sha256sum` format.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { basename } from "node:path";

/** Print `usage` for --help / -h and exit 0; return the positional arguments otherwise. */
export function args(usage: string, min: number): string[] {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(usage);
    process.exit(0);
  }
  if (argv.length < min) fail(`missing arguments\n${usage}`);
  return argv;
}

export function fail(message: string): never {
  process.stderr.write(`${process.argv[1]?.split("/").pop()}: ${message}\n`);
  process.exit(1);
}

export const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** "v1.2.3" or "refs/tags/v1.2.3" or "1.2.3" → "1.2.3"; null when not a semantic version. */
export function normaliseVersion(v: string): string | null {
  const s = v.replace(/^refs\/tags\//, "").replace(/^v/, "");
  return SEMVER.test(s) ? s : null;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** One `sha256sum` line: `<hex>  <basename>\n` (two spaces: text mode, as sha256sum prints). */
export function sumLine(hex: string, file: string): string {
  return `${hex}  ${basename(file)}\n`;
}

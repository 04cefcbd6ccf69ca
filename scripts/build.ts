// Build the native executable(s) with `bun build --compile`.
//
//   bun scripts/build.ts          host target → bin/clef-proxy-<platform>-<arch>[.exe]
//   bun scripts/build.ts --all    the five release targets → bin/… and platforms/proxy-<platform>-<arch>/bin/clef-proxy[.exe]
//
// Cross-compiling makes bun fetch the target's runtime once (cached afterwards).
import { $ } from "bun";
import { copyFileSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const ENTRY = join(ROOT, "src", "cli", "main.ts");

interface Target {
  platform: "darwin" | "linux" | "win32";
  arch: "arm64" | "x64";
}

const ALL: Target[] = [
  { platform: "darwin", arch: "arm64" },
  { platform: "darwin", arch: "x64" },
  { platform: "linux", arch: "x64" },
  { platform: "linux", arch: "arm64" },
  { platform: "win32", arch: "x64" },
];

// --bytecode (ESM): the entry is precompiled, which cuts `--version` cold start from ≈25 ms to ≈9 ms
//   (docs/PERFORMANCE.md). --splitting: the lazily imported commands, CA code and server become chunks
//   of their own, loaded when a command needs them, so `--version` loads only the entry's chunk
//   (10.3 → 4.4 ms, docs/PERFORMANCE.md). --no-compile-autoload-*: a compiled Bun binary would otherwise read `.env`
//   and `bunfig.toml` from its working directory at start-up — an ambient way to change the proxy's
//   environment (tokens, agent URL) that the Go binary never had.
const FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--splitting",
  "--format=esm",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];

const bunTarget = (t: Target) => `bun-${t.platform === "win32" ? "windows" : t.platform}-${t.arch}`;
const exe = (t: Target) => (t.platform === "win32" ? ".exe" : "");

async function build(t: Target, cross: boolean): Promise<string> {
  const out = join(ROOT, "bin", `clef-proxy-${t.platform}-${t.arch}${exe(t)}`);
  mkdirSync(join(ROOT, "bin"), { recursive: true });
  const target = cross ? [`--target=${bunTarget(t)}`] : [];
  await $`${process.execPath} build ${FLAGS} ${target} ${ENTRY} --outfile ${out}`.cwd(ROOT).quiet();
  console.log(`built ${out}${cross ? ` (${bunTarget(t)})` : ""}`);
  return out;
}

const all = process.argv.includes("--all");
if (!all) {
  const platform = process.platform === "win32" ? "win32" : process.platform;
  const host = ALL.find((t) => t.platform === platform && t.arch === process.arch);
  if (!host) {
    console.error(`unsupported host ${platform}-${process.arch}`);
    process.exit(1);
  }
  await build(host, false);
} else {
  for (const t of ALL) {
    const out = await build(t, true);
    const dir = join(ROOT, "platforms", `proxy-${t.platform}-${t.arch}`, "bin");
    mkdirSync(dir, { recursive: true });
    const dest = join(dir, `clef-proxy${exe(t)}`);
    copyFileSync(out, dest);
    console.log(`  → ${dest}`);
  }
}

// Build the native executable(s) with `bun build --compile`.
//
//   bun scripts/build.ts          host target → bin/clef-proxy-<platform>-<arch>[.exe]
//   bun scripts/build.ts --all    the five release targets → bin/… and platforms/proxy-<platform>-<arch>/bin/clef-proxy[.exe]
//
// Cross-compiling makes bun fetch the target's runtime once (cached afterwards).
import { $ } from "bun";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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

// --bytecode (ESM): the code is precompiled: `serve` reaches listening in ≈28 ms instead of ≈63
//   (parsed at start-up; measured in the ninth pass, docs/PERFORMANCE.md), and with the profile below
//   `--version` is no slower for it. --splitting: the lazily imported commands, CA code and server
//   become chunks of their own, loaded when a command needs them, so `--version` loads only the
//   entry's chunk. --no-compile-autoload-*: a compiled Bun binary would otherwise read `.env` and
//   `bunfig.toml` from its working directory at start-up — an ambient way to change the proxy's
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

async function compile(out: string, target: string[], order: string[]): Promise<void> {
  const layout = order.length ? [`--bytecode-order=${order.join(",")}`] : [];
  await $`${process.execPath} build ${FLAGS} ${target} ${layout} ${ENTRY} --outfile ${out}`.cwd(ROOT).quiet();
}

async function build(t: Target, cross: boolean, order: string[]): Promise<string> {
  const out = join(ROOT, "bin", `clef-proxy-${t.platform}-${t.arch}${exe(t)}`);
  mkdirSync(join(ROOT, "bin"), { recursive: true });
  const target = cross ? [`--target=${bunTarget(t)}`] : [];
  let profiled = order.length > 0;
  try {
    await compile(out, target, order);
  } catch (e) {
    if (!profiled) throw e;
    // a target whose build refuses the profile still gets its executable, without the layout
    console.warn(`${bunTarget(t)}: the build with the bytecode profile failed, building without it`);
    profiled = false;
    await compile(out, target, []);
  }
  console.log(`built ${out}${cross ? ` (${bunTarget(t)})` : ""}${profiled ? "" : " (no bytecode profile)"}`);
  return out;
}

// --bytecode-order: the bytecode laid out by what the executable runs when it starts. A first build
// for this machine is started the two ways it is started most — `serve` (the agent spawns it;
// standalone here, with no services, on a free loopback port, in a home of its own) and `--version`
// (the agent's and the release pipeline's probe) — with BUN_BYTECODE_ORDER_OUT, and the real build
// puts what those runs used first. Without it the runtime asks the kernel to read ahead 2.1 MB of
// embedded bytecode at every start (0.6 MB with it): `--version` took 11.7–12.6 ms against 9.4–9.9
// with the profile, `serve` to listening 33.4 against 31.3 ms (docs/PERFORMANCE.md, ninth pass).
// The profiles name functions, not machine code, so the host's serve every target; a target whose
// build refuses one, or a host where the first build cannot run, gets executables without the layout
// (the same program, slower to start), and the build says so.
async function withStartupProfile<T>(run: (order: string[]) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "clef-proxy-order-"));
  try {
    let order: string[] = [];
    try {
      order = await recordStartup(dir);
    } catch (e) {
      console.warn(`no bytecode profile: ${e instanceof Error ? e.message : String(e)}`);
    }
    return await run(order);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Build for this machine into `dir`, start it as `serve` and `--version`, and return the two profiles. */
export async function recordStartup(dir: string): Promise<string[]> {
  const bin = join(dir, `clef-proxy${process.platform === "win32" ? ".exe" : ""}`);
  await compile(bin, [], []);
  const serveOrder = join(dir, "serve.order");
  const versionOrder = join(dir, "version.order");
  const config = join(dir, "config.json"); // (serve removes it once read)
  const services = join(dir, "services.json");
  // (a port of its own: 0 would mean the default, 8888, which a proxy already running here may hold —
  // and the build would then go without its profile)
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  writeFileSync(config, JSON.stringify({ listen: { port } }));
  writeFileSync(services, JSON.stringify({ schema_version: 1, services: [], secrets: {} }));
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, USERPROFILE: dir };
  const p = Bun.spawn([bin, "serve", "--config", config, "--services", services], {
    env: { ...env, BUN_BYTECODE_ORDER_OUT: serveOrder },
    stdout: "ignore",
    stderr: "pipe",
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
  let err = "";
  try {
    const decoder = new TextDecoder();
    for await (const chunk of p.stderr) {
      err += decoder.decode(chunk, { stream: true });
      if (err.includes("msg=listening")) break;
    }
    if (!err.includes("msg=listening")) throw new Error(`serve did not start: ${err.trim().slice(0, 300)}`);
    p.kill("SIGTERM");
    if ((await p.exited) !== 0) throw new Error(`serve exited ${p.exitCode} after SIGTERM`);
  } finally {
    clearTimeout(timer);
    p.kill("SIGKILL");
  }
  const v = Bun.spawnSync([bin, "--version"], { env: { ...env, BUN_BYTECODE_ORDER_OUT: versionOrder } });
  if (v.exitCode !== 0) throw new Error(`--version exited ${v.exitCode}`);
  for (const f of [serveOrder, versionOrder]) if (statSync(f).size === 0) throw new Error(`empty profile ${f}`);
  return [serveOrder, versionOrder]; // the most common start first
}

async function main(): Promise<void> {
  const all = process.argv.includes("--all");
  if (!all) {
    const platform = process.platform === "win32" ? "win32" : process.platform;
    const host = ALL.find((t) => t.platform === platform && t.arch === process.arch);
    if (!host) {
      console.error(`unsupported host ${platform}-${process.arch}`);
      process.exit(1);
    }
    await withStartupProfile((order) => build(host, false, order));
    return;
  }
  await withStartupProfile(async (order) => {
    for (const t of ALL) {
      const out = await build(t, true, order);
      const dir = join(ROOT, "platforms", `proxy-${t.platform}-${t.arch}`, "bin");
      mkdirSync(dir, { recursive: true });
      const dest = join(dir, `clef-proxy${exe(t)}`);
      copyFileSync(out, dest);
      console.log(`  → ${dest}`);
    }
  });
}

if (import.meta.main) await main();

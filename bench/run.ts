// `npm run bench`: ours vs the reference binary (and mitmproxy when installed) vs direct, in one run,
// on this machine. Prints a table with ratios and target verdicts; writes bench/results/latest.json.
//
// Pieces: a Go HTTPS upstream and a Go load generator (bench/loadgen, built with the installed Go),
// the scripted agent of the tests (in this process; idle while load runs except for the reference's
// per-request secret fetches, which are part of its cost), each proxy under `unshare -m` with a
// private /etc/hosts so `api.test` names the upstream. Cells are short (BENCH_SECONDS, default 4 s):
// the numbers are ratios within one run, not absolutes. Every target runs from its start to its held
// cell (the last step), and each step runs for every target in turn (direct, reference, ours,
// mitmproxy), so that the ratios of a cell are taken seconds apart rather than a target's column
// apart; the load cells and the stream run in BENCH_ROUNDS rounds (default 3), a cell's figures the
// medians of its rounds.
import { $ } from "bun";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { measure, measureInterleaved, median } from "./coldstart.ts";
import { buildLoadgen, serveUpstream } from "./loadgen-process.ts";

const ROOT = resolve(import.meta.dir, "..");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const QUICK = process.argv.includes("--quick"); // harness smoke test: tiny cells, no ref comparison needed
const CELL = QUICK ? "0.5s" : `${SECONDS}s`;
// Before the cells every target serves this much load, the same for all (a JIT runtime's steady
// state is what a long-running proxy serves at; start-up is measured on its own: cold start, spawn →
// listening, idle RSS). With 0.5 s the c=16 cell of ours ran while its JIT was still compiling
// (≈10 % of a core) and the held cell, a minute later, came out 102–113 % of it (docs/PERFORMANCE.md).
const WARM_SECONDS = QUICK ? 0.5 : Number(process.env.BENCH_WARM_SECONDS ?? 5);
const STREAM_BYTES = QUICK ? 8 * 1024 * 1024 : 100 * 1024 * 1024;
const MINT_HOSTS = QUICK ? 5 : 40;
const HELD = QUICK ? 100 : 1000; // requests held by the silent upstream in the held cell
// Every load cell and the stream run this many times for every target, round by round (the order of
// the targets reversed in every other round); a cell's figures are the medians of its rounds. On a
// shared 2-core VM one 4 s cell moves by ±20 % from one minute to the next (docs/PERFORMANCE.md,
// fifth and sixth passes): with one round a ratio said as much about when its cells ran as about
// the targets.
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3)));

// ---------------------------------------------------------------------------------------------
// Build

console.log("building our binary and the Go load generator…");
await $`${process.execPath} ${join(ROOT, "scripts/build.ts")}`.quiet();
const work = join(tmpdir(), `clef-bench-${process.pid}`);
mkdirSync(work, { recursive: true });
const LOADGEN = await buildLoadgen(work);

const { OUR_BIN, REF_BIN } = await import("../test/helpers/bin.ts");
const { startAgent, manifest, agentEnv } = await import("../test/helpers/agent.ts");
const { startProxy, freePort, withHosts } = await import("../test/helpers/proxy.ts");
const { makeTestPki } = await import("../test/helpers/tls.ts");
type ProxyProcess = Awaited<ReturnType<typeof startProxy>>;

const TOKEN = "bench-token-0123456789";
const mintNames = Array.from({ length: MINT_HOSTS * 4 }, (_, i) => `m${i}.test`);
const pki = makeTestPki(["api.test", "slow.test", ...mintNames], ["127.0.0.2", "127.0.0.3"]);

// ---------------------------------------------------------------------------------------------
// Upstream (Go, separate process)

const { proc: upstream, port: upPort } = await serveUpstream(LOADGEN, "127.0.0.2:0", pki);
// the silent upstream of the held cell, another host and port (its /hold/ never answers in time)
const { proc: slowUpstream, port: slowPort } = await serveUpstream(LOADGEN, "127.0.0.3:0", pki);

const agent = startAgent({
  services: manifest(
    [
      { name: "api", host: "api.test", auth: { scheme: "bearer", credential: "bench/KEY" } },
      { name: "slow", host: "slow.test", auth: { scheme: "bearer", credential: "bench/KEY" } },
    ],
    mintNames,
  ),
  secrets: { "bench/KEY": "bench-secret-value" },
});
const hosts: Record<string, string> = { "api.test": "127.0.0.2", "slow.test": "127.0.0.3" };
for (const n of mintNames) hosts[n] = "127.0.0.2";

// ---------------------------------------------------------------------------------------------
// Measurement helpers

/** Requests the silent upstream is holding now. */
async function holding(): Promise<number> {
  const r = await loadgen([
    "-url",
    `https://slow.test:${slowPort}/holding`,
    "-ca",
    pki.caPath,
    "-resolve",
    "slow.test=127.0.0.3",
    "-n",
    "1",
    "-body",
  ]);
  return Number(r.body ?? 0);
}

interface Load {
  requests: number;
  errors: number;
  rps: number;
  p50_us: number;
  p99_us: number;
  bytes: number;
  seconds: number;
  first_error?: string;
  /** The last response body (-body). */
  body?: string;
  /** Highest VmRSS of the proxy sampled every 50 ms during the cell. */
  rss_max_mib?: number;
  /**
   * The machine's CPU time stolen by the hypervisor while the cell ran, % of all of it (/proc/stat):
   * on a shared VM a cell with much steal measured the host's other guests, not the target.
   */
  steal_pct?: number;
  /** Each round's figures, when the cell ran in several (the others are then their medians). */
  rounds?: Array<{ rps: number; p50_us: number; p99_us: number; steal_pct?: number }>;
}

/** Stolen and total CPU ticks of the machine so far (/proc/stat's first line; zeros where unreadable). */
function cpuTicks(): { steal: number; total: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return { steal: 0, total: 0 };
  }
}
const stealSince = (t0: { steal: number; total: number }) => {
  const t1 = cpuTicks();
  return t1.total > t0.total ? (100 * (t1.steal - t0.steal)) / (t1.total - t0.total) : 0;
};

/** The median of numbers in any order. */
const medianOf = (xs: number[]) => median([...xs].sort((a, b) => a - b));

/**
 * A cell's rounds as one: the median of req/s, p50 and p99 (each on its own), requests and errors
 * summed, the highest RSS; every round's figures kept.
 */
function combine(runs: Load[]): Load {
  if (runs.length === 1) return runs[0]!;
  const rss = runs.map((r) => r.rss_max_mib).filter((x): x is number => x !== undefined);
  return {
    requests: runs.reduce((a, r) => a + r.requests, 0),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    rps: medianOf(runs.map((r) => r.rps)),
    p50_us: medianOf(runs.map((r) => r.p50_us)),
    p99_us: medianOf(runs.map((r) => r.p99_us)),
    bytes: runs.reduce((a, r) => a + r.bytes, 0),
    seconds: runs.reduce((a, r) => a + r.seconds, 0),
    ...(runs.find((r) => r.first_error) ? { first_error: runs.find((r) => r.first_error)!.first_error } : {}),
    ...(rss.length ? { rss_max_mib: Math.max(...rss) } : {}),
    steal_pct: medianOf(runs.map((r) => r.steal_pct ?? 0)),
    rounds: runs.map((r) => ({ rps: r.rps, p50_us: r.p50_us, p99_us: r.p99_us, steal_pct: r.steal_pct })),
  };
}

async function loadgen(args: string[]): Promise<Load> {
  const p = Bun.spawn([LOADGEN, "load", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`loadgen ${args.join(" ")} exited ${code}: ${err}`);
  return JSON.parse(out) as Load;
}

function rssKiB(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0), hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** The proxy's own pid: under `unshare … sh -c exec`, the exec chain keeps the spawned pid. */
const pidOf = (p: ProxyProcess) => p.pid;

interface Target {
  name: string;
  kind: "direct" | "proxy";
  proxy?: ProxyProcess;
  port?: number;
  ca?: string; // CA file the load generator trusts
}

/** mitmproxy's mitmdump with a one-line addon that sets the header, same auth, same upstream trust. */
async function startMitm(): Promise<Target & { spawnToListenMs: number }> {
  const port = await freePort();
  const dir = join(work, `mitm-${port}`);
  mkdirSync(dir, { recursive: true });
  const addon = join(dir, "inject.py");
  writeFileSync(addon, 'def request(flow): flow.request.headers["Authorization"] = "Bearer bench-secret-value"\n');
  const t0 = performance.now();
  const proc = Bun.spawn(
    withHosts(hosts, [
      "mitmdump",
      "-q",
      "--listen-host",
      "127.0.0.1",
      "--listen-port",
      String(port),
      "--set",
      `confdir=${dir}`,
      "--proxyauth",
      `x:${TOKEN}`,
      "--set",
      `ssl_verify_upstream_trusted_ca=${pki.caPath}`,
      "-s",
      addon,
    ]),
    { stdout: "ignore", stderr: "ignore" },
  );
  for (let i = 0; i < 300; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) break;
    await Bun.sleep(20);
  }
  const spawnToListenMs = performance.now() - t0;
  const fake = {
    pid: proc.pid,
    kill: (sig?: NodeJS.Signals | number) => proc.kill(sig as number),
    exited: proc.exited,
  } as unknown as ProxyProcess;
  return {
    name: "mitmproxy",
    kind: "proxy",
    proxy: fake,
    port,
    ca: join(dir, "mitmproxy-ca-cert.pem"),
    spawnToListenMs,
  };
}

async function startTarget(name: string, bin: string): Promise<Target & { spawnToListenMs: number }> {
  if (name === "mitmproxy") return startMitm();
  const port = await freePort();
  const t0 = performance.now();
  const proxy = await startProxy({
    bin,
    config: { listen: { port }, metadata: { proxy_id: "bench" } },
    env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
    hosts,
  });
  const spawnToListenMs = performance.now() - t0;
  // audit and log lines read and dropped from here on (the pipes never fill; the harness neither keeps
  // nor splits the lines of a run under load: that cost CPU on the machine being measured)
  proxy.discardOutput();
  return { name, kind: "proxy", proxy, port, ca: join(proxy.home, ".config/clef/proxy/ca.crt"), spawnToListenMs };
}

function clientArgs(t: Target, url: string, resolve = "api.test=127.0.0.2"): string[] {
  if (t.kind === "direct") return ["-url", url, "-ca", pki.caPath, "-resolve", resolve];
  return ["-url", url, "-proxy", `http://x:${TOKEN}@127.0.0.1:${t.port}`, "-ca", t.ca!];
}

/** A cell's throughput, latency and errors as every cell line prints them. */
function figures(res: Load): string {
  return `${res.rps.toFixed(0).padStart(7)} req/s  p50 ${(res.p50_us / 1000).toFixed(2)} ms  p99 ${(res.p99_us / 1000).toFixed(2)} ms  errors ${res.errors}`;
}

/**
 * One load through `t`: the proxy's highest VmRSS sampled every `everyMs` while it ran
 * (`rss_max_mib`, proxies only) and the CPU time the hypervisor stole meanwhile (`steal_pct`).
 */
async function measuredLoad(t: Target, args: string[], everyMs = 50): Promise<Load & { steal_pct: number }> {
  let max = 0;
  const sampler = t.proxy ? setInterval(() => (max = Math.max(max, rssKiB(pidOf(t.proxy!)).rss)), everyMs) : undefined;
  const ticks = cpuTicks();
  const res = await loadgen(args);
  const steal_pct = stealSince(ticks);
  if (sampler) {
    clearInterval(sampler);
    res.rss_max_mib = max / 1024;
  }
  return Object.assign(res, { steal_pct });
}

async function stopTarget(t: Target): Promise<void> {
  if (!t.proxy) return;
  t.proxy.kill("SIGKILL");
  await t.proxy.exited;
}

// ---------------------------------------------------------------------------------------------
// The run

interface TargetResult {
  cells: Record<string, Load>;
  /** The held cell: /hold requests in flight at the silent upstream when the c=16 cell began. */
  held_at_upstream?: number;
  spawn_to_listening_ms?: number;
  idle_rss_mib?: number;
  peak_rss_mib?: number;
  mint_first_request_p50_us?: number;
  mint_first_request_p99_us?: number;
  stream?: {
    mib_per_s: number;
    rss_growth_mib: number;
    bytes: number;
    rounds?: Array<{ mib_per_s: number; rss_growth_mib: number; steal_pct: number }>;
  };
  version_cold_start_ms?: number;
}

const results: Record<string, TargetResult> = {};
const URL = `https://api.test:${upPort}/`;
const cells: Array<{ c: number; keepalive: boolean }> = [];
for (const keepalive of [true, false]) for (const c of [1, 16, 64]) cells.push({ c, keepalive });
const cellName = (c: number, ka: boolean) => `c${c}-${ka ? "keepalive" : "newconn"}`;

const targets: Array<{ name: string; bin?: string }> = [{ name: "direct" }];
const SKIP_REF = process.env.BENCH_SKIP_REF === "1"; // profiling ours alone
// Both binaries run from copies written the same way, here and now: how an executable's file was
// written (bun's compile wrote ours, npm's extraction the reference, long ago) decides how the page
// cache holds it, and that moved each one's start-up by itself — `--version` of the build's own file
// 10.3 ms against 8.75 from a copy, the reference's 5.3 against 4.9 (docs/PERFORMANCE.md, tenth pass).
// A user's two binaries are both written by npm.
function runCopy(bin: string, name: string): string {
  const copy = join(work, name);
  copyFileSync(bin, copy);
  chmodSync(copy, 0o755);
  return copy;
}
if (REF_BIN && !SKIP_REF) targets.push({ name: "reference", bin: runCopy(REF_BIN, "reference-clef-proxy") });
else if (!REF_BIN) console.log("NOTICE: reference binary not installed (optional dependency): no ratios against it");
targets.push({ name: "ours", bin: runCopy(OUR_BIN, "clef-proxy") });
const MITM = Bun.which("mitmdump");
if (MITM && process.env.BENCH_SKIP_MITM !== "1") targets.push({ name: "mitmproxy", bin: MITM });
else if (!MITM) console.log("NOTICE: mitmdump not installed (apt-get install mitmproxy): no mitmproxy column");

// Every target is started first and kept running up to its held cell; each step runs for every
// target in turn, so that a slow phase of the shared VM (which can last a minute: docs/PERFORMANCE.md, fourth pass)
// hits the targets of a cell alike instead of one target's whole column. The ratios are what the
// targets are about.
interface Running {
  spec: { name: string; bin?: string };
  r: TargetResult;
  t: Target;
}
const running: Running[] = [];
for (const spec of targets) {
  console.log(`\n== ${spec.name}: start`);
  const r: TargetResult = { cells: {} };
  results[spec.name] = r;
  let t: Target;
  if (!spec.bin) t = { name: "direct", kind: "direct" };
  else {
    // spawn → listening, a few times (the last process is kept for the load)
    const times: number[] = [];
    let started: Awaited<ReturnType<typeof startTarget>> | undefined;
    const slow = spec.name === "mitmproxy"; // a Python program: start-up in the hundreds of ms
    for (let i = 0; i < (QUICK || slow ? 1 : 5); i++) {
      if (started) await stopTarget(started);
      started = await startTarget(spec.name, spec.bin);
      times.push(started.spawnToListenMs);
    }
    t = started!;
    r.spawn_to_listening_ms = median(times.sort((a, b) => a - b));
    if (slow) r.version_cold_start_ms = median(measure(spec.bin, 3));
  }
  running.push({ spec, r, t });
}

// --version cold start, once every target is up and idle, the binaries taking turns run by run: each
// series used to be taken right after its own target started, seconds apart, so that a busy moment of
// the shared VM (±15 % within a run) fell on one series and moved the ratio by itself
await Bun.sleep(1000);
const probed = running.filter(({ spec }) => spec.bin && spec.name !== "mitmproxy");
measureInterleaved(
  probed.map(({ spec }) => spec.bin!),
  QUICK ? 3 : 20,
).forEach((times, k) => {
  probed[k]!.r.version_cold_start_ms = median(times);
});

// idle RSS once every proxy has been idle for seconds: ours settles ≈4 s after listening (the pages
// of the executable its timers and first collections touch come back after the page-out that follows
// start-up: ≈12 MiB at 0.3 s, ≈17.5 from 4 s on, measured alone), and the reference's is flat
await Bun.sleep(3000);
for (const { r, t } of running) if (t.proxy) r.idle_rss_mib = rssKiB(pidOf(t.proxy)).rss / 1024;

// warm-up (and the first leaf for api.test), the same for every target: keep-alive requests, then
// new connections
for (const { t } of running) {
  await loadgen([...clientArgs(t, URL), "-c", "16", "-d", `${WARM_SECONDS * 0.8}s`]);
  await loadgen([...clientArgs(t, URL), "-c", "16", "-d", `${WARM_SECONDS * 0.2}s`, "-keepalive=false"]);
}

console.log(`\n== cells (each cell for every target in turn, ${ROUNDS} round${ROUNDS > 1 ? "s" : ""})`);
const cellRuns = new Map<string, Load[]>(); // `${target}\t${cell}` → its rounds
for (let round = 1; round <= ROUNDS; round++) {
  for (const { c, keepalive } of cells) {
    for (const { spec, t } of round % 2 ? running : [...running].reverse()) {
      // the proxy's RSS sampled while the cell runs (which cell drives the peak)
      const res = await measuredLoad(t, [
        ...clientArgs(t, URL),
        "-c",
        String(c),
        "-d",
        CELL,
        `-keepalive=${keepalive}`,
      ]);
      const key = `${spec.name}\t${cellName(c, keepalive)}`;
      cellRuns.set(key, [...(cellRuns.get(key) ?? []), res]);
      console.log(
        `  ${ROUNDS > 1 ? `r${round} ` : ""}${cellName(c, keepalive).padEnd(16)} ${spec.name.padEnd(10)} ${figures(res)}${res.first_error ? ` (${res.first_error})` : ""}${res.rss_max_mib !== undefined ? `  RSS ≤ ${res.rss_max_mib.toFixed(0)} MiB` : ""}  steal ${res.steal_pct.toFixed(0)} %`,
      );
    }
  }
}
for (const { spec, r } of running)
  for (const { c, keepalive } of cells)
    r.cells[cellName(c, keepalive)] = combine(cellRuns.get(`${spec.name}\t${cellName(c, keepalive)}`)!);
for (const { r, t } of running) if (t.proxy) r.peak_rss_mib = rssKiB(pidOf(t.proxy)).hwm / 1024;

console.log("\n== first requests to new hosts (each target in turn)");
for (const { spec, r, t } of running) {
  console.log(`  ${spec.name}`);
  if (t.proxy) {
    // first request to never-seen hosts: each name needs a new leaf (passthrough hosts: no secret)
    const offset = MINT_HOSTS * ["reference", "ours", "mitmproxy"].indexOf(spec.name);
    const urls = mintNames.slice(offset, offset + MINT_HOSTS).map((n) => `https://${n}:${upPort}/`);
    const mint = await loadgen([...clientArgs(t, URL), "-urls", urls.join(","), "-keepalive=false"]);
    r.mint_first_request_p50_us = mint.p50_us;
    r.mint_first_request_p99_us = mint.p99_us;
    console.log(
      `  mint (${MINT_HOSTS} new hosts)  p50 ${(mint.p50_us / 1000).toFixed(2)} ms  p99 ${(mint.p99_us / 1000).toFixed(2)} ms  errors ${mint.errors}`,
    );
  }
}
// one large streamed body per target and round, RSS sampled while it flows: the median MiB/s, the
// largest RSS growth (the first large body of a process is the one that grew most, fourth pass)
console.log(`\n== stream (each target in turn, ${ROUNDS} round${ROUNDS > 1 ? "s" : ""})`);
const streams = new Map<
  string,
  Array<{ mib_per_s: number; rss_growth_mib: number; bytes: number; steal_pct: number }>
>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const { spec, t } of round % 2 ? running : [...running].reverse()) {
    const before = t.proxy ? rssKiB(pidOf(t.proxy)).rss : 0;
    const res = await measuredLoad(
      t,
      [...clientArgs(t, `https://api.test:${upPort}/bytes/${STREAM_BYTES}`), "-n", "1"],
      25,
    );
    const one = {
      mib_per_s: res.bytes / 1048576 / res.seconds,
      rss_growth_mib: Math.max(0, (res.rss_max_mib ?? 0) - before / 1024),
      bytes: res.bytes,
      steal_pct: res.steal_pct,
    };
    streams.set(spec.name, [...(streams.get(spec.name) ?? []), one]);
    console.log(
      `  ${ROUNDS > 1 ? `r${round} ` : ""}${spec.name.padEnd(10)} stream ${(STREAM_BYTES / 1048576).toFixed(0)} MiB   ${one.mib_per_s.toFixed(0)} MiB/s  RSS growth ${one.rss_growth_mib.toFixed(1)} MiB  (${res.bytes} bytes)  steal ${one.steal_pct.toFixed(0)} %`,
    );
  }
}
for (const { spec, r } of running) {
  const runs = streams.get(spec.name)!;
  r.stream = {
    mib_per_s: medianOf(runs.map((x) => x.mib_per_s)),
    rss_growth_mib: Math.max(...runs.map((x) => x.rss_growth_mib)),
    bytes: runs[0]!.bytes,
    ...(runs.length > 1
      ? {
          rounds: runs.map((x) => ({
            mib_per_s: x.mib_per_s,
            rss_growth_mib: x.rss_growth_mib,
            steal_pct: x.steal_pct,
          })),
        }
      : {}),
  };
}
// Last, the held cells, each target stopped after its own: the reference does not cancel the requests
// it held in TLS tunnels when their client goes away (docs/CONTRACT.md §20.3), and with it still
// running ours' held cell came out at 104, 72 and 63 % of undisturbed (104 % in a run without it;
// the reference sat at 0 % CPU meanwhile, so the cause is not established). Stopped, no target's
// held requests remain at the silent upstream when the next one's cell runs, as in the old order.
console.log("\n== held (each target in turn, stopped after its cell)");
for (const { spec, r, t } of running) {
  console.log(`  ${spec.name}`);
  // held: HELD requests to a silent upstream (another host and port) stay open through the target
  // while the c=16 keep-alive cell runs to the normal upstream; compared with the undisturbed cell
  {
    // The undisturbed c=16 cell again, right before the held one: the target compares the two cells
    // seconds apart. (Against the c=16 cells of the rounds, four minutes earlier, it measured the
    // host's drift as well: in three runs of the eighth pass direct's own ratio — no proxy to disturb
    // — came out at 63–76 %, and the reference's and ours fell with it; docs/PERFORMANCE.md.)
    const pre = await measuredLoad(t, [...clientArgs(t, URL), "-c", "16", "-d", CELL]);
    r.cells["c16-keepalive-preheld"] = pre;
    console.log(`  c16-keepalive (just before) ${figures(pre)}  steal ${pre.steal_pct.toFixed(0)} %`);
    // what the silent upstream still holds from earlier targets is not this target's (nothing,
    // normally: each target is stopped after its held cell, which ends what it held)
    const before = await holding();
    const held = Bun.spawn(
      [
        LOADGEN,
        "load",
        ...clientArgs(t, `https://slow.test:${slowPort}/hold/600`, "slow.test=127.0.0.3"),
        "-c",
        String(HELD),
        "-n",
        String(HELD),
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    await Bun.sleep(QUICK ? 1000 : 3000); // every tunnel opened, the requests in (or queued for) the upstream
    r.held_at_upstream = (await holding()) - before;
    const res = await measuredLoad(t, [...clientArgs(t, URL), "-c", "16", "-d", CELL]);
    held.kill("SIGKILL");
    await held.exited;
    r.cells["c16-keepalive-held"] = res;
    console.log(
      `  c16-keepalive-held ${figures(res)}  (${HELD} held, ${r.held_at_upstream} at the upstream)${res.rss_max_mib !== undefined ? `  RSS ≤ ${res.rss_max_mib.toFixed(0)} MiB` : ""}  steal ${res.steal_pct.toFixed(0)} %`,
    );
    await stopTarget(t); // (the reference's held requests end with it)
    for (let i = 0; i < 50 && (await holding()) > before; i++) await Bun.sleep(100); // the upstream let them go
  }
}

upstream.kill();
slowUpstream.kill();
agent.stop();

// ---------------------------------------------------------------------------------------------
// Report

const ref = results.reference;
const ours = results.ours!;
const direct = results.direct!;
const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
const f = (x: number | undefined, d = 1) => (x === undefined ? "–" : x.toFixed(d));

const mitm = results.mitmproxy;
const cols: Array<[string, TargetResult | undefined]> = [
  ["direct", direct],
  ["reference", ref],
  ["ours", ours],
  ...(mitm ? [["mitmproxy", mitm] as [string, TargetResult]] : []),
];
const rows: string[][] = [["metric", ...cols.map(([n]) => n), "ours/ref"]];
function row(label: string, get: (t: TargetResult) => number | undefined, digits: number, withDirect = true): void {
  rows.push([
    label,
    ...cols.map(([n, t]) => (t && (withDirect || n !== "direct") ? f(get(t), digits) : "–")),
    f(ratio(get(ours), ref ? get(ref) : undefined), 2),
  ]);
}
for (const { c, keepalive } of cells) {
  const k = cellName(c, keepalive);
  row(`${k} req/s`, (t) => t.cells[k]?.rps, 0);
  row(`${k} p50 ms`, (t) => (t.cells[k] ? t.cells[k]!.p50_us / 1000 : undefined), 2);
  row(`${k} p99 ms`, (t) => (t.cells[k] ? t.cells[k]!.p99_us / 1000 : undefined), 2);
}
const rps = (t: TargetResult | undefined, cell: string) => t?.cells[cell]?.rps;
/** The held cell against the undisturbed c=16 cell run just before it (the rounds' cells when absent: older results). */
const held = (t: TargetResult) =>
  rps(t, "c16-keepalive-held")! / (rps(t, "c16-keepalive-preheld") ?? rps(t, "c16-keepalive")!);
row("c16-keepalive-held req/s", (t) => t.cells["c16-keepalive-held"]?.rps, 0);
row("c16-keepalive just before held req/s", (t) => t.cells["c16-keepalive-preheld"]?.rps, 0);
row("held / undisturbed c16 %", (t) => (t.cells["c16-keepalive-held"] ? 100 * held(t) : undefined), 0);
row(
  "first request, new host p50 ms",
  (t) => (t.mint_first_request_p50_us !== undefined ? t.mint_first_request_p50_us / 1000 : undefined),
  2,
  false,
);
row("--version cold start ms", (t) => t.version_cold_start_ms, 1, false);
row("spawn → listening ms", (t) => t.spawn_to_listening_ms, 1, false);
row("idle RSS MiB", (t) => t.idle_rss_mib, 1, false);
row("peak RSS under load MiB", (t) => t.peak_rss_mib, 1, false);
row(`stream ${(STREAM_BYTES / 1048576).toFixed(0)} MiB MiB/s`, (t) => t.stream?.mib_per_s, 0);
row("stream RSS growth MiB", (t) => t.stream?.rss_growth_mib, 1, false);

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const table = rows.map(
  (r) => "| " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ") + " |",
);
table.splice(1, 0, "|" + widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|");

// Targets: ratios within this run. Issue 19 (the current bar), then issue 7's (kept: regressions).
const added = (t: TargetResult | undefined) =>
  t ? t.cells["c1-keepalive"]!.p50_us - direct.cells["c1-keepalive"]!.p50_us : undefined;
/**
 * Each round's ratio a/b (the two cells ran seconds apart in that round), after a target's value:
 * how far the ratio moved within the run. The verdict stays on the ratio of the medians.
 */
function perRound(a: number[] | undefined, b: number[] | undefined, scale = 1): string {
  if (!a || !b || a.length < 2 || a.length !== b.length) return "";
  return ` (rounds: ${a.map((x, i) => ((scale * x) / b[i]!).toFixed(2)).join(", ")})`;
}
const roundsOf = (t: TargetResult | undefined, cell: string, key: "rps" | "p99_us") =>
  t?.cells[cell]?.rounds?.map((r) => r[key]);
const streamRounds = (t: TargetResult | undefined) => t?.stream?.rounds?.map((x) => x.mib_per_s);

const targetsMet: Array<{ target: string; value: string; met: boolean | null }> = [
  {
    target: "[19] keep-alive c=16 ≥ 5× reference",
    value:
      f(ratio(rps(ours, "c16-keepalive"), rps(ref, "c16-keepalive")), 2) +
      "×" +
      perRound(roundsOf(ours, "c16-keepalive", "rps"), roundsOf(ref, "c16-keepalive", "rps")),
    met: ref ? rps(ours, "c16-keepalive")! >= 5 * rps(ref, "c16-keepalive")! : null,
  },
  {
    target: "[19] keep-alive c=16 ≥ 25 % of direct",
    value:
      f((100 * rps(ours, "c16-keepalive")!) / rps(direct, "c16-keepalive")!, 1) +
      " %" +
      perRound(roundsOf(ours, "c16-keepalive", "rps"), roundsOf(direct, "c16-keepalive", "rps"), 100),
    met: rps(ours, "c16-keepalive")! >= 0.25 * rps(direct, "c16-keepalive")!,
  },
  {
    target: `[19] ${(STREAM_BYTES / 1048576).toFixed(0)} MiB stream ≥ 1.5× reference's MiB/s`,
    value:
      f(ratio(ours.stream?.mib_per_s, ref?.stream?.mib_per_s), 2) +
      "×" +
      perRound(streamRounds(ours), streamRounds(ref)),
    met: ref ? ours.stream!.mib_per_s >= 1.5 * ref.stream!.mib_per_s : null,
  },
  {
    target: `[19] ${(STREAM_BYTES / 1048576).toFixed(0)} MiB stream RSS growth ≤ 16 MiB`,
    value: `${f(ours.stream?.rss_growth_mib)} MiB`,
    met: ours.stream!.rss_growth_mib <= 16,
  },
  {
    target: "[19] --version ≤ 2× reference",
    value: f(ratio(ours.version_cold_start_ms, ref?.version_cold_start_ms), 2) + "×",
    met: ref ? ours.version_cold_start_ms! <= 2 * ref.version_cold_start_ms! : null,
  },
  { target: "[19] idle RSS ≤ 32 MiB", value: `${f(ours.idle_rss_mib)} MiB`, met: ours.idle_rss_mib! <= 32 },
  {
    target: "[19] peak RSS under load ≤ 100 MiB",
    value: `${f(ours.peak_rss_mib)} MiB`,
    met: ours.peak_rss_mib! <= 100,
  },
  {
    target: "[19] c=64 new-connection p99 ≤ 0.7× reference",
    value:
      f(ratio(ours.cells["c64-newconn"]?.p99_us, ref?.cells["c64-newconn"]?.p99_us), 2) +
      "×" +
      perRound(roundsOf(ours, "c64-newconn", "p99_us"), roundsOf(ref, "c64-newconn", "p99_us")),
    met: ref ? ours.cells["c64-newconn"]!.p99_us <= 0.7 * ref.cells["c64-newconn"]!.p99_us : null,
  },
  {
    target: `[19] c=16 keep-alive beside ${HELD} held requests ≥ 90 % of undisturbed`,
    value: `${f(100 * held(ours), 0)} % (${ours.held_at_upstream} at the silent upstream)`,
    met: held(ours) >= 0.9,
  },
  {
    target: "[7] p50 added latency (c=1 keep-alive, vs direct) ≤ reference's",
    value: `${f(added(ours)! / 1000, 3)} ms vs ${f(ref ? added(ref)! / 1000 : undefined, 3)} ms`,
    met: ref ? added(ours)! <= added(ref)! : null,
  },
  {
    target: "[7] new-connection req/s ≥ reference (c=16)",
    value: f(ratio(rps(ours, "c16-newconn"), rps(ref, "c16-newconn")), 2) + "×",
    met: ref ? rps(ours, "c16-newconn")! >= rps(ref, "c16-newconn")! : null,
  },
];

const cpu = (() => {
  try {
    return /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "";
  } catch {
    return "";
  }
})();
console.log(
  `\n${new Date().toISOString()}  ${process.platform}-${process.arch}  ${navigator.hardwareConcurrency} cpus  ${cpu}  cells ${CELL}\n`,
);
console.log(table.join("\n"));
const steals = [
  ...[...cellRuns.values()].flat().map((r) => r.steal_pct ?? 0),
  ...[...streams.values()].flat().map((x) => x.steal_pct),
  ...running.map(({ r }) => r.cells["c16-keepalive-held"]?.steal_pct ?? 0),
  ...running.map(({ r }) => r.cells["c16-keepalive-preheld"]?.steal_pct ?? 0),
];
const stealSummary = {
  median_pct: medianOf(steals),
  max_pct: Math.max(...steals),
};
console.log(
  `\nCPU stolen by the hypervisor during the load cells, streams and held cells: median ${stealSummary.median_pct.toFixed(0)} %, highest ${stealSummary.max_pct.toFixed(0)} % of the machine` +
    (stealSummary.max_pct >= 10 ? " — the host was busy: ratios of this run are suspect" : ""),
);
console.log("\nTargets:");
for (const t of targetsMet)
  console.log(`  ${t.met === null ? "n/a " : t.met ? "MET " : "MISS"}  ${t.target}: ${t.value}`);

const report = {
  date: new Date().toISOString(),
  machine: { platform: process.platform, arch: process.arch, cpus: navigator.hardwareConcurrency, cpu },
  bun: Bun.version,
  cell_seconds: QUICK ? 0.5 : SECONDS,
  rounds: ROUNDS,
  steal: stealSummary,
  quick: QUICK,
  results,
  targets: targetsMet,
  table: table.join("\n"),
};
const outFile = process.env.BENCH_OUT ?? join(ROOT, "bench/results", QUICK ? "quick.json" : "latest.json");
mkdirSync(resolve(outFile, ".."), { recursive: true });
writeFileSync(outFile, JSON.stringify(report, null, 2) + "\n");
console.log(`\nwritten ${outFile}`);
if (existsSync(work)) await $`rm -rf ${work}`.quiet();

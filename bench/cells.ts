// Quick A/B tool for profiling work (not the bench of record: that is `npm run bench`, bench/run.ts).
// Starts the bench's Go upstream and the scripted agent once, then for each proxy binary given runs
// the named cells, interleaved round by round, and prints req/s, p50/p99, the proxy's CPU time per
// request (utime+stime from /proc) and its highest RSS.
//
//   bun bench/cells.ts [--rounds 2] [--seconds 4] [--cells c16-keepalive,stream] [--prof DIR] [--syscalls] [--instr] [--trace PREFIX] BIN...
//
// BIN is a compiled binary, `ref` (the reference), or `src` (bun src/cli/main.ts; with --prof DIR
// under `bun --cpu-prof`). Cells: c<N>-keepalive, c<N>-newconn, stream, held (1,000 requests held by
// a silent upstream while c16-keepalive runs), idle (idle RSS).
import { $ } from "bun";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildLoadgen, serveUpstream } from "./loadgen-process.ts";

const ROOT = resolve(import.meta.dir, "..");
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = args[i + 1]!;
  args.splice(i, 2);
  return v;
};
const ROUNDS = Number(opt("rounds", "2"));
const SECONDS = Number(opt("seconds", "4"));
const CELLS = opt("cells", "c16-keepalive").split(",");
const PROF = opt("prof", "");
const WARM = opt("warm", "4"); // warm-up seconds at c=16 (the JIT compiles for ≈4 s at this load; bench/run.ts warms 5 s)
// extra environment for the proxies: --env K=V,K2=V2 (e.g. BUN_JSC_* options); a BIN of the form
// NAME@K=V,K2=V2 sets them for that one binary
const ENV = Object.fromEntries(
  opt("env", "")
    .split(",")
    .filter(Boolean)
    .map((kv) => kv.split("=") as [string, string]),
);
const SYSCALLS = args.includes("--syscalls") ? (args.splice(args.indexOf("--syscalls"), 1), true) : false;
// --instr: instructions the proxy retires per request, user and kernel (perf stat's hardware counters,
// where the machine has them): a measure of work that does not move with the VM's speed, which on a
// shared 2-core VM varies ±20 % from one minute to the next
const INSTR = args.includes("--instr") ? (args.splice(args.indexOf("--instr"), 1), true) : false;
const PERF = opt("perf", ""); // perf record -p <proxy> during each cell, into PERF.<bin>.<cell>
// --trace PREFIX: the load generator writes each request's phases (connect, CONNECT, TLS, first byte;
// bench/loadgen's -trace) of the c<N> cells to PREFIX.<cell>.<n> — where a tail's time went
const TRACE = opt("trace", "");
let traced = 0;
// --smaps: at the cell's highest RSS, what holds it (the proxy's mappings grouped by kind, MiB)
const SMAPS = args.includes("--smaps") ? (args.splice(args.indexOf("--smaps"), 1), true) : false;
const BINS = args.length ? args : ["bin"];

const work = join(tmpdir(), `clef-cells-${process.pid}`);
mkdirSync(work, { recursive: true });
const LOADGEN = await buildLoadgen(work);
const { OUR_BIN, REF_BIN } = await import("../test/helpers/bin.ts");
const { startAgent, manifest, agentEnv } = await import("../test/helpers/agent.ts");
const { startProxy, freePort } = await import("../test/helpers/proxy.ts");
const { makeTestPki } = await import("../test/helpers/tls.ts");

const TOKEN = "bench-token-0123456789";
const pki = makeTestPki(["api.test", "slow.test"], ["127.0.0.2", "127.0.0.3"]);

const up = await serveUpstream(LOADGEN, "127.0.0.2:0", pki);
const slow = await serveUpstream(LOADGEN, "127.0.0.3:0", pki);
const agent = startAgent({
  services: manifest(
    [
      { name: "api", host: "api.test", auth: { scheme: "bearer", credential: "bench/KEY" } },
      { name: "slow", host: "slow.test", auth: { scheme: "bearer", credential: "bench/KEY" } },
    ],
    [],
  ),
  secrets: { "bench/KEY": "bench-secret-value" },
});
const hosts = { "api.test": "127.0.0.2", "slow.test": "127.0.0.3" };

/** CPU seconds per thread name (main JS thread, fetch's HTTP thread, GC helpers…). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        const st = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
        const name = st.slice(st.indexOf("(") + 1, st.lastIndexOf(")"));
        const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
        out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
      } catch {}
    }
  } catch {}
  return out;
}

function threadDelta(a: Map<string, number>, b: Map<string, number>, secs: number): string {
  return [...b]
    .map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const)
    .filter(([, v]) => v / secs > 0.02)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${k}:${((v / secs) * 100).toFixed(0)}%`)
    .join(" ");
}

/** Busy and total jiffies of the whole machine (/proc/stat). */
function machine(): { busy: number; total: number; steal: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total, steal: f[7] ?? 0 };
}

function rssParts(pid: number): { anon: number; file: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    return {
      anon: Number(/RssAnon:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024,
      file: Number(/RssFile:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024,
    };
  } catch {
    return { anon: 0, file: 0 };
  }
}

/** RSS by kind of mapping: anonymous, the executable's (by permissions), [heap]/[stack]/…, other files. */
function smapsGroups(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return "";
  }
  const exe = (() => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!;
    } catch {
      return "";
    }
  })();
  const groups = new Map<string, number>();
  let kind = "";
  for (const l of text.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (head) {
      const name = head[2]!;
      kind =
        name === ""
          ? "anon"
          : name.startsWith("[")
            ? name.replace(/:.*/, "")
            : exe !== "" && (name === exe || name.endsWith(`/${exe.split("/").pop()}`))
              ? `exe(${head[1]})`
              : "other-file";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(l);
    if (rss) groups.set(kind, (groups.get(kind) ?? 0) + Number(rss[1]) / 1024);
  }
  return [...groups]
    .sort((a, b) => b[1] - a[1])
    .filter(([, v]) => v >= 0.5)
    .map(([k, v]) => `${k}:${v.toFixed(1)}`)
    .join(" ");
}

function procStat(pid: number): { cpu: number; rss: number; hwm: number } {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]);
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (re: RegExp) => Number(re.exec(s)?.[1] ?? 0) / 1024;
    return { cpu: ticks / 100, rss: kib(/VmRSS:\s+(\d+)/), hwm: kib(/VmHWM:\s+(\d+)/) };
  } catch {
    return { cpu: 0, rss: 0, hwm: 0 };
  }
}

async function start(spec: string) {
  const [bin, envSpec] = spec.split("@") as [string, string | undefined];
  const binEnv = Object.fromEntries(
    (envSpec ?? "")
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=") as [string, string]),
  );
  const port = await freePort();
  let b = bin === "bin" ? OUR_BIN : bin === "ref" ? REF_BIN! : bin;
  let argv: string[] | undefined;
  const cfgPath = join(work, `cfg-${port}.json`);
  writeFileSync(cfgPath, JSON.stringify({ listen: { port }, metadata: { proxy_id: "bench" } }));
  if (bin === "src") {
    b = process.execPath;
    argv = [
      ...(PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}`] : []),
      ...(process.env.CELLS_PRELOAD ? ["--preload", process.env.CELLS_PRELOAD] : []),
      join(ROOT, "src/cli/main.ts"),
      "serve",
      "--config",
      cfgPath,
    ];
  } else if (bin.startsWith("floor-")) {
    b = process.execPath;
    argv = [
      ...(PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}`] : []), // profiled as `src` is
      join(ROOT, "bench/floor-proxy.ts"),
      bin.slice(6),
      "serve",
      "--config",
      cfgPath,
    ];
  } else argv = ["serve", "--config", cfgPath];
  const floor = bin.startsWith("floor-")
    ? { FLOOR_CERT: pki.certPath, FLOOR_KEY: pki.keyPath, FLOOR_UPSTREAM: "api.test=127.0.0.2" }
    : {};
  const p = await startProxy({
    bin: b,
    args: argv,
    env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath, ...floor, ...ENV, ...binEnv },
    hosts,
  });
  p.discardOutput(); // read and dropped (as bench/run.ts)
  return { p, port, ca: bin.startsWith("floor-") ? pki.caPath : join(p.home, ".config/clef/proxy/ca.crt") };
}

async function loadgen(a: string[]) {
  const p = Bun.spawn([LOADGEN, "load", ...a], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`loadgen exited ${code}: ${err}`);
  return JSON.parse(out) as {
    rps: number;
    p50_us: number;
    p99_us: number;
    requests: number;
    errors: number;
    bytes: number;
    seconds: number;
    first_error?: string;
  };
}

type Started = Awaited<ReturnType<typeof start>>;
const client = (s: Started, url: string) => [
  "-url",
  url,
  "-proxy",
  `http://x:${TOKEN}@127.0.0.1:${s.port}`,
  "-ca",
  s.ca,
];

async function cell(s: Started, name: string): Promise<string> {
  const pid = s.p.pid;
  let max = 0;
  let maxAnon = 0;
  let maxFile = 0;
  const parts0 = rssParts(pid);
  let atPeak = "";
  const iv = setInterval(() => {
    const rss = procStat(pid).rss;
    if (SMAPS && rss > max) atPeak = smapsGroups(pid);
    max = Math.max(max, rss);
    const p = rssParts(pid);
    maxAnon = Math.max(maxAnon, p.anon);
    maxFile = Math.max(maxFile, p.file);
  }, 25);
  let c0 = procStat(pid);
  const t0 = threadCpu(pid);
  const m0 = machine();
  const self0 = process.cpuUsage();
  const up0 = procStat(up.proc.pid).cpu;
  const perf = PERF
    ? Bun.spawn(["perf", "record", "-q", "-F", "999", "-g", "-p", String(pid), "-o", `${PERF}.${name}.data`], {
        stdout: "ignore",
        stderr: "ignore",
      })
    : null;
  const events = [
    ...(SYSCALLS
      ? [
          "raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait2,syscalls:sys_enter_futex,context-switches,major-faults,minor-faults",
        ]
      : []),
    ...(INSTR ? ["instructions:u,instructions:k"] : []),
  ].join(",");
  // counted from here (the held cell starts it again once its 1,000 tunnels are open)
  const count = () =>
    events
      ? Bun.spawn(["perf", "stat", "-x", ",", "-e", events, "-p", String(pid)], { stdout: "ignore", stderr: "pipe" })
      : null;
  let stat = count();
  let line = "";
  let held: ReturnType<typeof Bun.spawn> | null = null; // the held cell's 1,000 requests, ended after the counts
  try {
    if (name === "idle") {
      await Bun.sleep(1000);
      const p = rssParts(pid);
      const st = procStat(pid);
      // VmHWM: the highest RSS since the process started (bench/run.ts's "peak RSS under load")
      return `idle RSS ${st.rss.toFixed(1)} MiB (anon ${p.anon.toFixed(1)}, file ${p.file.toFixed(1)}; VmHWM so far ${st.hwm.toFixed(1)})`;
    }
    if (name === "stream") {
      const r = await loadgen([...client(s, `https://api.test:${up.port}/bytes/${100 * 1048576}`), "-n", "1"]);
      line = `${(r.bytes / 1048576 / r.seconds).toFixed(0)} MiB/s  RSS growth ${(max - c0.rss).toFixed(1)} MiB (anon +${(maxAnon - parts0.anon).toFixed(1)}, file +${(maxFile - parts0.file).toFixed(1)})`;
    } else if (name === "held") {
      // 1,000 requests to a silent upstream (held for the whole cell) beside c16 keep-alive
      held = Bun.spawn(
        [LOADGEN, "load", ...client(s, `https://slow.test:${slow.port}/hold/120`), "-c", "1000", "-n", "1000"],
        { stdout: "ignore", stderr: "ignore" },
      );
      await Bun.sleep(2000); // 1,000 tunnels opened, their requests in (or waiting for) fetch
      // CPU and instructions per request counted from here: the 1,000 handshakes are not the cell's
      stat?.kill("SIGKILL");
      await stat?.exited;
      stat = count();
      c0 = procStat(pid);
      const r = await loadgen([...client(s, `https://api.test:${up.port}/`), "-c", "16", "-d", `${SECONDS}s`]);
      const h = { requests: 1000, errors: 0, first_error: "" };
      const c1 = procStat(pid);
      line = `${r.rps.toFixed(0)} req/s p50 ${(r.p50_us / 1000).toFixed(2)} p99 ${(r.p99_us / 1000).toFixed(2)} err ${r.errors}  (held: ${h.requests} req, ${h.errors} err${h.first_error ? ` ${h.first_error}` : ""})  cpu ${(((c1.cpu - c0.cpu) * 1e6) / (r.requests || 1)).toFixed(0)} µs/req`;
    } else {
      const m = /^c(\d+)-(keepalive|newconn)$/.exec(name);
      if (!m) throw new Error(`unknown cell ${name}`);
      const r = await loadgen([
        ...client(s, `https://api.test:${up.port}/`),
        "-c",
        m[1]!,
        "-d",
        `${SECONDS}s`,
        `-keepalive=${m[2] === "keepalive"}`,
        ...(TRACE ? ["-trace", `${TRACE}.${name}.${++traced}`] : []),
      ]);
      const c1 = procStat(pid);
      const m1 = machine();
      const cores = navigator.hardwareConcurrency;
      const others = `machine ${(((m1.busy - m0.busy) / (m1.total - m0.total)) * cores * 100).toFixed(0)}% of ${cores * 100}% (steal ${(((m1.steal - m0.steal) / (m1.total - m0.total)) * cores * 100).toFixed(0)}%), upstream ${(((procStat(up.proc.pid).cpu - up0) / r.seconds) * 100).toFixed(0)}%, harness ${((((u) => u.user + u.system)(process.cpuUsage(self0)) / 1e6 / r.seconds) * 100).toFixed(0)}%`;
      line = `${others}  ${r.rps.toFixed(0).padStart(6)} req/s p50 ${(r.p50_us / 1000).toFixed(2)} p99 ${(r.p99_us / 1000).toFixed(2)} err ${r.errors}${r.first_error ? ` (${r.first_error})` : ""}  cpu ${(((c1.cpu - c0.cpu) * 1e6) / (r.requests || 1)).toFixed(0)} µs/req (${(((c1.cpu - c0.cpu) / r.seconds) * 100).toFixed(0)} %) [${threadDelta(t0, threadCpu(pid), r.seconds)}]`;
    }
  } finally {
    clearInterval(iv);
    if (stat) {
      stat.kill("SIGINT");
      const text = await new Response(stat.stderr).text();
      await stat.exited;
      const reqs = Number(/(\d+) req\/s/.exec(line)?.[1] ?? 0) * SECONDS || 1;
      const counts = text
        .trim()
        .split("\n")
        .map((l) => l.split(","))
        .filter((f) => /^\d+$/.test(f[0] ?? ""))
        .map((f) =>
          /^instructions/.test(f[2]!)
            ? `${f[2]}:${(Number(f[0]) / reqs / 1000).toFixed(0)}k`
            : `${f[2]!.replace(/^(raw_)?syscalls:sys_enter_?/, "") || "all"}:${(Number(f[0]) / reqs).toFixed(2)}`,
        )
        .join(" ");
      line += `  per req: ${counts}`;
    }
    if (perf) {
      perf.kill("SIGINT");
      await perf.exited;
    }
    if (held) {
      held.kill("SIGKILL");
      await held.exited;
    }
  }
  return `${line}  RSS≤${max.toFixed(0)}${SMAPS ? ` [at peak: ${atPeak}]` : ""}`;
}

const summary = new Map<string, { rps: number[]; cpu: number[]; instr: number[] }>();
function record(bin: string, c: string, line: string): void {
  const rps = /(\d+) req\/s/.exec(line);
  const cpu = /cpu (\d+) µs\/req/.exec(line);
  if (!rps || !cpu) return;
  const k = `${bin}\t${c}`;
  const e = summary.get(k) ?? { rps: [], cpu: [], instr: [] };
  e.rps.push(Number(rps[1]));
  e.cpu.push(Number(cpu[1]));
  const u = /instructions:u:(\d+)k/.exec(line);
  const kk = /instructions:k:(\d+)k/.exec(line);
  if (u && kk) e.instr.push(Number(u[1]) + Number(kk[1]));
  summary.set(k, e);
}
const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// every proxy started and warmed once, then the cells alternate between them round by round (so
// each sees the same background load on a shared machine)
const started: Array<{ bin: string; s: Started }> = [];
try {
  for (const bin of BINS) {
    const s = await start(bin);
    await loadgen([...client(s, `https://api.test:${up.port}/`), "-c", "16", "-d", `${WARM}s`]);
    started.push({ bin, s });
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const { bin, s } of round % 2 ? started : [...started].reverse()) {
      for (const c of CELLS) {
        const line = await cell(s, c);
        record(bin, c, line);
        console.log(`r${round} ${bin.padEnd(12).slice(-12)} ${c.padEnd(14)} ${line}`);
      }
    }
  }
  console.log("\nsummary (median [min–max]):");
  for (const [k, e] of summary) {
    const [bin, c] = k.split("\t");
    console.log(
      `  ${bin!.padEnd(12).slice(-12)} ${c!.padEnd(14)} ${med(e.rps).toFixed(0).padStart(6)} req/s [${Math.min(...e.rps)}–${Math.max(...e.rps)}]  cpu ${med(e.cpu).toFixed(0)} µs/req [${Math.min(...e.cpu)}–${Math.max(...e.cpu)}]${e.instr.length ? `  ${med(e.instr)}k instructions/req [${Math.min(...e.instr)}–${Math.max(...e.instr)}]` : ""}`,
    );
  }
} finally {
  for (const { s } of started) {
    s.p.kill("SIGTERM");
    await s.p.exited;
  }
  up.proc.kill();
  slow.proc.kill();
  agent.stop();
  await $`rm -rf ${work}`.quiet();
}

// Instructions per call of the pieces of one request's path, each on its own in a loop (perf stat's
// user-space instruction counter, where the machine has it): where bench/pipeline.ts's instructions
// go, in a unit that does not move with a shared VM's speed. Each piece runs N and N/10 times in a
// process of its own; the difference over 0.9·N calls is its cost, start-up and JIT warm-up taken
// out (the garbage a piece makes is collected in its loop, so its share of collection is included).
//
//   bun bench/pieces.ts [N=200000] [piece…]     (default: every piece)
//
// The same bench request as bench/pipeline.ts: a Go client's GET through a tunnel to api.test.
import { BENCH_MANIFEST, BENCH_REQUEST } from "./bench-request.ts";
import { encodeAuditLine } from "../src/audit/encode.ts";
import type { AuditEntry } from "../src/audit/types.ts";
import { RequestHeadParser } from "../src/http/h1-request.ts";
import { upstreamRequestHeaders } from "../src/http/hop-by-hop.ts";
import { createPolicy, decide } from "../src/intercept/decide.ts";
import type { TunnelFacts } from "../src/intercept/decide.ts";
import { upstreamUrl } from "../src/intercept/forward.ts";
import { requestLine } from "../src/intercept/request-scope.ts";
import { effectiveHost } from "../src/match/index.ts";
import { observeAuditEntry, observeManifest } from "../src/metrics/observe.ts";
import { series } from "../src/metrics/series.ts";

const policy = createPolicy(BENCH_MANIFEST);
const tunnel: TunnelFacts = { connect: { host: "api.test", port: "443" }, plain: false, sni: "api.test" };
const parsed = new RequestHeadParser(65536, 100).push(BENCH_REQUEST);
if (parsed.kind !== "ok") throw new Error("bench request does not parse");
const head = parsed.head;
const ID = "0a2c7b36-1f8e-4b8e-9d3e-2f1c6d8e9a0b";
const ENTRY: AuditEntry = {
  ts: 0n,
  requestId: ID,
  clientIp: "127.0.0.1",
  method: "GET",
  host: "api.test:443",
  path: "/",
  status: "injected",
  upstreamStatus: 200,
  latencyMs: 1,
  service: "api",
  credentialHandle: "bench/KEY",
  injectionPoint: "header:Authorization",
};
observeManifest(BENCH_MANIFEST, "bench");

// as src/intercept/prepare.ts declares it for the bench's service
const INJECTED_LINE = requestLine(
  "INFO",
  "injected",
  "bench",
  ["service", "api"],
  ["credential", "bench/KEY"],
  ["injection_point", "header:Authorization"],
);

let sink = 0;
const PIECES: Record<string, () => void> = {
  "empty loop": () => {},
  "parse the request head": () => {
    const r = new RequestHeadParser(65536, 100).push(BENCH_REQUEST);
    sink += r.kind.length;
  },
  decide: () => {
    sink += decide(head, tunnel, policy).kind.length;
  },
  "  of which effectiveHost": () => {
    const d = effectiveHost({
      connect: tunnel.connect,
      sni: tunnel.sni,
      hostHeader: "api.test:443",
      absolute: undefined,
      defaultPort: "443",
    });
    sink += d.ok ? 1 : 0;
  },
  "  of which the match": () => {
    sink += policy.matcher.match("api.test:443", null).kind.length;
  },
  "upstream header list (hop-by-hop, Host, request id)": () => {
    sink += upstreamRequestHeaders(head.headers, false, "api.test:443", ID).length;
  },
  "fetch's Headers from the request's fields": () => {
    const h = new Headers();
    for (const [k, v] of head.headers) h.append(k, v);
    h.append("Authorization", "Bearer x");
    sink += 1;
  },
  "upstream URL, parsed back (§18.20)": () => {
    sink += upstreamUrl("https", "127.0.0.2", 443, "/").length;
  },
  "request id (randomUUID)": () => {
    sink += crypto.randomUUID().length;
  },
  "INFO line (injected)": () => {
    sink += INJECTED_LINE.format(["api.test:443", "GET", "/", ID]).charCodeAt(1); // (a character read: the line flattened, as its write does)
  },
  "audit line (with its timestamp)": () => {
    // (the data path's timestamp: milliseconds with their fraction, as src/intercept/request-scope.ts takes it)
    const ts = performance.timeOrigin + performance.now();
    sink += encodeAuditLine({ ...ENTRY, ts }, { proxyId: "bench" }).charCodeAt(1); // (flattened, as written)
  },
  "the metrics of a request (requests_total, request_duration, upstream_ttfb, secret_cache)": () => {
    observeAuditEntry(ENTRY);
    series.upstreamTtfb.observe(undefined, 0.002);
    series.secretCache.inc({ result: "hit" });
  },
  "a timer set and cleared": () => {
    clearTimeout(setTimeout(() => {}, 30_000));
  },
  AbortController: () => {
    sink += new AbortController().signal.aborted ? 1 : 0;
  },
  "a small Response (the pipeline's fetch stub)": () => {
    sink += new Response("ok", { status: 200, headers: { "content-type": "text/plain", "content-length": "2" } })
      .status;
  },
};

const [, , child, count] = process.argv;
if (child === "--run") {
  // a child: run one piece `count` times
  const f = PIECES[process.env.PIECE!]!;
  for (let i = 0, n = Number(count); i < n; i++) f();
  if (sink === -1) console.log(sink);
  process.exit(0);
}

const N = Number(process.argv[2] ?? 200_000);
const names = process.argv.slice(3).length ? process.argv.slice(3) : Object.keys(PIECES);
async function instructions(piece: string, n: number): Promise<number> {
  const p = Bun.spawn(
    ["perf", "stat", "-x", ",", "-e", "instructions:u", process.execPath, import.meta.path, "--run", String(n)],
    { env: { ...process.env, PIECE: piece }, stdout: "ignore", stderr: "pipe" },
  );
  const err = await new Response(p.stderr).text();
  if ((await p.exited) !== 0) throw new Error(`perf stat failed for ${piece}: ${err}`);
  const m = /^(\d+),[^,]*,instructions/m.exec(err);
  if (!m) throw new Error(`no instruction count (does this machine have perf's counters?): ${err}`);
  return Number(m[1]);
}
console.log(`instructions per call (${N} − ${N / 10} calls, user space)`);
for (const name of names) {
  if (!PIECES[name]) throw new Error(`unknown piece ${name}; pieces: ${Object.keys(PIECES).join(", ")}`);
  const per = ((await instructions(name, N)) - (await instructions(name, N / 10))) / (N - N / 10);
  console.log(`${per.toFixed(0).padStart(8)}  ${name}`);
}

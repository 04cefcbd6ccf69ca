// The JS cost of one request through our data path, in process: no sockets, no TLS, fetch stubbed —
// what the proxy's own code costs per keep-alive request, measured without the network's noise (the
// 2-core VM is shared; cells of `npm run bench` vary by ±20 %). A client on one tunnel sends the
// bench's request (as Go's net/http does), the proxy answers through the real pipeline (head parser,
// decide, prepare with a cached secret, forward with the stubbed fetch, response writer, metrics,
// audit sink on stdout, INFO line on stderr), the client sends the next when the response is complete.
//
//   bun bench/pipeline.ts [requests=50000] [rounds=5] >/dev/null 2>&1   (results: see below)
//   bun --cpu-prof bench/pipeline.ts …                                  (a profile of our code alone)
//   perf stat -e instructions:u bun bench/pipeline.ts 50000 3 …         (minus a run of 2000 1, over
//                                                                        148,000: instructions per request)
//
// Results go to $PIPELINE_OUT (default stderr).
import type { Socket } from "bun";
import { BENCH_MANIFEST, BENCH_REQUEST } from "./bench-request.ts";
import { appendFileSync, openSync, writeSync } from "node:fs";
import { AsyncAuditWriter, StdoutDestination } from "../src/audit/sink.ts";
import { ProxySelector } from "../src/http/corporate-proxy.ts";
import { AuthFailures, tokenDigest } from "../src/intercept/auth.ts";
import { observeManifest, withAuditMetrics } from "../src/metrics/observe.ts";
import type { ConnHost } from "../src/intercept/client-loop.ts";
import { serveTunnel } from "../src/intercept/client-loop.ts";
import { Conn, type ConnData } from "../src/intercept/conn.ts";
import { createPolicy } from "../src/intercept/decide.ts";
import { createForwarder } from "../src/intercept/forward.ts";
import { cachedResolver } from "../src/netguard/index.ts";
import type { RequestScope } from "../src/intercept/request-scope.ts";
import type { Serving } from "../src/intercept/types.ts";

const N = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const out = process.env.PIPELINE_OUT ?? "/dev/stderr";
const say = (s: string) => appendFileSync(out, s + "\n");

// fetch answers at once as the Go upstream does ("ok", text/plain, Date)
const upstreamDate = new Date().toUTCString();
globalThis.fetch = (async (_url: string, init: RequestInit) => {
  void init.headers;
  return new Response("ok", {
    status: 200,
    headers: { "content-type": "text/plain", date: upstreamDate, "content-length": "2" },
  });
}) as unknown as typeof fetch;

// the audit writer as in the product, its destination a synchronous write to /dev/null (the product's
// asynchronous fs.write goes through the runtime's thread pool, which this loop would outrun)
const devNull = openSync("/dev/null", "w");
const writer = new AsyncAuditWriter(
  new StdoutDestination(async (_fd, buf, off, len) => writeSync(devNull, buf, off, len), false),
  { proxyId: "bench" },
);
// every entry observed by the metrics first, as serve wires it (admin listener on or off)
const audit = withAuditMetrics(writer);
observeManifest(BENCH_MANIFEST, "bench");
const serving: Serving = {
  deps: {
    config: {} as never,
    manifest: BENCH_MANIFEST,
    // the agent client's cache hit: the value itself (src/agent/client.ts)
    credentials: { secret: () => "bench-secret-value" },
    minter: {} as never,
    audit,
    proxyId: "bench",
    workloadToken: "t",
    lambdaLoopback: false,
  },
  policy: createPolicy(BENCH_MANIFEST),
  forwarder: createForwarder(),
  proxies: new ProxySelector({ proxyUrl: "", noProxy: [], proxyAuth: "" }, {}),
  // netguard's cached resolver as serve makes it (a lookup that answers at once)
  resolve: cachedResolver(5_000, 1024, async () => ["127.0.0.2"]),
  tokenDigest: tokenDigest("t"),
  authFailures: new AuthFailures(),
  inFlight: new Set<RequestScope>(),
  draining: () => false,
};
const host: ConnHost = {
  serving,
  authenticate: () => true,
  idle() {},
  replace() {},
  draining: () => false,
  socketHandlers: {} as never,
};

async function run(n: number): Promise<number> {
  let done = 0;
  let finish: () => void = () => {};
  const over = new Promise<void>((r) => (finish = r));
  let conn: Conn;
  const sock = {
    write(b: Uint8Array | string) {
      const len = typeof b === "string" ? b.length : b.byteLength;
      // one response per request (small: head and body in one write)
      if (++done >= n) {
        setImmediate(() => conn.onEnd());
        finish();
      } else setImmediate(() => conn.onData(BENCH_REQUEST));
      return len;
    },
    end() {},
    terminate() {},
    pause() {},
    resume() {},
  } as unknown as Socket<ConnData>;
  conn = new Conn(sock, "127.0.0.1", 1);
  const t0 = process.cpuUsage();
  conn.onData(BENCH_REQUEST);
  void serveTunnel(host, conn, { connect: { host: "api.test", port: "443" }, plain: false, sni: "api.test" });
  await over;
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / 1000; // CPU ms of the whole process
}

await run(2_000); // warm-up (JIT)
for (let r = 0; r < ROUNDS; r++) {
  const ms = await run(N);
  say(`${N} requests  ${((ms * 1000) / N).toFixed(1)} µs CPU/request`);
}
await audit.close(Date.now() + 1000);
process.exit(0);

// The admin listener (F14, shared/PHASE2.md §16) through the COMPILED binary: a mixed run
// (injected, passthrough, denied, agent_error, tls_error) through curl, then a scrape checked by the
// real `promtool check metrics`, counters equal to the audit line counts per status, no host, path
// or secret in any series, the series count unchanged after 2,000 requests to random denied hosts,
// the Host (DNS rebinding) and token checks, /readyz 503 during the drain, config errors and exit 6.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { connect, type Socket } from "node:net";
import { agentEnv, manifest, startAgent, type Agent } from "./helpers/agent.ts";
import { curl, parseCurl, run } from "./helpers/clients.ts";
import { freePort, spawnProxy, startProxy, type ProxyProcess } from "./helpers/proxy.ts";
import { makeTestPki, type TestPki } from "./helpers/tls.ts";
import { startUpstream, type Upstream } from "./helpers/upstream.ts";

const TOKEN = "workload-token-metrics";
const METRICS_TOKEN = "metrics-bearer-9f2c";
const SECRET = "s3cr3t-metrics-bearer";
const MANIFEST = manifest(
  [
    { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/KEY" } },
    { name: "missing", host: "missing.test", auth: { scheme: "bearer", credential: "ns/NOPE" } },
    { name: "down", host: "down.test", auth: { scheme: "bearer", credential: "ns/KEY" } },
  ],
  ["pass.test"],
);

let pki: TestPki;
let up: Upstream;
let agent: Agent;
let proxy: ProxyProcess;
let port: number;
let mport: number;
let ca: string;

beforeAll(async () => {
  pki = makeTestPki(["api.test", "pass.test", "missing.test", "down.test"], ["127.0.0.2"]);
  up = startUpstream({ hostname: "127.0.0.2", pki });
  agent = startAgent({ services: MANIFEST, secrets: { "ns/KEY": SECRET } });
  port = await freePort();
  mport = await freePort();
  proxy = await startProxy({
    config: {
      listen: { port },
      metrics: { port: mport, token: METRICS_TOKEN },
      serve: { drain_timeout: "20s" },
    },
    env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
    hosts: { "api.test": "127.0.0.2", "pass.test": "127.0.0.2", "missing.test": "127.0.0.2", "down.test": "127.0.0.2" },
  });
  ca = join(proxy.home, ".config/clef/proxy/ca.crt");
});

afterAll(async () => {
  proxy?.kill("SIGKILL");
  up?.stop();
  agent?.stop();
});

/** One raw HTTP/1.1 exchange with the admin port (Host exactly as given); status and whole text. */
function admin(
  path: string,
  headers: Record<string, string>,
  method = "GET",
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(mport, "127.0.0.1", () =>
      s.write(
        `${method} ${path} HTTP/1.1\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join("")}Connection: close\r\n\r\n`,
      ),
    );
    let buf = "";
    s.on("data", (d) => (buf += d.toString("utf8")));
    s.on("end", () => resolve({ status: Number(buf.split(" ")[1]), text: buf }));
    s.on("error", reject);
  });
}
const authed = () => ({ Host: `127.0.0.1:${mport}`, Authorization: `Bearer ${METRICS_TOKEN}` });

async function scrape(): Promise<string> {
  const r = await admin("/metrics", authed());
  expect(r.status).toBe(200);
  return r.text.slice(r.text.indexOf("\r\n\r\n") + 4);
}

/** Sample lines: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of text.split("\n")) {
    if (l === "" || l.startsWith("#")) continue;
    const i = l.lastIndexOf(" ");
    m.set(l.slice(0, i), Number(l.slice(i + 1)));
  }
  return m;
}

/** Sum of a series' samples whose labels include every `match` pair. */
function sum(text: string, name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const [k, v] of samples(text)) {
    if (k !== name && !k.startsWith(`${name}{`)) continue;
    if (Object.entries(match).every(([l, val]) => k.includes(`${l}="${val}"`))) total += v;
  }
  return total;
}

function auditLines(): Array<Record<string, unknown>> {
  return proxy.stdout.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

async function waitAudit(n: number): Promise<void> {
  for (let i = 0; i < 600 && auditLines().length < n; i++) await Bun.sleep(50);
  expect(auditLines().length).toBeGreaterThanOrEqual(n);
}

async function promtool(text: string): Promise<{ code: number; out: string }> {
  const p = Bun.spawn(["promtool", "check", "metrics"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  p.stdin.write(text);
  p.stdin.end();
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out + err };
}

/** n keep-alive requests on one connection, each waiting for its complete answer; returns statuses. */
function sequential(n: number, request: (i: number) => string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const statuses: number[] = [];
    let buf = Buffer.alloc(0);
    const s: Socket = connect(port, "127.0.0.1", () => s.write(request(0)));
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "0");
        if (buf.length < end + 4 + len) return;
        statuses.push(Number(head.split(" ")[1]));
        buf = buf.subarray(end + 4 + len);
        if (statuses.length === n) {
          s.end();
          return resolve(statuses);
        }
        s.write(request(statuses.length));
      }
    });
    s.on("error", reject);
    s.on("close", () => (statuses.length < n ? reject(new Error(`closed after ${statuses.length}`)) : undefined));
  });
}

const basic = `Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}`;

describe("metrics through the binary", () => {
  test("mixed run: promtool accepts the scrape, counters equal the audit lines per status, nothing sensitive", async () => {
    const go = (host: string, path: string, p = up.port) => curl(port, TOKEN, ca, `https://${host}:${p}${path}`);
    const closedPort = await freePort();
    const results = [
      await go("api.test", "/i1"),
      await go("api.test", "/i2"),
      await go("api.test", "/i3?x=1"),
      await go("pass.test", "/p1"),
      await go("pass.test", "/p2"),
      await go("denied-host.test", "/d1"),
      await go("other-denied.test", "/d2"),
      await go("missing.test", "/a1"),
      await go("missing.test", "/a2"),
      await go("down.test", "/t1", closedPort),
    ].map((r) => parseCurl(r.stdout).status);
    expect(results).toEqual([200, 200, 200, 200, 200, 403, 403, 502, 502, 502]);
    await waitAudit(10);

    // a line is on stdout before the writer's completion callback counts it as written: scrape
    // again (bounded) until the last write was counted
    let text = await scrape();
    const written = (t: string) => sum(t, "clef_proxy_audit_lines_total", { sink: "stdout", result: "written" });
    for (let i = 0; i < 40 && written(text) < 10; i++) {
      await Bun.sleep(50);
      text = await scrape();
    }
    const pt = await promtool(text);
    expect(pt).toEqual({ code: 0, out: "" });

    const byStatus: Record<string, number> = {};
    for (const l of auditLines()) byStatus[l.status as string] = (byStatus[l.status as string] ?? 0) + 1;
    expect(byStatus).toEqual({ injected: 3, passthrough: 2, denied: 2, agent_error: 2, tls_error: 1 });
    for (const [status, n] of Object.entries(byStatus)) {
      expect(sum(text, "clef_proxy_requests_total", { status })).toBe(n);
      expect(sum(text, "clef_proxy_request_duration_seconds_count", { status })).toBe(n);
    }
    expect(sum(text, "clef_proxy_requests_total", { status: "injected", service: "gh", protocol: "h1" })).toBe(3);
    expect(sum(text, "clef_proxy_requests_total", { status: "agent_error", service: "missing" })).toBe(2);
    expect(sum(text, "clef_proxy_requests_total", { status: "tls_error", service: "down" })).toBe(1);
    expect(sum(text, "clef_proxy_denials_total", { reason: "" })).toBe(2);

    // agent calls: ready and services once, ns/KEY fetched once (then cached: i2, i3 and the down.test
    // request are hits), ns/NOPE 404 twice (misses, nothing cached)
    expect(sum(text, "clef_proxy_agent_requests_total", { endpoint: "ready", result: "ok" })).toBe(1);
    expect(sum(text, "clef_proxy_agent_requests_total", { endpoint: "services", result: "ok" })).toBe(1);
    expect(sum(text, "clef_proxy_agent_requests_total", { endpoint: "secrets", result: "ok" })).toBe(1);
    expect(sum(text, "clef_proxy_agent_requests_total", { endpoint: "secrets", result: "not_found" })).toBe(2);
    expect(sum(text, "clef_proxy_secret_cache_total", { result: "hit" })).toBe(3);
    expect(sum(text, "clef_proxy_secret_cache_total", { result: "miss" })).toBe(3);
    expect(agent.calls.filter((c) => c.path.startsWith("/v1/secrets/")).length).toBe(3);

    expect(sum(text, "clef_proxy_audit_lines_total", { sink: "stdout", result: "written" })).toBe(10);
    expect(sum(text, "clef_proxy_audit_lines_total", { result: "dropped" })).toBe(0);
    expect(sum(text, "clef_proxy_leaf_cache_size")).toBeGreaterThanOrEqual(5);
    const sha = createHash("sha256").update(JSON.stringify(MANIFEST)).digest("hex");
    expect(text).toContain(`clef_proxy_manifest_info{identity="myid",environment="prod",sha256="${sha}"} 1\n`);
    expect(text).toMatch(/\nclef_proxy_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1\n/);
    expect(sum(text, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(sum(text, "process_open_fds")).toBeGreaterThan(0);
    expect(sum(text, "process_start_time_seconds")).toBeGreaterThan(1.6e9);
    // fed by the data path: 6 upstream answers (3 injected, 2 passthrough; the refused dial is no
    // answer), one leaf per CONNECT host, and the curl runs above closed their tunnels
    expect(text).toContain("# TYPE clef_proxy_netguard_blocks_total counter\n");
    expect(sum(text, "clef_proxy_upstream_ttfb_seconds_count")).toBe(5);
    expect(sum(text, "clef_proxy_leaf_mints_total")).toBeGreaterThanOrEqual(5);
    expect(sum(text, "clef_proxy_connections_open", { kind: "tunnel_h1" })).toBe(0);
    // 407s (missing or wrong Proxy-Authorization) are counted: one more wrong attempt, one more
    const failures = sum(text, "clef_proxy_workload_auth_failures_total");
    const wrong = `Basic ${Buffer.from("u:wrong-token").toString("base64")}`;
    expect(await sequential(1, () => `CONNECT api.test:443 HTTP/1.1\r\nProxy-Authorization: ${wrong}\r\n\r\n`)).toEqual(
      [407],
    );
    expect(sum(await scrape(), "clef_proxy_workload_auth_failures_total")).toBe(failures + 1);

    for (const leak of [SECRET, TOKEN, METRICS_TOKEN, "api.test", "denied-host", "/i1", "/d1", "127.0.0.2"])
      expect(text).not.toContain(leak);
  });

  test("series count unchanged after 2,000 requests to random denied hosts and paths", async () => {
    const before = samples(await scrape()).size;
    const audited = auditLines().length;
    const req = (i: number) => {
      const host = `r${i}-${Math.random().toString(36).slice(2)}.test`;
      return `GET http://${host}/p/${Math.random().toString(36).slice(2)}?q=${i} HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${basic}\r\n\r\n`;
    };
    const all = (await Promise.all([0, 1, 2, 3].map(() => sequential(500, req)))).flat();
    expect(all.length).toBe(2000);
    expect(all.every((s) => s === 403)).toBe(true);
    await waitAudit(audited + 2000);
    const text = await scrape();
    expect(samples(text).size).toBe(before);
    expect(sum(text, "clef_proxy_requests_total", { status: "denied" })).toBe(
      auditLines().filter((l) => l.status === "denied").length,
    );
    expect(text).not.toMatch(/r\d+-[a-z0-9]+\.test/);
    expect((await promtool(text)).code).toBe(0);
  }, 120_000);

  test("Host must be 127.0.0.1:<port> or localhost:<port>; token required; paths and methods", async () => {
    const auth = { Authorization: `Bearer ${METRICS_TOKEN}` };
    expect((await admin("/metrics", { Host: `evil.test:${mport}`, ...auth })).status).toBe(403);
    expect((await admin("/healthz", { Host: `127.0.0.1.evil.test:${mport}`, ...auth })).status).toBe(403);
    expect((await admin("/metrics", { Host: `127.0.0.1:${mport}` })).status).toBe(401);
    expect((await admin("/metrics", { Host: `127.0.0.1:${mport}`, Authorization: "Bearer wrong" })).status).toBe(401);
    expect((await admin("/metrics", { Host: `localhost:${mport}`, ...auth })).status).toBe(200);
    expect((await admin("/healthz", authed())).status).toBe(200);
    expect((await admin("/readyz", authed())).status).toBe(200);
    expect((await admin("/other", authed())).status).toBe(404);
    expect((await admin("/metrics", { ...authed(), "Content-Length": "0" }, "POST")).status).toBe(405);
    // the workload port does not serve metrics
    const r = await run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/metrics`]);
    expect(r.stdout).toBe("407");
    // only 127.0.0.1
    const ss = await run(["ss", "-Hltn", `sport = :${mport}`]);
    expect(
      ss.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(/\s+/)[3]),
    ).toEqual([`127.0.0.1:${mport}`]);
  });

  test("/readyz 503 while draining (SIGTERM with a slow request in flight), /healthz 200, then exit 0", async () => {
    const slow = curl(port, TOKEN, ca, `https://api.test:${up.port}/slow/2500`);
    for (let i = 0; i < 100 && !up.seen.some((s) => s.url === "/slow/2500"); i++) await Bun.sleep(20);
    proxy.kill("SIGTERM");
    await proxy.waitForStderr(/shutdown signal received, draining/);
    expect((await admin("/readyz", authed())).status).toBe(503);
    expect((await admin("/healthz", authed())).status).toBe(200);
    expect(parseCurl((await slow).stdout).status).toBe(200);
    expect(await proxy.exited).toBe(0);
    await expect(admin("/healthz", authed())).rejects.toThrow(); // closed at exit
  }, 30_000);
});

describe("metrics config and bind errors through the binary", () => {
  test("exit 2: out of range / equals listen.port, serve's framing, one line", async () => {
    for (const [cfg, msg] of [
      [{ metrics: { port: 70000 } }, "metrics.port: 70000 out of range (1-65535)"],
      [{ listen: { port: 9999 }, metrics: { port: 9999 } }, "metrics.port: equals listen.port"],
      [{ metrics: { port: 8888 } }, "metrics.port: equals listen.port"],
    ] as const) {
      const p = spawnProxy({ config: cfg });
      expect(await p.exited).toBe(2);
      await Bun.sleep(20);
      expect(p.stderr).toEqual([`clef-proxy serve: config ${JSON.stringify(p.configPath)}: ${msg}`]);
    }
  });

  test("exit 6: metrics port taken → listener bind line with its address", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const a = startAgent({ services: manifest([]) });
    const p = spawnProxy({
      config: { listen: { port: await freePort() }, metrics: { port: busy.port } },
      env: agentEnv(a),
    });
    expect(await p.exited).toBe(6);
    await Bun.sleep(20);
    expect(p.stderr.at(-1)).toMatch(
      new RegExp(
        `^time=\\S+ level=ERROR msg="listener bind" addr=127\\.0\\.0\\.1:${busy.port} err="listen tcp 127\\.0\\.0\\.1:${busy.port}: bind: address already in use"$`,
      ),
    );
    busy.stop(true);
    a.stop();
  });

  test("off by default: no admin listener, no metrics log line", async () => {
    const a = startAgent({ services: manifest([]) });
    const p = await startProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(a) });
    expect(p.stderr.some((l) => l.includes("metrics"))).toBe(false);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    a.stop();
  });
});

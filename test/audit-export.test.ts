// The audit exports through the compiled binary (shared/PHASE2.md §14 F12 webhook, §15 F13 OTLP;
// docs/CONTRACT.md §11 "Exports"): receivers written here in Bun on 127.0.0.1 check what arrives
// (bytes, headers, HMAC, OTLP JSON structure) and script failures (503, 429 + Retry-After, a hang
// past the timeout, 400, down then up); the proxy makes audit lines from denied requests (the
// cheapest line: host not in the manifest).
import { afterEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { connect, type Socket } from "node:net";
import { VERSION } from "../src/version.ts";
import { agentEnv, manifest, startAgent } from "./helpers/agent.ts";
import { freePort, type ProxyProcess, startProxy, spawnProxy } from "./helpers/proxy.ts";
import { haveTinyproxy, startTinyproxy } from "./helpers/tinyproxy.ts";
import { makeTestPki } from "./helpers/tls.ts";

const TOKEN = "workload-token-xyz";
const AUTH = `Proxy-Authorization: Basic ${Buffer.from("u:" + TOKEN).toString("base64")}\r\n`;
const HMAC = "hmac-key-NEVER-LOGGED";
const HEADER_SECRET = "tenant-header-NEVER-LOGGED";

// ---- receivers --------------------------------------------------------------------------------

interface Received {
  at: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** What the receiver answered (0 = hung / never answered). */
  status: number;
}

type Answer = Response | "hang";

interface Receiver {
  port: number;
  url: string;
  got: Received[];
  /** Lines of every request answered 2xx, in arrival order. */
  delivered(): string[];
  stop(): void;
}

function startReceiver(
  script: (n: number, r: Received) => Answer = () => new Response(null, { status: 204 }),
  opts: { port?: number; tls?: { cert: string; key: string } } = {},
): Receiver {
  const got: Received[] = [];
  const hung: Array<() => void> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    tls: opts.tls,
    idleTimeout: 255,
    async fetch(req) {
      const u = new URL(req.url);
      const r: Received = {
        at: Date.now(),
        method: req.method,
        path: u.pathname + u.search,
        headers: Object.fromEntries(req.headers),
        body: await req.text(),
        status: 0,
      };
      got.push(r);
      const a = script(got.length, r);
      if (a === "hang") return new Promise<Response>((resolve) => hung.push(() => resolve(new Response("late"))));
      r.status = a.status;
      return a;
    },
  });
  const scheme = opts.tls ? "https" : "http";
  return {
    port: server.port!,
    url: `${scheme}://127.0.0.1:${server.port}`,
    got,
    delivered: () =>
      got.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.body.split("\n").filter((l) => l !== "")),
    stop() {
      for (const h of hung.splice(0)) h();
      server.stop(true);
    },
  };
}

// ---- the proxy and its traffic -----------------------------------------------------------------

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

async function proxyWith(
  audit: Record<string, unknown>,
  opts: { env?: Record<string, string>; hosts?: Record<string, string>; extra?: Record<string, unknown> } = {},
): Promise<ProxyProcess & { port: number }> {
  const agent = startAgent({ services: manifest([]) });
  cleanup.push(() => agent.stop());
  const port = await freePort();
  const p = await startProxy({
    config: { listen: { port }, metadata: { proxy_id: "px-1" }, audit, ...opts.extra },
    env: { ...agentEnv(agent, TOKEN), ...opts.env },
    hosts: opts.hosts,
  });
  cleanup.push(() => p.kill("SIGKILL"));
  return Object.assign(p, { port });
}

/** n denied requests (absolute-form, host not in the manifest), pipelined on one connection. */
async function denied(port: number, n: number, tag: string, extraHeaders = ""): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if ((buf.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0) >= n) {
        s.destroy();
        resolve();
      }
    });
    s.on("error", reject);
    let i = 0;
    const pump = () => {
      while (i < n) {
        const req = `GET http://deny.test/${tag}/${i++} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}${extraHeaders}\r\n`;
        if (!s.write(req)) return void s.once("drain", pump);
      }
    };
    pump();
  });
}

/** Latency of n sequential denied requests on one keep-alive connection (ms each). */
async function latencies(port: number, n: number, tag: string): Promise<number[]> {
  const s: Socket = connect(port, "127.0.0.1");
  await new Promise((r) => s.once("connect", r));
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  s.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    s.write(`GET http://deny.test/${tag}/${i} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}\r\n`);
    for (;;) {
      const end = buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const len = Number(/content-length: (\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? 0);
        if (buf.length >= end + 4 + len) {
          buf = buf.subarray(end + 4 + len);
          break;
        }
      }
      await new Promise<void>((r) => (wake = r));
    }
    out.push(performance.now() - t0);
  }
  s.destroy();
  return out;
}

const p99 = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * 0.99) - 1]!;
const ids = (lines: string[]) => lines.map((l) => JSON.parse(l).request_id as string);
const paths = (lines: string[]) => lines.map((l) => JSON.parse(l).path as string);
const stop = async (p: ProxyProcess) => {
  p.kill("SIGTERM");
  return p.exited;
};
const auditLines = (p: ProxyProcess) => p.stdout.filter((l) => l.startsWith("{"));
const noSecretsLogged = (p: ProxyProcess) => {
  const err = p.stderr.join("\n");
  expect(err).not.toContain(HMAC);
  expect(err).not.toContain(HEADER_SECRET);
};

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await Bun.sleep(25);
  }
}

// ---- webhook -------------------------------------------------------------------------------------

describe("webhook", () => {
  test("NDJSON byte-identical to stdout (hash-chained), headers, HMAC over timestamp.body, in order", async () => {
    const rcv = startReceiver();
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({
      hash_chain: true,
      webhook: {
        url: `${rcv.url}/hook?tenant=t1`,
        hmac_secret: HMAC,
        headers: { "X-Tenant": HEADER_SECRET },
        batch_max_lines: 5,
        flush_interval: "100ms",
      },
    });
    await denied(p.port, 12, "w");
    await until(() => rcv.delivered().length === 12, "12 lines at the receiver");
    expect(await stop(p)).toBe(0);
    // The receiver's bytes are the primary sink's bytes.
    expect(rcv.got.map((r) => r.body).join("")).toBe(Buffer.from(p.stdoutBytes()).toString());
    expect(auditLines(p).every((l) => /"prev_sha256":"[0-9a-f]{64}"}$/.test(l))).toBe(true);
    expect(paths(rcv.delivered())).toEqual(Array.from({ length: 12 }, (_, i) => `/w/${i}`));
    expect(rcv.got.length).toBeGreaterThanOrEqual(3); // batches of at most 5
    const batchIds = new Set<string>();
    for (const r of rcv.got) {
      expect(r.method).toBe("POST");
      expect(r.path).toBe("/hook?tenant=t1");
      expect(r.body.split("\n").filter(Boolean).length).toBeLessThanOrEqual(5);
      const h = r.headers;
      expect(h["content-type"]).toBe("application/x-ndjson");
      expect(h["user-agent"]).toBe(`clef-proxy/${VERSION}`);
      expect(h["x-clef-proxy-id"]).toBe("px-1");
      expect(h["x-tenant"]).toBe(HEADER_SECRET);
      expect(Math.abs(Number(h["x-clef-timestamp"]) - Date.now() / 1000)).toBeLessThan(120);
      const want = createHmac("sha256", HMAC).update(`${h["x-clef-timestamp"]}.${r.body}`).digest("hex");
      expect(h["x-clef-signature"]).toBe(`sha256=${want}`);
      batchIds.add(h["x-clef-batch-id"]!);
    }
    expect(batchIds.size).toBe(rcv.got.length);
    noSecretsLogged(p);
  });

  test("503 twice, then 200: the same batch is retried (1 s, 2 s back-off), nothing lost or duplicated", async () => {
    const rcv = startReceiver((n) => new Response(null, { status: n <= 2 ? 503 : 200 }));
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ webhook: { url: rcv.url, batch_max_lines: 100, flush_interval: "100ms" } });
    await denied(p.port, 10, "r");
    await until(() => rcv.delivered().length === 10, "delivery after retries");
    const [a, b, c] = rcv.got;
    expect(new Set([a, b, c].map((r) => r!.headers["x-clef-batch-id"])).size).toBe(1);
    expect(new Set([a, b, c].map((r) => r!.body)).size).toBe(1);
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(900);
    expect(c!.at - b!.at).toBeGreaterThanOrEqual(1900);
    expect(await stop(p)).toBe(0);
    expect(ids(rcv.delivered())).toEqual(ids(auditLines(p)));
    expect(p.stderr.join("\n")).toMatch(
      /level=WARN msg="audit export: delivery failed, retrying" sink=webhook url=http:\/\/127\.0\.0\.1:\d+ err="status 503" attempt=1 retry_in=1\.\d+s/,
    );
    expect(
      p.stderr.some((l) => l.includes('msg="audit export: delivering again"') && l.includes("failed_attempts=2")),
    ).toBe(true);
  }, 30_000);

  test("429 with Retry-After: 1 is honoured", async () => {
    const rcv = startReceiver((n) =>
      n === 1 ? new Response("busy", { status: 429, headers: { "Retry-After": "1" } }) : new Response("ok"),
    );
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ webhook: { url: rcv.url, flush_interval: "100ms" } });
    await denied(p.port, 3, "ra");
    await until(() => rcv.delivered().length === 3, "delivery after 429");
    expect(rcv.got[1]!.at - rcv.got[0]!.at).toBeGreaterThanOrEqual(950);
    expect(rcv.got[1]!.at - rcv.got[0]!.at).toBeLessThan(1500);
    expect(await stop(p)).toBe(0);
  }, 30_000);

  test("a receiver that hangs past `timeout` is abandoned and the batch retried", async () => {
    const rcv = startReceiver((n) => (n === 1 ? "hang" : new Response("ok")));
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ webhook: { url: rcv.url, flush_interval: "100ms", timeout: "1s" } });
    await denied(p.port, 4, "h");
    await until(() => rcv.delivered().length === 4, "delivery after the hang");
    expect(rcv.got[1]!.at - rcv.got[0]!.at).toBeGreaterThanOrEqual(1900); // 1 s timeout + 1 s back-off
    expect(rcv.got[1]!.body).toBe(rcv.got[0]!.body);
    expect(p.stderr.join("\n")).toContain('err="no answer within 1s"');
    expect(await stop(p)).toBe(0);
  }, 30_000);

  test("400 is permanent: the batch is dropped (once, counted, ERROR), later batches still arrive", async () => {
    const rcv = startReceiver((n) => new Response(null, { status: n === 1 ? 400 : 200 }));
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ webhook: { url: rcv.url, flush_interval: "100ms" } });
    await denied(p.port, 3, "first");
    await until(() => rcv.got.length === 1, "the refused batch");
    await Bun.sleep(1500); // no retry of a refused batch
    expect(rcv.got.length).toBe(1);
    await denied(p.port, 2, "second");
    await until(() => rcv.delivered().length === 2, "the next batch");
    expect(paths(rcv.delivered())).toEqual(["/second/0", "/second/1"]);
    expect(await stop(p)).toBe(0);
    expect(p.stderr.join("\n")).toMatch(
      /level=ERROR msg="audit export: receiver refused a batch, dropped" sink=webhook url=http:\/\/127\.0\.0\.1:\d+ status=400 lines=3 rejected_total=3/,
    );
    expect(p.stderr.join("\n")).toMatch(
      /msg="audit export: stopped; some lines were not delivered during this run".* rejected=3/,
    );
    expect(auditLines(p).length).toBe(5); // the primary sink has every line
  }, 30_000);

  test("receiver down, then up: everything arrives in order, no duplicates", async () => {
    const port = await freePort();
    const p = await proxyWith({ webhook: { url: `http://127.0.0.1:${port}/in`, flush_interval: "100ms" } });
    await denied(p.port, 6, "d1");
    await p.waitForStderr(/msg="audit export: delivery failed, retrying" .*err="connection refused"/);
    await denied(p.port, 6, "d2");
    const rcv = startReceiver(undefined, { port });
    cleanup.push(() => rcv.stop());
    await until(() => rcv.delivered().length === 12, "delivery once the receiver is up");
    expect(await stop(p)).toBe(0);
    expect(ids(rcv.delivered())).toEqual(ids(auditLines(p)));
    expect(new Set(ids(rcv.delivered())).size).toBe(12);
  }, 40_000);

  test("a tiny queue and a hanging receiver: oldest lines dropped and counted, requests unaffected", async () => {
    const rcv = startReceiver(() => "hang");
    cleanup.push(() => rcv.stop());
    const p = await proxyWith(
      {
        webhook: { url: rcv.url, batch_max_lines: 100, flush_interval: "1m", timeout: "1m", queue_max_lines: 1000 },
        // the drain deadline bounds how long the export may try at shutdown
      },
      { extra: { serve: { drain_timeout: "100ms" } } },
    );
    await denied(p.port, 2000, "q");
    await until(() => rcv.got.length === 1, "the first (hanging) batch");
    const t0 = Date.now();
    expect(await stop(p)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000); // drain_timeout + 2 s grace, generously
    expect(auditLines(p).length).toBe(2000); // the primary sink lost nothing
    const err = p.stderr.join("\n");
    expect(err).toMatch(
      /level=WARN msg="audit export: queue full, oldest lines dropped" sink=webhook url=http:\/\/127\.0\.0\.1:\d+ dropped_total=1 queue_max_lines=1000/,
    );
    expect(err.match(/queue full, oldest lines dropped/g)!.length).toBe(1); // once a minute
    // 100 in flight (hanging), the newest 1000 queued, 900 dropped.
    expect(err).toMatch(
      /msg="audit export: shutdown deadline reached, lines not delivered" sink=webhook url=\S+ not_delivered=1100 delivered_total=0 dropped_queue_full=900 rejected=0/,
    );
    expect(rcv.got[0]!.body.split("\n").filter(Boolean).length).toBe(100);
  }, 40_000);

  test("flush on SIGTERM: lines waiting for flush_interval are sent before exit", async () => {
    const rcv = startReceiver();
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ webhook: { url: rcv.url, batch_max_lines: 10000, flush_interval: "1m" } });
    await denied(p.port, 20, "f");
    await Bun.sleep(300);
    expect(rcv.got.length).toBe(0);
    expect(await stop(p)).toBe(0);
    expect(ids(rcv.delivered())).toEqual(ids(auditLines(p)));
    expect(rcv.delivered().length).toBe(20);
  });

  test("a hanging receiver does not slow requests (p99 regression guard)", async () => {
    const hang = startReceiver(() => "hang");
    const fine = startReceiver();
    cleanup.push(
      () => hang.stop(),
      () => fine.stop(),
    );
    const webhook = { batch_max_lines: 10, flush_interval: "100ms", timeout: "1m", queue_max_lines: 1000 };
    const slow = await proxyWith({ webhook: { ...webhook, url: hang.url } });
    const base = await proxyWith({ webhook: { ...webhook, url: fine.url } });
    await latencies(slow.port, 50, "warm");
    await latencies(base.port, 50, "warm");
    const withHang = await latencies(slow.port, 400, "hang");
    const without = await latencies(base.port, 400, "fine");
    expect(hang.got.length).toBe(1); // one batch in flight, hanging the whole time
    expect(fine.delivered().length).toBeGreaterThan(400);
    const a = p99(withHang);
    const b = p99(without);
    console.log(`p99 with a hanging receiver ${a.toFixed(2)} ms, with a healthy one ${b.toFixed(2)} ms`);
    expect(a).toBeLessThan(3 * b + 50);
  }, 60_000);

  test("https: the receiver's certificate is verified (test CA via SSL_CERT_FILE); an untrusted one gets nothing", async () => {
    const pki = makeTestPki(["siem.test"], []);
    const rcv = startReceiver(undefined, { tls: { cert: pki.cert, key: pki.key } });
    cleanup.push(() => rcv.stop());
    const hosts = { "siem.test": "127.0.0.1" };
    const webhook = { url: `https://siem.test:${rcv.port}/in`, hmac_secret: HMAC, flush_interval: "100ms" };
    const untrusted = await proxyWith({ webhook }, { hosts });
    await denied(untrusted.port, 2, "u");
    await untrusted.waitForStderr(/msg="audit export: delivery failed, retrying" .*err="tls: /);
    expect(rcv.got.length).toBe(0);
    untrusted.kill("SIGKILL");
    const trusted = await proxyWith({ webhook }, { hosts, env: { SSL_CERT_FILE: pki.caPath } });
    await denied(trusted.port, 3, "t");
    await until(() => rcv.delivered().length === 3, "delivery over verified TLS");
    expect(rcv.got[0]!.headers.host).toBe(`siem.test:${rcv.port}`);
    expect(await stop(trusted)).toBe(0);
    noSecretsLogged(trusted);
    noSecretsLogged(untrusted);
  }, 40_000);

  test.skipIf(!haveTinyproxy)(
    "through the corporate proxy (upstream.proxy_url): CONNECT by name",
    async () => {
      const pki = makeTestPki(["siem.test"], []);
      const rcv = startReceiver(undefined, { tls: { cert: pki.cert, key: pki.key } });
      cleanup.push(() => rcv.stop());
      const hosts = { "siem.test": "127.0.0.1" };
      const tp = await startTinyproxy(null, hosts);
      cleanup.push(() => tp.stop());
      const p = await proxyWith(
        { webhook: { url: `https://siem.test:${rcv.port}/in`, flush_interval: "100ms" } },
        {
          hosts,
          env: { SSL_CERT_FILE: pki.caPath },
          extra: { upstream: { proxy_url: `http://127.0.0.1:${tp.port}` } },
        },
      );
      await denied(p.port, 3, "c");
      await until(() => rcv.delivered().length === 3, "delivery through tinyproxy");
      expect(await stop(p)).toBe(0);
      const log = await Bun.file(tp.log).text();
      expect(log).toContain(`CONNECT siem.test:${rcv.port}`);
    },
    40_000,
  );

  test("config errors exit 2 with the config framing", async () => {
    for (const [webhook, msg] of [
      [
        { url: "http://siem.example/x" },
        'audit.webhook.url: scheme must be https (http only for loopback), got "http"',
      ],
      [
        { url: "https://s.example", batch_max_lines: 20000 },
        "audit.webhook.batch_max_lines: 20000 out of range (1-10000)",
      ],
      [{ url: "https://s.example", headers: { Host: "x" } }, "audit.webhook.headers: Host cannot be set"],
    ] as const) {
      const p = spawnProxy({ config: { audit: { webhook } } });
      expect(await p.exited).toBe(2);
      expect(p.stderr.join("\n")).toBe(`clef-proxy serve: config ${JSON.stringify(p.configPath)}: ${msg}`);
    }
  });
});

// ---- OTLP ----------------------------------------------------------------------------------------

/** Checks a value against the OTLP protobuf JSON mapping of ExportLogsServiceRequest (unknown fields fail). */
function validateOtlp(req: unknown): string[] {
  const errs: string[] = [];
  const obj = (v: unknown, at: string, allowed: string[]): Record<string, unknown> | null => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      errs.push(`${at}: not an object`);
      return null;
    }
    for (const k of Object.keys(v)) if (!allowed.includes(k)) errs.push(`${at}.${k}: unknown field`);
    return v as Record<string, unknown>;
  };
  const arr = (v: unknown, at: string): unknown[] => {
    if (!Array.isArray(v)) {
      errs.push(`${at}: not an array`);
      return [];
    }
    return v;
  };
  const int64 = (v: unknown, at: string) => {
    if (typeof v !== "string" || !/^-?\d+$/.test(v))
      errs.push(`${at}: int64 must be a decimal string, got ${JSON.stringify(v)}`);
  };
  const anyValue = (v: unknown, at: string): void => {
    const o = obj(v, at, [
      "stringValue",
      "boolValue",
      "intValue",
      "doubleValue",
      "arrayValue",
      "kvlistValue",
      "bytesValue",
    ]);
    if (!o) return;
    const keys = Object.keys(o);
    if (keys.length !== 1) errs.push(`${at}: AnyValue must have exactly one field`);
    if ("stringValue" in o && typeof o.stringValue !== "string") errs.push(`${at}.stringValue: not a string`);
    if ("boolValue" in o && typeof o.boolValue !== "boolean") errs.push(`${at}.boolValue: not a bool`);
    if ("intValue" in o) int64(o.intValue, `${at}.intValue`);
    if ("doubleValue" in o && typeof o.doubleValue !== "number") errs.push(`${at}.doubleValue: not a number`);
    if ("arrayValue" in o) {
      const a = obj(o.arrayValue, `${at}.arrayValue`, ["values"]);
      if (a) arr(a.values, `${at}.arrayValue.values`).forEach((x, i) => anyValue(x, `${at}.arrayValue.values[${i}]`));
    }
  };
  const keyValues = (v: unknown, at: string) =>
    arr(v, at).forEach((kv, i) => {
      const o = obj(kv, `${at}[${i}]`, ["key", "value"]);
      if (!o) return;
      if (typeof o.key !== "string" || o.key === "") errs.push(`${at}[${i}].key: not a string`);
      anyValue(o.value, `${at}[${i}].value`);
    });
  const root = obj(req, "$", ["resourceLogs"]);
  if (!root) return errs;
  arr(root.resourceLogs, "$.resourceLogs").forEach((rl, i) => {
    const at = `$.resourceLogs[${i}]`;
    const o = obj(rl, at, ["resource", "scopeLogs", "schemaUrl"]);
    if (!o) return;
    const res = obj(o.resource, `${at}.resource`, ["attributes", "droppedAttributesCount"]);
    if (res) keyValues(res.attributes, `${at}.resource.attributes`);
    arr(o.scopeLogs, `${at}.scopeLogs`).forEach((sl, j) => {
      const at2 = `${at}.scopeLogs[${j}]`;
      const s = obj(sl, at2, ["scope", "logRecords", "schemaUrl"]);
      if (!s) return;
      const scope = obj(s.scope, `${at2}.scope`, ["name", "version", "attributes", "droppedAttributesCount"]);
      if (scope && typeof scope.name !== "string") errs.push(`${at2}.scope.name: not a string`);
      arr(s.logRecords, `${at2}.logRecords`).forEach((lr, k) => {
        const at3 = `${at2}.logRecords[${k}]`;
        const r = obj(lr, at3, [
          "timeUnixNano",
          "observedTimeUnixNano",
          "severityNumber",
          "severityText",
          "body",
          "attributes",
          "droppedAttributesCount",
          "flags",
          "traceId",
          "spanId",
          "eventName",
        ]);
        if (!r) return;
        int64(r.timeUnixNano, `${at3}.timeUnixNano`);
        int64(r.observedTimeUnixNano, `${at3}.observedTimeUnixNano`);
        if (
          !Number.isInteger(r.severityNumber) ||
          (r.severityNumber as number) < 1 ||
          (r.severityNumber as number) > 24
        )
          errs.push(`${at3}.severityNumber: enum must be a number 1-24`);
        if (typeof r.severityText !== "string") errs.push(`${at3}.severityText: not a string`);
        anyValue(r.body, `${at3}.body`);
        keyValues(r.attributes, `${at3}.attributes`);
        if ("flags" in r && !Number.isInteger(r.flags)) errs.push(`${at3}.flags: fixed32 must be a number`);
        if ("traceId" in r && !/^[0-9a-f]{32}$/.test(String(r.traceId))) errs.push(`${at3}.traceId: 32 hex`);
        if ("spanId" in r && !/^[0-9a-f]{16}$/.test(String(r.spanId))) errs.push(`${at3}.spanId: 16 hex`);
      });
    });
  });
  return errs;
}

const attrsOf = (kvs: Array<{ key: string; value: Record<string, unknown> }>) =>
  Object.fromEntries(kvs.map((a) => [a.key, Object.values(a.value)[0]]));

describe("OTLP/HTTP JSON", () => {
  test("one LogRecord per line, valid OTLP JSON, body = the exact line, resource and semantic attributes", async () => {
    const rcv = startReceiver(() => Response.json({}));
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ otlp: { endpoint: rcv.url, headers: { "X-Scope": HEADER_SECRET } } });
    await denied(p.port, 5, "o");
    await until(
      () =>
        rcv.got.length > 0 &&
        rcv.got.reduce((n, r) => n + JSON.parse(r.body).resourceLogs[0].scopeLogs[0].logRecords.length, 0) === 5,
      "5 records",
    );
    expect(await stop(p)).toBe(0);
    const lines = auditLines(p);
    const records = rcv.got.flatMap((r) => {
      expect(r.path).toBe("/v1/logs");
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-scope"]).toBe(HEADER_SECRET);
      const req = JSON.parse(r.body);
      expect(validateOtlp(req)).toEqual([]);
      const rl = req.resourceLogs[0];
      expect(attrsOf(rl.resource.attributes)).toEqual({
        "service.name": "clef-proxy",
        "service.version": VERSION,
        "service.instance.id": "px-1",
        "clef.identity": "myid",
        "clef.environment": "prod",
      });
      expect(rl.scopeLogs[0].scope.name).toBe("clef-proxy.audit");
      return rl.scopeLogs[0].logRecords;
    });
    expect(records.map((r: { body: { stringValue: string } }) => r.body.stringValue)).toEqual(lines);
    const r0 = records[0];
    const line0 = JSON.parse(lines[0]!);
    expect(r0.severityNumber).toBe(13); // denied → WARN
    expect(r0.severityText).toBe("WARN");
    expect(r0.eventName).toBe("clef.proxy.audit");
    expect(BigInt(r0.timeUnixNano) / 1_000_000n).toBe(BigInt(Date.parse(line0.ts)));
    expect(BigInt(r0.observedTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(r0.timeUnixNano));
    expect(r0.traceId).toBeUndefined();
    const a = attrsOf(r0.attributes);
    expect(a).toMatchObject({
      "clef.audit.request_id": line0.request_id,
      "clef.audit.status": "denied",
      "clef.audit.latency_ms": String(line0.latency_ms),
      "clef.audit.schema_version": "1",
      "http.request.method": "GET",
      "server.address": "deny.test",
      "url.path": "/o/0",
      "client.address": "127.0.0.1",
    });
    noSecretsLogged(p);
  });

  test("enabled with the endpoint and headers from OTEL_EXPORTER_OTLP_*; 503 retried; partialSuccess logged", async () => {
    const rcv = startReceiver((n) =>
      n === 1
        ? new Response(null, { status: 503 })
        : Response.json({ partialSuccess: { rejectedLogRecords: "1", errorMessage: "one too many" } }),
    );
    cleanup.push(() => rcv.stop());
    const p = await proxyWith(
      { otlp: { enabled: true } },
      {
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: `${rcv.url}/base/`,
          OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${HEADER_SECRET}`,
        },
      },
    );
    await denied(p.port, 2, "e");
    await until(() => rcv.got.length === 2, "the retried request");
    expect(rcv.got[1]!.body).toBe(rcv.got[0]!.body);
    expect(rcv.got[1]!.path).toBe("/base/v1/logs");
    expect(rcv.got[1]!.headers.authorization).toBe(`Bearer ${HEADER_SECRET}`);
    await p.waitForStderr(
      /msg="audit export: receiver rejected some records" sink=otlp .*rejected_log_records=1 lines=2/,
    );
    expect(await stop(p)).toBe(0);
    noSecretsLogged(p);
  }, 30_000);

  test("OTEL_EXPORTER_OTLP_* alone does not switch the export on", async () => {
    const rcv = startReceiver();
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({}, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: rcv.url } });
    await denied(p.port, 2, "off");
    expect(await stop(p)).toBe(0);
    expect(rcv.got.length).toBe(0);
  });

  test("traceparent: a valid W3C header sets the record's traceId/spanId/flags", async () => {
    const rcv = startReceiver(() => Response.json({}));
    cleanup.push(() => rcv.stop());
    const p = await proxyWith({ otlp: { endpoint: rcv.url } });
    await denied(p.port, 1, "tp", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n");
    await denied(p.port, 1, "bad", "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\n");
    expect(await stop(p)).toBe(0);
    const recs = rcv.got.flatMap((r) => JSON.parse(r.body).resourceLogs[0].scopeLogs[0].logRecords);
    expect(recs[0]).toMatchObject({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      flags: 1,
    });
    expect(recs[1].traceId).toBeUndefined();
    expect(auditLines(p).join("\n")).not.toContain("traceparent");
  });
});

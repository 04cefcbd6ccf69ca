// Differential scenarios on the data path: the same client action through the reference and ours,
// with the same agent script and the same upstreams. "same" scenarios compare status, response
// headers and body, the request the upstream received, audit lines and log messages; improvement
// scenarios (docs/CONTRACT.md §18) assert the reference's documented weakness AND our fix.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { manifest, type AgentScript } from "../helpers/agent.ts";
import { parseCurl, plainTunnelExchange, rawExchange, run, tunnelExchange, proxyUrl } from "../helpers/clients.ts";
import { tempDir } from "../helpers/proxy.ts";
import { makeTestPki, type TestPki } from "../helpers/tls.ts";
import { startUpstream, startWsUpstream, wsClientFrame, wsServerText, type Upstream } from "../helpers/upstream.ts";
import {
  HAVE_REF,
  SIDES,
  collect,
  echoBody,
  mark,
  parseRaw,
  respHeaders,
  settle,
  startWorld,
  stopWorld,
  type Observation,
  type Side,
  type World,
  wsExchange,
} from "./harness.ts";

const SECRETS: Record<string, string> = {
  "ns/KEY": "s3cr3t-bearer-value",
  "ns/HDR": "hdr-secret-42",
  "ns/Q": "q secret&=/é+%",
  "ns/DUP": "dup-secret",
  "ns/IP": "ip-secret",
  "ns/META": "meta-secret",
  "ns/CRLF": "bad\r\nInjected: 1",
  "ns/UNTR": "untrusted-secret",
  "ns/CACHE": "cache-secret",
  "ns/PASS": "never-used",
  "ns/FRESH": "fresh-secret",
};
const ALL_SECRETS = Object.values(SECRETS);

const NAMES = [
  "api.test",
  "hdr.test",
  "q.test",
  "pass.test",
  "dupe.test",
  "plain.test",
  "missing.test",
  "a500.test",
  "bad.test",
  "crlf.test",
  "scheme.test",
  "nohdr.test",
  "badname.test",
  "refused.test",
  "cache.test",
  "other.test",
  "deny.test",
  "untrusted.test",
  "fresh.test",
];

let pki: TestPki;
let up: Upstream; // HTTPS echo on 127.0.0.2
let httpUp: Upstream; // plain HTTP echo on 127.0.0.2
let rogue: Upstream; // HTTPS on 127.0.0.2 with a certificate nobody trusts
let ups: Upstream[];
let wsUp: ReturnType<typeof startWsUpstream>; // WebSocket echo on 127.0.0.2
const worlds: Partial<Record<Side, World>> = {};

function agentScript(): AgentScript {
  return {
    services: manifest(
      [
        { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/KEY" } },
        {
          name: "hdr",
          host: "HDR.test.",
          auth: { scheme: "api_key_header", header: "x-lower-key", credential: "ns/HDR" },
        },
        { name: "q", host: "q.test", auth: { scheme: "api_key_query", query: "key", credential: "ns/Q" } },
        { name: "gh", host: "dupe.test", auth: { scheme: "bearer", credential: "ns/KEY" } },
        { name: "dupe", host: "dupe.test", auth: { scheme: "bearer", credential: "ns/DUP" } },
        { name: "plain", host: "plain.test", auth: { scheme: "bearer", credential: "ns/KEY" } },
        { name: "ip", host: "127.0.0.2", auth: { scheme: "bearer", credential: "ns/IP" } },
        { name: "m", host: "meta.test", auth: { scheme: "bearer", credential: "ns/META" } },
        { name: "missing", host: "missing.test", auth: { scheme: "bearer", credential: "ns/NOPE" } },
        { name: "a500", host: "a500.test", auth: { scheme: "bearer", credential: "ns/E500" } },
        { name: "badh", host: "bad.test", auth: { scheme: "bearer", credential: "noslash" } },
        { name: "crlf", host: "crlf.test", auth: { scheme: "bearer", credential: "ns/CRLF" } },
        { name: "scheme", host: "scheme.test", auth: { scheme: "digest", credential: "ns/KEY" } },
        { name: "nohdr", host: "nohdr.test", auth: { scheme: "api_key_header", credential: "ns/KEY" } },
        {
          name: "badname",
          host: "badname.test",
          auth: { scheme: "api_key_header", header: "X-Bad\r\nInjected", credential: "ns/KEY" },
        },
        { name: "refused", host: "refused.test", auth: { scheme: "bearer", credential: "ns/KEY" } },
        { name: "cache", host: "cache.test", auth: { scheme: "bearer", credential: "ns/CACHE" } },
        { name: "untr", host: "untrusted.test", auth: { scheme: "bearer", credential: "ns/UNTR" } },
        { name: "fresh", host: "fresh.test", auth: { scheme: "bearer", credential: "ns/FRESH" } },
      ],
      ["pass.test"],
    ),
    secrets: {
      ...SECRETS,
      "ns/E500": () => new Response("internal trouble", { status: 500 }),
    },
  };
}

beforeAll(async () => {
  pki = makeTestPki(
    NAMES.filter((n) => n !== "untrusted.test"),
    ["127.0.0.2"],
  );
  const roguePki = makeTestPki(["untrusted.test"], ["127.0.0.2"]);
  up = startUpstream({ hostname: "127.0.0.2", pki });
  httpUp = startUpstream({ hostname: "127.0.0.2" });
  rogue = startUpstream({ hostname: "127.0.0.2", pki: roguePki });
  ups = [up, httpUp, rogue];
  wsUp = startWsUpstream({ hostname: "127.0.0.2", pki });
  const hosts: Record<string, string> = {};
  for (const n of NAMES) hosts[n] = "127.0.0.2";
  hosts["meta.test"] = "169.254.169.254";
  for (const { side, bin } of SIDES) {
    worlds[side] = await startWorld(side, bin, { agent: agentScript(), env: { SSL_CERT_FILE: pki.caPath }, hosts });
  }
});

afterAll(async () => {
  for (const w of Object.values(worlds)) await stopWorld(w);
  for (const u of ups ?? []) u.stop();
  wsUp?.stop();
});

// ---------------------------------------------------------------------------------------------

interface Seen0 {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  extra?: unknown;
}
type Action = (w: World) => Promise<Seen0>;

interface Scenario {
  name: string;
  action: Action;
  /** Audit lines the action produces (per side when they differ). */
  audits?: number | Record<Side, number>;
  keepAcceptEncoding?: boolean;
  /** Compared fields besides status/headers/body/upstream/audit/log. */
  compareAgent?: boolean;
  /** Facts checked on ours always (so the scenario proves something without the reference too). */
  check: (o: Observation) => void;
  /** Deliberate improvement (§18.n): `ref` asserts the reference's documented behaviour instead of equality. */
  improvement?: { item: string; ref: (o: Observation) => void };
}

const https = (host: string, path: string, port = up.port) => `https://${host}:${port}${path}`;

function curlAction(url: (w: World) => string, extra: string[] = []): Action {
  return async (w) => {
    const r = await run([
      "curl",
      "-sS",
      "-i",
      "--max-time",
      "10",
      "--proxy",
      proxyUrl(w.port, w.token),
      "--cacert",
      w.caPath,
      ...extra,
      url(w),
    ]);
    if (r.code !== 0) return { status: 0, extra: { curl: r.code } }; // connection closed without an answer
    const p = parseCurl(r.stdout);
    const body = echoBody(p.body);
    const headers = respHeaders(p.headers);
    if (body === "<echo>") delete headers["content-length"]; // the echo's length follows the request's headers
    return { status: p.status, headers, body };
  };
}

function tunnelAction(
  target: string | ((w: World) => string),
  bytes: string | ((w: World) => string),
  opts: { sni?: string; timeoutMs?: number } = {},
): Action {
  return async (w) => {
    const t = typeof target === "function" ? target(w) : target;
    const raw = await tunnelExchange(
      w.port,
      w.token,
      t,
      await Bun.file(w.caPath).text(),
      opts.sni ?? (t.replace(/:\d+$/, "").replace(/^127\.0\.0\.2$/, "") || undefined),
      typeof bytes === "function" ? bytes(w) : bytes,
      opts.timeoutMs ?? 1500,
    );
    const p = parseRaw(raw);
    const body = echoBody(p.body);
    const headers = respHeaders(p.headers);
    if (body === "<echo>") delete headers["Content-Length"];
    return { status: p.status, headers, body, extra: { statusLine: p.statusLine, interim: p.interim } };
  };
}

function rawAction(bytes: string | ((w: World) => string), timeoutMs = 800): Action {
  return async (w) => {
    const raw = await rawExchange(w.port, typeof bytes === "function" ? bytes(w) : bytes, timeoutMs);
    const p = parseRaw(raw);
    return { status: p.status, headers: respHeaders(p.headers), body: p.body, extra: { statusLine: p.statusLine } };
  };
}

const auth = (w: World) => `Proxy-Authorization: Basic ${Buffer.from("u:" + w.token).toString("base64")}\r\n`;

async function observe(side: Side, s: Scenario): Promise<Observation> {
  const w = worlds[side]!;
  const m = mark(w, ups);
  const r = await s.action(w);
  const n = typeof s.audits === "number" ? s.audits : s.audits ? s.audits[side] : 1;
  await settle(w, m, n);
  return { ...r, ...collect(w, ups, m, { keepAcceptEncoding: s.keepAcceptEncoding }) };
}

function noSecrets(o: Observation): void {
  const text = JSON.stringify({ body: o.body, headers: o.headers, audit: o.audit, log: o.log });
  for (const s of ALL_SECRETS) expect(text.includes(s)).toBe(false);
}

/**
 * Ours logs a WARN line for every 502 and malformed tunnel request where the reference logs
 * nothing (docs/CONTRACT.md, "Ours"); the comparison leaves those out. Agent calls are compared
 * only where a scenario asks: ours caches secrets for 5 s (§18.13), so a handle used by an
 * earlier scenario is not fetched again.
 */
const OURS_EXTRA_LOG = new Set(["upstream unreachable", "malformed request in tunnel", "workload auth failures"]);

function comparable(o: Observation, side: Side, agent: boolean): Partial<Observation> {
  const { agent: a, ...rest } = o;
  const log = side === "ours" ? o.log.filter((m) => !OURS_EXTRA_LOG.has(m)) : o.log;
  return agent ? { ...o, log } : { ...rest, log };
}

function scenario(s: Scenario): void {
  test(`${s.improvement ? `[§${s.improvement.item}] ` : ""}${s.name}`, async () => {
    const obs: Partial<Record<Side, Observation>> = {};
    for (const { side } of SIDES) obs[side] = await observe(side, s);
    const ours = obs.ours!;
    s.check(ours);
    noSecrets(ours);
    if (!obs.ref) return;
    if (s.improvement) s.improvement.ref(obs.ref);
    else expect(comparable(ours, "ours", !!s.compareAgent)).toEqual(comparable(obs.ref, "ref", !!s.compareAgent));
  });
}

const hdr = (o: Observation, name: string) => o.upstream[0]?.headers.filter(([k]) => k === name).map(([, v]) => v);
const json = (o: Observation) => JSON.parse(o.body ?? "null");

if (!HAVE_REF) console.warn("NOTICE: datapath.compat runs our side only (facts checked, no differential comparison)");

describe("injection", () => {
  scenario({
    name: "bearer: injected, workload Authorization replaced, X-Clef-Service and Proxy-Authorization not forwarded",
    action: curlAction(
      () => https("api.test", "/one?x=1"),
      ["-H", "Authorization: Bearer workload-own", "-H", "X-Clef-Service: other"],
    ),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/KEY"]}`]);
      expect(hdr(o, "x-clef-service")).toEqual([]);
      expect(o.audit).toEqual([
        expect.objectContaining({
          status: "injected",
          service: "gh",
          credential_handle: "ns/KEY",
          injection_point: "header:Authorization",
          upstream_status: 200,
          path: "/one",
        }),
      ]);
    },
  });
  scenario({
    name: "api_key_header: canonical wire name, every workload value replaced, manifest spelling in audit, overwrite logged",
    action: curlAction(() => https("hdr.test", "/h"), ["-H", "x-lower-key: a", "-H", "X-LOWER-KEY: b"]),
    check: (o) => {
      expect(hdr(o, "x-lower-key")).toEqual([SECRETS["ns/HDR"]!]);
      expect(o.audit[0]).toMatchObject({ injection_point: "header:x-lower-key", service: "hdr" });
      expect(o.log).toContain("overwrote pre-set value at injection point");
    },
  });
  scenario({
    name: "api_key_header without a pre-set value: no overwrite log",
    action: curlAction(() => https("hdr.test", "/fresh")),
    check: (o) => {
      expect(o.log).toEqual(["injected"]);
      expect(hdr(o, "x-lower-key")).toEqual([SECRETS["ns/HDR"]!]);
    },
  });
  scenario({
    name: "api_key_query: the named parameter replaced; other parameters keep their order and bytes",
    action: curlAction(() => https("q.test", "/q?b=2&key=old&a=1&key=again&c;d=%7e")),
    check: (o) => {
      expect(o.upstream[0]!.url).toBe(
        `/q?b=2&key=${encodeURIComponent(SECRETS["ns/Q"]!).replace(/%20/g, "+")}&a=1&c;d=%7e`,
      );
      expect(o.audit[0]).toMatchObject({ injection_point: "query:key", status: "injected" });
    },
    improvement: {
      item: "18.6",
      ref: (o) => expect(o.upstream[0]!.url).toBe("/q?a=1&b=2&key=q+secret%26%3D%2F%C3%A9%2B%25"),
    },
  });
  scenario({
    name: "api_key_query on a request without a query adds the parameter",
    action: curlAction(() => https("q.test", "/noq")),
    check: (o) => expect(o.upstream[0]!.url).toBe("/noq?key=q+secret%26%3D%2F%C3%A9%2B%25"),
  });
  scenario({
    name: "X-Clef-Request-Id supplied by the workload is replaced, and equals the audit request_id",
    action: async (w) => {
      const r = await curlAction(() => https("api.test", "/rid"), ["-H", "X-Clef-Request-Id: mine"])(w);
      const seen = up.seen.at(-1)!;
      const rid = seen.headers.find(([k]) => k === "x-clef-request-id")?.[1];
      const line = await (async () => {
        for (let i = 0; i < 100; i++) {
          const l = w.proxy.stdout.find((x) => x.includes(`"request_id":"${rid}"`));
          if (l) return l;
          await Bun.sleep(20);
        }
      })();
      return { ...r, extra: { auditHasRid: line !== undefined, replaced: rid !== "mine" } };
    },
    check: (o) => expect(o.extra).toEqual({ auditHasRid: true, replaced: true }),
  });
  scenario({
    name: "an IP-literal service (leaf with an IP SAN) is injected",
    action: curlAction(() => https("127.0.0.2", "/ip")),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/IP"]}`]);
      expect(o.audit[0]).toMatchObject({ service: "ip", host: `127.0.0.2:${up.port}` });
    },
  });
  scenario({
    name: "request body (1 MiB POST) forwarded byte for byte",
    action: (() => {
      const f = join(tempDir("clef-body-"), "body.bin");
      const data = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 255);
      writeFileSync(f, data);
      return curlAction(
        () => https("api.test", "/upload"),
        ["--data-binary", `@${f}`, "-H", "Content-Type: application/octet-stream", "-H", "Expect:"],
      );
    })(),
    check: (o) => {
      const data = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 255);
      expect(o.upstream[0]).toMatchObject({
        method: "POST",
        bodyLength: 1 << 20,
        bodySha256: createHash("sha256").update(data).digest("hex"),
      });
    },
  });
  scenario({
    name: "raw path encoding preserved upstream; the audit path is decoded without the query",
    action: curlAction(() => https("api.test", "/a%20b/c%2Fd?q=1")),
    check: (o) => {
      expect(o.upstream[0]!.url).toBe("/a%20b/c%2Fd?q=1");
      expect(o.audit[0]!.path).toBe("/a b/c/d");
    },
  });
  scenario({
    name: "host spelled in upper case matches the service; audit host as sent",
    action: curlAction(() => https("API.TEST", "/upper")),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(o.audit[0]).toMatchObject({ service: "gh", status: "injected" });
    },
  });
  scenario({
    name: "secret fetch: path and headers of the agent call",
    compareAgent: true,
    action: async (w) => {
      const r = await curlAction(() => https("fresh.test", "/agentcall"))(w);
      const c = w.agent.calls.filter((x) => x.path.includes("/v1/secrets/")).at(-1);
      return {
        ...r,
        extra: c
          ? {
              method: c.method,
              authorization: c.headers.authorization === "Bearer agent-token-0123",
              ua: c.headers["user-agent"],
            }
          : null,
      };
    },
    check: (o) => expect(o.extra).toEqual({ method: "GET", authorization: true, ua: "Go-http-client/1.1" }),
  });
});

describe("matching", () => {
  scenario({
    name: "passthrough host: forwarded without injection, X-Clef-Service stripped",
    action: curlAction(() => https("pass.test", "/p"), ["-H", "X-Clef-Service: gh", "-H", "Authorization: own"]),
    check: (o) => {
      expect(hdr(o, "authorization")).toEqual(["own"]);
      expect(hdr(o, "x-clef-service")).toEqual([]);
      expect(o.audit[0]).toMatchObject({ status: "passthrough", upstream_status: 200 });
      expect(o.audit[0]!.service).toBeUndefined();
    },
  });
  scenario({
    name: "unknown host: 403 with the reference's JSON body, audit denied, nothing forwarded",
    action: curlAction(() => https("deny.test", "/d")),
    check: (o) => {
      expect(o.status).toBe(403);
      expect(json(o)).toEqual({
        error: `host "deny.test:${up.port}" not in clef-proxy manifest`,
        host: `deny.test:${up.port}`,
      });
      expect(o.upstream).toEqual([]);
      expect(o.audit[0]).toMatchObject({ status: "denied" });
    },
  });
  scenario({
    name: "two services on a host, no X-Clef-Service: 400 with sorted candidates",
    action: curlAction(() => https("dupe.test", "/x")),
    check: (o) => {
      expect(o.status).toBe(400);
      expect(json(o)).toEqual({
        candidates: ["dupe", "gh"],
        error: `multiple services match host "dupe.test:${up.port}"; set X-Clef-Service header to one of these`,
      });
      expect(o.audit[0]).toMatchObject({ status: "denied" });
    },
  });
  scenario({
    name: "two services, X-Clef-Service picks one (and is stripped)",
    action: curlAction(() => https("dupe.test", "/x"), ["-H", "X-Clef-Service: dupe"]),
    check: (o) => {
      expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/DUP"]}`]);
      expect(hdr(o, "x-clef-service")).toEqual([]);
    },
  });
  scenario({
    name: "two services, X-Clef-Service in the wrong case: 400",
    action: curlAction(() => https("dupe.test", "/x"), ["-H", "X-Clef-Service: DUPE"]),
    check: (o) => expect(o.status).toBe(400),
  });
  scenario({
    name: "one service: an X-Clef-Service naming another service is ignored",
    action: curlAction(() => https("api.test", "/x"), ["-H", "X-Clef-Service: dupe"]),
    check: (o) => expect(o.audit[0]).toMatchObject({ service: "gh", status: "injected" }),
  });
  scenario({
    // obs-text (RFC 9110 §5.5): bytes 0x80–0xFF are field-value characters; every one goes upstream as
    // itself — 0x80–0x9F included, which a windows-1252 decoding of the head turned into other
    // characters (0x80 → U+20AC) that fetch then refused (a 502 where the reference forwards)
    name: "obs-text bytes in a header value are forwarded as they are (0x80–0x9F included)",
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () =>
        Buffer.from(
          `GET /obs HTTP/1.1\r\nHost: api.test:${up.port}\r\nX-Obs: a\x80b\x9fc\xe9d\xffe\x81\r\nConnection: close\r\n\r\n`,
          "latin1",
        ) as unknown as string,
    ),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(hdr(o, "x-obs")).toEqual(["a\x80b\x9fc\xe9d\xffe\x81"]);
      expect(o.audit[0]).toMatchObject({ status: "injected", upstream_status: 200 });
    },
  });
  // Bytes ≥ 0x80 in a request-target (a head is read as latin1: one character per byte). Go's
  // URL.EscapedPath sends a path's as %XX each, and its audit path is url.Path: UTF-8, an invalid
  // byte written as \ufffd. A raw UTF-8 `é` once went upstream as `%C3%83%C2%A9`.
  const rawTarget = (target: string) =>
    tunnelAction(
      () => `api.test:${up.port}`,
      () =>
        Buffer.from(
          `GET ${target} HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: close\r\n\r\n`,
          "latin1",
        ) as unknown as string,
    );
  scenario({
    name: "bytes ≥ 0x80 in the path go upstream as %XX each (raw UTF-8 too); the audit path is decoded as url.Path",
    action: rawTarget("/caf\xc3\xa9/o\x80b\xe9/r\xef\xbf\xbd\xf0\x9f\x98?x=\xc3\xa9"),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(o.upstream[0]!.url).toBe("/caf%C3%A9/o%80b%E9/r%EF%BF%BD%F0%9F%98?x=%C3%A9");
      expect(o.audit[0]).toMatchObject({ path: "/café/o\ufffdb\ufffd/r\ufffd\ufffd\ufffd\ufffd", status: "injected" });
    },
  });
  scenario({
    name: "escapes in the path: forwarded as sent, decoded for the audit line (bytes that are not UTF-8 as U+FFFD)",
    action: rawTarget("/a%E9b%C3%A9%2Fc?x=%E9"),
    check: (o) => {
      expect(o.upstream[0]!.url).toBe("/a%E9b%C3%A9%2Fc?x=%E9");
      expect(o.audit[0]).toMatchObject({ path: "/a\ufffdbé/c" });
    },
  });
  scenario({
    name: "raw bytes ≥ 0x80 in the query go upstream as %XX each (the reference sends them raw)",
    action: rawTarget("/q8?k=\xe9\x80"),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(o.upstream[0]!.url).toBe("/q8?k=%E9%80");
      expect(o.audit[0]).toMatchObject({ path: "/q8", status: "injected" });
    },
    improvement: {
      item: "20.5",
      // the raw bytes E9 80, which this upstream's URL parser reads as one incomplete UTF-8 sequence
      ref: (o) => expect(o.upstream[0]!.url).toBe("/q8?k=%EF%BF%BD"),
    },
  });
  scenario({
    name: "an invalid escape in the path: 400 and close, nothing upstream, no audit line (the reference closes without an answer)",
    audits: 0,
    action: rawTarget("/a%zz"),
    check: (o) => {
      expect(o.status).toBe(400);
      expect(o.upstream).toEqual([]);
      expect(o.audit).toEqual([]);
      expect(o.log).toContain("malformed request");
    },
    improvement: {
      item: "20.3",
      ref: (o) => {
        expect(o.status).toBe(0);
        expect(o.upstream).toEqual([]);
        expect(o.audit).toEqual([]);
      },
    },
  });
  scenario({
    name: "CONNECT to a denied host is accepted; the inner request gets the 403",
    action: tunnelAction(
      () => `deny.test:${up.port}`,
      () => `GET /d HTTP/1.1\r\nHost: deny.test:${up.port}\r\nConnection: close\r\n\r\n`,
    ),
    check: (o) => {
      expect(o.status).toBe(403);
      expect(o.headers).toEqual({ "Content-Type": "application/json", "Content-Length": String(o.body!.length) });
    },
  });
  scenario({
    name: "one host per request: inner Host naming a service while the tunnel goes elsewhere",
    audits: 1,
    action: tunnelAction(
      () => `other.test:${up.port}`,
      () => `GET /steal HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: close\r\n\r\n`,
      { sni: "other.test" },
    ),
    check: (o) => {
      expect(o.status).toBe(421);
      expect(o.upstream).toEqual([]);
      expect(o.audit[0]).toMatchObject({ status: "denied" });
    },
    improvement: {
      item: "18.1",
      // the reference sends api.test's secret to the CONNECT target (here the same upstream)
      ref: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/KEY"]}`]);
      },
    },
  });
  scenario({
    name: "one host per request: absolute-form target naming another host inside a tunnel",
    action: tunnelAction(
      () => `other.test:${up.port}`,
      () =>
        `GET https://api.test:${up.port}/steal HTTP/1.1\r\nHost: other.test:${up.port}\r\nConnection: close\r\n\r\n`,
      { sni: "other.test" },
    ),
    check: (o) => {
      expect(o.status).toBe(421);
      expect(o.upstream).toEqual([]);
    },
    improvement: { item: "18.1", ref: (o) => expect(o.audit[0]).toMatchObject({ status: "injected", service: "gh" }) },
  });
  scenario({
    name: 'missing inner Host (HTTP/1.0): denied as host ""',
    action: tunnelAction(() => `api.test:${up.port}`, "GET /nohost HTTP/1.0\r\n\r\n"),
    check: (o) => {
      expect(o.status).toBe(403);
      expect(json(o)).toEqual({ error: 'host "" not in clef-proxy manifest', host: "" });
      expect(o.audit[0]).toMatchObject({ host: "", status: "denied" });
    },
  });
  scenario({
    name: "two pipelined requests in one tunnel write are answered in order",
    audits: 2,
    action: async (w) => {
      const r = await tunnelAction(
        () => `api.test:${up.port}`,
        () =>
          `GET /p1 HTTP/1.1\r\nHost: api.test:${up.port}\r\n\r\nGET /p2 HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: close\r\n\r\n`,
        { timeoutMs: 2000 },
      )(w);
      return { status: r.status, extra: (r.body ?? "").match(/HTTP\/1\.1 \d+/g) };
    },
    check: (o) => {
      expect(o.upstream.map((u) => u.url)).toEqual(["/p1", "/p2"]);
      expect(o.extra).toEqual(["HTTP/1.1 200"]);
    },
  });
});

describe("cleartext HTTP inside a CONNECT tunnel", () => {
  const plainTunnel =
    (target: () => string, bytes: () => string): Action =>
    async (w) => {
      const raw = await plainTunnelExchange(
        w.port,
        w.token,
        target(),
        bytes(),
        2000,
        (a) => /\r\n\r\n/.test(a) && (a.endsWith("}") || a.endsWith("}\n")),
      );
      const p = parseRaw(raw);
      const body = echoBody(p.body);
      const headers = respHeaders(p.headers);
      if (body === "<echo>") delete headers["Content-Length"];
      return { status: p.status, headers, body };
    };
  scenario({
    name: "served like absolute-form plain HTTP: injected and forwarded over HTTP",
    action: plainTunnel(
      () => `plain.test:${httpUp.port}`,
      () => `GET /t HTTP/1.1\r\nHost: plain.test:${httpUp.port}\r\n\r\n`,
    ),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/KEY"]}`]);
      expect(o.audit[0]).toMatchObject({ status: "injected", path: "/t", upstream_status: 200 });
    },
  });
  scenario({
    name: "an unknown inner host: 403",
    action: plainTunnel(
      () => `deny.test:${httpUp.port}`,
      () => `GET /t HTTP/1.1\r\nHost: deny.test:${httpUp.port}\r\n\r\n`,
    ),
    check: (o) => expect(o.status).toBe(403),
  });
  scenario({
    name: "non-HTTP bytes (an SSH banner)",
    audits: 0,
    action: plainTunnel(
      () => "pass.test:22",
      () => "SSH-2.0-OpenSSH_9.0\r\n",
    ),
    check: (o) => expect(o.status).toBe(400),
    improvement: { item: "18.17", ref: (o) => expect(o.status).toBe(0) },
  });
});

describe("plain HTTP (absolute-form)", () => {
  scenario({
    name: "plain http:// request injected and forwarded over HTTP",
    action: curlAction(() => `http://plain.test:${httpUp.port}/plain`),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/KEY"]}`]);
      expect(hdr(o, "proxy-authorization")).toEqual([]);
    },
  });
  scenario({
    name: "plain http:// to an unknown host: 403",
    action: curlAction(() => `http://deny.test:${httpUp.port}/d`),
    check: (o) => expect(o.status).toBe(403),
  });
  scenario({
    name: "plain http:// passthrough",
    action: curlAction(() => `http://pass.test:${httpUp.port}/p`),
    check: (o) => expect(o.audit[0]).toMatchObject({ status: "passthrough" }),
  });
  scenario({
    name: "plain http:// upstream refused: 502 JSON, audit tls_error with upstream_status 502",
    action: curlAction(() => "http://refused.test:1/r"),
    check: (o) => {
      expect(o.status).toBe(502);
      expect(json(o)).toEqual({
        detail: "dial tcp 127.0.0.2:1: connect: connection refused",
        error: "clef-proxy: upstream unreachable",
      });
      expect(o.audit[0]).toMatchObject({ status: "tls_error", upstream_status: 502, service: "refused" });
    },
  });
  scenario({
    name: "plain http:// to the metadata address: netguard 502, the secret never fetched",
    action: curlAction(() => "http://meta.test/latest"),
    check: (o) => {
      expect(o.status).toBe(502);
      expect(json(o)).toEqual({
        detail: "netguard: address blocked by policy: meta.test resolves to 169.254.169.254 (cloud metadata)",
        error: "clef-proxy: upstream unreachable",
      });
      expect(o.audit[0]).toMatchObject({
        status: "tls_error",
        upstream_status: 502,
        service: "m",
        credential_handle: "ns/META",
      });
      expect(o.agent).toEqual([]);
      expect(o.log).toEqual(["upstream unreachable"]);
    },
    improvement: {
      item: "18.19",
      ref: (o) => {
        expect(o.status).toBe(502);
        expect(o.agent).toEqual(["/v1/secrets/ns/META"]);
        expect(o.log).toEqual(["injected"]);
      },
    },
  });
  scenario({
    name: "origin-form request to the proxy itself: goproxy's 500 text",
    audits: 0,
    action: rawAction((w) => `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${w.port}\r\n${auth(w)}Connection: close\r\n\r\n`),
    check: (o) => {
      expect(o.status).toBe(500);
      expect(o.body).toBe("This is a proxy server. Does not respond to non-proxy requests.\n");
    },
  });
});

describe("workload auth and malformed input", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  for (const [name, header] of [
    ["no Proxy-Authorization", ""],
    ["wrong token", `Proxy-Authorization: Basic ${b64("u:wrong")}\r\n`],
    ["lower-case basic", "LOWER"],
    ["Bearer scheme", "BEARER"],
    ["token as user name", "TOKUSER"],
  ] as const) {
    scenario({
      name: `407 exactly like the reference: ${name}`,
      audits: 0,
      action: rawAction((w) => {
        const h =
          header === "LOWER"
            ? `Proxy-Authorization: basic ${b64("u:" + w.token)}\r\n`
            : header === "BEARER"
              ? `Proxy-Authorization: Bearer ${w.token}\r\n`
              : header === "TOKUSER"
                ? `Proxy-Authorization: Basic ${b64(w.token + ":")}\r\n`
                : header;
        return `CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n${h}\r\n`;
      }, 400),
      check: (o) => {
        expect(o.status).toBe(407);
        expect(o.headers).toEqual({
          "Content-Type": "text/plain; charset=utf-8",
          "Proxy-Authenticate": 'Basic realm="clef-proxy"',
          "X-Content-Type-Options": "nosniff",
          "Content-Length": "30",
        });
        expect(o.body).toBe("proxy authentication required\n");
        // §20: no WARN when credentials are absent (the first request of curl and git); wrong
        // credentials are logged as the reference logs them once per quiet period, then summed
        if (header === "") expect(o.log).toEqual([]);
        else expect(["[]", '["workload auth failed"]']).toContain(JSON.stringify(o.log));
      },
      improvement: { item: "20.4", ref: (o) => expect(o.log).toEqual(["workload auth failed"]) },
    });
  }
  scenario({
    name: "empty user name with the right token is accepted",
    audits: 0,
    action: rawAction(
      (w) => `CONNECT api.test:443 HTTP/1.1\r\nProxy-Authorization: Basic ${b64(":" + w.token)}\r\n\r\n`,
      300,
    ),
    check: (o) => expect(o.extra).toEqual({ statusLine: "HTTP/1.0 200 OK" }),
  });
  scenario({
    name: "garbage request line: 400",
    audits: 0,
    action: rawAction("HELLO\r\n\r\n", 400),
    check: (o) => expect(o.status).toBe(400),
  });
  scenario({
    name: "HTTP/9.9: 505",
    audits: 0,
    action: rawAction("GET http://api.test/ HTTP/9.9\r\nHost: api.test\r\n\r\n", 400),
    check: (o) => {
      expect(o.status).toBe(505);
      expect(o.body).toBe("505 HTTP Version Not Supported: unsupported protocol version");
    },
  });
  scenario({
    name: "request header over 1 MiB on the listener: 431",
    audits: 0,
    action: rawAction(
      (w) => `CONNECT api.test:443 HTTP/1.1\r\n${auth(w)}X-Big: ${"a".repeat(1100 * 1024)}\r\n\r\n`,
      1500,
    ),
    check: (o) => expect(o.status).toBe(431),
  });
  scenario({
    name: "two different Content-Length values (plain): 400, nothing forwarded",
    audits: 0,
    action: rawAction(
      (w) =>
        `POST http://plain.test:${httpUp.port}/cl HTTP/1.1\r\nHost: plain.test:${httpUp.port}\r\n${auth(w)}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
      500,
    ),
    check: (o) => {
      expect(o.status).toBe(400);
      expect(o.upstream).toEqual([]);
    },
  });
  scenario({
    name: "malformed header inside a tunnel (bare CR)",
    audits: 0,
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () => `GET /m HTTP/1.1\r\nHost: api.test:${up.port}\r\nX-A: a\rb\r\n\r\n`,
    ),
    check: (o) => {
      expect(o.status).toBe(400);
      expect(o.upstream).toEqual([]);
    },
    improvement: { item: "18.17", ref: (o) => expect(o.status).toBe(0) },
  });
  scenario({
    name: "bare LF line ending inside a tunnel (header splitting)",
    audits: { ref: 1, ours: 0 },
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () => `GET /lf HTTP/1.1\r\nHost: api.test:${up.port}\r\nX-A: a\nInjected: 1\r\nConnection: close\r\n\r\n`,
    ),
    check: (o) => {
      expect(o.status).toBe(400);
      expect(o.upstream).toEqual([]);
    },
    improvement: { item: "18.17", ref: (o) => expect(hdr(o, "injected")).toEqual(["1"]) },
  });
  scenario({
    name: "header larger than 1 MiB inside a tunnel",
    audits: { ref: 1, ours: 0 },
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () =>
        `GET /big HTTP/1.1\r\nHost: api.test:${up.port}\r\nX-Big: ${"b".repeat(1100 * 1024)}\r\nConnection: close\r\n\r\n`,
      { timeoutMs: 3000 },
    ),
    check: (o) => {
      expect(o.status).toBe(431);
      expect(o.upstream).toEqual([]);
    },
    // the reference reads it whole and injects (the upstream, Bun.serve with its own header limit,
    // then refuses it)
    improvement: { item: "18.14", ref: (o) => expect(o.log).toContain("injected") },
  });
  scenario({
    name: "Content-Length with Transfer-Encoding inside a tunnel (smuggling)",
    audits: { ref: 1, ours: 0 },
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () =>
        `POST /s HTTP/1.1\r\nHost: api.test:${up.port}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`,
    ),
    check: (o) => {
      expect(o.status).toBe(400);
      expect(o.upstream).toEqual([]);
    },
    improvement: { item: "18.17", ref: (o) => expect(o.status).toBe(200) },
  });
  scenario({
    name: "Expect: 100-continue inside a tunnel",
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () =>
        `POST /e HTTP/1.1\r\nHost: api.test:${up.port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      { timeoutMs: 1200 },
    ),
    audits: { ref: 0, ours: 0 },
    check: (o) => expect((o.extra as { interim: string[] }).interim).toEqual(["HTTP/1.1 100 Continue"]),
    improvement: { item: "18.18", ref: (o) => expect((o.extra as { interim: string[] }).interim).toEqual([]) },
  });
});

describe("errors before forwarding", () => {
  const err500 = (msg: string) => (o: Observation) => {
    expect(o.status).toBe(500);
    expect(json(o)).toEqual({ error: msg });
    expect(o.upstream).toEqual([]);
    expect(o.audit[0]).toMatchObject({ status: "agent_error" });
  };
  scenario({
    name: "unknown scheme: 500",
    action: curlAction(() => https("scheme.test", "/s")),
    check: err500('clef-proxy: inject: unsupported scheme "digest"'),
  });
  scenario({
    name: "api_key_header without auth.header: 500",
    action: curlAction(() => https("nohdr.test", "/s")),
    check: err500('clef-proxy: inject: scheme "api_key_header" requires auth.header'),
  });
  scenario({
    name: "secret with CR/LF: 500 header-injection guard, secret not echoed",
    action: curlAction(() => https("crlf.test", "/s")),
    check: err500("clef-proxy: inject: credential value contains CR or LF (header injection guard)"),
  });
  scenario({
    name: "invalid header name in the manifest",
    audits: { ref: 0, ours: 1 },
    action: curlAction(() => https("badname.test", "/s")),
    check: err500('clef-proxy: inject: auth.header "X-Bad\\r\\nInjected" is not a valid header name'),
    improvement: {
      item: "18.5",
      ref: (o) => {
        expect(o.status).toBe(0);
        expect(o.audit).toEqual([]);
      },
    },
  });
  for (const [name, host] of [
    ["agent answers 404 for the secret", "missing.test"],
    ["agent answers 500 for the secret", "a500.test"],
    ["malformed credential handle", "bad.test"],
  ] as const) {
    scenario({
      name: `${name}: 502/500 JSON like the reference, audit agent_error`,
      action: curlAction(() => https(host, "/s")),
      check: (o) => {
        expect([500, 502]).toContain(o.status);
        expect(o.upstream).toEqual([]);
        expect(o.audit[0]).toMatchObject({ status: "agent_error" });
      },
    });
  }
});

describe("upstream failures and TLS", () => {
  scenario({
    name: "upstream refused inside a tunnel",
    audits: { ref: 0, ours: 1 },
    action: curlAction(() => "https://refused.test:1/r"),
    check: (o) => {
      expect(o.status).toBe(502);
      expect(json(o)).toEqual({
        detail: "dial tcp 127.0.0.2:1: connect: connection refused",
        error: "clef-proxy: upstream unreachable",
      });
      expect(o.audit[0]).toMatchObject({ status: "tls_error", upstream_status: 502 });
    },
    improvement: {
      item: "18.3",
      ref: (o) => {
        expect(o.status).toBe(0);
        expect(o.audit).toEqual([]);
      },
    },
  });
  scenario({
    name: "metadata address inside a tunnel: 502 and audit, the secret never fetched",
    audits: { ref: 0, ours: 1 },
    action: curlAction(() => "https://meta.test/latest"),
    check: (o) => {
      expect(o.status).toBe(502);
      expect(o.audit[0]).toMatchObject({ status: "tls_error", upstream_status: 502, service: "m" });
      expect(o.agent).toEqual([]);
    },
    improvement: {
      item: "18.3 §18.19",
      ref: (o) => {
        expect(o.status).toBe(0);
        expect(o.agent).toEqual(["/v1/secrets/ns/META"]);
      },
    },
  });
  scenario({
    name: "upstream certificate not trusted: nothing sent",
    audits: 1,
    action: curlAction(() => https("untrusted.test", "/u", rogue.port)),
    check: (o) => {
      expect(o.status).toBe(502);
      expect(o.upstream).toEqual([]);
      expect(o.audit[0]).toMatchObject({ status: "tls_error", upstream_status: 502 });
    },
    improvement: {
      item: "18.2",
      ref: (o) => expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["ns/UNTR"]}`]),
    },
  });
});

describe("responses", () => {
  scenario({
    name: "redirects are relayed, not followed",
    action: curlAction(() => https("api.test", "/status/302")),
    check: (o) => {
      expect(o.status).toBe(302);
      expect(o.upstream.length).toBe(1);
    },
  });
  scenario({
    name: "upstream 500 relayed with audit upstream_status",
    action: curlAction(() => https("api.test", "/status/503")),
    check: (o) => {
      expect(o.status).toBe(503);
      expect(o.audit[0]).toMatchObject({ status: "injected", upstream_status: 503 });
    },
  });
  scenario({
    name: "two Set-Cookie headers both reach the client",
    action: async (w) => {
      const r = await run([
        "curl",
        "-sS",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "--proxy",
        proxyUrl(w.port, w.token),
        "--cacert",
        w.caPath,
        https("api.test", "/cookies"),
      ]);
      return { status: 200, extra: r.stdout.split("\r\n").filter((l) => /^set-cookie:/i.test(l)) };
    },
    check: (o) => expect(o.extra).toEqual(["Set-Cookie: a=1; Path=/", "Set-Cookie: b=2; Path=/"]),
  });
  scenario({
    name: "HEAD keeps Content-Length and has no body",
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () => `HEAD /bytes/1234 HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: close\r\n\r\n`,
    ),
    check: (o) => {
      expect(o.status).toBe(200);
      expect(o.headers!["Content-Length"]).toBe("1234");
      expect(o.body).toBe("");
    },
  });
  scenario({
    name: "SSE events arrive in order",
    action: curlAction(() => https("api.test", "/sse"), ["-N"]),
    check: (o) => expect(o.body).toBe("data: event 0\n\ndata: event 1\n\ndata: event 2\n\n"),
  });
  scenario({
    name: "204 framing",
    action: tunnelAction(
      () => `api.test:${up.port}`,
      () => `GET /status/204 HTTP/1.1\r\nHost: api.test:${up.port}\r\n\r\n`,
      { timeoutMs: 800 },
    ),
    check: (o) => {
      expect(o.status).toBe(204);
      expect(o.headers!["Transfer-Encoding"]).toBeUndefined();
      expect(o.body).toBe("");
    },
    improvement: {
      item: "18.7",
      ref: (o) => {
        expect(o.headers!["Transfer-Encoding"]).toBe("chunked");
        expect(o.body).toBe("0\r\n\r\n");
      },
    },
  });
  scenario({
    name: "Content-Encoding passed through untouched (gzip body not decoded)",
    keepAcceptEncoding: true,
    action: async (w) => {
      const r = await run([
        "curl",
        "-sS",
        "-D",
        "-",
        "-o",
        "-",
        "-H",
        "Accept-Encoding: gzip",
        "--proxy",
        proxyUrl(w.port, w.token),
        "--cacert",
        w.caPath,
        https("api.test", "/gzip"),
      ]);
      return {
        status: 200,
        extra: { ce: /\r\ncontent-encoding: gzip\r\n/i.test(r.stdout), plain: r.stdout.endsWith("hello gzip") },
      };
    },
    check: (o) => {
      expect(o.extra).toEqual({ ce: true, plain: false });
      expect(hdr(o, "accept-encoding")).toEqual(["gzip"]);
    },
    improvement: { item: "20.3", ref: (o) => expect(o.extra).toEqual({ ce: false, plain: true }) },
  });
  scenario({
    name: "hop-by-hop request headers (Keep-Alive, TE, Connection-named) are not forwarded",
    action: curlAction(
      () => https("api.test", "/hop"),
      ["-H", "Keep-Alive: timeout=5", "-H", "TE: trailers", "-H", "Connection: X-Hop", "-H", "X-Hop: 1"],
    ),
    check: (o) => {
      expect(hdr(o, "keep-alive")).toEqual([]);
      expect(hdr(o, "te")).toEqual([]);
      expect(hdr(o, "x-hop")).toEqual([]);
    },
    improvement: {
      item: "18.8",
      ref: (o) => {
        expect(hdr(o, "keep-alive")).toEqual(["timeout=5"]);
        expect(hdr(o, "x-hop")).toEqual(["1"]);
      },
    },
  });
});

describe("WebSocket", () => {
  scenario({
    name: "upgrade relayed: 101, frames both ways, credential injected, audit upstream_status 101",
    action: async (w) => {
      const n = wsUp.upgrades.length;
      const req = `GET /chat HTTP/1.1\r\nHost: api.test:${wsUp.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      // interactive: the frame is sent once the 101 arrived (the reference drops client bytes that
      // arrive in the same packet as the upgrade request)
      const raw = await wsExchange(w, `api.test:${wsUp.port}`, req, wsClientFrame("hi"));
      const p = parseRaw(raw);
      const seen = wsUp.upgrades
        .slice(n)
        .map((h) =>
          h.filter(([k]) => !["x-clef-request-id", "user-agent", "accept", "accept-encoding"].includes(k)).sort(),
        );
      return {
        status: p.status,
        extra: {
          statusLine: p.statusLine,
          accept: p.headers.find(([k]) => k.toLowerCase() === "sec-websocket-accept")?.[1],
          echo: wsServerText(raw),
          seen,
        },
      };
    },
    check: (o) => {
      expect(o.status).toBe(101);
      expect(o.extra).toMatchObject({ echo: "echo:hi", accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" });
      expect((o.extra as { seen: Array<Array<[string, string]>> }).seen[0]).toContainEqual([
        "authorization",
        `Bearer ${SECRETS["ns/KEY"]}`,
      ]);
      expect(o.audit[0]).toMatchObject({ status: "injected", upstream_status: 101 });
    },
  });
});

describe("platform differences (docs/CONTRACT.md §20.5)", () => {
  scenario({
    name: "no Accept from the workload: fetch adds Accept: */* upstream, the reference adds none",
    action: async (w) => {
      const n = up.seen.length;
      await tunnelAction(
        () => `api.test:${up.port}`,
        () => `GET /accept HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: close\r\n\r\n`,
      )(w);
      return {
        status: 200,
        extra: up.seen.slice(n).map((x) => x.headers.filter(([k]) => k === "accept" || k === "user-agent")),
      };
    },
    check: (o) =>
      expect(o.extra).toEqual([
        [
          ["accept", "*/*"],
          ["user-agent", "Go-http-client/1.1"],
        ],
      ]),
    improvement: { item: "20.5", ref: (o) => expect(o.extra).toEqual([[["user-agent", "Go-http-client/1.1"]]]) },
  });
});

describe("agent calls", () => {
  scenario({
    name: "three requests for one handle: secret cached for a few seconds",
    audits: 3,
    action: async (w) => {
      for (let i = 0; i < 3; i++) await curlAction(() => https("cache.test", `/c${i}`))(w);
      return { status: 200 };
    },
    check: (o) => {
      expect(o.agent).toEqual(["/v1/secrets/ns/CACHE"]);
      expect(o.upstream.map((u) => u.headers.find(([k]) => k === "authorization")?.[1])).toEqual(
        Array(3).fill(`Bearer ${SECRETS["ns/CACHE"]}`),
      );
    },
    improvement: { item: "18.13", ref: (o) => expect(o.agent).toEqual(Array(3).fill("/v1/secrets/ns/CACHE")) },
  });
  scenario({
    name: "passthrough and denied requests never call the agent",
    compareAgent: true,
    audits: 2,
    action: async (w) => {
      await curlAction(() => https("pass.test", "/np"))(w);
      await curlAction(() => https("deny.test", "/nd"))(w);
      return { status: 0 };
    },
    check: (o) => expect(o.agent).toEqual([]),
  });
});

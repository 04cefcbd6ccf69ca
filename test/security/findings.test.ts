// Regression tests for the hostile-client findings of issue 13, one describe per finding, written
// to the decided target behaviour (R1–R8). Most of them FAIL against the binary the issue was
// filed on; that is their purpose. The bounded resource tests (R3 at scale, R4, R5, R6) are in
// resources.test.ts, the generative fuzzer in fuzz.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { connect as netConnect, type Socket } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { OUR_BIN } from "../helpers/bin.ts";
import { run } from "../helpers/clients.ts";
import { freePort, spawnProxy, startProxy, tempDir, writeHostsFile } from "../helpers/proxy.ts";
import { startWsUpstream, wsClientFrame, wsServerText } from "../helpers/upstream.ts";
import {
  basicAuth,
  connectHead,
  containsAny,
  escapeBytes,
  exchange,
  type ExchangeResult,
  hasResponses,
  header,
  JUNK_KINDS,
  junkHandshake,
  parseResponses,
  secretForms,
} from "./wire.ts";
import {
  cpuSeconds,
  S1,
  S2,
  SECRET_FORMS,
  startWorld,
  stopProxy,
  TOKEN,
  V,
  waitFor,
  type World,
  worldHosts,
} from "./world.ts";

/** Go net/http's answer to a request it cannot parse. */
/** Go's plain 400, with the Date every answer of ours carries (docs/CONTRACT.md §20.3). */
const GO_400 =
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nDate: <date>\r\nConnection: close\r\n\r\n400 Bad Request";

const undated = (t: string) =>
  t.replace(/\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n/, "\r\nDate: <date>\r\n");

let w: World;

beforeAll(async () => {
  w = await startWorld();
});

afterAll(async () => {
  await w?.stop();
});

type Kind = "tls" | "plain";

function upstreamPort(host: string, kind: Kind): number {
  if (host === "pass.test") return kind === "tls" ? w.passTlsPort : w.passPlainPort;
  return kind === "tls" ? w.tlsPort : w.plainPort;
}

/** One exchange inside a tunnel to `host` (CONNECT host:<its upstream port>), until one response. */
function inTunnel(kind: Kind, host: string, data: string, responses = 1, timeoutMs = 4000): Promise<ExchangeResult> {
  return exchange({
    port: w.port,
    mode: kind === "tls" ? "tls-tunnel" : "plain-tunnel",
    token: TOKEN,
    connectTarget: `${host}:${upstreamPort(host, kind)}`,
    ca: w.proxyCa,
    data,
    until: hasResponses(responses),
    timeoutMs,
  });
}

function onListener(data: string, responses = 1, timeoutMs = 4000, port = w.port): Promise<ExchangeResult> {
  return exchange({ port, mode: "listener", data, until: hasResponses(responses), timeoutMs });
}

interface Snapshot {
  api: number;
  pass: number;
  attackerConns: number;
  audit: number;
  vault: number;
  stderr: number;
}

function snapshot(): Snapshot {
  return {
    api: w.api.requests.length,
    pass: w.pass.requests.length,
    attackerConns: w.attacker.conns.length,
    audit: w.audit().length,
    vault: w.secretCalls("ns/V"),
    stderr: w.proxy.stderr.length,
  };
}

/** After a refused request: nothing reached any upstream, no audit line, the agent was not asked. */
async function expectUntouched(before: Snapshot): Promise<void> {
  await Bun.sleep(400);
  expect({
    attackerConns: w.attacker.conns.length - before.attackerConns,
    upstreamRequests: w.api.requests.length - before.api + (w.pass.requests.length - before.pass),
    auditLines: w.audit().length - before.audit,
    vaultSecretFetches: w.secretCalls("ns/V") - before.vault,
  }).toEqual({ attackerConns: 0, upstreamRequests: 0, auditLines: 0, vaultSecretFetches: 0 });
}

const text = (r: ExchangeResult) => r.data.toString("latin1");

/** Audit line for a request id, waiting for it. */
async function auditFor(id: string, audit = () => w.audit(), timeoutMs = 3000) {
  return waitFor(() => audit().find((l) => l.request_id === id), timeoutMs);
}

// ------------------------------------------------------------------------------------------------
describe("finding 1 (critical): request-target redirection (R1)", () => {
  const badTargets = (kind: Kind, port: number): string[] => {
    const own = kind === "tls" ? "https" : "http";
    const other = kind === "tls" ? "http" : "https";
    return [
      "@evil.test/x",
      `@127.0.0.2:${port}/x`,
      "@evil.test",
      "evil.test/x",
      "\\@evil.test/x",
      "%40evil.test/x",
      "/x#frag",
      "/x?a#b",
      "#/x",
      `${own}://u@vault.test:${port}/x`,
      `${own}://vault.test:${port}@evil.test/x`,
      `${own}://vault.test:${port}/x#frag`,
      `${other}://vault.test:${port}/x`,
    ];
  };

  for (const kind of ["tls", "plain"] as const) {
    test(`${kind === "tls" ? "TLS" : "cleartext"} tunnel to a service: every non-origin-form target → Go's 400, nothing sent, no audit, no secret fetched`, async () => {
      const port = upstreamPort("vault.test", kind);
      const failures: string[] = [];
      for (const target of badTargets(kind, port)) {
        const before = snapshot();
        const r = await inTunnel(kind, "vault.test", `GET ${target} HTTP/1.1\r\nHost: vault.test:${port}\r\n\r\n`);
        await Bun.sleep(150);
        const got = {
          answer: undated(text(r)) === GO_400 ? "go-400" : text(r).split("\r\n")[0],
          attacker: w.attacker.conns.length - before.attackerConns,
          upstream: w.api.requests.length - before.api,
          audit: w.audit().length - before.audit,
          vault: w.secretCalls("ns/V") - before.vault,
        };
        if (got.answer !== "go-400" || got.attacker || got.upstream || got.audit || got.vault)
          failures.push(`GET ${escapeBytes(target)} → ${JSON.stringify(got)}`);
      }
      expect(failures).toEqual([]);
    });
  }

  test("passthrough host: `@evil.test/x` and `@127.0.0.2:<port>/x` → 400, the attacker sees nothing", async () => {
    for (const kind of ["tls", "plain"] as const) {
      const port = upstreamPort("pass.test", kind);
      for (const target of ["@evil.test/x", `@127.0.0.2:${port}/x`]) {
        const before = snapshot();
        const r = await inTunnel(kind, "pass.test", `GET ${target} HTTP/1.1\r\nHost: pass.test:${port}\r\n\r\n`);
        expect(`${kind} ${target} → ${text(r).split("\r\n")[0]}`).toBe(`${kind} ${target} → HTTP/1.1 400 Bad Request`);
        expect(undated(text(r))).toBe(GO_400);
        await expectUntouched(before);
      }
    }
  });

  test("listener: absolute-form http:// with userinfo or a fragment → 400, nothing sent, no audit", async () => {
    const p = w.plainPort;
    for (const target of [
      `http://u@vault.test:${p}/x`,
      `http://vault.test:${p}@evil.test/x`,
      `http://vault.test:${p}@127.0.0.2:${p}/x`,
      `http://vault.test:${p}/x#frag`,
      `http://vault.test:${p}/x?a#b`,
    ]) {
      const before = snapshot();
      const r = await onListener(
        `GET ${target} HTTP/1.1\r\nHost: vault.test:${p}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`,
      );
      expect(`${target} → ${text(r).split("\r\n")[0]}`).toBe(`${target} → HTTP/1.1 400 Bad Request`);
      expect(undated(text(r))).toBe(GO_400);
      await expectUntouched(before);
    }
  });

  test("api_key_query: `?a#b` (the injected parameter would hide in the fragment) → 400, nothing sent", async () => {
    for (const kind of ["tls", "plain"] as const) {
      const before = snapshot();
      const r = await inTunnel(
        kind,
        "q.test",
        `GET /x?a#b HTTP/1.1\r\nHost: q.test:${upstreamPort("q.test", kind)}\r\n\r\n`,
      );
      expect(undated(text(r))).toBe(GO_400);
      await expectUntouched(before);
    }
  });

  // Bun's fetch collapses the leading "//" of a path (docs/CONTRACT.md §20.5): the path may arrive
  // as "/evil.test/x" — what matters is the host it goes to.
  test("control: `//evil.test/x` is origin-form: forwarded to the vetted host, never to evil.test", async () => {
    for (const kind of ["tls", "plain"] as const) {
      const before = snapshot();
      const port = upstreamPort("api.test", kind);
      const r = await inTunnel(kind, "api.test", `GET //evil.test/x HTTP/1.1\r\nHost: api.test:${port}\r\n\r\n`);
      const [res] = parseResponses(r.data);
      expect(res?.status).toBe(200);
      expect(header(res!, "x-rec-who")).toBe("api");
      expect(["//evil.test/x", "/evil.test/x"]).toContain(w.api.requests.at(-1)?.target ?? "");
      expect(w.attacker.conns.length).toBe(before.attackerConns);
    }
  });

  test("control: absolute-form naming the tunnel's host with the tunnel's scheme is accepted", async () => {
    for (const kind of ["tls", "plain"] as const) {
      const port = upstreamPort("api.test", kind);
      const scheme = kind === "tls" ? "https" : "http";
      const r = await inTunnel(
        kind,
        "api.test",
        `GET ${scheme}://api.test:${port}/abs?z=1 HTTP/1.1\r\nHost: api.test:${port}\r\n\r\n`,
      );
      const [res] = parseResponses(r.data);
      expect(res?.status).toBe(200);
      expect(w.api.requests.at(-1)?.target).toBe("/abs?z=1");
    }
  });

  test("control: `OPTIONS *` is not refused as malformed and reaches no other host", async () => {
    const before = snapshot();
    const r = await inTunnel("tls", "api.test", `OPTIONS * HTTP/1.1\r\nHost: api.test:${w.tlsPort}\r\n\r\n`);
    expect(undated(text(r))).not.toBe(GO_400);
    expect(parseResponses(r.data)[0]?.status).toBeGreaterThan(0);
    await Bun.sleep(200);
    expect(w.attacker.conns.length).toBe(before.attackerConns);
  });
});

// ------------------------------------------------------------------------------------------------
describe("finding 2 (high): no secret and no request query in upstream error answers or logs (R2)", () => {
  const MARK = "Q7Zmark";
  const forms = secretForms(S2);
  for (const behaviour of ["garbage", "bighead", "badcl", "midhead"] as const) {
    for (const mode of ["tls", "plain", "listener"] as const) {
      test(`q.test upstream answering ${behaviour} (${mode}) → 502 upstream unreachable without secret or query; audit tls_error`, async () => {
        const before = snapshot();
        // (no "tls" in the path: today's error classifier keys on that word in the message)
        const tag = { tls: "enc", plain: "clr", listener: "lst" }[mode];
        const path = `/__${behaviour}-${tag}?${MARK}=1&x=2`;
        const r =
          mode === "listener"
            ? await onListener(
                `GET http://q.test:${w.plainPort}${path} HTTP/1.1\r\nHost: q.test:${w.plainPort}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`,
                1,
                8000,
              )
            : await inTunnel(
                mode,
                "q.test",
                `GET ${path} HTTP/1.1\r\nHost: q.test:${upstreamPort("q.test", mode)}\r\n\r\n`,
                1,
                8000,
              );
        const [res] = parseResponses(r.data);
        expect(res?.status).toBe(502);
        expect(header(res!, "content-type")).toBe("application/json");
        const body = JSON.parse(res!.body.toString());
        expect(Object.keys(body)).toEqual(["detail", "error"]);
        expect(body.error).toBe("clef-proxy: upstream unreachable");
        expect(typeof body.detail).toBe("string");
        // neither the secret (any encoding) nor the workload's query in the answer
        expect(containsAny(r.data, forms)?.toString() ?? null).toBeNull();
        expect(text(r)).not.toContain(MARK);
        // the request did reach the upstream with the secret (so there was something to leak)
        const seen = w.api.requests.find((q) => q.target.startsWith(`/__${behaviour}-${tag}`));
        expect(seen?.requestId).toBeDefined();
        const a = await auditFor(seen!.requestId!);
        expect(a).toMatchObject({ status: "tls_error", upstream_status: 502 });
        await Bun.sleep(100);
        const newStderr = w.proxy.stderr.slice(before.stderr);
        const leaks = newStderr.filter((l) => containsAny(l, forms) || l.includes(MARK));
        expect(leaks).toEqual([]);
      });
    }
  }
});

// ------------------------------------------------------------------------------------------------
describe("finding 3 (high): junk where the ClientHello should be (R3, small scale)", () => {
  test("20 junk handshakes (4 kinds) leave nothing behind: a normal request is served, SIGTERM exits at once", async () => {
    const x = await w.extraProxy({ config: { serve: { drain_timeout: "10s" } } });
    try {
      for (let i = 0; i < 20; i++)
        await junkHandshake(x.port, TOKEN, `api.test:${w.tlsPort}`, JUNK_KINDS[i % JUNK_KINDS.length]!, i + 1);
      await Bun.sleep(300);
      const t0 = Date.now();
      const r = await exchange({
        port: x.port,
        mode: "tls-tunnel",
        token: TOKEN,
        connectTarget: `api.test:${w.tlsPort}`,
        ca: x.proxyCa,
        data: `GET /after-junk HTTP/1.1\r\nHost: api.test:${w.tlsPort}\r\n\r\n`,
        until: hasResponses(1),
        timeoutMs: 4000,
      });
      expect(parseResponses(r.data)[0]?.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(2000);
      const t1 = Date.now();
      x.proxy.kill("SIGTERM");
      const code = await Promise.race([x.proxy.exited, Bun.sleep(12_000).then(() => -1)]);
      const took = Date.now() - t1;
      expect({ code, withinBudget: took <= 2500 }).toEqual({ code: 0, withinBudget: true });
    } finally {
      await x.stop();
    }
  }, 40_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 7 (low): wrong workload tokens are rate-limited (R7a)", () => {
  test("200 connections guessing for 5 s get ≤ 150 answers and a handful of WARN lines; no-auth and the right token are not limited", async () => {
    const x = await w.extraProxy();
    try {
      const wrong = `CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\nProxy-Authorization: ${basicAuth("wrong-guess")}\r\n\r\n`;
      let answers = 0;
      const floodStart = Date.now();
      const stopAt = floodStart + 5000;
      const worker = async () => {
        while (Date.now() < stopAt) {
          await new Promise<void>((resolve) => {
            const s: Socket = netConnect(x.port, "127.0.0.1", () => s.write(wrong));
            let buf = "";
            s.on("data", (d: Buffer) => {
              buf += d.toString("latin1");
              let i: number;
              while ((i = buf.indexOf("proxy authentication required\n")) >= 0) {
                answers++;
                buf = buf.slice(i + 30);
                if (Date.now() < stopAt) s.write(wrong);
                else s.destroy();
              }
            });
            const t = setTimeout(() => s.destroy(), Math.max(1, stopAt - Date.now()));
            s.on("error", () => {});
            s.on("close", () => {
              clearTimeout(t);
              resolve();
            });
          });
          await Bun.sleep(10);
        }
      };
      await Promise.all(Array.from({ length: 200 }, worker));
      // no Proxy-Authorization at all: an immediate 407, never rate-limited, no WARN
      const failedLines = () => x.proxy.stderr.filter((l) => l.includes('msg="workload auth failed"')).length;
      const warnsBefore = failedLines();
      const t0 = Date.now();
      const noAuth = await Promise.all(
        Array.from({ length: 20 }, () =>
          exchange({
            port: x.port,
            mode: "listener",
            data: "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n",
            until: hasResponses(1),
            timeoutMs: 3000,
          }),
        ),
      );
      const noAuthMs = Date.now() - t0;
      await Bun.sleep(200); // their stderr lines, if any
      const noAuthWarned = failedLines() - warnsBefore;
      // the right token still gets through
      const ok = await exchange({
        port: x.port,
        mode: "listener",
        data: connectHead(`api.test:${w.tlsPort}`, TOKEN),
        until: (b) => b.includes("\r\n\r\n"),
        timeoutMs: 3000,
      });
      // the aggregated WARN line comes at most once per 10 s: give it those 10 s, then one more
      // failure in case the summary is written when the next failure arrives
      const aggregated = () => x.proxy.stderr.some((l) => l.includes('msg="workload auth failures"'));
      await Bun.sleep(Math.max(0, floodStart + 10_500 - Date.now()));
      if (!aggregated()) {
        await exchange({ port: x.port, mode: "listener", data: wrong, until: hasResponses(1), timeoutMs: 2000 });
        await waitFor(aggregated, 2500, 100);
      }
      const warns = x.proxy.stderr.filter((l) => /workload auth fail/.test(l));
      expect({
        answers: answers <= 150 ? "≤150" : answers,
        noAuth407: noAuth.filter((r) => text(r).startsWith("HTTP/1.1 407 ")).length,
        noAuthFast: noAuthMs < 1500,
        noAuthWarned,
        rightToken: text(ok).split("\r\n")[0],
        warnLines: warns.length <= 5 ? "≤5" : warns.length,
        first: /level=WARN msg="workload auth failed" remote=127\.0\.0\.1:\d+ host=api\.test:443 method=CONNECT/.test(
          warns[0] ?? "",
        ),
        aggregated: warns.some((l) => /level=WARN msg="workload auth failures" count=\d+/.test(l)),
      }).toEqual({
        answers: "≤150",
        noAuth407: 20,
        noAuthFast: true,
        noAuthWarned: 0,
        rightToken: "HTTP/1.0 200 OK",
        warnLines: "≤5",
        first: true,
        aggregated: true,
      });
    } finally {
      await x.stop();
    }
  }, 45_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 7 (low): methods are forwarded exactly or refused with 501 (R7b)", () => {
  test("GET HEAD POST PUT DELETE OPTIONS PATCH reach the upstream exactly as sent", async () => {
    const before = snapshot();
    const got: string[] = [];
    for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const body = ["POST", "PUT", "PATCH"].includes(m) ? "{}" : "";
      const r = await inTunnel(
        "tls",
        "api.test",
        `${m} /m-${m} HTTP/1.1\r\nHost: api.test:${w.tlsPort}\r\n${body ? "Content-Length: 2\r\n" : ""}\r\n${body}`,
      );
      const seen = w.api.requests.find((q) => q.target === `/m-${m}`);
      got.push(`${m}: ${parseResponses(r.data)[0]?.status} ${seen?.method}`);
    }
    expect(got).toEqual(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"].map((m) => `${m}: 200 ${m}`));
    // every line written before the next test takes its snapshot
    for (let i = 0; i < 100 && w.audit().length - before.audit < 7; i++) await Bun.sleep(20);
    expect(w.audit().length - before.audit).toBe(7);
  });

  for (const m of ["FOO", "patch", "PROPFIND", "TRACE", "get", "CONNECT"]) {
    test(`${m} inside a tunnel → 501 unsupported_method JSON, audit denied, nothing forwarded`, async () => {
      const before = snapshot();
      const host = `api.test:${w.tlsPort}`;
      const r = await inTunnel("tls", "api.test", `${m} /u-${m} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const [res] = parseResponses(r.data);
      expect(res?.status).toBe(501);
      expect(header(res!, "content-type")).toBe("application/json");
      expect(header(res!, "x-clef-proxy-error")).toBe("unsupported_method");
      expect(res!.body.toString()).toBe(
        `{"error":"clef-proxy: method \\"${m}\\" is not supported","host":"${host}","reason":"unsupported_method"}\n`,
      );
      await Bun.sleep(300);
      expect(w.api.requests.length - before.api).toBe(0);
      const lines = w.audit().slice(before.audit);
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatchObject({ method: m, status: "denied", reason: "unsupported_method", path: `/u-${m}` });
    });
  }

  test("on the listener too: FOO http://api.test/… → 501, nothing forwarded", async () => {
    const before = snapshot();
    const host = `api.test:${w.plainPort}`;
    const r = await onListener(
      `FOO http://${host}/lf HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`,
    );
    const [res] = parseResponses(r.data);
    expect(res?.status).toBe(501);
    expect(header(res!, "x-clef-proxy-error")).toBe("unsupported_method");
    await Bun.sleep(300);
    expect(w.api.requests.length - before.api).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------
describe("finding 7 (low): a client that stops reading is cut (R7c)", () => {
  test("no write progress for 30 s → connection cut (< 45 s), upstream request aborted, one audit line", async () => {
    const target = `pass.test:${w.passPlainPort}`;
    const t0 = Date.now();
    const s: Socket = netConnect(w.port, "127.0.0.1", () =>
      s.write(
        `GET http://${target}/__endless-r7c HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`,
      ),
    );
    s.on("error", () => {});
    let clientClosed = false;
    s.on("close", () => (clientClosed = true));
    s.pause(); // never read: the proxy's writes stall once the socket buffers are full
    try {
      const req = await waitFor(() => w.pass.requests.find((q) => q.target === "/__endless-r7c"), 5000);
      expect(req).toBeDefined();
      const aborted = await waitFor(() => req!.conn.closedAt, 50_000, 200);
      const tookMs = (aborted ?? Date.now()) - t0;
      expect({ upstreamClosed: aborted !== undefined, within45s: tookMs < 45_000 }).toEqual({
        upstreamClosed: true,
        within45s: true,
      });
      const a = await auditFor(req!.requestId!, undefined, 5000);
      expect(a).toBeDefined();
      expect(w.audit().filter((l) => l.request_id === req!.requestId).length).toBe(1);
      s.resume(); // drain what was buffered: the proxy's side must be closed
      expect(await waitFor(() => clientClosed, 10_000, 100)).toBe(true);
    } finally {
      s.destroy();
    }
  }, 75_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 7 (low): stdout closed at start (R7d)", () => {
  test("`serve >&-` exits 2 with one `audit init` line naming stdout, and serves nothing", async () => {
    const port = await freePort();
    const cfg = join(tempDir("clef-cfg-"), "config.json");
    writeFileSync(cfg, JSON.stringify({ listen: { port } }));
    const p = spawnProxy({
      bin: "sh",
      args: ["-c", 'exec "$0" "$@" >&-', OUR_BIN, "serve", "--config", cfg],
      env: {
        CLEF_PROXY_AGENT_URL: w.agent.url,
        CLEF_PROXY_AGENT_TOKEN: "agent-token-0123",
        CLEF_PROXY_TOKEN: TOKEN,
      },
    });
    const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => -1)]);
    const served = await exchange({
      port,
      mode: "listener",
      data: connectHead(`api.test:${w.tlsPort}`, TOKEN),
      until: (b) => b.includes("\r\n\r\n"),
      timeoutMs: 1000,
    });
    if (code === -1) await stopProxy(p, 2000);
    const lines = p.stderr.filter((l) => l.includes("audit init"));
    expect({
      code,
      auditInitLines: lines.length,
      namesStdout: /stdout/.test(lines[0] ?? ""),
      answered: text(served),
    }).toEqual({
      code: 2,
      auditInitLines: 1,
      namesStdout: true,
      answered: "",
    });
  }, 20_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 7 (low): a head that arrives in small pieces is not re-parsed from its start (R7e)", () => {
  // The same number of pieces (1,024), 64 times the bytes: parsing that is linear in the bytes costs
  // about the same (each piece's own work — a wake-up, a read — dominates: 0.17 ms per piece under
  // nested virtualisation, where the fixed 0.15 s budget this test had failed), parsing that re-reads
  // the head from its start costs several times more (it scans ≈512 MiB for the 1 MiB head: 1.27 s
  // against 0.25 s for the 16 KiB, measured with that bug put in on purpose; without it 0.17 against
  // 0.21–0.25 s). A ratio, not a time: the per-piece cost is the machine's.
  test("1 MiB of head in 1,024 pieces costs the proxy < 2× the CPU of 16 KiB in 1,024 pieces", async () => {
    const cpuFor = async (total: number, pieceSize: number) => {
      const line = `X-Pad: ${"a".repeat(1016)}\r\n`; // 1 KiB per header line; the pieces cut anywhere
      let head = `GET http://api.test:${w.plainPort}/cpu HTTP/1.1\r\nHost: api.test:${w.plainPort}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n`;
      while (head.length + line.length < total - 64) head += line;
      await Bun.sleep(200);
      const before = cpuSeconds(w.proxy.pid);
      // no terminating blank line: only the incremental parsing is measured, not a forward
      const r = await exchange({
        port: w.port,
        mode: "listener",
        data: head,
        pieceSize,
        noResponseMs: 500,
        timeoutMs: 30_000,
      });
      expect(r.data.length).toBe(0); // the head was still incomplete when measured
      return cpuSeconds(w.proxy.pid) - before;
    };
    const small = await cpuFor(16 * 1024, 16);
    const large = await cpuFor(1024 * 1024, 1024);
    expect(large).toBeLessThan(2 * Math.max(small, 0.02)); // 0.02 s: two clock ticks, the reading's grain
  }, 60_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 7 (low): a partially written audit batch is not written twice", () => {
  test("audit file on a full disk: after space returns every line is whole and written once", async () => {
    const dir = tempDir("clef-auditfs-");
    const port = await freePort();
    const cfg = join(tempDir("clef-cfg-"), "config.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        listen: { port },
        metadata: { proxy_id: "sec" },
        audit: { destination: "file", file: `${dir}/audit.log` },
      }),
    );
    const hosts = writeHostsFile(worldHosts());
    // a private 64 KiB tmpfs, 56 KiB of it taken: the audit file gets 8 KiB, then ENOSPC mid-line
    const script =
      'mount -t tmpfs -o size=64k tmpfs "$1" && head -c 57344 /dev/zero > "$1/filler" && ' +
      'mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';
    const p = await startProxy({
      bin: "unshare",
      args: ["-m", "--propagation", "private", "sh", "-c", script, "sh", dir, hosts, OUR_BIN, "serve", "--config", cfg],
      env: {
        CLEF_PROXY_AGENT_URL: w.agent.url,
        CLEF_PROXY_AGENT_TOKEN: "agent-token-0123",
        CLEF_PROXY_TOKEN: TOKEN,
      },
    });
    try {
      const N = 60;
      for (let i = 0; i < N; i++) {
        const r = await exchange({
          port,
          mode: "listener",
          data: `GET http://deny.test:1/line-${i} HTTP/1.1\r\nHost: deny.test:1\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`,
          until: hasResponses(1),
          timeoutMs: 3000,
        });
        expect(parseResponses(r.data)[0]?.status).toBe(403);
      }
      expect(await waitFor(() => p.stderr.some((l) => l.includes("audit: write failed")), 5000)).toBe(true);
      spawnSync("nsenter", ["-t", String(p.pid), "-m", "rm", "-f", `${dir}/filler`]);
      await waitFor(() => p.stderr.some((l) => l.includes("audit: destination writable again")), 5000);
      await Bun.sleep(500);
      const file = spawnSync("nsenter", ["-t", String(p.pid), "-m", "cat", `${dir}/audit.log`]).stdout.toString();
      const lines = file.split("\n").filter((l) => l !== "");
      const broken = lines.filter((l) => {
        try {
          JSON.parse(l);
          return false;
        } catch {
          return true;
        }
      });
      const ids = lines.filter((l) => !broken.includes(l)).map((l) => JSON.parse(l).request_id as string);
      expect({ broken: broken.map((b) => b.slice(0, 80)), lines: lines.length, unique: new Set(ids).size }).toEqual({
        broken: [],
        lines: N,
        unique: N,
      });
    } finally {
      await stopProxy(p);
    }
  }, 40_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 8 (info): h2c, wildcards and odd characters in names, NAT64 and IPv4-compatible netguard (R8)", () => {
  test("`Upgrade: h2c` is forwarded as an ordinary request; the next request on the tunnel is handled on its own", async () => {
    const before = snapshot();
    const host = `api.test:${w.tlsPort}`;
    const r = await inTunnel(
      "tls",
      "api.test",
      `GET /h2c-one HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n` +
        `GET /h2c-two HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      2,
    );
    const res = parseResponses(r.data);
    expect(res.map((x) => x.status)).toEqual([200, 200]);
    const one = w.api.requests.find((q) => q.target === "/h2c-one");
    const two = w.api.requests.find((q) => q.target === "/h2c-two");
    const names = (one?.headers ?? []).map(([k]) => k.toLowerCase());
    expect({ upgrade: names.includes("upgrade"), settings: names.includes("http2-settings") }).toEqual({
      upgrade: false,
      settings: false,
    });
    expect(two?.requestId).toBeDefined();
    expect(two?.requestId).not.toBe(one?.requestId);
    await Bun.sleep(200);
    const lines = w.audit().slice(before.audit);
    expect(lines.map((l) => l.path).sort()).toEqual(["/h2c-one", "/h2c-two"]);
    expect(lines.find((l) => l.path === "/h2c-two")?.request_id).toBe(two!.requestId!);
  });

  test("control: `Upgrade: websocket` still works through a TLS tunnel (101, frames both ways, audit 101)", async () => {
    const ws = startWsUpstream({ hostname: "127.0.0.3", pki: w.pki });
    try {
      const host = `pass.test:${ws.port}`;
      const r = await exchange({
        port: w.port,
        mode: "tls-tunnel",
        token: TOKEN,
        connectTarget: host,
        ca: w.proxyCa,
        data: Buffer.concat([
          Buffer.from(
            `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          ),
          wsClientFrame("hello"),
        ]),
        until: (b) => wsServerText(b.toString("latin1")) !== null,
        timeoutMs: 5000,
      });
      expect(text(r)).toStartWith("HTTP/1.1 101 ");
      expect(wsServerText(text(r))).toBe("echo:hello");
      const a = await waitFor(() => w.audit().find((l) => l.path === "/ws" && l.host === host), 3000);
      expect(a?.upstream_status).toBe(101);
    } finally {
      ws.stop();
    }
  });

  test("CONNECT to `*.x.test`, `a%2eb`, `[`, `a b` → 400; `a_b.test` is fine", async () => {
    const answers: Record<string, string> = {};
    for (const t of ["*.x.test:443", "a%2eb:443", "[:443", "[", "a b:443", "a_b.test:443"]) {
      const r = await exchange({
        port: w.port,
        mode: "listener",
        data: `CONNECT ${t} HTTP/1.1\r\nHost: ${t}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`,
        until: (b) => b.includes("\r\n\r\n"),
        timeoutMs: 2000,
      });
      answers[t] = text(r).split("\r\n")[0]!;
    }
    expect(answers).toEqual({
      "*.x.test:443": "HTTP/1.1 400 Bad Request",
      "a%2eb:443": "HTTP/1.1 400 Bad Request",
      "[:443": "HTTP/1.1 400 Bad Request",
      "[": "HTTP/1.1 400 Bad Request",
      "a b:443": "HTTP/1.1 400 Bad Request",
      "a_b.test:443": "HTTP/1.0 200 OK",
    });
  });

  test("SNI `*.api.test` → the TLS handshake is refused", async () => {
    const before = snapshot();
    const r = await exchange({
      port: w.port,
      mode: "tls-tunnel",
      token: TOKEN,
      connectTarget: `api.test:${w.tlsPort}`,
      servername: "*.api.test",
      ca: w.proxyCa,
      data: `GET /sni HTTP/1.1\r\nHost: api.test:${w.tlsPort}\r\n\r\n`,
      until: hasResponses(1),
      timeoutMs: 3000,
    });
    expect(r.tunnelUp).toBe(false);
    await Bun.sleep(200);
    expect(w.api.requests.length).toBe(before.api);
  });

  test("inner `Host: *.api.test` → 400 invalid_host JSON, audit denied, nothing forwarded", async () => {
    const before = snapshot();
    const r = await inTunnel("tls", "api.test", "GET /star HTTP/1.1\r\nHost: *.api.test\r\n\r\n");
    const [res] = parseResponses(r.data);
    expect(res?.status).toBe(400);
    expect(header(res!, "content-type")).toBe("application/json");
    expect(header(res!, "x-clef-proxy-error")).toBe("invalid_host");
    expect(res!.body.toString()).toBe(
      '{"error":"clef-proxy: invalid host name","host":"*.api.test","reason":"invalid_host"}\n',
    );
    await Bun.sleep(300);
    expect(w.api.requests.length).toBe(before.api);
    const lines = w.audit().slice(before.audit);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ status: "denied", reason: "invalid_host", host: "*.api.test" });
  });

  test("netguard: NAT64, IPv4-compatible and IPv4-mapped forms of 169.254.169.254 → 502 blocked by policy", async () => {
    // In a network namespace with only loopback (the product today dials these addresses: they must
    // not leave the machine), the proxy in standalone mode with the three literals as passthrough
    // hosts, curl run inside the same namespace.
    const dir = tempDir("clef-ng-");
    const port = 18000 + Math.floor(Math.random() * 1000);
    const literals = ["64:ff9b::a9fe:a9fe", "::a9fe:a9fe", "::ffff:169.254.169.254"];
    writeFileSync(join(dir, "config.json"), JSON.stringify({ listen: { port } }));
    writeFileSync(
      join(dir, "services.json"),
      JSON.stringify({ schema_version: 1, services: [], passthrough_hosts: literals, secrets: {} }),
    );
    const p = await startProxy({
      bin: "unshare",
      args: [
        "-n",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" "$@"',
        OUR_BIN,
        "serve",
        "--config",
        join(dir, "config.json"),
        "--services",
        join(dir, "services.json"),
      ],
      env: { CLEF_PROXY_TOKEN: TOKEN },
    });
    try {
      const got: Record<string, string> = {};
      for (const lit of literals) {
        const c = await run([
          "nsenter",
          "-t",
          String(p.pid),
          "-n",
          "curl",
          "-sS",
          "-i",
          "--max-time",
          "5",
          "-p",
          "-x",
          `http://u:${TOKEN}@127.0.0.1:${port}`,
          `http://[${lit}]:443/ng`,
        ]);
        const i = c.stdout.lastIndexOf("HTTP/1.1 ");
        const last = i >= 0 ? c.stdout.slice(i) : c.stdout + c.stderr;
        const status = last.split("\r\n")[0] ?? "";
        const body = last.slice(last.indexOf("\r\n\r\n") + 4);
        got[lit] = `${status} ${/netguard: address blocked by policy/.test(body) ? "blocked" : body.trim()}`;
      }
      expect(got).toEqual(Object.fromEntries(literals.map((l) => [l, "HTTP/1.1 502 Bad Gateway blocked"])));
    } finally {
      await stopProxy(p);
    }
  }, 30_000);
});

// ------------------------------------------------------------------------------------------------
describe("whole file", () => {
  test("no secret (S1, S2, V in any encoding) in any stderr or audit line of the main proxy", () => {
    const leaks = [...w.proxy.stderr, ...w.proxy.stdout].filter((l) => containsAny(l, SECRET_FORMS));
    expect(leaks.map((l) => l.slice(0, 200))).toEqual([]);
    // the secrets were in use (so the check means something)
    expect(w.api.requests.some((q) => q.head.includes(S1))).toBe(true);
    expect(V.length).toBeGreaterThan(0);
    expect(S2.length).toBeGreaterThan(0);
  });
});

// ------------------------------------------------------------------------------------------------
describe("found by the fuzzer: hop-by-hop stripping cannot remove the Host the upstream sees", () => {
  // `Connection: Host` named Host as hop-by-hop: it was stripped and fetch sent the dialled address
  // as Host — the credential went to the right address under another name, which a virtual-hosting
  // upstream (a CDN, a shared ingress) may route to another tenant.
  for (const kind of ["tls", "plain"] as const)
    test(`${kind} tunnel: \`Connection: Host\` → the upstream still sees Host api.test`, async () => {
      const port = upstreamPort("api.test", kind);
      const r = await inTunnel(
        kind,
        "api.test",
        `OPTIONS /conn-host HTTP/1.1\r\nHost: api.test:${port}\r\nConnection: Host, X-Other\r\nX-Other: 1\r\n\r\n`,
      );
      expect(parseResponses(r.data)[0]?.status).toBe(200);
      const seen = w.api.requests.findLast((q) => q.target === "/conn-host");
      expect(seen?.headers.find(([k]) => k.toLowerCase() === "host")?.[1]).toBe(`api.test:${port}`);
      expect(seen?.headers.some(([k]) => k.toLowerCase() === "x-other")).toBe(false);
    });
});

// Upstream proxy chaining through a REAL corporate proxy (Debian's tinyproxy), with and without
// Basic auth, for HTTPS (CONNECT) and plain HTTP targets. The proxy selection rules (ProxySelector) are
// unit-tested in test/unit/http/corporate-proxy.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { join } from "node:path";
import { agentEnv, manifest, startAgent, type Agent } from "./helpers/agent.ts";
import { curl, parseCurl, run, tunnelExchange } from "./helpers/clients.ts";
import { freePort, startProxy } from "./helpers/proxy.ts";
import { haveTinyproxy, startTinyproxy } from "./helpers/tinyproxy.ts";
import { makeTestPki, type TestPki } from "./helpers/tls.ts";
import { startUpstream, startWsUpstream, wsClientFrame, wsServerText, type Upstream } from "./helpers/upstream.ts";

const TOKEN = "workload-token-xyz";

describe.skipIf(!haveTinyproxy)("chaining through tinyproxy (the name is sent, §18.11 as amended)", () => {
  let pki: TestPki;
  let up: Upstream;
  let httpUp: Upstream;
  let agent: Agent;
  /** What the corporate proxy resolves: everything, including a name only it knows (split DNS). */
  const corpHosts = { "api.test": "127.0.0.2", "plain.test": "127.0.0.2", "corp-only.test": "127.0.0.2" };
  /** What the proxy under test resolves: not corp-only.test. */
  const ourHosts = { "api.test": "127.0.0.2", "plain.test": "127.0.0.2", "meta.test": "169.254.169.254" };
  beforeAll(() => {
    pki = makeTestPki(["api.test", "plain.test", "corp-only.test"], ["127.0.0.2"]);
    up = startUpstream({ hostname: "127.0.0.2", pki });
    httpUp = startUpstream({ hostname: "127.0.0.2" });
    agent = startAgent({
      services: manifest(
        [
          { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } },
          { name: "pl", host: "plain.test", auth: { scheme: "bearer", credential: "ns/K" } },
          { name: "co", host: "corp-only.test", auth: { scheme: "bearer", credential: "ns/K" } },
          { name: "me", host: "meta.test", auth: { scheme: "bearer", credential: "ns/K" } },
        ],
        ["direct.test"],
      ),
      secrets: { "ns/K": "chained-secret" },
    });
  });
  afterAll(() => {
    up.stop();
    httpUp.stop();
    agent.stop();
  });

  async function withCorp(
    auth: string | null,
    config: (tpPort: number) => Record<string, unknown>,
    body: (port: number, ca: string, tpLog: () => Promise<string>, stdout: string[]) => Promise<void>,
    env: (tpPort: number) => Record<string, string> = () => ({}),
  ) {
    const tp = await startTinyproxy(auth, corpHosts);
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port }, ...config(tp.port) },
      env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath, ...env(tp.port) },
      hosts: ourHosts,
    });
    try {
      const log = async () => (existsSync(tp.log) ? await Bun.file(tp.log).text() : "");
      await body(port, join(p.home, ".config/clef/proxy/ca.crt"), log, p.stdout);
    } finally {
      p.kill();
      await p.exited;
      tp.stop();
    }
  }

  for (const auth of [null, "corp:s3cret"]) {
    test(`HTTPS (CONNECT api.test:port) and plain HTTP (absolute-form) through tinyproxy ${auth ? "with" : "without"} Basic auth, secret injected`, async () => {
      const upstream = (tp: number) => ({
        upstream: { proxy_url: `http://127.0.0.1:${tp}`, ...(auth ? { proxy_auth: auth } : {}) },
      });
      await withCorp(auth, upstream, async (port, ca, log) => {
        const n = up.seen.length;
        const res = parseCurl((await curl(port, TOKEN, ca, `https://api.test:${up.port}/via-corp`)).stdout);
        expect(res.status).toBe(200);
        expect(JSON.parse(res.body).headers).toContainEqual(["authorization", "Bearer chained-secret"]);
        expect(up.seen.length).toBe(n + 1);
        const plain = await run([
          "curl",
          "-sS",
          "-i",
          "--proxy",
          `http://u:${TOKEN}@127.0.0.1:${port}`,
          `http://plain.test:${httpUp.port}/plain-via-corp`,
        ]);
        expect(parseCurl(plain.stdout).status).toBe(200);
        expect(httpUp.seen.at(-1)!.headers).toContainEqual(["authorization", "Bearer chained-secret"]);
        const l = await log();
        expect(l).toContain(`CONNECT api.test:${up.port}`);
        expect(l).not.toContain(`CONNECT 127.0.0.2:${up.port}`);
      });
    });
  }

  test("split DNS: a name only the corporate proxy can resolve works through it (and is unreachable directly)", async () => {
    await withCorp(
      "corp:s3cret",
      (tp) => ({ upstream: { proxy_url: `http://127.0.0.1:${tp}`, proxy_auth: "corp:s3cret" } }),
      async (port, ca, log) => {
        const res = parseCurl((await curl(port, TOKEN, ca, `https://corp-only.test:${up.port}/split`)).stdout);
        expect(res.status).toBe(200);
        expect(JSON.parse(res.body).headers).toContainEqual(["authorization", "Bearer chained-secret"]);
        expect(await log()).toContain(`CONNECT corp-only.test:${up.port}`);
      },
    );
    // without the corporate proxy the same name does not resolve: 502, never a guess
    await withCorp(
      null,
      () => ({}),
      async (port, ca) => {
        const res = parseCurl((await curl(port, TOKEN, ca, `https://corp-only.test:${up.port}/split`)).stdout);
        expect(res.status).toBe(502);
        expect(JSON.parse(res.body).detail).toBe("dial tcp: lookup corp-only.test: no such host");
      },
    );
  });

  test("a name that resolves here to a blocked address is refused even through the corporate proxy", async () => {
    await withCorp(
      null,
      (tp) => ({ upstream: { proxy_url: `http://127.0.0.1:${tp}` } }),
      async (port, ca, log, stdout) => {
        const res = parseCurl((await curl(port, TOKEN, ca, `https://meta.test:${up.port}/m`)).stdout);
        expect(res.status).toBe(502);
        expect(JSON.parse(res.body).detail).toContain(
          "netguard: address blocked by policy: meta.test resolves to 169.254.169.254",
        );
        const lit = parseCurl((await curl(port, TOKEN, ca, "https://169.254.169.254/m")).stdout);
        expect(lit.status).toBe(403); // not in the manifest: refused before anything else
        expect(await log()).not.toContain("CONNECT meta.test");
        await Bun.sleep(300);
        expect(stdout.some((l) => l.includes('"host":"meta.test:') && l.includes('"status":"tls_error"'))).toBe(true);
      },
    );
  });

  test("no_proxy: a listed host goes direct; HTTPS_PROXY from the environment when proxy_url is empty", async () => {
    await withCorp(
      null,
      () => ({ upstream: { no_proxy: ["plain.test"] } }),
      async (port, ca, log) => {
        const a = parseCurl((await curl(port, TOKEN, ca, `https://api.test:${up.port}/env-proxy`)).stdout);
        expect(a.status).toBe(200);
        const b = parseCurl((await curl(port, TOKEN, ca, `https://plain.test:${up.port}/direct`)).stdout);
        expect(b.status).toBe(200);
        const l = await log();
        expect(l).toContain(`CONNECT api.test:${up.port}`);
        expect(l).not.toContain("plain.test");
      },
      (tp) => ({ HTTPS_PROXY: `http://127.0.0.1:${tp}`, NO_PROXY: "plain.test" }),
    );
  });

  test("a WebSocket upgrade goes through the corporate proxy too (CONNECT with the name, then TLS)", async () => {
    const ws = startWsUpstream({ hostname: "127.0.0.2", pki });
    try {
      await withCorp(
        "corp:s3cret",
        (tp) => ({ upstream: { proxy_url: `http://127.0.0.1:${tp}`, proxy_auth: "corp:s3cret" } }),
        async (port, ca, log) => {
          const req = `GET /chat HTTP/1.1\r\nHost: api.test:${ws.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
          const raw = await tunnelExchange(
            port,
            TOKEN,
            `api.test:${ws.port}`,
            readFileSync(ca, "utf8"),
            "api.test",
            Buffer.concat([Buffer.from(req), wsClientFrame("via corp")]),
            5000,
            (a) => wsServerText(a) !== null,
          );
          expect(raw).toStartWith("HTTP/1.1 101 ");
          expect(wsServerText(raw)).toBe("echo:via corp");
          expect(ws.upgrades[0]).toContainEqual(["authorization", "Bearer chained-secret"]);
          expect(await log()).toContain(`CONNECT api.test:${ws.port}`);
        },
      );
    } finally {
      ws.stop();
    }
  });

  test("wrong proxy_auth: the tunnelled request gets a 502 and an audit line (§18.3)", async () => {
    await withCorp(
      "corp:s3cret",
      (tp) => ({ upstream: { proxy_url: `http://127.0.0.1:${tp}`, proxy_auth: "corp:wrong" } }),
      async (port, ca, _log, stdout) => {
        const res = parseCurl((await curl(port, TOKEN, ca, `https://api.test:${up.port}/denied-by-corp`)).stdout);
        expect(res.status).toBe(502);
        expect(JSON.parse(res.body).error).toBe("clef-proxy: upstream unreachable");
        for (let i = 0; i < 50 && stdout.length === 0; i++) await Bun.sleep(20);
        expect(JSON.parse(stdout[0]!)).toMatchObject({ status: "tls_error", upstream_status: 502 });
      },
    );
  });

  test("upstream proxy down → 502 with an audit line", async () => {
    const dead = await freePort();
    await withCorp(
      null,
      () => ({ upstream: { proxy_url: `http://127.0.0.1:${dead}` } }),
      async (port, ca) => {
        const res = parseCurl((await curl(port, TOKEN, ca, `https://api.test:${up.port}/x`)).stdout);
        expect(res.status).toBe(502);
      },
    );
  });
});

describe("an https:// upstream proxy (§18.15)", () => {
  /** A TLS-speaking CONNECT proxy on 127.0.0.1 that records what it was asked (and resolves api.test). */
  function tlsConnectProxy(cert: { cert: string; key: string }) {
    const seen: string[] = [];
    const server = createTlsServer({ cert: cert.cert, key: cert.key }, (client) => {
      let head = "";
      const onData = (d: Buffer) => {
        head += d.toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        client.off("data", onData);
        seen.push(head.slice(0, end));
        const m = /^CONNECT ([^ ]+):(\d+) /.exec(head);
        if (!m) return client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
        const up = netConnect(Number(m[2]), m[1] === "api.test" ? "127.0.0.2" : m[1]!, () => {
          client.write("HTTP/1.1 200 Connection established\r\n\r\n");
          const rest = head.slice(end + 4);
          if (rest) up.write(Buffer.from(rest, "latin1"));
          client.pipe(up).pipe(client);
        });
        up.on("error", () => client.destroy());
      };
      client.on("data", onData);
      client.on("error", () => {});
    });
    return new Promise<{ port: number; seen: string[]; close(): void }>((resolve) =>
      server.listen(0, "127.0.0.1", () =>
        resolve({ port: (server.address() as { port: number }).port, seen, close: () => server.close() }),
      ),
    );
  }

  test("a proxy whose certificate is trusted carries the request; an untrusted one gets nothing and the workload a 502", async () => {
    const pki = makeTestPki(["api.test"], ["127.0.0.1", "127.0.0.2"]);
    const rogue = makeTestPki(["api.test"], ["127.0.0.1"]);
    const up = startUpstream({ hostname: "127.0.0.2", pki });
    const agent = startAgent({
      services: manifest([{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } }]),
      secrets: { "ns/K": "tls-proxy-secret" },
    });
    try {
      for (const [name, certs, ok] of [
        ["trusted", pki, true],
        ["untrusted", rogue, false],
      ] as const) {
        const corp = await tlsConnectProxy(certs);
        const port = await freePort();
        const p = await startProxy({
          config: {
            listen: { port },
            upstream: { proxy_url: `https://127.0.0.1:${corp.port}`, proxy_auth: "corp:pw" },
          },
          env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
          hosts: { "api.test": "127.0.0.2" },
        });
        const r = await curl(
          port,
          TOKEN,
          join(p.home, ".config/clef/proxy/ca.crt"),
          `https://api.test:${up.port}/${name}`,
        );
        const res = parseCurl(r.stdout);
        if (ok) {
          expect(res.status).toBe(200);
          expect(corp.seen.length).toBe(1);
          expect(corp.seen[0]).toStartWith(`CONNECT api.test:${up.port} HTTP/1.1\r\n`);
          expect(corp.seen[0]).toContain(`\r\nHost: api.test:${up.port}`);
          expect(corp.seen[0]).toContain("\r\nUser-Agent: Go-http-client/1.1");
          expect(corp.seen[0]).toContain(`Proxy-Authorization: Basic ${Buffer.from("corp:pw").toString("base64")}`);
        } else {
          expect(res.status).toBe(502);
          expect(corp.seen).toEqual([]); // the TLS handshake failed before the CONNECT (and its credentials) was sent
        }
        p.kill();
        await p.exited;
        corp.close();
      }
    } finally {
      up.stop();
      agent.stop();
    }
  });
});

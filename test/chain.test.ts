// Upstream proxy chaining through a REAL corporate proxy (Debian's tinyproxy), with and without
// Basic auth, for HTTPS (CONNECT) and plain HTTP targets; proxy selection rules as unit tests.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { join } from "node:path";
import { ProxySelector } from "../src/intercept/chain.ts";
import { agentEnv, manifest, startAgent, type Agent } from "./helpers/agent.ts";
import { curl, parseCurl, run, tunnelExchange } from "./helpers/clients.ts";
import { freePort, startProxy } from "./helpers/proxy.ts";
import { haveTinyproxy, startTinyproxy } from "./helpers/tinyproxy.ts";
import { makeTestPki, type TestPki } from "./helpers/tls.ts";
import { startUpstream, startWsUpstream, wsClientFrame, wsServerText, type Upstream } from "./helpers/upstream.ts";

const TOKEN = "workload-token-xyz";

describe("proxy selection (httpproxy semantics)", () => {
  const cfg = (noProxy: string[], proxyAuth = "") => ({ proxyUrl: "http://corp:3128", noProxy, proxyAuth });
  test("no_proxy entries: exact, sub-domains, leading dot, host:port, *, case", () => {
    const s = new ProxySelector(cfg(["example.com", ".sub.test", "only.test:8443", "10.0.0.0/8"]), {});
    expect(s.choose("https", "example.com", 443)).toBeNull();
    expect(s.choose("https", "a.example.com", 443)).toBeNull();
    expect(s.choose("https", "sub.test", 443)).not.toBeNull();
    expect(s.choose("https", "x.sub.test", 443)).toBeNull();
    expect(s.choose("https", "only.test", 8443)).toBeNull();
    expect(s.choose("https", "only.test", 443)).not.toBeNull();
    expect(s.choose("https", "10.1.2.3", 443)).toBeNull();
    expect(s.choose("https", "EXAMPLE.COM", 443)).toBeNull();
    expect(new ProxySelector(cfg(["*"]), {}).choose("https", "any.test", 443)).toBeNull();
  });
  test("localhost and loopback always bypass", () => {
    const s = new ProxySelector(cfg([]), {});
    for (const h of ["localhost", "127.0.0.1", "127.9.9.9", "::1"]) expect(s.choose("https", h, 443)).toBeNull();
    expect(s.choose("https", "api.test", 443)).toEqual({ url: "http://corp:3128", authorization: undefined });
  });
  test("proxy_auth overrides URL userinfo; userinfo used alone; no colon is an init error", () => {
    const s = new ProxySelector({ proxyUrl: "http://a:b@corp:3128", noProxy: [], proxyAuth: "corp:s3cret" }, {});
    expect(s.choose("http", "x.test", 80)!.authorization).toBe(
      "Basic " + Buffer.from("corp:s3cret").toString("base64"),
    );
    const s2 = new ProxySelector({ proxyUrl: "http://a:b@corp:3128", noProxy: [], proxyAuth: "" }, {});
    expect(s2.choose("http", "x.test", 80)!.authorization).toBe("Basic " + Buffer.from("a:b").toString("base64"));
    expect(() => new ProxySelector({ proxyUrl: "http://corp:3128", noProxy: [], proxyAuth: "nocolon" }, {})).toThrow(
      "intercept: upstream.proxy_auth must be in 'user:pass' form",
    );
  });
  test("environment: HTTPS_PROXY / HTTP_PROXY / NO_PROXY when proxy_url is empty", () => {
    const s = new ProxySelector(
      { proxyUrl: "", noProxy: [], proxyAuth: "" },
      { HTTPS_PROXY: "http://p1:1", HTTP_PROXY: "http://p2:2", NO_PROXY: "skip.test" },
    );
    expect(s.choose("https", "a.test", 443)!.url).toBe("http://p1:1");
    expect(s.choose("http", "a.test", 80)!.url).toBe("http://p2:2");
    expect(s.choose("https", "skip.test", 443)).toBeNull();
  });
});

describe.skipIf(!haveTinyproxy)("chaining through tinyproxy", () => {
  let pki: TestPki;
  let up: Upstream;
  let httpUp: Upstream;
  let agent: Agent;
  beforeAll(() => {
    // The corporate proxy dials the upstream itself, so the upstream must be reachable by the
    // proxy's name resolution: we CONNECT to the vetted IP (127.0.0.2), which needs no DNS.
    pki = makeTestPki(["api.test", "plain.test"], ["127.0.0.2"]);
    up = startUpstream({ hostname: "127.0.0.2", pki });
    httpUp = startUpstream({ hostname: "127.0.0.2" });
    agent = startAgent({
      services: manifest([
        { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } },
        { name: "pl", host: "plain.test", auth: { scheme: "bearer", credential: "ns/K" } },
      ]),
      secrets: { "ns/K": "chained-secret" },
    });
  });
  afterAll(() => {
    up.stop();
    httpUp.stop();
    agent.stop();
  });

  for (const auth of [null, "corp:s3cret"]) {
    test(`HTTPS (CONNECT) and plain HTTP through tinyproxy ${auth ? "with" : "without"} Basic auth, secret injected`, async () => {
      const tp = await startTinyproxy(auth);
      const port = await freePort();
      const upstream: Record<string, unknown> = { proxy_url: `http://127.0.0.1:${tp.port}` };
      if (auth) upstream.proxy_auth = auth;
      const p = await startProxy({
        config: { listen: { port }, upstream },
        env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
        hosts: { "api.test": "127.0.0.2", "plain.test": "127.0.0.2" },
      });
      const ca = join(p.home, ".config/clef/proxy/ca.crt");
      const n = up.seen.length;
      const r = await curl(port, TOKEN, ca, `https://api.test:${up.port}/via-corp`);
      const res = parseCurl(r.stdout);
      if (res.status !== 200) console.log(res.body, p.stderr.join("\n"));
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
      const log = existsSync(tp.log) ? await Bun.file(tp.log).text() : "";
      expect(log).toContain(`CONNECT 127.0.0.2:${up.port}`);
      p.kill();
      await p.exited;
      tp.stop();
    });
  }

  test("a WebSocket upgrade goes through the corporate proxy too (CONNECT to the vetted address, then TLS)", async () => {
    const tp = await startTinyproxy("corp:s3cret");
    const ws = startWsUpstream({ hostname: "127.0.0.2", pki });
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port }, upstream: { proxy_url: `http://127.0.0.1:${tp.port}`, proxy_auth: "corp:s3cret" } },
      env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
      hosts: { "api.test": "127.0.0.2" },
    });
    try {
      const req = `GET /chat HTTP/1.1\r\nHost: api.test:${ws.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      const raw = await tunnelExchange(
        port,
        TOKEN,
        `api.test:${ws.port}`,
        readFileSync(join(p.home, ".config/clef/proxy/ca.crt"), "utf8"),
        "api.test",
        Buffer.concat([Buffer.from(req), wsClientFrame("via corp")]),
        5000,
        (a) => wsServerText(a) !== null,
      );
      expect(raw).toStartWith("HTTP/1.1 101 ");
      expect(wsServerText(raw)).toBe("echo:via corp");
      expect(ws.upgrades[0]).toContainEqual(["authorization", "Bearer chained-secret"]);
      expect(await Bun.file(tp.log).text()).toContain(`CONNECT 127.0.0.2:${ws.port}`);
    } finally {
      p.kill();
      await p.exited;
      ws.stop();
      tp.stop();
    }
  });

  test("wrong proxy_auth: the tunnelled request gets a 502 and an audit line (§18.3)", async () => {
    const tp = await startTinyproxy("corp:s3cret");
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port }, upstream: { proxy_url: `http://127.0.0.1:${tp.port}`, proxy_auth: "corp:wrong" } },
      env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
      hosts: { "api.test": "127.0.0.2" },
    });
    const ca = join(p.home, ".config/clef/proxy/ca.crt");
    const r = await curl(port, TOKEN, ca, `https://api.test:${up.port}/denied-by-corp`);
    const res = parseCurl(r.stdout);
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).error).toBe("clef-proxy: upstream unreachable");
    const [line] = await p.waitForStdoutLines(1);
    expect(JSON.parse(line!)).toMatchObject({ status: "tls_error", upstream_status: 502 });
    p.kill();
    await p.exited;
    tp.stop();
  });

  test("upstream proxy down → 502 with an audit line", async () => {
    const port = await freePort();
    const dead = await freePort();
    const p = await startProxy({
      config: { listen: { port }, upstream: { proxy_url: `http://127.0.0.1:${dead}` } },
      env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
      hosts: { "api.test": "127.0.0.2" },
    });
    const ca = join(p.home, ".config/clef/proxy/ca.crt");
    const res = parseCurl((await curl(port, TOKEN, ca, `https://api.test:${up.port}/x`)).stdout);
    expect(res.status).toBe(502);
    p.kill();
    await p.exited;
  });
});

describe("an https:// upstream proxy (§18.15)", () => {
  /** A TLS-speaking CONNECT proxy on 127.0.0.1 that records what it was asked. */
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
        const up = netConnect(Number(m[2]), m[1]!, () => {
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
          expect(corp.seen[0]).toStartWith(`CONNECT 127.0.0.2:${up.port} HTTP/1.1\r\n`);
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

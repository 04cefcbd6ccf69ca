// The upstream leg's connection invariants through the COMPILED binary, with hostile upstreams:
//   - a connection serves one TLS name: two services on the same address and port never share one,
//     so a credential never travels on a connection verified for another name;
//   - a certificate from a trusted CA that does not name the host (or, for an IP-literal service,
//     its address): nothing is sent;
//   - an upstream that appends an unasked-for response cannot make it the answer to the next request;
//   - differing Content-Length values are a 502 that carries no secret.
// (Written for the own upstream client of issue 19's fifth pass, which was measured and not kept —
// docs/PERFORMANCE.md; the invariants are fetch's as much, and fetch holds them.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket, TCPSocketListener } from "bun";
import { type Agent, agentEnv, manifest, startAgent } from "../helpers/agent.ts";
import { curl, parseCurl } from "../helpers/clients.ts";
import { freePort, type ProxyProcess, startProxy, tempDir } from "../helpers/proxy.ts";
import { makeTestPki } from "../helpers/tls.ts";

const TOKEN = "upstream-leg-workload-token";
const SECRETS: Record<string, string> = {
  "ns/A": "secret-A-3b9f0c1e77",
  "ns/B": "secret-B-8d2a4f6c10",
  "ns/W": "secret-W-5e7b9d1a33",
  "ns/S": "secret-S-1c3e5a7b99",
};

interface Conn {
  id: number;
  sni?: string;
  /** Requests received: [Host, Authorization] */
  requests: Array<{ host: string; auth: string; path: string }>;
  bytes: number;
}

/**
 * A TLS upstream that records its connections (SNI, requests) and answers each request head with
 * `answer(path, conn)`: raw response bytes.
 */
function tlsUpstream(
  hostname: string,
  key: string,
  cert: string,
  answer: (path: string, c: Conn) => string,
): { server: TCPSocketListener<unknown>; conns: Conn[] } {
  const conns: Conn[] = [];
  const server = Bun.listen<{ c: Conn; buf: string }>({
    hostname,
    port: 0,
    tls: { key, cert },
    socket: {
      open(sock) {
        const c: Conn = { id: conns.length, requests: [], bytes: 0 };
        conns.push(c);
        sock.data = { c, buf: "" };
      },
      handshake(sock) {
        const sni = (sock as unknown as { getServername?(): string | undefined }).getServername?.();
        if (sni) sock.data.c.sni = sni;
      },
      data(sock: Socket<{ c: Conn; buf: string }>, d) {
        sock.data.c.bytes += d.byteLength;
        sock.data.buf += Buffer.from(d).toString("latin1");
        for (let i = sock.data.buf.indexOf("\r\n\r\n"); i >= 0; i = sock.data.buf.indexOf("\r\n\r\n")) {
          const head = sock.data.buf.slice(0, i);
          sock.data.buf = sock.data.buf.slice(i + 4);
          const field = (n: string) => new RegExp(`\\r\\n${n}: ([^\\r]*)`, "i").exec(head)?.[1] ?? "";
          const path = head.split(" ")[1] ?? "";
          sock.data.c.requests.push({ host: field("host"), auth: field("authorization"), path });
          sock.write(answer(path, sock.data.c));
        }
      },
      error() {},
    },
  });
  return { server: server as TCPSocketListener<unknown>, conns };
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

let agent: Agent;
let proxy: ProxyProcess;
let port: number;
let proxyCa: string;
let shared: ReturnType<typeof tlsUpstream>;
let wrong: ReturnType<typeof tlsUpstream>;
let tricky: ReturnType<typeof tlsUpstream>;

beforeAll(async () => {
  // one CA for everything the proxy trusts; the "wrong" upstream's certificate names only other.test
  const good = makeTestPki(["a.test", "b.test", "smuggle.test"], ["127.0.0.2"]);
  const other = makeTestPki(["other.test"], []);
  const trust = join(tempDir("clef-trust-"), "ca.pem");
  writeFileSync(trust, good.ca + other.ca);
  shared = tlsUpstream("127.0.0.2", good.key, good.cert, (path, c) => ok(`${path} on ${c.id}`));
  wrong = tlsUpstream("127.0.0.3", other.key, other.cert, (path) => ok(path));
  tricky = tlsUpstream("127.0.0.4", good.key, good.cert, (path, c) => {
    if (path === "/smuggle")
      return `${ok("first")}HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: 1\r\n\r\nsmuggled`;
    if (path === "/twocl") return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd";
    return ok(`honest ${path} on ${c.id}`);
  });
  const bearer = (host: string, credential: string) => ({
    name: host.replace(/\W/g, "-"),
    host,
    auth: { scheme: "bearer", credential },
  });
  agent = startAgent({
    services: manifest([
      bearer("a.test", "ns/A"),
      bearer("b.test", "ns/B"),
      bearer("wrong.test", "ns/W"),
      bearer("other.test", "ns/W"),
      bearer("smuggle.test", "ns/S"),
      bearer("127.0.0.2", "ns/A"),
      bearer("127.0.0.3", "ns/W"),
    ]),
    secrets: SECRETS,
  });
  port = await freePort();
  proxy = await startProxy({
    config: { listen: { port } },
    env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: trust },
    hosts: {
      "a.test": "127.0.0.2",
      "b.test": "127.0.0.2",
      "wrong.test": "127.0.0.3",
      "other.test": "127.0.0.3",
      "smuggle.test": "127.0.0.4",
    },
  });
  proxyCa = join(proxy.home, ".config/clef/proxy/ca.crt");
});

afterAll(async () => {
  proxy?.kill("SIGTERM");
  await proxy?.exited;
  for (const u of [shared, wrong, tricky]) u?.server.stop(true);
  agent?.stop();
});

const get = async (host: string, upstreamPort: number, path: string) =>
  parseCurl((await curl(port, TOKEN, proxyCa, `https://${host}:${upstreamPort}${path}`)).stdout);

const secretsIn = (text: string) => Object.values(SECRETS).filter((s) => text.includes(s));

describe("connections are per TLS name", () => {
  test("two services on one address and port: each request rides a connection verified for its own name", async () => {
    const p = shared.server.port;
    for (const host of ["a.test", "b.test", "a.test", "b.test", "a.test"]) {
      const r = await get(host, p, `/${host}`);
      expect(r.status).toBe(200);
    }
    const requests = shared.conns.flatMap((c) => c.requests.map((r) => ({ ...r, sni: c.sni })));
    expect(requests.length).toBe(5);
    for (const r of requests) {
      expect(r.host).toBe(`${r.sni}:${p}`);
      expect(r.auth).toBe(`Bearer ${r.sni === "a.test" ? SECRETS["ns/A"] : SECRETS["ns/B"]}`);
    }
    // and kept alive: one connection per name served all of that name's requests
    expect(shared.conns.length).toBe(2);
    expect(shared.conns.map((c) => c.sni).sort()).toEqual(["a.test", "b.test"]);
  });

  test("a certificate from a trusted CA that does not name the host: 502, not one byte sent", async () => {
    const p = wrong.server.port;
    const r = await get("wrong.test", p, "/leak");
    expect(r.status).toBe(502);
    expect(secretsIn(r.body)).toEqual([]);
    // the same server for the name it holds works: the refusal was the name check
    expect((await get("other.test", p, "/fine")).status).toBe(200);
    // the refused handshake was a connection of its own (its SNI is not known: the server's handshake
    // did not complete), and it delivered no byte
    const refused = wrong.conns.filter((c) => c.requests.length === 0);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((c) => c.bytes === 0)).toBe(true);
    expect(wrong.conns.flatMap((c) => c.requests).map((r) => r.path)).toEqual(["/fine"]);
  });
});

describe("IP-literal services: the certificate must name the address", () => {
  test("an IP SAN for the address: 200; a certificate without it: 502, not one byte sent", async () => {
    const r = await get("127.0.0.2", shared.server.port, "/by-ip");
    expect(r.status).toBe(200);
    expect(r.body).toStartWith("/by-ip on ");
    const before = wrong.conns.length;
    const bad = await get("127.0.0.3", wrong.server.port, "/ip-leak");
    expect(bad.status).toBe(502);
    const fresh = wrong.conns.slice(before);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((c) => c.bytes === 0)).toBe(true);
  });
});

describe("hostile upstream responses", () => {
  test("an unasked-for second response after the first is never the answer to the next request", async () => {
    const p = tricky.server.port;
    const first = await get("smuggle.test", p, "/smuggle");
    expect(first.status).toBe(200);
    expect(first.body).toBe("first");
    for (let i = 0; i < 3; i++) {
      const next = await get("smuggle.test", p, `/next${i}`);
      expect(next.headers["x-smuggled"]).toBeUndefined();
      expect(next.body).toStartWith(`honest /next${i} on `);
    }
  });

  test("two different Content-Lengths: 502 naming the upstream, no secret in the answer, the proxy keeps serving", async () => {
    const path = "/twocl";
    const p = tricky.server.port;
    const r = await get("smuggle.test", p, path);
    expect(r.status).toBe(502);
    expect(r.body).toContain("smuggle.test");
    expect(secretsIn(JSON.stringify(r))).toEqual([]);
    expect((await get("smuggle.test", p, "/after")).body).toStartWith("honest /after");
  });

  test("no secret in any log line", () => {
    const logs = proxy.stdout.join("\n") + proxy.stderr.join("\n");
    expect(secretsIn(logs)).toEqual([]);
  });
});

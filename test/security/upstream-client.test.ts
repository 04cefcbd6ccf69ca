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
import { type Agent, agentEnv, manifest, startAgent } from "../helpers/agent.ts";
import { curl, parseCurl } from "../helpers/clients.ts";
import { freePort, type ProxyProcess, startProxy, tempDir } from "../helpers/proxy.ts";
import { makeTestPki } from "../helpers/tls.ts";
import { portOf, type RecRequest, type Recorder, startRecorder } from "./recorder.ts";

const TOKEN = "upstream-leg-workload-token";
const SECRETS: Record<string, string> = {
  "ns/A": "secret-A-3b9f0c1e77",
  "ns/B": "secret-B-8d2a4f6c10",
  "ns/W": "secret-W-5e7b9d1a33",
  "ns/S": "secret-S-1c3e5a7b99",
};

let agent: Agent;
let proxy: ProxyProcess;
let port: number;
let proxyCa: string;
// recorders (./recorder.ts): every connection's SNI and bytes, every request; `/__…` paths misbehave
let shared: Recorder;
let wrong: Recorder;
let tricky: Recorder;

beforeAll(async () => {
  // one CA for everything the proxy trusts; the "wrong" upstream's certificate names only other.test
  const good = makeTestPki(["a.test", "b.test", "smuggle.test"], ["127.0.0.2"]);
  const other = makeTestPki(["other.test"], []);
  const trust = join(tempDir("clef-trust-"), "ca.pem");
  writeFileSync(trust, good.ca + other.ca);
  shared = startRecorder({ name: "shared", hostname: "127.0.0.2", pki: good, tlsPorts: [0] });
  wrong = startRecorder({ name: "wrong", hostname: "127.0.0.3", pki: other, tlsPorts: [0] });
  tricky = startRecorder({ name: "tricky", hostname: "127.0.0.4", pki: good, tlsPorts: [0] });
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
  for (const r of [shared, wrong, tricky]) r?.stop();
  agent?.stop();
});

const get = async (host: string, upstreamPort: number, path: string) =>
  parseCurl((await curl(port, TOKEN, proxyCa, `https://${host}:${upstreamPort}${path}`)).stdout);

const secretsIn = (text: string) => Object.values(SECRETS).filter((s) => text.includes(s));

const header = (r: RecRequest, name: string) => r.headers.find(([k]) => k.toLowerCase() === name)?.[1];
/** Connections that carried no request (a refused handshake among them). */
const unused = (r: Recorder) => r.conns.filter((c) => !r.requests.some((q) => q.conn === c));

describe("connections are per TLS name", () => {
  test("two services on one address and port: each request rides a connection verified for its own name", async () => {
    const p = portOf(shared, true);
    for (const host of ["a.test", "b.test", "a.test", "b.test", "a.test"]) {
      const r = await get(host, p, `/${host}`);
      expect(r.status).toBe(200);
    }
    expect(shared.requests.length).toBe(5);
    for (const r of shared.requests) {
      expect(r.host).toBe(`${r.conn.sni}:${p}`);
      expect(header(r, "authorization")).toBe(`Bearer ${r.conn.sni === "a.test" ? SECRETS["ns/A"] : SECRETS["ns/B"]}`);
    }
    // and kept alive: one connection per name served all of that name's requests
    expect(shared.conns.map((c) => c.sni).sort()).toEqual(["a.test", "b.test"]);
  });

  test("a certificate from a trusted CA that does not name the host: 502, not one byte sent", async () => {
    const p = portOf(wrong, true);
    const r = await get("wrong.test", p, "/leak");
    expect(r.status).toBe(502);
    expect(secretsIn(r.body)).toEqual([]);
    // the same server for the name it holds works: the refusal was the name check
    expect((await get("other.test", p, "/fine")).status).toBe(200);
    // the refused handshake was a connection of its own (its SNI is not known: the server's handshake
    // did not complete), and it delivered no byte
    expect(unused(wrong).length).toBeGreaterThan(0);
    expect(unused(wrong).every((c) => c.bytes === 0)).toBe(true);
    expect(wrong.requests.map((r) => r.target)).toEqual(["/fine"]);
  });
});

describe("IP-literal services: the certificate must name the address", () => {
  test("an IP SAN for the address: 200; a certificate without it: 502, not one byte sent", async () => {
    const r = await get("127.0.0.2", portOf(shared, true), "/by-ip");
    expect(r.status).toBe(200);
    expect(shared.requests.at(-1)?.target).toBe("/by-ip");
    const before = wrong.conns.length;
    const bad = await get("127.0.0.3", portOf(wrong, true), "/ip-leak");
    expect(bad.status).toBe(502);
    const fresh = wrong.conns.slice(before);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((c) => c.bytes === 0)).toBe(true);
    expect(wrong.requests.map((q) => q.target)).not.toContain("/ip-leak");
  });
});

describe("hostile upstream responses", () => {
  test("an unasked-for second response after the first is never the answer to the next request", async () => {
    const p = portOf(tricky, true);
    const first = await get("smuggle.test", p, "/__appended");
    expect(first.status).toBe(200);
    expect(first.body).toBe("first");
    for (let i = 0; i < 3; i++) {
      const next = await get("smuggle.test", p, `/next${i}`);
      expect(next.headers["x-smuggled"]).toBeUndefined();
      // the answer is the one the recorder gave to this very request
      const seen = tricky.requests.at(-1)!;
      expect(seen.target).toBe(`/next${i}`);
      expect(seen.requestId).toBeTruthy();
      expect(next.headers["x-rec-id"]).toBe(seen.requestId!);
    }
  });

  test("two different Content-Lengths: 502 naming the upstream, no secret in the answer, the proxy keeps serving", async () => {
    const p = portOf(tricky, true);
    const r = await get("smuggle.test", p, "/__twocl");
    expect(r.status).toBe(502);
    expect(r.body).toContain("smuggle.test");
    expect(secretsIn(JSON.stringify(r))).toEqual([]);
    const after = await get("smuggle.test", p, "/after");
    expect(after.status).toBe(200);
    expect(after.headers["x-rec-who"]).toBe("tricky");
  });

  test("no secret in any log line", () => {
    const logs = proxy.stdout.join("\n") + proxy.stderr.join("\n");
    expect(secretsIn(logs)).toEqual([]);
  });
});

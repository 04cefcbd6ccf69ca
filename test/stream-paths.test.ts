// The streaming paths the performance work changed, end to end through the COMPILED binary: a large
// body relayed chunk by chunk with its Content-Length (each chunk's memory is released as soon as the
// client socket took it) and re-framed as chunked (size line, data and CRLF in one pre-sized buffer),
// several at once on separate tunnels — byte-exact. The bodies are pseudo-random (not periodic), so a
// chunk released too early, reused or sent twice, or swapped with another, changes the digest.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { agentEnv, manifest, startAgent, type Agent } from "./helpers/agent.ts";
import { curlVia, run } from "./helpers/clients.ts";
import { freePort, startProxy, tempDir, type ProxyProcess } from "./helpers/proxy.ts";
import { makeTestPki, type TestPki } from "./helpers/tls.ts";

const TOKEN = "stream-token-123";

/** `n` pseudo-random bytes for `seed` (xorshift32): no period a relay bug could hide in. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let pki: TestPki;
let upstream: ReturnType<typeof Bun.serve>;
let agent: Agent;
let proxy: ProxyProcess;
let port: number;
let proxyCa: string;
const bodies = new Map<string, Uint8Array>();

beforeAll(async () => {
  pki = makeTestPki(["api.test", "pass.test"], ["127.0.0.2"]);
  // /random/<n>/<seed>: the body with its Content-Length; ?chunked: streamed in pieces of varying
  // size, chunked (so chunk boundaries vary)
  upstream = Bun.serve({
    hostname: "127.0.0.2",
    port: 0,
    tls: { cert: readFileSync(pki.certPath, "utf8"), key: readFileSync(pki.keyPath, "utf8") },
    fetch(req) {
      const u = new URL(req.url);
      const m = /^\/random\/(\d+)\/(\d+)$/.exec(u.pathname);
      if (!m) return new Response("no", { status: 404 });
      const key = `${m[1]}/${m[2]}`;
      let body = bodies.get(key);
      if (!body) bodies.set(key, (body = randomBytes(Number(m[1]), Number(m[2]))));
      const full = body;
      let off = 0;
      let piece = 1;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (off >= full.byteLength) return c.close();
          const n = Math.min(((piece++ * 7919) % 200_000) + 1, full.byteLength - off);
          c.enqueue(full.slice(off, off + n)); // a copy: the upstream never shares memory with itself
          off += n;
        },
      });
      const headers = { "content-type": "application/octet-stream" };
      // a byte body goes out with its Content-Length (a stream would go out chunked)
      if (!u.searchParams.has("chunked")) return new Response(full.slice(), { headers });
      return new Response(stream, { headers });
    },
  });
  agent = startAgent({
    services: manifest(
      [{ name: "api", host: "api.test", auth: { scheme: "bearer", credential: "ns/KEY" } }],
      ["pass.test"],
    ),
    secrets: { "ns/KEY": "stream-secret" },
  });
  port = await freePort();
  proxy = await startProxy({
    config: { listen: { port }, metadata: { proxy_id: "stream" } },
    env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
    hosts: { "api.test": "127.0.0.2", "pass.test": "127.0.0.2" },
  });
  proxyCa = join(proxy.home, ".config/clef/proxy/ca.crt");
});

afterAll(async () => {
  proxy?.kill("SIGTERM");
  await proxy?.exited;
  upstream?.stop(true);
  agent?.stop();
});

async function download(host: string, n: number, seed: number, chunked: boolean): Promise<string> {
  const out = join(tempDir(), "body.bin");
  const url = `https://${host}:${upstream.port}/random/${n}/${seed}${chunked ? "?chunked" : ""}`;
  const r = await run([
    ...curlVia(port, TOKEN, proxyCa),
    "-o",
    out,
    "-D",
    `${out}.head`,
    "-w",
    "%{http_code} %{size_download}",
    url,
  ]);
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe(`200 ${n}`);
  // the framing relayed is the upstream's: its Content-Length, else chunked
  const head = readFileSync(`${out}.head`, "latin1").toLowerCase();
  if (chunked) expect(head).toContain("\r\ntransfer-encoding: chunked\r\n");
  else expect(head).toContain(`\r\ncontent-length: ${n}\r\n`);
  return sha(readFileSync(out));
}

describe("large bodies relayed byte-exact (released chunks, pre-sized chunked frames)", () => {
  test("48 MiB with Content-Length, and 48 MiB re-framed as chunked", async () => {
    const n = 48 << 20;
    expect(await download("api.test", n, 7, false)).toBe(sha(bodies.get(`${n}/7`)!));
    expect(await download("pass.test", n, 8, true)).toBe(sha(bodies.get(`${n}/8`)!));
  }, 120_000);

  test("four at once on four tunnels, both framings: every body exact", async () => {
    const n = 12 << 20;
    const got = await Promise.all([
      download("api.test", n, 11, false),
      download("pass.test", n, 12, true),
      download("api.test", n, 13, true),
      download("pass.test", n, 14, false),
    ]);
    const want: string[] = [11, 12, 13, 14].map((s) => sha(bodies.get(`${n}/${s}`)!));
    expect(got as string[]).toEqual(want);
  }, 120_000);
});

// src/audit/export/transport.ts against receivers on 127.0.0.1 (in process): what is sent, what is
// read back, redirects not followed, loopback-only http, netguard refusals, safe error texts.
import { afterAll, describe, expect, test } from "bun:test";
import { isLoopbackHost } from "../../../src/http/corporate-proxy.ts";
import { HttpTransport, parseRetryAfter, RESPONSE_MAX_BYTES } from "../../../src/audit/export/transport.ts";

const NO_PROXY = { proxyUrl: "", noProxy: [], proxyAuth: "" };
const seen: Array<{ method: string; url: string; headers: Record<string, string>; body: string }> = [];
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const u = new URL(req.url);
    seen.push({
      method: req.method,
      url: u.pathname + u.search,
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
    });
    if (u.pathname === "/redirect") return new Response(null, { status: 302, headers: { Location: "/elsewhere" } });
    if (u.pathname === "/busy") return new Response("slow down", { status: 429, headers: { "Retry-After": "7" } });
    if (u.pathname === "/big") return new Response("x".repeat(RESPONSE_MAX_BYTES * 4));
    return new Response('{"ok":true}', { status: 202 });
  },
});
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;
const post = (t: HttpTransport, h: Record<string, string> = {}) => t.post("body\n", h, new AbortController().signal);

describe("HttpTransport", () => {
  test("POSTs the body with the extra headers (protocol headers win) and the URL's Host", async () => {
    const t = new HttpTransport(
      `${base}/in?tenant=t1`,
      [
        ["X-Tenant", "t1"],
        ["X-Clef-Batch-Id", "nope"],
      ],
      NO_PROXY,
      {},
    );
    const r = await post(t, { "Content-Type": "application/x-ndjson", "X-Clef-Batch-Id": "b1" });
    expect(r).toEqual({ status: 202, retryAfterMs: null, body: '{"ok":true}' });
    const s = seen.at(-1)!;
    expect(s).toMatchObject({ method: "POST", url: "/in?tenant=t1", body: "body\n" });
    expect(s.headers).toMatchObject({
      "x-tenant": "t1",
      "x-clef-batch-id": "b1",
      "content-type": "application/x-ndjson",
      host: `127.0.0.1:${server.port}`,
    });
  });

  test("logUrl has neither userinfo, path nor query; userinfo becomes Basic auth", async () => {
    const t = new HttpTransport(
      `http://u%40x:p%3Aw@127.0.0.1:${server.port}/hooks/SECRETPATH?k=SECRETQ`,
      [],
      NO_PROXY,
      {},
    );
    expect(t.logUrl).toBe(`http://127.0.0.1:${server.port}`);
    await post(t);
    expect(seen.at(-1)!.headers.authorization).toBe("Basic " + Buffer.from("u@x:p:w").toString("base64"));
    expect(seen.at(-1)!.url).toBe("/hooks/SECRETPATH?k=SECRETQ");
  });

  test("redirects are not followed; Retry-After read; the answer body is bounded", async () => {
    const n = seen.length;
    expect((await post(new HttpTransport(`${base}/redirect`, [], NO_PROXY, {}))).status).toBe(302);
    expect(seen.length).toBe(n + 1);
    expect(await post(new HttpTransport(`${base}/busy`, [], NO_PROXY, {}))).toMatchObject({
      status: 429,
      retryAfterMs: 7000,
    });
    expect((await post(new HttpTransport(`${base}/big`, [], NO_PROXY, {}))).body.length).toBe(RESPONSE_MAX_BYTES);
  });

  test("http:// must resolve to loopback only", async () => {
    const t = new HttpTransport(
      `http://localhost:${server.port}/x`,
      [],
      NO_PROXY,
      {},
      { resolve: async () => ["10.1.2.3"] },
    );
    await expect(post(t)).rejects.toThrow("http:// receiver localhost does not resolve to loopback only");
    const ok = new HttpTransport(
      `http://localhost:${server.port}/x`,
      [],
      NO_PROXY,
      {},
      { resolve: async () => ["127.0.0.1"] },
    );
    expect((await post(ok)).status).toBe(202);
  });

  test("netguard: metadata and link-local receivers are refused before any connection", async () => {
    await expect(post(new HttpTransport("https://169.254.169.254/latest", [], NO_PROXY, {}))).rejects.toThrow(
      "netguard: address blocked by policy: 169.254.169.254 (cloud metadata)",
    );
    await expect(post(new HttpTransport("https://[fe80::1]:8443/x", [], NO_PROXY, {}))).rejects.toThrow(
      "netguard: address blocked by policy: fe80::1 (link-local)",
    );
    // also when the corporate proxy would carry it (names that resolve locally, and IP literals)
    const viaProxy = { proxyUrl: "http://127.0.0.1:9", noProxy: [], proxyAuth: "" };
    await expect(post(new HttpTransport("https://169.254.169.254/latest", [], viaProxy, {}))).rejects.toThrow(
      "netguard: address blocked by policy",
    );
  });

  test("errors carry no URL query or header value", async () => {
    const dead = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = dead.port;
    dead.stop(true);
    const t = new HttpTransport(`http://127.0.0.1:${port}/x?token=SECRETQ`, [["X-Key", "SECRETH"]], NO_PROXY, {});
    const err = await post(t).catch((e) => e as Error);
    expect((err as Error).message).toBe("connection refused");
  });

  test("Retry-After forms", () => {
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:05 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT"))).toBe(5000);
    expect(parseRetryAfter("soon")).toBeNull();
  });

  test("loopback hosts", () => {
    for (const h of ["localhost", "a.localhost", "127.0.0.1", "127.9.9.9", "[::1]", "::1", "[::ffff:7f00:1]"])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["example.com", "10.0.0.1", "[::2]", "localhost.example.com", "128.0.0.1"])
      expect(isLoopbackHost(h)).toBe(false);
  });
});

test("a resolver that never answers does not outlive the attempt (abort)", async () => {
  const t = new HttpTransport("https://slow.example/x", [], NO_PROXY, {}, { resolve: () => new Promise(() => {}) });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 30);
  await expect(t.post("x", {}, ac.signal)).rejects.toThrow("aborted");
});

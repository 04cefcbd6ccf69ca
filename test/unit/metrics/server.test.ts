// src/metrics/server.ts in process: the admin listener's checks in order (Host → token → path →
// method), /healthz, /readyz following setReady, /metrics content type, bind failure text.
import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { Registry } from "../../../src/metrics/registry.ts";
import { AdminBindError, bearerMatches, hostAllowed, startAdminServer } from "../../../src/metrics/server.ts";

const registry = new Registry();
registry.counter({ name: "t_total", help: "h" }).inc();
const admin = startAdminServer({ port: 0, token: "s3cret-token", registry });
const open = startAdminServer({ port: 0, token: "", registry });
afterAll(() => {
  admin.close();
  open.close();
});

/** One raw HTTP/1.1 request (so the Host header is exactly what we send); returns status and body. */
function raw(port: number, head: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(head));
    let buf = "";
    s.on("data", (d) => (buf += d.toString("latin1")));
    s.on("end", () => resolve({ status: Number(buf.split(" ")[1]), text: buf }));
    s.on("error", reject);
  });
}
const get = (port: number, path: string, headers: Record<string, string>, method = "GET") =>
  raw(
    port,
    `${method} ${path} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}Connection: close\r\n\r\n`,
  );

describe("admin listener", () => {
  const auth = { Authorization: "Bearer s3cret-token" };
  test("Host must name 127.0.0.1:<port> or localhost:<port> (DNS rebinding), checked before the token", async () => {
    const p = admin.port;
    expect((await get(p, "/metrics", { Host: `evil.test:${p}`, ...auth })).status).toBe(403);
    expect((await get(p, "/metrics", { Host: "127.0.0.1", ...auth })).status).toBe(403);
    expect((await get(p, "/metrics", { Host: `127.0.0.1:${p + 1}`, ...auth })).status).toBe(403);
    expect((await get(p, "/metrics", { Host: `evil.test:${p}` })).status).toBe(403);
    expect((await get(p, "/healthz", { Host: `localhost:${p}`, ...auth })).status).toBe(200);
    expect((await get(p, "/healthz", { Host: `LocalHost:${p}`, ...auth })).status).toBe(200);
  });

  test("token: 401 without it or wrong, 200 with it; no token configured → open", async () => {
    const p = admin.port;
    const host = { Host: `127.0.0.1:${p}` };
    const none = await get(p, "/metrics", host);
    expect(none.status).toBe(401);
    expect(none.text).toContain('WWW-Authenticate: Bearer realm="clef-proxy metrics"');
    expect(none.text).not.toContain("s3cret-token");
    expect((await get(p, "/metrics", { ...host, Authorization: "Bearer s3cret-tokeN" })).status).toBe(401);
    expect((await get(p, "/metrics", { ...host, Authorization: "bearer s3cret-token" })).status).toBe(401);
    expect((await get(p, "/metrics", { ...host, Authorization: "Basic s3cret-token" })).status).toBe(401);
    expect((await get(p, "/nope", host)).status).toBe(401); // nothing about paths before authentication
    const ok = await get(p, "/metrics", { ...host, ...auth });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("Content-Type: text/plain; version=0.0.4; charset=utf-8");
    expect(ok.text).toContain("\r\n\r\n# HELP t_total h\n# TYPE t_total counter\nt_total 1\n");
    expect((await get(open.port, "/metrics", { Host: `127.0.0.1:${open.port}` })).status).toBe(200);
  });

  test("paths 404, methods 405 (GET and HEAD allowed), readyz follows setReady", async () => {
    const p = open.port;
    const host = { Host: `127.0.0.1:${p}` };
    expect((await get(p, "/", host)).status).toBe(404);
    expect((await get(p, "/metrics/x", host)).status).toBe(404);
    const post = await get(p, "/metrics", { ...host, "Content-Length": "0" }, "POST");
    expect(post.status).toBe(405);
    expect(post.text).toContain("Allow: GET, HEAD");
    expect((await get(p, "/healthz", host, "DELETE")).status).toBe(405);
    expect((await get(p, "/healthz", host, "HEAD")).status).toBe(200);
    expect((await get(p, "/readyz", host)).status).toBe(503);
    open.setReady(true);
    expect((await get(p, "/readyz", host)).status).toBe(200);
    open.setReady(false);
    expect((await get(p, "/readyz", host)).status).toBe(503);
    expect((await get(p, "/healthz", host)).status).toBe(200);
  });

  test("bind failure: Go-like text (serve logs it and exits 6)", () => {
    expect(() => startAdminServer({ port: admin.port, token: "", registry })).toThrow(
      new AdminBindError(`listen tcp 127.0.0.1:${admin.port}: bind: address already in use`),
    );
  });

  test("helpers", () => {
    expect(hostAllowed(null, 1)).toBe(false);
    expect(hostAllowed("127.0.0.1:1", 1)).toBe(true);
    expect(hostAllowed("[::1]:1", 1)).toBe(false);
    const d = new Bun.CryptoHasher("sha256").update("t").digest();
    expect(bearerMatches("Bearer t", d)).toBe(true);
    expect(bearerMatches("Bearer t ", d)).toBe(false);
    expect(bearerMatches(null, d)).toBe(false);
  });
});

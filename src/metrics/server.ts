// The admin listener (shared/PHASE2.md §16, F14): `metrics.port` on 127.0.0.1 only, never the
// workload port. GET /metrics (Prometheus text 0.0.4), /healthz (200 while serving), /readyz (200
// once the manifest is loaded and the workload listener serves, 503 while draining).
//
// Checks, in order: Host must be `127.0.0.1:<port>` or `localhost:<port>` (403; a web page a user
// visits cannot reach this port through DNS rebinding, because its Host would name the attacker's
// domain), then the optional bearer token compared in constant time (401), then the path (404) and
// the method (405; GET and HEAD only). No request body is read.
import { createHash, timingSafeEqual } from "node:crypto";
import { CONTENT_TYPE, type Registry } from "./registry.ts";

/** Bind failure (serve exits 6). `message` is Go-like: `listen tcp 127.0.0.1:9464: bind: address already in use`. */
export class AdminBindError extends Error {}

export interface AdminServer {
  readonly port: number;
  /** /readyz answers 200 while true (set once serving, cleared at the drain). */
  setReady(ready: boolean): void;
  close(): void;
}

export interface AdminOptions {
  port: number;
  /** Bearer token; "" = no authentication. */
  token: string;
  registry: Registry;
}

/** Go's text for a failed bind on 127.0.0.1 (as the workload listener's): `listen tcp …: bind: <reason>`. */
export function bindErrorMessage(port: number, e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const why =
    err.code === "EADDRINUSE" ? "address already in use" : err.code === "EACCES" ? "permission denied" : err.message;
  return `listen tcp 127.0.0.1:${port}: bind: ${why}`;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: {
      "Content-Type": "text/plain; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      ...headers,
    },
  });
}

/** `Authorization: Bearer <token>`, compared in constant time (digests of equal length). */
export function bearerMatches(header: string | null, tokenDigest: Buffer): boolean {
  if (header === null || !header.startsWith("Bearer ")) return false;
  return timingSafeEqual(digest(header.slice(7)), tokenDigest);
}

/** Host header allowed for an admin listener on `port` (DNS-rebinding guard). */
export function hostAllowed(host: string | null, port: number): boolean {
  if (host === null) return false;
  const h = host.toLowerCase();
  return h === `127.0.0.1:${port}` || h === `localhost:${port}`;
}

export function startAdminServer(opts: AdminOptions): AdminServer {
  let ready = false;
  const tokenDigest = opts.token === "" ? null : digest(opts.token);
  let port = opts.port; // the bound port once listening (opts.port 0 = any, for tests)
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: opts.port,
      reusePort: false,
      maxRequestBodySize: 1024,
      idleTimeout: 30,
      fetch(req) {
        if (!hostAllowed(req.headers.get("host"), port))
          return text(403, `forbidden: Host must be 127.0.0.1:${port} or localhost:${port}\n`);
        if (tokenDigest && !bearerMatches(req.headers.get("authorization"), tokenDigest))
          return text(401, "unauthorized\n", { "WWW-Authenticate": 'Bearer realm="clef-proxy metrics"' });
        const path = new URL(req.url).pathname;
        if (path !== "/metrics" && path !== "/healthz" && path !== "/readyz") return text(404, "not found\n");
        if (req.method !== "GET" && req.method !== "HEAD")
          return text(405, "method not allowed\n", { Allow: "GET, HEAD" });
        if (path === "/healthz") return text(200, "ok\n");
        if (path === "/readyz") return ready ? text(200, "ready\n") : text(503, "not ready\n");
        return new Response(opts.registry.render(), {
          headers: { "Content-Type": CONTENT_TYPE, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" },
        });
      },
      error() {
        return text(500, "internal error\n");
      },
    });
  } catch (e) {
    throw new AdminBindError(bindErrorMessage(opts.port, e));
  }
  port = server.port ?? opts.port;
  return {
    port,
    setReady(r) {
      ready = r;
    },
    close() {
      server.stop(true);
    },
  };
}

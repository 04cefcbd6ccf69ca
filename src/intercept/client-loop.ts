// The request loops of a client connection (docs/CONTRACT.md §7): on the listener (auth, CONNECT,
// absolute-form plain HTTP) and inside a CONNECT tunnel (every request of the tunnel). Both read
// request heads the same way, within the same timeouts; everything about one request is
// ./request.ts.
import { getHeader } from "../http/headers.ts";
import { type ParseResult, type RequestHead, RequestHeadParser } from "../http/h1-request.ts";
import { errorResponse, simpleResponse } from "../http/h1-response.ts";
import { parseRequestTarget } from "../http/target.ts";
import { warn } from "../log/slog.ts";
import { series } from "../metrics/series.ts";
import type { SocketHandler } from "bun";
import type { Conn, ConnData } from "./conn.ts";
import { checkProxyAuth } from "./auth.ts";
import type { TunnelFacts } from "./decide.ts";
import { HEAD_TIMEOUT_MS, IDLE_TIMEOUT_MS, MAX_HEADER_BYTES, MAX_HEADER_COUNT } from "./limits.ts";
import { TimeoutError } from "./pull.ts";
import { handleRequest } from "./request.ts";
import { openTunnel } from "./tunnel.ts";
import type { Serving } from "./types.ts";

/** What the loops need from the listener: the serving state and its connection bookkeeping. */
export interface ConnHost {
  serving: Serving;
  /** The connection proved the token: move it to the authenticated pool (false: no slot left). */
  authenticate(conn: Conn): boolean;
  /** The connection waits for its next request (drain may close it). */
  idle(conn: Conn): void;
  /** A TLS tunnel's connection takes the place of the raw one it runs over. */
  replace(raw: Conn, tls: Conn): void;
  draining(): boolean;
  /** The socket handlers, for the TLS sockets of tunnels. */
  socketHandlers: SocketHandler<ConnData>;
}

const AUTH_REQUIRED = (close: boolean) =>
  simpleResponse(
    407,
    [
      ["Content-Type", "text/plain; charset=utf-8"],
      ["Proxy-Authenticate", 'Basic realm="clef-proxy"'],
      ["X-Content-Type-Options", "nosniff"],
    ],
    "proxy authentication required\n",
    close,
  );

const NOT_A_PROXY_REQUEST = "This is a proxy server. Does not respond to non-proxy requests.\n";

type HeadResult = Extract<ParseResult, { kind: "error" | "h2-preface" | "ok" }> | null;

/**
 * Read one request head within the timeouts: the first request of a connection has HEAD_TIMEOUT_MS
 * to start and as long again to complete; a later one IDLE_TIMEOUT_MS to start. null when the peer
 * went away, idled out, or the drain began while the connection was idle.
 */
export async function readHead(host: ConnHost, conn: Conn, first: boolean): Promise<HeadResult> {
  const parser = new RequestHeadParser(MAX_HEADER_BYTES, MAX_HEADER_COUNT);
  let deadline = 0;
  for (;;) {
    if (deadline === 0 && !conn.hasInput()) {
      if (host.draining()) return null;
      conn.busy = false;
      host.idle(conn);
    }
    const timeout = deadline === 0 ? (first ? HEAD_TIMEOUT_MS : IDLE_TIMEOUT_MS) : Math.max(1, deadline - Date.now());
    let chunk: Uint8Array | null;
    try {
      chunk = await conn.read(timeout);
    } catch (e) {
      if (e instanceof TimeoutError) return null;
      throw e;
    }
    if (chunk === null) return null;
    conn.busy = true;
    if (deadline === 0) deadline = Date.now() + HEAD_TIMEOUT_MS;
    const r = parser.push(chunk);
    if (r.kind === "incomplete") continue;
    if (r.kind === "ok") conn.unshift(r.rest);
    return r;
  }
}

/** The listener-level loop: auth, CONNECT (handed to ./tunnel.ts), absolute-form plain HTTP. */
export async function serveClient(host: ConnHost, conn: Conn): Promise<void> {
  const { serving } = host;
  for (let first = true; ; first = false) {
    const r = await readHead(host, conn, first);
    if (r === null) return;
    if (r.kind === "error") return void (await conn.write(errorResponse(r.status, r.reason)).catch(() => {}));
    if (r.kind === "h2-preface") return void (await conn.write(AUTH_REQUIRED(true)).catch(() => {}));
    const head = r.head;
    // A request-target that is neither origin- nor absolute-form cannot be read: Go's 400, as Go's
    // server answers before any handler (and so before auth) — §18.20.
    if (head.method !== "CONNECT" && "error" in parseRequestTarget(head.target))
      return void (await conn.write(errorResponse(400, "")).catch(() => {}));
    const auth = await authenticate(host, conn, head);
    if (auth === "close") return;
    if (auth === "retry") continue; // 407 sent, the connection kept: the client retries with credentials
    if (head.method === "CONNECT") return void (await openTunnel(host, conn, head));
    if (!/^https?:\/\//i.test(head.target)) {
      const close = head.framing.kind !== "none" || !head.keepAlive;
      const answer = simpleResponse(
        500,
        [
          ["Content-Type", "text/plain; charset=utf-8"],
          ["X-Content-Type-Options", "nosniff"],
        ],
        NOT_A_PROXY_REQUEST,
        close,
      );
      await conn.write(answer);
      if (close) return;
      continue;
    }
    const again = await handleRequest(serving, conn, head, null);
    if (!again || host.draining()) return;
  }
}

/**
 * Check Proxy-Authorization (every request on the listener; a tunnel's requests inherit its
 * CONNECT's). On failure a 407 is written — rate-limited for wrong credentials (./auth.ts) — and the
 * connection is kept unless a body follows.
 */
async function authenticate(host: ConnHost, conn: Conn, head: RequestHead): Promise<"ok" | "retry" | "close"> {
  const { serving } = host;
  const value = getHeader(head.headers, "proxy-authorization");
  const outcome = serving.deps.lambdaLoopback ? "ok" : checkProxyAuth(value, serving.tokenDigest);
  if (outcome === "ok") return host.authenticate(conn) ? "ok" : "close";
  series.workloadAuthFailures.inc();
  if (outcome === "wrong") {
    const named = head.method === "CONNECT" ? head.target : (getHeader(head.headers, "host") ?? "");
    serving.authFailures.log([
      ["remote", conn.remote],
      ["host", named],
      ["method", head.method],
    ]);
    if (!(await serving.authFailures.turn())) return "close";
  }
  const close = head.framing.kind !== "none";
  await conn.write(AUTH_REQUIRED(close)).catch(() => {});
  return close || conn.closed ? "close" : "retry";
}

/** The request loop inside a tunnel (TLS or cleartext): every request is matched on its own. */
export async function serveTunnel(host: ConnHost, conn: Conn, tunnel: TunnelFacts): Promise<void> {
  for (let first = true; ; first = false) {
    const r = await readHead(host, conn, first);
    if (r === null) return;
    if (r.kind !== "ok") {
      const reason = r.kind === "error" ? r.reason : "HTTP/2 preface";
      warn("malformed request in tunnel", [
        ["remote", conn.remote],
        ["host", `${tunnel.connect.host}:${tunnel.connect.port}`],
        ["reason", reason],
      ]);
      const status = r.kind === "error" ? r.status : 505;
      await conn
        .write(errorResponse(status, r.kind === "error" ? r.reason : "unsupported protocol version"))
        .catch(() => {});
      return;
    }
    const again = await handleRequest(host.serving, conn, r.head, tunnel);
    if (!again || host.draining()) return;
  }
}

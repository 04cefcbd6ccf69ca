// The proxy's own upstream HTTP/1.1 client, for body-less requests sent directly (no corporate proxy):
// fetch costs ≈25 µs of CPU per request more than a keep-alive socket of our own (its thread and the
// hand-offs to it; docs/PERFORMANCE.md, fifth pass). Requests with a body and requests through a
// corporate proxy stay on fetch (./forward.ts). What it guarantees is what fetch did for us:
// - a connection serves one origin: the pool's key is scheme, vetted address, port and TLS name, so a
//   request (and its credential) only ever rides a connection dialled and verified for its host;
// - TLS is verified against the runtime's default store (the one fetch uses, ./trust.ts) for the real
//   name (an IP literal: its address), and nothing is written before the handshake succeeded;
// - the response head is parsed strictly (../http/h1-response-head.ts); a body is read exactly as
//   framed (../http/body.ts decodes chunked), and a connection goes back to the pool only when its
//   response ended cleanly, nothing more arrived and neither side asked to close;
// - an idle pooled connection that the upstream closed is never written to knowingly; one that it
//   closes as the request goes out is retried on another connection only when nothing of the
//   response came and replaying is safe (Go's rule: nothing written, or a GET/HEAD/OPTIONS/TRACE);
// - aborting the request (the client went away, the first-byte deadline) destroys its connection.
import { BodyReader } from "../http/body.ts";
import { HeadBuffer } from "../http/head-buffer.ts";
import { canonicalHeaderName, GO_USER_AGENT } from "../http/headers.ts";
import { fetchOrderHeaders, type ResponseHead, parseResponseHead } from "../http/h1-response-head.ts";
import { ClosedError, Conn, type ConnData } from "./conn.ts";
import type { UpstreamRequest } from "./forward-types.ts";
import {
  MAX_HEADER_BYTES,
  UPSTREAM_CONNECT_TIMEOUT_MS,
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
  UPSTREAM_IDLE_TIMEOUT_MS,
  UPSTREAM_MAX_IDLE,
  UPSTREAM_MAX_PER_ORIGIN,
} from "./limits.ts";
import { upstreamSocketHandlers } from "./socket-handlers.ts";

/** An error with the code ./upstream-error.ts describes (never a message with request data). */
function failure(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/** The request head as sent upstream: Go's canonical names, Go's User-Agent when the workload sent none. */
export function requestHead(req: UpstreamRequest): Buffer {
  let head = `${req.method} ${req.pathAndQuery} HTTP/1.1\r\n`;
  let ua = false;
  for (const [k, v] of req.headers) {
    if (!ua && k.length === 10 && k.toLowerCase() === "user-agent") ua = true;
    head += `${canonicalHeaderName(k)}: ${v}\r\n`;
  }
  if (!ua) head += `User-Agent: ${GO_USER_AGENT}\r\n`;
  return Buffer.from(`${head}\r\n`, "latin1");
}

/** A response as the forwarder hands it on. */
export interface H1Response {
  head: ResponseHead;
  /** Fields in the order the fetch path gave them (../http/h1-response-head.ts fetchOrderHeaders). */
  headers: ResponseHead["headers"];
  /** null when the response has no body. */
  body(): ReadableStream<Uint8Array> | null;
  readAll(): Promise<Uint8Array>;
}

/** Methods Go replays on a fresh connection when a reused one failed before any response byte. */
const REPLAYABLE = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

class Stale extends Error {}

/** Connect (and, for TLS, complete a verified handshake) within UPSTREAM_CONNECT_TIMEOUT_MS. */
function dial(addr: string, port: number, tlsName: string | null, signal: AbortSignal): Promise<Conn> {
  return new Promise<Conn>((resolve, reject) => {
    let conn: Conn | undefined;
    let verified = false;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (err) {
        conn?.destroy();
        reject(err);
      } else resolve(conn!);
    };
    const onAbort = () => settle(failure("Aborted"));
    const timer = setTimeout(() => settle(failure("ETIMEDOUT")), UPSTREAM_CONNECT_TIMEOUT_MS);
    signal.addEventListener("abort", onAbort);
    const data: ConnData = {
      onUpstreamOpen: (sock) => {
        conn = new Conn(sock, addr, port);
        data.conn = conn;
        if (settled) conn.destroy();
      },
    };
    if (tlsName !== null)
      data.onUpstreamHandshake = (ok, code) => {
        if (!ok) {
          // a close before the socket opened is the dial's failure (the promise below says which)
          if (conn || code) settle(failure(code || "EPROTO"));
        } else if (opened) settle();
        else verified = true;
      };
    let opened = false;
    Bun.connect<ConnData>({
      hostname: addr,
      port,
      data,
      socket: upstreamSocketHandlers,
      ...(tlsName === null ? {} : { tls: tlsName ? { serverName: tlsName } : true }),
    }).then(
      () => {
        opened = true;
        if (settled || !conn) return settle(failure("FailedToOpenSocket"));
        conn.onceClosed(() => settle(failure(tlsName === null ? "ECONNRESET" : "EPROTO")));
        if (tlsName === null || verified) settle();
      },
      (e: unknown) => settle(e instanceof Error ? e : failure("FailedToOpenSocket")),
    );
  });
}

/** A pooled connection and the remover of its close listener. */
interface Idle {
  conn: Conn;
  off: () => void;
}

export class H1Client {
  private readonly idle = new Map<string, Idle[]>();
  private idleCount = 0;

  /** Connections waiting in the pool (tests). */
  get idleConnections(): number {
    return this.idleCount;
  }

  /**
   * Send `req` to `addr` (a vetted address of `req.host`). `tlsName`: null for http, "" to verify an
   * IP literal, else the name. Rejects with a coded error before the response head; `signal` aborts.
   */
  async request(req: UpstreamRequest, addr: string, tlsName: string | null, signal: AbortSignal): Promise<H1Response> {
    const key = `${req.scheme} ${addr} ${req.port} ${tlsName ?? ""}`;
    const head = requestHead(req);
    for (;;) {
      if (signal.aborted) throw failure("Aborted");
      const pooled = this.take(key);
      const conn = pooled ?? (await dial(addr, req.port, tlsName, signal));
      const onAbort = () => conn.destroy();
      signal.addEventListener("abort", onAbort);
      try {
        const res = await this.exchange(conn, head, req.method, pooled !== null);
        return this.response(res, conn, key, signal);
      } catch (e) {
        conn.destroy();
        if (e instanceof Stale && !signal.aborted) continue; // nothing of the response came: another connection
        throw signal.aborted ? failure("Aborted") : e instanceof Stale ? failure("ECONNRESET") : e;
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
    }
  }

  /** Write the head, read the response head (1xx answers skipped). Stale: a reused connection failed first. */
  private async exchange(
    conn: Conn,
    head: Buffer,
    method: string,
    reused: boolean,
  ): Promise<{ head: ResponseHead; rest: Uint8Array }> {
    try {
      await conn.write(head);
    } catch (e) {
      // closed before the request went out: nothing was sent, any method may go again
      if (reused && e instanceof ClosedError) throw new Stale();
      throw failure("ECONNRESET");
    }
    let hb = new HeadBuffer(MAX_HEADER_BYTES);
    let got = false;
    for (let informational = 0; ; ) {
      const chunk = await conn.read();
      if (chunk === null) {
        if (!got && reused && REPLAYABLE.has(method)) throw new Stale();
        throw failure("ConnectionClosed");
      }
      got = true;
      const state = hb.push(chunk);
      if (state === "incomplete") continue;
      if (state === "too-large") throw failure("ResponseHeadersTooLarge");
      if (state !== "complete") throw failure("Malformed_HTTP_Response");
      const parsed = parseResponseHead(hb.head(), method);
      if (typeof parsed === "string") throw failure(parsed);
      const rest = hb.rest();
      // 1xx (101 included: no upgrade was asked for here) is not the answer; a few are skipped, as Go does
      if (parsed.status >= 200) return { head: parsed, rest };
      if (parsed.status === 101 || ++informational > 5) throw failure("Malformed_HTTP_Response");
      conn.unshift(rest); // what followed the 1xx head is the next head
      hb = new HeadBuffer(MAX_HEADER_BYTES);
    }
  }

  private response(
    res: { head: ResponseHead; rest: Uint8Array },
    conn: Conn,
    key: string,
    signal: AbortSignal,
  ): H1Response {
    const { head } = res;
    if (res.rest.byteLength > 0) conn.unshift(res.rest);
    let done = false;
    /** The body ended as framed: the connection goes back to the pool if it may. */
    const ended = () => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", abandoned);
      if (head.keepAlive && !conn.hasInput() && !conn.closed && !signal.aborted) this.put(key, conn);
      else conn.destroy();
    };
    /** The body was not read to its end (or failed, or the request was aborted): the connection is of no further use. */
    const abandoned = () => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", abandoned);
      conn.destroy();
    };
    // the client going away while the body is relayed ends the upstream exchange, as fetch's abort did
    signal.addEventListener("abort", abandoned);
    const framing = head.framing;
    if (framing.kind === "none") ended();
    const reader =
      framing.kind === "length" || framing.kind === "chunked"
        ? new BodyReader(conn, framing, UPSTREAM_FIRST_BYTE_TIMEOUT_MS)
        : null;
    const next = async (): Promise<Uint8Array | null> => {
      if (reader) {
        const c = await reader.next();
        if (c === null) ended();
        return c;
      }
      // until the upstream closes (a silence as long as the first-byte deadline ends it too)
      const c = await conn.read(UPSTREAM_FIRST_BYTE_TIMEOUT_MS);
      if (c === null) abandoned();
      return c;
    };
    return {
      head,
      headers: fetchOrderHeaders(head.headers),
      body: () =>
        framing.kind === "none"
          ? null
          : new ReadableStream<Uint8Array>(
              {
                pull: async (controller) => {
                  try {
                    const c = await next();
                    if (c === null) controller.close();
                    else controller.enqueue(c);
                  } catch (e) {
                    abandoned();
                    controller.error(e);
                  }
                },
                cancel: abandoned,
              },
              { highWaterMark: 0 },
            ),
      readAll: async () => {
        const parts: Uint8Array[] = [];
        try {
          for (let c = framing.kind === "none" ? null : await next(); c !== null; c = await next()) parts.push(c);
        } catch (e) {
          abandoned();
          throw e;
        }
        return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      },
    };
  }

  /** An idle connection for `key` that is still usable, or null. */
  private take(key: string): Conn | null {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const { conn, off } = list.pop()!;
      this.idleCount--;
      if (list.length === 0) this.idle.delete(key);
      off();
      // the upstream sent something unasked while it idled: never written to
      if (conn.closed || conn.hasInput()) {
        conn.destroy();
        continue;
      }
      conn.sock.timeout(0);
      return conn;
    }
    return null;
  }

  private put(key: string, conn: Conn): void {
    let list = this.idle.get(key);
    if (this.idleCount >= UPSTREAM_MAX_IDLE || (list && list.length >= UPSTREAM_MAX_PER_ORIGIN))
      return void conn.destroy();
    if (!list) this.idle.set(key, (list = []));
    // a connection the upstream closes (or that idles out) while pooled leaves the pool at once
    const entry: Idle = {
      conn,
      off: conn.onceClosed(() => {
        const l = this.idle.get(key);
        const i = l ? l.indexOf(entry) : -1;
        if (i < 0) return;
        l!.splice(i, 1);
        this.idleCount--;
        if (l!.length === 0) this.idle.delete(key);
      }),
    };
    list.push(entry);
    this.idleCount++;
    conn.sock.timeout(UPSTREAM_IDLE_TIMEOUT_MS / 1000);
  }
}

// Protocol upgrades (WebSocket) through the proxy (docs/CONTRACT.md §10): fetch cannot carry a
// protocol switch, so an upgrade request goes over a raw socket to the vetted address:
//   1. dial (TLS verified against the runtime's default store, as fetch; SNI = the real name) — nothing is written
//      before the handshake succeeded;
//   2. write the request head (credential already injected, Upgrade/Connection kept);
//   3. relay the response head; on 101 the connection becomes a byte pipe both ways until either
//      side closes or stays silent for UPGRADED_IDLE_TIMEOUT_MS; any other status is relayed to
//      the end of its body and the client connection is closed.
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { canonicalHeaderName } from "../http/headers.ts";
import type { ProxyChoice } from "./chain.ts";
import { type ByteDuplex, type UpstreamRequest, UpstreamError } from "./forward-types.ts";
import {
  MAX_HEADER_BYTES,
  UPGRADED_IDLE_TIMEOUT_MS,
  UPSTREAM_CONNECT_TIMEOUT_MS,
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
} from "./limits.ts";

class Timeout extends Error {}

/** Pull-style reading over a node socket, one chunk at a time, paused while nobody reads. */
class SocketReader {
  private queue: Buffer[] = [];
  private ended = false;
  private waiter: (() => void) | null = null;
  error: Error | null = null;

  constructor(private readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.queue.push(d);
      sock.pause();
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", (e) => {
      this.error = e;
      end();
    });
  }

  /** Stop listening (the socket is handed to another reader, e.g. TLS over a proxy tunnel). */
  detach(): void {
    this.sock.removeAllListeners("data");
    this.sock.removeAllListeners("end");
    this.sock.removeAllListeners("close");
    this.sock.removeAllListeners("error");
    this.sock.resume();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async read(timeoutMs: number): Promise<Buffer | null> {
    while (this.queue.length === 0) {
      if (this.ended) return null;
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => {
          this.waiter = null;
          reject(new Timeout());
        }, timeoutMs);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    const c = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue);
    this.queue = [];
    if (!this.ended) this.sock.resume();
    return c;
  }
}

function dialErrorDetail(e: Error & { code?: string }, where: string, tlsTo: string | null): string {
  const code = e.code ?? "";
  if (code === "ECONNREFUSED") return `dial tcp ${where}: connect: connection refused`;
  if (code === "ECONNRESET") return "EOF";
  if (tlsTo) return `tls: failed to verify certificate for ${tlsTo}: ${code || e.message}`;
  return `${e.message}${code ? ` (${code})` : ""}`;
}

/** Connect (TCP, then TLS when `tls` is given, verified) — or TLS over an existing socket. */
function open(
  host: string,
  port: number,
  tls: { servername: string | undefined } | null,
  over?: Socket,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const where = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    const fail = (e: Error & { code?: string }) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new UpstreamError(dialErrorDetail(e, where, tls ? (tls.servername ?? host) : null)));
    };
    const timer = setTimeout(() => fail(new Error(`dial tcp ${where}: i/o timeout`)), UPSTREAM_CONNECT_TIMEOUT_MS);
    const ok = () => {
      clearTimeout(timer);
      sock.off("error", fail);
      resolve(sock);
    };
    const sock: Socket = tls
      ? tlsConnect(
          {
            ...(over ? { socket: over } : { host, port }),
            servername: tls.servername,
            ALPNProtocols: ["http/1.1"],
            rejectUnauthorized: true,
          },
          ok,
        )
      : netConnect({ host, port }, ok);
    sock.once("error", fail);
  });
}

/** Dial the vetted address, directly or through the upstream proxy with CONNECT (like fetch does). */
async function dial(req: UpstreamRequest, addr: string, proxy: ProxyChoice | null): Promise<Socket> {
  const tlsTarget = req.scheme === "https" ? { servername: isIP(req.host) ? undefined : req.host } : null;
  if (!proxy) return open(addr, req.port, tlsTarget);
  const u = new URL(proxy.url);
  const proxyHost = u.hostname.replace(/^\[|\]$/g, "");
  const proxyPort = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  const ps = await open(
    proxyHost,
    proxyPort,
    u.protocol === "https:" ? { servername: isIP(proxyHost) ? undefined : proxyHost } : null,
  );
  const target = `${isIP(addr) === 6 ? `[${addr}]` : addr}:${req.port}`;
  ps.write(
    `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nUser-Agent: Go-http-client/1.1\r\n${proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : ""}\r\n`,
  );
  const r = new SocketReader(ps);
  const res = await readHead(r).catch((e) => {
    ps.destroy();
    throw new UpstreamError(`upstream proxy: ${(e as Error).message}`);
  });
  const status = /^HTTP\/1\.[01] (\d{3})(.*)/.exec(res.head);
  if (!status || status[1]![0] !== "2") {
    ps.destroy();
    throw new UpstreamError(`upstream proxy: ${status ? `${status[1]}${status[2]}` : "malformed response"}`);
  }
  r.detach();
  if (res.rest.byteLength) ps.unshift(res.rest);
  return tlsTarget ? open(addr, req.port, tlsTarget, ps) : ps;
}

/** Read the response head (bytes up to CRLFCRLF); returns it and any bytes after it. */
async function readHead(r: SocketReader): Promise<{ head: string; rest: Buffer }> {
  let buf = Buffer.alloc(0);
  for (;;) {
    let chunk: Buffer | null;
    try {
      chunk = await r.read(UPSTREAM_FIRST_BYTE_TIMEOUT_MS);
    } catch {
      throw new UpstreamError(`upstream did not answer within ${UPSTREAM_FIRST_BYTE_TIMEOUT_MS / 1000}s`);
    }
    if (chunk === null) throw new UpstreamError(r.error ? r.error.message : "EOF");
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf("\r\n\r\n");
    if (end >= 0) return { head: buf.subarray(0, end).toString("latin1"), rest: buf.subarray(end + 4) };
    if (buf.byteLength > MAX_HEADER_BYTES) throw new UpstreamError("upstream response head too large");
  }
}

/**
 * Relay an upgrade request. `onResponse` is called with the upstream status as soon as its head
 * arrived (before the head is written to the client). Rejects with UpstreamError only before that.
 */
export async function relayUpgrade(
  client: ByteDuplex,
  req: UpstreamRequest,
  proxy: ProxyChoice | null,
  onResponse: (status: number) => void,
): Promise<void> {
  if (req.addresses.length === 0) throw new UpstreamError(`dial tcp: lookup ${req.host}: no such host`);
  const sock = await dial(req, req.addresses[0]!, proxy);
  const up = new SocketReader(sock);
  try {
    let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
    let ua = false;
    for (const [k, v] of req.headers) {
      if (k.toLowerCase() === "user-agent") ua = true;
      head += `${canonicalHeaderName(k)}: ${v}\r\n`;
    }
    if (!ua) head += "User-Agent: Go-http-client/1.1\r\n";
    sock.write(Buffer.from(head + "\r\n", "latin1"));

    const res = await readHead(up);
    const nl = res.head.indexOf("\r\n");
    const statusLine = nl < 0 ? res.head : res.head.slice(0, nl);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!m) throw new UpstreamError(`malformed HTTP response ${JSON.stringify(statusLine.slice(0, 40))}`);
    const status = Number(m[1]);
    onResponse(status);
    await client.write(Buffer.from(res.head + "\r\n\r\n", "latin1"));

    if (status !== 101) {
      // not switched: relay the body as framed by Content-Length (else until the upstream closes)
      const cl = /\r\ncontent-length:\s*(\d+)\s*(\r\n|$)/i.exec(res.head);
      let left = cl ? Number(cl[1]) : Infinity;
      let chunk: Buffer | null = res.rest;
      while (chunk && left > 0) {
        const part = chunk.byteLength > left ? chunk.subarray(0, left) : chunk;
        if (part.byteLength) await client.write(part);
        left -= part.byteLength;
        if (left <= 0) break;
        chunk = await up.read(UPSTREAM_FIRST_BYTE_TIMEOUT_MS).catch(() => null);
      }
      return;
    }

    // 101: a byte pipe in both directions
    if (res.rest.byteLength) await client.write(res.rest);
    // idle = no byte in EITHER direction for UPGRADED_IDLE_TIMEOUT_MS (a push-only stream stays up)
    let last = Date.now();
    const idleLeft = () => UPGRADED_IDLE_TIMEOUT_MS - (Date.now() - last);
    async function pump(
      read: (ms: number) => Promise<Uint8Array | null>,
      write: (c: Uint8Array) => Promise<void>,
    ): Promise<void> {
      for (;;) {
        let c: Uint8Array | null;
        try {
          c = await read(Math.max(1, idleLeft()));
        } catch {
          if (idleLeft() > 0) continue; // the other direction was active meanwhile
          return;
        }
        if (c === null) return;
        last = Date.now();
        await write(c);
      }
    }
    const upToClient = pump(
      (ms) => up.read(ms),
      (c) => client.write(c),
    )
      .catch(() => {})
      .finally(() => client.end());
    const clientToUp = pump(
      (ms) => client.read(ms),
      async (c) => {
        if (!sock.write(c)) await new Promise<void>((r) => sock.once("drain", () => r()).once("close", () => r()));
      },
    )
      .catch(() => {})
      .finally(() => sock.end());
    await Promise.race([upToClient, clientToUp]);
    // one side finished: give the other a moment to finish its close handshake
    await Promise.race([Promise.all([upToClient, clientToUp]), Bun.sleep(2_000)]);
  } finally {
    sock.destroy();
  }
}

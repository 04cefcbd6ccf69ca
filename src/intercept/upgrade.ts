// WebSocket handshakes through the proxy (docs/CONTRACT.md §10): fetch cannot carry a protocol
// switch, so a WebSocket request goes over a raw socket:
//   1. dial the vetted addresses in order (or the corporate proxy, CONNECT with the name, §18.11),
//      TLS verified against the runtime's default store as fetch does, SNI = the real name —
//      nothing is written before the handshake succeeded;
//   2. write the request head (credential already injected, Upgrade/Connection kept);
//   3. relay the response head; on 101 the connection becomes a byte pipe both ways until either
//      side closes or stays silent for UPGRADED_IDLE_TIMEOUT_MS; any other status is relayed to
//      the end of its body and the client connection is closed.
import { isIP, connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { HeadBuffer } from "../http/head-buffer.ts";
import { canonicalHeaderName, GO_USER_AGENT } from "../http/headers.ts";
import type { ProxyChoice } from "../http/corporate-proxy.ts";
import type { ByteDuplex, UpstreamRequest } from "./forward-types.ts";
import {
  INPUT_HIGH_WATER,
  MAX_HEADER_BYTES,
  UPGRADED_IDLE_TIMEOUT_MS,
  UPSTREAM_CONNECT_TIMEOUT_MS,
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
} from "./limits.ts";
import { PullQueue } from "./pull.ts";
import { describeUpstreamError, hostPort, isDialFailure, UpstreamError } from "./upstream-error.ts";

/** A node socket as a pull-based reader (./pull.ts). */
class SocketReader {
  private readonly queue: PullQueue;

  constructor(private readonly sock: Socket) {
    this.queue = new PullQueue({ pause: () => sock.pause(), resume: () => sock.resume() }, INPUT_HIGH_WATER);
    sock.on("data", (d: Buffer) => this.queue.push(d));
    const end = () => this.queue.end();
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  /** Stop listening (the socket is handed to another reader, e.g. TLS over a proxy tunnel). */
  detach(): void {
    for (const ev of ["data", "end", "close", "error"]) this.sock.removeAllListeners(ev);
    this.sock.resume();
  }

  read(timeoutMs: number): Promise<Uint8Array | null> {
    return this.queue.read(timeoutMs);
  }
}

/** Connect (TCP, then TLS when `tls` is given, verified) — or TLS over an existing socket. */
function open(host: string, port: number, tls: { servername: string } | null, over?: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })),
      UPSTREAM_CONNECT_TIMEOUT_MS,
    );
    const ok = () => {
      clearTimeout(timer);
      sock.off("error", fail);
      resolve(sock);
    };
    const sock: Socket = tls
      ? tlsConnect(
          {
            ...(over ? { socket: over, host } : { host, port }),
            ...(tls.servername ? { servername: tls.servername } : {}),
            ALPNProtocols: ["http/1.1"],
            rejectUnauthorized: true,
          },
          ok,
        )
      : netConnect({ host, port }, ok);
    sock.once("error", fail);
  });
}

/** Read a response head (strict CRLF); returns it, its status and the bytes after it. */
async function readResponseHead(
  r: SocketReader,
  who: string,
): Promise<{ head: string; status: number; rest: Uint8Array }> {
  const hb = new HeadBuffer(MAX_HEADER_BYTES);
  for (;;) {
    const chunk = await r.read(UPSTREAM_FIRST_BYTE_TIMEOUT_MS).catch(() => {
      throw new UpstreamError(`upstream did not answer within ${UPSTREAM_FIRST_BYTE_TIMEOUT_MS / 1000}s`);
    });
    if (chunk === null) throw new UpstreamError("EOF");
    const state = hb.push(chunk);
    if (state === "incomplete") continue;
    if (state !== "complete") throw new UpstreamError(`${who} sent a malformed HTTP response`);
    const head = hb.head();
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(head);
    if (!m) throw new UpstreamError(`${who} sent a malformed HTTP response`);
    return { head, status: Number(m[1]), rest: hb.rest() };
  }
}

/** Through the corporate proxy: CONNECT host:port with the name (§18.11), then TLS to the upstream. */
async function dialViaProxy(
  req: UpstreamRequest,
  proxy: ProxyChoice,
  tlsTarget: { servername: string } | null,
): Promise<Socket> {
  const u = new URL(proxy.url);
  const proxyHost = u.hostname.replace(/^\[|\]$/g, "");
  const proxyPort = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  const ps = await open(
    proxyHost,
    proxyPort,
    u.protocol === "https:" ? { servername: isIP(proxyHost) ? "" : proxyHost } : null,
  ).catch((e) => {
    throw new UpstreamError(
      `upstream proxy: ${describeUpstreamError(e, { host: proxyHost, addr: proxyHost, port: proxyPort })}`,
    );
  });
  const target = hostPort(req.host, req.port);
  const auth = proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : "";
  ps.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nUser-Agent: ${GO_USER_AGENT}\r\n${auth}\r\n`);
  const r = new SocketReader(ps);
  try {
    const res = await readResponseHead(r, "upstream proxy");
    if (res.status < 200 || res.status > 299)
      throw new UpstreamError(`upstream proxy: ${res.head.split("\r\n")[0]!.slice(9, 60)}`);
    r.detach();
    if (res.rest.byteLength) ps.unshift(Buffer.from(res.rest));
  } catch (e) {
    ps.destroy();
    throw e instanceof UpstreamError
      ? new UpstreamError(e.message.startsWith("upstream proxy") ? e.message : `upstream proxy: ${e.message}`)
      : e;
  }
  return tlsTarget ? open(req.host, req.port, tlsTarget, ps) : ps;
}

/** Dial the vetted addresses in order (dial failures move to the next), or through the proxy. */
async function dial(req: UpstreamRequest): Promise<Socket> {
  const tlsTarget = req.scheme === "https" ? { servername: isIP(req.host) ? "" : req.host } : null;
  if (req.proxy) return dialViaProxy(req, req.proxy, tlsTarget);
  if (req.addresses.length === 0) throw new UpstreamError(`dial tcp: lookup ${req.host}: no such host`);
  let lastErr: unknown;
  let addr = req.addresses[0]!;
  for (addr of req.addresses) {
    try {
      return await open(addr, req.port, tlsTarget);
    } catch (e) {
      lastErr = e;
      if (!isDialFailure(e)) break;
    }
  }
  throw new UpstreamError(describeUpstreamError(lastErr, { host: req.host, addr, port: req.port }));
}

function requestHead(req: UpstreamRequest): Buffer {
  let head = `${req.method} ${req.pathAndQuery} HTTP/1.1\r\n`;
  let ua = false;
  for (const [k, v] of req.headers) {
    if (k.toLowerCase() === "user-agent") ua = true;
    head += `${canonicalHeaderName(k)}: ${v}\r\n`;
  }
  if (!ua) head += `User-Agent: ${GO_USER_AGENT}\r\n`;
  return Buffer.from(`${head}\r\n`, "latin1");
}

/** Relay a non-101 answer's body as framed by Content-Length (else until the upstream closes). */
async function relayBody(client: ByteDuplex, up: SocketReader, head: string, first: Uint8Array): Promise<void> {
  const cl = /\r\ncontent-length:\s*(\d+)\s*(\r\n|$)/i.exec(head);
  let left = cl ? Number(cl[1]) : Number.POSITIVE_INFINITY;
  let chunk: Uint8Array | null = first;
  while (chunk && left > 0) {
    const part = chunk.byteLength > left ? chunk.subarray(0, left) : chunk;
    if (part.byteLength) await client.write(part);
    left -= part.byteLength;
    if (left <= 0) break;
    chunk = await up.read(UPSTREAM_FIRST_BYTE_TIMEOUT_MS).catch(() => null);
  }
}

/** After a 101: bytes both ways until a side closes or both stay silent for the idle timeout. */
async function pipe(client: ByteDuplex, up: SocketReader, sock: Socket): Promise<void> {
  let last = Date.now();
  const idleLeft = () => UPGRADED_IDLE_TIMEOUT_MS - (Date.now() - last);
  async function pump(read: (ms: number) => Promise<Uint8Array | null>, write: (c: Uint8Array) => Promise<void>) {
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
}

/**
 * Relay a WebSocket handshake. `onResponse` is called with the upstream status as soon as its head
 * arrived (before the head is written to the client). Rejects with UpstreamError only before that.
 */
export async function relayUpgrade(
  client: ByteDuplex,
  req: UpstreamRequest,
  onResponse: (status: number) => void,
): Promise<void> {
  const sock = await dial(req);
  const up = new SocketReader(sock);
  try {
    sock.write(requestHead(req));
    const res = await readResponseHead(up, `upstream ${hostPort(req.host, req.port)}`);
    onResponse(res.status);
    await client.write(Buffer.from(`${res.head}\r\n\r\n`, "latin1"));
    if (res.status !== 101) return await relayBody(client, up, res.head, res.rest);
    if (res.rest.byteLength) await client.write(res.rest);
    await pipe(client, up, sock);
  } finally {
    sock.destroy();
  }
}

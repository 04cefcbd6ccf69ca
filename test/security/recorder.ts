// Upstream recorders for the security suite: raw TCP or TLS listeners (Bun.listen) that keep every
// byte each connection delivered, parse the HTTP/1.1 requests in it and answer them. The same class
// plays the honest upstreams (api.test, q.test, pass.test) and the attacker (evil.test, 127.0.0.2),
// which records whatever reaches it.
//
// Answers: `200` with `Content-Length: 0` and two headers naming who answered and which request
// (`X-Rec-Who`, `X-Rec-Id` = the X-Clef-Request-Id received), so a client can tell from the response
// alone which upstream saw its request. Nothing the client sent is echoed (a recorder never hands a
// secret back). Paths starting with `/__` pick a misbehaviour instead (see `Behaviour`).
import type { Socket, TCPSocketListener } from "bun";
import type { TestPki } from "../helpers/tls.ts";

export interface RecConn {
  id: number;
  recorder: string;
  port: number;
  tls: boolean;
  sni?: string;
  chunks: Buffer[];
  bytes: number;
  openedAt: number;
  closedAt?: number;
  /** Bytes of response body written (for /__endless). */
  sent: number;
}

export interface RecRequest {
  conn: RecConn;
  at: number;
  method: string;
  target: string;
  headers: Array<[string, string]>;
  host?: string;
  requestId?: string;
  /** Head bytes as received (request line to the blank line). */
  head: Buffer;
  body: Buffer[];
  complete: boolean;
}

/**
 * What a request's path makes the recorder do:
 *   /__silent…   read the request, never answer (the connection stays open until the peer closes it)
 *   /__garbage…  answer non-HTTP bytes, then close
 *   /__bighead…  answer a status line and 2 MiB of header, then close
 *   /__badcl…    answer `Content-Length: x1`, then close
 *   /__midhead…  answer half a head, then close
 *   /__endless…  answer 200 chunked and produce body bytes for ever (with back-pressure)
 *   /__appended… answer as usual, then append an unasked-for second response (`X-Smuggled: 1`)
 *                on the same connection, which stays open
 *   /__twocl…    answer with two different Content-Lengths, then close
 */
const MISBEHAVIOURS = ["silent", "garbage", "bighead", "badcl", "midhead", "endless", "appended", "twocl"] as const;
export type Behaviour = "answer" | (typeof MISBEHAVIOURS)[number];

export function behaviourOf(target: string): Behaviour {
  const p = target.replace(/^[a-z]+:\/\/[^/]*/i, "");
  for (const b of MISBEHAVIOURS) if (p.startsWith(`/__${b}`)) return b;
  return "answer";
}

interface ConnState {
  rec: RecConn;
  buf: Buffer;
  cur?: RecRequest;
  bodyLeft: number; // content-length bytes left
  chunked: boolean;
  chunkBuf: Buffer;
  dead: boolean;
  pending: Buffer[];
  onDrain?: () => void;
}

const CRLF2 = Buffer.from("\r\n\r\n");

/** The misbehaviours that write these bytes, then close the connection. */
const CLOSING_ANSWERS: Partial<Record<Behaviour, string>> = {
  garbage: "SSH-2.0-OpenSSH_9.0 garbage\r\n\x00\x01\x02 not http at all\r\n\r\n",
  bighead: `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(2 * 1024 * 1024)}\r\n`,
  badcl: "HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\nbody",
  midhead: "HTTP/1.1 200 OK\r\nX-Half: ",
  twocl: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
};

export interface Recorder {
  name: string;
  hostname: string;
  /** port → tls? */
  ports: Map<number, boolean>;
  conns: RecConn[];
  requests: RecRequest[];
  /** Forget what was recorded so far (the listeners stay). */
  reset(): void;
  stop(): void;
}

export interface RecorderOptions {
  name: string;
  hostname: string;
  pki: TestPki;
  /** More addresses to listen on, with the same port numbers (e.g. "::1" beside "127.0.0.1"). */
  alsoOn?: string[];
  /** Ports to listen on with TLS / in cleartext; 0 = an ephemeral port. Ports that cannot be bound are skipped. */
  tlsPorts?: number[];
  plainPorts?: number[];
}

let connIds = 0;

export function startRecorder(opts: RecorderOptions): Recorder {
  const conns: RecConn[] = [];
  const requests: RecRequest[] = [];
  const listeners: Array<TCPSocketListener<ConnState>> = [];
  const ports = new Map<number, boolean>();

  const write = (sock: Socket<ConnState>, data: Buffer | string): void => {
    const st = sock.data;
    const b = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    if (st.pending.length) {
      st.pending.push(b);
      return;
    }
    const n = sock.write(b);
    if (n < b.byteLength) st.pending.push(b.subarray(Math.max(0, n)));
  };

  const answer = (sock: Socket<ConnState>, req: RecRequest): void => {
    const st = sock.data;
    const b = behaviourOf(req.target);
    const id = req.requestId ?? "";
    const closing = CLOSING_ANSWERS[b];
    if (closing !== undefined) {
      write(sock, closing);
      sock.end();
      st.dead = true;
      return;
    }
    switch (b) {
      case "silent":
        return;
      case "appended":
        write(
          sock,
          `HTTP/1.1 200 OK\r\nX-Rec-Who: ${opts.name}\r\nX-Rec-Id: ${id}\r\nContent-Length: 5\r\n\r\nfirst` +
            "HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 8\r\n\r\nsmuggled",
        );
        return;
      case "endless": {
        write(
          sock,
          `HTTP/1.1 200 OK\r\nX-Rec-Who: ${opts.name}\r\nX-Rec-Id: ${id}\r\nTransfer-Encoding: chunked\r\n\r\n`,
        );
        const chunk = Buffer.concat([Buffer.from("10000\r\n"), Buffer.alloc(0x10000, 0x61), Buffer.from("\r\n")]);
        const pump = () => {
          while (!st.rec.closedAt && st.pending.length === 0) {
            const n = sock.write(chunk);
            if (n > 0) st.rec.sent += n;
            if (n < chunk.byteLength) {
              st.pending.push(chunk.subarray(Math.max(0, n)));
              break;
            }
          }
        };
        st.onDrain = pump;
        st.dead = true; // no further requests on this connection
        pump();
        return;
      }
      default:
        write(
          sock,
          `HTTP/1.1 200 OK\r\nX-Rec-Who: ${opts.name}\r\nX-Rec-Id: ${id}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n`,
        );
    }
  };

  const feed = (sock: Socket<ConnState>): void => {
    const st = sock.data;
    for (;;) {
      if (st.dead) {
        st.buf = Buffer.alloc(0);
        return;
      }
      if (!st.cur) {
        const end = st.buf.indexOf(CRLF2);
        if (end < 0) return;
        const head = st.buf.subarray(0, end + 4);
        st.buf = st.buf.subarray(end + 4);
        const lines = head.toString("latin1").split("\r\n");
        const [method = "", target = ""] = (lines[0] ?? "").split(" ");
        const headers: Array<[string, string]> = [];
        for (const l of lines.slice(1)) {
          const i = l.indexOf(":");
          if (i > 0) headers.push([l.slice(0, i), l.slice(i + 1).trim()]);
        }
        const get = (n: string) => headers.find(([k]) => k.toLowerCase() === n)?.[1];
        const req: RecRequest = {
          conn: st.rec,
          at: Date.now(),
          method,
          target,
          headers,
          host: get("host"),
          requestId: get("x-clef-request-id"),
          head: Buffer.from(head),
          body: [],
          complete: false,
        };
        requests.push(req);
        st.cur = req;
        const te = get("transfer-encoding");
        st.chunked = te !== undefined && /chunked/i.test(te);
        st.bodyLeft = st.chunked ? 0 : Number(get("content-length") ?? 0) || 0;
        st.chunkBuf = Buffer.alloc(0);
      }
      const req = st.cur;
      if (st.chunked) {
        // Find the terminating chunk by walking the chunk sizes.
        st.chunkBuf = Buffer.concat([st.chunkBuf, st.buf]);
        st.buf = Buffer.alloc(0);
        let off = 0;
        let done = false;
        for (;;) {
          const nl = st.chunkBuf.indexOf("\r\n", off);
          if (nl < 0) break;
          const size = parseInt(st.chunkBuf.subarray(off, nl).toString("latin1").split(";")[0]!, 16);
          if (Number.isNaN(size)) {
            st.dead = true;
            break;
          }
          if (size === 0) {
            const p = nl + 2;
            if (st.chunkBuf.length < p + 2) break;
            let stop = -1;
            if (st.chunkBuf[p] === 13 && st.chunkBuf[p + 1] === 10) stop = p + 2;
            else {
              const t = st.chunkBuf.indexOf(CRLF2, p);
              if (t >= 0) stop = t + 4;
            }
            if (stop < 0) break;
            req.body.push(Buffer.from(st.chunkBuf.subarray(0, stop)));
            st.buf = st.chunkBuf.subarray(stop);
            st.chunkBuf = Buffer.alloc(0);
            done = true;
            break;
          }
          if (st.chunkBuf.length < nl + 2 + size + 2) break;
          off = nl + 2 + size + 2;
        }
        if (!done) return;
      } else if (st.bodyLeft > 0) {
        const take = Math.min(st.bodyLeft, st.buf.length);
        req.body.push(Buffer.from(st.buf.subarray(0, take)));
        st.buf = st.buf.subarray(take);
        st.bodyLeft -= take;
        if (st.bodyLeft > 0) return;
      }
      req.complete = true;
      st.cur = undefined;
      answer(sock, req);
    }
  };

  const handlers = (tls: boolean, port: () => number) => ({
    open(sock: Socket<ConnState>) {
      const rec: RecConn = {
        id: ++connIds,
        recorder: opts.name,
        port: port(),
        tls,
        chunks: [],
        bytes: 0,
        openedAt: Date.now(),
        sent: 0,
      };
      conns.push(rec);
      sock.data = {
        rec,
        buf: Buffer.alloc(0),
        bodyLeft: 0,
        chunked: false,
        chunkBuf: Buffer.alloc(0),
        dead: false,
        pending: [],
      };
    },
    handshake(sock: Socket<ConnState>) {
      const sni = (sock as unknown as { getServername?(): string | undefined }).getServername?.();
      if (sni) sock.data.rec.sni = sni;
    },
    data(sock: Socket<ConnState>, chunk: Buffer) {
      const st = sock.data;
      const c = Buffer.from(chunk);
      st.rec.chunks.push(c);
      st.rec.bytes += c.byteLength;
      st.buf = st.buf.length ? Buffer.concat([st.buf, c]) : c;
      feed(sock);
    },
    drain(sock: Socket<ConnState>) {
      const st = sock.data;
      while (st.pending.length) {
        const b = st.pending[0]!;
        const n = sock.write(b);
        if (st.onDrain && n > 0) st.rec.sent += n;
        if (n < b.byteLength) {
          st.pending[0] = b.subarray(Math.max(0, n));
          return;
        }
        st.pending.shift();
      }
      st.onDrain?.();
    },
    close(sock: Socket<ConnState>) {
      if (sock.data) sock.data.rec.closedAt = Date.now();
    },
    error(sock: Socket<ConnState>) {
      if (sock.data) sock.data.rec.closedAt ??= Date.now();
    },
  });

  const listen = (hostname: string, port: number, tls: boolean): number => {
    let bound = 0;
    try {
      const l = Bun.listen<ConnState>({
        hostname,
        port,
        ...(tls ? { tls: { key: opts.pki.key, cert: opts.pki.cert } } : {}),
        socket: handlers(tls, () => bound),
      });
      bound = l.port;
      listeners.push(l);
    } catch {
      // port taken (only possible for fixed ports outside a private network namespace): skip it
    }
    return bound;
  };
  for (const [list, tls] of [
    [opts.tlsPorts ?? [], true],
    [opts.plainPorts ?? [], false],
  ] as const) {
    for (const p of list) {
      const bound = listen(opts.hostname, p, tls);
      if (!bound) continue;
      ports.set(bound, tls);
      for (const h of opts.alsoOn ?? []) listen(h, bound, tls);
    }
  }

  return {
    name: opts.name,
    hostname: opts.hostname,
    ports,
    conns,
    requests,
    reset() {
      conns.length = 0;
      requests.length = 0;
    },
    stop() {
      for (const l of listeners) l.stop(true);
    },
  };
}

/** The first port of the given kind. */
export function portOf(r: Recorder, tls: boolean): number {
  for (const [p, t] of r.ports) if (t === tls) return p;
  throw new Error(`recorder ${r.name} has no ${tls ? "TLS" : "cleartext"} port`);
}

/** Every byte a request carried (head and body). */
export function requestBytes(r: RecRequest): Buffer {
  return Buffer.concat([r.head, ...r.body]);
}

// The listener (docs/CONTRACT.md §7): Bun.listen on 127.0.0.1, workload auth, CONNECT → TLS with a
// minted leaf, HTTP/1.1 request loops on the listener and inside tunnels, drain.
import type { TCPSocketListener } from "bun";
import { createHash, timingSafeEqual } from "node:crypto";
import { getHeader } from "../http/headers.ts";
import { warn } from "../log/slog.ts";
import { canonicalHost, splitAuthority } from "../match/index.ts";
import { Conn, type ConnData, TimeoutError } from "./conn.ts";
import { createForwarder } from "./forward.ts";
import { errorResponse, parseHead, type RequestHead } from "../http/h1-request.ts";
import {
  HEAD_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  MAX_CONNECTIONS,
  MAX_HEADER_BYTES,
  MAX_HEADER_COUNT,
  TLS_HANDSHAKE_TIMEOUT_MS,
} from "./limits.ts";
import { createPipelineContext, handleRequest, type PipelineContext, type TunnelInfo } from "./pipeline.ts";
import { simpleResponse } from "./respond.ts";
import { BindError, type InterceptDeps, type Listener } from "./types.ts";

export { BindError, InterceptInitError } from "./types.ts";

const AUTH_REQUIRED = simpleResponse(
  407,
  [
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Proxy-Authenticate", 'Basic realm="clef-proxy"'],
    ["X-Content-Type-Options", "nosniff"],
  ],
  "proxy authentication required\n",
  false,
);

const NOT_A_PROXY_REQUEST = "This is a proxy server. Does not respond to non-proxy requests.\n";

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Proxy-Authorization: Basic base64(user:TOKEN); constant-time on the password. */
export function checkProxyAuth(value: string | undefined, tokenDigest: Buffer): boolean {
  if (!value || !value.startsWith("Basic ")) return false;
  const b64 = value.slice(6);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return false;
  const decoded = Buffer.from(b64, "base64").toString("latin1");
  const i = decoded.indexOf(":");
  if (i < 0) return false;
  return timingSafeEqual(digest(decoded.slice(i + 1)), tokenDigest);
}

interface State {
  deps?: InterceptDeps;
  ctx?: PipelineContext;
  tokenDigest?: Buffer;
  conns: Set<Conn>;
  draining: boolean;
  startWaiters: Array<() => void>;
  idleWaiters: Array<() => void>;
}

/** Read one request head within the timeouts; null when the peer went away or idled out. */
async function readHead(
  conn: Conn,
  first: boolean,
  st: State,
): Promise<RequestHead | { error: string; reason: string } | null> {
  let buf: Uint8Array = new Uint8Array(0);
  let deadline = 0;
  for (;;) {
    if (buf.byteLength === 0 && !conn.hasInput()) {
      if (st.draining) return null;
      conn.busy = false;
      notifyIdle(st);
    }
    const timeout =
      buf.byteLength === 0 && !first
        ? IDLE_TIMEOUT_MS
        : deadline
          ? Math.max(1, deadline - Date.now())
          : HEAD_TIMEOUT_MS;
    let chunk: Uint8Array | null;
    try {
      chunk = await conn.read(timeout);
    } catch (e) {
      if (e instanceof TimeoutError) return null;
      throw e;
    }
    if (chunk === null) return null;
    conn.busy = true;
    if (!deadline) deadline = Date.now() + HEAD_TIMEOUT_MS;
    buf = buf.byteLength ? Buffer.concat([buf, chunk]) : chunk;
    const r = parseHead(buf, MAX_HEADER_BYTES, MAX_HEADER_COUNT);
    if (r.kind === "incomplete") continue;
    if (r.kind === "error") return { error: errorResponse(r.status, r.reason), reason: r.reason };
    conn.unshift(buf.subarray(r.consumed));
    return r.head;
  }
}

function notifyIdle(st: State): void {
  if (!st.draining) return;
  for (const w of st.idleWaiters.splice(0)) w();
}

/** The request loop inside a TLS tunnel. */
async function tunnelLoop(conn: Conn, st: State, tunnel: TunnelInfo): Promise<void> {
  let first = true;
  try {
    for (;;) {
      const head = await readHead(conn, first, st);
      first = false;
      if (head === null) break;
      if ("error" in head) {
        warn("malformed request in tunnel", [
          ["remote", `${conn.clientIp}:${conn.sock.remotePort ?? 0}`],
          ["host", `${tunnel.connect.host}:${tunnel.connect.port}`],
          ["reason", head.reason],
        ]);
        await conn.write(head.error).catch(() => {});
        break;
      }
      const again = await handleRequest(st.ctx!, conn, head, tunnel);
      if (!again || st.draining) break;
    }
  } catch {
    // connection-level failure: nothing more to say to this client
  } finally {
    conn.busy = false;
    conn.end();
    st.conns.delete(conn);
    notifyIdle(st);
  }
}

/** The listener-level loop: auth, CONNECT, absolute-form plain HTTP. */
async function plainLoop(conn: Conn, st: State): Promise<void> {
  let handedOff = false;
  let first = true;
  try {
    for (;;) {
      const head = await readHead(conn, first, st);
      first = false;
      if (head === null) break;
      if ("error" in head) {
        await conn.write(head.error).catch(() => {});
        break;
      }
      const deps = st.deps!;
      if (head.method === "PRI" && head.target === "*") {
        await conn.write(AUTH_REQUIRED.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"));
        break;
      }
      if (!deps.lambdaLoopback && !checkProxyAuth(getHeader(head.headers, "proxy-authorization"), st.tokenDigest!)) {
        warn("workload auth failed", [
          ["remote", `${conn.clientIp}:${conn.sock.remotePort ?? 0}`],
          ["host", head.method === "CONNECT" ? head.target : (getHeader(head.headers, "host") ?? "")],
          ["method", head.method],
        ]);
        if (head.framing.kind !== "none") {
          await conn.write(AUTH_REQUIRED.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"));
          break;
        }
        await conn.write(AUTH_REQUIRED);
        continue;
      }
      if (head.method === "CONNECT") {
        handedOff = await startTunnel(conn, st, head);
        return;
      }
      if (!/^https?:\/\//i.test(head.target)) {
        const close = head.framing.kind !== "none" || !head.keepAlive;
        await conn.write(
          simpleResponse(
            500,
            [
              ["Content-Type", "text/plain; charset=utf-8"],
              ["X-Content-Type-Options", "nosniff"],
            ],
            NOT_A_PROXY_REQUEST,
            close,
          ),
        );
        if (close) break;
        continue;
      }
      const again = await handleRequest(st.ctx!, conn, head, null);
      if (!again || st.draining) break;
    }
  } catch {
    // connection-level failure
  } finally {
    if (!handedOff) {
      conn.busy = false;
      conn.end();
      st.conns.delete(conn);
      notifyIdle(st);
    }
  }
}

/** Answer CONNECT, terminate TLS with a leaf for the CONNECT host, run the tunnel loop. */
async function startTunnel(conn: Conn, st: State, head: RequestHead): Promise<boolean> {
  const authority = splitAuthority(head.target);
  if (!authority.port) authority.port = "443";
  const name = canonicalHost(authority.host);
  if (name === "" || !/^\d+$/.test(authority.port)) {
    await conn.write(errorResponse(400, "malformed CONNECT target"));
    return false;
  }
  let leaf;
  try {
    leaf = await st.deps!.minter.leafFor(name);
  } catch (e) {
    warn("cannot mint leaf certificate", [
      ["host", name],
      ["err", (e as Error).message],
    ]);
    await conn.write(errorResponse(400, "cannot serve this CONNECT host"));
    return false;
  }
  if (conn.closed) return false;
  await conn.write("HTTP/1.0 200 OK\r\n\r\n");
  // The first bytes decide: a TLS handshake record (0x16) → terminate TLS with the leaf, handing
  // those bytes to the TLS layer; anything else → cleartext HTTP inside the tunnel (the reference
  // serves it too). A tunnel that stays silent is closed after the handshake timeout.
  let first: Uint8Array | null;
  try {
    first = await conn.read(TLS_HANDSHAKE_TIMEOUT_MS);
  } catch {
    return false;
  }
  if (first === null) return false;
  if (first[0] !== 0x16) {
    conn.unshift(first);
    void tunnelLoop(conn, st, { connect: authority, plain: true });
    return true;
  }
  const raw = conn.sock;
  let tlsConn: Conn | undefined;
  const handshakeTimer = setTimeout(() => tlsConn?.destroy(), TLS_HANDSHAKE_TIMEOUT_MS);
  const [rawAfter, tls] = raw.upgradeTLS<ConnData>({
    data: {},
    // the ClientHello bytes already read (Bun ≥ 1.4 feeds them to the handshake)
    ...({ initialData: first } as object),
    tls: { key: leaf.keyPem, cert: leaf.certPem, ALPNProtocols: "\x08http/1.1" } as never,
    socket: {
      handshake(sock) {
        clearTimeout(handshakeTimer);
        const c = sock.data.conn!;
        const sni = (sock as unknown as { getServername(): string | undefined }).getServername?.() || undefined;
        void tunnelLoop(c, st, { connect: authority, sni });
      },
      data(sock, chunk) {
        sock.data.conn?.onData(chunk);
      },
      drain(sock) {
        sock.data.conn?.onDrain();
      },
      end(sock) {
        sock.data.conn?.onEnd();
      },
      close(sock) {
        clearTimeout(handshakeTimer);
        const c = sock.data.conn;
        c?.onClose();
        if (c) st.conns.delete(c);
        notifyIdle(st);
      },
      error(sock) {
        sock.data.conn?.onClose();
      },
    },
  });
  // Bun keeps delivering the tunnel's ciphertext to the listener's handlers after the upgrade,
  // through the raw half it returns: detach the plain Conn from both handles, or it would buffer
  // (and hold) every encrypted byte of the tunnel — a 1 GiB upload held 1 GiB.
  raw.data = {};
  if (rawAfter) rawAfter.data = {};
  tlsConn = new Conn(tls, conn.clientIp);
  tls.data = { conn: tlsConn };
  tlsConn.busy = true;
  st.conns.delete(conn);
  st.conns.add(tlsConn);
  return true;
}

export async function bindListener(port: number): Promise<Listener> {
  const st: State = { conns: new Set(), draining: false, startWaiters: [], idleWaiters: [] };
  let server: TCPSocketListener<ConnData>;
  try {
    server = Bun.listen<ConnData>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(sock) {
          if (st.conns.size >= MAX_CONNECTIONS || st.draining) {
            sock.terminate();
            return;
          }
          const conn = new Conn(sock, sock.remoteAddress);
          sock.data = { conn };
          st.conns.add(conn);
          const run = () => void plainLoop(conn, st);
          if (st.ctx) run();
          else st.startWaiters.push(run);
        },
        data(sock, chunk) {
          sock.data.conn?.onData(chunk);
        },
        drain(sock) {
          sock.data.conn?.onDrain();
        },
        end(sock) {
          sock.data.conn?.onEnd();
        },
        close(sock) {
          const c = sock.data?.conn;
          c?.onClose();
        },
        error(sock) {
          sock.data?.conn?.onClose();
        },
      },
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === "EADDRINUSE" ? "address already in use" : err.code === "EACCES" ? "permission denied" : err.message;
    throw new BindError(`listen tcp 127.0.0.1:${port}: bind: ${why}`);
  }

  return {
    port: server.port,
    start(deps) {
      const forwarder = createForwarder(deps.config.upstream, process.env);
      st.deps = deps;
      st.tokenDigest = digest(deps.workloadToken);
      st.ctx = createPipelineContext(deps, forwarder);
      for (const run of st.startWaiters.splice(0)) run();
    },
    stopAccepting() {
      server.stop(false);
    },
    async drain(deadlineMs) {
      st.draining = true;
      for (const c of st.conns) {
        c.closeAfterResponse = true;
        if (!c.busy) c.end();
      }
      for (;;) {
        for (const c of [...st.conns]) if (c.closed) st.conns.delete(c);
        const busy = [...st.conns].filter((c) => c.busy);
        for (const c of st.conns) if (!c.busy) c.end();
        if (busy.length === 0) return true;
        const left = deadlineMs - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.min(left, 100));
          st.idleWaiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    close() {
      for (const c of st.conns) c.destroy();
      st.conns.clear();
      server.stop(true);
    },
  };
}

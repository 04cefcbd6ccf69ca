// The listener (docs/CONTRACT.md §7, §14, §18.4, §20): Bun.listen on 127.0.0.1, connection slots,
// drain and close. It only accepts and counts; serving a connection is ./client-loop.ts.
//
// Slots (issue 13 item 6): a connection that has not yet presented the token is "unauthenticated":
// at most MAX_UNAUTHENTICATED of those (the oldest is evicted for a new one) for at most
// AUTH_DEADLINE_MS each, so idle or silent sockets cannot lock out a workload that has the token;
// authenticated connections (and tunnels) have their own MAX_CONNECTIONS.
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { createCidrSet } from "../netguard/cidr.ts";
import { cachedResolver } from "../netguard/index.ts";
import { AuthFailures, tokenDigest } from "./auth.ts";
import { ProxyConfigError, ProxySelector } from "../http/corporate-proxy.ts";
import { type ConnHost, serveClient } from "./client-loop.ts";
import { createPolicy } from "./decide.ts";
import { Conn, type ConnData } from "./conn.ts";
import { createForwarder } from "./forward.ts";
import { AUTH_DEADLINE_MS, MAX_CONNECTIONS, MAX_UNAUTHENTICATED } from "./limits.ts";
import type { RequestScope } from "./request-scope.ts";
import { createSocketHandlers } from "./socket-handlers.ts";
import { releaseStartupPages } from "./startup-pages.ts";
import { checkTrustEnv } from "./trust.ts";
import {
  BindError,
  type InterceptDeps,
  InterceptInitError,
  type Listener,
  type ListenerStats,
  type Serving,
} from "./types.ts";

export { BindError, InterceptInitError } from "./types.ts";

/** Connection bookkeeping: every live connection, and which pool holds its slot. */
class Slots {
  readonly all = new Set<Conn>();
  /** Unauthenticated connections in accept order, with their deadline timers. */
  private readonly unauthenticated = new Map<Conn, ReturnType<typeof setTimeout>>();
  private readonly authenticated = new Set<Conn>();

  add(conn: Conn): void {
    if (this.unauthenticated.size >= MAX_UNAUTHENTICATED) {
      const [oldest] = this.unauthenticated.keys();
      oldest?.destroy(); // its close listener frees the slot
    }
    this.all.add(conn);
    const deadline = setTimeout(() => conn.destroy(), AUTH_DEADLINE_MS);
    this.unauthenticated.set(conn, deadline);
    conn.onceClosed(() => this.remove(conn));
  }

  /** Move to the authenticated pool (idempotent); false when it is full. */
  authenticate(conn: Conn): boolean {
    if (this.authenticated.has(conn)) return true;
    if (this.authenticated.size >= MAX_CONNECTIONS) return false;
    clearTimeout(this.unauthenticated.get(conn));
    this.unauthenticated.delete(conn);
    this.authenticated.add(conn);
    return true;
  }

  /** A tunnel's TLS connection takes its raw connection's place (and slot). */
  replace(raw: Conn, tls: Conn): void {
    this.authenticated.delete(raw);
    this.all.delete(raw);
    this.all.add(tls);
    this.authenticated.add(tls);
    tls.inTunnel = true;
    tls.onceClosed(() => this.remove(tls));
  }

  stats(requestsInFlight: number): ListenerStats {
    let tunnel = 0;
    let upgraded = 0;
    for (const c of this.all) {
      if (c.upgraded) upgraded++;
      else if (c.inTunnel) tunnel++;
    }
    return {
      plain: this.all.size - tunnel - upgraded,
      tunnel,
      upgraded,
      unauthenticated: this.unauthenticated.size,
      requestsInFlight,
    };
  }

  remove(conn: Conn): void {
    clearTimeout(this.unauthenticated.get(conn));
    this.unauthenticated.delete(conn);
    this.authenticated.delete(conn);
    this.all.delete(conn);
  }
}

/** The corporate proxy selection; a bad `proxy_auth` is an intercept init error (exit 1). */
function proxySelector(deps: InterceptDeps): ProxySelector {
  try {
    return new ProxySelector(deps.config.upstream, process.env);
  } catch (e) {
    throw e instanceof ProxyConfigError ? new InterceptInitError(e.message) : e;
  }
}

function createServing(deps: InterceptDeps, inFlight: Set<RequestScope>, draining: () => boolean): Serving {
  checkTrustEnv(process.env);
  return {
    deps,
    policy: createPolicy(deps.manifest),
    forwarder: createForwarder(),
    proxies: proxySelector(deps),
    resolve: cachedResolver(5_000, 1024, undefined, createCidrSet(deps.manifest.blockedCidrs ?? [])),
    tokenDigest: tokenDigest(deps.workloadToken),
    authFailures: new AuthFailures(),
    inFlight,
    draining,
  };
}

export async function bindListener(port: number): Promise<Listener> {
  const slots = new Slots();
  const inFlight = new Set<RequestScope>();
  let draining = false;
  let host: ConnHost | null = null; // set by start(): connections accepted before wait for it
  const startWaiters: Array<() => void> = [];
  const idle = new IdleWaiters();
  const wakeDrain = () => {
    if (draining) idle.wake();
  };

  const accept = (sock: Socket<ConnData>) => {
    if (draining) return void sock.terminate();
    const conn = new Conn(sock, sock.remoteAddress, sock.remotePort ?? 0);
    sock.data = { conn };
    slots.add(conn);
    conn.onceClosed(wakeDrain);
    const run = () => {
      if (!host || conn.closed) return;
      void serveClient(host, conn)
        .catch(() => {}) // connection-level failure: nothing more to say to this client
        .finally(() => {
          conn.busy = false;
          if (slots.all.has(conn)) conn.end(); // not handed to a tunnel
          wakeDrain();
        });
    };
    if (host) run();
    else startWaiters.push(run);
  };
  const handlers = createSocketHandlers(accept);
  const server = listen(port, handlers);

  return {
    port: server.port,
    start(deps) {
      host = {
        serving: createServing(deps, inFlight, () => draining),
        authenticate: (c) => slots.authenticate(c),
        idle: wakeDrain,
        replace: (raw, tls) => {
          slots.replace(raw, tls);
          tls.onceClosed(wakeDrain);
        },
        draining: () => draining,
        socketHandlers: handlers,
      };
      for (const run of startWaiters.splice(0)) run();
      // start-up is over: the executable's pages it touched go back to the kernel (./startup-pages.ts)
      setTimeout(() => void releaseStartupPages(), 0);
    },
    stopAccepting() {
      server.stop(false);
    },
    async drain(deadlineMs) {
      draining = true;
      for (;;) {
        for (const c of slots.all) if (!c.busy) c.end();
        if (![...slots.all].some((c) => c.busy && !c.closed)) return true;
        const left = deadlineMs - Date.now();
        if (left <= 0) return false;
        await idle.wait(Math.min(left, 100));
      }
    },
    close() {
      for (const req of [...inFlight]) req.cutByShutdown();
      for (const c of [...slots.all]) c.destroy();
      server.stop(true);
    },
    stats: () => slots.stats(inFlight.size),
  };
}

function listen(port: number, handlers: SocketHandler<ConnData>): TCPSocketListener<ConnData> {
  try {
    return Bun.listen<ConnData>({ hostname: "127.0.0.1", port, socket: handlers });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === "EADDRINUSE" ? "address already in use" : err.code === "EACCES" ? "permission denied" : err.message;
    throw new BindError(`listen tcp 127.0.0.1:${port}: bind: ${why}`);
  }
}

/** The drain's wait: woken when a connection goes idle or closes, or after `ms`. */
class IdleWaiters {
  private waiters: Array<() => void> = [];
  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  wait(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }
}

// The seam between the serve lifecycle (src/serve) and the data path (src/intercept).
import type { CredentialSource, Manifest } from "../agent/types.ts";
import type { AuditSink } from "../audit/types.ts";
import type { LeafMinter } from "../ca/types.ts";
import type { Config } from "../config/types.ts";
import type { AuthFailures } from "./auth.ts";
import type { ProxySelector } from "../http/corporate-proxy.ts";
import type { Policy } from "./decide.ts";
import type { Forwarder } from "./forward-types.ts";
import type { RequestScope } from "./request-scope.ts";

export interface InterceptDeps {
  config: Config;
  manifest: Manifest;
  credentials: CredentialSource;
  minter: LeafMinter;
  audit: AuditSink;
  proxyId: string;
  /** CLEF_PROXY_TOKEN; "" only in Lambda loopback mode. */
  workloadToken: string;
  /** Lambda loopback mode: Proxy-Authorization is not checked, audit lines carry auth_mode. */
  lambdaLoopback: boolean;
}

/** Thrown by bindListener when the port cannot be bound (exit 6). `message` is Go-like: `listen tcp 127.0.0.1:8888: bind: address already in use`. */
export class BindError extends Error {}

/** Thrown by start() for init failures (exit 1), e.g. `intercept: upstream.proxy_auth must be in 'user:pass' form`. */
export class InterceptInitError extends Error {}

export interface Listener {
  /** The bound port on 127.0.0.1. */
  readonly port: number;
  /** Begin serving; connections accepted before start() wait until it is called. */
  start(deps: InterceptDeps): void;
  /** Close the listening socket (new connections refused); existing connections continue. */
  stopAccepting(): void;
  /**
   * Let in-flight requests (plain and inside CONNECT tunnels) finish; idle keep-alive connections are
   * closed at once, busy ones after their current response (sent with Connection: close).
   * Resolves true when everything finished, false when deadlineMs (epoch ms) was reached first.
   */
  drain(deadlineMs: number): Promise<boolean>;
  /** Cut every remaining connection; requests still in flight get their audit line (reason shutdown). */
  close(): void;
  stats(): ListenerStats;
}

/** What the data path serves with, built once by Listener.start(). */
export interface Serving {
  deps: InterceptDeps;
  policy: Policy;
  forwarder: Forwarder;
  proxies: ProxySelector;
  /** netguard: resolve and vet (cached 5 s: a cached answer is returned at once, not as a promise). */
  resolve: (host: string) => string[] | Promise<string[]>;
  /** SHA-256 of CLEF_PROXY_TOKEN. */
  tokenDigest: Buffer;
  authFailures: AuthFailures;
  /** Requests admitted and not yet finished (each gets its audit line at the latest at close). */
  inFlight: Set<RequestScope>;
  /** True once the drain began: responses written from then on close their connection. */
  draining(): boolean;
}

/** Live counts for metrics (`connections_open{kind}`). */
export interface ListenerStats {
  plain: number;
  tunnel: number;
  upgraded: number;
  unauthenticated: number;
  requestsInFlight: number;
}

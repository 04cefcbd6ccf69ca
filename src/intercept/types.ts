// The seam between the serve lifecycle (src/serve) and the data path (src/intercept).
import type { CredentialSource, Manifest } from "../agent/types.ts";
import type { AuditSink } from "../audit/types.ts";
import type { LeafMinter } from "../ca/types.ts";
import type { Config } from "../config/types.ts";

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
  /** Cut every remaining connection. */
  close(): void;
}

// The seam between the request pipeline and the upstream forwarders (fetch for ordinary requests,
// raw sockets for WebSocket handshakes).
import type { UpstreamHead } from "../http/h1-response.ts";
import type { Headers } from "../http/headers.ts";
import type { ProxyChoice } from "../http/corporate-proxy.ts";

export { UpstreamError } from "./upstream-error.ts";

export interface UpstreamRequest {
  method: string;
  scheme: "http" | "https";
  /** Canonical name or IP literal, no brackets: the TLS name, and what a corporate proxy is sent. */
  host: string;
  port: number;
  /** Origin-form: path + "?" + query, as decided (never client text that could name a host). */
  pathAndQuery: string;
  /** Final: hop-by-hop stripped, Host set, credential injected. */
  headers: Headers;
  /**
   * The request body, one fresh stream per attempt (a second vetted address may be tried while
   * `started()` is false), or null. `progressAt()`: when the upstream last took a piece of it, or
   * its end (performance.now(); 0 before the first) — the first-byte deadline counts from there.
   */
  body: { open(): ReadableStream<Uint8Array>; started(): boolean; progressAt(): number } | null;
  /** null + body → chunked upstream. */
  contentLength: number | null;
  /** netguard-vetted IPs for host, dialled in order. Empty only through a corporate proxy for a
   *  name that does not resolve here (the proxy resolves it, §18.11). */
  addresses: string[];
  /** The corporate proxy for this destination, or null for a direct connection. */
  proxy: ProxyChoice | null;
  signal: AbortSignal;
  /**
   * `signal`'s controller, when the caller lets the forwarder abort it too (the first-byte
   * timeout): saves a second controller linked to the first. Aborting it means the same as the
   * client going away, except that a timeout is reported as one.
   */
  controller?: AbortController;
}

export interface UpstreamResponse extends UpstreamHead {
  /** null for HEAD/1xx/204/304. */
  body: ReadableStream<Uint8Array> | null;
  /** The whole body at once (a small body of known length: one call instead of a stream's reads). */
  readAll?: () => Promise<Uint8Array>;
  /** Give the request's upstream slot back (after the body was relayed or abandoned). */
  release(): void;
}

/** The client side of an upgraded connection, as the relay sees it. */
export interface ByteDuplex {
  read(timeoutMs?: number): Promise<Uint8Array | null>;
  write(data: Uint8Array | string): Promise<void>;
  end(): void;
}

export interface Forwarder {
  forward(req: UpstreamRequest): Promise<UpstreamResponse>;
  /**
   * Relay a WebSocket handshake (no body) over a raw connection; `onResponse` gets the upstream
   * status before its head is written to the client. Rejects with UpstreamError only before that.
   */
  upgrade(req: UpstreamRequest, client: ByteDuplex, onResponse: (status: number) => void): Promise<void>;
}

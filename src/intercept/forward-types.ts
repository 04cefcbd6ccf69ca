// The seam between the request pipeline and the upstream forwarder.
export interface UpstreamRequest {
  method: string;
  scheme: "http" | "https";
  /** Canonical name or IP literal, no brackets. */
  host: string;
  port: number;
  /** Origin-form: raw path + "?" + raw query. */
  target: string;
  /** Final: hop-by-hop stripped, Host set, credential injected. */
  headers: Array<[string, string]>;
  body: ReadableStream<Uint8Array> | null;
  /** null + body → chunked upstream. */
  contentLength: number | null;
  /** netguard-vetted IPs for host; only these are dialled. */
  addresses: string[];
  signal: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  /** null for HEAD/1xx/204/304. */
  body: ReadableStream<Uint8Array> | null;
  /** From the upstream's Content-Length, else null. */
  contentLength: number | null;
}

/** message = the 502 "detail" text; never contains a secret. */
export class UpstreamError extends Error {}

/** The client side of an upgraded connection, as the relay sees it. */
export interface ByteDuplex {
  read(timeoutMs?: number): Promise<Uint8Array | null>;
  write(data: Uint8Array | string): Promise<void>;
  end(): void;
}

export interface Forwarder {
  forward(req: UpstreamRequest): Promise<UpstreamResponse>;
  /**
   * Relay a protocol-upgrade request (no body) over a raw connection; `onResponse` gets the
   * upstream status before its head is written to the client. Rejects with UpstreamError only
   * before that point.
   */
  upgrade(req: UpstreamRequest, client: ByteDuplex, onResponse: (status: number) => void): Promise<void>;
}

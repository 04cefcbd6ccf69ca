// One audit line (docs/CONTRACT.md §11). Field order on the wire is the order below; optional
// fields are omitted when empty/zero exactly as the reference does. The Phase 2 keys
// (shared/PHASE2.md §1.5) come after auth_mode in a fixed order and only appear when a Phase 2
// feature was involved, so a Phase 1 request still produces a byte-identical Phase 1 line.
export type AuditStatus = "injected" | "passthrough" | "denied" | "agent_error" | "tls_error";

export interface AuditEntry {
  /**
   * Request start, written as RFC3339Nano UTC like Go: a number is milliseconds since the epoch with
   * its fraction (performance.timeOrigin + performance.now(): what the data path has at hand), a
   * bigint nanoseconds since the epoch.
   */
  ts: number | bigint | Date | string;
  requestId: string;
  clientIp: string;
  method: string;
  host: string;
  path: string; // decoded path, no query
  service?: string;
  credentialHandle?: string;
  injectionPoint?: string; // "header:<name>" | "query:<name>", only on injected
  status: AuditStatus;
  upstreamStatus?: number; // omitted when 0
  latencyMs: number;
  // --- Phase 2 keys, encoded after auth_mode in this order, each omitted when empty/false ---
  /** "HTTP/2" when the client leg was h2; omitted for HTTP/1.x. */
  protocol?: string;
  /** "HTTP/2" when the upstream leg was h2. */
  upstreamProtocol?: string;
  workload?: string;
  workloadVerified?: boolean;
  /** The wildcard pattern that decided, e.g. "*.github.com". */
  hostPattern?: string;
  /** Machine-readable cause of a refusal or failure (e.g. "blocked_host", "shutdown"). */
  reason?: string;
  rule?: string;
  placeholderService?: string;
  /** Only when a service uses more than one handle. */
  credentialHandles?: string[];
  injectionPoints?: string[];
  // --- not encoded in the line ---
  /** The request's W3C traceparent header, when valid (for the OTLP export's trace/span ids). */
  traceparent?: string;
}

export interface AuditSinkStats {
  /** "stdout" | "file" | "webhook" | "otlp" */
  sink: string;
  /** Lines accepted and not yet written/delivered (exports: queued plus the batch in flight). */
  queued: number;
  /** Lines written (primary) or delivered with a 2xx (exports). */
  written: number;
  /** Lines given up: always 0 for the primary sink (nothing accepted is dropped); for an export the
   * sum of `droppedQueueFull` and `rejected`. */
  dropped: number;
  // --- primary sink only ---
  /** admit() calls answered false (requests refused with 503 because the queue was full). */
  refused?: number;
  /** Admissions whose line has not been written yet. */
  reserved?: number;
  /** Bytes of the lines counted in `queued`. */
  queuedBytes?: number;
  // --- exports only ---
  /** Oldest lines dropped because the export's queue was full (receiver slow or down). */
  droppedQueueFull?: number;
  /** Lines in batches the receiver refused permanently (non-retryable 3xx/4xx). */
  rejected?: number;
  /** Delivery attempts that failed and were retried. */
  retries?: number;
}

export interface AuditSink {
  /**
   * Reserve room for one future entry (docs/CONTRACT.md §18.16). False when the bounded queue is
   * full: the request is refused with 503 and gets no line. Every admitted request writes exactly
   * one entry.
   */
  admit(): boolean;
  /** Give back an admission without writing a line (a request that turned out to be no decision). */
  release(): void;
  /** Accept one entry (consumes one admission). Never drops silently. */
  write(entry: AuditEntry): void;
  /** Flush everything accepted so far and close; bounded by deadline (ms since epoch) + grace. */
  close(deadlineMs: number): Promise<void>;
  /** Per-sink counters for metrics. */
  stats(): AuditSinkStats[];
}

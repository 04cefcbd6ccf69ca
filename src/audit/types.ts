// One audit line (docs/CONTRACT.md §11). Field order on the wire is the order below; optional
// fields are omitted when empty/zero exactly as the reference does.
export type AuditStatus = "injected" | "passthrough" | "denied" | "agent_error" | "tls_error";

export interface AuditEntry {
  ts: bigint | Date | string; // request start (bigint = ns since epoch); written as RFC3339Nano UTC like Go
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
}

export interface AuditSink {
  /** Accept one entry. Never drops silently; may apply back-pressure (the promise resolves when queued). */
  write(entry: AuditEntry): void | Promise<void>;
  /** Flush everything accepted so far and close; bounded by deadline (ms since epoch). */
  close(deadlineMs: number): Promise<void>;
}

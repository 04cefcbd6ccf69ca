// One request's identity and its one audit line (docs/CONTRACT.md §11, §18.16): the request id,
// start time, the host and path as the audit line names them, the service fields known so far, and
// a guard so that every admitted request writes exactly one line — also when the drain deadline
// cuts it (status tls_error, reason shutdown).
import { randomUUID } from "node:crypto";
import type { AuditEntry, AuditStatus } from "../audit/types.ts";
import type { RequestHead } from "../http/h1-request.ts";
import { decodedPath } from "../http/target.ts";
import { type Level, LineTemplate, type TemplateField } from "../log/slog.ts";
import type { Conn } from "./conn.ts";
import type { TunnelFacts } from "./decide.ts";
import { hostAsSent } from "./decide.ts";
import type { AuditFields } from "./refusal.ts";
import type { Serving } from "./types.ts";

/** The attributes every line about a request starts with (logBase, requestLine). */
const BASE_KEYS = ["host", "method", "path", "proxy_id", "request_id"] as const;

/**
 * A data-path line about a request, declared once: logBase()'s keys with the proxy id fixed, then
 * `more`. Its values: the request's lineValues(), then those of the keys in `more` not fixed.
 */
export const requestLine = (level: Level, msg: string, proxyId: string, ...more: TemplateField[]): LineTemplate =>
  new LineTemplate(level, msg, [
    ...BASE_KEYS.map((k): TemplateField => (k === "proxy_id" ? [k, proxyId] : k)),
    ...more,
  ]);

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

export class RequestScope {
  readonly id = randomUUID();
  readonly t0 = performance.now();
  /** Wall-clock start, milliseconds since the epoch with their fraction (the audit line's ts). */
  readonly startMs = performance.timeOrigin + this.t0;
  /** The host as sent (absolute-form authority, else the Host header), for audit and errors. */
  readonly host: string;
  readonly path: string;
  /** Service fields known so far (kept for a line written at shutdown). */
  fields: AuditFields = {};
  private audited = false;

  /** Whether this request's line is written (or given up by noLine). */
  get settled(): boolean {
    return this.audited;
  }

  constructor(
    readonly serving: Serving,
    readonly conn: Conn,
    readonly head: RequestHead,
    readonly tunnel: TunnelFacts | null,
  ) {
    this.host = hostAsSent(head);
    this.path = decodedPath(head.target);
    serving.inFlight.add(this);
  }

  /** The values of a requestLine(…) line's base keys (all but the fixed proxy id), in their order. */
  lineValues(): string[] {
    return [this.host, this.head.method, this.path, this.id];
  }

  logBase(): Array<[string, string]> {
    const v = [this.host, this.head.method, this.path, this.serving.deps.proxyId, this.id];
    return BASE_KEYS.map((k, i): [string, string] => [k, v[i]!]);
  }

  /**
   * Write this request's audit line (once; later calls do nothing and return false): `fields` (the
   * request's, copied once into the entry), then the upstream's status and any `more` fields.
   */
  audit(
    status: AuditStatus,
    fields: Partial<AuditEntry>,
    upstreamStatus?: number,
    more?: Partial<AuditEntry>,
  ): boolean {
    if (this.audited) return false;
    this.audited = true;
    const entry: AuditEntry = {
      ts: this.startMs,
      requestId: this.id,
      clientIp: this.conn.clientIp,
      method: this.head.method,
      host: this.host,
      path: this.path,
      status,
      latencyMs: Math.floor(performance.now() - this.t0),
      ...fields,
    };
    if (upstreamStatus !== undefined) entry.upstreamStatus = upstreamStatus;
    if (more) Object.assign(entry, more);
    const tp = this.head.known.traceparent;
    if (tp && TRACEPARENT.test(tp)) entry.traceparent = tp;
    this.serving.deps.audit.write(entry);
    return true;
  }

  /** This request writes no line after all (an answer that is no decision): give its admission back. */
  noLine(): void {
    if (this.audited) return;
    this.audited = true;
    this.serving.deps.audit.release();
  }

  /** The drain deadline cut this request: audit what is known. */
  cutByShutdown(): void {
    this.audit("tls_error", this.fields, 502, { reason: "shutdown" });
  }

  /** The request is over (its line written, or about to be by the caller). */
  finish(): void {
    this.serving.inFlight.delete(this);
  }
}

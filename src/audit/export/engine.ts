// The secondary-sink engine shared by the webhook (PHASE2 §14, F12) and the OTLP export (§15, F13).
// A protocol (./webhook.ts, ./otlp.ts) says how a batch becomes a request and which answers are
// retried; this file does everything else (docs/CONTRACT.md §11 "Exports"):
//
// - push() is O(1) and never blocks or refuses: the primary sink calls it with every line it
//   writes. The export's queue is its own (queue_max_lines, and QUEUE_MAX_BYTES): when full, the
//   oldest lines are dropped and counted, with a WARN at most once a minute. A dead or hanging
//   receiver therefore costs at most the queue plus one batch of memory.
// - Batches of up to batch_max_lines lines and BATCH_MAX_BYTES of lines, sent when full or
//   flush_interval after the first line waiting. One batch in flight at a time (in-order delivery).
// - 2xx = delivered. Retryable answers (the protocol's list), network errors and timeouts: the same
//   batch (same batch id) is retried after 1 s, 2 s, 4 s … 60 s (+0–20 % jitter), or after
//   Retry-After (1–60 s). Other answers (3xx: redirects are not followed; 4xx) = permanent: the
//   batch is dropped and counted, ERROR at most once a minute.
// - close(deadline): everything queued is sent at once (no flush_interval wait); at deadline +
//   CLOSE_GRACE_MS the request in flight is aborted and a WARN says how many lines were not
//   delivered.
// Nothing here sees a secret: lines carry none by construction; header values and the HMAC key
// stay inside the protocol and the transport and are never logged.
import { randomUUID } from "node:crypto";
import { formatGoDuration } from "../../config/duration.ts";
import { error, info, warn } from "../../log/slog.ts";
import type { AuditEntry, AuditSinkStats } from "../types.ts";
import type { PostResult, Transport } from "./transport.ts";

export const BATCH_MAX_BYTES = 1024 * 1024;
export const QUEUE_MAX_BYTES = 64 * 1024 * 1024;
export const CLOSE_GRACE_MS = 2_000;
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 60_000;
export const LOG_EVERY_MS = 60_000;

/** A secondary sink as the primary writer sees it. */
export interface Exporter {
  readonly name: string;
  /** Copy one line (exactly as written by the primary sink, with "\n"). Never blocks or throws. */
  push(line: string, entry: AuditEntry): void;
  /** Deliver what is queued, giving up at deadlineMs + CLOSE_GRACE_MS. */
  close(deadlineMs: number): Promise<void>;
  stats(): AuditSinkStats;
}

/** How one kind of export turns batches into requests. */
export interface ExportProtocol<T> {
  readonly name: "webhook" | "otlp";
  /** What is queued for a line (kept small: the line itself and a few numbers). */
  item(line: string, entry: AuditEntry): T;
  /** The request body for a batch, built once (retries resend the same bytes). */
  body(items: T[]): string;
  /** Headers for one attempt (a timestamp and signature are per attempt). */
  headers(body: string, batchId: string): Record<string, string>;
  retryable(status: number): boolean;
  /** After a 2xx (OTLP logs a partialSuccess). */
  delivered?(res: PostResult, lines: number): void;
}

export interface EngineOptions {
  batchMaxLines: number;
  flushIntervalMs: number;
  timeoutMs: number;
  queueMaxLines: number;
  queueMaxBytes?: number;
  batchMaxBytes?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  logEveryMs?: number;
  closeGraceMs?: number;
  random?: () => number;
}

interface Queued<T> {
  item: T;
  bytes: number;
}

interface Batch<T> {
  items: T[];
  id: string;
  body: string;
}

/** An array queue with O(1) shift (compacted now and then). */
class Fifo<T> {
  private a: Array<T | undefined> = [];
  private h = 0;
  get length(): number {
    return this.a.length - this.h;
  }
  push(x: T): void {
    this.a.push(x);
  }
  peek(): T {
    return this.a[this.h] as T;
  }
  shift(): T {
    const x = this.a[this.h] as T;
    this.a[this.h++] = undefined;
    if (this.h >= 1024 && this.h * 2 >= this.a.length) {
      this.a = this.a.slice(this.h);
      this.h = 0;
    }
    return x;
  }
}

/** True at most once per `ms` (the first call is always true). */
class Every {
  private last = Number.NEGATIVE_INFINITY;
  constructor(private readonly ms: number) {}
  ready(): boolean {
    const t = Date.now();
    if (t - this.last < this.ms) return false;
    this.last = t;
    return true;
  }
}

const dur = (ms: number) => formatGoDuration(BigInt(Math.round(ms)) * 1_000_000n);

export class ExportEngine<T> implements Exporter {
  readonly name: string;
  private readonly queue = new Fifo<Queued<T>>();
  private queueBytes = 0;
  private inflight: Batch<T> | null = null;
  private inflightAbort: AbortController | null = null;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private closing = false;
  private gaveUp = false;
  private closeLimit = Number.POSITIVE_INFINITY;
  private idleWaiters: Array<() => void> = [];
  private readonly warnRetry: Every;
  private readonly warnDrop: Every;
  private readonly errReject: Every;
  private readonly o: Required<EngineOptions>;
  delivered = 0;
  droppedQueueFull = 0;
  rejected = 0;
  retries = 0;

  constructor(
    private readonly proto: ExportProtocol<T>,
    private readonly transport: Transport,
    opts: EngineOptions,
  ) {
    this.name = proto.name;
    this.o = {
      queueMaxBytes: QUEUE_MAX_BYTES,
      batchMaxBytes: BATCH_MAX_BYTES,
      backoffBaseMs: BACKOFF_BASE_MS,
      backoffMaxMs: BACKOFF_MAX_MS,
      logEveryMs: LOG_EVERY_MS,
      closeGraceMs: CLOSE_GRACE_MS,
      random: Math.random,
      ...opts,
    };
    this.warnRetry = new Every(this.o.logEveryMs);
    this.warnDrop = new Every(this.o.logEveryMs);
    this.errReject = new Every(this.o.logEveryMs);
  }

  private get attrs(): Array<[string, string]> {
    return [
      ["sink", this.name],
      ["url", this.transport.logUrl],
    ];
  }

  stats(): AuditSinkStats {
    return {
      sink: this.name,
      queued: this.queue.length + (this.inflight?.items.length ?? 0),
      written: this.delivered,
      dropped: this.droppedQueueFull + this.rejected,
      droppedQueueFull: this.droppedQueueFull,
      rejected: this.rejected,
      retries: this.retries,
    };
  }

  push(line: string, entry: AuditEntry): void {
    if (this.gaveUp) return;
    const bytes = Buffer.byteLength(line);
    this.queue.push({ item: this.proto.item(line, entry), bytes });
    this.queueBytes += bytes;
    let dropped = 0;
    while (this.queue.length > this.o.queueMaxLines || this.queueBytes > this.o.queueMaxBytes) {
      this.queueBytes -= this.queue.shift().bytes;
      dropped++;
    }
    if (dropped) {
      this.droppedQueueFull += dropped;
      if (this.warnDrop.ready())
        warn("audit export: queue full, oldest lines dropped", [
          ...this.attrs,
          ["dropped_total", this.droppedQueueFull],
          ["queue_max_lines", this.o.queueMaxLines],
        ]);
    }
    this.kick();
  }

  /** Start a batch now (full, or closing), or make sure the flush timer runs. */
  private kick(): void {
    if (this.inflight || this.retryTimer || this.gaveUp) return;
    if (this.queue.length === 0) return this.checkIdle();
    if (this.closing || this.queue.length >= this.o.batchMaxLines || this.queueBytes >= this.o.batchMaxBytes) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.startBatch();
      return;
    }
    if (!this.flushTimer)
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        if (!this.inflight && !this.retryTimer && this.queue.length) this.startBatch();
      }, this.o.flushIntervalMs);
  }

  private startBatch(): void {
    const items: T[] = [];
    let bytes = 0;
    while (this.queue.length && items.length < this.o.batchMaxLines) {
      const next = this.queue.peek();
      if (items.length && bytes + next.bytes > this.o.batchMaxBytes) break;
      this.queue.shift();
      this.queueBytes -= next.bytes;
      items.push(next.item);
      bytes += next.bytes;
    }
    this.inflight = { items, id: randomUUID(), body: this.proto.body(items) };
    void this.attempt();
  }

  private backoff(): number {
    const base = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** Math.min(this.failures - 1, 30));
    return base * (1 + 0.2 * this.o.random());
  }

  private async attempt(): Promise<void> {
    const batch = this.inflight!;
    const ac = new AbortController();
    this.inflightAbort = ac;
    const timeout = Math.max(1, Math.min(this.o.timeoutMs, this.closeLimit - Date.now()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeout);
    let res: PostResult | null = null;
    let err = "";
    try {
      res = await this.transport.post(batch.body, this.proto.headers(batch.body, batch.id), ac.signal);
    } catch (e) {
      err = timedOut ? `no answer within ${dur(timeout)}` : (e as Error).message;
    } finally {
      clearTimeout(timer);
      this.inflightAbort = null;
    }
    if (this.gaveUp) return;
    const n = batch.items.length;
    if (res && res.status >= 200 && res.status < 300) {
      this.delivered += n;
      this.inflight = null;
      if (this.failures > 0)
        info("audit export: delivering again", [...this.attrs, ["failed_attempts", this.failures]]);
      this.failures = 0;
      this.proto.delivered?.(res, n);
      return this.kick();
    }
    if (res && !this.proto.retryable(res.status)) {
      this.rejected += n;
      this.inflight = null;
      this.failures = 0;
      if (this.errReject.ready())
        error("audit export: receiver refused a batch, dropped", [
          ...this.attrs,
          ["status", res.status],
          ["lines", n],
          ["rejected_total", this.rejected],
        ]);
      return this.kick();
    }
    // Retry the same batch.
    this.retries++;
    this.failures++;
    const delay =
      res?.retryAfterMs != null
        ? Math.min(this.o.backoffMaxMs, Math.max(this.o.backoffBaseMs, res.retryAfterMs))
        : this.backoff();
    if (this.warnRetry.ready())
      warn("audit export: delivery failed, retrying", [
        ...this.attrs,
        ["err", res ? `status ${res.status}` : err],
        ["attempt", this.failures],
        ["retry_in", dur(delay)],
        ["queued", this.queue.length + n],
      ]);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.gaveUp) void this.attempt();
    }, delay);
  }

  private checkIdle(): void {
    if (this.queue.length === 0 && !this.inflight) for (const w of this.idleWaiters.splice(0)) w();
  }

  async close(deadlineMs: number): Promise<void> {
    this.closing = true;
    this.closeLimit = deadlineMs + this.o.closeGraceMs;
    const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.kick();
    this.checkIdle();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      idle.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), Math.max(0, this.closeLimit - Date.now())))),
    ]);
    clearTimeout(timer);
    const counts: Array<[string, number]> = [
      ["delivered_total", this.delivered],
      ["dropped_queue_full", this.droppedQueueFull],
      ["rejected", this.rejected],
    ];
    if (!timedOut) {
      // A last word on what this run lost, for operators without metrics.
      if (this.droppedQueueFull + this.rejected > 0)
        warn("audit export: stopped; some lines were not delivered during this run", [...this.attrs, ...counts]);
      return;
    }
    this.gaveUp = true;
    for (const t of [this.flushTimer, this.retryTimer]) if (t) clearTimeout(t);
    this.inflightAbort?.abort();
    const notDelivered = this.queue.length + (this.inflight?.items.length ?? 0);
    warn("audit export: shutdown deadline reached, lines not delivered", [
      ...this.attrs,
      ["not_delivered", notDelivered],
      ...counts,
    ]);
  }
}

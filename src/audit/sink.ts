// The primary audit sink: a lossless, bounded, asynchronous writer in front of stdout or the
// rotating file (docs/CONTRACT.md §11, §18.16), optionally hash-chained (PHASE2 §17), feeding the
// secondary exports (webhook, OTLP: ./export/) with the exact bytes it writes.
//
// Writer semantics (documented in docs/CONTRACT.md §11 "Ours" and §18.16):
// - write() never blocks the request path: the encoded line is queued and a flush is scheduled
//   (lines accepted in the same event-loop turn go out in one write(); under load, at most one write
//   per MIN_WRITE_INTERVAL_MS — 20 ms — carries the lines of several turns).
// - Nothing accepted is ever dropped. The queue is bounded by admission: the data path calls
//   admit() before it handles a request, which reserves room for that request's one line; admit()
//   is false once queued + reserved lines reach QUEUE_MAX_LINES, or queued bytes (each reservation
//   counted as RESERVED_LINE_BYTES) reach QUEUE_MAX_BYTES, and the request is refused with 503.
//   One WARN when refusals start, one when the queue has drained below 3/4 of the bound.
//   A write() without admission is still accepted (never dropped), above the bound if need be.
// - Past BACKPRESSURE_WARN_LINES queued lines one WARN is logged, and one more when it has drained.
// - A failed write (ENOSPC, EIO, …) is logged once per failure episode; the unwritten bytes stay
//   with the destination, which resumes from the exact byte where it stopped (every RETRY_MS).
// - close(deadline) resolves once every accepted line is written (and the exports have flushed or
//   given up), or at deadline + CLOSE_GRACE_MS with a WARN saying how many lines were not written,
//   so a blocked stdout cannot hang exit.
import type { Config } from "../config/types.ts";
import { warn } from "../log/slog.ts";
import { type Destination, FileDestination, StdoutDestination } from "./destination.ts";
import { encodeAuditLine, type LineContext } from "./encode.ts";
import { sha256Hex } from "./chain.ts";
import type { Exporter } from "./export/engine.ts";
import { createExporters, type ExportContext } from "./export/index.ts";
import type { AuditEntry, AuditSink, AuditSinkStats } from "./types.ts";

export { FileDestination, StdoutDestination } from "./destination.ts";

export const BACKPRESSURE_WARN_LINES = 10_000;
/** The queue bound (§18.16): lines accepted or admitted and not yet written… */
export const QUEUE_MAX_LINES = 65_536;
/** …or their bytes, whichever is reached first. */
export const QUEUE_MAX_BYTES = 32 * 1024 * 1024;
/** What an admitted request's future line counts against the byte bound until it is written. */
export const RESERVED_LINE_BYTES = 1024;
export const CLOSE_GRACE_MS = 2_000;
export const RETRY_MS = 250;
/**
 * Under load, a write at most this often (unless QUEUE_FLUSH_BYTES are waiting): the lines of several
 * event-loop turns share one write — each write is a round trip through the runtime's thread pool
 * (two thread wake-ups; at 2 ms they were 0.3 futex calls and 0.3 context switches per request at
 * c=16, docs/PERFORMANCE.md seventh pass). The first line after a pause is written at the end of its
 * turn, as before; the reference writes its lines on a ≈250 ms ticker (docs/CONTRACT.md §11).
 */
export const MIN_WRITE_INTERVAL_MS = 20;
const QUEUE_FLUSH_BYTES = 64 * 1024;

export interface WriterOptions {
  maxLines?: number;
  maxBytes?: number;
  /** Add prev_sha256 to every line (audit.hash_chain). */
  hashChain?: boolean;
  /** Secondary sinks fed with every line as written. */
  exporters?: Exporter[];
}

export class AsyncAuditWriter implements AuditSink {
  private queue: string[] = [];
  private queueBytes = 0;
  /** Lines handed to the destination and not confirmed written, and their bytes. */
  private handedLines = 0;
  private handedBytes = 0;
  private reserved = 0;
  private writing = false;
  private scheduled = false;
  private warnedBackpressure = false;
  private refusing = false;
  private episodeRefused = 0;
  private failing = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private prevHash: string | null = null;
  private readonly maxLines: number;
  private readonly maxBytes: number;
  private readonly exporters: Exporter[];
  written = 0;
  refused = 0;

  constructor(
    private readonly dest: Destination,
    private readonly ctx: LineContext,
    opts: WriterOptions = {},
  ) {
    this.maxLines = opts.maxLines ?? QUEUE_MAX_LINES;
    this.maxBytes = opts.maxBytes ?? QUEUE_MAX_BYTES;
    this.exporters = opts.exporters ?? [];
    if (opts.hashChain) this.prevHash = dest.chainSeed();
  }

  /** Lines accepted and not yet written. */
  get pending(): number {
    return this.queue.length + this.handedLines;
  }

  private get pendingBytes(): number {
    return this.queueBytes + this.handedBytes;
  }

  private full(): boolean {
    return (
      this.pending + this.reserved >= this.maxLines ||
      this.pendingBytes + this.reserved * RESERVED_LINE_BYTES >= this.maxBytes
    );
  }

  admit(): boolean {
    if (this.full()) {
      this.refused++;
      this.episodeRefused++;
      if (!this.refusing) {
        this.refusing = true;
        warn("audit: queue full, refusing requests", {
          queued: this.pending,
          reserved: this.reserved,
          queued_bytes: this.pendingBytes,
          max_lines: this.maxLines,
          max_bytes: this.maxBytes,
          refused_total: this.refused,
        });
      }
      return false;
    }
    this.reserved++;
    return true;
  }

  /** Give back an admission that will write no line (the request was no decision: a parse-level 400). */
  release(): void {
    if (this.reserved > 0) this.reserved--;
    this.checkCleared();
  }

  /** Ends a refusal episode once the queue is below 3/4 of the bound (no WARN flapping at the edge). */
  private checkCleared(): void {
    if (!this.refusing) return;
    const lines = this.pending + this.reserved;
    const bytes = this.pendingBytes + this.reserved * RESERVED_LINE_BYTES;
    if (lines * 4 > this.maxLines * 3 || bytes * 4 > this.maxBytes * 3) return;
    this.refusing = false;
    warn("audit: queue has room again, accepting requests", {
      queued: this.pending,
      refused: this.episodeRefused,
      refused_total: this.refused,
    });
    this.episodeRefused = 0;
  }

  stats(): AuditSinkStats[] {
    return [
      {
        sink: this.dest.kind,
        queued: this.pending,
        written: this.written,
        dropped: 0,
        refused: this.refused,
        reserved: this.reserved,
        queuedBytes: this.pendingBytes,
      },
      ...this.exporters.map((x) => x.stats()),
    ];
  }

  write(entry: AuditEntry): void {
    if (this.reserved > 0) this.reserved--;
    if (this.closed) {
      warn("audit: entry after close not written", { request_id: entry.requestId });
      return;
    }
    const line = encodeAuditLine(entry, this.ctx, this.prevHash ?? undefined);
    if (this.prevHash !== null) this.prevHash = sha256Hex(line);
    this.queue.push(line);
    this.queueBytes += Buffer.byteLength(line);
    for (const x of this.exporters) x.push(line, entry);
    if (!this.warnedBackpressure && this.pending >= BACKPRESSURE_WARN_LINES) {
      this.warnedBackpressure = true;
      warn("audit: back-pressure, destination is slow; entries are queued, none dropped", {
        queued: this.pending,
      });
    }
    this.schedule();
  }

  private lastWrite = 0;
  /** The interval's timer while a write waits for it. */
  private intervalTimer: ReturnType<typeof setTimeout> | null = null;

  private schedule(): void {
    if (this.intervalTimer && this.queueBytes >= QUEUE_FLUSH_BYTES) {
      // enough waiting: no need to wait for the interval
      clearTimeout(this.intervalTimer);
      this.intervalTimer = null;
      this.scheduled = false;
    }
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.intervalTimer = null;
      void this.pump();
    };
    const wait = this.lastWrite + MIN_WRITE_INTERVAL_MS - performance.now();
    if (wait > 0 && this.queueBytes < QUEUE_FLUSH_BYTES && !this.closed) this.intervalTimer = setTimeout(run, wait);
    else setImmediate(run);
  }

  private async pump(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    while (this.queue.length > 0 || this.handedLines > 0) {
      if (
        this.handedLines === 0 &&
        this.queueBytes < QUEUE_FLUSH_BYTES &&
        !this.closed &&
        performance.now() - this.lastWrite < MIN_WRITE_INTERVAL_MS
      ) {
        // lines that came while the last write was under way: they wait for the next interval
        this.writing = false;
        this.schedule();
        return;
      }
      this.lastWrite = performance.now();
      const lines = this.queue;
      this.handedLines += lines.length;
      this.handedBytes += this.queueBytes;
      this.queue = [];
      this.queueBytes = 0;
      try {
        await this.dest.write(lines);
        this.written += this.handedLines;
        this.handedLines = 0;
        this.handedBytes = 0;
        if (this.failing) {
          this.failing = false;
          warn("audit: destination writable again", { written_total: this.written });
        }
        this.checkCleared();
      } catch (e) {
        // The destination keeps what it could not write and resumes it on the next call.
        const done = this.handedLines - this.dest.backlog;
        this.written += done;
        this.handedLines -= done;
        if (!this.failing) {
          this.failing = true;
          warn("audit: write failed, retrying; entries are kept", {
            err: (e as Error).message,
            queued: this.pending,
          });
        }
        this.writing = false;
        setTimeout(() => void this.pump(), RETRY_MS);
        return;
      }
    }
    this.writing = false;
    if (this.warnedBackpressure) {
      this.warnedBackpressure = false;
      warn("audit: back-pressure cleared", { written_total: this.written });
    }
    this.checkCleared();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    const idle = new Promise<void>((resolve) => {
      if (this.pending === 0 && !this.writing) resolve();
      else {
        this.idleWaiters.push(resolve);
        this.schedule();
      }
    });
    const exports = Promise.all(this.exporters.map((x) => x.close(deadlineMs)));
    const limit = Math.max(0, deadlineMs - Date.now()) + CLOSE_GRACE_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      idle.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), limit))),
    ]);
    clearTimeout(timer);
    if (timedOut)
      warn("audit: shutdown deadline reached before every entry was written", {
        not_written: this.pending,
        written_total: this.written,
      });
    await exports;
    this.dest.close();
  }
}

export interface SinkOptions extends LineContext {
  /** Test hook: rotate at this many bytes. */
  maxBytesOverride?: number;
  /** What the exports need (proxy selection, OTLP resource); defaults: no upstream proxy, process.env. */
  exportContext?: Partial<ExportContext>;
}

/**
 * Throws Error("audit: …") when the destination cannot be used (the file cannot be opened, stdout
 * is closed): serve logs `msg="audit init"` and exits 2.
 */
export function createAuditSink(cfg: Config["audit"], opts: SinkOptions): AsyncAuditWriter {
  const dest: Destination =
    cfg.destination === "file"
      ? new FileDestination(cfg.file, cfg.maxSizeMb, cfg.maxFiles, opts.maxBytesOverride)
      : new StdoutDestination();
  const exporters = createExporters(cfg, { proxyId: opts.proxyId, ...opts.exportContext });
  try {
    return new AsyncAuditWriter(
      dest,
      { proxyId: opts.proxyId, authMode: opts.authMode },
      { hashChain: cfg.hashChain === true, exporters },
    );
  } catch (e) {
    dest.close();
    throw new Error(`audit: hash chain: read the last line of ${cfg.file}: ${(e as Error).message}`);
  }
}

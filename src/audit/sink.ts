// Audit sinks: stdout (default) or an append-only file with size-based rotation (docs/CONTRACT.md
// §11), behind a lossless asynchronous writer (§18.16).
//
// Writer semantics (ours, documented in docs/CONTRACT.md §11 "Ours"):
// - write() never blocks the request path: the encoded line is queued and a flush is scheduled
//   (lines accepted in the same event-loop turn go out in one write()).
// - Nothing is dropped. A slow reader (stdout pipe not drained) makes the queue grow; past
//   BACKPRESSURE_WARN_LINES one WARN is logged, and one more when the queue has drained again.
// - A failed file write (ENOSPC, EIO, …) is logged once per failure episode; the lines stay queued
//   and are retried (every RETRY_MS), the proxy keeps serving.
// - close(deadline) resolves once every accepted line is written, or at deadline + CLOSE_GRACE_MS
//   with a WARN saying how many lines were not written, so a blocked stdout cannot hang exit.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, statSync, write as fsWrite } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "../config/types.ts";
import { warn } from "../log/slog.ts";
import { encodeAuditLine, type LineContext } from "./encode.ts";
import type { AuditEntry, AuditSink, AuditSinkStats } from "./types.ts";

export const BACKPRESSURE_WARN_LINES = 10_000;
export const CLOSE_GRACE_MS = 2_000;
export const RETRY_MS = 250;
const MIB = 1024 * 1024;

function writeAll(fd: number, buf: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    let off = 0;
    const step = () => {
      fsWrite(fd, buf, off, buf.length - off, null, (err, n) => {
        if (err) {
          if ((err as NodeJS.ErrnoException).code === "EAGAIN") return void setTimeout(step, 5);
          return reject(err);
        }
        off += n;
        if (off < buf.length) step();
        else resolve();
      });
    };
    step();
  });
}

/** Where encoded lines go. `write` gets whole lines, in order. */
interface Destination {
  write(lines: string[]): Promise<void>;
  close(): void;
}

class StdoutDestination implements Destination {
  write(lines: string[]): Promise<void> {
    return writeAll(1, Buffer.from(lines.join("")));
  }
  close(): void {}
}

/** Go-style errno text for messages (matches the reference's "open <f>: is a directory"). */
function errnoText(e: NodeJS.ErrnoException): string {
  const map: Record<string, string> = {
    ENOENT: "no such file or directory",
    EISDIR: "is a directory",
    EACCES: "permission denied",
    ENOTDIR: "not a directory",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EEXIST: "file exists",
  };
  return (e.code && map[e.code]) ?? e.message;
}

export class FileDestination implements Destination {
  private fd: number;
  private size: number;
  private readonly maxBytes: number;

  constructor(
    readonly path: string,
    maxSizeMb: number,
    private readonly maxFiles: number,
    /** Test hook: rotate at this many bytes instead of maxSizeMb MiB. */
    maxBytesOverride?: number,
  ) {
    this.maxBytes = maxBytesOverride ?? maxSizeMb * MIB;
    const dir = dirname(path);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o750 });
    } catch (e) {
      throw new Error(`audit: create ${path} parent dir: mkdir ${dir}: ${errnoText(e as NodeJS.ErrnoException)}`);
    }
    this.fd = this.open();
    this.size = fstatSync(this.fd).size;
  }

  private open(): number {
    try {
      const fd = openSync(this.path, "a", 0o640);
      if (fstatSync(fd).isDirectory()) {
        closeSync(fd);
        throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
      }
      return fd;
    } catch (e) {
      throw new Error(`audit: open ${this.path}: open ${this.path}: ${errnoText(e as NodeJS.ErrnoException)}`);
    }
  }

  private rotate(): void {
    closeSync(this.fd);
    // audit.log.(n-1) → .n, …, audit.log → .1; keep at most maxFiles rotated files.
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch {}
    }
    if (this.maxFiles >= 1) renameSync(this.path, `${this.path}.1`);
    this.fd = this.open();
    this.size = 0;
  }

  async write(lines: string[]): Promise<void> {
    let batch: string[] = [];
    let batchBytes = 0;
    for (const line of lines) {
      if (this.size + batchBytes >= this.maxBytes && this.size + batchBytes > 0) {
        if (batch.length) await this.flushBatch(batch, batchBytes);
        batch = [];
        batchBytes = 0;
        this.rotate();
      }
      batch.push(line);
      batchBytes += Buffer.byteLength(line);
    }
    if (batch.length) await this.flushBatch(batch, batchBytes);
  }

  private async flushBatch(batch: string[], bytes: number): Promise<void> {
    // The file may have been rotated or removed by someone else: re-check our view cheaply.
    try {
      if (statSync(this.path).ino !== fstatSync(this.fd).ino) throw new Error("moved");
    } catch {
      closeSync(this.fd);
      this.fd = this.open();
      this.size = fstatSync(this.fd).size;
    }
    await writeAll(this.fd, Buffer.from(batch.join("")));
    this.size += bytes;
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {}
  }
}

export class AsyncAuditWriter implements AuditSink {
  private queue: string[] = [];
  private writing = false;
  private scheduled = false;
  private warnedBackpressure = false;
  private failing = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  written = 0;

  constructor(
    private readonly dest: Destination,
    private readonly ctx: LineContext,
  ) {}

  /** Placeholder until the bounded queue lands: always admits. */
  admit(): boolean {
    return true;
  }

  stats(): AuditSinkStats[] {
    return [
      {
        sink: this.dest instanceof FileDestination ? "file" : "stdout",
        queued: this.queue.length,
        written: this.written,
        dropped: 0,
      },
    ];
  }

  write(entry: AuditEntry): void {
    if (this.closed) {
      warn("audit: entry after close not written", { request_id: entry.requestId });
      return;
    }
    this.queue.push(encodeAuditLine(entry, this.ctx));
    if (!this.warnedBackpressure && this.queue.length >= BACKPRESSURE_WARN_LINES) {
      this.warnedBackpressure = true;
      warn("audit: back-pressure, destination is slow; entries are queued, none dropped", {
        queued: this.queue.length,
      });
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    while (this.queue.length > 0) {
      const lines = this.queue;
      this.queue = [];
      try {
        await this.dest.write(lines);
        this.written += lines.length;
        if (this.failing) {
          this.failing = false;
          warn("audit: destination writable again", { written_total: this.written });
        }
      } catch (e) {
        // Keep the lines (in order, ahead of newer ones) and retry later.
        this.queue = lines.concat(this.queue);
        if (!this.failing) {
          this.failing = true;
          warn("audit: write failed, retrying; entries are kept", {
            err: (e as Error).message,
            queued: this.queue.length,
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
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Number of accepted lines not yet written. */
  get pending(): number {
    return this.queue.length + (this.writing ? 1 : 0);
  }

  async close(deadlineMs: number): Promise<void> {
    this.closed = true;
    const idle = new Promise<void>((resolve) => {
      if (this.queue.length === 0 && !this.writing) resolve();
      else {
        this.idleWaiters.push(resolve);
        this.schedule();
      }
    });
    const limit = Math.max(0, deadlineMs - Date.now()) + CLOSE_GRACE_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      idle.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), limit))),
    ]);
    clearTimeout(timer);
    if (timedOut)
      warn("audit: shutdown deadline reached before every entry was written", {
        not_written: this.queue.length,
        written_total: this.written,
      });
    this.dest.close();
  }
}

export interface SinkOptions extends LineContext {
  /** Test hook: rotate at this many bytes. */
  maxBytesOverride?: number;
}

/** Throws Error("audit: …") when the file cannot be opened (serve logs `msg="audit init"`, exit 2). */
export function createAuditSink(cfg: Config["audit"], opts: SinkOptions): AsyncAuditWriter {
  const dest =
    cfg.destination === "file"
      ? new FileDestination(cfg.file, cfg.maxSizeMb, cfg.maxFiles, opts.maxBytesOverride)
      : new StdoutDestination();
  return new AsyncAuditWriter(dest, { proxyId: opts.proxyId, authMode: opts.authMode });
}

// Where audit lines go: stdout (default) or an append-only file with size-based rotation
// (docs/CONTRACT.md §11). A destination takes whole lines, in order, and owns them from then on:
// a write that fails part-way (ENOSPC, EIO, EAGAIN storms…) keeps the unwritten remainder and the
// next call resumes from the exact byte where it stopped, so a line is never written twice nor
// torn across a retry (the writer in ./sink.ts retries; the destination never rewrites a batch from
// its start).
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  write as fsWrite,
} from "node:fs";
import { dirname } from "node:path";
import { CHAIN_ORIGIN, lastLineOfFd, lastLineOfPath, sha256Hex } from "./chain.ts";
import { errnoText } from "./errno.ts";

export { errnoText };

const MIB = 1024 * 1024;

/** Writes up to `len` bytes of `buf` from `off` to `fd`; resolves with the number written. */
export type WriteFn = (fd: number, buf: Uint8Array, off: number, len: number) => Promise<number>;

/** fs.write, retrying EAGAIN (a non-blocking stdout pipe that is full) every 5 ms. */
export const fdWrite: WriteFn = (fd, buf, off, len) =>
  new Promise((resolve, reject) => {
    const step = () =>
      fsWrite(fd, buf, off, len, null, (err, n) => {
        if (!err) return resolve(n);
        if ((err as NodeJS.ErrnoException).code === "EAGAIN") return void setTimeout(step, 5);
        reject(err);
      });
    step();
  });

export interface Destination {
  readonly kind: "stdout" | "file";
  /**
   * Take `lines` (whole lines with "\n", in order) and write them after any earlier remainder.
   * Resolves when everything taken so far is written; rejects on a write error, keeping the
   * unwritten bytes (the next call, possibly with no new lines, resumes them).
   */
  write(lines: string[]): Promise<void>;
  /** Lines taken and not completely written yet. */
  readonly backlog: number;
  /** prev_sha256 for the first line this destination will write (hash chain). */
  chainSeed(): string;
  close(): void;
}

/** Shared machinery: lines taken, then batches written with resumable progress. */
abstract class FdDestination implements Destination {
  abstract readonly kind: "stdout" | "file";
  protected abstract fd: number;
  private pending: string[] = [];
  private carry: { buf: Uint8Array; off: number; lines: number } | null = null;

  constructor(private readonly writeFn: WriteFn) {}

  get backlog(): number {
    return this.pending.length + (this.carry?.lines ?? 0);
  }

  abstract chainSeed(): string;
  abstract close(): void;

  /** How many of the pending lines form the next batch (may rotate first). */
  protected nextBatch(pending: readonly string[]): number {
    return pending.length;
  }

  /** Called after every successful write(2) with its byte count. */
  protected wrote(_n: number): void {}

  async write(lines: string[]): Promise<void> {
    if (lines.length) {
      if (this.pending.length === 0) this.pending = lines;
      else for (const l of lines) this.pending.push(l);
    }
    if (this.carry) await this.finishCarry();
    while (this.pending.length) {
      const n = this.nextBatch(this.pending);
      const batch = n === this.pending.length ? this.pending : this.pending.slice(0, n);
      this.pending = n === this.pending.length ? [] : this.pending.slice(n);
      this.carry = { buf: Buffer.from(batch.join("")), off: 0, lines: n };
      await this.finishCarry();
    }
  }

  private async finishCarry(): Promise<void> {
    const c = this.carry!;
    while (c.off < c.buf.length) {
      const n = await this.writeFn(this.fd, c.buf, c.off, c.buf.length - c.off);
      c.off += n;
      this.wrote(n);
    }
    this.carry = null;
  }
}

/**
 * Why fd 1 cannot carry audit lines, or null. With stdout closed at exec (`>&-`) the runtime puts
 * /dev/null on fd 1 itself (opened O_RDWR|O_CLOEXEC), so every line would vanish. An inherited fd
 * can never have close-on-exec set (it would not have survived the exec), so on Linux that flag in
 * /proc/self/fdinfo/1 tells the two apart from an operator's deliberate `>/dev/null`.
 */
export function stdoutProblem(fdinfo: string | null, fstatError: NodeJS.ErrnoException | null): string | null {
  if (fstatError) return errnoText(fstatError);
  if (fdinfo === null) return null;
  const m = /^flags:\s*([0-7]+)/m.exec(fdinfo);
  if (!m) return null;
  const flags = parseInt(m[1]!, 8);
  if (flags & 0o2000000) return "fd 1 was closed when the process started";
  if ((flags & 0o3) === 0) return "fd 1 is open read-only";
  return null;
}

export class StdoutDestination extends FdDestination {
  readonly kind = "stdout" as const;
  protected fd = 1;

  /** Throws Error("audit: stdout is not writable: …") (serve: `msg="audit init"`, exit 2). */
  constructor(writeFn: WriteFn = fdWrite, check = true) {
    super(writeFn);
    if (!check) return;
    let fstatError: NodeJS.ErrnoException | null = null;
    try {
      fstatSync(1);
    } catch (e) {
      fstatError = e as NodeJS.ErrnoException;
    }
    let fdinfo: string | null = null;
    try {
      fdinfo = readFileSync("/proc/self/fdinfo/1", "utf8");
    } catch {}
    const why = stdoutProblem(fdinfo, fstatError);
    if (why) throw new Error(`audit: stdout is not writable: ${why}`);
  }

  chainSeed(): string {
    return CHAIN_ORIGIN;
  }
  close(): void {}
}

export class FileDestination extends FdDestination {
  readonly kind = "file" as const;
  protected fd: number;
  private size: number;
  private readonly maxBytes: number;

  constructor(
    readonly path: string,
    maxSizeMb: number,
    private readonly maxFiles: number,
    /** Test hook: rotate at this many bytes instead of maxSizeMb MiB. */
    maxBytesOverride?: number,
    writeFn: WriteFn = fdWrite,
  ) {
    super(writeFn);
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
      const fd = openSync(this.path, "a+", 0o640); // readable too: the hash chain reads its last line
      if (fstatSync(fd).isDirectory()) {
        closeSync(fd);
        throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
      }
      return fd;
    } catch (e) {
      throw new Error(`audit: open ${this.path}: open ${this.path}: ${errnoText(e as NodeJS.ErrnoException)}`);
    }
  }

  /** The chain continues from the last line on disk: this file's, else the newest rotated file's. */
  chainSeed(): string {
    const last = lastLineOfFd(this.fd, true) ?? (this.maxFiles >= 1 ? lastLineOfPath(`${this.path}.1`) : null);
    this.size = fstatSync(this.fd).size;
    return last ? sha256Hex(last) : CHAIN_ORIGIN;
  }

  private rotate(): void {
    safeClose(this.fd);
    this.fd = -1;
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

  protected override nextBatch(pending: readonly string[]): number {
    // The file may have been rotated or removed by someone else: re-check our view cheaply.
    try {
      if (statSync(this.path).ino !== fstatSync(this.fd).ino) throw new Error("moved");
    } catch {
      safeClose(this.fd);
      this.fd = -1; // never fstat/close a number the kernel may hand to another open
      this.fd = this.open();
      this.size = fstatSync(this.fd).size;
    }
    // Rotate before a write once the size limit is reached (a file exceeds it by at most one line).
    if (this.size >= this.maxBytes && this.size > 0) this.rotate();
    let n = 0;
    let bytes = 0;
    while (n < pending.length && (n === 0 || this.size + bytes < this.maxBytes)) {
      bytes += Buffer.byteLength(pending[n]!);
      n++;
    }
    return n;
  }

  protected override wrote(n: number): void {
    this.size += n;
  }

  close(): void {
    safeClose(this.fd);
  }
}

function safeClose(fd: number): void {
  try {
    closeSync(fd);
  } catch {}
}

// A client connection (plain TCP or the TLS socket inside a CONNECT tunnel) as a pull-based byte
// stream with write back-pressure: the request loop awaits read()/write() instead of juggling
// callbacks. Input beyond INPUT_HIGH_WATER pauses the socket until it is consumed.
import type { Socket } from "bun";
import { INPUT_HIGH_WATER } from "./limits.ts";

export interface ConnData {
  conn?: Conn;
}

export class Conn {
  private input: Uint8Array[] = [];
  private inputBytes = 0;
  private eof = false;
  private readWaiter: (() => void) | null = null;
  private pending: Uint8Array | null = null; // unwritten output
  private drainWaiters: Array<() => void> = [];
  private paused = false;
  closed = false;
  private closeListeners: Array<() => void> = [];
  /** True while a request is being handled (drain waits for these). */
  busy = false;
  /** Set by drain: close after the current response. */
  closeAfterResponse = false;

  constructor(
    public sock: Socket<ConnData>,
    readonly clientIp: string,
  ) {}

  // --- socket events -------------------------------------------------------------------------
  onData(chunk: Uint8Array): void {
    this.input.push(new Uint8Array(chunk)); // copy: Bun may reuse the buffer
    this.inputBytes += chunk.byteLength;
    if (this.inputBytes > INPUT_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.sock.pause();
    }
    this.wake();
  }

  onDrain(): void {
    if (this.pending) {
      const n = this.sock.write(this.pending);
      if (n < 0) return this.onClose();
      if (n < this.pending.byteLength) {
        this.pending = this.pending.subarray(n);
        return;
      }
      this.pending = null;
    }
    for (const w of this.drainWaiters.splice(0)) w();
  }

  onEnd(): void {
    this.eof = true;
    this.wake();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.eof = true;
    this.wake();
    for (const w of this.drainWaiters.splice(0)) w();
    for (const l of this.closeListeners.splice(0)) l();
  }

  /**
   * Call `fn` when the connection closes. Returns a remover: a per-request listener must be removed
   * when the request is done, or a keep-alive connection would hold one (and everything it closes
   * over) per request it ever carried.
   */
  onceClosed(fn: () => void): () => void {
    if (this.closed) {
      fn();
      return () => {};
    }
    this.closeListeners.push(fn);
    return () => {
      const i = this.closeListeners.indexOf(fn);
      if (i >= 0) this.closeListeners.splice(i, 1);
    };
  }

  private wake(): void {
    const w = this.readWaiter;
    this.readWaiter = null;
    w?.();
  }

  // --- reading -------------------------------------------------------------------------------
  get buffered(): number {
    return this.inputBytes;
  }

  /** Next chunk of input, or null at EOF/close. Rejects on timeout. */
  async read(timeoutMs?: number): Promise<Uint8Array | null> {
    while (this.input.length === 0) {
      if (this.eof) return null;
      await new Promise<void>((resolve, reject) => {
        let t: ReturnType<typeof setTimeout> | undefined;
        if (timeoutMs !== undefined)
          t = setTimeout(() => {
            this.readWaiter = null;
            reject(new TimeoutError());
          }, timeoutMs);
        this.readWaiter = () => {
          if (t) clearTimeout(t);
          resolve();
        };
      });
    }
    const chunk = this.input.length === 1 ? this.input[0]! : Buffer.concat(this.input);
    this.input = [];
    this.inputBytes = 0;
    if (this.paused) {
      this.paused = false;
      this.sock.resume();
    }
    return chunk;
  }

  /** Put bytes back at the front of the input. */
  unshift(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.input.unshift(bytes);
    this.inputBytes += bytes.byteLength;
  }

  /** Whether unread input is waiting. */
  hasInput(): boolean {
    return this.inputBytes > 0;
  }

  // --- writing -------------------------------------------------------------------------------
  /** Write everything; resolves when the socket took it all (back-pressure). */
  async write(data: Uint8Array | string): Promise<void> {
    if (this.closed) throw new ClosedError();
    const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    if (bytes.byteLength === 0) return;
    if (this.pending) await new Promise<void>((r) => this.drainWaiters.push(r));
    if (this.closed) throw new ClosedError();
    const n = this.sock.write(bytes);
    if (n < 0) {
      this.onClose();
      throw new ClosedError();
    }
    if (n < bytes.byteLength) {
      this.pending = bytes.subarray(n);
      await new Promise<void>((r) => this.drainWaiters.push(r));
      if (this.closed && this.pending) throw new ClosedError();
    }
  }

  end(): void {
    if (this.closed) return;
    if (this.pending) {
      const p = this.pending;
      this.drainWaiters.push(() => {
        if (p) this.sock.end();
      });
      return;
    }
    this.sock.end();
  }

  destroy(): void {
    if (!this.closed) this.sock.terminate();
    this.onClose();
  }
}

export class TimeoutError extends Error {
  constructor() {
    super("timeout");
  }
}

export class ClosedError extends Error {
  constructor() {
    super("connection closed");
  }
}

// A client connection (plain TCP on the listener, or the TLS socket inside a CONNECT tunnel): a
// pull-based byte stream (./pull.ts) with write back-pressure and a write-stall deadline — a client
// that stops reading cannot hold its upstream request and our memory for ever (docs/CONTRACT.md §20).
import type { Socket } from "bun";
import { INPUT_HIGH_WATER, WRITE_STALL_TIMEOUT_MS } from "./limits.ts";
import { PullQueue } from "./pull.ts";

/** What a Bun socket of ours carries: its connection, and the tunnel's handshake continuation. */
export interface ConnData {
  conn?: Conn;
  /** Set on a TLS tunnel socket until its handshake completes (./tunnel.ts). */
  onHandshake?: (sock: Socket<ConnData>, success: boolean, sni: string | undefined, err: string) => void;
}

export class ClosedError extends Error {
  constructor() {
    super("connection closed");
  }
}

export class Conn {
  private readonly input: PullQueue;
  private pending: Uint8Array | null = null; // output the socket did not take yet
  private drainWaiters: Array<() => void> = [];
  private closeListeners: Array<() => void> = [];
  private ending = false;
  /** The current request's abort controller (see requestController). */
  private controller: AbortController | null = null;
  closed = false;
  /** True while a request is being handled (drain waits for these). */
  busy = false;
  /** Inside a CONNECT tunnel (TLS or cleartext). */
  inTunnel = false;
  /** Switched to a WebSocket byte relay. */
  upgraded = false;

  constructor(
    public sock: Socket<ConnData>,
    readonly clientIp: string,
    readonly remotePort: number,
  ) {
    this.input = new PullQueue({ pause: () => sock.pause(), resume: () => sock.resume() }, INPUT_HIGH_WATER);
  }

  get remote(): string {
    return `${this.clientIp}:${this.remotePort}`;
  }

  // --- socket events -------------------------------------------------------------------------
  onData(chunk: Uint8Array): void {
    // kept as is: Bun gives every data() call a buffer of its own (test/unit/intercept/conn.test.ts)
    this.input.push(chunk);
  }

  onDrain(): void {
    if (this.pending) {
      const n = this.sock.write(this.pending);
      if (n < 0) return this.onClose();
      if (n < this.pending.byteLength) {
        this.pending = this.pending.subarray(n);
        if (n > 0) for (const w of this.drainWaiters.splice(0)) w(); // progress: writers re-arm their stall timer
        return;
      }
      this.pending = null;
      if (this.ending) this.sock.end();
    }
    for (const w of this.drainWaiters.splice(0)) w();
  }

  onEnd(): void {
    this.input.end();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.end();
    for (const w of this.drainWaiters.splice(0)) w();
    this.controller?.abort();
    for (const l of this.closeListeners.splice(0)) l();
  }

  /**
   * The abort controller for this connection's current request (its upstream fetch): aborted when
   * the connection closes. One per connection rather than one per request, with no close listener
   * to add and remove per request — a connection carries one request at a time, and fetch lets go
   * of the signal when its exchange ends. Once aborted (the connection closed, or the forwarder's
   * first-byte deadline aborted it), the next request gets a new one.
   */
  requestController(): AbortController {
    let c = this.controller;
    if (c === null || c.signal.aborted) {
      this.controller = c = new AbortController();
      if (this.closed) c.abort();
    }
    return c;
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

  // --- reading -------------------------------------------------------------------------------
  /** Next chunk of input, or null at EOF/close. Rejects with TimeoutError on timeout. */
  read(timeoutMs?: number): Promise<Uint8Array | null> {
    return this.input.read(timeoutMs);
  }

  unshift(bytes: Uint8Array): void {
    this.input.unshift(bytes);
  }

  hasInput(): boolean {
    return this.input.hasInput();
  }

  // --- writing -------------------------------------------------------------------------------
  /**
   * Write everything; resolves when the socket took it all (back-pressure). A write that makes no
   * progress for WRITE_STALL_TIMEOUT_MS destroys the connection and rejects.
   */
  async write(data: Uint8Array | string): Promise<void> {
    if (this.closed) throw new ClosedError();
    const bytes = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    if (bytes.byteLength === 0) return;
    while (this.pending) await this.waitForDrain();
    const n = this.sock.write(bytes);
    if (n < 0) {
      this.onClose();
      throw new ClosedError();
    }
    if (n < bytes.byteLength) {
      this.pending = bytes.subarray(n);
      while (this.pending) await this.waitForDrain();
    }
  }

  /** Wait for the socket to take (some of) the pending output, or for the stall deadline. */
  private waitForDrain(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError());
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.destroy();
        reject(new ClosedError());
      }, WRITE_STALL_TIMEOUT_MS);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        if (this.closed) reject(new ClosedError());
        else resolve();
      });
    });
  }

  /** Close after the pending output (if any) was written. */
  end(): void {
    if (this.closed) return;
    if (this.pending) this.ending = true;
    else this.sock.end();
  }

  destroy(): void {
    if (!this.closed) this.sock.terminate();
    this.onClose();
  }
}

// One pull-based reader for every byte stream on the data path (client connections on Bun sockets,
// upstream connections on node:net/node:tls sockets): the request loop awaits `read()` instead of
// juggling callbacks, and input beyond `highWater` pauses the socket until it is consumed.
export class TimeoutError extends Error {
  constructor() {
    super("timeout");
  }
}

export interface FlowControl {
  pause(): void;
  resume(): void;
}

export class PullQueue {
  private chunks: Uint8Array[] = [];
  private bytes = 0;
  private ended = false;
  private paused = false;
  private waiter: (() => void) | null = null;
  /** Rejects the waiting read when its deadline passes (null: no read waits with a deadline). */
  private fail: ((e: Error) => void) | null = null;
  /** When the waiting read times out (performance.now() ms). */
  private deadline = 0;
  /** One timer for every read's deadline, armed lazily (see read); null when none is armed. */
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = 0;

  constructor(
    private readonly flow: FlowControl,
    private readonly highWater: number,
  ) {}

  /** Input arrived (the caller copies it first if the runtime may reuse the buffer). */
  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    if (this.bytes > this.highWater && !this.paused) {
      this.paused = true;
      this.flow.pause();
    }
    this.wake();
  }

  /** No more input will come (end of stream, close, error). */
  end(): void {
    this.ended = true;
    this.wake();
    if (this.timer !== null) {
      // (a closed connection is not kept alive by its timer until it would have fired)
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  get done(): boolean {
    return this.ended && this.chunks.length === 0;
  }

  hasInput(): boolean {
    return this.bytes > 0;
  }

  /** Next chunk (everything buffered, as one), or null at end of input. Rejects on timeout. */
  async read(timeoutMs?: number): Promise<Uint8Array | null> {
    while (this.chunks.length === 0) {
      if (this.ended) return null;
      await new Promise<void>((resolve, reject) => {
        this.waiter = resolve;
        if (timeoutMs === undefined) return;
        this.fail = reject;
        this.deadline = performance.now() + timeoutMs;
        // Not a timer per read (a keep-alive connection reads once per request): the armed one is
        // kept when it fires no later than this deadline, and when it fires early it re-arms for
        // what is left — the deadline holds to the millisecond either way.
        if (this.timer === null || this.timerAt > this.deadline) this.arm(timeoutMs);
      });
    }
    const chunk = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.bytes = 0;
    if (this.paused) {
      this.paused = false;
      this.flow.resume();
    }
    return chunk;
  }

  /** Put bytes back at the front of the input. */
  unshift(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.chunks.unshift(bytes);
    this.bytes += bytes.byteLength;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    this.fail = null;
    w?.();
  }

  private arm(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = performance.now() + ms;
    this.timer = setTimeout(this.onTimer, Math.max(1, Math.ceil(ms)));
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    const fail = this.fail;
    if (fail === null) return; // no read waits with a deadline: the timer stops here
    const left = this.deadline - performance.now();
    if (left > 0) return this.arm(left);
    this.fail = null;
    this.waiter = null;
    fail(new TimeoutError());
  };
}

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
        let t: ReturnType<typeof setTimeout> | undefined;
        if (timeoutMs !== undefined)
          t = setTimeout(() => {
            this.waiter = null;
            reject(new TimeoutError());
          }, timeoutMs);
        this.waiter = () => {
          if (t) clearTimeout(t);
          resolve();
        };
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
    w?.();
  }
}

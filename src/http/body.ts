// Request bodies read from a client connection as a pull-based stream: Content-Length bodies pass
// through as they arrive; chunked bodies are decoded strictly (CRLF only, hex sizes) and forwarded
// de-chunked (the forwarder re-frames). Bytes past the body stay in the connection (pipelining).
import type { Framing } from "./h1-request.ts";
import { latin1 } from "./head-buffer.ts";

/** Where a body is read from: the client connection (pull-based, with unread bytes put back). */
export interface ByteSource {
  /** Next chunk, or null at end of input. Rejects when `timeoutMs` passes without a byte. */
  read(timeoutMs?: number): Promise<Uint8Array | null>;
  /** Put bytes back at the front of the input (bytes past the body: a pipelined request). */
  unshift(bytes: Uint8Array): void;
}

export class BodyError extends Error {}

/** A chunk-size (or trailer) line longer than this is refused, however it arrives (as Go's reader). */
const MAX_LINE_BYTES = 4096;

/** No carried bytes (shared: never written to, only replaced). */
const EMPTY = new Uint8Array(0);

/** A reader over one request body. `next()` gives the next piece, null at the end. */
export class BodyReader {
  private remaining: number;
  private chunkLeft = 0;
  private done: boolean;
  private state: "size" | "data" | "data-crlf" | "trailers" = "size";
  private carry: Uint8Array = EMPTY;
  /** Bytes of body delivered so far. */
  delivered = 0;
  /** When the stream last handed its consumer a piece, or its end (performance.now(); 0: not yet). */
  progressAt = 0;

  constructor(
    private readonly conn: ByteSource,
    private readonly framing: Framing,
    /** A body that sends no byte for this long fails (the client stalled mid-upload). */
    private readonly idleTimeoutMs: number,
  ) {
    this.remaining = framing.kind === "length" ? framing.length : 0;
    this.done = framing.kind === "none";
  }

  get finished(): boolean {
    return this.done;
  }

  private async more(): Promise<Uint8Array> {
    if (this.carry.byteLength > 0) {
      const c = this.carry;
      this.carry = EMPTY;
      return c;
    }
    const c = await this.conn.read(this.idleTimeoutMs);
    if (c === null) throw new BodyError("client closed the connection before the request body ended");
    return c;
  }

  async next(): Promise<Uint8Array | null> {
    if (this.done) return null;
    if (this.framing.kind === "length") {
      const c = await this.more();
      if (c.byteLength > this.remaining) {
        this.conn.unshift(c.subarray(this.remaining));
        const part = c.subarray(0, this.remaining);
        this.remaining = 0;
        this.done = true;
        this.delivered += part.byteLength;
        return part;
      }
      this.remaining -= c.byteLength;
      if (this.remaining === 0) this.done = true;
      this.delivered += c.byteLength;
      return c;
    }
    return this.nextChunked();
  }

  private async line(): Promise<string> {
    // Read one CRLF-terminated line (bounded), leaving the rest in carry.
    let acc: Uint8Array = new Uint8Array(0);
    for (;;) {
      const c = await this.more();
      const merged: Uint8Array = acc.byteLength ? Buffer.concat([acc, c]) : c;
      const idx = merged.indexOf(10);
      if (idx > MAX_LINE_BYTES || (idx < 0 && merged.byteLength > MAX_LINE_BYTES))
        throw new BodyError("chunk size line too long");
      if (idx >= 0) {
        if (idx === 0 || merged[idx - 1] !== 13) throw new BodyError("bare LF in chunked encoding");
        this.carry = merged.subarray(idx + 1);
        return latin1(merged, 0, idx - 1);
      }
      acc = merged;
    }
  }

  private async nextChunked(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.state === "size") {
        const l = await this.line();
        const m = /^([0-9a-fA-F]{1,15})(;.*)?$/.exec(l);
        if (!m || /[\r\n]/.test(l)) throw new BodyError("malformed chunk size");
        this.chunkLeft = parseInt(m[1]!, 16);
        this.state = this.chunkLeft === 0 ? "trailers" : "data";
        continue;
      }
      if (this.state === "data") {
        const c = await this.more();
        if (c.byteLength > this.chunkLeft) {
          this.carry = c.subarray(this.chunkLeft);
          const part = c.subarray(0, this.chunkLeft);
          this.chunkLeft = 0;
          this.state = "data-crlf";
          this.delivered += part.byteLength;
          return part;
        }
        this.chunkLeft -= c.byteLength;
        if (this.chunkLeft === 0) this.state = "data-crlf";
        this.delivered += c.byteLength;
        return c;
      }
      if (this.state === "data-crlf") {
        const l = await this.line();
        if (l !== "") throw new BodyError("missing CRLF after chunk data");
        this.state = "size";
        continue;
      }
      // trailers: lines until an empty one (trailer fields are dropped)
      const l = await this.line();
      if (l === "") {
        this.done = true;
        if (this.carry.byteLength) this.conn.unshift(this.carry);
        this.carry = EMPTY;
        return null;
      }
    }
  }

  /** Return unconsumed bytes to the connection (after the body ended). */
  release(): void {
    if (this.carry.byteLength) this.conn.unshift(this.carry);
    this.carry = EMPTY;
  }

  /** As a ReadableStream (pull-based: the socket is read only as fast as the consumer takes). */
  stream(onError: (e: unknown) => void): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          try {
            const c = await this.next();
            this.progressAt = performance.now();
            if (c === null) {
              this.release();
              controller.close();
            } else controller.enqueue(c);
          } catch (e) {
            onError(e);
            controller.error(e);
          }
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Read and drop the rest of the body, up to `limit` bytes; false if it was longer. */
  async discard(limit: number): Promise<boolean> {
    let n = 0;
    while (!this.done) {
      const c = await this.next();
      if (c === null) break;
      n += c.byteLength;
      if (n > limit) return false;
    }
    this.release();
    return true;
  }
}

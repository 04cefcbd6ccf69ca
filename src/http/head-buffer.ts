// Accumulating an HTTP/1.1 message head (request or response) as it arrives, without re-reading it:
// each byte is scanned once, the buffer grows by doubling (a 1 MiB head sent in 1 KiB pieces costs
// one pass and ~2 MiB of copying, not the 0.3 s of CPU that re-parsing from the start cost —
// issue 13 item 7). Line endings are checked while scanning: CRLF only, a bare LF or a bare CR is an
// error at once (docs/CONTRACT.md §18.17).
//
//   const hb = new HeadBuffer(maxBytes);
//   hb.push(chunk) → "incomplete" | "complete" | "bare-lf" | "bare-cr" | "too-large"
//   hb.firstLine()   the first line once its CRLF arrived (for an early request-line check)
//   hb.head()        the head without its final CRLFCRLF (latin1), after "complete"
//   hb.rest()        bytes received after the head (a body, a pipelined request)

export type HeadState = "incomplete" | "complete" | "bare-lf" | "bare-cr" | "too-large";

/**
 * Bytes to a string of the same code points (ISO-8859-1). Not TextDecoder("latin1"): the Encoding
 * Standard makes that label windows-1252, which turns 27 of the bytes 0x80–0x9F into other
 * characters (0x80 → U+20AC) — a header value's obs-text would no longer be its bytes, and fetch
 * refuses such a value. (`latin1Slice` works on any Uint8Array, as Node's Buffer methods do.)
 */
export const latin1 = (b: Uint8Array, start: number, end: number): string => latin1Slice.call(b, start, end);
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(start: number, end: number): string }).latin1Slice;
const CR = 13;
const LF = 10;
/** Empty lines tolerated before a request line. */
const MAX_LEADING_BYTES = 1024;
/** No bytes after the head (shared: never written to). */
const EMPTY = new Uint8Array(0);

export class HeadBuffer {
  private buf: Uint8Array = EMPTY;
  private len = 0;
  /** Next byte to scan. */
  private pos = 0;
  /** Leading empty lines skipped (RFC 9112 §2.2 allows ignoring CRLFs before a request line). */
  private start = 0;
  private leading = true;
  private firstLineEnd = -1;
  private end = -1;
  /** Bytes examined in total (for the unit test that proves each byte is scanned once). */
  scanned = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Uint8Array): HeadState {
    if (this.end >= 0) return "complete";
    this.append(chunk);
    return this.scan();
  }

  private append(chunk: Uint8Array): void {
    if (this.len === 0) {
      // the first chunk is scanned where it is (no copy): it is only read, never written to; a
      // second chunk finds no room in it and moves both into a buffer of our own
      this.buf = chunk;
      this.len = chunk.byteLength;
      return;
    }
    if (this.len + chunk.byteLength > this.buf.byteLength) {
      const grown = new Uint8Array(Math.max(this.len + chunk.byteLength, this.buf.byteLength * 2, 1024));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.byteLength;
  }

  private scan(): HeadState {
    // the position and the flags in locals while scanning (one store per push, not per byte)
    const b = this.buf;
    const len = this.len;
    const limit = this.maxBytes + 4;
    let pos = this.pos;
    let start = this.start;
    let leading = this.leading;
    let state: HeadState = "incomplete";
    const from = pos;
    for (; pos < len; pos++) {
      if (pos - start >= limit || start > MAX_LEADING_BYTES) {
        state = "too-large";
        break;
      }
      const c = b[pos];
      if (c === LF) {
        if (pos === 0 || b[pos - 1] !== CR) {
          state = "bare-lf";
          break;
        }
        if (leading && pos === start + 1) {
          start = pos + 1; // an empty line before the request line
          continue;
        }
        leading = false;
        if (this.firstLineEnd < 0) this.firstLineEnd = pos - 1;
        // CRLF CRLF: the previous line was empty
        if (pos >= start + 3 && b[pos - 2] === LF && b[pos - 3] === CR) {
          this.end = pos - 3;
          state = "complete";
          break;
        }
      } else if (c === CR) {
        if (pos + 1 < len && b[pos + 1] !== LF) {
          state = "bare-cr";
          break;
        }
        if (pos + 1 >= len) break; // decide when the next byte arrives
      } else leading = false;
    }
    // the byte the loop stopped at was looked at too (a CR waiting for its LF is looked at again)
    this.scanned += pos - from + (pos < len ? 1 : 0);
    this.pos = state === "complete" ? pos + 1 : pos;
    this.start = start;
    this.leading = leading;
    return state;
  }

  firstLine(): string | null {
    return this.firstLineEnd < 0 ? null : latin1(this.buf, this.start, this.firstLineEnd);
  }

  /** Size of the head so far (without skipped leading CRLFs). */
  get size(): number {
    return (this.end >= 0 ? this.end : this.len) - this.start;
  }

  head(): string {
    return latin1(this.buf, this.start, this.end);
  }

  /** A copy (the buffer may be the caller's chunk, and a Buffer's `slice` would be a view). */
  rest(): Uint8Array {
    if (this.pos === this.len) return EMPTY;
    const out = new Uint8Array(this.len - this.pos);
    out.set(this.buf.subarray(this.pos, this.len));
    return out;
  }
}

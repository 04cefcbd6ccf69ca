// src/http/body.ts: request bodies read from a fake ByteSource — Content-Length and chunked
// (strict: CRLF only, hex sizes, bounded lines), pipelined bytes put back, discard(), stream().
import { describe, expect, test } from "bun:test";
import { BodyError, BodyReader, type ByteSource } from "../../../src/http/body.ts";
import type { Framing } from "../../../src/http/h1-request.ts";

const enc = (s: string) => Buffer.from(s, "latin1");
const str = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("latin1"));

/** A connection that hands out the given pieces, then end of input; records what was put back. */
class Source implements ByteSource {
  queue: Uint8Array[];
  unshifted: string[] = [];
  timeouts: Array<number | undefined> = [];
  reads = 0;
  constructor(pieces: Array<string | Uint8Array>) {
    this.queue = pieces.map((p) => (typeof p === "string" ? enc(p) : p));
  }
  async read(timeoutMs?: number): Promise<Uint8Array | null> {
    this.reads++;
    this.timeouts.push(timeoutMs);
    return this.queue.shift() ?? null;
  }
  unshift(bytes: Uint8Array): void {
    this.unshifted.push(str(bytes)!);
    this.queue.unshift(bytes);
  }
  /** What is left in the connection. */
  get left(): string {
    return this.queue.map((q) => str(q)).join("");
  }
}

const LENGTH = (n: number): Framing => ({ kind: "length", length: n });
const CHUNKED: Framing = { kind: "chunked" };

async function all(r: BodyReader): Promise<string[]> {
  const out: string[] = [];
  for (let c = await r.next(); c !== null; c = await r.next()) out.push(str(c)!);
  return out;
}

async function failure(pieces: string[], framing: Framing = CHUNKED): Promise<string> {
  const r = new BodyReader(new Source(pieces), framing, 1000);
  try {
    await all(r);
  } catch (e) {
    expect(e).toBeInstanceOf(BodyError);
    return (e as Error).message;
  }
  throw new Error("no error");
}

describe("no body", () => {
  test("framing none: finished at once, next() is null, nothing read", async () => {
    const src = new Source(["GET / HTTP/1.1\r\n"]);
    const r = new BodyReader(src, { kind: "none" }, 1000);
    expect(r.finished).toBe(true);
    expect(await r.next()).toBeNull();
    expect(src.reads).toBe(0);
    expect(await r.discard(0)).toBe(true);
    expect(src.left).toBe("GET / HTTP/1.1\r\n");
  });
});

describe("Content-Length", () => {
  test("split across reads; the bytes past the body go back to the connection (pipelining)", async () => {
    const src = new Source(["hel", "lo wo", "rld!GET / HTTP/1.1\r\n"]);
    const r = new BodyReader(src, LENGTH(11), 1234);
    expect(r.finished).toBe(false);
    expect(await all(r)).toEqual(["hel", "lo wo", "rld"]);
    expect(r.finished).toBe(true);
    expect(r.delivered).toBe(11);
    expect(src.unshifted).toEqual(["!GET / HTTP/1.1\r\n"]);
    expect(src.left).toBe("!GET / HTTP/1.1\r\n");
    expect(await r.next()).toBeNull();
    expect(src.timeouts.every((t) => t === 1234)).toBe(true); // the idle timeout is passed to each read
  });

  test("exactly the body: nothing put back, no extra read", async () => {
    const src = new Source(["abc", "de", "NEXT"]);
    const r = new BodyReader(src, LENGTH(5), 1000);
    expect(await all(r)).toEqual(["abc", "de"]);
    expect(src.reads).toBe(2);
    expect(src.unshifted).toEqual([]);
    expect(src.left).toBe("NEXT");
  });

  test("the client closes before the body ended → BodyError", async () => {
    expect(await failure(["abc"], LENGTH(5))).toBe("client closed the connection before the request body ended");
  });

  test("a read that rejects (idle timeout) propagates", async () => {
    const src: ByteSource = { read: () => Promise.reject(new Error("timeout")), unshift: () => {} };
    await expect(new BodyReader(src, LENGTH(5), 10).next()).rejects.toThrow("timeout");
  });
});

describe("chunked", () => {
  test("sizes in hex (any case), extensions ignored, data split across reads, delivered counts data only", async () => {
    const src = new Source(["5;name=val", 'ue;q="x"\r\nhel', "lo\r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"]);
    const r = new BodyReader(src, CHUNKED, 1000);
    expect((await all(r)).join("")).toBe("hello0123456789abcdefghij");
    expect(r.delivered).toBe(25);
    expect(r.finished).toBe(true);
  });

  test("byte by byte gives the same body", async () => {
    const wire = "3\r\nabc\r\n1;x\r\nd\r\n0\r\nTrailer: 1\r\n\r\nNEXT";
    const src = new Source([...wire].map((c) => c));
    const r = new BodyReader(src, CHUNKED, 1000);
    expect((await all(r)).join("")).toBe("abcd");
    expect(src.left).toBe("NEXT");
  });

  test("trailers are read and dropped; bytes after the body go back to the connection once", async () => {
    const src = new Source(["4\r\nbody\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nGET /next HTTP/1.1\r\n"]);
    const r = new BodyReader(src, CHUNKED, 1000);
    expect(await all(r)).toEqual(["body"]);
    expect(src.unshifted).toEqual(["GET /next HTTP/1.1\r\n"]);
    r.release(); // nothing left to give back
    expect(src.unshifted).toEqual(["GET /next HTTP/1.1\r\n"]);
  });

  test("a large chunk size spanning many reads", async () => {
    const data = "z".repeat(70_000);
    const pieces = ["11170\r\n"];
    for (let i = 0; i < data.length; i += 8192) pieces.push(data.slice(i, i + 8192));
    pieces.push("\r\n0\r\n\r\n");
    const r = new BodyReader(new Source(pieces), CHUNKED, 1000);
    expect((await all(r)).join("")).toBe(data);
    expect(r.delivered).toBe(70_000);
  });

  const bad: Array<[string, string[], string]> = [
    ["bare LF after the size", ["5\nhello\r\n0\r\n\r\n"], "bare LF in chunked encoding"],
    ["bare LF after the data", ["5\r\nhello\n0\r\n\r\n"], "bare LF in chunked encoding"],
    ["bare LF in a trailer", ["0\r\nX: 1\n\r\n"], "bare LF in chunked encoding"],
    ["bare LF ending the trailers", ["0\r\n\n"], "bare LF in chunked encoding"],
    ["an empty size line", ["\r\nhello\r\n"], "malformed chunk size"],
    ["a non-hex size", ["g\r\n"], "malformed chunk size"],
    ["a negative size", ["-1\r\n"], "malformed chunk size"],
    ["a 0x prefix", ["0x5\r\nhello\r\n0\r\n\r\n"], "malformed chunk size"],
    ["a space before the size", [" 5\r\nhello\r\n0\r\n\r\n"], "malformed chunk size"],
    ["a space after the size", ["5 \r\nhello\r\n0\r\n\r\n"], "malformed chunk size"],
    ["a tab before an extension", ["5\t;a\r\nhello\r\n0\r\n\r\n"], "malformed chunk size"],
    ["16 hex digits", [`${"0".repeat(15)}5\r\nhello\r\n0\r\n\r\n`], "malformed chunk size"],
    ["a bare CR in an extension", ["5;a\rb\r\nhello\r\n0\r\n\r\n"], "malformed chunk size"],
    [
      "a size line longer than 4 KiB over several reads",
      ["1;", "x".repeat(3000), "x".repeat(3000)],
      "chunk size line too long",
    ],
    ["data longer than its size", ["5\r\nhelloX\r\n0\r\n\r\n"], "missing CRLF after chunk data"],
    ["CR, then a byte, then LF after the data", ["5\r\nhello\rX\n0\r\n\r\n"], "bare LF in chunked encoding"],
    ["the client closes mid-chunk", ["5\r\nhel"], "client closed the connection before the request body ended"],
    [
      "the client closes before the last chunk",
      ["5\r\nhello\r\n"],
      "client closed the connection before the request body ended",
    ],
    [
      "the client closes in the trailers",
      ["0\r\nX: 1\r\n"],
      "client closed the connection before the request body ended",
    ],
  ];
  for (const [name, pieces, message] of bad) {
    test(`${name} → ${message}`, async () => {
      expect(await failure(pieces)).toBe(message);
    });
  }

  test("data delivered before a framing error is counted", async () => {
    const r = new BodyReader(new Source(["5\r\nhello", "X\r\n"]), CHUNKED, 1000);
    expect(str(await r.next())).toBe("hello");
    await expect(r.next()).rejects.toThrow("missing CRLF after chunk data");
    expect(r.delivered).toBe(5);
  });

  // Found here and fixed (src/http/body.ts line()): the 4 KiB bound on a chunk-size line is checked only
  // while the line is still incomplete after a read, so the same over-long line is refused when it
  // arrives in pieces (the table above) and accepted when one read carries it with its CRLF. Go's
  // chunked reader refuses any line over 4096 bytes (ErrLineTooLong), whatever the segmentation.
  // (Low severity: the body is de-chunked, and one read is bounded by the socket buffer.)
  test("a size line longer than 4 KiB in one read → chunk size line too long", async () => {
    expect(await failure([`1;${"x".repeat(6000)}\r\na\r\n0\r\n\r\n`])).toBe("chunk size line too long");
  });
});

describe("discard", () => {
  test("reads and drops the rest of the body up to the limit; the next request stays", async () => {
    const src = new Source(["abc", "defgh", "NEXT"]);
    const r = new BodyReader(src, LENGTH(8), 1000);
    expect(await r.discard(8)).toBe(true);
    expect(r.finished).toBe(true);
    expect(src.left).toBe("NEXT");
  });

  test("a body longer than the limit: false, so the connection is closed instead", async () => {
    const src = new Source(["abc", "defgh"]);
    expect(await new BodyReader(src, LENGTH(8), 1000).discard(7)).toBe(false);
    expect(await new BodyReader(new Source(["abc", "defgh"]), LENGTH(8), 1000).discard(3)).toBe(false);
  });

  test("after a partial read only the rest counts towards the limit", async () => {
    const r = new BodyReader(new Source(["abc", "defgh"]), LENGTH(8), 1000);
    await r.next();
    expect(await r.discard(5)).toBe(true);
  });

  test("chunked: trailers consumed, pipelined bytes given back", async () => {
    const src = new Source(["3\r\nabc\r\n0\r\nT: 1\r\n\r\nNEXT"]);
    expect(await new BodyReader(src, CHUNKED, 1000).discard(100)).toBe(true);
    expect(src.left).toBe("NEXT");
  });

  test("a framing error while discarding rejects", async () => {
    await expect(new BodyReader(new Source(["zz\r\n"]), CHUNKED, 1000).discard(100)).rejects.toThrow(
      "malformed chunk size",
    );
  });
});

describe("stream()", () => {
  test("pull-based: nothing is read before the consumer asks; the whole body, then the rest goes back", async () => {
    const src = new Source(["2\r\nab\r\n", "2\r\ncd\r\n0\r\n\r\nNEXT"]);
    const errors: unknown[] = [];
    const s = new BodyReader(src, CHUNKED, 1000).stream((e) => errors.push(e));
    await Bun.sleep(1);
    expect(src.reads).toBe(0);
    const reader = s.getReader();
    const first = await reader.read();
    expect(str(first.value!)).toBe("ab");
    const readsAfterFirst = src.reads;
    const rest: string[] = [];
    for (let c = await reader.read(); !c.done; c = await reader.read()) rest.push(str(c.value)!);
    expect(rest).toEqual(["cd"]);
    expect(readsAfterFirst).toBeLessThanOrEqual(2);
    expect(src.left).toBe("NEXT");
    expect(errors).toEqual([]);
  });

  test("Content-Length: the body, and the pipelined bytes go back", async () => {
    const src = new Source(["hello wor", "ldNEXT"]);
    const s = new BodyReader(src, LENGTH(11), 1000).stream(() => {});
    expect(await new Response(s).text()).toBe("hello world");
    expect(src.left).toBe("NEXT");
  });

  test("a framing error calls onError and errors the stream", async () => {
    const errors: unknown[] = [];
    const s = new BodyReader(new Source(["5\r\nhelloX\r\n"]), CHUNKED, 1000).stream((e) => errors.push(e));
    await expect(new Response(s).text()).rejects.toThrow("missing CRLF after chunk data");
    expect(errors.length).toBe(1);
    expect(errors[0]).toBeInstanceOf(BodyError);
  });

  test("no body: an empty stream", async () => {
    expect(await new Response(new BodyReader(new Source([]), { kind: "none" }, 1000).stream(() => {})).text()).toBe("");
  });
});

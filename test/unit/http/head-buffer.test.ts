// src/http/head-buffer.ts: a head accumulated as it arrives, each byte scanned once; CRLF only
// (docs/CONTRACT.md §18.17), leading empty lines skipped (RFC 9112 §2.2), bounded size.
import { describe, expect, test } from "bun:test";
import { HeadBuffer, type HeadState } from "../../../src/http/head-buffer.ts";
import { rng } from "../../helpers/rng.ts";

const enc = (s: string) => Buffer.from(s, "latin1");
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

/** Feed `pieces` in order; the state after each push. */
function feed(hb: HeadBuffer, pieces: Uint8Array[]): HeadState[] {
  return pieces.map((p) => hb.push(p));
}

function randomPieces(bytes: Uint8Array, rand: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.byteLength) {
    const n = 1 + Math.floor(rand() * 9);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

const HEAD = "GET /x?q=1 HTTP/1.1\r\nHost: api.test\r\nX-A: b\r\n";
const BODY = "pipelined GET / HTTP/1.1\r\n";
const MSG = enc(`${HEAD}\r\n${BODY}`);

describe("complete / incomplete", () => {
  test("every split point of a sample head: incomplete before the final CRLF, then the same head and rest", () => {
    // rest() is what arrived past the head up to completion; a push after "complete" is not taken
    const end = HEAD.length + 2; // index just past CRLFCRLF
    for (let cut = 0; cut <= MSG.byteLength; cut++) {
      const hb = new HeadBuffer(1 << 20);
      const first = hb.push(MSG.subarray(0, cut));
      expect(first).toBe(cut >= end ? "complete" : "incomplete");
      const second = hb.push(MSG.subarray(cut));
      expect(second).toBe("complete");
      expect(hb.head()).toBe(HEAD.slice(0, -2));
      expect(text(hb.rest())).toBe(cut >= end ? text(MSG.subarray(end, cut)) : BODY);
    }
  });

  test("byte by byte: 'complete' exactly at the last LF of CRLFCRLF", () => {
    const hb = new HeadBuffer(1 << 20);
    const states = feed(
      hb,
      [...MSG].map((b) => Uint8Array.of(b)),
    );
    const firstComplete = states.indexOf("complete");
    expect(firstComplete).toBe(HEAD.length + 1);
    expect(states.slice(0, firstComplete).every((s) => s === "incomplete")).toBe(true);
    // once complete, further pushes are not scanned and say complete
    expect(states.slice(firstComplete).every((s) => s === "complete")).toBe(true);
    expect(hb.head()).toBe(HEAD.slice(0, -2));
    // bytes pushed after completion are not appended: rest() is what arrived with the final piece
    expect(text(hb.rest())).toBe("");
  });

  test("random pieces (200 seeded runs) give the same head and rest as one push", () => {
    const whole = new HeadBuffer(1 << 20);
    expect(whole.push(MSG)).toBe("complete");
    for (let seed = 1; seed <= 200; seed++) {
      const hb = new HeadBuffer(1 << 20);
      const pieces = randomPieces(MSG, rng(seed));
      let state: HeadState = "incomplete";
      let consumed = 0;
      for (const p of pieces) {
        state = hb.push(p);
        consumed += p.byteLength;
        if (state !== "incomplete") break;
      }
      expect(state).toBe("complete");
      expect(hb.head()).toBe(whole.head());
      // rest() = bytes of the completing piece past the head; the caller keeps the later pieces
      expect(text(hb.rest()) + text(MSG.subarray(consumed))).toBe(BODY);
    }
  });

  test("firstLine: null until the request line's CRLF arrived, then the line without CRLF", () => {
    const hb = new HeadBuffer(1024);
    hb.push(enc("GET / HTTP/1.1\r"));
    expect(hb.firstLine()).toBeNull();
    hb.push(enc("\n"));
    expect(hb.firstLine()).toBe("GET / HTTP/1.1");
    hb.push(enc("Host: a\r\n"));
    expect(hb.firstLine()).toBe("GET / HTTP/1.1");
  });

  test("a head with no header fields (request line + empty line)", () => {
    const hb = new HeadBuffer(1024);
    expect(hb.push(enc("GET / HTTP/1.0\r\n\r\n"))).toBe("complete");
    expect(hb.head()).toBe("GET / HTTP/1.0");
    expect(hb.rest().byteLength).toBe(0);
  });

  test("size: bytes of the head so far, without leading CRLFs; after completion, without CRLFCRLF", () => {
    const hb = new HeadBuffer(1024);
    hb.push(enc("\r\n\r\nGET / HT"));
    expect(hb.size).toBe(8);
    hb.push(enc("TP/1.1\r\n\r\nextra"));
    expect(hb.size).toBe("GET / HTTP/1.1".length);
  });
});

describe("line endings (CRLF only, §18.17)", () => {
  for (const [name, input, want] of [
    ["bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", "bare-lf"],
    ["bare LF ending a field", "GET / HTTP/1.1\r\nHost: a\n\r\n", "bare-lf"],
    ["bare LF inside a value", "GET / HTTP/1.1\r\nX-A: a\nInjected: 1\r\n\r\n", "bare-lf"],
    ["LF LF as the end of the head", "GET / HTTP/1.1\r\nHost: a\n\n", "bare-lf"],
    ["a lone LF as the first byte", "\nGET / HTTP/1.1\r\n\r\n", "bare-lf"],
    ["bare CR inside a value", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", "bare-cr"],
    ["bare CR in the request line", "GET /\r HTTP/1.1\r\n\r\n", "bare-cr"],
    ["CR CR LF", "GET / HTTP/1.1\r\r\n\r\n", "bare-cr"],
    ["a lone CR as the first byte", "\rGET / HTTP/1.1\r\n\r\n", "bare-cr"],
  ] as const) {
    test(`${name} → ${want}`, () => {
      expect(new HeadBuffer(1024).push(enc(input))).toBe(want);
      // the same verdict when the bytes arrive one at a time
      const hb = new HeadBuffer(1024);
      let last: HeadState = "incomplete";
      for (const b of enc(input)) {
        last = hb.push(Uint8Array.of(b));
        if (last !== "incomplete") break;
      }
      expect(last).toBe(want);
    });
  }

  test("a CR at the end of a piece is judged when the next byte arrives", () => {
    const hb = new HeadBuffer(1024);
    expect(hb.push(enc("GET / HTTP/1.1\r\nX-A: a\r"))).toBe("incomplete");
    expect(hb.push(enc("b\r\n\r\n"))).toBe("bare-cr");
    const ok = new HeadBuffer(1024);
    expect(ok.push(enc("GET / HTTP/1.1\r\nX-A: a\r"))).toBe("incomplete");
    expect(ok.push(enc("\n\r\n"))).toBe("complete");
    expect(ok.head()).toBe("GET / HTTP/1.1\r\nX-A: a");
  });

  test("leading empty lines are skipped, not part of the head", () => {
    const hb = new HeadBuffer(1024);
    expect(hb.push(enc("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))).toBe("complete");
    expect(hb.head()).toBe("GET / HTTP/1.1\r\nHost: a");
    expect(hb.firstLine()).toBe("GET / HTTP/1.1");
  });

  test("leading empty lines: at most 1 KiB of them", () => {
    const ok = new HeadBuffer(1 << 20);
    expect(ok.push(enc(`${"\r\n".repeat(512)}GET / HTTP/1.1\r\n\r\n`))).toBe("complete");
    const bad = new HeadBuffer(1 << 20);
    expect(bad.push(enc(`${"\r\n".repeat(513)}GET / HTTP/1.1\r\n\r\n`))).toBe("too-large");
  });

  test("an empty line after the request line started is the end of the head, not a leading line", () => {
    const hb = new HeadBuffer(1024);
    expect(hb.push(enc("G\r\n\r\n"))).toBe("complete");
    expect(hb.head()).toBe("G");
  });
});

describe("too large", () => {
  // maxBytes counts the head without its final CRLFCRLF: a head of exactly maxBytes is accepted.
  const head = (size: number) => {
    const line = "GET / HTTP/1.1\r\nX: ";
    return line + "a".repeat(size - line.length);
  };
  for (const max of [64, 1000, 4096]) {
    test(`max ${max}: a head of exactly ${max} bytes passes, one more byte is too large`, () => {
      const fits = new HeadBuffer(max);
      expect(fits.push(enc(`${head(max)}\r\n\r\n`))).toBe("complete");
      expect(fits.head().length).toBe(max);
      const over = new HeadBuffer(max);
      expect(over.push(enc(`${head(max + 1)}\r\n\r\n`))).toBe("too-large");
      // the same byte by byte, and without waiting for the end of the head
      const drip = new HeadBuffer(max);
      let last: HeadState = "incomplete";
      let n = 0;
      for (const b of enc(head(max + 10))) {
        n++;
        last = drip.push(Uint8Array.of(b));
        if (last !== "incomplete") break;
      }
      expect(last).toBe("too-large");
      expect(n).toBeLessThanOrEqual(max + 5);
    });
  }

  test("leading CRLFs do not count towards the head size", () => {
    const hb = new HeadBuffer(64);
    expect(hb.push(enc(`\r\n\r\n${head(64)}\r\n\r\n`))).toBe("complete");
  });
});

describe("rest()", () => {
  test("the body bytes that came with the head, and a copy (later pushes do not change it)", () => {
    const hb = new HeadBuffer(1024);
    expect(hb.push(enc("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel"))).toBe("complete");
    const r = hb.rest();
    expect(text(r)).toBe("hel");
    hb.push(enc("lo"));
    expect(text(r)).toBe("hel");
  });

  test("binary bytes after the head are kept exactly", () => {
    const hb = new HeadBuffer(1024);
    const tail = Uint8Array.of(0, 13, 10, 255, 10, 13);
    hb.push(Buffer.concat([enc("GET / HTTP/1.1\r\n\r\n"), tail]));
    expect([...hb.rest()]).toEqual([...tail]);
  });
});

describe("each byte is scanned about once (issue 13 item 7)", () => {
  test("a 1 MiB head in 1 KiB pieces: scanned ≤ 1.01 × size", () => {
    const size = 1 << 20;
    const lines: string[] = ["GET / HTTP/1.1"];
    let len = lines[0]!.length;
    for (let i = 0; len < size - 200; i++) {
      const l = `X-F${i}: ${"v".repeat(90)}`;
      lines.push(l);
      len += l.length + 2;
    }
    const bytes = enc(`${lines.join("\r\n")}\r\n\r\n`);
    const hb = new HeadBuffer(size);
    let state: HeadState = "incomplete";
    for (let i = 0; i < bytes.byteLength; i += 1024) state = hb.push(bytes.subarray(i, i + 1024));
    expect(state).toBe("complete");
    expect(hb.scanned).toBeLessThanOrEqual(Math.ceil(bytes.byteLength * 1.01));
    expect(hb.scanned).toBeGreaterThanOrEqual(bytes.byteLength - 1);
  });

  test("byte by byte: only a CR waiting for its LF is looked at twice", () => {
    const bytes = enc(`GET / HTTP/1.1\r\n${"X: a\r\n".repeat(1000)}\r\n`);
    const crs = [...bytes].filter((b) => b === 13).length;
    const hb = new HeadBuffer(1 << 20);
    for (const b of bytes) hb.push(Uint8Array.of(b));
    expect(hb.scanned).toBeLessThanOrEqual(bytes.byteLength + crs);
  });
});

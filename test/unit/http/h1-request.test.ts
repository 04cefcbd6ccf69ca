// src/http/h1-request.ts: strict HTTP/1.1 request heads (RFC 9112; docs/CONTRACT.md §7, §18.17).
// Every smuggling and malformed-input case gets the exact status and reason (the reason picks Go's
// public 400 text in src/http/h1-response.ts errorResponse); the keep-alive rules.
import { describe, expect, test } from "bun:test";
import { type ParseResult, RequestHeadParser, parseRequestHead } from "../../../src/http/h1-request.ts";

const enc = (s: string) => Buffer.from(s, "latin1");

/** One push of the whole input, and the same input byte by byte: both must agree. */
function parse(raw: string, maxBytes = 1 << 20, maxCount = 200): ParseResult {
  const whole = new RequestHeadParser(maxBytes, maxCount).push(enc(raw));
  const p = new RequestHeadParser(maxBytes, maxCount);
  let drip: ParseResult = { kind: "incomplete" };
  for (const b of enc(raw)) {
    drip = p.push(Uint8Array.of(b));
    if (drip.kind !== "incomplete") break;
  }
  const brief = (r: ParseResult) => (r.kind === "ok" ? { kind: "ok", head: r.head } : r);
  expect(brief(drip)).toEqual(brief(whole));
  return whole;
}

const req = (fields: string[], line = "GET / HTTP/1.1") => `${line}\r\n${fields.map((f) => `${f}\r\n`).join("")}\r\n`;

function ok(raw: string) {
  const r = parse(raw);
  if (r.kind !== "ok") throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r.head;
}

type Row = [name: string, raw: string, status: 400 | 431 | 501 | 505, reason: string];

const E = (status: Row[2], reason: string): ParseResult => ({ kind: "error", status, reason });

describe("smuggling: body framing (RFC 9112 §6)", () => {
  const rows: Row[] = [
    [
      "Content-Length and Transfer-Encoding",
      req(["Host: a", "Content-Length: 5", "Transfer-Encoding: chunked"]),
      400,
      "both Transfer-Encoding and Content-Length",
    ],
    [
      "Transfer-Encoding before Content-Length",
      req(["Host: a", "Transfer-Encoding: chunked", "Content-Length: 0"]),
      400,
      "both Transfer-Encoding and Content-Length",
    ],
    [
      "CL+TE in HTTP/1.0",
      req(["Host: a", "Transfer-Encoding: chunked", "Content-Length: 5"], "POST / HTTP/1.0"),
      400,
      "both Transfer-Encoding and Content-Length",
    ],
    [
      "Transfer-Encoding in HTTP/1.0",
      req(["Host: a", "Transfer-Encoding: chunked"], "POST / HTTP/1.0"),
      400,
      "Transfer-Encoding in HTTP/1.0",
    ],
    [
      "two different Content-Length",
      req(["Host: a", "Content-Length: 5", "Content-Length: 6"]),
      400,
      "conflicting Content-Length",
    ],
    [
      "a Content-Length list of two values",
      req(["Host: a", "Content-Length: 5, 6"]),
      400,
      "conflicting Content-Length",
    ],
    [
      "a Content-Length list with an empty member",
      req(["Host: a", "Content-Length: 5,"]),
      400,
      "conflicting Content-Length",
    ],
    ["Content-Length +5", req(["Host: a", "Content-Length: +5"]), 400, "invalid Content-Length"],
    ["Content-Length -1", req(["Host: a", "Content-Length: -1"]), 400, "invalid Content-Length"],
    ["Content-Length 0x5", req(["Host: a", "Content-Length: 0x5"]), 400, "invalid Content-Length"],
    ["Content-Length 1e3", req(["Host: a", "Content-Length: 1e3"]), 400, "invalid Content-Length"],
    ["Content-Length 5 5", req(["Host: a", "Content-Length: 5 5"]), 400, "invalid Content-Length"],
    ["an empty Content-Length", req(["Host: a", "Content-Length:"]), 400, "invalid Content-Length"],
    ["a 16-digit Content-Length", req(["Host: a", `Content-Length: ${"9".repeat(16)}`]), 400, "invalid Content-Length"],
    ['"chunked, gzip"', req(["Host: a", "Transfer-Encoding: chunked, gzip"]), 501, "unsupported transfer encoding"],
    ['"gzip, chunked"', req(["Host: a", "Transfer-Encoding: gzip, chunked"]), 501, "unsupported transfer encoding"],
    [
      '"chunked" twice in one field',
      req(["Host: a", "Transfer-Encoding: chunked, chunked"]),
      501,
      "unsupported transfer encoding",
    ],
    [
      '"chunked" in two fields',
      req(["Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
      501,
      "unsupported transfer encoding",
    ],
    ["identity", req(["Host: a", "Transfer-Encoding: identity"]), 501, "unsupported transfer encoding"],
    ["an empty Transfer-Encoding", req(["Host: a", "Transfer-Encoding:"]), 501, "unsupported transfer encoding"],
    ['"xchunked"', req(["Host: a", "Transfer-Encoding: xchunked"]), 501, "unsupported transfer encoding"],
    [
      "Transfer-Encoding continued by obs-fold",
      req(["Host: a", "Transfer-Encoding: gzip", " chunked"]),
      400,
      "obsolete line folding",
    ],
    [
      "Transfer-Encoding with a space before the colon",
      req(["Host: a", "Transfer-Encoding : chunked"]),
      400,
      "invalid header name",
    ],
    [
      "Transfer-Encoding with a vertical tab",
      req(["Host: a", "Transfer-Encoding: \x0bchunked"]),
      400,
      "invalid header value",
    ],
    ["Content-Length with a NUL", req(["Host: a", "Content-Length: 5\x00"]), 400, "invalid header value"],
  ];
  for (const [name, raw, status, reason] of rows) {
    test(`${name} → ${status} ${reason}`, () => {
      expect(parse(raw)).toEqual(E(status, reason));
    });
  }

  test("accepted framings", () => {
    expect(ok(req(["Host: a"])).framing).toEqual({ kind: "none" });
    expect(ok(req(["Host: a", "Content-Length: 0"])).framing).toEqual({ kind: "none" });
    expect(ok(req(["Host: a", "Content-Length: 5"])).framing).toEqual({ kind: "length", length: 5 });
    expect(ok(req(["Host: a", "Content-Length: 005"])).framing).toEqual({ kind: "length", length: 5 });
    expect(ok(req(["Host: a", "Content-Length: 5", "content-length: 5"])).framing).toEqual({
      kind: "length",
      length: 5,
    });
    expect(ok(req(["Host: a", "Content-Length: 5, 5"])).framing).toEqual({ kind: "length", length: 5 });
    expect(ok(req(["Host: a", `Content-Length: ${"9".repeat(15)}`])).framing).toEqual({
      kind: "length",
      length: 999_999_999_999_999,
    });
    expect(ok(req(["Host: a", "Transfer-Encoding: chunked"])).framing).toEqual({ kind: "chunked" });
    expect(ok(req(["Host: a", "transfer-encoding: Chunked\t"])).framing).toEqual({ kind: "chunked" });
    expect(ok(req(["Host: a", "Transfer-Encoding: chunked,"])).framing).toEqual({ kind: "chunked" });
    expect(ok(req(["Host: a", "Content-Length: 7"], "POST / HTTP/1.0")).framing).toEqual({
      kind: "length",
      length: 7,
    });
  });
});

describe("malformed heads", () => {
  const rows: Row[] = [
    ["two Host fields", req(["Host: a", "Host: a"]), 400, "too many Host headers"],
    ["Host and host", req(["Host: a", "host: b"]), 400, "too many Host headers"],
    ["space before the colon", req(["Host : a"]), 400, "invalid header name"],
    ["tab before the colon", req(["Host\t: a"]), 400, "invalid header name"],
    ["a space inside a name", req(["X A: 1"]), 400, "invalid header name"],
    ["a name with ( )", req(["X(A): 1"]), 400, "invalid header name"],
    ["a name with @", req(["X@: 1"]), 400, "invalid header name"],
    ["a name with a non-ASCII byte", req(["X-\xe9: 1"]), 400, "invalid header name"],
    ["a name with a NUL", req(["X\x00A: 1"]), 400, "invalid header name"],
    ["an empty name", req([": 1"]), 400, "malformed header line"],
    ["a line without a colon", req(["NoColon"]), 400, "malformed header line"],
    ["NUL in a value", req(["X-A: a\x00b"]), 400, "invalid header value"],
    ["DEL in a value", req(["X-A: a\x7fb"]), 400, "invalid header value"],
    ["ESC in a value", req(["X-A: \x1b[31m"]), 400, "invalid header value"],
    ["\\x01 in Host", req(["Host: a\x01.test"]), 400, "invalid header value"],
    ["CR inside a value", req(["X-A: a\rb"]), 400, "bare CR"],
    ["CR inside Host", req(["Host: a\r.test"]), 400, "bare CR"],
    ["LF inside a value (header injection)", req(["X-A: a\nInjected: 1"]), 400, "bare LF line ending"],
    ["obs-fold with a space", req(["X-A: a", " b"]), 400, "obsolete line folding"],
    ["obs-fold with a tab", req(["X-A: a", "\tb"]), 400, "obsolete line folding"],
    ["a first field line starting with a space", req([" Host: a"]), 400, "obsolete line folding"],
    ["bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF line ending"],
    ["bare LF at the end of the head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF line ending"],
    ["HTTP/9.9", req(["Host: a"], "GET / HTTP/9.9"), 505, "unsupported protocol version"],
    ["HTTP/2.0", req(["Host: a"], "GET / HTTP/2.0"), 505, "unsupported protocol version"],
    ["HTTP/1.2", req(["Host: a"], "GET / HTTP/1.2"), 505, "unsupported protocol version"],
    ["HTTP/0.9", req(["Host: a"], "GET / HTTP/0.9"), 505, "unsupported protocol version"],
    ["HTTP/1", req(["Host: a"], "GET / HTTP/1"), 400, "malformed HTTP version"],
    ["http/1.1", req(["Host: a"], "GET / http/1.1"), 400, "malformed HTTP version"],
    ["HTTP/1.10", req(["Host: a"], "GET / HTTP/1.10"), 400, "malformed HTTP version"],
    ["no version (HTTP/0.9 style)", req([], "GET /"), 400, "malformed request line"],
    ["two spaces", req(["Host: a"], "GET  / HTTP/1.1"), 400, "malformed request line"],
    ["a trailing space", req(["Host: a"], "GET / HTTP/1.1 "), 400, "malformed request line"],
    ["tabs as separators", req(["Host: a"], "GET\t/\tHTTP/1.1"), 400, "malformed request line"],
    ["a space in the target", req(["Host: a"], "GET /a b HTTP/1.1"), 400, "malformed request line"],
    ["a control byte in the target", req(["Host: a"], "GET /a\x01 HTTP/1.1"), 400, "malformed request line"],
    ["DEL in the target", req(["Host: a"], "GET /a\x7f HTTP/1.1"), 400, "malformed request line"],
    ["a method with a slash", req(["Host: a"], "GE/T / HTTP/1.1"), 400, "malformed request line"],
    ["an empty method", req(["Host: a"], " / HTTP/1.1"), 400, "malformed request line"],
    ["another protocol's banner", "SSH-2.0-OpenSSH_9.0\r\n", 400, "malformed request line"],
    [
      "a TLS ClientHello sent in cleartext",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
      400,
      "malformed request line",
    ],
  ];
  for (const [name, raw, status, reason] of rows) {
    test(`${name} → ${status} ${reason}`, () => {
      expect(parse(raw)).toEqual(E(status, reason));
    });
  }

  test("a bad request line fails as soon as its CRLF arrives, before the end of the head", () => {
    const p = new RequestHeadParser(1 << 20, 200);
    expect(p.push(enc("SSH-2.0-OpenSSH_9.0"))).toEqual({ kind: "incomplete" });
    expect(p.push(enc("\r\n"))).toEqual(E(400, "malformed request line"));
    expect(new RequestHeadParser(1 << 20, 200).push(enc("GET / HTTP/9.9\r\n"))).toEqual(
      E(505, "unsupported protocol version"),
    );
  });

  test("PRI * HTTP/2.0 is the HTTP/2 preface, recognised from its first line", () => {
    expect(parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).toEqual({ kind: "h2-preface" });
    expect(new RequestHeadParser(1 << 20, 200).push(enc("PRI * HTTP/2.0\r\n"))).toEqual({ kind: "h2-preface" });
    // a complete head handed to parseRequestHead is never a preface: a plain 400
    expect(parseRequestHead("PRI * HTTP/2.0", 200) as ParseResult).toEqual(E(400, "malformed request line"));
    // only the exact line
    expect(parse(req([], "PRI * HTTP/2.1"))).toEqual(E(505, "unsupported protocol version"));
  });

  test("too many header fields → 431; exactly the limit passes", () => {
    const fields = (n: number) => ["Host: a", ...Array.from({ length: n - 1 }, (_, i) => `X-F${i}: ${i}`)];
    expect(parse(req(fields(200)), 1 << 20, 200).kind).toBe("ok");
    expect(parse(req(fields(201)), 1 << 20, 200)).toEqual(E(431, "too many header fields"));
    expect(parse(req(fields(5000)), 1 << 20, 200)).toEqual(E(431, "too many header fields"));
    expect(parse(req(fields(3)), 1 << 20, 2)).toEqual(E(431, "too many header fields"));
  });

  test("a head larger than the limit → 431, before its end arrives", () => {
    const big = req(["Host: a", `X-Big: ${"a".repeat(2000)}`]);
    expect(parse(big, 1000)).toEqual(E(431, "request head too large"));
    const p = new RequestHeadParser(1000, 200);
    expect(p.push(enc(`GET / HTTP/1.1\r\nX: ${"a".repeat(1100)}`))).toEqual(E(431, "request head too large"));
    expect(parse(big, big.length - 4).kind).toBe("ok");
  });
});

describe("what is accepted, and how it is read", () => {
  test("fields in wire order, names as written, values trimmed of SP/HTAB; latin1 bytes and HTAB kept", () => {
    const h = ok(req(["host: api.test", "X-A:   v 1 \t", "x-a: second", "X-Empty:", "X-Lat: caf\xe9\tx"]));
    expect(h).toEqual({
      method: "GET",
      target: "/",
      version: "HTTP/1.1",
      headers: [
        ["host", "api.test"],
        ["X-A", "v 1"],
        ["x-a", "second"],
        ["X-Empty", ""],
        ["X-Lat", "caf\xe9\tx"],
      ],
      framing: { kind: "none" },
      keepAlive: true,
      known: { host: "api.test", clefService: undefined, upgrade: undefined, traceparent: undefined },
    });
  });

  test("values trimmed exactly as /^[ \\t]+|[ \\t]+$/ would, whatever mix of SP, HTAB and text (pseudo-random)", () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const alphabet = [" ", "\t", "a", "b", " ", "\t", "\xe9"];
    for (let i = 0; i < 2000; i++) {
      let v = "";
      for (let n = rnd(7); n > 0; n--) v += alphabet[rnd(alphabet.length)];
      const h = ok(req(["Host: a", `X-V:${v}`]));
      expect(h.headers[1]).toEqual(["X-V", v.replace(/^[ \t]+|[ \t]+$/g, "")]);
    }
  });

  test("a head that arrives in one chunk is read from it without changing it; rest is a copy", () => {
    const bytes = enc(`${req(["Host: a", "Content-Length: 2"], "POST / HTTP/1.1")}hi`);
    const before = Buffer.from(bytes);
    const r = new RequestHeadParser(1 << 20, 200).push(bytes);
    expect(Buffer.from(bytes).equals(before)).toBe(true);
    expect(r.kind === "ok" && r.rest.buffer).not.toBe(bytes.buffer);
  });

  test('a missing Host is left to the decision (denied there as host "")', () => {
    expect(ok(req([])).headers).toEqual([]);
    expect(ok(req([], "GET / HTTP/1.0")).headers).toEqual([]);
  });

  test("methods are tokens of any case: lower-case and unknown ones parse (decide answers 501)", () => {
    expect(ok(req(["Host: a"], "get / HTTP/1.1")).method).toBe("get");
    expect(ok(req(["Host: a"], "BREW / HTTP/1.1")).method).toBe("BREW");
    expect(ok(req(["Host: a"], "M-SEARCH * HTTP/1.1")).target).toBe("*");
  });

  test("targets are taken as written (decide judges their form)", () => {
    for (const t of ["/x?q=1", "*", "http://a.test/x", "@evil.test/x", "//x", "/caf\xe9", "/a#b"])
      expect(ok(req(["Host: a"], `GET ${t} HTTP/1.1`)).target).toBe(t);
  });

  test("leading empty lines before the request line are ignored (RFC 9112 §2.2)", () => {
    expect(ok(`\r\n\r\n${req(["Host: a"])}`).method).toBe("GET");
  });

  test("rest: the bytes after the head (a body or a pipelined request)", () => {
    const r = new RequestHeadParser(1 << 20, 200).push(
      enc(`${req(["Host: a", "Content-Length: 2"], "POST / HTTP/1.1")}hiGET / HTTP/1.1\r\n`),
    );
    expect(r.kind).toBe("ok");
    if (r.kind === "ok") expect(Buffer.from(r.rest).toString("latin1")).toBe("hiGET / HTTP/1.1\r\n");
  });

  test("incomplete until the empty line; size counts what arrived", () => {
    const p = new RequestHeadParser(1 << 20, 200);
    expect(p.push(enc("GET / HTTP/1.1\r\nHost: a\r\n"))).toEqual({ kind: "incomplete" });
    expect(p.size).toBe(25);
    expect(p.push(enc("\r\n")).kind).toBe("ok");
  });

  test("parseRequestHead on a complete head gives the same answers as the parser", () => {
    const raw = req(["Host: a", "Content-Length: 5", "Content-Length: 6"]);
    expect(parseRequestHead(raw.slice(0, -4), 200)).toEqual(parse(raw) as never);
    const good = req(["Host: a", "Connection: close"]);
    const r = parse(good);
    expect(r.kind === "ok" && parseRequestHead(good.slice(0, -4), 200)).toEqual({
      kind: "ok",
      head: r.kind === "ok" ? r.head : (undefined as never),
    });
  });
});

describe("keep-alive (RFC 9112 §9.3)", () => {
  const rows: Array<[string, string[], boolean]> = [
    ["HTTP/1.1", [], true],
    ["HTTP/1.1", ["Connection: close"], false],
    ["HTTP/1.1", ["Connection: Close"], false],
    ["HTTP/1.1", ["Connection: keep-alive, close"], false],
    ["HTTP/1.1", ["Connection:  X-Hop ,close "], false],
    ["HTTP/1.1", ["Connection: x-hop", "connection: close"], false],
    ["HTTP/1.1", ["Connection: keep-alive"], true],
    ["HTTP/1.1", ["Connection: closed"], true],
    ["HTTP/1.1", ["Connection: upgrade"], true],
    ["HTTP/1.1", ["Proxy-Connection: close"], true],
    ["HTTP/1.0", [], false],
    ["HTTP/1.0", ["Connection: keep-alive"], true],
    ["HTTP/1.0", ["Connection: Keep-Alive"], true],
    ["HTTP/1.0", ["Connection: x, keep-alive"], true],
    ["HTTP/1.0", ["Connection: close"], false],
    ["HTTP/1.0", ["Keep-Alive: timeout=5"], false],
  ];
  for (const [version, fields, want] of rows) {
    test(`${version} ${JSON.stringify(fields)} → ${want ? "keep-alive" : "close"}`, () => {
      expect(ok(req(["Host: a", ...fields], `GET / ${version}`)).keepAlive).toBe(want);
    });
  }

  // Found here and fixed: for HTTP/1.0, `close` must win over `keep-alive` (RFC 9112 §9.3: "If the close
  // connection option is present, the connection will not persist"; Go's shouldClose does the same).
  // parseRequestHead reads HTTP/1.0 as `conn.includes("keep-alive")` without looking for `close`.
  test("HTTP/1.0 with both keep-alive and close → close", () => {
    expect(ok(req(["Host: a", "Connection: keep-alive, close"], "GET / HTTP/1.0")).keepAlive).toBe(false);
  });
});

// The head is read as ISO-8859-1 — each byte its own code point — not as TextDecoder's "latin1"
// (windows-1252), which maps 27 of the bytes 0x80–0x9F to other characters (0x80 → U+20AC).
describe("bytes 0x80–0xFF are characters of their own code point", () => {
  const high = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x80 + i)).join("");
  test("in a field value (obs-text): every byte comes back as itself", () => {
    const head = ok(req(["Host: a", `X-Obs: a${high}z`]));
    expect(head.headers[1]).toEqual(["X-Obs", `a${high}z`]);
    for (let i = 0; i < high.length; i++) expect(head.headers[1]![1].charCodeAt(i + 1)).toBe(0x80 + i);
  });
  test("in the request-target: accepted, every byte as itself (0x80–0x9F too)", () => {
    const head = ok(req(["Host: a"], `GET /p${high} HTTP/1.1`));
    expect(head.target).toBe(`/p${high}`);
  });
});

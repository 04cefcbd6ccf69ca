// Strict HTTP/1.1 request-head parsing (RFC 9112), used on the listener and inside tunnels alike
// (docs/CONTRACT.md §7, §18.17): CRLF line endings only, no obs-fold, token field names, no CTLs in
// values, one Host, unambiguous body framing. Anything else is an error status, never a guess.
import { HeadBuffer } from "./head-buffer.ts";
import { type Headers, TOKEN } from "./headers.ts";

export type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

export interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: Headers;
  framing: Framing;
  /** Connection persists after this request (HTTP/1.1 without close, or 1.0 with keep-alive). */
  keepAlive: boolean;
  /**
   * The first value of the fields every request is asked for (`getHeader(headers, name)` for each),
   * noted by the parser in its one pass over the fields: the data path does not search for them.
   */
  known: KnownFields;
}

export interface KnownFields {
  host: string | undefined;
  clefService: string | undefined;
  upgrade: string | undefined;
  traceparent: string | undefined;
}

export type ParseError = { kind: "error"; status: 400 | 431 | 501 | 505; reason: string };

export type ParseResult =
  | { kind: "incomplete" }
  | ParseError
  /** `PRI * HTTP/2.0`: an HTTP/2 prior-knowledge preface (answered 407 + close, docs/CONTRACT.md §7). */
  | { kind: "h2-preface" }
  | { kind: "ok"; head: RequestHead; rest: Uint8Array };

// The character classes of a head, one table lookup per character (the head is latin1-decoded: every
// code is below 256): tchar (RFC 9110 §5.6.2), a request-target's visible bytes (no SP or CTL), the
// bytes a field value must not hold (CTLs but HTAB).
const TCHAR = 1;
const TARGET_CHAR = 2;
const BAD_VALUE_CHAR = 4;
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  if (TOKEN.test(String.fromCharCode(c))) CLASS[c]! |= TCHAR;
  if ((c >= 0x21 && c <= 0x7e) || c >= 0x80) CLASS[c]! |= TARGET_CHAR;
  if (c <= 0x08 || (c >= 0x0a && c <= 0x1f) || c === 0x7f) CLASS[c]! |= BAD_VALUE_CHAR;
}

/** s[from, to) is not empty and every character of it has the class. */
function allOf(s: string, from: number, to: number, cls: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) if (((CLASS[s.charCodeAt(i)] ?? 0) & cls) === 0) return false;
  return true;
}

const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const isOws = (c: number) => c === 0x20 || c === 0x09;

/** A field name equals `lower` (a lower-case name of letters and hyphens), in any case. */
function nameIs(s: string, from: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((s.charCodeAt(from + i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

type RequestLine = { method: string; target: string; version: "HTTP/1.0" | "HTTP/1.1" };

/**
 * The request line s[from, to)'s three parts, or why it is none (`method SP target SP version`,
 * nothing else).
 */
function readRequestLine(s: string, from: number, to: number): RequestLine | ParseError | { kind: "h2-preface" } {
  if (to - from === 14 && s.startsWith("PRI * HTTP/2.0", from)) return { kind: "h2-preface" };
  const sp1 = s.indexOf(" ", from);
  const sp2 = sp1 < 0 || sp1 >= to ? -1 : s.indexOf(" ", sp1 + 1);
  // exactly two spaces
  if (sp2 < 0 || sp2 >= to || s.lastIndexOf(" ", to - 1) > sp2)
    return { kind: "error", status: 400, reason: "malformed request line" };
  if (!allOf(s, from, sp1, TCHAR) || !allOf(s, sp1 + 1, sp2, TARGET_CHAR))
    return { kind: "error", status: 400, reason: "malformed request line" };
  // HTTP/1.1 or HTTP/1.0 read without slicing them out; any other version is sliced to be judged
  let version: RequestLine["version"] | null = null;
  if (to - sp2 === 9 && s.startsWith("HTTP/1.", sp2 + 1)) {
    const minor = s.charCodeAt(to - 1);
    version = minor === 0x31 ? "HTTP/1.1" : minor === 0x30 ? "HTTP/1.0" : null;
  }
  if (version === null) {
    if (!/^HTTP\/\d\.\d$/.test(s.slice(sp2 + 1, to)))
      return { kind: "error", status: 400, reason: "malformed HTTP version" };
    return { kind: "error", status: 505, reason: "unsupported protocol version" };
  }
  return { method: s.slice(from, sp1), target: s.slice(sp1 + 1, sp2), version };
}

/**
 * One request head, fed chunk by chunk (each byte scanned once, see ./head-buffer.ts). A complete
 * first line that is no request line (another protocol's banner) fails at once, not after the head
 * timeout.
 */
export class RequestHeadParser {
  private readonly hb: HeadBuffer;
  private checkedFirstLine = false;

  constructor(
    maxBytes: number,
    private readonly maxCount: number,
  ) {
    this.hb = new HeadBuffer(maxBytes);
  }

  /** Bytes of the head received so far. */
  get size(): number {
    return this.hb.size;
  }

  push(chunk: Uint8Array): ParseResult {
    const state = this.hb.push(chunk);
    if (state === "bare-lf") return { kind: "error", status: 400, reason: "bare LF line ending" };
    if (state === "bare-cr") return { kind: "error", status: 400, reason: "bare CR" };
    if (state === "too-large") return { kind: "error", status: 431, reason: "request head too large" };
    if (state === "complete") {
      // the whole head at once: its request line is read with it (a preface is answered as such)
      const parsed = parseHead(this.hb.head(), this.maxCount);
      if (parsed.kind !== "ok") return parsed;
      return { kind: "ok", head: parsed.head, rest: this.hb.rest() };
    }
    // The request line is checked as soon as it is complete: a banner fails at once.
    if (!this.checkedFirstLine) {
      const first = this.hb.firstLine();
      if (first !== null) {
        this.checkedFirstLine = true;
        const rl = readRequestLine(first, 0, first.length);
        if ("kind" in rl) return rl;
      }
    }
    return { kind: "incomplete" };
  }
}

/** Parse a complete head (without its final CRLFCRLF): a request head, or the error to answer. */
export function parseRequestHead(text: string, maxCount: number): ParseError | { kind: "ok"; head: RequestHead } {
  const parsed = parseHead(text, maxCount);
  return parsed.kind === "h2-preface" ? { kind: "error", status: 400, reason: "malformed request line" } : parsed;
}

/**
 * One pass over the field lines by character codes (no regular expression, no line array): each name
 * and value is sliced once, and the fields that decide framing and persistence are noted on the way.
 */
function parseHead(
  text: string,
  maxCount: number,
): ParseError | { kind: "h2-preface" } | { kind: "ok"; head: RequestHead } {
  let eol = text.indexOf("\r\n");
  if (eol < 0) eol = text.length;
  const rl = readRequestLine(text, 0, eol);
  if ("kind" in rl) return rl;
  const { method, target, version } = rl;
  const headers: Headers = [];
  let hosts = 0;
  let te: string[] | null = null;
  let cl: string[] | null = null;
  let connection: string[] | null = null;
  // every key from the start: one object shape for every head
  const known: KnownFields = { host: undefined, clefService: undefined, upgrade: undefined, traceparent: undefined };
  const n = text.length;
  for (let start = eol + 2; start <= n; ) {
    // one scan of the line: the name up to the first colon (tchar only), the value up to CRLF (no CTL
    // but HTAB); a CR without its LF is a character like any other (the value's error)
    let pos = start;
    let colon = -1;
    let badName = false;
    let badValue = false;
    for (; pos < n; pos++) {
      const c = text.charCodeAt(pos);
      if (c === COLON) {
        colon = pos;
        break;
      }
      if (c === CR && text.charCodeAt(pos + 1) === LF) break;
      if (((CLASS[c] ?? 0) & TCHAR) === 0) badName = true;
    }
    if (colon >= 0)
      for (pos = colon + 1; pos < n; pos++) {
        const c = text.charCodeAt(pos);
        if (c === CR && text.charCodeAt(pos + 1) === LF) break;
        if (((CLASS[c] ?? 0) & BAD_VALUE_CHAR) !== 0) badValue = true;
      }
    const end = pos;
    const bad: ParseError | null =
      start < end && isOws(text.charCodeAt(start))
        ? { kind: "error", status: 400, reason: "obsolete line folding" }
        : colon <= start
          ? { kind: "error", status: 400, reason: "malformed header line" }
          : badName
            ? { kind: "error", status: 400, reason: "invalid header name" }
            : badValue
              ? { kind: "error", status: 400, reason: "invalid header value" }
              : null;
    if (bad !== null || headers.length === maxCount) {
      // too many fields is the answer whatever else is wrong (counted before any field is read)
      if (fieldCount(text, start) + headers.length > maxCount)
        return { kind: "error", status: 431, reason: "too many header fields" };
      if (bad !== null) return bad;
    }
    let vs = colon + 1;
    let ve = end;
    while (vs < ve && isOws(text.charCodeAt(vs))) vs++;
    while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--;
    const name = text.slice(start, colon);
    const value = text.slice(vs, ve);
    headers.push([name, value]);
    switch (colon - start) {
      case 4:
        if (nameIs(text, start, "host") && hosts++ === 0) known.host = value;
        break;
      case 7:
        if (nameIs(text, start, "upgrade")) known.upgrade ??= value;
        break;
      case 10:
        if (nameIs(text, start, "connection")) (connection ??= []).push(value);
        break;
      case 11:
        if (nameIs(text, start, "traceparent")) known.traceparent ??= value;
        break;
      case 14:
        if (nameIs(text, start, "content-length")) (cl ??= []).push(value);
        else if (nameIs(text, start, "x-clef-service")) known.clefService ??= value;
        break;
      case 17:
        if (nameIs(text, start, "transfer-encoding")) (te ??= []).push(value);
        break;
    }
    start = end + 2;
  }
  // A missing Host (RFC 9112 §3.2 says 400) is left to the decision: the reference denies it as host "".
  if (hosts > 1) return { kind: "error", status: 400, reason: "too many Host headers" };
  const framing = te === null && cl === null ? NO_BODY : bodyFraming(te ?? [], cl ?? [], version);
  if ("status" in framing) return framing;
  const keepAlive = keepsAlive(connection ?? [], version);
  return { kind: "ok", head: { method, target, version, headers, framing, keepAlive, known } };
}

/** Whether the connection persists after a request with these Connection values (none: the version's default). */
export function keepsAlive(connection: string[], version: string): boolean {
  if (connection.length === 0) return version === "HTTP/1.1";
  const conn = connection
    .join(",")
    .toLowerCase()
    .split(",")
    .map((x) => x.trim());
  return !conn.includes("close") && (version === "HTTP/1.1" || conn.includes("keep-alive"));
}

const NO_BODY: Framing = Object.freeze({ kind: "none" });

/** Field lines from text[start] to the end. */
function fieldCount(text: string, start: number): number {
  let n = 1;
  for (let i = text.indexOf("\r\n", start); i >= 0; i = text.indexOf("\r\n", i + 2)) n++;
  return n;
}

/** RFC 9112 §6: unambiguous body framing or an error. */
export function bodyFraming(te: string[], cl: string[], version: string): Framing | ParseError {
  if (te.length > 0) {
    if (cl.length > 0) return { kind: "error", status: 400, reason: "both Transfer-Encoding and Content-Length" };
    if (version === "HTTP/1.0") return { kind: "error", status: 400, reason: "Transfer-Encoding in HTTP/1.0" };
    const codings = te
      .join(",")
      .split(",")
      .map((x) => x.trim().toLowerCase())
      .filter((x) => x !== "");
    if (codings.length !== 1 || codings[0] !== "chunked")
      return { kind: "error", status: 501, reason: "unsupported transfer encoding" };
    return { kind: "chunked" };
  }
  if (cl.length === 0) return { kind: "none" };
  const values = new Set(
    cl
      .join(",")
      .split(",")
      .map((x) => x.trim()),
  );
  if (values.size !== 1) return { kind: "error", status: 400, reason: "conflicting Content-Length" };
  const v = [...values][0]!;
  if (!/^\d{1,15}$/.test(v)) return { kind: "error", status: 400, reason: "invalid Content-Length" };
  const n = Number(v);
  return n > 0 ? { kind: "length", length: n } : { kind: "none" };
}

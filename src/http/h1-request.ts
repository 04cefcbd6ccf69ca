// Strict HTTP/1.1 request-head parsing (RFC 9112), used on the listener and inside tunnels alike
// (docs/CONTRACT.md §7, §18.17): CRLF line endings only, no obs-fold, token field names, no CTLs in
// values, one Host, unambiguous body framing. Anything else is an error status, never a guess.
import { HeadBuffer } from "./head-buffer.ts";
import type { Headers } from "./headers.ts";

export type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

export interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.0" | "HTTP/1.1";
  headers: Headers;
  framing: Framing;
  /** Connection persists after this request (HTTP/1.1 without close, or 1.0 with keep-alive). */
  keepAlive: boolean;
}

export type ParseError = { kind: "error"; status: 400 | 431 | 501 | 505; reason: string };

export type ParseResult =
  | { kind: "incomplete" }
  | ParseError
  /** `PRI * HTTP/2.0`: an HTTP/2 prior-knowledge preface (answered 407 + close, docs/CONTRACT.md §7). */
  | { kind: "h2-preface" }
  | { kind: "ok"; head: RequestHead; rest: Uint8Array };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;

function requestLineError(line: string): ParseError | { kind: "h2-preface" } | null {
  if (line === "PRI * HTTP/2.0") return { kind: "h2-preface" };
  const rl = line.split(" ");
  if (rl.length !== 3) return { kind: "error", status: 400, reason: "malformed request line" };
  const [method, target, version] = rl as [string, string, string];
  if (!TOKEN.test(method) || !TARGET.test(target))
    return { kind: "error", status: 400, reason: "malformed request line" };
  if (!/^HTTP\/\d\.\d$/.test(version)) return { kind: "error", status: 400, reason: "malformed HTTP version" };
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0")
    return { kind: "error", status: 505, reason: "unsupported protocol version" };
  return null;
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
    // The request line is checked once, as soon as it is complete (a banner fails at once); a head
    // that arrived whole is decoded once for both.
    const text = state === "complete" ? this.hb.head() : null;
    if (!this.checkedFirstLine) {
      const first = text !== null ? firstLineOf(text) : this.hb.firstLine();
      if (first !== null) {
        this.checkedFirstLine = true;
        const bad = requestLineError(first);
        if (bad) return bad;
      }
    }
    if (text === null) return { kind: "incomplete" };
    const parsed = parseRequestHead(text, this.maxCount, true);
    if (parsed.kind !== "ok") return parsed;
    return { kind: "ok", head: parsed.head, rest: this.hb.rest() };
  }
}

function firstLineOf(text: string): string {
  const i = text.indexOf("\r\n");
  return i < 0 ? text : text.slice(0, i);
}

/**
 * Parse a complete head (without its final CRLFCRLF). `lineChecked`: the caller already had the
 * request line pass `requestLineError` (RequestHeadParser), so it is not checked twice.
 */
export function parseRequestHead(
  text: string,
  maxCount: number,
  lineChecked = false,
): ParseError | { kind: "ok"; head: RequestHead } {
  const lines = text.split("\r\n");
  const rlError = lineChecked ? null : requestLineError(lines[0]!);
  if (rlError)
    return rlError.kind === "h2-preface" ? { kind: "error", status: 400, reason: "malformed request line" } : rlError;
  const [method, target, version] = lines[0]!.split(" ") as [string, string, "HTTP/1.0" | "HTTP/1.1"];
  if (lines.length - 1 > maxCount) return { kind: "error", status: 431, reason: "too many header fields" };
  const headers: Headers = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith(" ") || l.startsWith("\t")) return { kind: "error", status: 400, reason: "obsolete line folding" };
    const c = l.indexOf(":");
    if (c <= 0) return { kind: "error", status: 400, reason: "malformed header line" };
    const name = l.slice(0, c);
    if (!TOKEN.test(name)) return { kind: "error", status: 400, reason: "invalid header name" };
    const value = trimOws(l.slice(c + 1));
    if (BAD_VALUE.test(value)) return { kind: "error", status: 400, reason: "invalid header value" };
    headers.push([name, value]);
  }
  // the fields that decide framing and persistence, in one pass over the lower-cased names
  let hosts = 0;
  const te: string[] = [];
  const cl: string[] = [];
  const connection: string[] = [];
  for (let i = 0; i < headers.length; i++) {
    const [k, v] = headers[i]!;
    switch (k.length) {
      case 4:
        if (k.toLowerCase() === "host") hosts++;
        break;
      case 10:
        if (k.toLowerCase() === "connection") connection.push(v);
        break;
      case 14:
        if (k.toLowerCase() === "content-length") cl.push(v);
        break;
      case 17:
        if (k.toLowerCase() === "transfer-encoding") te.push(v);
        break;
    }
  }
  // A missing Host (RFC 9112 §3.2 says 400) is left to the decision: the reference denies it as host "".
  if (hosts > 1) return { kind: "error", status: 400, reason: "too many Host headers" };
  const framing = bodyFraming(te, cl, version);
  if ("status" in framing) return framing;
  let keepAlive = version === "HTTP/1.1"; // no Connection field: the version's default
  if (connection.length > 0) {
    const conn = connection
      .join(",")
      .toLowerCase()
      .split(",")
      .map((x) => x.trim());
    keepAlive = !conn.includes("close") && (version === "HTTP/1.1" || conn.includes("keep-alive"));
  }
  return { kind: "ok", head: { method, target, version, headers, framing, keepAlive } };
}

const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

/** A field value without leading and trailing SP/HTAB; the usual `name: value` (one SP) without a regex. */
function trimOws(v: string): string {
  const n = v.length;
  if (n === 0) return v;
  const last = v.charCodeAt(n - 1);
  if (last === 0x20 || last === 0x09) return v.replace(OWS_EDGES, "");
  const first = v.charCodeAt(0);
  if (first !== 0x20 && first !== 0x09) return v;
  if (n === 1) return "";
  const second = v.charCodeAt(1);
  return second === 0x20 || second === 0x09 ? v.replace(OWS_EDGES, "") : v.slice(1);
}

/** RFC 9112 §6: unambiguous body framing or an error. */
function bodyFraming(te: string[], cl: string[], version: string): Framing | ParseError {
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

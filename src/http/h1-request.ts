// Strict HTTP/1.1 request-head parsing (RFC 9112), used on the listener and inside tunnels alike
// (docs/CONTRACT.md §7, §18.17): CRLF line endings only, no obs-fold, token field names, no CTLs in
// values, one Host, unambiguous body framing. Anything else is an error status, never a guess.
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

export type ParseResult =
  | { kind: "incomplete" }
  | { kind: "error"; status: 400 | 431 | 501 | 505; reason: string }
  | { kind: "ok"; head: RequestHead; consumed: number };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const decoder = new TextDecoder("latin1");

function requestLineError(line: string): { kind: "error"; status: 400 | 505; reason: string } | null {
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

export function parseHead(buf: Uint8Array, maxBytes: number, maxCount: number): ParseResult {
  // Skip leading CRLFs (RFC 9112 §2.2 allows ignoring them).
  let start = 0;
  while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
  const window = buf.subarray(start, Math.min(buf.length, start + maxBytes + 4));
  const s = decoder.decode(window);
  const end = s.indexOf("\r\n\r\n");
  if (end < 0) {
    if (/(^|[^\r])\n/.test(s)) return { kind: "error", status: 400, reason: "bare LF line ending" };
    if (/\r[^\n]/.test(s)) return { kind: "error", status: 400, reason: "bare CR" };
    if (s.length > maxBytes) return { kind: "error", status: 431, reason: "request head too large" };
    // A complete first line that is no request line (e.g. another protocol's banner) fails now,
    // not after the head timeout.
    const nl = s.indexOf("\r\n");
    if (nl >= 0) {
      const bad = requestLineError(s.slice(0, nl));
      if (bad) return bad;
    }
    return { kind: "incomplete" };
  }
  if (end > maxBytes) return { kind: "error", status: 431, reason: "request head too large" };
  const lines = s.slice(0, end).split("\r\n");
  for (const l of lines)
    if (l.includes("\n") || l.includes("\r")) return { kind: "error", status: 400, reason: "bare CR or LF" };
  const rlError = requestLineError(lines[0]!);
  if (rlError) return rlError;
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
    const value = l.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) return { kind: "error", status: 400, reason: "invalid header value" };
    headers.push([name, value]);
  }
  const get = (n: string) => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  if (get("host").length > 1) return { kind: "error", status: 400, reason: "too many Host headers" };
  if (version === "HTTP/1.1" && get("host").length === 0 && method !== "CONNECT") {
    // RFC 9112 §3.2 says 400; the reference forwards it as host "" and denies (403). Keep that.
  }
  const te = get("transfer-encoding");
  const cl = get("content-length");
  let framing: Framing = { kind: "none" };
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
    framing = { kind: "chunked" };
  } else if (cl.length > 0) {
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
    if (n > 0) framing = { kind: "length", length: n };
  }
  const conn = get("connection")
    .join(",")
    .toLowerCase()
    .split(",")
    .map((x) => x.trim());
  const keepAlive = version === "HTTP/1.1" ? !conn.includes("close") : conn.includes("keep-alive");
  return {
    kind: "ok",
    head: { method, target, version, headers, framing, keepAlive },
    consumed: start + Buffer.byteLength(s.slice(0, end + 4), "latin1"),
  };
}

/**
 * Go net/http's plain-text error answers, byte for byte: only the reasons Go reports publicly
 * (its `badRequestError`s and the unsupported version) appear, in the status line and the body;
 * every other parse failure is a bare `400 Bad Request`.
 */
const GO_PUBLIC_400 = new Set([
  "too many Host headers",
  "malformed Host header",
  "missing required Host header",
  "invalid header name",
  "invalid header value",
]);
const ERROR_HEADERS = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n";

export function errorResponse(status: 400 | 431 | 501 | 505, reason: string): string {
  if (status === 501) return `HTTP/1.1 501 Not Implemented${ERROR_HEADERS}Unsupported transfer encoding`;
  if (status === 431)
    return `HTTP/1.1 431 Request Header Fields Too Large${ERROR_HEADERS}431 Request Header Fields Too Large`;
  const text =
    status === 505
      ? "505 HTTP Version Not Supported: unsupported protocol version"
      : GO_PUBLIC_400.has(reason)
        ? `400 Bad Request: ${reason}`
        : "400 Bad Request";
  return `HTTP/1.1 ${text}${ERROR_HEADERS}${text}`;
}

// Writing HTTP/1.1 responses to the workload (docs/CONTRACT.md §7, §10, §18.7, §18.8): the proxy's
// own answers (complete, small, with Date and Content-Length) and upstream responses (status and
// headers as the upstream sent them minus hop-by-hop fields, correct framing, bodies streamed with
// back-pressure). Nothing here knows about sockets: output goes to a `ByteSink`.
import { httpDate } from "./date.ts";
import { memoize } from "../memo.ts";
import { canonicalHeaderName } from "./headers.ts";
import { RESPONSE_HOP_BY_HOP } from "./hop-by-hop.ts";
import { STATUS_TEXT } from "./status.ts";

export interface ByteSink {
  /** Resolves when the bytes were taken (back-pressure); rejects when the peer is gone. */
  write(data: Uint8Array | string): Promise<void>;
}

export function statusLine(status: number, text?: string): string {
  return `HTTP/1.1 ${status} ${text || STATUS_TEXT[status] || `status code ${status}`}\r\n`;
}

/** A complete response the proxy writes itself: `headers`, Date, Content-Length, [Connection: close]. */
export function simpleResponse(
  status: number,
  headers: Array<[string, string]>,
  body: string,
  announceClose: boolean,
): string {
  let head = statusLine(status);
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += `Date: ${httpDate()}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  if (announceClose) head += "Connection: close\r\n";
  return `${head}\r\n${body}`;
}

/** A JSON body (Go json.Encoder output, already encoded) as the proxy's own answer. */
export function jsonResponse(
  status: number,
  body: string,
  announceClose: boolean,
  extraHeaders: Array<[string, string]> = [],
): Uint8Array {
  return Buffer.from(
    simpleResponse(status, [["Content-Type", "application/json"], ...extraHeaders], body, announceClose),
    "utf8",
  );
}

/**
 * Go net/http's plain-text answers to requests it cannot parse, with the texts it reports publicly
 * (its `badRequestError`s and the unsupported version); every other parse failure is a bare
 * `400 Bad Request`. Always `Connection: close`. (Go sends no Date here; we do, RFC 9110 §6.6.1.)
 */
const GO_PUBLIC_400 = new Set([
  "too many Host headers",
  "malformed Host header",
  "missing required Host header",
  "invalid header name",
  "invalid header value",
]);

export function errorResponse(status: 400 | 431 | 501 | 505, reason: string): string {
  const text =
    status === 501
      ? "Unsupported transfer encoding"
      : status === 431
        ? "431 Request Header Fields Too Large"
        : status === 505
          ? "505 HTTP Version Not Supported: unsupported protocol version"
          : GO_PUBLIC_400.has(reason)
            ? `400 Bad Request: ${reason}`
            : "400 Bad Request";
  const line = status === 501 ? "501 Not Implemented" : text;
  return `HTTP/1.1 ${line}\r\nContent-Type: text/plain; charset=utf-8\r\nDate: ${httpDate()}\r\nConnection: close\r\n\r\n${text}`;
}

/**
 * Whether a response on a connection that closes after it carries `Connection: close`: always on
 * the listener (Go's http.Server does so), inside a tunnel only when the proxy decides to close
 * (drain, errors) — not when the client asked, where the reference's tunnel responses carry none.
 */
export function announceClose(close: boolean, inTunnel: boolean, clientKeepAlive: boolean): boolean {
  return close && (!inTunnel || clientKeepAlive);
}

export interface UpstreamHead {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  /** From the upstream's Content-Length, else null. */
  contentLength: number | null;
}

export interface RespondOptions {
  method: string;
  clientVersion: "HTTP/1.0" | "HTTP/1.1";
  /** Close the connection after this response. */
  close: () => boolean;
  /** Say so with `Connection: close` (see `announceClose`). */
  announce: (close: boolean) => boolean;
}

/**
 * Give a relayed chunk's memory back now rather than at the next garbage collection: the HTTP client
 * hands over a buffer per chunk (64 KiB – 1 MiB), and a 100 MiB body streamed between two
 * collections held tens of MiB of them (docs/PERFORMANCE.md). Only a chunk that is the whole of its
 * ArrayBuffer is released (nothing else can view it); `out.write` resolved, so the socket took it.
 */
function release(chunk: Uint8Array): void {
  const b = chunk.buffer;
  if (chunk.byteOffset === 0 && chunk.byteLength === b.byteLength && b instanceof ArrayBuffer && !b.detached)
    (b as ArrayBuffer & { transfer(n: number): ArrayBuffer }).transfer(0);
}

/** The body, stopping once more than `limit` bytes arrived (an overlong upstream). */
async function readAtMost(body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of body) {
    got += chunk.byteLength;
    parts.push(chunk);
    if (got > limit) break;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** `Canonical-Name: ` for a field name (remembered as canonicalHeaderName is): one part of the head less per field. */
const fieldPrefix = memoize((k) => `${canonicalHeaderName(k)}: `, 512, 64);

/** Responses with a Content-Length up to this are written head and body in one go. */
const COALESCE_MAX_BYTES = 16 * 1024;

const noBodyStatus = (s: number) => (s >= 100 && s < 200) || s === 204 || s === 304;

/** The head for an upstream response, and how its body is framed towards the client. */
function upstreamHead(res: UpstreamHead, opts: RespondOptions): { head: string; chunked: boolean; close: boolean } {
  const noBody = opts.method === "HEAD" || noBodyStatus(res.status);
  const h = res.headers;
  let named: Set<string> | null = null;
  for (let i = 0; i < h.length; i++)
    if (h[i]![0].toLowerCase() === "connection")
      for (const t of h[i]![1].split(",")) (named ??= new Set()).add(t.trim().toLowerCase());
  let head = statusLine(res.status, res.statusText);
  for (let i = 0; i < h.length; i++) {
    const [k, v] = h[i]!;
    const n = k.toLowerCase();
    if (RESPONSE_HOP_BY_HOP.has(n) || named?.has(n)) continue;
    head += `${fieldPrefix(k)}${v}\r\n`;
  }
  let close = opts.close();
  let chunked = false;
  if (noBody) {
    // HEAD keeps the upstream's Content-Length (it describes the GET); 1xx/204/304 carry none.
    if (opts.method === "HEAD" && res.contentLength !== null && !noBodyStatus(res.status))
      head += `Content-Length: ${res.contentLength}\r\n`;
  } else if (res.contentLength !== null) {
    head += `Content-Length: ${res.contentLength}\r\n`;
  } else if (opts.clientVersion === "HTTP/1.1") {
    head += "Transfer-Encoding: chunked\r\n";
    chunked = true;
  } else {
    close = true; // HTTP/1.0: close-delimited
  }
  if (opts.announce(close)) head += "Connection: close\r\n";
  return { head: `${head}\r\n`, chunked, close };
}

/**
 * Stream an upstream response to `out`. Returns whether the connection can stay open. The close
 * decision is taken when the head is written (so a drain that began meanwhile is honoured).
 */
export async function writeUpstreamResponse(
  out: ByteSink,
  res: UpstreamHead & {
    body: ReadableStream<Uint8Array> | null;
    /** The whole body at once (the HTTP client's own buffering), when the source has it. */
    readAll?: () => Promise<Uint8Array>;
  },
  opts: RespondOptions,
): Promise<boolean> {
  const noBody = opts.method === "HEAD" || noBodyStatus(res.status);
  const { head, chunked, close } = upstreamHead(res, opts);
  // (`readAll` is tried before `body`: reading a fetch Response's body makes its stream)
  if (!noBody && res.contentLength !== null && res.contentLength <= COALESCE_MAX_BYTES && (res.readAll || res.body)) {
    // A small body of known length: one write (one TLS record) for head and body instead of two or
    // more. The head waits for at most COALESCE_MAX_BYTES the upstream has already announced.
    const body = res.readAll ? await res.readAll() : await readAtMost(res.body!, res.contentLength);
    const got = body.byteLength;
    const n = Math.min(got, res.contentLength);
    const headLen = head.length;
    const msg = Buffer.allocUnsafe(headLen + n);
    msg.write(head, 0, headLen, "latin1");
    msg.set(n === got ? body : body.subarray(0, n), headLen);
    await out.write(msg);
    return got === res.contentLength && !close; // truncated or overlong upstream: framing is broken, close
  }
  await out.write(head);
  if (noBody || !res.body) {
    if (!noBody && chunked) await out.write("0\r\n\r\n");
    return !close;
  }
  let sent = 0;
  for await (const chunk of res.body) {
    if (chunk.byteLength === 0) continue;
    sent += chunk.byteLength;
    if (chunked) {
      // one pre-sized buffer: size line, data, CRLF (one copy of the data, one write, one TLS record)
      const size = `${chunk.byteLength.toString(16)}\r\n`;
      const framed = Buffer.allocUnsafe(size.length + chunk.byteLength + 2);
      framed.write(size, 0, "latin1");
      framed.set(chunk, size.length);
      framed.write("\r\n", size.length + chunk.byteLength, "latin1");
      release(chunk);
      await out.write(framed);
    } else {
      await out.write(chunk);
      release(chunk);
    }
  }
  if (chunked) await out.write("0\r\n\r\n");
  if (res.contentLength !== null && sent !== res.contentLength) return false; // truncated upstream: close
  return !close;
}

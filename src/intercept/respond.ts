// Writing responses to the workload (docs/CONTRACT.md §10, §18.7, §18.8): status and headers as the
// upstream sent them (minus hop-by-hop fields), correct framing, bodies streamed with back-pressure.
import { canonicalHeaderName } from "../http/headers.ts";
import type { Conn } from "./conn.ts";
import type { UpstreamResponse } from "./forward-types.ts";

export const STATUS_TEXT: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

const RESPONSE_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "content-length",
]);

function statusLine(status: number, text?: string): string {
  return `HTTP/1.1 ${status} ${text || STATUS_TEXT[status] || "status code " + status}\r\n`;
}

export interface RespondOptions {
  method: string;
  clientVersion: "HTTP/1.0" | "HTTP/1.1";
  /** Close the connection after this response. */
  close: boolean;
  /** Say so with `Connection: close` (see `announceClose`). */
  announce: boolean;
}

/**
 * Whether a response on a connection that closes after it carries `Connection: close`: always on
 * the listener (Go's http.Server does so), inside a tunnel only when the proxy decides to close
 * (drain, errors) — not when the client asked, where the reference's tunnel responses carry none.
 */
export function announceClose(close: boolean, inTunnel: boolean, clientKeepAlive: boolean): boolean {
  return close && (!inTunnel || clientKeepAlive);
}

/** Responses with a Content-Length up to this are written head and body in one go. */
const COALESCE_MAX_BYTES = 16 * 1024;

/** Stream an upstream response. Returns whether the connection can stay open. */
export async function writeUpstreamResponse(conn: Conn, res: UpstreamResponse, opts: RespondOptions): Promise<boolean> {
  const noBody =
    opts.method === "HEAD" || (res.status >= 100 && res.status < 200) || res.status === 204 || res.status === 304;
  const named = new Set<string>();
  for (const [k, v] of res.headers)
    if (k.toLowerCase() === "connection") for (const t of v.split(",")) named.add(t.trim().toLowerCase());
  let head = statusLine(res.status, res.statusText);
  for (const [k, v] of res.headers) {
    const n = k.toLowerCase();
    if (RESPONSE_HOP.has(n) || named.has(n)) continue;
    head += `${canonicalHeaderName(k)}: ${v}\r\n`;
  }
  let close = opts.close;
  const announce = opts.announce;
  let chunked = false;
  if (noBody) {
    // HEAD keeps the upstream's Content-Length (it describes the GET); 1xx/204/304 carry none.
    if (opts.method === "HEAD" && res.contentLength !== null && res.status !== 204 && res.status !== 304)
      head += `Content-Length: ${res.contentLength}\r\n`;
  } else if (res.contentLength !== null) {
    head += `Content-Length: ${res.contentLength}\r\n`;
  } else if (opts.clientVersion === "HTTP/1.1") {
    head += "Transfer-Encoding: chunked\r\n";
    chunked = true;
  } else {
    close = true; // HTTP/1.0: close-delimited
  }
  if (announce) head += "Connection: close\r\n";
  head += "\r\n";
  if (!noBody && res.body && !chunked && res.contentLength !== null && res.contentLength <= COALESCE_MAX_BYTES) {
    // A small body of known length: one write (one TLS record) for head and body instead of two or
    // more. The head waits for at most COALESCE_MAX_BYTES the upstream has already announced.
    const parts: Uint8Array[] = [];
    let got = 0;
    for await (const chunk of res.body) {
      got += chunk.byteLength;
      parts.push(chunk);
      if (got > res.contentLength) break;
    }
    const body = Buffer.concat(parts);
    await conn.write(
      Buffer.concat([Buffer.from(head, "latin1"), body.subarray(0, Math.min(body.byteLength, res.contentLength))]),
    );
    if (got !== res.contentLength) return false; // truncated or overlong upstream: framing is broken, close
    return !close;
  }
  await conn.write(head);
  if (noBody || !res.body) {
    if (!noBody && chunked) await conn.write("0\r\n\r\n");
    return !close;
  }
  let sent = 0;
  for await (const chunk of res.body) {
    if (chunk.byteLength === 0) continue;
    sent += chunk.byteLength;
    if (chunked)
      await conn.write(
        Buffer.concat([Buffer.from(chunk.byteLength.toString(16) + "\r\n"), chunk, Buffer.from("\r\n")]),
      );
    else await conn.write(chunk);
  }
  if (chunked) await conn.write("0\r\n\r\n");
  if (res.contentLength !== null && sent !== res.contentLength) return false; // truncated upstream: framing is broken, close
  return !close;
}

/** A complete small response (errors, 407, 100-continue excluded). */
export function simpleResponse(
  status: number,
  headers: Array<[string, string]>,
  body: string,
  announceClose: boolean,
): string {
  let head = statusLine(status);
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  if (announceClose) head += "Connection: close\r\n";
  return head + "\r\n" + body;
}

/** JSON error body response (Go json.Encoder body already encoded). */
export function jsonResponse(status: number, body: string, announceClose: boolean): Uint8Array {
  return Buffer.from(simpleResponse(status, [["Content-Type", "application/json"]], body, announceClose), "utf8");
}

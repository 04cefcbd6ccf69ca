// Strict parsing of an upstream's HTTP/1.x response head (RFC 9112 §4, §6.3), for the proxy's own
// upstream client (../intercept/h1-client.ts). The bytes come from the network, not from the
// workload, but they are relayed to the workload and decide how much of the connection is the body:
// anything ambiguous is an error, never a guess — CRLF only and a bounded size (./head-buffer.ts),
// token field names, no control characters in values, no obs-fold, one Content-Length value,
// `chunked` as the only transfer coding and never together with a Content-Length.
import type { Headers } from "./headers.ts";
import { TOKEN } from "./headers.ts";

/** How the body after the head is delimited. */
export type ResponseFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Until the upstream closes the connection (no Content-Length, no Transfer-Encoding). */
  | { kind: "close" };

export interface ResponseHead {
  version: "HTTP/1.0" | "HTTP/1.1";
  status: number;
  /** The reason phrase as sent (may be empty). */
  reason: string;
  /** Field names lower-cased, in wire order. */
  headers: Headers;
  /** The valid Content-Length, else null (also for a HEAD answer, where it describes the GET). */
  contentLength: number | null;
  framing: ResponseFraming;
  /** The connection may carry another request once this response's body was read. */
  keepAlive: boolean;
}

/** Failure codes, as the upstream-error describer knows them (../intercept/upstream-error.ts). */
export type ResponseHeadError = "Malformed_HTTP_Response" | "InvalidContentLength";

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;
const DIGITS = /^[0-9]{1,15}$/;

/**
 * Parse a complete head (without its final CRLFCRLF). `method` is the request's: a HEAD answer has
 * no body whatever it announces.
 */
export function parseResponseHead(text: string, method: string): ResponseHead | ResponseHeadError {
  const lines = text.split("\r\n");
  const m = STATUS_LINE.exec(lines[0]!);
  if (!m) return "Malformed_HTTP_Response";
  const version = m[1] === "1" ? "HTTP/1.1" : "HTTP/1.0";
  const status = Number(m[2]);
  const headers: Headers = [];
  let cl: string | null = null;
  let te: string | null = null;
  let connection = "";
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    const c = l.indexOf(":");
    if (c <= 0) return "Malformed_HTTP_Response"; // obs-fold (a leading SP/HTAB) lands here too
    const name = l.slice(0, c).toLowerCase();
    if (!TOKEN.test(name)) return "Malformed_HTTP_Response";
    const value = l.slice(c + 1).replace(OWS_EDGES, "");
    if (BAD_VALUE.test(value)) return "Malformed_HTTP_Response";
    headers.push([name, value]);
    if (name === "content-length") {
      // repeated or a list: every value must be the same number (RFC 9110 §8.6)
      for (const part of value.split(",")) {
        const v = part.trim();
        if (!DIGITS.test(v) || (cl !== null && cl !== v)) return "InvalidContentLength";
        cl = v;
      }
    } else if (name === "transfer-encoding") te = te === null ? value : `${te},${value}`;
    else if (name === "connection") connection += `,${value.toLowerCase()}`;
  }
  const tokens = connection.split(",").map((t) => t.trim());
  const keepAlive = !tokens.includes("close") && (version === "HTTP/1.1" || tokens.includes("keep-alive"));
  const contentLength = te === null && cl !== null ? Number(cl) : null;
  let framing: ResponseFraming;
  if (te !== null) {
    // Transfer-Encoding with a Content-Length is how responses are smuggled (RFC 9112 §6.3 point 3
    // allows treating it as an error); any coding but a lone `chunked` would reach the workload
    // still encoded, its header gone (hop-by-hop).
    if (cl !== null || version === "HTTP/1.0") return "Malformed_HTTP_Response";
    const codings = te
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== "");
    if (codings.length !== 1 || codings[0] !== "chunked") return "Malformed_HTTP_Response";
    framing = { kind: "chunked" };
  } else if (cl !== null) framing = Number(cl) > 0 ? { kind: "length", length: Number(cl) } : { kind: "none" };
  else framing = { kind: "close" };
  if (method === "HEAD" || status < 200 || status === 204 || status === 304) framing = { kind: "none" };
  return {
    version,
    status,
    reason: m[3] ?? "",
    headers,
    contentLength,
    framing,
    keepAlive: keepAlive && framing.kind !== "close",
  };
}

/**
 * The response's fields as the fetch-based path handed them on (so either path writes the same
 * bytes): sorted by name, repeated fields joined with ", ", Set-Cookie values one by one at the end.
 */
export function fetchOrderHeaders(headers: Headers): Headers {
  const joined = new Map<string, string>();
  const cookies: string[] = [];
  for (const [k, v] of headers) {
    if (k === "set-cookie") cookies.push(v);
    else {
      const had = joined.get(k);
      joined.set(k, had === undefined ? v : `${had}, ${v}`);
    }
  }
  const out: Headers = [...joined].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const c of cookies) out.push(["set-cookie", c]);
  return out;
}

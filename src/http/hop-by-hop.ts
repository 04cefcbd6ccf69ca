// Hop-by-hop header fields (RFC 9110 §7.6.1, docs/CONTRACT.md §18.8): they describe one connection,
// so the proxy removes them — and every field the Connection header names — before forwarding.
import type { Headers } from "./headers.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
]);

/** §18.8: drop hop-by-hop fields (and those named by Connection), Proxy-*, X-Clef-Service. */
export function stripHopByHop(headers: Headers, opts: { upgrade?: boolean } = {}): Headers {
  const { lower, named } = lowerNames(headers);
  const out: Headers = [];
  for (let i = 0; i < headers.length; i++)
    if (forwarded(lower[i]!, named, opts.upgrade === true)) out.push(headers[i]!);
  return out;
}

/**
 * A request's fields as they go upstream, in one pass: stripHopByHop, then Expect dropped (it is
 * the proxy's to answer, §18.18), then Host and X-Clef-Request-Id set to `host` and `requestId` —
 * each at its first field's place, or appended when the request (after stripping) had none. (The
 * Host upstream is always the decided one, set after stripping: `Connection: Host` must not remove
 * it.) Field for field what `setHeader(setHeader(deleteHeader(stripHopByHop(h), "expect"), "Host",
 * host), "X-Clef-Request-Id", requestId)` gives (test/unit/http/hop-by-hop.test.ts compares them).
 */
export function upstreamRequestHeaders(headers: Headers, upgrade: boolean, host: string, requestId: string): Headers {
  const { lower, named } = lowerNames(headers);
  const out: Headers = [];
  let hostAt = -1;
  let idAt = -1;
  for (let i = 0; i < headers.length; i++) {
    const n = lower[i]!;
    if (!forwarded(n, named, upgrade) || n === "expect") continue;
    if (n === "host") {
      if (hostAt < 0) hostAt = out.push(["Host", host]) - 1;
    } else if (n === "x-clef-request-id") {
      if (idAt < 0) idAt = out.push(["X-Clef-Request-Id", requestId]) - 1;
    } else out.push(headers[i]!);
  }
  if (hostAt < 0) out.push(["Host", host]);
  if (idAt < 0) out.push(["X-Clef-Request-Id", requestId]);
  return out;
}

/** Each field's name lowercased once, and the tokens of the Connection fields gathered in the same pass. */
function lowerNames(headers: Headers): { lower: string[]; named: Set<string> | null } {
  const lower: string[] = new Array(headers.length);
  let named: Set<string> | null = null;
  for (let i = 0; i < headers.length; i++) {
    const n = headers[i]![0].toLowerCase();
    lower[i] = n;
    if (n === "connection")
      for (const t of headers[i]![1].split(",")) if (t.trim()) (named ??= new Set()).add(t.trim().toLowerCase());
  }
  return { lower, named };
}

/** Whether a field named `n` (lowercase) goes upstream (a WebSocket handshake keeps Upgrade and Connection). */
function forwarded(n: string, named: Set<string> | null, upgrade: boolean): boolean {
  if (upgrade && (n === "upgrade" || n === "connection")) return true;
  if (HOP_BY_HOP.has(n) || n.startsWith("proxy-") || n === "x-clef-service") return false;
  return !named?.has(n);
}

/** Fields of an upstream response that never reach the client as they are (framing is redone). */
export const RESPONSE_HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "content-length",
]);

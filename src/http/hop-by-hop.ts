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
  // each name lowercased once; the Connection fields' tokens gathered in the same pass
  const lower: string[] = new Array(headers.length);
  let named: Set<string> | null = null;
  for (let i = 0; i < headers.length; i++) {
    const n = headers[i]![0].toLowerCase();
    lower[i] = n;
    if (n === "connection")
      for (const t of headers[i]![1].split(",")) if (t.trim()) (named ??= new Set()).add(t.trim().toLowerCase());
  }
  const out: Headers = [];
  for (let i = 0; i < headers.length; i++) {
    const e = headers[i]!;
    const n = lower[i]!;
    if (opts.upgrade && (n === "upgrade" || n === "connection")) {
      out.push(e);
      continue;
    }
    if (HOP_BY_HOP.has(n) || n.startsWith("proxy-") || n === "x-clef-service") continue;
    if (named?.has(n) && !(opts.upgrade && n === "upgrade")) continue;
    out.push(e);
  }
  return out;
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

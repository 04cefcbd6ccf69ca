// The one describer of upstream failures (docs/CONTRACT.md §10, §18.21): the 502 `detail` a
// workload sees and the `err` of the log line, in our own vocabulary — the host, the port and the
// failure class — never an HTTP client's message, which carries the request URL with its query (the
// `api_key_query` secret, issue 13 item 2). Refusals keep the reference's texts where it has one
// (`dial tcp <addr>: connect: connection refused`, `EOF`).
import { isIP } from "node:net";

export class UpstreamError extends Error {}

/** A runtime error code reduced to a safe token (it is echoed; messages never are). */
function safeCode(code: unknown): string {
  return typeof code === "string" && /^[A-Za-z0-9_]{1,64}$/.test(code) ? code : "";
}

export function hostPort(host: string, port: number): string {
  // only a string with a colon can be an IPv6 literal (most hosts are names: no parse)
  return `${host.includes(":") && isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

const CERT = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME|UNTRUSTED|ISSUER|SIGNATURE|EXPIRED|VERIFY/;

/**
 * Describe a failure to reach `host` (dialled as `addr`, the vetted address or, through a corporate
 * proxy, the name) on `port`. `phase` says whether a corporate proxy was being spoken to.
 */
export function describeUpstreamError(e: unknown, where: { host: string; addr: string; port: number }): string {
  if (e instanceof UpstreamError) return e.message;
  const err = (e ?? {}) as { code?: unknown; name?: unknown };
  const code = safeCode(err.code);
  const dial = hostPort(where.addr, where.port);
  switch (code) {
    case "ECONNREFUSED":
    case "ConnectionRefused":
      return `dial tcp ${dial}: connect: connection refused`;
    case "ECONNRESET":
    case "ConnectionClosed":
    case "EPIPE":
      return "EOF";
    case "ETIMEDOUT":
    case "ConnectTimeout":
      return `dial tcp ${dial}: i/o timeout`;
    case "ENETUNREACH":
    case "EHOSTUNREACH":
      return `dial tcp ${dial}: connect: no route to host`;
    case "EPROTO":
      return `tls: handshake with ${hostPort(where.host, where.port)} failed`;
    case "Malformed_HTTP_Response":
      return `upstream ${hostPort(where.host, where.port)} sent a malformed HTTP response`;
    case "ResponseHeadersTooLarge":
      return `upstream ${hostPort(where.host, where.port)} sent a response head that is too large`;
    case "InvalidContentLength":
      return `upstream ${hostPort(where.host, where.port)} sent an invalid Content-Length`;
  }
  if (CERT.test(code)) return `tls: failed to verify certificate for ${where.host}: ${code}`;
  if (/proxy/i.test(code)) return `upstream proxy: ${code}`;
  return `upstream ${hostPort(where.host, where.port)}: request failed${code ? ` (${code})` : ""}`;
}

/** Failures that happen before any byte of the request was sent: the next vetted address may be tried. */
export function isDialFailure(e: unknown): boolean {
  const code = safeCode((e as { code?: unknown } | null)?.code);
  return [
    "ECONNREFUSED",
    "ConnectionRefused",
    "ETIMEDOUT",
    "ConnectTimeout",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "FailedToOpenSocket",
  ].includes(code);
}

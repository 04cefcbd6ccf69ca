// One HTTP POST to an export receiver (webhook, OTLP), with the data path's network rules
// (docs/CONTRACT.md §11 "Exports", §12, §18.2, §18.11):
// - TLS verified with the runtime's default trust store (bundled roots, SSL_CERT_FILE/SSL_CERT_DIR,
//   NODE_EXTRA_CA_CERTS), against the URL's host name;
// - `http://` only to loopback (config validation checks the URL; here every resolved address of
//   an http:// receiver must be loopback too);
// - never to metadata or link-local addresses: direct requests resolve once with netguard's
//   resolveAndVet and dial a vetted address (TLS still verifies the name); through a corporate proxy
//   (upstream.proxy_url / no_proxy, or the env, via ProxySelector) the name is sent, as §18.11 says,
//   after refusing IP literals and names that resolve locally to a blocked address;
// - redirects are not followed (the status is returned; the engine treats 3xx as permanent);
// - the answer body is read up to RESPONSE_MAX_BYTES (OTLP partialSuccess), the rest discarded.
// Error texts never contain the URL's query or userinfo, a header value or the body.
import { isIP } from "node:net";
import type { Config } from "../../config/types.ts";
import { isLoopbackHost, type ProxyChoice, ProxySelector } from "../../http/corporate-proxy.ts";
import { NetguardError, resolveAndVet } from "../../netguard/index.ts";

export const RESPONSE_MAX_BYTES = 64 * 1024;

export interface PostResult {
  status: number;
  /** Retry-After in ms (seconds or HTTP-date), when the answer had a valid one. */
  retryAfterMs: number | null;
  /** Up to RESPONSE_MAX_BYTES of the answer. */
  body: string;
}

export interface Transport {
  /** scheme://host[:port] of the receiver: what logs show (paths can hold secrets, e.g. Slack). */
  readonly logUrl: string;
  /** Resolves with the answer, rejects with an Error whose message is safe to log. */
  post(body: string, headers: Record<string, string>, signal: AbortSignal): Promise<PostResult>;
}

export class TransportError extends Error {}

/** Retry-After: delta-seconds or an HTTP-date; null when absent or invalid. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | null {
  if (v === null) return null;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}

/** A safe one-line description of a fetch failure (never the message: Bun puts the URL in it). */
function describe(e: unknown): string {
  if (e instanceof NetguardError || e instanceof TransportError) return e.message;
  const err = e as { code?: string; name?: string };
  const code = err?.code ?? "";
  if (code === "ConnectionRefused" || code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET" || code === "ConnectionClosed") return "connection closed before an answer";
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME/i.test(code)) return `tls: ${code}`;
  if (err?.name === "AbortError") return "aborted";
  return code || err?.name || "request failed";
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = RESPONSE_MAX_BYTES - n;
      chunks.push(value.length > room ? value.subarray(0, room) : value);
      n += Math.min(value.length, room);
      if (n >= RESPONSE_MAX_BYTES) break;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString("utf8");
}

export interface HttpTransportDeps {
  /** netguard's resolver (tests replace it). */
  resolve?: (host: string) => Promise<string[]>;
}

export class HttpTransport implements Transport {
  readonly logUrl: string;
  private readonly url: URL;
  private readonly host: string; // without IPv6 brackets
  private readonly port: number;
  private readonly pathQuery: string;
  private readonly basicAuth: string | null;
  /** The URL without userinfo and fragment (userinfo becomes an Authorization header). */
  private readonly cleanHref: string;
  private selector: ProxySelector | null | undefined;

  constructor(
    url: string,
    private readonly extraHeaders: Array<[string, string]>,
    private readonly upstream: Config["upstream"],
    private readonly env: Record<string, string | undefined>,
    private readonly deps: HttpTransportDeps = {},
  ) {
    this.url = new URL(url);
    this.host = this.url.hostname.replace(/^\[|\]$/g, "");
    this.port = Number(this.url.port || (this.url.protocol === "https:" ? 443 : 80));
    this.pathQuery = (this.url.pathname || "/") + this.url.search;
    this.logUrl = `${this.url.protocol}//${this.url.host}`;
    const clean = new URL(this.url.href);
    clean.username = "";
    clean.password = "";
    clean.hash = "";
    this.cleanHref = clean.href;
    this.basicAuth =
      this.url.username || this.url.password
        ? "Basic " +
          Buffer.from(`${decodeURIComponent(this.url.username)}:${decodeURIComponent(this.url.password)}`).toString(
            "base64",
          )
        : null;
  }

  private proxyFor(scheme: "http" | "https"): ProxyChoice | null {
    if (this.selector === undefined) {
      try {
        this.selector = new ProxySelector(this.upstream, this.env);
      } catch {
        // A bad proxy_auth stops the proxy at intercept init (exit 1) right after audit init.
        this.selector = null;
      }
    }
    return this.selector ? this.selector.choose(scheme, this.host, this.port) : null;
  }

  private headers(h: Record<string, string>): Headers {
    const out = new Headers();
    for (const [k, v] of this.extraHeaders) out.set(k, v);
    if (this.basicAuth && !out.has("authorization")) out.set("authorization", this.basicAuth);
    for (const [k, v] of Object.entries(h)) out.set(k, v);
    out.set("host", this.url.host);
    return out;
  }

  async post(body: string, h: Record<string, string>, signal: AbortSignal): Promise<PostResult> {
    const scheme = this.url.protocol === "https:" ? "https" : "http";
    const lookup = this.deps.resolve ?? ((host: string) => resolveAndVet(host));
    // A resolver that does not answer must not outlive the attempt's timeout.
    const resolve = (host: string) =>
      new Promise<string[]>((ok, fail) => {
        if (signal.aborted) return fail(new TransportError("aborted"));
        const onAbort = () => fail(new TransportError("aborted"));
        signal.addEventListener("abort", onAbort, { once: true });
        lookup(host)
          .then(ok, fail)
          .finally(() => signal.removeEventListener("abort", onAbort));
      });
    const headers = this.headers(h);
    const base = {
      method: "POST",
      headers,
      body,
      redirect: "manual" as const,
      signal,
    };
    let res: Response | undefined;
    try {
      const proxy = scheme === "https" ? this.proxyFor(scheme) : null;
      if (proxy) {
        // The name goes to the corporate proxy; refuse what we can tell is blocked.
        try {
          await resolve(this.host);
        } catch (e) {
          if (!(e instanceof NetguardError) || e.message.startsWith("netguard:")) throw e;
        }
        res = await fetch(this.cleanHref, {
          ...base,
          proxy: proxy.authorization
            ? { url: proxy.url, headers: { "Proxy-Authorization": proxy.authorization } }
            : proxy.url,
        } as RequestInit);
      } else {
        const addrs = await resolve(this.host);
        if (scheme === "http" && !addrs.every(isLoopbackHost))
          throw new TransportError(`http:// receiver ${this.host} does not resolve to loopback only`);
        let lastErr: unknown;
        for (const addr of addrs) {
          const at = isIP(addr) === 6 ? `[${addr}]` : addr;
          try {
            res = await fetch(`${scheme}://${at}:${this.port}${this.pathQuery}`, {
              ...base,
              tls: isIP(this.host) ? {} : { serverName: this.host },
            } as RequestInit);
            break;
          } catch (e) {
            lastErr = e;
            const code = (e as { code?: string }).code;
            if (signal.aborted || (code !== "ConnectionRefused" && code !== "ECONNREFUSED")) break;
          }
        }
        if (!res) throw lastErr;
      }
    } catch (e) {
      throw new TransportError(describe(e));
    }
    const text = await readBounded(res).catch(() => "");
    return { status: res.status, retryAfterMs: parseRetryAfter(res.headers.get("retry-after")), body: text };
  }
}

// The upstream forwarder on Bun's fetch (docs/CONTRACT.md §10, §12, §18.2, §18.7, §18.11):
// - dials only the netguard-vetted address (URL host = the IP) while TLS verifies the real name
//   (`tls.serverName`), against the runtime roots + SSL_CERT_FILE + NODE_EXTRA_CA_CERTS;
// - no redirects followed, no decompression (content-encoding passes through untouched);
// - request and response bodies streamed; keep-alive pooling by fetch;
// - chained through the upstream proxy chosen by ProxySelector (CONNECT to the vetted IP).
import { isIP } from "node:net";
import type { Config } from "../config/types.ts";
import { type ProxyChoice, ProxySelector } from "./chain.ts";
import { type Forwarder, type UpstreamRequest, type UpstreamResponse, UpstreamError } from "./forward-types.ts";
import { UPSTREAM_FIRST_BYTE_TIMEOUT_MS } from "./limits.ts";
import { checkTrustEnv } from "./trust.ts";
import { relayUpgrade } from "./upgrade.ts";

const NO_BODY_STATUS = (s: number) => (s >= 100 && s < 200) || s === 204 || s === 304;

function hostForUrl(ip: string): string {
  return isIP(ip) === 6 ? `[${ip}]` : ip;
}

/** Go-like error detail for a fetch failure (never includes request headers). */
export function describeFetchError(e: unknown, req: UpstreamRequest, addr: string): string {
  const err = e as { code?: string; name?: string; message?: string };
  const where = `${hostForUrl(addr)}:${req.port}`;
  const code = err?.code ?? "";
  if (err?.name === "TimeoutError") return `upstream did not answer within ${UPSTREAM_FIRST_BYTE_TIMEOUT_MS / 1000}s`;
  if (code === "ConnectionRefused" || code === "ECONNREFUSED") return `dial tcp ${where}: connect: connection refused`;
  if (code === "ECONNRESET" || code === "ConnectionClosed") return "EOF";
  if (
    /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|ALTNAME|HOSTNAME/i.test(code) ||
    /certificate|tls/i.test(err?.message ?? "")
  ) {
    return `tls: failed to verify certificate for ${req.host}: ${code || err?.message}`;
  }
  if (/proxy/i.test(err?.message ?? "") || code.startsWith("Proxy")) return `upstream proxy: ${err?.message ?? code}`;
  return err?.message ? `${err.message}${code ? ` (${code})` : ""}` : String(e);
}

function buildInit(
  req: UpstreamRequest,
  proxy: ProxyChoice | null,
  signal: AbortSignal,
): RequestInit & Record<string, unknown> {
  const headers = new Headers();
  for (const [k, v] of req.headers) headers.append(k, v);
  // fetch would add `User-Agent: Bun/<version>`; the reference's Go transport adds its own when the
  // workload sent none, and upstreams see that one (some APIs refuse requests without a UA).
  if (!headers.has("user-agent")) headers.set("user-agent", "Go-http-client/1.1");
  const init: RequestInit & Record<string, unknown> = {
    method: req.method,
    headers,
    redirect: "manual",
    decompress: false,
    signal,
    // the runtime's default trust store (src/intercept/trust.ts); the name verified is the real one
    tls: isIP(req.host) ? {} : { serverName: req.host },
  };
  if (req.body) {
    init.body = req.body;
    init.duplex = "half";
  }
  if (proxy)
    init.proxy = proxy.authorization
      ? { url: proxy.url, headers: { "Proxy-Authorization": proxy.authorization } }
      : proxy.url;
  return init;
}

export function createForwarder(cfg: Config["upstream"], env: Record<string, string | undefined>): Forwarder {
  const proxies = new ProxySelector(cfg, env);
  checkTrustEnv(env);

  return {
    async upgrade(req, client, onResponse) {
      return relayUpgrade(client, req, proxies.choose(req.scheme, req.host, req.port), onResponse);
    },
    async forward(req: UpstreamRequest): Promise<UpstreamResponse> {
      if (req.addresses.length === 0) throw new UpstreamError(`dial tcp: lookup ${req.host}: no such host`);
      const proxy = proxies.choose(req.scheme, req.host, req.port);
      // Try the vetted addresses in order while nothing of the request has been sent (no body, or
      // the connection was refused); with a body only the first can be tried.
      const candidates = req.body ? req.addresses.slice(0, 1) : req.addresses;
      let res: Response | undefined;
      let lastErr: unknown;
      let addr = candidates[0]!;
      // One controller per request: the client going away aborts it (body included); the
      // first-byte timer only runs until the response head — a plain timer, cleared at once, not
      // AbortSignal.timeout (which would keep a 300 s timer alive per request).
      const ac = new AbortController();
      if (req.signal.aborted) ac.abort();
      else req.signal.addEventListener("abort", () => ac.abort(), { once: true });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ac.abort();
      }, UPSTREAM_FIRST_BYTE_TIMEOUT_MS);
      try {
        for (addr of candidates) {
          try {
            res = await fetch(
              `${req.scheme}://${hostForUrl(addr)}:${req.port}${req.target}`,
              buildInit(req, proxy, ac.signal) as RequestInit,
            );
            break;
          } catch (e) {
            lastErr = e;
            if (timedOut)
              throw new UpstreamError(`upstream did not answer within ${UPSTREAM_FIRST_BYTE_TIMEOUT_MS / 1000}s`);
            if (req.signal.aborted) throw new UpstreamError("request cancelled");
            const code = (e as { code?: string }).code;
            if (code !== "ConnectionRefused" && code !== "ECONNREFUSED") break;
          }
        }
      } finally {
        clearTimeout(timer);
      }
      if (!res) throw new UpstreamError(describeFetchError(lastErr, req, addr));
      const out: Array<[string, string]> = [];
      res.headers.forEach((value, name) => {
        if (name === "set-cookie") return;
        out.push([name, value]);
      });
      for (const c of res.headers.getSetCookie()) out.push(["set-cookie", c]);
      const cl = res.headers.get("content-length");
      const noBody = req.method === "HEAD" || NO_BODY_STATUS(res.status);
      if (noBody) await res.body?.cancel().catch(() => {});
      return {
        status: res.status,
        statusText: res.statusText,
        headers: out,
        body: noBody ? null : res.body,
        contentLength: cl !== null && /^\d+$/.test(cl) ? Number(cl) : null,
      };
    },
  };
}

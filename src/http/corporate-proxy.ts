// Upstream (corporate) proxy selection (docs/CONTRACT.md §12): upstream.proxy_url + no_proxy, or
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment when proxy_url is empty, with
// golang.org/x/net/http/httpproxy semantics. localhost and loopback always bypass.
import { isIP } from "node:net";
import type { Config } from "../config/types.ts";

/** `upstream.proxy_auth` without a colon: intercept init fails (exit 1, docs/CONTRACT.md §4). */
export class ProxyConfigError extends Error {}

export interface ProxyChoice {
  /** Proxy URL without credentials, e.g. "http://127.0.0.1:3128". */
  url: string;
  /** "Basic …" for Proxy-Authorization, or undefined. */
  authorization?: string;
}

interface NoProxyRule {
  host: string; // lower-case, no leading dot
  port: string; // "" = any
  subOnly: boolean; // ".example.com": sub-domains only
  ip?: string;
  cidr?: { base: number[]; bits: number };
}

function parseNoProxy(list: string): { all: boolean; rules: NoProxyRule[] } {
  const rules: NoProxyRule[] = [];
  let all = false;
  for (let entry of list.split(",")) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") {
      all = true;
      continue;
    }
    if (entry.includes("/")) {
      const [ip, bits] = entry.split("/");
      if (isIP(ip!) === 4)
        rules.push({
          host: "",
          port: "",
          subOnly: false,
          cidr: { base: ip!.split(".").map(Number), bits: Number(bits) },
        });
      continue;
    }
    let port = "";
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !entry.startsWith("[") && entry.split(":").length === 2) {
      entry = m[1]!;
      port = m[2]!;
    }
    entry = entry.replace(/^\[|\]$/g, "");
    if (isIP(entry)) {
      rules.push({ host: entry, port, subOnly: false, ip: entry });
      continue;
    }
    const subOnly = entry.startsWith(".");
    if (entry.startsWith("*.")) entry = entry.slice(1);
    rules.push({ host: entry.replace(/^\./, ""), port, subOnly });
  }
  return { all, rules };
}

/**
 * A loopback host, literal forms only: localhost (and *.localhost), 127.0.0.0/8, ::1 (also as an
 * IPv4-mapped address). Loopback always bypasses the corporate proxy; `http://` audit receivers are
 * allowed only there.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6)
    return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:(127\.|7f[0-9a-f]{2}:[0-9a-f]{1,4}$)/.test(h);
  return false;
}

export class ProxySelector {
  private readonly httpsProxy: string;
  private readonly httpProxy: string;
  private readonly noProxy: { all: boolean; rules: NoProxyRule[] };
  private readonly authOverride?: string;

  constructor(cfg: Config["upstream"], env: Record<string, string | undefined>) {
    if (cfg.proxyUrl) {
      this.httpsProxy = this.httpProxy = cfg.proxyUrl;
      this.noProxy = parseNoProxy(cfg.noProxy.join(","));
      if (cfg.proxyAuth) {
        if (!cfg.proxyAuth.includes(":"))
          throw new ProxyConfigError("intercept: upstream.proxy_auth must be in 'user:pass' form");
        this.authOverride = "Basic " + Buffer.from(cfg.proxyAuth).toString("base64");
      }
    } else {
      this.httpsProxy = env.HTTPS_PROXY || env.https_proxy || "";
      this.httpProxy = env.HTTP_PROXY || env.http_proxy || "";
      this.noProxy = parseNoProxy(env.NO_PROXY || env.no_proxy || "");
    }
  }

  private bypass(host: string, port: number): boolean {
    if (isLoopbackHost(host)) return true;
    if (this.noProxy.all) return true;
    for (const r of this.noProxy.rules) {
      if (r.port && r.port !== String(port)) continue;
      if (r.cidr) {
        if (isIP(host) !== 4) continue;
        const a = host.split(".").map(Number);
        const toInt = (x: number[]) => x.reduce((s, o) => (s << 8) + o, 0) >>> 0;
        const bits = r.cidr.bits;
        const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
        if ((toInt(a) & mask) >>> 0 === (toInt(r.cidr.base) & mask) >>> 0) return true;
        continue;
      }
      if (r.ip) {
        if (host === r.ip) return true;
        continue;
      }
      if (host === r.host && !r.subOnly) return true;
      if (host.endsWith("." + r.host)) return true;
    }
    return false;
  }

  /** The proxy for a request to host:port over scheme, or null for a direct connection. */
  choose(scheme: "http" | "https", host: string, port: number): ProxyChoice | null {
    const raw = scheme === "https" ? this.httpsProxy : this.httpProxy;
    if (!raw || this.bypass(host.toLowerCase(), port)) return null;
    let u: URL;
    try {
      u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
    } catch {
      return null;
    }
    let authorization = this.authOverride;
    if (!authorization && (u.username || u.password)) {
      authorization =
        "Basic " +
        Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64");
    }
    const proxyPort = u.port || (u.protocol === "https:" ? "443" : "80");
    return { url: `${u.protocol}//${u.hostname}:${proxyPort}`, authorization };
  }
}

// Upstream (corporate) proxy selection (docs/CONTRACT.md §12): upstream.proxy_url + no_proxy, or
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment when proxy_url is empty, with
// golang.org/x/net/http/httpproxy semantics. localhost and loopback always bypass.
import { isIP } from "node:net";
import type { Config } from "../config/types.ts";
import { type Cidr, cidrContains, type IpBytes, parseCidr, parseIp } from "../netguard/cidr.ts";

/** `upstream.proxy_auth` without a colon: intercept init fails (exit 1, docs/CONTRACT.md §4). */
export class ProxyConfigError extends Error {}

export interface ProxyChoice {
  /** Proxy URL without credentials, e.g. "http://127.0.0.1:3128". */
  url: string;
  /** "Basic …" for Proxy-Authorization, or undefined. */
  authorization?: string;
}

/** One NO_PROXY entry, as golang.org/x/net/http/httpproxy reads it. */
type NoProxyRule =
  | { kind: "cidr"; cidr: Cidr }
  | { kind: "ip"; ip: IpBytes; port: string }
  /** `.example.com` (sub-domains) — plus the apex itself when written without the dot. */
  | { kind: "domain"; suffix: string; port: string; apex: boolean };

function parseNoProxy(list: string): { all: boolean; rules: NoProxyRule[] } {
  const rules: NoProxyRule[] = [];
  for (let entry of list.split(",")) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") return { all: true, rules: [] };
    if (entry.includes("/")) {
      const c = parseCidr(entry, { allowHostBits: true });
      if (c.ok) rules.push({ kind: "cidr", cidr: c.cidr });
      continue; // an unparseable CIDR matches nothing, as net.ParseCIDR's failure in httpproxy
    }
    let host = entry;
    let port = "";
    const hp =
      /^\[([^\]]*)\]:(\d+)$/.exec(entry) ?? (entry.split(":").length === 2 ? /^([^:]*):(\d+)$/.exec(entry) : null);
    if (hp) {
      host = hp[1]!;
      port = hp[2]!;
      if (host === "") continue;
    }
    host = host.replace(/^\[|\]$/g, "");
    const ip = parseIp(host);
    if (ip) {
      rules.push({ kind: "ip", ip, port });
      continue;
    }
    if (host.startsWith("*.")) host = host.slice(1);
    const apex = !host.startsWith(".");
    rules.push({ kind: "domain", suffix: apex ? `.${host}` : host, port, apex });
  }
  return { all: false, rules };
}

function ruleMatches(r: NoProxyRule, host: string, port: string, ip: IpBytes | null): boolean {
  if (r.kind === "cidr") return ip !== null && cidrContains(r.cidr, ip);
  if (r.kind === "ip") return ip !== null && ip.every((b, i) => b === r.ip[i]) && (r.port === "" || r.port === port);
  const hit = host.endsWith(r.suffix) || (r.apex && host === r.suffix.slice(1));
  return hit && (r.port === "" || r.port === port);
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
    if (isLoopbackHost(host) || this.noProxy.all) return true;
    const h = host.replace(/^\[|\]$/g, "").toLowerCase();
    const ip = parseIp(h);
    return this.noProxy.rules.some((r) => ruleMatches(r, h, String(port), ip));
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

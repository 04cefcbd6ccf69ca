// Matching a request to a service (docs/CONTRACT.md §8) and the one-host rule (§18.1).
//
//   canonicalHost("API.test.:443") === "api.test"
//   createMatcher(manifest).match("api.test", ["gh"]) → {kind:"service", service} | {kind:"passthrough"}
//                                                     | {kind:"deny"} | {kind:"ambiguous", candidates}
//   effectiveHost({connect, sni, hostHeader, absolute}) → {ok:true, ...} | {ok:false, reason}
import type { Manifest, Service } from "../agent/types.ts";

export interface Authority {
  host: string; // as written, brackets removed for IPv6
  port: string; // "" when absent
}

/** Split "host:port", "[v6]:port", "host", "[v6]" (Go net.SplitHostPort-like, lenient on missing port). */
export function splitAuthority(a: string): Authority {
  if (a.startsWith("[")) {
    const end = a.indexOf("]");
    if (end < 0) return { host: a, port: "" };
    const rest = a.slice(end + 1);
    return { host: a.slice(1, end), port: rest.startsWith(":") ? rest.slice(1) : "" };
  }
  const i = a.lastIndexOf(":");
  if (i >= 0 && a.indexOf(":") === i) return { host: a.slice(0, i), port: a.slice(i + 1) };
  return { host: a, port: "" }; // bare IPv6 or no port
}

/** Lower-case, strip port and trailing dot. */
export function canonicalHost(hostOrAuthority: string): string {
  let h = splitAuthority(hostOrAuthority.trim()).host.toLowerCase();
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

export type MatchResult =
  | { kind: "service"; service: Service }
  | { kind: "passthrough" }
  | { kind: "deny" }
  | { kind: "ambiguous"; candidates: string[] };

export interface Matcher {
  match(host: string, serviceHeader: string | null): MatchResult;
}

export function createMatcher(manifest: Manifest): Matcher {
  const byHost = new Map<string, Service[]>();
  for (const s of manifest.services) {
    const h = canonicalHost(s.host);
    if (h === "") continue; // a service with host "" matches nothing
    const list = byHost.get(h);
    if (list) list.push(s);
    else byHost.set(h, [s]);
  }
  const passthrough = new Set(manifest.passthroughHosts.map((h) => canonicalHost(h)).filter((h) => h !== ""));
  return {
    match(host, serviceHeader) {
      const h = canonicalHost(host);
      const services = h === "" ? undefined : byHost.get(h);
      if (services && services.length === 1) return { kind: "service", service: services[0]! };
      if (services && services.length > 1) {
        const picked = serviceHeader ? services.find((s) => s.name === serviceHeader) : undefined;
        if (picked) return { kind: "service", service: picked };
        return { kind: "ambiguous", candidates: services.map((s) => s.name).sort() };
      }
      if (h !== "" && passthrough.has(h)) return { kind: "passthrough" };
      return { kind: "deny" };
    },
  };
}

export interface HostEvidence {
  /** CONNECT authority (tunnels) — absent for plain HTTP. */
  connect?: Authority;
  /** TLS SNI when the client sent one. */
  sni?: string;
  /** Inner Host header as sent ("" / undefined when absent). */
  hostHeader?: string;
  /** Authority of an absolute-form request-target. */
  absolute?: Authority;
  /** Default port of the inner scheme (443 in TLS tunnels, 80 for plain HTTP). */
  defaultPort: string;
}

export type HostDecision =
  | { ok: true; host: string; port: string; hostForAudit: string }
  | { ok: false; reason: string; hostForAudit: string };

/**
 * §18.1: every name the request carries must be the same host (canonical comparison), and an inner
 * port, when given, must equal the CONNECT port. Returns the one host to match and dial.
 */
export function effectiveHost(ev: HostEvidence): HostDecision {
  const hostHeader = ev.hostHeader ?? "";
  const hostForAudit = ev.absolute ? joinAuthority(ev.absolute) : hostHeader;
  const names: Array<[string, string]> = [];
  if (ev.connect) names.push(["CONNECT", canonicalHost(ev.connect.host)]);
  if (ev.sni) names.push(["TLS SNI", canonicalHost(ev.sni)]);
  if (ev.absolute) names.push(["request-target", canonicalHost(ev.absolute.host)]);
  if (hostHeader !== "") names.push(["Host header", canonicalHost(hostHeader)]);
  const first = names[0];
  for (const [what, name] of names.slice(1)) {
    if (first && name !== first[1]) {
      return {
        ok: false,
        reason: `${what} names ${JSON.stringify(name)} but ${first[0]} names ${JSON.stringify(first[1])}`,
        hostForAudit,
      };
    }
  }
  const port = ev.connect?.port || (ev.absolute?.port ?? "") || splitAuthority(hostHeader).port || ev.defaultPort;
  const innerPorts: Array<[string, string]> = [];
  if (hostHeader !== "") innerPorts.push(["Host header", splitAuthority(hostHeader).port]);
  if (ev.absolute) innerPorts.push(["request-target", ev.absolute.port]);
  if (ev.connect) {
    for (const [what, p] of innerPorts) {
      if (p !== "" && p !== port)
        return { ok: false, reason: `${what} port ${p} differs from CONNECT port ${port}`, hostForAudit };
    }
  } else if (ev.absolute && hostHeader !== "") {
    const hp = splitAuthority(hostHeader).port || ev.defaultPort;
    const ap = ev.absolute.port || ev.defaultPort;
    if (hp !== ap)
      return { ok: false, reason: `Host header port ${hp} differs from request-target port ${ap}`, hostForAudit };
  }
  if (!first) return { ok: true, host: "", port, hostForAudit };
  return { ok: true, host: first[1], port, hostForAudit };
}

export function joinAuthority(a: Authority): string {
  const h = a.host.includes(":") ? `[${a.host}]` : a.host;
  return a.port ? `${h}:${a.port}` : h;
}

// Matching a request to a service (docs/CONTRACT.md §8; shared/PHASE2.md §6 F4, §7 F5, §10 F8) and the
// one-host rule (§18.1).
//
//   canonicalHost("API.test.:443") === "api.test"
//   createMatcher(manifest).match("api.test", "gh")
//     → {kind:"blocked", pattern}                 blocked_hosts beat everything (R4)
//     | {kind:"service", service, pattern?}       pattern only when a wildcard decided (audit host_pattern)
//     | {kind:"passthrough", pattern?}
//     | {kind:"deny"}
//     | {kind:"ambiguous", candidates, pattern?}
//   createBlockList(["*.pastebin.com"]).match("x.pastebin.com") === "*.pastebin.com"
//   effectiveHost({connect, sni, hostHeader, absolute}) → {ok:true, ...} | {ok:false, reason}
//
// Precedence (R6): the exact name, then the wildcard with the most labels, then fewer; services
// (host ∪ hosts) and passthrough_hosts compete together and a service wins a tie. Among several
// services at the winning level, X-Clef-Service (exact name, first in manifest order) picks one,
// else the answer is ambiguous with that level's names (sorted, duplicates kept). The header never
// reaches a less specific level. A Phase 1 manifest (exact names only) gives Phase 1's answers.
// Invalid patterns never match (the manifest checks report them); invalid request hosts match
// nothing (the pipeline refuses them earlier with 400 invalid_host).
import type { Manifest, Service } from "../agent/types.ts";
import { type HostPattern, hostKind, ipKeys, parseHostPattern } from "./host.ts";
import { parseIp } from "../netguard/cidr.ts";
import { memoize } from "../memo.ts";

export { isValidRequestHost, parseHostPattern, type HostPattern } from "./host.ts";

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

/**
 * Lower-case, strip port and trailing dot. Each request asks for the same few values several
 * times (CONNECT authority, SNI, Host, the match): the answers are remembered (bounded: 1,024
 * values of at most 300 characters, a DNS name with a port).
 */
export const canonicalHost: (hostOrAuthority: string) => string = memoize(
  (hostOrAuthority) => {
    let h = splitAuthority(hostOrAuthority.trim()).host.toLowerCase();
    if (h.endsWith(".")) h = h.slice(0, -1);
    return h;
  },
  1024,
  300,
);

export type MatchResult =
  | { kind: "blocked"; pattern: string }
  | { kind: "service"; service: Service; pattern?: string }
  | { kind: "passthrough"; pattern?: string }
  | { kind: "deny" }
  | { kind: "ambiguous"; candidates: string[]; pattern?: string };

export interface Matcher {
  match(host: string, serviceHeader: string | null): MatchResult;
  /** The blocked_hosts pattern that blocks `host`, or undefined (R4, run before anything else). */
  blocked(host: string): string | undefined;
}

/** The host patterns of a service: `host` ∪ `hosts`, as written, duplicates (after canonicalisation) dropped. */
export function servicePatterns(s: Service): string[] {
  return [s.host, ...(s.hosts ?? [])];
}

export interface BlockList {
  /** The pattern blocking `host` (any form: port, trailing dot, case, IPv4-mapped IPv6), or undefined. */
  match(host: string): string | undefined;
  /** The block that covers every host `p` can match (a shadowed service/passthrough pattern), or undefined. */
  covers(p: HostPattern): string | undefined;
}

/** Build the blocked_hosts check. Throws Error naming the first invalid entry (restrictive data). */
export function createBlockList(patterns: readonly string[]): BlockList {
  const names = new Map<string, string>();
  const ips = new Map<string, string>();
  const wild = new Map<string, string>();
  patterns.forEach((raw, i) => {
    const r = parseHostPattern(raw);
    if (!r.ok) throw new Error(`blocked_hosts[${i}] ${JSON.stringify(raw)} is not a valid host pattern: ${r.problem}`);
    const p = r.pattern;
    if (p.kind === "name") names.set(p.text, names.get(p.text) ?? p.text);
    else if (p.kind === "wildcard") wild.set(p.suffix, wild.get(p.suffix) ?? p.text);
    else for (const k of ipKeys(p.ip)) if (!ips.has(k)) ips.set(k, p.text);
  });
  const byName = (h: string): string | undefined => {
    const exact = names.get(h);
    if (exact) return exact;
    const labels = h.split(".");
    for (let i = 1; i < labels.length - 1; i++) {
      const w = wild.get(labels.slice(i).join("."));
      if (w) return w;
    }
    return undefined;
  };
  const byIp = (h: string): string | undefined => {
    const ip = parseIp(h);
    if (!ip) return undefined;
    for (const k of ipKeys(ip)) {
      const b = ips.get(k);
      if (b) return b;
    }
    return undefined;
  };
  return {
    match(host) {
      if (patterns.length === 0) return undefined;
      const h = canonicalHost(host);
      const kind = hostKind(h);
      if (kind === "ip") return byIp(h);
      if (kind === "name") return byName(h);
      return undefined;
    },
    covers(p) {
      if (p.kind === "name") return byName(p.text);
      if (p.kind === "ip") return byIp(p.text);
      // *.S is covered by a block *.T when S is T or lies under it
      const labels = p.suffix.split(".");
      for (let i = 0; i < labels.length - 1; i++) {
        const w = wild.get(labels.slice(i).join("."));
        if (w) return w;
      }
      return undefined;
    },
  };
}

interface Level {
  services: Service[];
  passthrough: boolean;
}

export function createMatcher(manifest: Manifest): Matcher {
  const exact = new Map<string, Level>();
  const wild = new Map<string, Level>();
  const level = (p: HostPattern): Level => {
    const map = p.kind === "wildcard" ? wild : exact;
    const key = p.kind === "wildcard" ? p.suffix : p.text;
    let l = map.get(key);
    if (!l) map.set(key, (l = { services: [], passthrough: false }));
    return l;
  };
  for (const s of manifest.services) {
    const seen = new Set<string>();
    for (const raw of servicePatterns(s)) {
      const r = parseHostPattern(raw);
      if (!r.ok || seen.has(r.pattern.text)) continue; // invalid: reported at load, never matches
      seen.add(r.pattern.text);
      level(r.pattern).services.push(s);
    }
  }
  for (const raw of manifest.passthroughHosts) {
    const r = parseHostPattern(raw);
    if (r.ok) level(r.pattern).passthrough = true;
  }
  const blocks = createBlockList(manifest.blockedHosts ?? []);

  const decide = (l: Level, serviceHeader: string | null, pattern: string | undefined): MatchResult => {
    const at = pattern === undefined ? {} : { pattern };
    if (l.services.length === 1) return { kind: "service", service: l.services[0]!, ...at };
    if (l.services.length > 1) {
      const picked = serviceHeader ? l.services.find((s) => s.name === serviceHeader) : undefined;
      if (picked) return { kind: "service", service: picked, ...at };
      return { kind: "ambiguous", candidates: l.services.map((s) => s.name).sort(), ...at };
    }
    return { kind: "passthrough", ...at };
  };

  return {
    blocked: (host) => blocks.match(host),
    match(host, serviceHeader) {
      const h = canonicalHost(host);
      const kind = h === "" ? null : hostKind(h);
      if (kind === null) return { kind: "deny" }; // "" (no Host) or a host no pattern can name
      const b = blocks.match(h);
      if (b !== undefined) return { kind: "blocked", pattern: b };
      const e = exact.get(h);
      if (e) return decide(e, serviceHeader, undefined);
      if (kind === "ip") return { kind: "deny" }; // IP literals match only exactly
      const labels = h.split(".");
      for (let i = 1; i < labels.length - 1; i++) {
        const suffix = labels.slice(i).join(".");
        const w = wild.get(suffix);
        if (w) return decide(w, serviceHeader, `*.${suffix}`);
      }
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
  // the names in order — CONNECT, SNI, request-target, Host — each compared with the first present
  let first: string | null = null;
  let firstWhat = "";
  for (let i = 0; i < 4; i++) {
    const raw =
      i === 0
        ? ev.connect?.host
        : i === 1
          ? ev.sni || undefined
          : i === 2
            ? ev.absolute?.host
            : hostHeader || undefined;
    if (raw === undefined) continue;
    const name = canonicalHost(raw);
    if (first === null) {
      first = name;
      firstWhat = NAME_SOURCES[i]!;
    } else if (name !== first)
      return {
        ok: false,
        reason: `${NAME_SOURCES[i]} names ${JSON.stringify(name)} but ${firstWhat} names ${JSON.stringify(first)}`,
        hostForAudit,
      };
  }
  const hostPort = hostHeader === "" ? "" : splitAuthority(hostHeader).port;
  const port = ev.connect?.port || (ev.absolute?.port ?? "") || hostPort || ev.defaultPort;
  if (ev.connect) {
    if (hostPort !== "" && hostPort !== port)
      return { ok: false, reason: `Host header port ${hostPort} differs from CONNECT port ${port}`, hostForAudit };
    const ap = ev.absolute?.port ?? "";
    if (ap !== "" && ap !== port)
      return { ok: false, reason: `request-target port ${ap} differs from CONNECT port ${port}`, hostForAudit };
  } else if (ev.absolute && hostHeader !== "") {
    const hp = hostPort || ev.defaultPort;
    const ap = ev.absolute.port || ev.defaultPort;
    if (hp !== ap)
      return { ok: false, reason: `Host header port ${hp} differs from request-target port ${ap}`, hostForAudit };
  }
  return { ok: true, host: first ?? "", port, hostForAudit };
}

const NAME_SOURCES = ["CONNECT", "TLS SNI", "request-target", "Host header"];

export function joinAuthority(a: Authority): string {
  const h = a.host.includes(":") ? `[${a.host}]` : a.host;
  return a.port ? `${h}:${a.port}` : h;
}

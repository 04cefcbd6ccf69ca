// Host names and host patterns (shared/PHASE2.md §6 F4, §7 F5, §10 F8; CONTRACT §8 for the Phase 1 rules).
//
//   parseHostPattern("*.GitHub.com.")  → {ok:true, pattern:{kind:"wildcard", text:"*.github.com", suffix:"github.com", labels:3}}
//   parseHostPattern("*.com")          → {ok:false, problem:'a wildcard needs at least two labels after "*."'}
//   isValidRequestHost("*.p2.test:443") === false   (the pipeline answers 400 invalid_host)
//
// A pattern is, after Phase 1 canonicalisation (trim, port and one trailing dot stripped, lower-cased):
// - an exact DNS name: labels of [a-z0-9_-], 1–63 characters each, 253 at most in all (IDNs as
//   A-labels, `xn--…`); a name whose last label is numeric must be an IPv4 literal (so `127.1`,
//   `0x7f000001`, `010.0.0.1` are not names: resolvers would read them as addresses);
// - an IP literal: IPv4 dotted quad, or IPv6 with or without brackets (src/netguard/cidr.ts);
// - a wildcard `*.` + a DNS name of at least two labels; `*` only as the whole left-most label.
// A wildcard matches any name with at least one more label (never the apex); IP literals match
// only exactly. Request hosts follow the same grammar without wildcards.
import { memoize } from "../memo.ts";
import { embeddedIpv4, formatIp, type IpBytes, parseIp, parseIpv4 } from "../netguard/cidr.ts";

export type HostPattern =
  | { kind: "name"; text: string }
  | { kind: "ip"; text: string; ip: IpBytes }
  | { kind: "wildcard"; text: string; suffix: string; labels: number };

export type PatternResult = { ok: true; pattern: HostPattern } | { ok: false; problem: string };

const LABEL = /^[a-z0-9_-]+$/;
const NUMERIC_LABEL = /^(0x[0-9a-f]*|[0-9]+)$/;

/** Why `n` (lower-case, no port, no trailing dot) is not a DNS name, or undefined. */
export function nameProblem(n: string): string | undefined {
  if (n === "") return "empty host name";
  if (n.length > 253) return "name longer than 253 characters";
  const labels = n.split(".");
  for (const l of labels) {
    if (l === "") return "empty label";
    if (l.includes("*")) return '"*" is only allowed as the whole left-most label of a wildcard "*.name"';
    if (!LABEL.test(l)) return `label ${JSON.stringify(l)} has a character outside [a-z0-9_-] (IDNs as A-labels)`;
    if (l.length > 63) return "label longer than 63 characters";
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!))
    return "numeric last label: not a name, and not a dotted-quad IPv4";
  return undefined;
}

/** Split off a port the way Phase 1 does (src/match splitAuthority), checking that it is digits. */
function stripPort(raw: string): { host: string; port: string; bracketed: boolean } | null {
  if (raw.startsWith("[")) {
    const end = raw.indexOf("]");
    if (end < 0) return null;
    const rest = raw.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return null;
    const port = rest.slice(1);
    return /^[0-9]{0,5}$/.test(port) ? { host: raw.slice(1, end), port, bracketed: true } : null;
  }
  const i = raw.lastIndexOf(":");
  if (i >= 0 && raw.indexOf(":") === i) {
    const port = raw.slice(i + 1);
    return /^[0-9]{0,5}$/.test(port) ? { host: raw.slice(0, i), port, bracketed: false } : null;
  }
  return { host: raw, port: "", bracketed: false };
}

function stripDot(h: string): string {
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

/** Parse one manifest host pattern (services[].host/hosts, passthrough_hosts, blocked_hosts). */
export function parseHostPattern(raw: string): PatternResult {
  const sp = stripPort(raw.trim());
  if (!sp) return { ok: false, problem: "malformed port or brackets" };
  const h = stripDot(sp.host.toLowerCase());
  if (sp.bracketed || h.includes(":")) {
    const ip = h.includes(":") ? parseIp(h) : null;
    if (!ip) return { ok: false, problem: "not a valid IPv6 address" };
    return { ok: true, pattern: { kind: "ip", text: h, ip } };
  }
  if (parseIpv4(h)) return { ok: true, pattern: { kind: "ip", text: h, ip: parseIp(h)! } };
  if (h.startsWith("*.") || h === "*") {
    const suffix = h.slice(2);
    if (h === "*" || !suffix.includes("."))
      return { ok: false, problem: 'a wildcard needs at least two labels after "*."' };
    const p = nameProblem(suffix);
    if (p) return { ok: false, problem: p };
    return { ok: true, pattern: { kind: "wildcard", text: h, suffix, labels: suffix.split(".").length + 1 } };
  }
  const p = nameProblem(h);
  if (p) return { ok: false, problem: p };
  return { ok: true, pattern: { kind: "name", text: h } };
}

/**
 * Kind of a canonical request host (lower-case, no port, no trailing dot): "name" | "ip" | null
 * (invalid). Asked on every request for the same few hosts: remembered (bounded, as canonicalHost).
 */
export const hostKind: (h: string) => "name" | "ip" | null = memoize(
  (h) => {
    if (h.includes(":")) return parseIp(h) ? "ip" : null;
    if (parseIpv4(h)) return "ip";
    return nameProblem(h) === undefined ? "name" : null;
  },
  1024,
  300,
);

/**
 * A host as a request carries it (CONNECT authority, SNI, Host, absolute-form authority): a DNS
 * name or an IP literal, optional port (digits), optional trailing dot. `*` and any character
 * outside that grammar make it invalid (400 `invalid_host`). The empty string is not "invalid":
 * a missing Host keeps its Phase 1 answer (403 for host "").
 */
export function isValidRequestHost(h: string): boolean {
  if (h === "") return true;
  const sp = stripPort(h);
  if (!sp) return false;
  const n = stripDot(sp.host.toLowerCase());
  if (sp.bracketed) return n.includes(":") && parseIp(n) !== null;
  return hostKind(n) !== null;
}

/** Keys under which an IP literal is looked up in a block list: its canonical text and the IPv4 it reaches. */
export function ipKeys(ip: IpBytes): string[] {
  const keys = [formatIp(ip)];
  const v4 = embeddedIpv4(ip);
  if (v4) keys.push(formatIp(v4));
  return [...new Set(keys)];
}

// IP literals and CIDR blocks for `blocked_cidrs` and IP-literal host patterns (shared/PHASE2.md §10 F8,
// §6 F4). Pure functions, no I/O; netguard applies them to every resolved address (R10).
//
//   parseIp("::ffff:10.0.0.1")        → 16 bytes (IPv4 is held as ::ffff:a.b.c.d) | null
//   parseCidr("10.0.0.0/8")           → {ok:true, cidr} | {ok:false, problem}
//   createCidrSet(["10.0.0.0/8"]).match("::ffff:10.1.2.3") → the Cidr that contains it | undefined
//
// Parsing is strict, because an address written two ways must never be judged two ways:
// IPv4 is exactly four decimal octets without leading zeros (no `127.1`, `0x7f.0.0.1`, `010.0.0.1`);
// IPv6 is RFC 4291 text (one `::` at most, an optional dotted-quad tail), no zone (`%eth0`), no brackets.
//
// Which addresses an IPv4 block covers: the IPv4 address itself and every IPv6 form that reaches
// it: IPv4-mapped `::ffff:a.b.c.d` (what a dual-stack socket dials) and the NAT64 well-known prefix
// `64:ff9b::a.b.c.d` (RFC 6052; on a NAT64 network it is translated to the IPv4 address). An IPv6
// block is compared with the 128-bit address; an IPv4 address counts as its mapped form there, so
// a block that contains `::ffff:0:0/96` (`::/0` included) covers IPv4 too: the same destinations.

export type IpBytes = Uint8Array; // always 16 bytes

export interface Cidr {
  /** The entry as written (trimmed). */
  text: string;
  family: 4 | 6;
  /** Network address, 16 bytes (IPv4 in its mapped form). */
  base: IpBytes;
  /** Prefix length counted in the 128-bit space (an IPv4 /8 is 104). */
  bits: number;
}

const V4_PART = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Four decimal octets, no leading zeros. */
export function parseIpv4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!V4_PART.test(p)) return null;
    out.push(Number(p));
  }
  return out;
}

function parseIpv6(s: string): IpBytes | null {
  if (s.length === 0 || s.length > 45) return null;
  let head = s;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.indexOf(".", lastColon) >= 0) {
    // a dotted-quad tail stands for the last two groups
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return null;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    head = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const dbl = head.indexOf("::");
  if (dbl >= 0 && head.indexOf("::", dbl + 1) >= 0) return null;
  let groups: string[];
  if (dbl >= 0) {
    const left = head.slice(0, dbl);
    const right = head.slice(dbl + 2);
    const l = left === "" ? [] : left.split(":");
    const r = right === "" ? [] : right.split(":");
    const missing = 8 - l.length - r.length;
    if (missing < 1) return null;
    groups = [...l, ...Array<string>(missing).fill("0"), ...r];
  } else {
    groups = head.split(":");
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!HEX_GROUP.test(g)) return null;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  }
  return out;
}

function mapped(v4: number[]): IpBytes {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

/** An IPv4 or IPv6 literal (no brackets, no zone) → 16 bytes, IPv4 as ::ffff:a.b.c.d; else null. */
export function parseIp(s: string): IpBytes | null {
  if (s.includes(":")) return parseIpv6(s);
  const v4 = parseIpv4(s);
  return v4 ? mapped(v4) : null;
}

export function isIpLiteral(s: string): boolean {
  return parseIp(s) !== null;
}

const isZero = (b: IpBytes, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
};

/** The IPv4 address an IPv6 address reaches (mapped ::ffff:0:0/96, NAT64 64:ff9b::/96), or null. */
export function embeddedIpv4(b: IpBytes): IpBytes | null {
  if (isZero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return b;
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && isZero(b, 4, 12)) {
    return mapped([b[12]!, b[13]!, b[14]!, b[15]!]);
  }
  return null;
}

/** Canonical text: dotted quad for IPv4 (and mapped IPv6), RFC 5952 for the rest. */
export function formatIp(b: IpBytes): string {
  if (isZero(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  // longest run (≥ 2) of zero groups, first on a tie
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

function prefixMatches(addr: IpBytes, base: IpBytes, bits: number): boolean {
  const full = bits >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== base[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[full]! & mask) === (base[full]! & mask);
}

/**
 * A CIDR block (`10.0.0.0/8`, `fc00::/7`) or a single address (`10.0.0.1` = /32, `::1` = /128).
 * Host bits must be zero (`10.1.0.0/8` is refused: it most likely means something else), unless
 * `allowHostBits` (Go's net.ParseCIDR, for NO_PROXY), which masks them.
 */
export function parseCidr(
  raw: string,
  opts: { allowHostBits?: boolean } = {},
): { ok: true; cidr: Cidr } | { ok: false; problem: string } {
  const text = raw.trim();
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const base = parseIp(addrText);
  if (!base) return { ok: false, problem: `${JSON.stringify(addrText)} is not an IPv4 or IPv6 address` };
  const family: 4 | 6 = addrText.includes(":") ? 6 : 4;
  const max = family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max)
      return { ok: false, problem: `prefix length ${JSON.stringify(p)} is not 0-${max}` };
    len = Number(p);
  }
  const bits = family === 4 ? 96 + len : len;
  const masked = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    masked[i] = base[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  if (!opts.allowHostBits && !masked.every((x, i) => x === base[i])) {
    return { ok: false, problem: `host bits set (the network is ${formatIp(masked)}/${len})` };
  }
  // An IPv4 block is held in the mapped space; an IPv6 block written with a mapped base
  // (::ffff:10.0.0.0/104) is kept as IPv6 and compared with the 128-bit address.
  return { ok: true, cidr: { text, family, base: masked, bits } };
}

export function cidrContains(c: Cidr, addr: IpBytes): boolean {
  if (c.family === 6) return prefixMatches(addr, c.base, c.bits);
  const v4 = embeddedIpv4(addr);
  return v4 !== null && prefixMatches(v4, c.base, c.bits);
}

export interface CidrSet {
  readonly cidrs: readonly Cidr[];
  /** The first block (in manifest order) containing `ip` (any literal form), or undefined. */
  match(ip: string | IpBytes): Cidr | undefined;
}

/** Build a set from validated entries; throws Error naming the first invalid entry. */
export function createCidrSet(entries: readonly string[]): CidrSet {
  const cidrs: Cidr[] = [];
  entries.forEach((e, i) => {
    const r = parseCidr(e);
    if (!r.ok) throw new Error(`blocked_cidrs[${i}] ${JSON.stringify(e)}: ${r.problem}`);
    cidrs.push(r.cidr);
  });
  return {
    cidrs,
    match(ip) {
      const b = typeof ip === "string" ? parseIp(ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip) : ip;
      if (!b) return undefined;
      return cidrs.find((c) => cidrContains(c, b));
    },
  };
}

/**
 * netguard's reason text for an address in a blocked CIDR (`blocked_cidrs 10.0.0.0/8`), or null;
 * the caller words the error as Phase 1's: `netguard: address blocked by policy: <host> resolves
 * to <ip> (<reason>)`.
 */
export function cidrBlockReason(set: CidrSet, ip: string): string | null {
  const c = set.match(ip);
  return c ? `blocked_cidrs ${c.text}` : null;
}

// netguard: resolve a destination once, vet every address, and hand the vetted addresses to the
// dialer so nothing resolves the name again (docs/CONTRACT.md §12, §18.11, §18.19).
//
// Blocked: the cloud metadata addresses 169.254.169.254 and fd00:ec2::254 ("cloud metadata", the
// reference's wording), and the rest of the link-local ranges 169.254.0.0/16 and fe80::/10
// ("link-local"), also when an IPv4 address is embedded in IPv6: IPv4-mapped (::ffff:0:0/96),
// IPv4-compatible (::/96), NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16), as smokescreen
// classifies them. Loopback and private ranges stay allowed like the reference: the proxy's users
// reach internal services through it.
//
// Names are resolved with the system's resolver semantics (getaddrinfo: /etc/hosts as glibc, Go and
// Node read it), not Bun's default backend, which answers ::1 first for a name sharing its hosts line
// address with localhost (issue 14).
import { isIP } from "node:net";
import { series } from "../metrics/series.ts";
import { type CidrSet, cidrBlockReason } from "./cidr.ts";

export class NetguardError extends Error {
  constructor(
    message: string,
    /** The audit `reason` of a Phase 2 block ("blocked_cidr"); Phase 1 blocks carry none. */
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** The name did not resolve here (left to a corporate proxy when one is used, §18.11). */
export class NotResolvedError extends NetguardError {}

export type Lookup = (host: string) => Promise<string[]>;

const defaultLookup: Lookup = async (host) => {
  const res = await Bun.dns.lookup(host, { backend: "system" });
  return res.map((r) => r.address);
};

function v4ToInt(ip: string): number {
  return ip.split(".").reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
}

function expandV6(ip: string): number[] | null {
  // → 8 groups; handles "::" and an embedded IPv4 tail.
  let s = ip.toLowerCase();
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct);
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = v4ToInt(v4[1]!);
    tail = [n >>> 16, n & 0xffff];
    s = s.slice(0, -v4[1]!.length) + "0:0";
  }
  const [head, rest] = s.split("::");
  const h = head ? head.split(":") : [];
  const r = rest !== undefined ? (rest ? rest.split(":") : []) : null;
  let groups: string[];
  if (r === null) groups = h;
  else groups = [...h, ...Array(8 - h.length - r.length).fill("0"), ...r];
  if (groups.length !== 8) return null;
  const nums = groups.map((g) => parseInt(g, 16));
  if (tail.length) {
    nums[6] = tail[0]!;
    nums[7] = tail[1]!;
  }
  return nums;
}

const v4Of = (hi: number, lo: number) => `${hi >>> 8}.${hi & 255}.${lo >>> 8}.${lo & 255}`;

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), or null. */
function embeddedV4(g: number[]): string | null {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return v4Of(g[6]!, g[7]!); // ::ffff:a.b.c.d
  if (zeros(0, 6) && (g[6]! !== 0 || g[7]! > 1)) return v4Of(g[6]!, g[7]!); // ::a.b.c.d (not :: or ::1)
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4Of(g[6]!, g[7]!); // 64:ff9b::/96
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return v4Of(g[6]!, g[7]!); // 64:ff9b:1::/48 (RFC 8215)
  if (g[0] === 0x2002) return v4Of(g[1]!, g[2]!); // 2002:AABB:CCDD::/48 (6to4)
  return null;
}

/** Why `ip` is blocked ("cloud metadata" / "link-local"), or null. */
export function blockReason(ip: string): string | null {
  const fam = isIP(ip);
  if (fam === 4) {
    if (ip === "169.254.169.254") return "cloud metadata";
    if ((v4ToInt(ip) & 0xffff0000) >>> 0 === v4ToInt("169.254.0.0")) return "link-local";
    return null;
  }
  if (fam === 6) {
    const g = expandV6(ip);
    if (!g) return null;
    const embedded = embeddedV4(g);
    if (embedded) return blockReason(embedded);
    if (g.join(":") === [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254].join(":")) return "cloud metadata";
    if ((g[0]! & 0xffc0) === 0xfe80) return "link-local";
    return null;
  }
  return null;
}

/**
 * Resolve `host` (a name or an IP literal) and vet every address. Returns the addresses in
 * resolution order; throws NetguardError if any is blocked or the name does not resolve.
 */
export async function resolveAndVet(
  host: string,
  lookup: Lookup = defaultLookup,
  blocked?: CidrSet,
): Promise<string[]> {
  const literal = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIP(literal)) {
    vet(literal, `${literal}`, blocked);
    return [literal];
  }
  let addrs: string[];
  try {
    addrs = await lookup(host);
  } catch {
    throw new NotResolvedError(`dial tcp: lookup ${host}: no such host`);
  }
  if (addrs.length === 0) throw new NotResolvedError(`dial tcp: lookup ${host}: no such host`);
  for (const a of addrs) vet(a, `${host} resolves to ${a}`, blocked);
  return addrs;
}

/** Throw NetguardError when `ip` is blocked (Phase 1 ranges, then the manifest's blocked_cidrs). */
function vet(ip: string, what: string, blocked: CidrSet | undefined): void {
  const why = blockReason(ip);
  if (why) {
    series.netguardBlocks.inc({ reason: why });
    throw new NetguardError(`netguard: address blocked by policy: ${what} (${why})`);
  }
  const cidr = blocked ? cidrBlockReason(blocked, ip) : null;
  if (cidr) {
    series.netguardBlocks.inc({ reason: "blocked_cidr" });
    throw new NetguardError(`netguard: address blocked by policy: ${what} (${cidr})`, "blocked_cidr");
  }
}

/**
 * resolveAndVet with a short-lived cache of vetted answers (per name, `ttlMs`, at most `max`
 * names, concurrent lookups for a name shared). A cached answer is only ever addresses that passed
 * the vetting, and they are what gets dialled, so the cache cannot be used to rebind a name; it
 * spares a resolver round-trip per request (≈8 % of CPU at c=1 in bench/). Refusals are not cached.
 * A cached answer comes back as an array, a lookup as a promise (refusals reject, never throw).
 */
export function cachedResolver(
  ttlMs = 5_000,
  max = 1024,
  lookup: Lookup = defaultLookup,
  blocked?: CidrSet,
): (host: string) => string[] | Promise<string[]> {
  const cache = new Map<string, { addrs: string[]; expires: number }>();
  const inflight = new Map<string, Promise<string[]>>();
  // a cached answer is returned as it is (no promise to await on every request); a lookup is a promise
  return (host) => {
    const hit = cache.get(host);
    if (hit && hit.expires > Date.now()) return hit.addrs;
    return lookUp(host);
  };
  async function lookUp(host: string): Promise<string[]> {
    let p = inflight.get(host);
    if (!p) {
      p = resolveAndVet(host, lookup, blocked).finally(() => inflight.delete(host));
      inflight.set(host, p);
    }
    const addrs = await p;
    if (cache.size >= max) cache.delete(cache.keys().next().value!);
    cache.set(host, { addrs, expires: Date.now() + ttlMs });
    return addrs;
  }
}

// src/match/index.ts createMatcher: precedence (exact > more labels > fewer; service wins a tie),
// X-Clef-Service per level, ambiguity, blocked_hosts, IP literals, and a fuzz against a
// straightforward reference implementation.
import { describe, expect, test } from "bun:test";
import type { Manifest, Service } from "../../../src/agent/types.ts";
import { parseHostPattern } from "../../../src/match/host.ts";
import { createBlockList, createMatcher, type MatchResult } from "../../../src/match/index.ts";
import { rng } from "../../helpers/rng.ts";

const svc = (name: string, host: string, hosts?: string[]): Service => ({
  name,
  host,
  ...(hosts ? { hosts } : {}),
  auth: { scheme: "bearer", credential: "ns/K" },
});
const manifest = (services: Service[], passthroughHosts: string[] = [], blockedHosts: string[] = []): Manifest => ({
  schemaVersion: 1,
  identity: "",
  environment: "",
  services,
  passthroughHosts,
  ...(blockedHosts.length ? { blockedHosts } : {}),
});
/** The result with the service reduced to its name, for compact tables. */
const brief = (r: MatchResult) => (r.kind === "service" ? { ...r, service: r.service.name } : r);

describe("the F4 example", () => {
  const m = createMatcher(
    manifest([svc("gh-api", "api.github.com"), svc("gh", "*.github.com")], ["status.github.com"]),
  );
  test.each([
    ["api.github.com", { kind: "service", service: "gh-api" }],
    ["uploads.github.com", { kind: "service", service: "gh", pattern: "*.github.com" }],
    ["a.b.uploads.github.com", { kind: "service", service: "gh", pattern: "*.github.com" }],
    ["status.github.com", { kind: "passthrough" }],
    ["x.status.github.com", { kind: "service", service: "gh", pattern: "*.github.com" }],
    ["github.com", { kind: "deny" }],
    ["API.GitHub.com.:443", { kind: "service", service: "gh-api" }],
    ["evilgithub.com", { kind: "deny" }],
    ["github.com.evil.test", { kind: "deny" }],
  ])("%s", (host, want) => {
    expect(brief(m.match(host, null))).toEqual(want as never);
  });
});

describe("precedence", () => {
  test("more labels beat fewer, across services and passthrough; a service wins a tie", () => {
    const m = createMatcher(
      manifest(
        [svc("short", "*.example.test"), svc("long", "*.api.example.test"), svc("tie", "*.tie.example.test")],
        ["*.pass.example.test", "*.tie.example.test", "*.example.test"],
      ),
    );
    expect(brief(m.match("a.api.example.test", null))).toEqual({
      kind: "service",
      service: "long",
      pattern: "*.api.example.test",
    });
    expect(brief(m.match("a.pass.example.test", null))).toEqual({
      kind: "passthrough",
      pattern: "*.pass.example.test",
    });
    expect(brief(m.match("a.tie.example.test", null))).toEqual({
      kind: "service",
      service: "tie",
      pattern: "*.tie.example.test",
    });
    // the apex of a longer wildcard falls to the shorter one
    expect(brief(m.match("api.example.test", null))).toEqual({
      kind: "service",
      service: "short",
      pattern: "*.example.test",
    });
    expect(m.match("example.test", null)).toEqual({ kind: "deny" });
  });
  test("an exact passthrough beats a service wildcard; an exact service beats an exact passthrough (Phase 1)", () => {
    const m = createMatcher(manifest([svc("w", "*.x.test"), svc("both", "both.x.test")], ["p.x.test", "both.x.test"]));
    expect(m.match("p.x.test", null)).toEqual({ kind: "passthrough" });
    expect(brief(m.match("both.x.test", null))).toEqual({ kind: "service", service: "both" });
  });
  test("hosts: host ∪ hosts, duplicates ignored, each pattern competes on its own", () => {
    const m = createMatcher(
      manifest([
        svc("github", "api.github.test", ["api.github.test", "API.github.test.", "uploads.github.test", "*.ghuc.test"]),
        svc("raw", "raw.ghuc.test"),
      ]),
    );
    expect(brief(m.match("api.github.test", null))).toEqual({ kind: "service", service: "github" });
    expect(brief(m.match("uploads.github.test", null))).toEqual({ kind: "service", service: "github" });
    expect(brief(m.match("objects.ghuc.test", null))).toEqual({
      kind: "service",
      service: "github",
      pattern: "*.ghuc.test",
    });
    expect(brief(m.match("raw.ghuc.test", null))).toEqual({ kind: "service", service: "raw" });
    expect(m.match("other.github.test", null)).toEqual({ kind: "deny" });
  });
  test("a service whose host is empty is served through its hosts", () => {
    const m = createMatcher(manifest([svc("h", "", ["a.test"])]));
    expect(brief(m.match("a.test", null))).toEqual({ kind: "service", service: "h" });
    expect(m.match("", null)).toEqual({ kind: "deny" });
  });
});

describe("X-Clef-Service and ambiguity", () => {
  const m = createMatcher(
    manifest([
      svc("b", "*.x.test"),
      svc("a", "*.x.test"),
      svc("a", "*.x.test"),
      svc("solo", "*.y.x.test"),
      svc("e1", "e.x.test"),
      svc("e2", "e.x.test"),
      svc("wide", "*.test"), // invalid (two labels needed): never matches
    ]),
  );
  test("several at the winning level: the header picks (first in manifest order), else ambiguous with that level's names", () => {
    expect(m.match("q.x.test", null)).toEqual({ kind: "ambiguous", candidates: ["a", "a", "b"], pattern: "*.x.test" });
    expect(m.match("q.x.test", "")).toMatchObject({ kind: "ambiguous" });
    expect(m.match("q.x.test", "A")).toMatchObject({ kind: "ambiguous" });
    expect(m.match("q.x.test", "zzz")).toMatchObject({ kind: "ambiguous" });
    expect(brief(m.match("q.x.test", "a"))).toEqual({ kind: "service", service: "a", pattern: "*.x.test" });
    expect(brief(m.match("e.x.test", "e2"))).toEqual({ kind: "service", service: "e2" });
    expect(m.match("e.x.test", null)).toEqual({ kind: "ambiguous", candidates: ["e1", "e2"] });
  });
  test("the first of two same-named services is picked", () => {
    const first = svc("dup", "d.test");
    const second = svc("dup", "d.test");
    const mm = createMatcher(manifest([first, second]));
    const r = mm.match("d.test", "dup");
    expect(r.kind === "service" && r.service).toBe(first);
    expect(mm.match("d.test", null)).toEqual({ kind: "ambiguous", candidates: ["dup", "dup"] });
  });
  test("one service at the winning level: the header is ignored, and never reaches a less specific level", () => {
    expect(brief(m.match("q.y.x.test", "a"))).toEqual({ kind: "service", service: "solo", pattern: "*.y.x.test" });
    expect(brief(m.match("e.x.test", "a"))).toMatchObject({ kind: "ambiguous", candidates: ["e1", "e2"] });
  });
});

describe("blocked_hosts", () => {
  const m = createMatcher(
    manifest(
      [svc("gh", "api.github.test"), svc("paste", "*.pastebin.test"), svc("ip", "10.0.0.9"), svc("v6", "[fd00::9]")],
      ["transfer.test", "*.pastebin.test"],
      ["*.pastebin.test", "transfer.test", "API.github.test.", "10.0.0.9", "fd00::9", "*.deep.a.test"],
    ),
  );
  test.each([
    ["x.pastebin.test", "*.pastebin.test"],
    ["a.b.pastebin.test:443", "*.pastebin.test"],
    ["transfer.test", "transfer.test"],
    ["TRANSFER.test.", "transfer.test"],
    ["api.github.test", "api.github.test"],
    ["10.0.0.9", "10.0.0.9"],
    ["::ffff:10.0.0.9", "10.0.0.9"],
    ["[::ffff:a00:9]:443", "10.0.0.9"],
    ["64:ff9b::10.0.0.9", "10.0.0.9"],
    ["[fd00::9]", "fd00::9"],
    ["[FD00:0:0::9]:443", "fd00::9"],
    ["x.deep.a.test", "*.deep.a.test"],
  ])("%s is blocked by %s, whatever else matches", (host, pattern) => {
    expect(m.match(host, "gh")).toEqual({ kind: "blocked", pattern });
    expect(m.blocked(host)).toBe(pattern);
  });
  test.each(["pastebin.test", "deep.a.test", "a.test", "api2.github.test", "10.0.0.10", "fd00::a"])(
    "%s is not blocked",
    (host) => {
      expect(m.blocked(host)).toBeUndefined();
      expect(m.match(host, null).kind).not.toBe("blocked");
    },
  );
  test("the most specific block is named", () => {
    const b = createBlockList(["*.a.test", "x.a.test"]);
    expect(b.match("x.a.test")).toBe("x.a.test");
    expect(b.match("y.x.a.test")).toBe("*.a.test");
  });
  test("an invalid entry is refused (restrictive data)", () => {
    expect(() => createBlockList(["ok.test", "*.com"])).toThrow(
      'blocked_hosts[1] "*.com" is not a valid host pattern: a wildcard needs at least two labels after "*."',
    );
    expect(() => createMatcher(manifest([], [], ["bad host"]))).toThrow("blocked_hosts[0]");
  });
  test("covers: which patterns a block shadows entirely", () => {
    const b = createBlockList(["*.pastebin.test", "transfer.test"]);
    const p = (s: string) => {
      const r = parseHostPattern(s);
      if (!r.ok) throw new Error(r.problem);
      return r.pattern;
    };
    expect(b.covers(p("*.pastebin.test"))).toBe("*.pastebin.test");
    expect(b.covers(p("*.x.pastebin.test"))).toBe("*.pastebin.test");
    expect(b.covers(p("a.pastebin.test"))).toBe("*.pastebin.test");
    expect(b.covers(p("transfer.test"))).toBe("transfer.test");
    expect(b.covers(p("*.transfer.test"))).toBeUndefined();
    expect(b.covers(p("pastebin.test"))).toBeUndefined();
    expect(b.covers(p("*.test.pastebin.test"))).toBe("*.pastebin.test");
  });
});

describe("IP literals, ports, trailing dots, IDN, invalid hosts", () => {
  const m = createMatcher(
    manifest(
      [
        svc("v4", "127.0.0.2"),
        svc("v6", "[::1]"),
        svc("v6b", "2001:db8::1"),
        svc("idn", "xn--bcher-kva.example"),
        svc("star", "*.p2.test"),
        svc("bad", "bücher.example"),
        svc("port", "port.test:19443"),
      ],
      ["*.0.0.2"],
    ),
  );
  test.each([
    ["127.0.0.2", { kind: "service", service: "v4" }],
    ["127.0.0.2:8443", { kind: "service", service: "v4" }],
    ["x.127.0.0.2", { kind: "deny" }],
    ["127.0.0.3", { kind: "deny" }],
    ["[::1]:443", { kind: "service", service: "v6" }],
    ["::1", { kind: "service", service: "v6" }],
    ["[2001:DB8::1]", { kind: "service", service: "v6b" }],
    ["[2001:db8:0::1]", { kind: "deny" }], // IP literals match only exactly (as written, case folded)
    ["XN--BCHER-KVA.example.", { kind: "service", service: "idn" }],
    ["port.test", { kind: "service", service: "port" }],
    ["port.test:1", { kind: "service", service: "port" }],
    ["a.p2.test", { kind: "service", service: "star", pattern: "*.p2.test" }],
    ["*.p2.test", { kind: "deny" }], // a literal "*" never matches a wildcard
    ["*.p2.test:443", { kind: "deny" }],
    ["bücher.example", { kind: "deny" }],
    ["", { kind: "deny" }],
    ["p2.test", { kind: "deny" }],
  ])("%p", (host, want) => {
    expect(brief(m.match(host, null))).toEqual(want as never);
  });
});

// ------------------------------------------------------------------------------------------------
// Fuzz: random host names against ≥ 1,000 random patterns, compared with a reference written from
// the spec (no maps, no suffix walking: every pattern is tried on every host).

type Ref =
  | { kind: "blocked"; pattern: string }
  | { kind: "service"; service: Service; pattern?: string }
  | {
      kind: "passthrough";
      pattern?: string;
    }
  | { kind: "deny" }
  | { kind: "ambiguous"; candidates: string[]; pattern?: string };

/** Canonical pattern → its specificity against canonical host h (Infinity exact, label count for a wildcard), or -1. */
function refSpecificity(pattern: string, h: string): number {
  const p = pattern.toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");
  if (p.startsWith("*.")) {
    const suffix = p.slice(2);
    if (suffix.split(".").length < 2) return -1;
    return h.endsWith("." + suffix) && h.length > suffix.length + 1 ? suffix.split(".").length + 1 : -1;
  }
  return p === h ? Number.POSITIVE_INFINITY : -1;
}

function reference(m: Manifest, h: string, header: string | null): Ref {
  let bestBlock: string | undefined;
  let bestBlockSpec = -1;
  for (const b of m.blockedHosts ?? []) {
    const s = refSpecificity(b, h);
    if (s > bestBlockSpec) {
      bestBlockSpec = s;
      bestBlock = b.toLowerCase().replace(/:\d+$/, "").replace(/\.$/, "");
    }
  }
  if (bestBlock !== undefined) return { kind: "blocked", pattern: bestBlock };
  let best = -1;
  for (const s of m.services) for (const p of [s.host, ...(s.hosts ?? [])]) best = Math.max(best, refSpecificity(p, h));
  for (const p of m.passthroughHosts) best = Math.max(best, refSpecificity(p, h));
  if (best < 0) return { kind: "deny" };
  const at =
    best === Number.POSITIVE_INFINITY
      ? {}
      : {
          pattern: `*.${h
            .split(".")
            .slice(-(best - 1))
            .join(".")}`,
        };
  const services = m.services.filter((s) => [s.host, ...(s.hosts ?? [])].some((p) => refSpecificity(p, h) === best));
  if (services.length === 1) return { kind: "service", service: services[0]!, ...at };
  if (services.length > 1) {
    const picked = header ? services.find((s) => s.name === header) : undefined;
    if (picked) return { kind: "service", service: picked, ...at };
    return { kind: "ambiguous", candidates: services.map((s) => s.name).sort(), ...at };
  }
  return { kind: "passthrough", ...at };
}

describe("fuzz against a reference implementation", () => {
  test("3,000 random hosts × a manifest of ≥ 1,000 random patterns (fixed seed)", () => {
    const r = rng(0xc1ef);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const LABELS = ["a", "b", "c", "d", "e", "api", "x-1", "s_2"];
    const TLDS = ["test", "example", "org"];
    const name = (min: number, max: number) => {
      const n = min + Math.floor(r() * (max - min + 1));
      const ls: string[] = [];
      for (let i = 0; i < n - 1; i++) ls.push(pick(LABELS));
      ls.push(pick(TLDS));
      return ls.join(".");
    };
    const decorate = (p: string) => {
      let out = p;
      if (r() < 0.2) out = out.toUpperCase();
      if (r() < 0.1) out += ".";
      if (r() < 0.1) out += ":8443";
      return out;
    };
    const pattern = () => decorate(r() < 0.45 ? `*.${r() < 0.15 ? name(2, 2) : name(3, 4)}` : name(1, 5));
    const NAMES = Array.from({ length: 40 }, (_, i) => `svc${i}`);
    const services: Service[] = [];
    let count = 0;
    while (count < 900) {
      const extra = Array.from({ length: Math.floor(r() * 4) }, pattern);
      services.push(svc(pick(NAMES), pattern(), extra.length ? extra : undefined));
      count += 1 + extra.length;
    }
    const passthrough = Array.from({ length: 250 }, pattern);
    const blocked = Array.from({ length: 12 }, () => (r() < 0.5 ? `*.${name(3, 4)}` : name(2, 5)));
    const m = manifest(services, passthrough, blocked);
    expect(count + passthrough.length + blocked.length).toBeGreaterThanOrEqual(1000);
    const matcher = createMatcher(m);
    const kinds: Record<string, number> = {};
    const all = [...services.flatMap((x) => [x.host, ...(x.hosts ?? [])]), ...passthrough, ...blocked].map((p) =>
      p.toLowerCase().replace(/:\d+$/, "").replace(/\.$/, ""),
    );
    for (let i = 0; i < 3000; i++) {
      // a third of the hosts are built from a pattern (the pattern itself, or one name under it)
      const from = pick(all);
      const near = from.startsWith("*.")
        ? `${pick(LABELS)}${from.slice(1)}`
        : r() < 0.5
          ? from
          : `${pick(LABELS)}.${from}`;
      const canonical = r() < 0.35 ? near : r() < 0.1 ? `${name(1, 3)}.net` : name(1, 6);
      const host = decorate(canonical);
      const header = r() < 0.5 ? pick(NAMES) : null;
      const got = matcher.match(host, header);
      const want = reference(m, canonical, header);
      kinds[got.kind] = (kinds[got.kind] ?? 0) + 1;
      if (
        JSON.stringify(brief(got)) !== JSON.stringify(brief(want as MatchResult)) ||
        (got.kind === "service" && want.kind === "service" && got.service !== want.service)
      )
        throw new Error(
          `host ${host} header ${header}: got ${JSON.stringify(brief(got))}, want ${JSON.stringify(brief(want as MatchResult))}`,
        );
    }
    // every outcome was exercised
    for (const k of ["blocked", "service", "passthrough", "deny", "ambiguous"])
      expect(kinds[k] ?? 0).toBeGreaterThan(20);
  }, 60_000); // the brute-force reference takes ≈5 s on a slow 2-core machine: bun's 5 s default is not a limit of ours
});

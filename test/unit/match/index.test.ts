// src/match/index.ts: host canonicalisation, authorities, the one-host rule (effectiveHost, §18.1)
// and the Phase 1 matcher answers (moved from test/policy.test.ts). Precedence, wildcards,
// X-Clef-Service and blocked_hosts are in ./matcher.test.ts.
import { describe, expect, test } from "bun:test";
import type { Service } from "../../../src/agent/types.ts";
import {
  canonicalHost,
  createMatcher,
  effectiveHost,
  joinAuthority,
  splitAuthority,
} from "../../../src/match/index.ts";
import { hostKind } from "../../../src/match/host.ts";
import type { HostDecision, HostEvidence } from "../../../src/match/index.ts";
import { rng } from "../../helpers/rng.ts";

describe("authorities and canonical hosts", () => {
  test("canonical host", () => {
    expect(canonicalHost("API.Test.:443")).toBe("api.test");
    expect(canonicalHost("[::1]:8443")).toBe("::1");
    expect(canonicalHost(" Api.Test ")).toBe("api.test");
    expect(canonicalHost("[2001:DB8::1]")).toBe("2001:db8::1");
    expect(canonicalHost("")).toBe("");
    expect(splitAuthority("[::1]:8443")).toEqual({ host: "::1", port: "8443" });
  });
  test.each([
    ["api.test:443", { host: "api.test", port: "443" }],
    ["api.test", { host: "api.test", port: "" }],
    ["api.test:", { host: "api.test", port: "" }],
    ["[::1]", { host: "::1", port: "" }],
    ["[::1]:", { host: "::1", port: "" }],
    ["::1", { host: "::1", port: "" }],
    ["[::1", { host: "[::1", port: "" }],
    ["[::1]x", { host: "::1", port: "" }],
  ])("splitAuthority(%p)", (a, want) => {
    expect(splitAuthority(a)).toEqual(want);
  });
  test("remembered answers (bounded) stay right past the bound, for long values and alternating ones", () => {
    for (let i = 0; i < 2_500; i++) {
      expect(canonicalHost(`H${i}.Test.:443`)).toBe(`h${i}.test`);
      expect(canonicalHost(i % 2 ? "API.test" : "[::1]:1")).toBe(i % 2 ? "api.test" : "::1");
      expect(hostKind(i % 3 ? `h${i}.test` : `10.0.${i % 256}.1`)).toBe(i % 3 ? "name" : "ip");
    }
    const long = `${"a".repeat(63)}.`.repeat(5); // 320 characters: computed every time, never kept
    expect(canonicalHost(`${long.toUpperCase()}:1`)).toBe(long.slice(0, -1));
    expect(canonicalHost(`${long.toUpperCase()}:1`)).toBe(long.slice(0, -1));
    expect(hostKind("bad_host!")).toBeNull();
    expect(hostKind("bad_host!")).toBeNull();
  });
  test("joinAuthority brackets IPv6 and omits an empty port", () => {
    expect(joinAuthority({ host: "::1", port: "8443" })).toBe("[::1]:8443");
    expect(joinAuthority({ host: "api.test", port: "" })).toBe("api.test");
    expect(joinAuthority({ host: "api.test", port: "80" })).toBe("api.test:80");
  });
});

describe("matching (Phase 1 answers)", () => {
  const svc = (name: string, host: string): Service => ({ name, host, auth: { scheme: "bearer", credential: "ns/K" } });
  const m = createMatcher({
    schemaVersion: 1,
    identity: "",
    environment: "",
    services: [
      svc("up", "UP.test"),
      svc("t", "trail.test."),
      svc("a", "dup.test"),
      svc("b", "dup.test"),
      svc("both", "both.test"),
    ],
    passthroughHosts: ["Pass.test", "both.test", "*.wild.test"],
  });
  test("0/1/N, passthrough, service wins; `*.x` is a wildcard since Phase 2 (F4)", () => {
    expect(m.match("up.test:1", null)).toMatchObject({ kind: "service", service: { name: "up" } });
    expect(m.match("trail.test", "ignored")).toMatchObject({ kind: "service", service: { name: "t" } });
    expect(m.match("dup.test", null)).toEqual({ kind: "ambiguous", candidates: ["a", "b"] });
    expect(m.match("dup.test", "b")).toMatchObject({ kind: "service", service: { name: "b" } });
    expect(m.match("dup.test", "B")).toMatchObject({ kind: "ambiguous" });
    expect(m.match("PASS.test:9", null)).toEqual({ kind: "passthrough" });
    expect(m.match("both.test", null)).toMatchObject({ kind: "service" });
    expect(m.match("x.wild.test", null)).toEqual({ kind: "passthrough", pattern: "*.wild.test" });
    expect(m.match("wild.test", null)).toEqual({ kind: "deny" });
    expect(m.match("sub.pass.test", null)).toEqual({ kind: "deny" });
    expect(m.match("", null)).toEqual({ kind: "deny" });
  });
});

describe("effectiveHost: one host per request (§18.1)", () => {
  const c = { host: "api.test", port: "443" };
  test("one host per request", () => {
    expect(effectiveHost({ connect: c, sni: "API.test", hostHeader: "api.test", defaultPort: "443" })).toMatchObject({
      ok: true,
      host: "api.test",
      port: "443",
    });
    expect(effectiveHost({ connect: c, hostHeader: "api.test:443", defaultPort: "443" }).ok).toBe(true);
    expect(effectiveHost({ connect: c, hostHeader: "api.test:8443", defaultPort: "443" }).ok).toBe(false);
    expect(effectiveHost({ connect: c, sni: "other.test", hostHeader: "api.test", defaultPort: "443" }).ok).toBe(false);
    expect(
      effectiveHost({
        connect: c,
        hostHeader: "api.test",
        absolute: { host: "other.test", port: "" },
        defaultPort: "443",
      }).ok,
    ).toBe(false);
    expect(
      effectiveHost({ absolute: { host: "a.test", port: "" }, hostHeader: "a.test:80", defaultPort: "80" }).ok,
    ).toBe(true);
    expect(effectiveHost({ absolute: { host: "a.test", port: "" }, hostHeader: "b.test", defaultPort: "80" }).ok).toBe(
      false,
    );
  });

  test("the reason names the two names that differ, in the order CONNECT, SNI, request-target, Host", () => {
    expect(effectiveHost({ connect: c, sni: "x.test", hostHeader: "y.test", defaultPort: "443" })).toEqual({
      ok: false,
      reason: 'TLS SNI names "x.test" but CONNECT names "api.test"',
      hostForAudit: "y.test",
    });
    expect(
      effectiveHost({ absolute: { host: "a.test", port: "8080" }, hostHeader: "b.test", defaultPort: "80" }),
    ).toEqual({
      ok: false,
      reason: 'Host header names "b.test" but request-target names "a.test"',
      hostForAudit: "a.test:8080",
    });
  });

  test("ports: the CONNECT port rules; inner ports must equal it; without CONNECT the default port counts", () => {
    expect(
      effectiveHost({ connect: { host: "api.test", port: "8443" }, hostHeader: "api.test", defaultPort: "443" }),
    ).toEqual({
      ok: true,
      host: "api.test",
      port: "8443",
      hostForAudit: "api.test",
    });
    expect(
      effectiveHost({ connect: { host: "api.test", port: "8443" }, hostHeader: "api.test:443", defaultPort: "443" }),
    ).toMatchObject({ ok: false, reason: "Host header port 443 differs from CONNECT port 8443" });
    expect(effectiveHost({ hostHeader: "a.test:8080", defaultPort: "80" })).toMatchObject({ ok: true, port: "8080" });
    expect(effectiveHost({ hostHeader: "a.test", defaultPort: "80" })).toMatchObject({ ok: true, port: "80" });
    expect(
      effectiveHost({ absolute: { host: "a.test", port: "443" }, hostHeader: "a.test", defaultPort: "443" }),
    ).toMatchObject({ ok: true, port: "443" });
  });

  test('no names at all: ok with host ""', () => {
    expect(effectiveHost({ defaultPort: "80" })).toEqual({ ok: true, host: "", port: "80", hostForAudit: "" });
    expect(effectiveHost({ connect: c, hostHeader: "", defaultPort: "443" })).toMatchObject({
      ok: true,
      host: "api.test",
    });
  });
});

// The one-host rule as first written (arrays of names and ports), kept as the oracle of the
// allocation-free version (issue 19, seventh pass): same answer and reason for every evidence.
function effectiveHostOracle(ev: HostEvidence): HostDecision {
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

describe("effectiveHost against its first form", () => {
  test("5,000 seeded combinations of CONNECT, SNI, request-target and Host (case, dots, ports, IPv6)", () => {
    const r = rng(181);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const hosts = ["api.test", "API.test", "api.test.", "other.test", "127.0.0.2", "::1", "[::1]", ""];
    const ports = ["", "443", "80", "8443"];
    const authority = () => {
      const h = pick(hosts);
      const p = pick(ports);
      if (p === "") return h;
      return h.includes(":") && !h.startsWith("[") ? `[${h}]:${p}` : `${h}:${p}`;
    };
    for (let i = 0; i < 5000; i++) {
      const ev: HostEvidence = { defaultPort: pick(["443", "80"]) };
      if (r() < 0.7) ev.connect = { host: pick(hosts), port: pick(["443", "8443"]) };
      if (r() < 0.5) ev.sni = pick(hosts);
      if (r() < 0.3) ev.absolute = { host: pick(hosts), port: pick(ports) };
      if (r() < 0.8) ev.hostHeader = authority();
      expect({ ev, got: effectiveHost(ev) }).toEqual({ ev, got: effectiveHostOracle(ev) });
    }
  });
});

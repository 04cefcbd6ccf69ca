// Pure policy modules from source: config decoding, durations, matching, the one-host rule,
// injection, hop-by-hop stripping, netguard.
import { describe, expect, test } from "bun:test";
import { formatGoDuration, parseGoDuration } from "../src/config/duration.ts";
import { parseConfig } from "../src/config/load.ts";
import { applyInjection, checkServices, parseHandle, setQueryParam } from "../src/inject/index.ts";
import { canonicalHeaderName } from "../src/http/headers.ts";
import { stripHopByHop } from "../src/http/hop-by-hop.ts";
import { canonicalHost, createMatcher, effectiveHost, splitAuthority } from "../src/match/index.ts";
import { blockReason, cachedResolver, resolveAndVet } from "../src/netguard/index.ts";
import type { Service } from "../src/agent/types.ts";

describe("config", () => {
  test("defaults for {}", () => {
    const c = parseConfig("{}", {});
    expect(c.listen.port).toBe(8888);
    expect(c.audit).toEqual({ destination: "stdout", file: "", maxSizeMb: 100, maxFiles: 5 });
    expect(c.serve.drainTimeoutText).toBe("5s");
    expect(parseConfig("{}", { AWS_LAMBDA_FUNCTION_NAME: "f" }).serve.drainTimeoutText).toBe("1s");
    expect(parseConfig('{"listen":{"port":0},"serve":{"drain_timeout":"0s"}}', {}).listen.port).toBe(8888);
  });
  test("Go's case-insensitive field names and null", () => {
    const c = parseConfig('{"LISTEN":{"Port":9000},"audit":null,"upstream":{"no_proxy":null}}', {});
    expect(c.listen.port).toBe(9000);
    expect(c.upstream.noProxy).toEqual([]);
  });
  test("durations round-trip like Go", () => {
    for (const [s, out] of [
      ["1m0.5s", "1m0.5s"],
      ["90s", "1m30s"],
      ["1h", "1h0m0s"],
      ["1.5s", "1.5s"],
      ["250ms", "250ms"],
      ["2us", "2µs"],
    ] as const) {
      expect(formatGoDuration(parseGoDuration(s))).toBe(out);
    }
    expect(() => parseGoDuration("bogus")).toThrow('time: invalid duration "bogus"');
    expect(() => parseGoDuration("5")).toThrow('time: missing unit in duration "5"');
    expect(() => parseGoDuration("5y")).toThrow('time: unknown unit "y" in duration "5y"');
  });
});

describe("matching", () => {
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
  test("canonical host", () => {
    expect(canonicalHost("API.Test.:443")).toBe("api.test");
    expect(canonicalHost("[::1]:8443")).toBe("::1");
    expect(splitAuthority("[::1]:8443")).toEqual({ host: "::1", port: "8443" });
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
  });
  test("one host per request", () => {
    const c = { host: "api.test", port: "443" };
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
});

describe("injection", () => {
  const svc = (auth: Service["auth"]): Service => ({ name: "s", host: "h", auth });
  test("handles", () => {
    expect(parseHandle("ns/KEY")).toEqual({ namespace: "ns", key: "KEY" });
    expect(() => parseHandle("noslash")).toThrow('clef-proxy: malformed credential handle "noslash"');
    expect(() => parseHandle("/k")).toThrow("malformed");
    expect(() => parseHandle("ns.a/k")).toThrow('agent: invalid namespace "ns.a"');
    expect(() => parseHandle("ns/b/c")).toThrow('agent: invalid key "b/c"');
  });
  test("schemes and guards; the secret never appears in an error", () => {
    const r = applyInjection(
      svc({ scheme: "bearer", credential: "n/k" }),
      "S",
      [
        ["authorization", "x"],
        ["Authorization", "y"],
      ],
      "/",
    );
    expect(r.headers).toEqual([["Authorization", "Bearer S"]]);
    expect(r.overwrote).toBe(true);
    expect(
      applyInjection(svc({ scheme: "api_key_header", header: "x-lower-key", credential: "n/k" }), "S", [], "/").headers,
    ).toEqual([["X-Lower-Key", "S"]]);
    for (const [auth, msg] of [
      [
        { scheme: "api_key_header", credential: "n/k" },
        'clef-proxy: inject: scheme "api_key_header" requires auth.header',
      ],
      [
        { scheme: "api_key_query", credential: "n/k" },
        'clef-proxy: inject: scheme "api_key_query" requires auth.query',
      ],
      [{ scheme: "Bearer", credential: "n/k" }, 'clef-proxy: inject: unsupported scheme "Bearer"'],
      [
        { scheme: "api_key_header", header: "X-Bad\r\nInjected", credential: "n/k" },
        'clef-proxy: inject: auth.header "X-Bad\\r\\nInjected" is not a valid header name',
      ],
    ] as const) {
      expect(() => applyInjection(svc(auth as Service["auth"]), "S", [], "/")).toThrow(msg);
    }
    for (const bad of ["a\r\nb", "a\nb", "a\x00b"]) {
      try {
        applyInjection(svc({ scheme: "bearer", credential: "n/k" }), bad, [], "/");
        throw new Error("not thrown");
      } catch (e) {
        expect((e as Error).message).toContain("header injection guard");
        expect((e as Error).message).not.toContain(bad);
      }
    }
  });
  test("api_key_query keeps everything else byte for byte", () => {
    expect(setQueryParam("/x?b=2&key=1&a=%41;c&key=3", "key", "v w").target).toBe("/x?b=2&key=v+w&a=%41;c");
    expect(setQueryParam("/x", "key", "v").target).toBe("/x?key=v");
    expect(setQueryParam("/x?KEY=1", "key", "v").target).toBe("/x?KEY=1&key=v");
  });
  test("canonical header names", () => {
    expect(canonicalHeaderName("x-lower-key")).toBe("X-Lower-Key");
    expect(canonicalHeaderName("etag")).toBe("Etag");
  });
  test("hop-by-hop removal", () => {
    const h = stripHopByHop([
      ["Connection", "keep-alive, X-Hop"],
      ["X-Hop", "1"],
      ["Keep-Alive", "5"],
      ["TE", "trailers"],
      ["Proxy-Authorization", "p"],
      ["Proxy-Connection", "k"],
      ["X-Clef-Service", "s"],
      ["Transfer-Encoding", "chunked"],
      ["Accept", "*/*"],
    ]);
    expect(h).toEqual([["Accept", "*/*"]]);
  });
  test("startup warnings for services that can never work (§18.10)", () => {
    const w = checkServices({
      schemaVersion: 1,
      identity: "",
      environment: "",
      passthroughHosts: [],
      services: [svc({ scheme: "basic", credential: "noslash" }), svc({ scheme: "bearer", credential: "ns/K" })],
    });
    expect(w.map((x) => x.problem)).toEqual(['unsupported scheme "basic"', 'malformed credential handle "noslash"']);
  });
});

describe("netguard", () => {
  test("blocked ranges", () => {
    expect(blockReason("169.254.169.254")).toBe("cloud metadata");
    expect(blockReason("fd00:ec2::254")).toBe("cloud metadata");
    expect(blockReason("169.254.1.2")).toBe("link-local");
    expect(blockReason("fe80::1")).toBe("link-local");
    expect(blockReason("::ffff:169.254.169.254")).toBe("cloud metadata");
    expect(blockReason("127.0.0.1")).toBeNull();
    expect(blockReason("10.0.0.1")).toBeNull();
  });
  test("every resolved address is checked; the vetted list is what gets dialled", async () => {
    await expect(resolveAndVet("meta.test", async () => ["10.0.0.1", "169.254.169.254"])).rejects.toThrow(
      "netguard: address blocked by policy: meta.test resolves to 169.254.169.254 (cloud metadata)",
    );
    await expect(resolveAndVet("169.254.169.254")).rejects.toThrow(
      "netguard: address blocked by policy: 169.254.169.254 (cloud metadata)",
    );
    expect(await resolveAndVet("ok.test", async () => ["127.0.0.3", "::1"])).toEqual(["127.0.0.3", "::1"]);
    await expect(
      resolveAndVet("nx.test", async () => {
        throw new Error("ENOTFOUND");
      }),
    ).rejects.toThrow("dial tcp: lookup nx.test: no such host");
  });
});

describe("netguard: cached resolver", () => {
  test("a vetted answer is reused within the TTL, concurrent lookups are shared, refusals are not cached", async () => {
    const calls: string[] = [];
    const lookup = async (h: string) => {
      calls.push(h);
      await Bun.sleep(5);
      return h === "meta.test" ? ["169.254.169.254"] : ["10.0.0.7"];
    };
    const resolve = cachedResolver(60, 1024, lookup);
    expect(await Promise.all([resolve("a.test"), resolve("a.test")])).toEqual([["10.0.0.7"], ["10.0.0.7"]]);
    expect(await resolve("a.test")).toEqual(["10.0.0.7"]);
    expect(calls).toEqual(["a.test"]);
    await expect(resolve("meta.test")).rejects.toThrow("cloud metadata");
    await expect(resolve("meta.test")).rejects.toThrow("cloud metadata");
    expect(calls.filter((c) => c === "meta.test").length).toBe(2);
    await Bun.sleep(80);
    await resolve("a.test");
    expect(calls.filter((c) => c === "a.test").length).toBe(2);
  });
});

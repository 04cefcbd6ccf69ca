// src/netguard/index.ts: which addresses are refused (docs/CONTRACT.md §12, §18.11; smokescreen's
// classification of embedded IPv4), resolve-once-and-vet with a fake lookup, the manifest's
// blocked_cidrs (reason "blocked_cidr"), and the short-lived cache of vetted answers.
// (Cases moved from test/policy.test.ts, with the embedded-IPv4 forms added.)
import { describe, expect, test } from "bun:test";
import { createCidrSet } from "../../../src/netguard/cidr.ts";
import {
  blockReason,
  cachedResolver,
  NetguardError,
  NotResolvedError,
  resolveAndVet,
} from "../../../src/netguard/index.ts";

const META = "cloud metadata";
const LL = "link-local";

describe("blockReason", () => {
  const rows: Array<[string, string | null]> = [
    // IPv4
    ["169.254.169.254", META],
    ["169.254.0.0", LL],
    ["169.254.1.2", LL],
    ["169.254.255.255", LL],
    ["169.253.255.255", null],
    ["169.255.0.0", null],
    ["127.0.0.1", null],
    ["10.0.0.1", null],
    ["192.168.1.1", null],
    ["0.0.0.0", null],
    ["8.8.8.8", null],
    // IPv4-mapped ::ffff:0:0/96
    ["::ffff:169.254.169.254", META],
    ["::ffff:a9fe:a9fe", META],
    ["::FFFF:A9FE:A9FE", META],
    ["0:0:0:0:0:ffff:169.254.169.254", META],
    ["::ffff:169.254.1.1", LL],
    ["::ffff:127.0.0.1", null],
    // IPv4-compatible ::/96 (not :: nor ::1)
    ["::169.254.169.254", META],
    ["::a9fe:a9fe", META],
    ["::a9fe:101", LL],
    ["::1", null],
    ["::", null],
    ["::a00:1", null],
    // NAT64 64:ff9b::/96 and the local-use 64:ff9b:1::/48 (RFC 8215)
    ["64:ff9b::169.254.169.254", META],
    ["64:ff9b::a9fe:a9fe", META],
    ["64:ff9b::a9fe:1", LL],
    ["64:ff9b::a00:1", null],
    ["64:ff9b:1::a9fe:a9fe", META],
    ["64:ff9b:1:abcd::a9fe:a9fe", META],
    ["64:ff9b:1::169.254.0.1", LL],
    ["64:ff9b:2::a9fe:a9fe", null],
    // 6to4 2002:AABB:CCDD::/48
    ["2002:a9fe:a9fe::", META],
    ["2002:a9fe:a9fe:1::5", META],
    ["2002:a9fe:0101::1", LL],
    ["2002:0a00:0001::", null],
    // fe80::/10
    ["fe80::1", LL],
    ["FE80::1", LL],
    ["fe80::1%eth0", LL],
    ["febf:ffff::1", LL],
    ["fec0::1", null],
    ["fe7f::1", null],
    // the AWS IPv6 metadata address
    ["fd00:ec2::254", META],
    ["fd00:ec2:0:0:0:0:0:254", META],
    ["FD00:EC2::254", META],
    ["fd00:ec2::255", null],
    ["fd00::254", null],
    ["2001:db8::1", null],
    // not an address
    ["api.test", null],
    ["", null],
    ["[::1]", null],
  ];
  for (const [ip, want] of rows) {
    test(`${ip || '""'} → ${want}`, () => {
      expect(blockReason(ip)).toBe(want);
    });
  }
});

describe("resolveAndVet", () => {
  const noLookup = async (): Promise<string[]> => {
    throw new Error("an IP literal must not be resolved");
  };

  test("IP literals are vetted without a lookup (brackets removed)", async () => {
    expect(await resolveAndVet("127.0.0.1", noLookup)).toEqual(["127.0.0.1"]);
    expect(await resolveAndVet("[::1]", noLookup)).toEqual(["::1"]);
    expect(await resolveAndVet("2001:db8::1", noLookup)).toEqual(["2001:db8::1"]);
    await expect(resolveAndVet("169.254.169.254", noLookup)).rejects.toThrow(
      "netguard: address blocked by policy: 169.254.169.254 (cloud metadata)",
    );
    await expect(resolveAndVet("[fe80::1]", noLookup)).rejects.toThrow(
      "netguard: address blocked by policy: fe80::1 (link-local)",
    );
    await expect(resolveAndVet("[::ffff:169.254.169.254]", noLookup)).rejects.toThrow("(cloud metadata)");
  });

  test("every resolved address is checked; the vetted list, in resolution order, is what gets dialled", async () => {
    await expect(resolveAndVet("meta.test", async () => ["10.0.0.1", "169.254.169.254"])).rejects.toThrow(
      "netguard: address blocked by policy: meta.test resolves to 169.254.169.254 (cloud metadata)",
    );
    await expect(resolveAndVet("ll.test", async () => ["fe80::5", "127.0.0.1"])).rejects.toThrow(
      "netguard: address blocked by policy: ll.test resolves to fe80::5 (link-local)",
    );
    expect(await resolveAndVet("ok.test", async () => ["127.0.0.3", "::1"])).toEqual(["127.0.0.3", "::1"]);
  });

  test("the name is looked up exactly as given, once", async () => {
    const seen: string[] = [];
    await resolveAndVet("Api.Test", async (h) => {
      seen.push(h);
      return ["127.0.0.1"];
    });
    expect(seen).toEqual(["Api.Test"]);
  });

  test("a name that does not resolve → NotResolvedError (left to a corporate proxy when one is used)", async () => {
    for (const lookup of [
      async (): Promise<string[]> => {
        throw Object.assign(new Error("getaddrinfo ENOTFOUND nx.test"), { code: "ENOTFOUND" });
      },
      async (): Promise<string[]> => [],
    ]) {
      const e = await resolveAndVet("nx.test", lookup).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(NotResolvedError);
      expect(e).toBeInstanceOf(NetguardError);
      expect((e as Error).message).toBe("dial tcp: lookup nx.test: no such host");
      expect((e as NetguardError).reason).toBeUndefined();
    }
  });

  test("a Phase 1 block carries no reason; a blocked_cidrs block carries reason blocked_cidr", async () => {
    const e = await resolveAndVet("169.254.169.254").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NetguardError);
    expect(e).not.toBeInstanceOf(NotResolvedError);
    expect((e as NetguardError).reason).toBeUndefined();

    const blocked = createCidrSet(["10.0.0.0/8", "2001:db8::/32"]);
    const c = await resolveAndVet("corp.test", async () => ["192.168.0.1", "10.1.2.3"], blocked).catch(
      (x: unknown) => x,
    );
    expect(c).toBeInstanceOf(NetguardError);
    expect((c as NetguardError).reason).toBe("blocked_cidr");
    expect((c as Error).message).toBe(
      "netguard: address blocked by policy: corp.test resolves to 10.1.2.3 (blocked_cidrs 10.0.0.0/8)",
    );
    const lit = await resolveAndVet("[2001:db8::7]", noLookup, blocked).catch((x: unknown) => x);
    expect((lit as NetguardError).reason).toBe("blocked_cidr");
    expect((lit as Error).message).toBe(
      "netguard: address blocked by policy: 2001:db8::7 (blocked_cidrs 2001:db8::/32)",
    );
    // an IPv4 block covers the IPv4-mapped form of its addresses
    await expect(resolveAndVet("m.test", async () => ["::ffff:10.0.0.9"], blocked)).rejects.toThrow(
      "(blocked_cidrs 10.0.0.0/8)",
    );
    expect(await resolveAndVet("ok.test", async () => ["192.168.0.1"], blocked)).toEqual(["192.168.0.1"]);
  });

  test("the Phase 1 ranges are checked before blocked_cidrs", async () => {
    const blocked = createCidrSet(["169.254.0.0/16"]);
    const e = (await resolveAndVet("169.254.169.254", noLookup, blocked).catch((x: unknown) => x)) as NetguardError;
    expect([e.message, e.reason]).toEqual([
      "netguard: address blocked by policy: 169.254.169.254 (cloud metadata)",
      undefined,
    ]);
  });
});

describe("cachedResolver", () => {
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
    expect(resolve("a.test")).toEqual(["10.0.0.7"]); // cached: the answer itself, not a promise
    expect(resolve("b.test")).toBeInstanceOf(Promise); // a lookup
    expect(calls).toEqual(["a.test", "b.test"]);
    await expect(resolve("meta.test")).rejects.toThrow("cloud metadata");
    await expect(resolve("meta.test")).rejects.toThrow("cloud metadata");
    expect(calls.filter((c) => c === "meta.test").length).toBe(2);
    await Bun.sleep(80);
    expect(resolve("a.test")).toBeInstanceOf(Promise); // the answer's lifetime is over: asked again
    await resolve("a.test");
    expect(calls.filter((c) => c === "a.test").length).toBe(2);
  });

  test("a name that did not resolve is asked again next time", async () => {
    let n = 0;
    const resolve = cachedResolver(60_000, 1024, async () => (n++ === 0 ? [] : ["10.0.0.8"]));
    await expect(resolve("late.test")).rejects.toBeInstanceOf(NotResolvedError);
    expect(await resolve("late.test")).toEqual(["10.0.0.8"]);
  });

  test("at most `max` names are kept (the oldest goes first)", async () => {
    const calls: string[] = [];
    const resolve = cachedResolver(60_000, 2, async (h) => {
      calls.push(h);
      return ["10.0.0.1"];
    });
    for (const h of ["a.test", "b.test", "c.test", "b.test", "c.test", "a.test"]) await resolve(h);
    expect(calls).toEqual(["a.test", "b.test", "c.test", "a.test"]);
  });

  test("blocked_cidrs apply to cached lookups too", async () => {
    const resolve = cachedResolver(60_000, 16, async () => ["10.9.9.9"], createCidrSet(["10.9.9.0/24"]));
    const e = (await Promise.resolve(resolve("x.test")).catch((x: unknown) => x)) as NetguardError;
    expect(e.reason).toBe("blocked_cidr");
  });
});

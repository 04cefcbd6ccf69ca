// src/match/host.ts: the host-pattern grammar (PHASE2 F4) and the request-host check (400 invalid_host).
import { describe, expect, test } from "bun:test";
import { isValidRequestHost, parseHostPattern } from "../../../src/match/host.ts";

describe("host patterns", () => {
  test.each([
    ["api.github.com", "name", "api.github.com"],
    ["API.GitHub.com", "name", "api.github.com"],
    ["trail.test.", "name", "trail.test"],
    ["port.test:19443", "name", "port.test"],
    ["  spaced.test  ", "name", "spaced.test"],
    ["localhost", "name", "localhost"],
    ["under_score.test", "name", "under_score.test"],
    ["xn--bcher-kva.example", "name", "xn--bcher-kva.example"],
    ["a-b.c-d.test", "name", "a-b.c-d.test"],
    ["1password.com", "name", "1password.com"],
    ["123.example", "name", "123.example"],
    ["127.0.0.2", "ip", "127.0.0.2"],
    ["127.0.0.2:443", "ip", "127.0.0.2"],
    ["::1", "ip", "::1"],
    ["[::1]", "ip", "::1"],
    ["[::1]:8443", "ip", "::1"],
    ["[2001:DB8::1]", "ip", "2001:db8::1"],
    ["*.github.com", "wildcard", "*.github.com"],
    ["*.GitHub.com.", "wildcard", "*.github.com"],
    ["*.a.b.c.d", "wildcard", "*.a.b.c.d"],
    ["*.co.uk", "wildcard", "*.co.uk"], // passes the two-label rule (documented)
    ["*.github.com:443", "wildcard", "*.github.com"],
  ])("%p is a %s pattern %p", (raw, kind, text) => {
    const r = parseHostPattern(raw);
    expect(r).toMatchObject({ ok: true, pattern: { kind, text } });
  });
  test("wildcard label counts", () => {
    expect(parseHostPattern("*.github.com")).toMatchObject({ pattern: { suffix: "github.com", labels: 3 } });
    expect(parseHostPattern("*.a.github.com")).toMatchObject({ pattern: { suffix: "a.github.com", labels: 4 } });
  });
  test.each([
    ["*.com", 'a wildcard needs at least two labels after "*."'],
    ["*", 'a wildcard needs at least two labels after "*."'],
    ["*.", 'a wildcard needs at least two labels after "*."'],
    ["a*.x.test", '"*" is only allowed as the whole left-most label of a wildcard "*.name"'],
    ["x.*.y.test", '"*" is only allowed as the whole left-most label of a wildcard "*.name"'],
    ["*x.y.test", '"*" is only allowed as the whole left-most label of a wildcard "*.name"'],
    ["*.*.y.test", '"*" is only allowed as the whole left-most label of a wildcard "*.name"'],
    ["**.y.test", '"*" is only allowed as the whole left-most label of a wildcard "*.name"'],
    ["", "empty host name"],
    [".", "empty host name"],
    ["a..b", "empty label"],
    [".a.b", "empty label"],
    ["a.b..", "empty label"],
    ["bücher.example", 'label "bücher" has a character outside [a-z0-9_-] (IDNs as A-labels)'],
    ["a b.test", 'label "a b" has a character outside [a-z0-9_-] (IDNs as A-labels)'],
    ["a/b.test", 'label "a/b" has a character outside [a-z0-9_-] (IDNs as A-labels)'],
    ["user@host.test", 'label "user@host" has a character outside [a-z0-9_-] (IDNs as A-labels)'],
    [`${"a".repeat(64)}.test`, "label longer than 63 characters"],
    [`${"a.".repeat(127)}ab`, "name longer than 253 characters"],
    ["127.1", "numeric last label: not a name, and not a dotted-quad IPv4"],
    ["010.0.0.1", "numeric last label: not a name, and not a dotted-quad IPv4"],
    ["0x7f000001", "numeric last label: not a name, and not a dotted-quad IPv4"],
    ["2130706433", "numeric last label: not a name, and not a dotted-quad IPv4"],
    ["*.0.0.1", "numeric last label: not a name, and not a dotted-quad IPv4"],
    ["1.2.3.256", "numeric last label: not a name, and not a dotted-quad IPv4"],
    ["api.test:abc", "malformed port or brackets"],
    ["[::1", "malformed port or brackets"],
    ["[::1]x", "malformed port or brackets"],
    ["[127.0.0.1]", "not a valid IPv6 address"],
    ["fe80::1%eth0", "not a valid IPv6 address"],
    ["1::2::3", "not a valid IPv6 address"],
  ])("%p is invalid: %s", (raw, problem) => {
    expect(parseHostPattern(raw)).toEqual({ ok: false, problem });
  });
  test("a 63-character label and a 253-character name are fine", () => {
    expect(parseHostPattern(`${"a".repeat(63)}.test`).ok).toBe(true);
    expect(parseHostPattern(`${"a.".repeat(125)}abc`).ok).toBe(true);
  });
});

describe("request hosts (400 invalid_host when false)", () => {
  test.each([
    "api.test",
    "API.test:443",
    "api.test.",
    "api.test.:8443",
    "api.test:",
    "127.0.0.1",
    "127.0.0.1:80",
    "[::1]",
    "[::1]:443",
    "::1",
    "xn--bcher-kva.example",
    "under_score.test",
    "localhost",
    "", // absent: Phase 1's 403 for host ""
  ])("valid: %p", (h) => {
    expect(isValidRequestHost(h)).toBe(true);
  });
  test.each([
    "*.p2.test",
    "*.p2.test:443",
    "*",
    "a*.test",
    "api.test:44x",
    "api.test:123456",
    "api..test",
    "bücher.example",
    "api.test ",
    " api.test",
    "a b.test",
    "api.test\r\nX: y",
    "api.test\0",
    "user@api.test",
    "api.test/path",
    "api.test%2f",
    "[127.0.0.1]",
    "[::1",
    "[fe80::1%25eth0]",
    "127.1",
    "0x7f000001",
    "2130706433",
    "010.0.0.1",
    "::g",
    ".",
  ])("invalid: %p", (h) => {
    expect(isValidRequestHost(h)).toBe(false);
  });
});

// src/http/target.ts: request-targets read strictly (RFC 9112 §3.2, docs/CONTRACT.md §18.20) — only
// forms that cannot name another host than the one decided; isValidPort.
import { describe, expect, test } from "bun:test";
import { isValidPort, parseRequestTarget } from "../../../src/http/target.ts";

describe("accepted", () => {
  const rows: Array<[string, ReturnType<typeof parseRequestTarget>]> = [
    ["/", { form: "origin", pathAndQuery: "/" }],
    ["/x?q=1&r=%41", { form: "origin", pathAndQuery: "/x?q=1&r=%41" }],
    // "//x" is origin-form (a path starting with two slashes), never a network-path reference
    ["//x", { form: "origin", pathAndQuery: "//x" }],
    ["//evil.test/x", { form: "origin", pathAndQuery: "//evil.test/x" }],
    ["/@evil.test", { form: "origin", pathAndQuery: "/@evil.test" }],
    ["/a\\b", { form: "origin", pathAndQuery: "/a\\b" }],
    ["*", { form: "asterisk" }],
    ["http://api.test/x?q=1", { form: "absolute", scheme: "http", authority: "api.test", pathAndQuery: "/x?q=1" }],
    ["https://api.test:8443/x", { form: "absolute", scheme: "https", authority: "api.test:8443", pathAndQuery: "/x" }],
    ["HTTPS://API.Test:8443", { form: "absolute", scheme: "https", authority: "API.Test:8443", pathAndQuery: "/" }],
    ["HtTp://a.test", { form: "absolute", scheme: "http", authority: "a.test", pathAndQuery: "/" }],
    ["http://a.test?q=1", { form: "absolute", scheme: "http", authority: "a.test", pathAndQuery: "/?q=1" }],
    ["http://[::1]:8080/x", { form: "absolute", scheme: "http", authority: "[::1]:8080", pathAndQuery: "/x" }],
    ["http://a.test//b", { form: "absolute", scheme: "http", authority: "a.test", pathAndQuery: "//b" }],
  ];
  for (const [target, want] of rows) {
    test(JSON.stringify(target), () => {
      expect(parseRequestTarget(target)).toEqual(want);
    });
  }
});

describe("refused", () => {
  const NEITHER = "request-target is neither origin-form nor absolute-form";
  const AUTHORITY = "invalid authority in request-target";
  const SCHEME = "unsupported scheme in request-target";
  const FRAGMENT = "fragment in request-target";
  const rows: Array<[string, string]> = [
    ["@evil.test/x", NEITHER],
    ["evil.test/x", NEITHER],
    ["evil.test:443", NEITHER],
    ["\\@x", NEITHER],
    ["\\\\evil.test/x", NEITHER],
    ["", NEITHER],
    ["?q=1", NEITHER],
    ["http:/x", NEITHER],
    ["http:x", NEITHER],
    ["mailto:a@b.test", NEITHER],
    ["1http://a.test/", NEITHER],
    ["**", NEITHER],
    ["/x#frag", FRAGMENT],
    ["#", FRAGMENT],
    ["http://a.test/#", FRAGMENT],
    ["http://a.test#@evil.test/", FRAGMENT],
    ["http://user:pw@a.test/", AUTHORITY],
    ["http://@a.test/", AUTHORITY],
    ["http://a.test@evil.test/", AUTHORITY],
    ["http://a%40b.test/", AUTHORITY],
    ["http://a.test%2f@evil.test/", AUTHORITY],
    ["http://evil.test%23.a.test/", AUTHORITY],
    ["http://a.test\\@evil.test/", AUTHORITY],
    ["http://a.test\\x", AUTHORITY],
    ["http:///x", AUTHORITY],
    ["http://", AUTHORITY],
    ["https://?q=1", AUTHORITY],
    ["ftp://a.test/x", SCHEME],
    ["ws://a.test/", SCHEME],
    ["wss://a.test/", SCHEME],
    ["file:///etc/passwd", SCHEME],
    ["httpx://a.test/", SCHEME],
    ["gopher://a.test:70/", SCHEME],
  ];
  for (const [target, error] of rows) {
    test(`${JSON.stringify(target)} → ${error}`, () => {
      expect(parseRequestTarget(target)).toEqual({ error });
    });
  }
});

describe("isValidPort", () => {
  test.each(["1", "80", "443", "8443", "65535", "00080"])("%p is a port", (p) => {
    expect(isValidPort(p)).toBe(true);
  });
  test.each(["", "0", "00000", "65536", "99999", "123456", "-1", "+80", " 80", "80 ", "0x50", "8e1", "x", "٨٠"])(
    "%p is not",
    (p) => {
      expect(isValidPort(p)).toBe(false);
    },
  );
});

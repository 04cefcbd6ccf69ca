// src/http/target.ts: request-targets read strictly (RFC 9112 §3.2, docs/CONTRACT.md §18.20) — only
// forms that cannot name another host than the one decided; isValidPort.
import { describe, expect, test } from "bun:test";
import { decodedPath, escapeHighBytes, isValidPort, parseRequestTarget } from "../../../src/http/target.ts";

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

// Go's url.ParseRequestURI refuses a path escape that is not `%` and two hex digits (the reference
// then reads no request at all); its query's escapes it leaves alone.
describe("invalid escapes in the path", () => {
  const BAD = "invalid URL escape in request-target";
  test.each(["/a%zz", "/a%", "/a%4", "/%g0/x?q=1", "https://a.test/x%2"])("%p refused", (t) => {
    expect(parseRequestTarget(t)).toEqual({ error: BAD });
  });
  test.each(["/a%41", "/a%e9%C3%A9", "/x?q=%zz", "/x?%", "https://a.test/x?%4"])("%p accepted", (t) => {
    expect("form" in parseRequestTarget(t)).toBe(true);
  });
});

// What the reference (Go) made of targets with bytes ≥ 0x80, seen side by side with it
// (test/compat/datapath.compat.test.ts): the path's bytes go upstream as %XX, and the audit line's
// path is url.Path — UTF-8, an invalid byte written as \ufffd (here U+DC00 + byte, see decodedPath).
describe("bytes ≥ 0x80 in a target (read as latin1: one character per byte)", () => {
  test.each([
    ["/o\x80b\xe9", "/o%80b%E9"],
    ["/caf\xc3\xa9?x=\xc3\xa9", "/caf%C3%A9?x=%C3%A9"],
    ["/plain?q=1", "/plain?q=1"],
    ["/%E9\xff", "/%E9%FF"],
  ])("escapeHighBytes(%p) = %p", (t, want) => expect(escapeHighBytes(t)).toBe(want));

  test.each([
    ["/caf\xc3\xa9?x=1", "/café"],
    ["/a%E9b%C3%A9", "/a\udce9bé"],
    ["/o\x80b\xe9", "/o\udc80b\udce9"],
    ["/r\xef\xbf\xbd\xf0\x9f\x98", "/r\ufffd\udcf0\udc9f\udc98"],
    ["/%F0%9F%98%80", "/\u{1f600}"],
    ["/%C0%AF", "/\udcc0\udcaf"], // overlong
    ["/%ED%A0%80", "/\udced\udca0\udc80"], // a surrogate's encoding
    ["/%F4%90%80%80", "/\udcf4\udc90\udc80\udc80"], // above U+10FFFF
    ["/%F4%8F%BF%BF", "/\u{10ffff}"],
    ["/a%2Fb%20c", "/a/b c"],
    ["/a%zz%41", "/a%zzA"],
    ["https://a.test:1/x%41?y", "/xA"],
    ["/plain", "/plain"],
  ])("decodedPath(%p) = %p", (t, want) => expect(decodedPath(t)).toBe(want));
});

// src/intercept/forward.ts upstreamUrl: the URL handed to the HTTP client is built from the
// decision's parts and parsed back before anything is sent (docs/CONTRACT.md §18.20): exactly the
// host and port decided, no userinfo, no fragment, origin-form paths only.
import { describe, expect, test } from "bun:test";
import { upstreamUrl } from "../../../src/intercept/forward.ts";
import { UpstreamError } from "../../../src/intercept/upstream-error.ts";

describe("upstreamUrl", () => {
  test.each([
    ["https", "api.test", 443, "/x?q=1", "https://api.test:443/x?q=1"],
    ["http", "api.test", 80, "/", "http://api.test:80/"],
    ["https", "api.test", 8443, "/a%2Fb?k=%41&x", "https://api.test:8443/a%2Fb?k=%41&x"],
    ["https", "127.0.0.2", 443, "/", "https://127.0.0.2:443/"],
    ["https", "::1", 8443, "/x", "https://[::1]:8443/x"],
    ["http", "2001:db8::5", 80, "/x", "http://[2001:db8::5]:80/x"],
    // a path starting with two slashes stays a path: the host is still the decided one
    ["http", "api.test", 80, "//evil.test/x", "http://api.test:80//evil.test/x"],
    ["http", "api.test", 80, "/@evil.test", "http://api.test:80/@evil.test"],
    ["http", "api.test", 80, "/\\evil.test", "http://api.test:80/\\evil.test"],
  ] as const)("%s %s %d %s → %s", (scheme, host, port, path, want) => {
    expect(upstreamUrl(scheme, host, port, path)).toBe(want);
    const u = new URL(want);
    expect(u.hostname.replace(/^\[|\]$/g, "")).toBe(host);
  });

  test.each(["", "x", "?q=1", "@evil.test/x", "evil.test/x", "*", "http://evil.test/", "\\\\evil.test/x", "#frag"])(
    "a path not starting with / is rejected: %p",
    (path) => {
      expect(() => upstreamUrl("https", "api.test", 443, path)).toThrow(new UpstreamError("request-target rejected"));
    },
  );

  test("a fragment is rejected", () => {
    expect(() => upstreamUrl("https", "api.test", 443, "/x#frag")).toThrow("request-target rejected");
  });

  test("a host that would parse as userinfo is rejected, never sent", () => {
    expect(() => upstreamUrl("https", "user@evil.test", 443, "/")).toThrow("request-target rejected");
  });

  test("a port out of range never yields a URL", () => {
    expect(() => upstreamUrl("https", "api.test", 99999, "/")).toThrow();
  });
});

// src/intercept/chain.ts ProxySelector: upstream (corporate) proxy selection with
// golang.org/x/net/http/httpproxy semantics (docs/CONTRACT.md §12). Moved here from
// test/chain.test.ts (which keeps the tinyproxy end-to-end cases), plus no_proxy edge cases.
import { describe, expect, test } from "bun:test";
import { ProxySelector } from "../../../src/http/corporate-proxy.ts";

const cfg = (noProxy: string[], proxyAuth = "") => ({ proxyUrl: "http://corp:3128", noProxy, proxyAuth });
/** "direct" or "proxy" for host:port over https with this no_proxy. */
const via = (noProxy: string[], host: string, port = 443) =>
  new ProxySelector(cfg(noProxy), {}).choose("https", host, port) === null ? "direct" : "proxy";

describe("proxy selection (httpproxy semantics)", () => {
  test("no_proxy entries: exact, sub-domains, leading dot, host:port, *, case", () => {
    const s = new ProxySelector(cfg(["example.com", ".sub.test", "only.test:8443", "10.0.0.0/8"]), {});
    expect(s.choose("https", "example.com", 443)).toBeNull();
    expect(s.choose("https", "a.example.com", 443)).toBeNull();
    expect(s.choose("https", "sub.test", 443)).not.toBeNull();
    expect(s.choose("https", "x.sub.test", 443)).toBeNull();
    expect(s.choose("https", "only.test", 8443)).toBeNull();
    expect(s.choose("https", "only.test", 443)).not.toBeNull();
    expect(s.choose("https", "10.1.2.3", 443)).toBeNull();
    expect(s.choose("https", "EXAMPLE.COM", 443)).toBeNull();
    expect(new ProxySelector(cfg(["*"]), {}).choose("https", "any.test", 443)).toBeNull();
  });
  test("localhost and loopback always bypass", () => {
    const s = new ProxySelector(cfg([]), {});
    for (const h of ["localhost", "127.0.0.1", "127.9.9.9", "::1"]) expect(s.choose("https", h, 443)).toBeNull();
    expect(s.choose("https", "api.test", 443)).toEqual({ url: "http://corp:3128", authorization: undefined });
  });
  test("proxy_auth overrides URL userinfo; userinfo used alone; no colon is an init error", () => {
    const s = new ProxySelector({ proxyUrl: "http://a:b@corp:3128", noProxy: [], proxyAuth: "corp:s3cret" }, {});
    expect(s.choose("http", "x.test", 80)!.authorization).toBe(
      `Basic ${Buffer.from("corp:s3cret").toString("base64")}`,
    );
    const s2 = new ProxySelector({ proxyUrl: "http://a:b@corp:3128", noProxy: [], proxyAuth: "" }, {});
    expect(s2.choose("http", "x.test", 80)!.authorization).toBe(`Basic ${Buffer.from("a:b").toString("base64")}`);
    expect(() => new ProxySelector({ proxyUrl: "http://corp:3128", noProxy: [], proxyAuth: "nocolon" }, {})).toThrow(
      "intercept: upstream.proxy_auth must be in 'user:pass' form",
    );
  });
  test("environment: HTTPS_PROXY / HTTP_PROXY / NO_PROXY when proxy_url is empty", () => {
    const s = new ProxySelector(
      { proxyUrl: "", noProxy: [], proxyAuth: "" },
      { HTTPS_PROXY: "http://p1:1", HTTP_PROXY: "http://p2:2", NO_PROXY: "skip.test" },
    );
    expect(s.choose("https", "a.test", 443)!.url).toBe("http://p1:1");
    expect(s.choose("http", "a.test", 80)!.url).toBe("http://p2:2");
    expect(s.choose("https", "skip.test", 443)).toBeNull();
  });
});

describe("the environment", () => {
  test("upper case wins over lower case; lower case alone works; no proxy for a scheme without one", () => {
    const s = new ProxySelector(
      { proxyUrl: "", noProxy: [], proxyAuth: "" },
      { HTTPS_PROXY: "http://up:1", https_proxy: "http://low:1", no_proxy: "skip.test" },
    );
    expect(s.choose("https", "a.test", 443)!.url).toBe("http://up:1");
    expect(s.choose("http", "a.test", 80)).toBeNull();
    expect(s.choose("https", "skip.test", 443)).toBeNull();
    const lower = new ProxySelector({ proxyUrl: "", noProxy: [], proxyAuth: "" }, { http_proxy: "low:8080" });
    expect(lower.choose("http", "a.test", 80)!.url).toBe("http://low:8080");
  });

  test("proxy_url wins over the environment, and its no_proxy over NO_PROXY", () => {
    const s = new ProxySelector(cfg(["mine.test"]), { HTTPS_PROXY: "http://env:1", NO_PROXY: "env.test" });
    expect(s.choose("https", "env.test", 443)!.url).toBe("http://corp:3128");
    expect(s.choose("https", "mine.test", 443)).toBeNull();
  });

  test("proxy URL forms: no scheme → http, default ports, credentials percent-decoded, never in the URL", () => {
    const p = (proxyUrl: string) =>
      new ProxySelector({ proxyUrl, noProxy: [], proxyAuth: "" }, {}).choose("https", "a.test", 443);
    expect(p("corp:3128")).toEqual({ url: "http://corp:3128", authorization: undefined });
    expect(p("http://corp")!.url).toBe("http://corp:80");
    expect(p("https://corp")!.url).toBe("https://corp:443");
    expect(p("HTTP://CORP:1")!.url).toBe("http://corp:1");
    expect(p("http://us%40er:p%3Ass@corp:3128")).toEqual({
      url: "http://corp:3128",
      authorization: `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`,
    });
    expect(p("http://[::1]:3128")!.url).toBe("http://[::1]:3128");
    expect(p("http://bad host")).toBeNull(); // unparseable: direct, never a guess
  });
});

describe("no_proxy edge cases", () => {
  const rows: Array<[string[], string, number, "direct" | "proxy"]> = [
    [["10.0.0.0/8"], "10.255.255.255", 443, "direct"],
    [["10.0.0.0/8"], "11.0.0.1", 443, "proxy"],
    [["10.0.0.0/8"], "9.255.255.255", 443, "proxy"],
    [["192.168.1.0/24"], "192.168.1.77", 443, "direct"],
    [["192.168.1.0/24"], "192.168.2.1", 443, "proxy"],
    [["192.168.1.7/32"], "192.168.1.7", 443, "direct"],
    [["192.168.1.7/32"], "192.168.1.8", 443, "proxy"],
    [["0.0.0.0/0"], "8.8.8.8", 443, "direct"],
    [["0.0.0.0/0"], "name.test", 443, "proxy"], // a CIDR never matches a name
    [["10.0.0.0/8"], "10.test", 443, "proxy"],
    [["10.0.0.1"], "10.0.0.1", 443, "direct"],
    [["10.0.0.1"], "10.0.0.10", 443, "proxy"],
    [["10.0.0.1:8080"], "10.0.0.1", 8080, "direct"],
    [["10.0.0.1:8080"], "10.0.0.1", 443, "proxy"],
    [["2001:db8::1"], "2001:db8::1", 443, "direct"],
    [["[2001:db8::1]"], "2001:db8::1", 443, "direct"],
    [["2001:db8::1"], "2001:db8::2", 443, "proxy"],
    [[" Example.COM ", ""], "www.example.com", 443, "direct"],
    [["example.com"], "notexample.com", 443, "proxy"],
    [["example.com"], "example.com.evil.test", 443, "proxy"],
    [[".example.com"], "example.com", 443, "proxy"],
    [[".example.com"], "a.b.example.com", 443, "direct"],
    [["example.com:8443"], "a.example.com", 8443, "direct"],
    [["example.com:8443"], "a.example.com", 443, "proxy"],
    [["*.example.com"], "a.example.com", 443, "direct"],
    [["a.test,b.test"], "b.test", 443, "direct"],
    [["localhost"], "a.localhost", 443, "direct"],
    [[], "a.localhost", 443, "direct"],
    [[], "localhost", 8080, "direct"],
    [[], "127.255.0.1", 443, "direct"],
    [[], "128.0.0.1", 443, "proxy"],
    [[], "localhost.test", 443, "proxy"],
  ];
  for (const [noProxy, host, port, want] of rows) {
    test(`${JSON.stringify(noProxy)} ${host}:${port} → ${want}`, () => {
      expect(via(noProxy, host, port)).toBe(want);
    });
  }

  // Found here and fixed (src/http/corporate-proxy.ts parseNoProxy / bypass), each once a difference from
  // golang.org/x/net/http/httpproxy, which docs/CONTRACT.md §12 names as the semantics:
  // 1. IPv6 CIDRs are skipped (`if (isIP(ip) === 4)`): httpproxy matches them (net.ParseCIDR).
  test('an IPv6 CIDR: ["fd00::/8"] fd00::1 → direct', () => {
    expect(via(["fd00::/8"], "fd00::1")).toBe("direct");
  });
  // 2. "[v6]:port" is never split (`!entry.startsWith("[")`), so the entry matches nothing;
  //    httpproxy splits it with net.SplitHostPort and matches the address on that port.
  test('"[2001:db8::1]:8443" → direct for [2001:db8::1]:8443', () => {
    expect(via(["[2001:db8::1]:8443"], "2001:db8::1", 8443)).toBe("direct");
  });
  // 3. "*.example.com" also matches the apex: `subOnly` is computed before "*." is cut to ".";
  //    httpproxy turns "*.example.com" into ".example.com", which matches sub-domains only.
  test('"*.example.com" does not match example.com itself', () => {
    expect(via(["*.example.com"], "example.com")).toBe("proxy");
  });
  // 4. An invalid CIDR is read anyway: "10.0.0.0/" has Number("") = 0 bits and so sends EVERY IPv4
  //    destination direct; "10.0.0.0/33" matches 10.0.0.0/31. httpproxy ignores an unparseable CIDR.
  test('an invalid CIDR "10.0.0.0/" matches nothing', () => {
    expect(via(["10.0.0.0/"], "192.168.1.1")).toBe("proxy");
  });
  test('an invalid CIDR "10.0.0.0/33" matches nothing', () => {
    expect(via(["10.0.0.0/33"], "10.0.0.1")).toBe("proxy");
  });
  // 5. Loopback is recognised only as 127.x, "::1", localhost: "0:0:0:0:0:0:0:1" and
  //    "::ffff:127.0.0.1" go to the corporate proxy; httpproxy uses net.IP.IsLoopback.
  test("every spelling of a loopback address bypasses", () => {
    expect(via([], "0:0:0:0:0:0:0:1")).toBe("direct");
    expect(via([], "::ffff:127.0.0.1")).toBe("direct");
  });
});

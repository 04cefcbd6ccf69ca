// src/intercept/upstream-error.ts: the 502 `detail` and log `err` for upstream failures, in our own
// vocabulary only (docs/CONTRACT.md §10, §18.21): never a library's message, which carries the URL
// with its query (the api_key_query secret, issue 13 item 2).
import { describe, expect, test } from "bun:test";
import {
  describeUpstreamError,
  hostPort,
  isDialFailure,
  UpstreamError,
} from "../../../src/intercept/upstream-error.ts";

const where = { host: "api.test", addr: "127.0.0.2", port: 8443 };
const err = (code: unknown, message = "https://api.test:8443/x?key=SECRET failed") =>
  Object.assign(new Error(message), { code });

describe("describeUpstreamError", () => {
  const rows: Array<[unknown, string]> = [
    ["ECONNREFUSED", "dial tcp 127.0.0.2:8443: connect: connection refused"],
    ["ConnectionRefused", "dial tcp 127.0.0.2:8443: connect: connection refused"],
    ["ECONNRESET", "EOF"],
    ["ConnectionClosed", "EOF"],
    ["EPIPE", "EOF"],
    ["ETIMEDOUT", "dial tcp 127.0.0.2:8443: i/o timeout"],
    ["ConnectTimeout", "dial tcp 127.0.0.2:8443: i/o timeout"],
    ["ENETUNREACH", "dial tcp 127.0.0.2:8443: connect: no route to host"],
    ["EHOSTUNREACH", "dial tcp 127.0.0.2:8443: connect: no route to host"],
    ["EPROTO", "tls: handshake with api.test:8443 failed"],
    ["Malformed_HTTP_Response", "upstream api.test:8443 sent a malformed HTTP response"],
    ["ResponseHeadersTooLarge", "upstream api.test:8443 sent a response head that is too large"],
    ["InvalidContentLength", "upstream api.test:8443 sent an invalid Content-Length"],
    [
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "tls: failed to verify certificate for api.test: UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    ],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "tls: failed to verify certificate for api.test: DEPTH_ZERO_SELF_SIGNED_CERT"],
    ["SELF_SIGNED_CERT_IN_CHAIN", "tls: failed to verify certificate for api.test: SELF_SIGNED_CERT_IN_CHAIN"],
    ["CERT_HAS_EXPIRED", "tls: failed to verify certificate for api.test: CERT_HAS_EXPIRED"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "tls: failed to verify certificate for api.test: ERR_TLS_CERT_ALTNAME_INVALID"],
    ["UNABLE_TO_GET_ISSUER_CERT", "tls: failed to verify certificate for api.test: UNABLE_TO_GET_ISSUER_CERT"],
    ["ProxyTunnelFailed", "upstream proxy: ProxyTunnelFailed"],
    ["UnexpectedProxyResponse", "upstream proxy: UnexpectedProxyResponse"],
    ["FailedToOpenSocket", "upstream api.test:8443: request failed (FailedToOpenSocket)"],
    ["ERR_SOMETHING_NEW", "upstream api.test:8443: request failed (ERR_SOMETHING_NEW)"],
    [undefined, "upstream api.test:8443: request failed"],
    ["", "upstream api.test:8443: request failed"],
    [42, "upstream api.test:8443: request failed"],
    // a code that is not a plain token is never echoed
    ["E?key=SECRET", "upstream api.test:8443: request failed"],
    ["https://api.test/?key=SECRET", "upstream api.test:8443: request failed"],
    ["x".repeat(65), "upstream api.test:8443: request failed"],
    ["ECONNREFUSED ", "upstream api.test:8443: request failed"],
  ];
  for (const [code, want] of rows) {
    test(`code ${JSON.stringify(code)} → ${want}`, () => {
      expect(describeUpstreamError(err(code), where)).toBe(want);
    });
  }

  test("an UpstreamError (our own text) is passed through", () => {
    expect(describeUpstreamError(new UpstreamError("upstream did not answer within 300s"), where)).toBe(
      "upstream did not answer within 300s",
    );
  });

  test("null, undefined, strings and plain objects are described, never echoed", () => {
    for (const e of [null, undefined, "https://x/?key=SECRET", { message: "?key=SECRET" }, 7])
      expect(describeUpstreamError(e, where)).toBe("upstream api.test:8443: request failed");
  });

  test("IPv6 addresses are bracketed; the name (not the address) names TLS and HTTP failures", () => {
    const v6 = { host: "api.test", addr: "2001:db8::5", port: 443 };
    expect(describeUpstreamError(err("ECONNREFUSED"), v6)).toBe(
      "dial tcp [2001:db8::5]:443: connect: connection refused",
    );
    expect(describeUpstreamError(err("EPROTO"), v6)).toBe("tls: handshake with api.test:443 failed");
    const lit = { host: "::1", addr: "::1", port: 443 };
    expect(describeUpstreamError(err("EPROTO"), lit)).toBe("tls: handshake with [::1]:443 failed");
  });

  test("property: whatever a library puts in its message, the output holds no secret, no query, no URL", () => {
    // deterministic PRNG, 2,000 cases
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
    const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const secretChars = `${alnum}-_.~+/=%!*'()`;
    const codes = [
      "ECONNREFUSED",
      "ConnectionRefused",
      "ECONNRESET",
      "ConnectionClosed",
      "EPIPE",
      "ETIMEDOUT",
      "ConnectTimeout",
      "ENETUNREACH",
      "EHOSTUNREACH",
      "EPROTO",
      "Malformed_HTTP_Response",
      "ResponseHeadersTooLarge",
      "InvalidContentLength",
      "CERT_HAS_EXPIRED",
      "ProxyTunnelFailed",
      "FailedToOpenSocket",
      "UNKNOWN_CODE",
      undefined,
      null,
      "",
    ];
    const vocabulary = [
      /^dial tcp (\[[0-9a-f:]+\]|[0-9.]+|[a-z0-9.-]+):\d+: connect: connection refused$/,
      /^dial tcp (\[[0-9a-f:]+\]|[0-9.]+|[a-z0-9.-]+):\d+: i\/o timeout$/,
      /^dial tcp (\[[0-9a-f:]+\]|[0-9.]+|[a-z0-9.-]+):\d+: connect: no route to host$/,
      /^EOF$/,
      /^tls: handshake with [a-z0-9.-]+:\d+ failed$/,
      /^tls: failed to verify certificate for [a-z0-9.-]+: [A-Za-z0-9_]+$/,
      /^upstream [a-z0-9.-]+:\d+ sent (a malformed HTTP response|a response head that is too large|an invalid Content-Length)$/,
      /^upstream proxy: [A-Za-z0-9_]+$/,
      /^upstream [a-z0-9.-]+:\d+: request failed( \([A-Za-z0-9_]+\))?$/,
    ];
    for (let i = 0; i < 2000; i++) {
      const secret = `SECRET${Array.from({ length: 8 + Math.floor(rand() * 24) }, () => pick([...secretChars])).join("")}`;
      const url = `${pick(["https", "http"])}://${pick(["api.test", "127.0.0.2", "[::1]"])}:${1 + Math.floor(rand() * 65535)}/${pick(["", "v1/x", "a/b/c"])}?${pick(["key", "api_key", "token"])}=${encodeURIComponent(secret)}&x=1`;
      const message = pick([
        `fetch failed: ${url}`,
        `Unable to connect. Is the computer able to access the url? ${url}`,
        `${url}: ${secret}`,
        `request to ${url} failed, reason: connect ECONNREFUSED`,
      ]);
      const e = Object.assign(new Error(message), { code: pick(codes), path: url, url, cause: { url } });
      const w = {
        host: pick(["api.test", "a.b.test"]),
        addr: pick(["127.0.0.2", "::1", "api.test"]),
        port: 1 + Math.floor(rand() * 65535),
      };
      const out = describeUpstreamError(e, w);
      expect(out).not.toContain("SECRET");
      expect(out).not.toContain(secret);
      expect(out).not.toContain("?");
      expect(out).not.toContain("://");
      expect(vocabulary.some((re) => re.test(out))).toBe(true);
    }
  });
});

describe("isDialFailure (nothing of the request was sent: the next vetted address may be tried)", () => {
  test.each([
    "ECONNREFUSED",
    "ConnectionRefused",
    "ETIMEDOUT",
    "ConnectTimeout",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "FailedToOpenSocket",
  ])("%s → true", (code) => {
    expect(isDialFailure(err(code))).toBe(true);
  });
  test.each([
    "ECONNRESET",
    "ConnectionClosed",
    "EPIPE",
    "EPROTO",
    "CERT_HAS_EXPIRED",
    "econnrefused",
    "",
    "ECONNREFUSED?x",
  ])("%p → false", (code) => {
    expect(isDialFailure(err(code))).toBe(false);
  });
  test("no code, null, non-objects → false", () => {
    for (const e of [new Error("x"), null, undefined, "ECONNREFUSED", 1, new UpstreamError("ECONNREFUSED")])
      expect(isDialFailure(e)).toBe(false);
  });
});

describe("hostPort", () => {
  test("IPv6 literals bracketed, IPv4 and names as they are", () => {
    expect(hostPort("::1", 443)).toBe("[::1]:443");
    expect(hostPort("2001:db8::5", 80)).toBe("[2001:db8::5]:80");
    expect(hostPort("127.0.0.1", 8080)).toBe("127.0.0.1:8080");
    expect(hostPort("api.test", 443)).toBe("api.test:443");
  });
});

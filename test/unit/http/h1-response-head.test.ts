// The upstream response head parser of our own client (src/http/h1-response-head.ts): what decides
// how much of an upstream connection is one response's body. Ambiguity is an error, never a guess.
import { describe, expect, test } from "bun:test";
import { fetchOrderHeaders, parseResponseHead } from "../../../src/http/h1-response-head.ts";
import { responseHeaders } from "../../../src/intercept/forward.ts";

const head = (...lines: string[]) => lines.join("\r\n");

describe("parseResponseHead: accepted heads", () => {
  test("status, reason, lower-cased names in wire order, OWS trimmed, inner spaces kept", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "X-A:  one  two \t", "Content-Length: 3", "x-a: 2"), "GET");
    if (typeof r === "string") throw new Error(r);
    expect(r).toMatchObject({ version: "HTTP/1.1", status: 200, reason: "OK", contentLength: 3, keepAlive: true });
    expect(r.headers).toEqual([
      ["x-a", "one  two"],
      ["content-length", "3"],
      ["x-a", "2"],
    ]);
    expect(r.framing).toEqual({ kind: "length", length: 3 });
  });

  test.each([
    ["HTTP/1.1 204 No Content", "GET", "none"],
    ["HTTP/1.1 304 Not Modified", "GET", "none"],
    ["HTTP/1.1 200 OK", "HEAD", "none"],
    ["HTTP/1.1 100 Continue", "GET", "none"],
    ["HTTP/1.1 200 OK", "GET", "close"],
  ])("%s to %s: framing %s", (status, method, kind) => {
    const r = parseResponseHead(status, method);
    if (typeof r === "string") throw new Error(r);
    expect(r.framing.kind).toBe(kind as "none");
  });

  test("a HEAD answer keeps its Content-Length (it describes the GET) but has no body", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 1000"), "HEAD");
    if (typeof r === "string") throw new Error(r);
    expect(r.framing).toEqual({ kind: "none" });
    expect(r.contentLength).toBe(1000);
    expect(r.keepAlive).toBe(true);
  });

  test("Content-Length: 0 is no body; an empty reason and no reason are both accepted", () => {
    for (const s of ["HTTP/1.1 200 ", "HTTP/1.1 200"]) {
      const r = parseResponseHead(head(s, "Content-Length: 0"), "GET");
      if (typeof r === "string") throw new Error(r);
      expect(r.reason).toBe("");
      expect(r.framing).toEqual({ kind: "none" });
    }
  });

  test("repeated equal Content-Length values (also as a list) are one length", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5, 5"), "GET");
    if (typeof r === "string") throw new Error(r);
    expect(r.contentLength).toBe(5);
  });

  test("chunked (any case, with empty list members); no Content-Length reported", () => {
    const r = parseResponseHead(head("HTTP/1.1 200 OK", "Transfer-Encoding: , Chunked"), "GET");
    if (typeof r === "string") throw new Error(r);
    expect(r.framing).toEqual({ kind: "chunked" });
    expect(r.contentLength).toBeNull();
  });

  test("keep-alive: 1.1 unless Connection: close; 1.0 only with keep-alive; never close-delimited", () => {
    const ka = (...l: string[]) => {
      const r = parseResponseHead(head(...l), "GET");
      if (typeof r === "string") throw new Error(r);
      return r.keepAlive;
    };
    expect(ka("HTTP/1.1 200 OK", "Content-Length: 1")).toBe(true);
    expect(ka("HTTP/1.1 200 OK", "Connection: Keep-Alive, CLOSE", "Content-Length: 1")).toBe(false);
    expect(ka("HTTP/1.1 200 OK", "Connection: x", "Connection: close", "Content-Length: 1")).toBe(false);
    expect(ka("HTTP/1.0 200 OK", "Content-Length: 1")).toBe(false);
    expect(ka("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1")).toBe(true);
    expect(ka("HTTP/1.1 200 OK")).toBe(false);
  });
});

describe("parseResponseHead: rejected heads (smuggling, junk)", () => {
  test.each([
    ["HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", "Malformed_HTTP_Response"],
    ["HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: identity", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 3, 4", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\nContent-Length: -1", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\nContent-Length: +3", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 0x10", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\nContent-Length: ", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456", "InvalidContentLength"],
    ["HTTP/1.1 200 OK\r\n Folded: value", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nX-A: 1\r\n\tfolded", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nContent-Length : 3", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nX(A): 1", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\n: empty name", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nno colon", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nX-A: a\x00b", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nX-A: a\rb", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 OK\r\nX-A: a\x7fb", "Malformed_HTTP_Response"],
    ["HTTP/1.1 200 O\x01K", "Malformed_HTTP_Response"],
    ["HTTP/1.1 20 OK", "Malformed_HTTP_Response"],
    ["HTTP/1.1 2000 OK", "Malformed_HTTP_Response"],
    ["HTTP/1.1 099 OK", "Malformed_HTTP_Response"],
    ["HTTP/1.1  200 OK", "Malformed_HTTP_Response"],
    ["HTTP/2 200 OK", "Malformed_HTTP_Response"],
    ["HTTP/1.2 200 OK", "Malformed_HTTP_Response"],
    ["http/1.1 200 OK", "Malformed_HTTP_Response"],
    ["ICY 200 OK", "Malformed_HTTP_Response"],
    ["", "Malformed_HTTP_Response"],
  ])("%j → %s", (text, want) => {
    expect(parseResponseHead(text, "GET")).toBe(want as "Malformed_HTTP_Response");
  });

  test("rejected also where no body follows (HEAD, 304): the head itself is ambiguous", () => {
    expect(parseResponseHead("HTTP/1.1 304 X\r\nContent-Length: 1\r\nContent-Length: 2", "GET")).toBe(
      "InvalidContentLength",
    );
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked", "HEAD")).toBe(
      "Malformed_HTTP_Response",
    );
  });
});

describe("fetchOrderHeaders: the order and joining the fetch path handed on", () => {
  /** The fetch path's own conversion of a fetch response's Headers, on the same fields. */
  const viaFetchHeaders = (pairs: [string, string][]) => {
    const h = new Headers();
    for (const [k, v] of pairs) h.append(k, v);
    return responseHeaders(new Response(null, { headers: h }));
  };

  test.each([
    [
      [
        ["x-b", "1"],
        ["set-cookie", "a=1; Path=/"],
        ["content-type", "text/plain"],
        ["x-b", "2"],
        ["set-cookie", "b=2"],
        ["accept-ranges", "bytes"],
      ],
    ],
    [
      [
        ["vary", "accept"],
        ["vary", "origin"],
        ["www-authenticate", 'Basic realm="a, b"'],
        ["www-authenticate", "Bearer"],
      ],
    ],
    [[["x-empty", ""]]],
  ] as [string, string][][][])("%j", (pairs) => {
    expect(fetchOrderHeaders(pairs)).toEqual(viaFetchHeaders(pairs));
  });
});

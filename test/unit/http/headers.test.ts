// src/http/headers.ts: header lists in wire order, case-insensitive lookups, setHeader, Go's
// canonical names, and the token / field-value grammars (RFC 9110 §5.6.2, §5.5).
import { describe, expect, test } from "bun:test";
import {
  canonicalHeaderName,
  deleteHeader,
  FIELD_VALUE,
  getHeader,
  getHeaders,
  type Headers,
  setHeader,
  TOKEN,
} from "../../../src/http/headers.ts";

describe("canonicalHeaderName (Go textproto.CanonicalMIMEHeaderKey)", () => {
  test.each([
    ["x-lower-key", "X-Lower-Key"],
    ["etag", "Etag"],
    ["ETag", "Etag"],
    ["WWW-AUTHENTICATE", "Www-Authenticate"],
    ["content-md5", "Content-Md5"],
    ["x-1a", "X-1a"],
    ["a--b", "A--B"],
    ["-x", "-X"],
    ["x_y", "X_y"],
    ["Host", "Host"],
  ])("%p → %p", (name, want) => {
    expect(canonicalHeaderName(name)).toBe(want);
  });
  test("a name that is not a token is returned unchanged (Go does the same)", () => {
    for (const n of ["x y", "x:y", "ümlaut", "", "a\r\nb"]) expect(canonicalHeaderName(n)).toBe(n);
  });
});

describe("lookups", () => {
  const h: Headers = [
    ["Host", "a.test"],
    ["x-A", "1"],
    ["X-a", "2"],
    ["Accept", "*/*"],
  ];
  test("getHeader: the first value, any case; undefined when absent", () => {
    expect(getHeader(h, "x-a")).toBe("1");
    expect(getHeader(h, "HOST")).toBe("a.test");
    expect(getHeader(h, "missing")).toBeUndefined();
    expect(getHeader([["X-E", ""]], "x-e")).toBe("");
  });
  test("getHeaders: every value in order", () => {
    expect(getHeaders(h, "X-A")).toEqual(["1", "2"]);
    expect(getHeaders(h, "none")).toEqual([]);
  });
  test("deleteHeader: every occurrence, order of the rest kept, input untouched", () => {
    expect(deleteHeader(h, "X-A")).toEqual([
      ["Host", "a.test"],
      ["Accept", "*/*"],
    ]);
    expect(h.length).toBe(4);
  });
});

describe("setHeader", () => {
  test("replaces every value by one at the first occurrence's position, with the given name", () => {
    const h: Headers = [
      ["authorization", "x"],
      ["Accept", "*/*"],
      ["Authorization", "y"],
    ];
    expect(setHeader(h, "Authorization", "Bearer S")).toEqual([
      ["Authorization", "Bearer S"],
      ["Accept", "*/*"],
    ]);
    expect(h[0]).toEqual(["authorization", "x"]); // input untouched
  });
  test("appends when absent", () => {
    expect(setHeader([["A", "1"]], "X-Key", "v")).toEqual([
      ["A", "1"],
      ["X-Key", "v"],
    ]);
    expect(setHeader([], "X-Key", "")).toEqual([["X-Key", ""]]);
  });
});

describe("grammars", () => {
  test("TOKEN: RFC 9110 tchar only", () => {
    for (const t of ["GET", "x-api-key", "!#$%&'*+-.^_`|~", "A1"]) expect(TOKEN.test(t)).toBe(true);
    for (const t of ["", "a b", "a:b", "a(b)", 'a"b', "a/b", "a@b", "a,b", "a;b", "a=b", "a\tb", "é", "a\x7f", "a\x00"])
      expect(TOKEN.test(t)).toBe(false);
  });
  test("FIELD_VALUE: HTAB, visible ASCII, obs-text; no CR, LF, NUL or other controls", () => {
    for (const v of ["", "a b", "\tx\t", "café", "€", "\x80\xff", "~!"]) expect(FIELD_VALUE.test(v)).toBe(true);
    for (const v of ["a\rb", "a\nb", "a\x00b", "\x01", "\x1f", "\x7f", "\x0b"]) expect(FIELD_VALUE.test(v)).toBe(false);
  });
});

describe("lookups by a lowercased name (length checked first) and the canonical-name cache", () => {
  test("names that lowercase to another length are still compared (non-ASCII)", () => {
    // U+0130 lowercases to two code units; the Kelvin sign K to "k"
    const h: Headers = [
      ["\u0130x", "dotted"],
      ["\u212Aey", "kelvin"],
      ["Key", "plain"],
    ];
    expect(getHeader(h, "key")).toBe("kelvin");
    expect(getHeaders(h, "KEY")).toEqual(["kelvin", "plain"]);
    expect(getHeader(h, "i\u0307x")).toBe("dotted");
    expect(deleteHeader(h, "key")).toEqual([["\u0130x", "dotted"]]);
    expect(setHeader(h, "Key", "v")).toEqual([
      ["\u0130x", "dotted"],
      ["Key", "v"],
    ]);
  });
  test("only U+0130 lowercases to another length (what sameName's length check relies on)", () => {
    const changes: number[] = [];
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      const s = String.fromCodePoint(cp);
      if (s.toLowerCase().length !== s.length) changes.push(cp);
    }
    expect(changes).toEqual([0x130]);
    // two of them, and a name shorter by two still matches
    expect(getHeader([["\u0130\u0130", "v"]], "i\u0307i\u0307")).toBe("v");
  });
  test("setHeader copies the pairs it keeps (the input is never aliased)", () => {
    const h: Headers = [
      ["A", "1"],
      ["B", "2"],
    ];
    const out = setHeader(h, "b", "3");
    out[0]![1] = "changed";
    expect(h[0]).toEqual(["A", "1"]);
  });
  test("canonical names repeat from the cache and past its bound stay right", () => {
    for (let i = 0; i < 1200; i++) expect(canonicalHeaderName(`x-n${i}-abc`)).toBe(`X-N${i}-Abc`);
    expect(canonicalHeaderName("content-type")).toBe("Content-Type");
    expect(canonicalHeaderName("content-type")).toBe("Content-Type");
    expect(canonicalHeaderName("x y")).toBe("x y");
    expect(canonicalHeaderName("x y")).toBe("x y");
  });
});

// src/inject/query.ts: api_key_query replaces only the named parameter (all its values by one) and
// keeps every other byte of the query (docs/CONTRACT.md §18.6); Go's url.QueryEscape.
// (Cases moved from test/policy.test.ts, and more.)
import { describe, expect, test } from "bun:test";
import { queryEscape, setQueryParam } from "../../../src/inject/query.ts";

describe("setQueryParam", () => {
  test("api_key_query keeps everything else byte for byte", () => {
    expect(setQueryParam("/x?b=2&key=1&a=%41;c&key=3", "key", "v w").target).toBe("/x?b=2&key=v+w&a=%41;c");
    expect(setQueryParam("/x", "key", "v").target).toBe("/x?key=v");
    expect(setQueryParam("/x?KEY=1", "key", "v").target).toBe("/x?KEY=1&key=v");
  });

  const rows: Array<[string, string, boolean]> = [
    ["/x", "/x?key=v", false],
    ["/x?", "/x?key=v", false],
    ["/x?a=1", "/x?a=1&key=v", false],
    ["/x?a=1&", "/x?a=1&key=v", false],
    ["/x?a=1;", "/x?a=1;key=v", false],
    ["/x?key=1", "/x?key=v", true],
    ["/x?key", "/x?key=v", true],
    ["/x?key=", "/x?key=v", true],
    ["/x?a=1&key=2&b=3", "/x?a=1&key=v&b=3", true],
    ["/x?key=1&key=2&key=3", "/x?key=v", true],
    ["/x?key=1&a=2&key=3&b=4", "/x?key=v&a=2&b=4", true],
    ["/x?a=1&key=2&key=3", "/x?a=1&key=v", true],
    ["/x?a=1;key=2", "/x?a=1;key=v", true],
    ["/x?k%65y=1", "/x?key=v", true],
    ["/x?ke+y=1", "/x?ke+y=1&key=v", false],
    ["/x?%zz=1&key=2", "/x?%zz=1&key=v", true],
    ["/x?&&key=1", "/x?&&key=v", true],
    ["/x?a=%20+b&c=d=e", "/x?a=%20+b&c=d=e&key=v", false],
    ["/p/a%2Fb?z=1", "/p/a%2Fb?z=1&key=v", false],
  ];
  for (const [target, want, overwrote] of rows) {
    test(`${target} → ${want}`, () => {
      expect(setQueryParam(target, "key", "v")).toEqual({ target: want, overwrote });
    });
  }

  test("name and value are query-escaped like Go", () => {
    expect(setQueryParam("/", "api key", "x=a+b&c=d/é+%").target).toBe("/?api+key=x%3Da%2Bb%26c%3Dd%2F%C3%A9%2B%25");
    expect(setQueryParam("/?a=1", "k", "a\r\nb").target).toBe("/?a=1&k=a%0D%0Ab");
  });
});

describe("queryEscape (Go url.QueryEscape)", () => {
  test.each([
    ["", ""],
    ["abcXYZ019-_.~", "abcXYZ019-_.~"],
    [" ", "+"],
    ["!'()*", "%21%27%28%29%2A"],
    ["+&=;/?#%", "%2B%26%3D%3B%2F%3F%23%25"],
    ["é€", "%C3%A9%E2%82%AC"],
    ["\x00\x7f", "%00%7F"],
  ])("%p → %p", (s, want) => {
    expect(queryEscape(s)).toBe(want);
  });
});

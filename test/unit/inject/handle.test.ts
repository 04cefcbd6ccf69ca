// src/inject/handle.ts parseHandle: "namespace/key" (docs/CONTRACT.md §6) — malformed → 500 with
// no agent call, an identifier the agent would refuse → 502 agent error. (Cases moved from
// test/policy.test.ts, and more.)
import { describe, expect, test } from "bun:test";
import { HandleError, parseHandle } from "../../../src/inject/handle.ts";

describe("parseHandle", () => {
  test.each([
    ["ns/KEY", "ns", "KEY"],
    ["a-b_c/K_1-2", "a-b_c", "K_1-2"],
    ["N/k", "N", "k"],
    ["0/9", "0", "9"],
  ])("%p → %p / %p", (handle, namespace, key) => {
    expect(parseHandle(handle)).toEqual({ namespace, key });
  });

  const errors: Array<[string, string, 500 | 502]> = [
    ["noslash", 'clef-proxy: malformed credential handle "noslash"', 500],
    ["", 'clef-proxy: malformed credential handle ""', 500],
    ["/", 'clef-proxy: malformed credential handle "/"', 500],
    ["/k", 'clef-proxy: malformed credential handle "/k"', 500],
    ["ns/", 'clef-proxy: malformed credential handle "ns/"', 500],
    ["ns.a/k", 'agent: invalid namespace "ns.a"', 502],
    ["ns /k", 'agent: invalid namespace "ns "', 502],
    ["ñs/k", 'agent: invalid namespace "ñs"', 502],
    ["../k", 'agent: invalid namespace ".."', 502],
    ["ns/b/c", 'agent: invalid key "b/c"', 502],
    ["ns/k/", 'agent: invalid key "k/"', 502],
    ["ns/k?x=1", 'agent: invalid key "k?x=1"', 502],
    ["ns/%2e%2e", 'agent: invalid key "%2e%2e"', 502],
    ["ns/k\r\nX: 1", 'agent: invalid key "k\\r\\nX: 1"', 502],
  ];
  for (const [handle, message, status] of errors) {
    test(`${JSON.stringify(handle)} → ${status} ${message}`, () => {
      let e: unknown;
      try {
        parseHandle(handle);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(HandleError);
      expect((e as HandleError).message).toBe(message);
      expect((e as HandleError).status).toBe(status);
    });
  }
});

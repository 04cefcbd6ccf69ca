// src/memo.ts: a pure function of a string, remembered within bounds.
import { expect, test } from "bun:test";
import { memoize } from "../../src/memo.ts";

function counted(max: number, maxKeyLength?: number) {
  const calls: string[] = [];
  const f = memoize(
    (k) => {
      calls.push(k);
      return { k };
    },
    max,
    maxKeyLength,
  );
  return { f, calls };
}

test("the same key is computed once and answers the same value", () => {
  const { f, calls } = counted(4);
  const a = f("a");
  expect(f("a")).toBe(a);
  expect(calls).toEqual(["a"]);
});

test("falsy values are remembered too", () => {
  let n = 0;
  const f = memoize(() => (n++, false), 4);
  expect([f("x"), f("x")]).toEqual([false, false]);
  expect(n).toBe(1);
});

test("at the bound the memory is cleared and refills: never more than `max` kept", () => {
  const { f, calls } = counted(2);
  f("a");
  f("b");
  f("c"); // clears, keeps c
  f("c");
  f("a"); // computed again
  expect(calls).toEqual(["a", "b", "c", "a"]);
});

test("a key longer than maxKeyLength is computed every time, never kept", () => {
  const { f, calls } = counted(4, 3);
  f("long");
  f("long");
  f("abc");
  f("abc");
  expect(calls).toEqual(["long", "long", "abc"]);
});

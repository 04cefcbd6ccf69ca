// src/flat.ts: the same string back, whatever it was made of (its cost is measured, not tested:
// bench/pieces.ts).
import { expect, test } from "bun:test";
import { flat } from "../../src/flat.ts";

test("flat gives back the same text: empty, one part, many parts, non-ASCII", () => {
  expect(flat("")).toBe("");
  expect(flat("x")).toBe("x");
  let s = "";
  for (let i = 0; i < 50; i++) s += `${i},é`;
  const want = Array.from({ length: 50 }, (_, i) => `${i},é`).join("");
  expect(flat(s)).toBe(want);
  expect(flat(`${s}${s}`)).toBe(want + want);
});

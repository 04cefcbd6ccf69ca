// HTTP header fields as the data path carries them: a list of [name, value] pairs in wire order
// (names as the client wrote them), with the RFC 9110 rules the proxy enforces on them.
//
//   getHeader(h, "host") / getHeaders(h, "connection") — case-insensitive lookups
//   setHeader(h, "Authorization", v) — replace every value by one (first position kept)
//   canonicalHeaderName("x-api-key") === "X-Api-Key"  (Go textproto)
//   isToken(name) / isFieldValue(value) — RFC 9110 §5.6.2 token, §5.5 field value without CR/LF/NUL

import { memoize } from "../memo.ts";

export type Headers = Array<[string, string]>;

/** The User-Agent the reference's Go HTTP client sends (to upstreams that got none, to the agent, to corporate proxies). */
export const GO_USER_AGENT = "Go-http-client/1.1";

/** RFC 9110 token. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A valid field value: no CR, LF or NUL (other CTLs are tolerated like Go's httpguts, except DEL/0-31 but HTAB). */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;

/**
 * Go textproto.CanonicalMIMEHeaderKey. Header names repeat (every response of an upstream carries
 * the same few): canonical forms are remembered (names of up to 64 characters, 512 of them).
 */
export const canonicalHeaderName: (name: string) => string = memoize(
  (name) =>
    TOKEN.test(name)
      ? name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase())
      : name,
  512,
  64,
);

/**
 * Whether `k` lowercases to `lower` (itself lowercase). Of all of Unicode only `İ` (U+0130)
 * lowercases to another length (two units, `i̇`: checked over every code point in
 * test/unit/http/headers.test.ts), so a name of another length can match only when `lower` holds
 * U+0307 — `anyLength`, found once per lookup (`lengthMayDiffer`), not once per field.
 */
function sameName(k: string, lower: string, anyLength: boolean): boolean {
  if (k.length !== lower.length && !anyLength) return false;
  return k === lower || k.toLowerCase() === lower;
}

const lengthMayDiffer = (lower: string) => lower.includes("\u0307");

export function getHeader(h: Headers, name: string): string | undefined {
  const n = name.toLowerCase();
  const any = lengthMayDiffer(n);
  for (let i = 0; i < h.length; i++) {
    const e = h[i]!;
    if (sameName(e[0], n, any)) return e[1];
  }
  return undefined;
}

export function getHeaders(h: Headers, name: string): string[] {
  const n = name.toLowerCase();
  const any = lengthMayDiffer(n);
  const out: string[] = [];
  for (let i = 0; i < h.length; i++) {
    const e = h[i]!;
    if (sameName(e[0], n, any)) out.push(e[1]);
  }
  return out;
}

export function deleteHeader(h: Headers, name: string): Headers {
  const n = name.toLowerCase();
  const any = lengthMayDiffer(n);
  return h.filter(([k]) => !sameName(k, n, any));
}

/** Replace every value of `name` by one (kept at the first occurrence's position, else appended). */
export function setHeader(h: Headers, name: string, value: string): Headers {
  const n = name.toLowerCase();
  const any = lengthMayDiffer(n);
  const out: Headers = [];
  let placed = false;
  for (let i = 0; i < h.length; i++) {
    const e = h[i]!;
    if (!sameName(e[0], n, any)) out.push([e[0], e[1]]);
    else if (!placed) {
      out.push([name, value]);
      placed = true;
    }
  }
  if (!placed) out.push([name, value]);
  return out;
}

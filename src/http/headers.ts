// HTTP header fields as the data path carries them: a list of [name, value] pairs in wire order
// (names as the client wrote them), with the RFC 9110 rules the proxy enforces on them.
//
//   getHeader(h, "host") / getHeaders(h, "connection") — case-insensitive lookups
//   setHeader(h, "Authorization", v) — replace every value by one (first position kept)
//   canonicalHeaderName("x-api-key") === "X-Api-Key"  (Go textproto)
//   isToken(name) / isFieldValue(value) — RFC 9110 §5.6.2 token, §5.5 field value without CR/LF/NUL

export type Headers = Array<[string, string]>;

/** The User-Agent the reference's Go HTTP client sends (to upstreams that got none, to the agent, to corporate proxies). */
export const GO_USER_AGENT = "Go-http-client/1.1";

/** RFC 9110 token. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A valid field value: no CR, LF or NUL (other CTLs are tolerated like Go's httpguts, except DEL/0-31 but HTAB). */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;

/** Go textproto.CanonicalMIMEHeaderKey. */
export function canonicalHeaderName(name: string): string {
  if (!TOKEN.test(name)) return name;
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

export function getHeader(h: Headers, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const [k, v] of h) if (k.toLowerCase() === n) return v;
  return undefined;
}

export function getHeaders(h: Headers, name: string): string[] {
  const n = name.toLowerCase();
  return h.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

export function deleteHeader(h: Headers, name: string): Headers {
  const n = name.toLowerCase();
  return h.filter(([k]) => k.toLowerCase() !== n);
}

/** Replace every value of `name` by one (kept at the first occurrence's position, else appended). */
export function setHeader(h: Headers, name: string, value: string): Headers {
  const n = name.toLowerCase();
  const out: Headers = [];
  let placed = false;
  for (const [k, v] of h) {
    if (k.toLowerCase() !== n) out.push([k, v]);
    else if (!placed) {
      out.push([name, value]);
      placed = true;
    }
  }
  if (!placed) out.push([name, value]);
  return out;
}

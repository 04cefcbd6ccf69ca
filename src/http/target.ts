// The request-target and host names, read strictly (RFC 9112 §3.2, docs/CONTRACT.md §18.20): the
// upstream request is built from the decision, never from client text, so only forms that cannot
// name another host are accepted.
//
//   parseRequestTarget("/x?q=1")                 → {form:"origin", pathAndQuery:"/x?q=1"}
//   parseRequestTarget("https://api.test:8443/x") → {form:"absolute", scheme:"https", authority:"api.test:8443", pathAndQuery:"/x"}
//   parseRequestTarget("@evil.test/x")            → {error:…}  (also "#", userinfo, "evil.test/x", "\\@x")
//   isValidPort("8443") / ("0", "x" → false); host names: src/match isValidRequestHost
//   decodedPath("/caf%C3%A9?q") → "/café" (the path as Go's url.Path: for the audit line and logs)
//   escapeHighBytes("/caf\xc3\xa9") → "/caf%C3%A9" (the bytes ≥ 0x80 of a target, as sent upstream)
//
// A target is read from the head as ISO-8859-1: each character below 256 is one byte the client sent.

export type RequestTarget =
  | { form: "origin"; pathAndQuery: string }
  | { form: "asterisk" }
  | { form: "absolute"; scheme: "http" | "https"; authority: string; pathAndQuery: string };

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)(.*)$/;
/** A `%` before the query that does not start an escape (the authority, where `%` is refused anyway, included). */
const BAD_PATH_ESCAPE = /^[^?]*%(?![0-9A-Fa-f]{2})/;

export function parseRequestTarget(target: string): RequestTarget | { error: string } {
  if (target.includes("#")) return { error: "fragment in request-target" };
  if (target === "*") return { form: "asterisk" };
  // a `%` in the path that is not `%` and two hex digits: Go's url.ParseRequestURI refuses the request
  // ("invalid URL escape"; the query's escapes it leaves alone)
  if (target.includes("%") && BAD_PATH_ESCAPE.test(target)) return { error: "invalid URL escape in request-target" };
  if (target.startsWith("/")) return { form: "origin", pathAndQuery: target };
  const m = ABSOLUTE.exec(target);
  if (!m) return { error: "request-target is neither origin-form nor absolute-form" };
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http" && scheme !== "https") return { error: `unsupported scheme in request-target` };
  const authority = m[2]!;
  if (authority === "" || /[@%\\]/.test(authority)) return { error: "invalid authority in request-target" };
  const rest = m[3]!;
  return {
    form: "absolute",
    scheme,
    authority,
    pathAndQuery: rest === "" ? "/" : rest.startsWith("/") ? rest : `/${rest}`,
  };
}

/** A port as written in an authority: 1-65535, digits only. */
export function isValidPort(port: string): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535;
}

/** A byte ≥ 0x80 (a character ≥ U+0080 of a latin1-read target). */
const HIGH = /[^\x00-\x7f]/;

/**
 * The target's bytes ≥ 0x80 percent-encoded, one `%XX` per byte (as Go's URL.EscapedPath writes a
 * path's): the URL the HTTP client parses would otherwise take each such character for a code point
 * and send its UTF-8 encoding — a raw UTF-8 `é` (bytes C3 A9) would go upstream as `%C3%83%C2%A9`.
 * (Go sends a query's raw bytes as they are; a URL cannot carry them, so they go as `%XX` too —
 * docs/CONTRACT.md, "Ours".)
 */
export function escapeHighBytes(target: string): string {
  if (!HIGH.test(target)) return target;
  let out = "";
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x80) out += target[i];
    else if (c <= 0xff) out += `%${c.toString(16).toUpperCase()}`;
    else out += encodeURIComponent(target[i]!); // (never from a head: every character of one is a byte)
  }
  return out;
}

/**
 * The path of a request-target without its query, decoded as Go's url.Path is — `%XX` escapes and
 * raw bytes (latin1 characters) alike are bytes, read as UTF-8 — for the audit line and the logs. A
 * byte that is not part of valid UTF-8 (Go's utf8.DecodeRune gives RuneError for it) becomes the
 * lone surrogate U+DC00 + byte: the audit encoder writes it as Go's json does (`\ufffd`, one per
 * byte), the log line as Go's strconv.Quote does (`\xe9`). An escape that is not `%` and two hex
 * digits stays as it is (Go refuses such a request; its path is still named).
 */
export function decodedPath(target: string): string {
  let p = target;
  // origin-form (every request in a tunnel) starts with "/", which no scheme does
  const abs = p.charCodeAt(0) === 0x2f ? null : /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(p);
  if (abs) p = p.slice(abs[0].length) || "/";
  const q = p.search(/[?#]/);
  if (q >= 0) p = p.slice(0, q);
  if (!p.includes("%") && !HIGH.test(p)) return p; // nothing to decode
  const bytes = new Uint8Array(p.length);
  let n = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    const hi = c === 0x25 ? hexValue(p.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexValue(p.charCodeAt(i + 2)) : -1;
    if (lo >= 0) {
      bytes[n++] = hi * 16 + lo;
      i += 2;
    } else bytes[n++] = c & 0xff;
  }
  return utf8AsGo(bytes, n);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** bytes[0, n) as UTF-8 the way Go's utf8.DecodeRune reads it; an invalid byte → U+DC00 + byte. */
function utf8AsGo(b: Uint8Array, n: number): string {
  let out = "";
  const cont = (i: number, lo = 0x80, hi = 0xbf) => i < n && b[i]! >= lo && b[i]! <= hi;
  for (let i = 0; i < n; ) {
    const b0 = b[i]!;
    if (b0 < 0x80) {
      out += String.fromCharCode(b0);
      i++;
    } else if (b0 >= 0xc2 && b0 <= 0xdf && cont(i + 1)) {
      out += String.fromCharCode(((b0 & 0x1f) << 6) | (b[i + 1]! & 0x3f));
      i += 2;
    } else if (
      b0 >= 0xe0 &&
      b0 <= 0xef &&
      cont(i + 1, b0 === 0xe0 ? 0xa0 : 0x80, b0 === 0xed ? 0x9f : 0xbf) &&
      cont(i + 2)
    ) {
      out += String.fromCharCode(((b0 & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f));
      i += 3;
    } else if (
      b0 >= 0xf0 &&
      b0 <= 0xf4 &&
      cont(i + 1, b0 === 0xf0 ? 0x90 : 0x80, b0 === 0xf4 ? 0x8f : 0xbf) &&
      cont(i + 2) &&
      cont(i + 3)
    ) {
      out += String.fromCodePoint(
        ((b0 & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f),
      );
      i += 4;
    } else {
      out += String.fromCharCode(0xdc00 + b0); // RuneError, width 1
      i++;
    }
  }
  return out;
}

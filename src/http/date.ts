// The `Date` header the proxy puts on every response it writes itself (RFC 9110 §6.6.1: an origin
// with a clock must send it; the reference sends it on its 407 and plain-HTTP denials). IMF-fixdate,
// computed at most once a second.
let cachedSecond = -1;
let cached = "";

export function httpDate(nowMs = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cached = new Date(second * 1000).toUTCString();
  }
  return cached;
}

// Go's time.ParseDuration and time.Duration.String(), for serve.drain_timeout (docs/CONTRACT.md §4):
// the reference accepts Go duration strings and prints them back in Go's form ("1m0.5s", "1h0m0s").

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n, // U+00B5
  μs: 1000n, // U+03BC
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX = (1n << 63n) - 1n;

/** Nanoseconds, or throws Error(`time: invalid duration "<s>"`) (and Go's other messages). */
export function parseGoDuration(s: string): bigint {
  const orig = s;
  const invalid = () => new Error(`time: invalid duration ${JSON.stringify(orig)}`);
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") throw invalid();
  let total = 0n;
  while (s !== "") {
    let m = /^[0-9]*/.exec(s)![0];
    const intPart = m;
    s = s.slice(m.length);
    let frac = "";
    if (s[0] === ".") {
      s = s.slice(1);
      m = /^[0-9]*/.exec(s)![0];
      frac = m;
      s = s.slice(m.length);
    }
    if (intPart === "" && frac === "") throw invalid();
    const u = /^[^0-9.]*/.exec(s)![0];
    s = s.slice(u.length);
    if (u === "") throw new Error(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const unit = UNITS[u];
    if (unit === undefined)
      throw new Error(`time: unknown unit ${JSON.stringify(u)} in duration ${JSON.stringify(orig)}`);
    let v = BigInt(intPart || "0") * unit;
    if (frac) v += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    total += v;
    // Go: the magnitude may reach 1<<63 only when the result is negative (the minimum int64)
    if (total > MAX + (neg ? 1n : 0n)) throw invalid();
  }
  return neg ? -total : total;
}

function fmtFrac(v: bigint, prec: number): [string, bigint] {
  // Returns the fraction digits (trailing zeros dropped, with leading '.') and v / 10^prec.
  let digits = "";
  let print = false;
  for (let i = 0; i < prec; i++) {
    const d = v % 10n;
    print = print || d !== 0n;
    if (print) digits = d.toString() + digits;
    v /= 10n;
  }
  return [print ? "." + digits : "", v];
}

/** time.Duration.String() */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  const u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    let prec: number;
    let unit: string;
    if (u < 1000n) return (neg ? "-" : "") + u.toString() + "ns";
    if (u < 1_000_000n) {
      prec = 3;
      unit = "µs";
    } else {
      prec = 6;
      unit = "ms";
    }
    const [f, w] = fmtFrac(u, prec);
    out = w.toString() + f + unit;
  } else {
    const [f, w0] = fmtFrac(u, 9);
    let w = w0;
    out = (w % 60n).toString() + f + "s";
    w /= 60n;
    if (w > 0n) {
      out = (w % 60n).toString() + "m" + out;
      w /= 60n;
      if (w > 0n) out = w.toString() + "h" + out;
    }
  }
  return (neg ? "-" : "") + out;
}

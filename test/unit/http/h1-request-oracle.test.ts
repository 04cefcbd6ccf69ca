// src/http/h1-request.ts against an oracle: the parser as it was written with regular expressions and
// String.split (before the character-code parser of issue 19's seventh pass), kept here verbatim in
// substance — but for the body framing and persistence rules, which the rewrite did not touch: the
// oracle feeds the parser's own bodyFraming and keepsAlive with the fields it found. Both must give the same answer — the same head (with the first value of the fields the
// data path reads from head.known, looked up by name), or the same status and reason — for the
// security fuzzer's mutated heads (test/security/fuzz-gen.ts) and for heads mutated byte by byte
// with the characters a parser must get right (CR, LF, SP, HTAB, colon, CTLs, bytes ≥ 0x80).
import { describe, expect, test } from "bun:test";
import { HeadBuffer } from "../../../src/http/head-buffer.ts";
import {
  bodyFraming,
  keepsAlive,
  type ParseResult,
  parseRequestHead,
  RequestHeadParser,
} from "../../../src/http/h1-request.ts";
import type { Headers } from "../../../src/http/headers.ts";
import { rng } from "../../helpers/rng.ts";
import { generateCases } from "../../security/fuzz-gen.ts";

// ---- the oracle -------------------------------------------------------------------------------
type OracleResult =
  | { kind: "error"; status: number; reason: string }
  | { kind: "h2-preface" }
  | { kind: "ok"; head: unknown };
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const E = (status: number, reason: string): OracleResult => ({ kind: "error", status, reason });

function oracleLine(line: string): OracleResult | null {
  if (line === "PRI * HTTP/2.0") return { kind: "h2-preface" };
  const rl = line.split(" ");
  if (rl.length !== 3) return E(400, "malformed request line");
  const [method, target, version] = rl as [string, string, string];
  if (!TOKEN.test(method) || !TARGET.test(target)) return E(400, "malformed request line");
  if (!/^HTTP\/\d\.\d$/.test(version)) return E(400, "malformed HTTP version");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") return E(505, "unsupported protocol version");
  return null;
}

/** What parseRequestHead answered for a complete head (a preface there is a plain 400). */
function oracleHead(text: string, maxCount: number): OracleResult {
  const lines = text.split("\r\n");
  const bad = oracleLine(lines[0]!);
  if (bad) return bad.kind === "h2-preface" ? E(400, "malformed request line") : bad;
  const [method, target, version] = lines[0]!.split(" ") as [string, string, string];
  if (lines.length - 1 > maxCount) return E(431, "too many header fields");
  const headers: Headers = [];
  for (const l of lines.slice(1)) {
    if (l.startsWith(" ") || l.startsWith("\t")) return E(400, "obsolete line folding");
    const c = l.indexOf(":");
    if (c <= 0) return E(400, "malformed header line");
    const name = l.slice(0, c);
    if (!TOKEN.test(name)) return E(400, "invalid header name");
    const value = l.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) return E(400, "invalid header value");
    headers.push([name, value]);
  }
  const named = (n: string) => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  if (named("host").length > 1) return E(400, "too many Host headers");
  // framing and persistence by the parser's own rules (unchanged by the rewrite), fed with the
  // fields as this oracle finds them
  const framing = bodyFraming(named("transfer-encoding"), named("content-length"), version);
  if ("status" in framing) return framing;
  const keepAlive = keepsAlive(named("connection"), version);
  // the fields the data path asks for on every request: their first value, as a lookup finds it
  const known = {
    host: named("host")[0],
    clefService: named("x-clef-service")[0],
    upgrade: named("upgrade")[0],
    traceparent: named("traceparent")[0],
  };
  return { kind: "ok", head: { method, target, version, headers, framing, keepAlive, known } };
}

/** What RequestHeadParser answered for bytes pushed at once. */
function oraclePush(bytes: Uint8Array, maxBytes: number, maxCount: number): OracleResult | { kind: "incomplete" } {
  const hb = new HeadBuffer(maxBytes);
  const state = hb.push(bytes);
  if (state === "bare-lf") return E(400, "bare LF line ending");
  if (state === "bare-cr") return E(400, "bare CR");
  if (state === "too-large") return E(431, "request head too large");
  const first = state === "complete" ? hb.head().split("\r\n")[0]! : hb.firstLine();
  const bad = first === null ? null : oracleLine(first);
  if (bad) return bad;
  if (state !== "complete") return { kind: "incomplete" };
  return oracleHead(hb.head(), maxCount);
}

// ---- the comparison ---------------------------------------------------------------------------
const latin1 = (s: string) => Buffer.from(s, "latin1");
const brief = (r: ParseResult) => (r.kind === "ok" ? { kind: "ok", head: r.head } : r);

function agree(text: string, maxCount = 100): void {
  expect({ text, r: parseRequestHead(text, maxCount) as unknown }).toEqual({ text, r: oracleHead(text, maxCount) });
  const bytes = latin1(`${text}\r\n\r\n`);
  const pushed = brief(new RequestHeadParser(64 * 1024, maxCount).push(bytes));
  expect({ text, r: pushed as unknown }).toEqual({ text, r: oraclePush(bytes, 64 * 1024, maxCount) });
}

const SEEDS = [
  "GET / HTTP/1.1\r\nHost: api.test:443\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip",
  "GET /ws HTTP/1.1\r\nhost: a\r\nX-Clef-Service: api\r\nUpgrade: websocket\r\nTraceparent: 00-x\r\nx-clef-service: b\r\nUPGRADE: h2c",
  "POST /v1/x?q=1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\nConnection: keep-alive",
  "PUT /a HTTP/1.0\r\nhost: a\r\nTRANSFER-ENCODING: chunked\r\nConnection: Keep-Alive, x",
  "GET http://a.test/ HTTP/1.1\r\nHost:a.test\r\nX-Empty:\r\nX-Tab:\t v \t\r\nConnection: close",
  "PRI * HTTP/2.0",
  "GET / HTTP/1.1",
];
// the characters that decide a parse, and a few ordinary ones
const ALPHABET = [..." \t\r\n:,\x00\x01\x1f\x7f\x80\xffaZ-/0", "\r\n"];

function mutate(s: string, r: () => number): string {
  const at = Math.floor(r() * (s.length + 1));
  switch (Math.floor(r() * 4)) {
    case 0: // insert
      return s.slice(0, at) + ALPHABET[Math.floor(r() * ALPHABET.length)]! + s.slice(at);
    case 1: // replace
      return s.slice(0, at) + ALPHABET[Math.floor(r() * ALPHABET.length)]! + s.slice(at + 1);
    case 2: // delete
      return s.slice(0, at) + s.slice(at + 1);
    default: {
      // duplicate a line
      const lines = s.split("\r\n");
      const i = Math.floor(r() * lines.length);
      lines.splice(i, 0, lines[i]!);
      return lines.join("\r\n");
    }
  }
}

describe("the parser agrees with the regular-expression oracle", () => {
  test("the seeds, and each mutated 1–3 times (12,000 seeded cases)", () => {
    const r = rng(19);
    for (const seed of SEEDS) agree(seed);
    for (let i = 0; i < 12_000; i++) {
      let s = SEEDS[i % SEEDS.length]!;
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) s = mutate(s, r);
      agree(s);
    }
  });

  test("the security fuzzer's heads (2,000 cases), their first head each", () => {
    const cases = generateCases({ seed: 7, count: 2_000, ports: { tls: 1, plain: 2 }, token: "t" });
    for (const c of cases) {
      const end = c.data.indexOf("\r\n\r\n");
      agree(end < 0 ? c.data : c.data.slice(0, end));
    }
  });

  test("the field count bound: 431 before any field's error, whichever line holds it", () => {
    const fields = ["Host: a", "X-A: 1", "Bad Name: x", "X-B: 2"];
    for (let max = 0; max <= fields.length; max++) {
      for (let i = 0; i <= fields.length; i++) agree(["GET / HTTP/1.1", ...fields.slice(0, i)].join("\r\n"), max);
      agree(["GET / HTTP/1.1", "X-A: 1", "Bad Name: x", "X-B: 2"].join("\r\n"), max);
    }
  });
});

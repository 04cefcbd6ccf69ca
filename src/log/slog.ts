// Structured stderr logging in the exact shape of Go's log/slog TextHandler, which is what the
// reference binary prints and what @clef-sh/agent (and operators' grep) read:
//
//   time=2026-11-22T21:47:27.487Z level=INFO msg="clef-proxy starting" version=0.0.4 port=18888
//
// Rules copied from Go (log/slog/text_handler.go): keys and string values are written bare unless
// they need quoting (empty, or containing a space, '=', '"', a control character, or a
// non-printable / invalid rune); quoted values use strconv.Quote escaping. Time is local time with
// millisecond precision (RFC 3339, `Z` when the offset is zero).

import { writeSync } from "node:fs";

export type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";
export type AttrValue = string | number | boolean | bigint | null | undefined | Error;
export type Attrs = Record<string, AttrValue> | Array<[string, AttrValue]>;

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** Go's slog time: 2006-01-02T15:04:05.000Z07:00 in local time. */
export function formatTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const base =
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  if (off === 0) return base + "Z";
  const sign = off > 0 ? "+" : "-";
  const a = Math.abs(off);
  return `${base}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

function isPrintable(cp: number): boolean {
  // Approximation of unicode.IsPrint: no C0/C1 controls, no line/paragraph separators, no BOM,
  // no private-use or unassigned surrogate halves.
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return false;
  if (cp === 0x2028 || cp === 0x2029 || cp === 0xfeff || cp === 0xfffd) return false;
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  if (cp === 0xa0 || cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x202f || cp === 0x205f || cp === 0x3000)
    return false; // spaces other than ' '
  return true;
}

export function needsQuoting(s: string): boolean {
  if (s.length === 0) return true;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      if (ch === "\\") continue;
      if (ch === " " || ch === "=" || ch === '"' || cp < 0x21 || cp === 0x7f) return true;
    } else if (!isPrintable(cp)) {
      return true;
    }
  }
  return false;
}

/** strconv.Quote */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += "\\x" + cp.toString(16).padStart(2, "0");
    else if (cp >= 0x80 && !isPrintable(cp) && cp !== 0xa0 && !(cp >= 0x2000 && cp <= 0x200a)) {
      out += cp > 0xffff ? "\\U" + cp.toString(16).padStart(8, "0") : "\\u" + cp.toString(16).padStart(4, "0");
    } else out += ch;
  }
  return out + '"';
}

function fmtValue(v: AttrValue): string {
  if (v === null || v === undefined) return "<nil>";
  if (v instanceof Error) v = v.message;
  if (typeof v === "string") return needsQuoting(v) ? goQuote(v) : v;
  return String(v);
}

/** Formats one line (with trailing newline). Exposed for tests. */
export function formatLine(level: Level, msg: string, attrs: Attrs = [], now: Date = new Date()): string {
  let line = `time=${formatTime(now)} level=${level} msg=${fmtValue(msg)}`;
  const entries = Array.isArray(attrs) ? attrs : Object.entries(attrs);
  for (const [k, v] of entries) {
    line += ` ${needsQuoting(k) ? goQuote(k) : k}=${fmtValue(v)}`;
  }
  return line + "\n";
}

type Sink = (line: string) => void;

let sink: Sink = (line) => {
  try {
    writeSync(2, line);
  } catch {
    // stderr gone or non-blocking and full: logs are best effort (the audit trail is not).
  }
};

/** Replace where lines go (tests). Returns the previous sink. */
export function setLogSink(s: Sink): Sink {
  const prev = sink;
  sink = s;
  return prev;
}

export function log(level: Level, msg: string, attrs?: Attrs): void {
  sink(formatLine(level, msg, attrs));
}

export const info = (msg: string, attrs?: Attrs): void => log("INFO", msg, attrs);
export const warn = (msg: string, attrs?: Attrs): void => log("WARN", msg, attrs);
export const error = (msg: string, attrs?: Attrs): void => log("ERROR", msg, attrs);

// Structured stderr logging in the exact shape of Go's log/slog TextHandler, which is what the
// reference binary prints and what @clef-sh/agent (and operators' grep) read:
//
//   time=2026-11-22T21:47:27.487Z level=INFO msg="clef-proxy starting" version=0.0.4 port=18888
//
// Rules copied from Go (log/slog/text_handler.go): keys and string values are written bare unless
// they need quoting (empty, or containing a space, '=', '"', a control character, or a
// non-printable / invalid rune); quoted values use strconv.Quote escaping. Time is local time with
// millisecond precision (RFC 3339, `Z` when the offset is zero).

import { readlinkSync, writeSync } from "node:fs";
import { flat } from "../flat.ts";
import { memoize } from "../memo.ts";

export type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";
export type AttrValue = string | number | boolean | bigint | null | undefined | Error;
export type Attrs = Record<string, AttrValue> | Array<[string, AttrValue]>;

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

/** Go's slog time: 2006-01-02T15:04:05.000Z07:00 in local time. */
export function formatTime(d: Date): string {
  return formatTimeMs(d.getTime(), d);
}

/** formatTime for a time in milliseconds (`d`, the same time as a Date, made only when needed). */
function formatTimeMs(ms: number, d?: Date): string {
  const sec = Math.floor(ms / 1000);
  if (sec === cachedSecond && !Number.isNaN(ms)) return `${cachedPrefix}${MS3![(ms - sec * 1000) | 0]}${cachedZone}`;
  const full = formatTimeSlow(d ?? new Date(ms));
  const dot = full.lastIndexOf(".");
  if (!Number.isNaN(ms) && dot > 0) {
    // the part before the milliseconds and the zone after them are the same for the whole second
    cachedSecond = sec;
    MS3 ??= Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
    cachedPrefix = flat(full.slice(0, dot + 1));
    cachedTimeField = flat(`time=${cachedPrefix}`);
    cachedZone = flat(full.slice(dot + 4));
  }
  return full;
}

/**
 * "000" … "999": a time's milliseconds as one ready string (no conversion, no padding part); made
 * with the first cached second (a program that logs nothing never makes it).
 */
let MS3: string[] | null = null;

let cachedSecond = Number.NaN;
let cachedPrefix = "";
/** `time=` and cachedPrefix (a data-path line's first part). */
let cachedTimeField = "";
let cachedZone = "";

/**
 * Zone names that are UTC for the C library and the JS engine alike, as TZ (optionally with POSIX's
 * leading ':', which AWS Lambda sets: `TZ=:UTC`) or as the zoneinfo file /etc/localtime links to.
 */
const UTC_ZONES = new Set(["UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"]);

/**
 * Whether local time is UTC, told without asking the engine: its first local-time call loads the
 * time-zone data (≈4 ms in a compiled program, a fifth of `serve`'s start-up to listening,
 * docs/PERFORMANCE.md). True only when TZ names UTC, or TZ is unset and /etc/localtime links to a
 * UTC zone; anything else (another zone, a copied file, no file) is left to the engine.
 */
export function zoneIsUtc(env: Record<string, string | undefined>, readLink: (path: string) => string): boolean {
  const tz = env.TZ;
  if (tz !== undefined) return UTC_ZONES.has(tz.startsWith(":") ? tz.slice(1) : tz);
  try {
    const m = /\/zoneinfo\/(.+)$/.exec(readLink("/etc/localtime"));
    return m !== null && UTC_ZONES.has(m[1]!);
  } catch {
    return false;
  }
}

let utc: boolean | undefined;

function formatTimeSlow(d: Date): string {
  utc ??= zoneIsUtc(process.env, (p) => readlinkSync(p));
  if (utc)
    return (
      `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
      `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`
    );
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

/** Printable ASCII without space, '"' and '=': never quoted (the common case, checked in one pass). */
const BARE_ASCII = /^[!#-<>-~]+$/;

export function needsQuoting(s: string): boolean {
  if (s.length === 0) return true;
  if (BARE_ASCII.test(s)) return false;
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
    // a byte that was not UTF-8 (src/http/target.ts decodedPath: U+DC00 + byte), as Go quotes it
    else if (cp >= 0xdc80 && cp <= 0xdcff) out += "\\x" + (cp - 0xdc00).toString(16);
    else if (cp >= 0x80 && !isPrintable(cp) && cp !== 0xfffd && cp !== 0xa0 && !(cp >= 0x2000 && cp <= 0x200a)) {
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

/** `time=… level=… msg=…`, what every line starts with. */
function lineStart(level: Level, msg: string, ms: number): string {
  return `time=${formatTimeMs(ms)} level=${level} msg=${fmtValue(msg)}`;
}

/** Formats one line (with trailing newline). Exposed for tests. */
export function formatLine(level: Level, msg: string, attrs: Attrs = [], now?: Date): string {
  let line = lineStart(level, msg, now ? now.getTime() : Date.now());
  if (Array.isArray(attrs))
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs[i]!;
      line += attrPrefix(a[0]) + fmtValue(a[1]);
    }
  else for (const k of Object.keys(attrs)) line += attrPrefix(k) + fmtValue(attrs[k]);
  return line + "\n";
}

/** A key of a LineTemplate: its name, or its name and the value every line of the template has. */
export type TemplateField = string | readonly [string, AttrValue];

/**
 * A line the data path writes on every request, declared once: its level, message and keys, and
 * the values that are the same on every line made from it (the proxy id; a service's name,
 * credential and injection point). What lies between the values that change — separators, keys,
 * fixed values — is made here, once: a line is its time, those runs and the changing values, few
 * parts. (Every part of a string built by concatenation costs ≈200 instructions when the line is
 * flattened to be written, ../flat.ts; the `injected` line went from 27 parts to 11.)
 */
export class LineTemplate {
  /** `runs[i]` precedes the i-th changing value; the last run ends the line, "\n" included. */
  private readonly runs: string[];
  /** How many values a line takes (the keys without a fixed value). */
  readonly arity: number;

  constructor(level: Level, msg: string, fields: readonly TemplateField[]) {
    const runs: string[] = [];
    let run = ` level=${level} msg=${fmtValue(msg)}`;
    for (const f of fields) {
      if (typeof f === "string") {
        runs.push(flat(run + attrPrefix(f)));
        run = "";
      } else run += attrPrefix(f[0]) + fmtValue(f[1]);
    }
    runs.push(flat(`${run}\n`));
    this.runs = runs;
    this.arity = runs.length - 1;
  }

  /** The line for `values`, one per key without a fixed value, in their order. */
  format(values: readonly AttrValue[], ms = Date.now()): string {
    const r = this.runs;
    const sec = Math.floor(ms / 1000);
    let line: string;
    if (sec === cachedSecond) {
      // the time's zone and the first run together: one part (remade when the zone changes)
      if (this.zone !== cachedZone) {
        this.zone = cachedZone;
        this.zoneRun = flat(`${cachedZone}${r[0]}`);
      }
      line = `${cachedTimeField}${MS3![(ms - sec * 1000) | 0]}${this.zoneRun}`;
    } else line = `time=${formatTimeMs(ms)}${r[0]}`;
    for (let i = 0; i < this.arity; i++) line = `${line}${fmtValue(values[i])}${r[i + 1]}`;
    return line;
  }
  private zone: string | null = null;
  private zoneRun = "";
}

/**
 * ` key=` as written before a value: keys are a few constants, their quoting decided once each
 * (bounded), and the separators come with them (fewer parts in a line).
 */
const attrPrefix = memoize((k) => ` ${needsQuoting(k) ? goQuote(k) : k}=`, 256);

type Sink = (line: string) => void;

// Lines of the data path (one or more per request) are buffered and written together at the end of
// the event-loop turn — under load at most every MIN_FLUSH_INTERVAL_MS, the lines of several turns
// in one write(2): a synchronous write per request was 10–11 % of the proxy's CPU at c=16
// (docs/PERFORMANCE.md). Order is kept — every other line flushes the buffer before it is
// written — and lines are never torn: a non-blocking stderr that is full (EAGAIN) keeps the unwritten
// bytes and retries every RETRY_MS, later lines queue behind them (up to MAX_PENDING_BYTES; beyond,
// whole lines are dropped — logs are best effort, the audit trail is not). Everything is flushed before
// the process exits (the 'exit' handler runs on process.exit, after main returns, on uncaught errors).
const FLUSH_AT_BYTES = 64 * 1024;
/** Under load, writes at most this often: the lines of several turns share one write(2) (as the audit writer). */
const MIN_FLUSH_INTERVAL_MS = 20;
let lastFlush = 0;
const MAX_PENDING_BYTES = 1024 * 1024;
const RETRY_MS = 5;
let buffered = "";
let flushScheduled = false;
/** Bytes a full stderr did not take yet (written before anything else). */
let carry: Uint8Array | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;

/** Write `bytes` to fd 2 as far as it takes them; returns what is left (EAGAIN), or null. */
function writeSome(bytes: Uint8Array): Uint8Array | null {
  let off = 0;
  while (off < bytes.byteLength) {
    try {
      off += writeSync(2, bytes, off, bytes.byteLength - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") return bytes.subarray(off);
      return null; // stderr gone (EPIPE, EBADF…): nothing more to do
    }
  }
  return null;
}

/** The default sink: stderr, in order, never a torn line. */
function writeStderr(text: string): void {
  const bytes = Buffer.from(text, "utf8");
  if (carry) {
    if (carry.byteLength + bytes.byteLength > MAX_PENDING_BYTES) return; // stderr stuck: drop whole lines
    carry = Buffer.concat([carry, bytes]);
    return;
  }
  carry = writeSome(bytes);
  if (carry && !retryTimer) retryTimer = setTimeout(retryCarry, RETRY_MS).unref();
}

function retryCarry(): void {
  retryTimer = null;
  if (!carry) return;
  carry = writeSome(carry);
  if (carry) retryTimer = setTimeout(retryCarry, RETRY_MS).unref();
}

const defaultSink: Sink = writeStderr;
let sink: Sink = defaultSink;

/** Write every buffered line now (to the sink; a full stderr keeps them in order for later). */
export function flushLog(): void {
  if (buffered === "") return;
  const text = buffered;
  buffered = "";
  sink(text);
}

function scheduledFlush(): void {
  flushScheduled = false;
  lastFlush = performance.now();
  flushLog();
}

/** At exit: everything, waiting for a full stderr for up to 2 s. */
function flushAtExit(): void {
  flushLog();
  if (retryTimer) clearTimeout(retryTimer);
  const until = Date.now() + 2_000;
  while (carry && Date.now() < until) carry = writeSome(carry);
}

process.on("exit", flushAtExit);

/** Replace where lines go (tests). Returns the previous sink. Lines buffered so far go to the old one. */
export function setLogSink(s: Sink): Sink {
  flushLog();
  const prev = sink;
  sink = s;
  return prev;
}

/** A line now, after any buffered ones. */
export function log(level: Level, msg: string, attrs?: Attrs): void {
  if (buffered !== "") flushLog();
  sink(formatLine(level, msg, attrs));
}

/**
 * A line of the data path: written with the other lines of this event-loop turn (or at once when a
 * test replaced the sink, so captured lines are there when the call returns).
 */
export function logSoon(level: Level, msg: string, attrs?: Attrs): void {
  queueLine(formatLine(level, msg, attrs));
}

/** logSoon of a line declared once (LineTemplate) with this line's values. */
export function logSoonFrom(template: LineTemplate, values: readonly AttrValue[]): void {
  queueLine(template.format(values));
}

function queueLine(line: string): void {
  if (sink !== defaultSink) return sink(line);
  buffered += line;
  if (buffered.length >= FLUSH_AT_BYTES) flushLog();
  else if (!flushScheduled) {
    flushScheduled = true;
    // the end of this turn, or — when the last write was under MIN_FLUSH_INTERVAL_MS ago — then
    const wait = lastFlush + MIN_FLUSH_INTERVAL_MS - performance.now();
    if (wait > 0) setTimeout(scheduledFlush, wait).unref();
    else setImmediate(scheduledFlush);
  }
}

export const info = (msg: string, attrs?: Attrs): void => log("INFO", msg, attrs);
export const warn = (msg: string, attrs?: Attrs): void => log("WARN", msg, attrs);
export const error = (msg: string, attrs?: Attrs): void => log("ERROR", msg, attrs);
/** INFO on the data path (see logSoon). */
export const infoSoon = (msg: string, attrs?: Attrs): void => logSoon("INFO", msg, attrs);

// src/log/slog.ts: lines of the data path (logSoon) are buffered until the end of the event-loop
// turn — in order with every other line, never torn, never lost at exit. The order and exit cases
// run in a child process (the real stderr); the format itself is test/log.test.ts.
import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import {
  flushLog,
  formatTime,
  goQuote,
  info,
  logSoon,
  needsQuoting,
  setLogSink,
  zoneIsUtc,
} from "../../../src/log/slog.ts";

const SLOG = resolve(import.meta.dir, "../../../src/log/slog.ts");

/** Run a script that imports slog as `L`; returns its stderr and exit code. */
async function child(body: string): Promise<{ stderr: string; code: number }> {
  const script = `import * as L from ${JSON.stringify(SLOG)};\n${body}\n`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "ignore", stderr: "pipe", cwd: join(SLOG, "..") });
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  return { stderr, code };
}

const msgs = (stderr: string) => [...stderr.matchAll(/ msg=(\S+)/g)].map((m) => m[1]);

describe("buffered data-path lines", () => {
  test("they keep their order with immediate lines: an immediate line flushes the buffer first", async () => {
    const r = await child(`
      L.infoSoon("a"); L.logSoon("WARN", "b"); L.warn("c"); L.infoSoon("d");
      setTimeout(() => { L.error("e"); }, 20);`);
    expect(msgs(r.stderr)).toEqual(["a", "b", "c", "d", "e"]);
  });

  test("written at the end of the event-loop turn, before anything written in a later turn", async () => {
    const r = await child(`
      import { writeSync } from "node:fs";
      L.infoSoon("first");
      writeSync(2, "same-turn\\n");
      setTimeout(() => writeSync(2, "later\\n"), 10);`);
    expect(
      r.stderr
        .split("\n")
        .filter(Boolean)
        .map((l) => (l.startsWith("time=") ? msgs(l)[0] : l)),
    ).toEqual(["same-turn", "first", "later"]);
  });

  test("not lost at exit: process.exit in the same turn, an uncaught error, the end of the program", async () => {
    expect(msgs((await child(`L.infoSoon("x"); L.infoSoon("y"); process.exit(3);`)).stderr)).toEqual(["x", "y"]);
    const thrown = await child(`L.infoSoon("before"); setTimeout(() => { throw new Error("boom"); }, 0);`);
    expect(thrown.code).not.toBe(0);
    expect(msgs(thrown.stderr)).toContain("before");
    expect(msgs((await child(`L.infoSoon("last");`)).stderr)).toEqual(["last"]);
  });

  test("many lines in one turn (past the flush threshold): every line whole, in order", async () => {
    const r = await child(`
      for (let i = 0; i < 5000; i++) L.infoSoon("n" + i, [["pad", "x".repeat(50)]]);
      process.exit(0);`);
    const lines = r.stderr.split("\n").filter(Boolean);
    expect(lines.length).toBe(5000);
    lines.forEach((l, i) => {
      expect(l).toMatch(/^time=\S+ level=INFO msg=n\d+ pad=x{50}$/);
      expect(l).toContain(` msg=n${i} `);
    });
  });

  test("with a replaced sink (tests, `check`), a line is there when the call returns", () => {
    const got: string[] = [];
    const prev = setLogSink((l) => got.push(l));
    try {
      logSoon("INFO", "now", [["k", "v"]]);
      expect(got.length).toBe(1);
      expect(got[0]).toEndWith(" level=INFO msg=now k=v\n");
      info("then");
      expect(got.length).toBe(2);
    } finally {
      setLogSink(prev);
      flushLog();
    }
  });
});

describe("formatTime's per-second cache", () => {
  test("every millisecond of a second, and across seconds, formats as the uncached form would", () => {
    const pad = (n: number, w = 2) => String(n).padStart(w, "0");
    const slow = (d: Date) => {
      const off = -d.getTimezoneOffset();
      const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
      if (off === 0) return base + "Z";
      const a = Math.abs(off);
      return `${base}${off > 0 ? "+" : "-"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
    };
    const t0 = Date.UTC(2026, 10, 22, 21, 47, 27, 0);
    for (let ms = -1500; ms < 2500; ms += 7) {
      const d = new Date(t0 + ms);
      expect(formatTime(d)).toBe(slow(d));
    }
    for (const d of [new Date(0), new Date(t0 + 999), new Date(t0 + 1000), new Date(t0), new Date(t0 + 5)])
      expect(formatTime(d)).toBe(slow(d));
  });
});

describe("zoneIsUtc: local time known to be UTC without the engine's time-zone data", () => {
  const link = (target: string) => () => target;
  const none = () => {
    throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
  };
  const cases: Array<[string, Record<string, string>, (p: string) => string, boolean]> = [
    ["TZ=UTC", { TZ: "UTC" }, none, true],
    ["TZ=:UTC (AWS Lambda)", { TZ: ":UTC" }, none, true],
    ["TZ=Etc/UTC", { TZ: "Etc/UTC" }, none, true],
    ["TZ=:Etc/UCT", { TZ: ":Etc/UCT" }, none, true],
    ["TZ=Zulu", { TZ: "Zulu" }, none, true],
    ["TZ=Europe/Berlin wins over a UTC link", { TZ: "Europe/Berlin" }, link("/usr/share/zoneinfo/Etc/UTC"), false],
    ["TZ= (empty): the engine decides", { TZ: "" }, link("/usr/share/zoneinfo/Etc/UTC"), false],
    ["TZ=UTC+3 (a POSIX rule with an offset)", { TZ: "UTC+3" }, none, false],
    ["TZ=utc (not a zone name)", { TZ: "utc" }, none, false],
    ["no TZ, link to Etc/UTC", {}, link("/usr/share/zoneinfo/Etc/UTC"), true],
    ["no TZ, relative link to UTC", {}, link("../usr/share/zoneinfo/UTC"), true],
    ["no TZ, link to Universal", {}, link("/usr/share/zoneinfo/Universal"), true],
    ["no TZ, link to Europe/London (UTC in winter only)", {}, link("/usr/share/zoneinfo/Europe/London"), false],
    ["no TZ, link to posix/UTC (not recognised)", {}, link("/usr/share/zoneinfo/posix/UTC"), false],
    ["no TZ, link outside zoneinfo", {}, link("/etc/UTC"), false],
    ["no TZ, no link (a copied file, or none)", {}, none, false],
  ];
  test.each(cases)("%s", (_name, env, readLink, want) => {
    expect(zoneIsUtc(env, readLink)).toBe(want);
  });
});

// strconv.Quote as slog's text handler uses it: a byte that was not UTF-8 (U+DC00 + byte, from
// src/http/target.ts decodedPath) as \x.., a valid U+FFFD as it is (printable) — though its
// presence alone makes the value quoted, as Go's needsQuoting does for RuneError.
test("goQuote: bytes that were not UTF-8 as \\x.., U+FFFD printed", () => {
  expect(goQuote("/a\udce9b\udc80")).toBe('"/a\\xe9b\\x80"');
  expect(needsQuoting("/r\ufffd")).toBe(true);
  expect(goQuote("/r\ufffd")).toBe('"/r\ufffd"');
  expect(goQuote("/x\u0085")).toBe('"/x\\u0085"');
});

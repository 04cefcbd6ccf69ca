import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatLine, formatTime, goQuote, LineTemplate, needsQuoting, type TemplateField } from "../src/log/slog.ts";
import { RequestScope, requestLine } from "../src/intercept/request-scope.ts";
import { parseRequestHead } from "../src/http/h1-request.ts";
import { OUR_BIN } from "./helpers/bin.ts";
import { tempDir } from "./helpers/proxy.ts";

describe("slog text format (Go TextHandler parity)", () => {
  const t = new Date(Date.UTC(2026, 10, 22, 21, 47, 27, 487));

  test("time has millisecond precision and Z in UTC", () => {
    if (new Date().getTimezoneOffset() === 0) expect(formatTime(t)).toBe("2026-11-22T21:47:27.487Z");
    expect(formatTime(t)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$/);
  });

  test("bare and quoted values like the reference's lines", () => {
    const line = formatLine(
      "INFO",
      "clef-proxy starting",
      { version: "0.0.4", proxy_id: "vm", port: 18888, lambda: false },
      t,
    );
    expect(line).toEndWith(' level=INFO msg="clef-proxy starting" version=0.0.4 proxy_id=vm port=18888 lambda=false\n');
    expect(formatLine("INFO", "listening", { addr: "127.0.0.1:8888" }, t)).toEndWith(
      " msg=listening addr=127.0.0.1:8888\n",
    );
    expect(formatLine("INFO", "denied: host not in manifest", { service_header: "" }, t)).toEndWith(
      ' msg="denied: host not in manifest" service_header=""\n',
    );
  });

  test("errors with quotes are escaped like strconv.Quote", () => {
    const line = formatLine(
      "ERROR",
      "agent client init",
      { err: 'agent: CLEF_PROXY_AGENT_URL scheme must be http or https, got "ftp"' },
      t,
    );
    expect(line).toEndWith(' err="agent: CLEF_PROXY_AGENT_URL scheme must be http or https, got \\"ftp\\""\n');
  });

  test("quoting rules", () => {
    expect(needsQuoting("")).toBe(true);
    expect(needsQuoting("a=b")).toBe(true);
    expect(needsQuoting("a\\b")).toBe(false);
    expect(needsQuoting("ns/KEY")).toBe(false);
    expect(needsQuoting("héllo")).toBe(false);
    expect(goQuote("a\nb\x00")).toBe('"a\\nb\\x00"');
  });
});

describe("lines declared once (LineTemplate): the same line as the pairs", () => {
  const afterTime = (line: string) => line.slice(line.indexOf(" level="));
  test("random keys, fixed and changing values (bare, quoted, empty, non-ASCII, numbers) give formatLine's line", () => {
    const pool = ["a", "host", "with space", 'q"uote', "", "é", "x=y", "k\n", "injection_point"];
    let seed = 5;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return pool[seed % pool.length]!;
    };
    for (let i = 0; i < 500; i++) {
      const keys = Array.from({ length: i % 7 }, pick);
      const values: Array<string | number> = keys.map((_, j) => (j === 2 ? i : pick()));
      // every third key (from an offset that moves) has its value fixed in the template
      const fixed = keys.map((_, j) => (j + i) % 3 === 0);
      const fields = keys.map((k, j): TemplateField => (fixed[j] ? [k, values[j]!] : k));
      const want = formatLine(
        "INFO",
        "m s",
        keys.map((k, j): [string, string | number] => [k, values[j]!]),
      );
      const t = new LineTemplate("INFO", "m s", fields);
      expect(t.arity).toBe(fixed.filter((f) => !f).length);
      expect(afterTime(t.format(values.filter((_, j) => !fixed[j])))).toBe(afterTime(want));
    }
  });

  test("its time is formatTime's, milliseconds padded", () => {
    const t = new LineTemplate("WARN", "m", []);
    for (const ms of [
      Date.UTC(2026, 10, 22, 21, 47, 27, 7),
      Date.UTC(2026, 10, 22, 21, 47, 27, 87),
      Date.UTC(2026, 10, 22, 21, 47, 28, 0),
      Date.UTC(2026, 10, 22, 21, 47, 27, 999),
    ])
      expect(t.format([], ms)).toBe(`time=${formatTime(new Date(ms))} level=WARN msg=m\n`);
  });

  test("a request's requestLine with its lineValues is its logBase pairs and the rest", () => {
    const r = parseRequestHead("GET /a%20b?q=1 HTTP/1.1\r\nHost: api.test:443", 100);
    if (r.kind !== "ok") throw new Error("no head");
    const serving = { deps: { proxyId: "p 1" }, inFlight: new Set() } as unknown as RequestScope["serving"];
    const req = new RequestScope(serving, { clientIp: "127.0.0.1" } as unknown as RequestScope["conn"], r.head, null);
    const want = formatLine("INFO", "injected", [...req.logBase(), ["service", "api"], ["credential", "ns/K"]]);
    const fixed = requestLine("INFO", "injected", "p 1", ["service", "api"], ["credential", "ns/K"]);
    expect(afterTime(fixed.format(req.lineValues()))).toBe(afterTime(want));
    const changing = requestLine("INFO", "injected", "p 1", "service", "credential");
    expect(afterTime(changing.format([...req.lineValues(), "api", "ns/K"]))).toBe(afterTime(want));
  });
});

describe("the binary's log time is local time, in every zone (UTC told without the engine's zone data)", () => {
  /** The first line `serve` logs, with `env` (an unusable agent URL: it exits 4 after the CA step). */
  function firstLine(env: Record<string, string>): string {
    const home = tempDir("clef-tz-");
    const cfg = join(home, "c.json");
    writeFileSync(cfg, JSON.stringify({ listen: { port: 0 } }));
    const r = Bun.spawnSync([OUR_BIN, "serve", "--config", cfg], {
      env: {
        HOME: home,
        CLEF_PROXY_AGENT_URL: "ftp://agent",
        CLEF_PROXY_AGENT_TOKEN: "t",
        CLEF_PROXY_TOKEN: "w",
        ...env,
      },
    });
    expect(r.exitCode).toBe(4);
    return r.stderr.toString().split("\n")[0]!;
  }
  const stamp = (line: string) => /^time=(\S+) level=INFO msg="clef-proxy starting"/.exec(line)?.[1] ?? line;
  // the offset the engine gives the zone now (standard or summer time, as the date falls); no zone:
  // no TZ at all (the one /etc/localtime names)
  const offset = (zone?: string) => {
    const r = Bun.spawnSync([process.execPath, "-e", "console.log(-new Date().getTimezoneOffset())"], {
      env: zone === undefined ? { PATH: process.env.PATH ?? "" } : { ...process.env, TZ: zone },
    });
    const m = Number(r.stdout.toString().trim());
    return m === 0
      ? "Z"
      : `${m < 0 ? "-" : "+"}${String(Math.floor(Math.abs(m) / 60)).padStart(2, "0")}:${String(Math.abs(m) % 60).padStart(2, "0")}`;
  };

  test.each(["Asia/Kolkata", "Europe/Berlin", "America/St_Johns", "UTC", ":UTC", "Etc/UTC"])("TZ=%s", (zone) => {
    const t = stamp(firstLine({ TZ: zone }));
    expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$/);
    expect(t.endsWith(offset(zone))).toBe(true);
    // and the wall clock of that zone: within a minute of now
    const ms = Date.parse(t);
    expect(Math.abs(ms - Date.now())).toBeLessThan(60_000);
  });

  test("no TZ: the zone /etc/localtime names, as the engine reads it", () => {
    expect(stamp(firstLine({}))).toEndWith(offset());
  });

  test("Asia/Kolkata is +05:30 (the check above can tell zones apart)", () => {
    expect(stamp(firstLine({ TZ: "Asia/Kolkata" }))).toEndWith("+05:30");
  });
});

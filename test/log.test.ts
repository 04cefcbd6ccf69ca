import { describe, expect, test } from "bun:test";
import { formatLine, formatTime, goQuote, needsQuoting } from "../src/log/slog.ts";

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

// src/audit/chain.ts: hashing, the last line of a file, and the verifier's verdicts.
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CHAIN_ORIGIN,
  ChainVerifier,
  fdLines,
  formatVerdict,
  lastLineOfFd,
  lastLineOfPath,
  sha256Hex,
  verifyFiles,
} from "../../../src/audit/chain.ts";

const dir = () => mkdtempSync(join(tmpdir(), "clef-chain-"));

/** n chained lines starting from `prev`. */
function chain(n: number, prev = CHAIN_ORIGIN, tag = "r"): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const line = `{"request_id":"${tag}${i}","status":"denied","prev_sha256":"${prev}"}\n`;
    out.push(line);
    prev = sha256Hex(line);
  }
  return out;
}

describe("hashing", () => {
  test("the origin is the SHA-256 of the empty string; lines are hashed with their newline", () => {
    expect(CHAIN_ORIGIN).toBe(createHash("sha256").update("").digest("hex"));
    expect(sha256Hex("a\n")).toBe(createHash("sha256").update("a\n").digest("hex"));
  });
});

describe("last line of a file", () => {
  test("empty → null; one line; many lines; a line longer than the read chunk", () => {
    const d = dir();
    const f = join(d, "a.log");
    writeFileSync(f, "");
    expect(lastLineOfPath(f)).toBeNull();
    writeFileSync(f, "one\n");
    expect(lastLineOfPath(f)!.toString()).toBe("one\n");
    writeFileSync(f, "one\ntwo\nthree\n");
    expect(lastLineOfPath(f)!.toString()).toBe("three\n");
    const long = "x".repeat(200_000);
    writeFileSync(f, `one\n${long}\n`);
    expect(lastLineOfPath(f)!.toString()).toBe(long + "\n");
    expect(lastLineOfPath(join(d, "missing"))).toBeNull();
  });

  test("a torn last line is terminated when repairing (and then is the last line)", () => {
    const f = join(dir(), "a.log");
    writeFileSync(f, 'one\n{"torn');
    const fd = openSync(f, "a+");
    expect(lastLineOfFd(fd, true)!.toString()).toBe('{"torn\n');
    expect(readFileSync(f, "utf8")).toBe('one\n{"torn\n');
  });
});

describe("fdLines", () => {
  test("splits across chunk boundaries and keeps a final line without newline", () => {
    const f = join(dir(), "a.log");
    writeFileSync(f, "abc\ndefgh\n\nij");
    expect([...fdLines(openSync(f, "r"), 3)].map((b) => Buffer.from(b).toString())).toEqual([
      "abc\n",
      "defgh\n",
      "\n",
      "ij",
    ]);
  });
});

function verify(files: Record<string, string[] | string>) {
  const d = dir();
  const paths = Object.entries(files).map(([name, lines]) => {
    const p = join(d, name);
    writeFileSync(p, Array.isArray(lines) ? lines.join("") : lines);
    return p;
  });
  const r = verifyFiles(paths);
  return r.ok ? r : { ...r, file: r.file.slice(d.length + 1) };
}

describe("verify", () => {
  const lines = chain(10);

  test("an intact chain from the origin", () => {
    const r = verify({ "audit.log": lines });
    expect(r).toMatchObject({ ok: true, lines: 10, files: 1, fromOrigin: true, unchained: 0 });
    expect(formatVerdict(r as never)).toContain("chain intact from");
  });

  test("across files, oldest first", () => {
    const r = verify({
      "audit.log.2": lines.slice(0, 3),
      "audit.log.1": lines.slice(3, 7),
      "audit.log": lines.slice(7),
    });
    expect(r).toMatchObject({ ok: true, lines: 10, files: 3, fromOrigin: true });
  });

  test("files given in the wrong order", () => {
    const r = verify({ "audit.log": lines.slice(7), "audit.log.1": lines.slice(0, 7) });
    expect(r).toMatchObject({ ok: false, file: "audit.log.1", line: 1 });
  });

  test("the oldest lines rotated away: the first line's predecessor is not given", () => {
    const r = verify({ "audit.log": lines.slice(4) });
    expect(r).toMatchObject({ ok: true, lines: 6, fromOrigin: false });
    expect(formatVerdict(r as never)).toContain("predecessor is not in the given files");
  });

  test("an edited line breaks the link to the next line", () => {
    const t = lines.slice();
    t[4] = t[4]!.replace('"denied"', '"injected"');
    const r = verify({ "audit.log": t });
    expect(r).toMatchObject({ ok: false, file: "audit.log", line: 6 });
    expect(formatVerdict(r as never)).toBe(
      "audit verify: broken chain at audit.log line 6: prev_sha256 is not the SHA-256 of line 5: a line was changed, removed, inserted or moved",
    );
  });

  test("a deleted line", () => {
    const t = lines.slice();
    t.splice(3, 1);
    expect(verify({ "audit.log": t })).toMatchObject({ ok: false, line: 4 });
  });

  test("reordered lines", () => {
    const t = lines.slice();
    [t[5], t[6]] = [t[6]!, t[5]!];
    expect(verify({ "audit.log": t })).toMatchObject({ ok: false, line: 6 });
  });

  test("an inserted line (even one with a correct prev_sha256)", () => {
    const t = lines.slice();
    const forged = `{"request_id":"forged","prev_sha256":"${sha256Hex(t[2]!)}"}\n`;
    t.splice(3, 0, forged);
    expect(verify({ "audit.log": t })).toMatchObject({ ok: false, line: 5 });
  });

  test("a deleted line at a file boundary names the previous file's last line", () => {
    const r = verify({ "audit.log.1": lines.slice(0, 5), "audit.log": lines.slice(6) });
    expect(r).toMatchObject({ ok: false, file: "audit.log", line: 1 });
    expect(formatVerdict(r as never)).toContain("the last line of");
  });

  test("lines before the chain was switched on are counted, not checked", () => {
    const pre = ['{"request_id":"old1"}\n', '{"request_id":"old2"}\n'];
    const t = [...pre, ...chain(3, sha256Hex(pre[1]!))];
    const r = verify({ "audit.log": t });
    expect(r).toMatchObject({ ok: true, unchained: 2, lines: 5, fromOrigin: false });
    expect(formatVerdict(r as never)).toContain("2 earlier lines carry no prev_sha256");
  });

  test("an unchained line after the chain started, a torn last line, garbage", () => {
    const t = lines.slice();
    t.splice(5, 0, '{"request_id":"x"}\n');
    expect(verify({ "audit.log": t })).toMatchObject({
      ok: false,
      line: 6,
      problem: expect.stringContaining("no prev_sha256"),
    });
    expect(verify({ "audit.log": lines.join("").slice(0, -5) })).toMatchObject({
      ok: false,
      line: 10,
      problem: expect.stringContaining("no trailing newline"),
    });
    const g = lines.slice();
    g[2] = "not json\n";
    expect(verify({ "audit.log": g })).toMatchObject({ ok: false, line: 3, problem: "not a JSON audit line" });
  });

  test("no chained line at all is not a verified chain; empty files are", () => {
    expect(verify({ "audit.log": ['{"a":1}\n'] })).toMatchObject({ ok: false, line: 1 });
    const r = verify({ "audit.log": "" });
    expect(r).toMatchObject({ ok: true, lines: 0 });
    expect(formatVerdict(r as never)).toBe("audit verify: ok: 0 lines in 1 file");
  });

  test("unreadable input throws (the CLI exits 2)", () => {
    expect(() => verifyFiles([join(dir(), "missing")])).toThrow(/^open .*missing: no such file or directory$/);
    expect(() => verifyFiles([dir()])).toThrow(/^read .*: is a directory$/);
  });

  test("ChainVerifier takes lines one at a time", () => {
    const v = new ChainVerifier();
    for (const [i, l] of lines.entries()) expect(v.feed(Buffer.from(l), "f", i + 1)).toBeNull();
    expect(v.lines).toBe(10);
  });
});

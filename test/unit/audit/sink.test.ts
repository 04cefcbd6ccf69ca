// src/audit/sink.ts and src/audit/destination.ts: the bounded lossless queue (admit/refuse, one WARN
// per episode), a write that fails part-way resumes where it stopped, the hash chain (seeded from
// the file, continued across rotation), stdout checks, stats.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, write as fsWrite } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHAIN_ORIGIN, sha256Hex, verifyFiles } from "../../../src/audit/chain.ts";
import { type Destination, FileDestination, stdoutProblem, type WriteFn } from "../../../src/audit/destination.ts";
import { encodeAuditLine } from "../../../src/audit/encode.ts";
import { AsyncAuditWriter, MIN_WRITE_INTERVAL_MS, RESERVED_LINE_BYTES } from "../../../src/audit/sink.ts";
import type { AuditEntry } from "../../../src/audit/types.ts";
import { setLogSink } from "../../../src/log/slog.ts";

const dir = () => mkdtempSync(join(tmpdir(), "clef-sink-"));

function entry(i: number, pad = 0): AuditEntry {
  return {
    ts: 1795384051024780471n,
    requestId: `id-${i}`,
    clientIp: "127.0.0.1",
    method: "GET",
    host: "h",
    path: "/" + "p".repeat(pad),
    status: "denied",
    latencyMs: 0,
  };
}

let logs: string[] = [];
let prevSink: ReturnType<typeof setLogSink>;
beforeEach(() => {
  logs = [];
  prevSink = setLogSink((l) => logs.push(l));
});
afterEach(() => setLogSink(prevSink));

/** A destination whose writes wait until released. */
class GatedDestination implements Destination {
  readonly kind = "stdout" as const;
  lines: string[] = [];
  backlog = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  block(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = null;
  }
  async write(lines: string[]): Promise<void> {
    this.backlog += lines.length;
    if (this.gate) await this.gate;
    this.lines.push(...lines);
    this.backlog -= lines.length;
  }
  chainSeed(): string {
    return CHAIN_ORIGIN;
  }
  close(): void {}
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("bounded queue (CONTRACT §18.16)", () => {
  test("admit() reserves room; refuses when queued + reserved reaches the line bound; one WARN per episode", async () => {
    const d = new GatedDestination();
    d.block();
    const w = new AsyncAuditWriter(d, { proxyId: "p" }, { maxLines: 8 });
    for (let i = 0; i < 5; i++) expect(w.admit()).toBe(true);
    for (let i = 0; i < 3; i++) w.write(entry(i)); // consumes 3 admissions: 3 queued + 2 reserved
    expect(w.stats()[0]).toMatchObject({ queued: 3, reserved: 2, refused: 0, dropped: 0 });
    for (let i = 0; i < 3; i++) expect(w.admit()).toBe(true); // 3 + 5 = 8
    expect(w.admit()).toBe(false);
    expect(w.admit()).toBe(false);
    expect(w.stats()[0]).toMatchObject({ refused: 2, reserved: 5 });
    const full = logs.filter((l) => l.includes("queue full"));
    expect(full.length).toBe(1);
    expect(full[0]).toContain('level=WARN msg="audit: queue full, refusing requests" queued=3 reserved=5');
    // The admitted requests still write (nothing admitted is refused), and a write without
    // admission is accepted above the bound.
    for (let i = 3; i < 9; i++) w.write(entry(i));
    expect(w.stats()[0]).toMatchObject({ queued: 9, reserved: 0 });
    d.release();
    await tick();
    await tick();
    expect(d.lines.length).toBe(9);
    expect(logs.filter((l) => l.includes("queue has room again")).length).toBe(1);
    expect(logs.find((l) => l.includes("queue has room again"))).toContain("refused=2 refused_total=2");
    expect(w.admit()).toBe(true);
    expect(w.stats()[0]).toMatchObject({ written: 9, queued: 0, refused: 2, dropped: 0 });
  });

  test("release() gives an admission back without a line (a request that was no decision)", () => {
    const w = new AsyncAuditWriter(new GatedDestination(), { proxyId: "p" }, { maxLines: 2 });
    expect(w.admit()).toBe(true);
    expect(w.admit()).toBe(true);
    expect(w.admit()).toBe(false);
    w.release();
    expect(w.admit()).toBe(true);
    expect(w.stats()[0]).toMatchObject({ written: 0, queued: 0 });
  });

  test("the byte bound: queued bytes plus RESERVED_LINE_BYTES per admission", () => {
    const d = new GatedDestination();
    d.block();
    const line = encodeAuditLine(entry(0, 900), { proxyId: "p" });
    const w = new AsyncAuditWriter(d, { proxyId: "p" }, { maxLines: 1000, maxBytes: 4 * line.length + 10 });
    for (let i = 0; i < 4; i++) w.write(entry(i, 900));
    expect(w.admit()).toBe(true); // 4 lines < bound
    expect(w.admit()).toBe(false); // 4 lines + one reservation's 1 KiB ≥ bound
    expect(w.stats()[0]).toMatchObject({ queued: 4, queuedBytes: 4 * line.length, reserved: 1, refused: 1 });
    const w2 = new AsyncAuditWriter(d, { proxyId: "p" }, { maxBytes: 3 * RESERVED_LINE_BYTES });
    expect([w2.admit(), w2.admit(), w2.admit(), w2.admit()]).toEqual([true, true, true, false]);
  });

  test("the episode ends only below 3/4 of the bound (no WARN flapping at the edge)", async () => {
    const d = new GatedDestination();
    const w = new AsyncAuditWriter(d, { proxyId: "p" }, { maxLines: 8 });
    for (let i = 0; i < 8; i++) w.admit();
    expect(w.admit()).toBe(false);
    w.write(entry(0)); // one reservation used: 7 reserved + written soon
    await tick();
    expect(w.admit()).toBe(true); // room for one again, but still 8/8 → episode not over
    expect(logs.filter((l) => l.includes("room again")).length).toBe(0);
    for (let i = 1; i < 4; i++) w.write(entry(i));
    await Bun.sleep(MIN_WRITE_INTERVAL_MS + 10); // under load the next write waits for the interval
    expect(logs.filter((l) => l.includes("room again")).length).toBe(1);
  });
});

describe("a write that fails part-way resumes where it stopped", () => {
  test("half a batch written, then ENOSPC twice: every line exactly once, none torn", async () => {
    const file = join(dir(), "audit.log");
    let calls = 0;
    let failures = 0;
    const flaky: WriteFn = (fd, buf, off, len) => {
      calls++;
      if (calls === 1)
        len = Math.floor(len / 2) + 3; // a write that stops mid-line
      else if (failures < 2) {
        failures++;
        return Promise.reject(Object.assign(new Error("no space left on device"), { code: "ENOSPC" }));
      }
      return new Promise((res, rej) => fsWrite(fd, buf, off, len, null, (e, n) => (e ? rej(e) : res(n))));
    };
    const w = new AsyncAuditWriter(new FileDestination(file, 100, 5, undefined, flaky), { proxyId: "p" });
    for (let i = 0; i < 10; i++) w.write(entry(i, 50));
    await Bun.sleep(50);
    expect(logs.some((l) => l.includes("audit: write failed, retrying; entries are kept"))).toBe(true);
    expect(w.stats()[0]!.written).toBeLessThan(10);
    for (let i = 10; i < 15; i++) w.write(entry(i, 50));
    await w.close(Date.now() + 2000);
    const ids = readFileSync(file, "utf8")
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l).request_id);
    expect(ids).toEqual(Array.from({ length: 15 }, (_, i) => `id-${i}`));
    expect(w.stats()[0]).toMatchObject({ written: 15, queued: 0 });
    expect(logs.some((l) => l.includes("audit: destination writable again"))).toBe(true);
  });

  test("a short write (write(2) returning fewer bytes) is simply continued", async () => {
    const file = join(dir(), "audit.log");
    const short: WriteFn = (fd, buf, off, len) =>
      new Promise((res, rej) => fsWrite(fd, buf, off, Math.min(len, 7), null, (e, n) => (e ? rej(e) : res(n))));
    const w = new AsyncAuditWriter(new FileDestination(file, 100, 5, undefined, short), { proxyId: "p" });
    for (let i = 0; i < 20; i++) w.write(entry(i));
    await w.close(Date.now() + 2000);
    expect(readFileSync(file, "utf8").trimEnd().split("\n").length).toBe(20);
  });
});

describe("hash chain", () => {
  const lineCtx = { proxyId: "p" };

  test("stdout-like destination: the first line hashes the empty string, each next the previous line", async () => {
    const d = new GatedDestination();
    const w = new AsyncAuditWriter(d, lineCtx, { hashChain: true });
    for (let i = 0; i < 3; i++) w.write(entry(i));
    await w.close(Date.now() + 1000);
    const prev = d.lines.map((l) => JSON.parse(l).prev_sha256);
    expect(prev).toEqual([CHAIN_ORIGIN, sha256Hex(d.lines[0]!), sha256Hex(d.lines[1]!)]);
    expect(d.lines[0]).toBe(encodeAuditLine(entry(0), lineCtx, CHAIN_ORIGIN));
  });

  test("file: continues across rotation and across restarts (seeded from the last line on disk)", async () => {
    const d = dir();
    const file = join(d, "audit.log");
    const lineLen = encodeAuditLine(entry(0), lineCtx, CHAIN_ORIGIN).length;
    const run = async (from: number, n: number) => {
      const w = new AsyncAuditWriter(new FileDestination(file, 1, 5, lineLen * 4), lineCtx, { hashChain: true });
      for (let i = from; i < from + n; i++) w.write(entry(i));
      await w.close(Date.now() + 1000);
    };
    await run(0, 10);
    await run(10, 3); // restart: appends to audit.log (2 lines there before)
    await run(13, 2); // restart right after a rotation boundary
    const files = readdirSync(d)
      .sort()
      .reverse()
      .map((f) => join(d, f)); // audit.log.N … audit.log.1, audit.log
    const r = verifyFiles(files);
    expect(r).toMatchObject({ ok: true, lines: 15, fromOrigin: true });
  });

  test("file: an empty current file (just rotated) seeds from <file>.1; a torn line is terminated", async () => {
    const d = dir();
    const file = join(d, "audit.log");
    const first = encodeAuditLine(entry(0), lineCtx, CHAIN_ORIGIN);
    writeFileSync(`${file}.1`, first);
    writeFileSync(file, "");
    const w = new AsyncAuditWriter(new FileDestination(file, 100, 5), lineCtx, { hashChain: true });
    w.write(entry(1));
    await w.close(Date.now() + 1000);
    expect(verifyFiles([`${file}.1`, file])).toMatchObject({ ok: true, lines: 2, fromOrigin: true });

    writeFileSync(file, first + '{"torn');
    const w2 = new AsyncAuditWriter(new FileDestination(file, 100, 5), lineCtx, { hashChain: true });
    w2.write(entry(2));
    await w2.close(Date.now() + 1000);
    const text = readFileSync(file, "utf8");
    expect(text.split("\n")[1]).toBe('{"torn');
    expect(JSON.parse(text.split("\n")[2]!).prev_sha256).toBe(sha256Hex('{"torn\n'));
    expect(verifyFiles([file])).toMatchObject({ ok: false, line: 2, problem: "not a JSON audit line" });
  });

  test("without hash_chain no prev_sha256 and the file is not touched at open", async () => {
    const file = join(dir(), "audit.log");
    writeFileSync(file, "torn");
    const w = new AsyncAuditWriter(new FileDestination(file, 100, 5), lineCtx);
    w.write(entry(0));
    await w.close(Date.now() + 1000);
    expect(readFileSync(file, "utf8")).toStartWith('torn{"schema_version":1');
    expect(readFileSync(file, "utf8")).not.toContain("prev_sha256");
  });
});

describe("stdout checks", () => {
  test("closed at exec (the runtime's /dev/null has close-on-exec), read-only, EBADF; else fine", () => {
    expect(stdoutProblem("pos:\t0\nflags:\t02100002\nmnt_id:\t24\n", null)).toBe(
      "fd 1 was closed when the process started",
    );
    expect(stdoutProblem("pos:\t0\nflags:\t0100000\n", null)).toBe("fd 1 is open read-only");
    expect(stdoutProblem(null, Object.assign(new Error("x"), { code: "EBADF" }))).toBe("bad file descriptor");
    expect(stdoutProblem("pos:\t0\nflags:\t0100001\n", null)).toBeNull(); // >/dev/null on purpose
    expect(stdoutProblem("pos:\t0\nflags:\t01\n", null)).toBeNull(); // a pipe
    expect(stdoutProblem("pos:\t0\nflags:\t02\n", null)).toBeNull(); // O_RDWR, inherited
    expect(stdoutProblem(null, null)).toBeNull(); // no /proc (macOS)
  });
});

describe("write batching under load (MIN_WRITE_INTERVAL_MS)", () => {
  /** Counts the destination's writes. */
  class CountingDestination extends GatedDestination {
    writes: number[] = [];
    override async write(lines: string[]): Promise<void> {
      if (lines.length) this.writes.push(lines.length);
      return super.write(lines);
    }
  }

  test("the first line after a pause is written in the turn it came (no timer)", async () => {
    const d = new CountingDestination();
    const w = new AsyncAuditWriter(d, { proxyId: "p" });
    w.write(entry(0));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(d.lines.length).toBe(1);
  });

  test("a line per turn for 200 ms: every line, in order, in far fewer writes than turns", async () => {
    const d = new CountingDestination();
    const w = new AsyncAuditWriter(d, { proxyId: "p" }, {});
    let i = 0;
    const t0 = performance.now();
    const until = t0 + 200;
    while (performance.now() < until) {
      w.write(entry(i++));
      await new Promise((r) => setImmediate(r));
    }
    await w.close(Date.now() + 1000);
    const elapsed = performance.now() - t0;
    expect(d.lines.map((l) => JSON.parse(l).request_id)).toEqual(Array.from({ length: i }, (_, k) => `id-${k}`));
    // at most one write per interval (timers fire on whole milliseconds: an interval counted 1 ms
    // short here) or per 64 KiB waiting, plus the first and the one at close — whatever the
    // machine's speed, an upper bound
    expect(MIN_WRITE_INTERVAL_MS).toBe(20);
    const bytes = d.lines.reduce((a, l) => a + l.length, 0);
    expect(i).toBeGreaterThan(d.writes.length * 5);
    expect(d.writes.length).toBeLessThanOrEqual(
      Math.ceil(elapsed / (MIN_WRITE_INTERVAL_MS - 1)) + Math.ceil(bytes / (64 * 1024)) + 3,
    );
  });

  test("64 KiB waiting is written at once, without waiting for the interval", async () => {
    const d = new CountingDestination();
    const w = new AsyncAuditWriter(d, { proxyId: "p" });
    w.write(entry(0));
    await new Promise((r) => setImmediate(r)); // first write: the interval starts now
    for (let k = 1; k <= 80; k++) w.write(entry(k, 1000)); // ≈ 80 KiB in one turn
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(d.lines.length).toBe(81);
  });
});

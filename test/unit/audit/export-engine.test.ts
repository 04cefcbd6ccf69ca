// src/audit/export/engine.ts with a scripted transport: batching, one batch in flight, retries
// (same batch id and body), Retry-After, permanent answers, timeouts, the bounded queue (oldest
// dropped), rate-limited logs, shutdown flush and its deadline.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type ExportProtocol, ExportEngine, type EngineOptions } from "../../../src/audit/export/engine.ts";
import type { PostResult, Transport } from "../../../src/audit/export/transport.ts";
import type { AuditEntry } from "../../../src/audit/types.ts";
import { setLogSink } from "../../../src/log/slog.ts";

let logs: string[] = [];
let prevSink: ReturnType<typeof setLogSink>;
beforeEach(() => {
  logs = [];
  prevSink = setLogSink((l) => logs.push(l));
});
afterEach(() => setLogSink(prevSink));

const entry = {} as AuditEntry;

interface Call {
  body: string;
  headers: Record<string, string>;
  at: number;
  signal: AbortSignal;
}

/** answer(callIndex) → a result, "throw", "hang" (until aborted), or a promise. */
function scripted(answer: (i: number, c: Call) => PostResult | "throw" | "hang" | Promise<PostResult>) {
  const calls: Call[] = [];
  let attemptNo = 0;
  const t: Transport = {
    logUrl: "https://recv.test:8443",
    post(body, headers, signal) {
      const c = { body, headers, at: Date.now(), signal };
      calls.push(c);
      const a = answer(attemptNo++, c);
      if (a === "throw") return Promise.reject(new Error("connection refused"));
      if (a === "hang")
        return new Promise((_, rej) => signal.addEventListener("abort", () => rej(new Error("aborted"))));
      return Promise.resolve(a);
    },
  };
  return { t, calls };
}

const ok: PostResult = { status: 200, retryAfterMs: null, body: "" };
const status = (s: number, retryAfterMs: number | null = null): PostResult => ({ status: s, retryAfterMs, body: "" });

let batchNo = 0;
const proto: ExportProtocol<string> = {
  name: "webhook",
  item: (line) => line,
  body: (lines) => lines.join(""),
  headers: (_b, id) => ({ "X-Batch": id, "X-Attempt": String(++batchNo) }),
  retryable: (s) => s === 408 || s === 429 || s >= 500,
};

function engine(t: Transport, o: Partial<EngineOptions> = {}) {
  return new ExportEngine(proto, t, {
    batchMaxLines: 3,
    flushIntervalMs: 30,
    timeoutMs: 1000,
    queueMaxLines: 1000,
    backoffBaseMs: 20,
    backoffMaxMs: 200,
    closeGraceMs: 100,
    random: () => 0,
    ...o,
  });
}

const lines = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `{"n":${from + i}}\n`);

describe("batching", () => {
  test("full batches go at once, the rest after flush_interval; one batch in flight", async () => {
    let release: (() => void) | null = null;
    const { t, calls } = scripted((i) => (i === 0 ? new Promise((r) => (release = () => r(ok))) : ok));
    const e = engine(t);
    for (const l of lines(7)) e.push(l, entry);
    expect(calls.length).toBe(1); // the first full batch; the second waits for it
    expect(calls[0]!.body).toBe(lines(3).join(""));
    release!();
    await Bun.sleep(5);
    expect(calls.length).toBe(2);
    expect(calls[1]!.body).toBe(lines(3, 3).join(""));
    await Bun.sleep(60);
    expect(calls.length).toBe(3);
    expect(calls[2]!.body).toBe(lines(1, 6).join(""));
    expect(e.stats()).toMatchObject({ sink: "webhook", queued: 0, written: 7, dropped: 0 });
  });

  test("a batch stays under the byte limit (a single larger line still goes alone)", async () => {
    const { t, calls } = scripted(() => ok);
    const e = engine(t, { batchMaxLines: 100, batchMaxBytes: 25 });
    for (const l of ["a".repeat(10) + "\n", "b".repeat(10) + "\n", "c".repeat(40) + "\n"]) e.push(l, entry);
    await e.close(Date.now() + 1000);
    expect(calls.map((c) => c.body.length)).toEqual([22, 41]);
  });
});

describe("retries", () => {
  test("503, network error, 429: the same batch (same id, same body) until 2xx, back-off doubling", async () => {
    const answers: Array<PostResult | "throw"> = [status(503), "throw", status(429), ok];
    const { t, calls } = scripted((i) => answers[i] ?? ok);
    const e = engine(t);
    for (const l of lines(3)) e.push(l, entry);
    await Bun.sleep(300);
    expect(calls.length).toBe(4);
    expect(new Set(calls.map((c) => c.body)).size).toBe(1);
    expect(new Set(calls.map((c) => c.headers["X-Batch"])).size).toBe(1);
    expect(new Set(calls.map((c) => c.headers["X-Attempt"])).size).toBe(4); // headers rebuilt per attempt
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(18); // 20 ms
    expect(gaps[1]).toBeGreaterThanOrEqual(38); // 40 ms
    expect(gaps[2]).toBeGreaterThanOrEqual(78); // 80 ms
    expect(e.stats()).toMatchObject({ written: 3, retries: 3, dropped: 0 });
    expect(logs.filter((l) => l.includes("delivery failed, retrying")).length).toBe(1); // once a minute
    expect(logs.find((l) => l.includes("delivery failed"))).toContain(
      'level=WARN msg="audit export: delivery failed, retrying" sink=webhook url=https://recv.test:8443 err="status 503" attempt=1',
    );
    expect(
      logs.some((l) => l.includes('msg="audit export: delivering again"') && l.includes("failed_attempts=3")),
    ).toBe(true);
  });

  test("Retry-After is honoured (clamped to the back-off bounds)", async () => {
    const { t, calls } = scripted((i) => (i === 0 ? status(429, 120) : ok));
    const e = engine(t);
    for (const l of lines(3)) e.push(l, entry);
    await Bun.sleep(200);
    expect(calls.length).toBe(2);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(115);
  });

  test("a hang past the timeout is aborted and retried", async () => {
    const { t, calls } = scripted((i) => (i === 0 ? "hang" : ok));
    const e = engine(t, { timeoutMs: 50 });
    for (const l of lines(3)) e.push(l, entry);
    await Bun.sleep(150);
    expect(calls.length).toBe(2);
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(logs.find((l) => l.includes("delivery failed"))).toContain('err="no answer within 50ms"');
    expect(e.stats().written).toBe(3);
  });

  test("400 and 3xx are permanent: the batch is dropped and counted, ERROR once a minute, the next goes on", async () => {
    const answers = [status(400), status(302), ok];
    const { t, calls } = scripted((i) => answers[i] ?? ok);
    const e = engine(t);
    for (const l of lines(9)) e.push(l, entry);
    await Bun.sleep(50);
    expect(calls.length).toBe(3);
    expect(e.stats()).toMatchObject({ written: 3, rejected: 6, dropped: 6, retries: 0 });
    const errs = logs.filter((l) => l.includes("refused a batch"));
    expect(errs.length).toBe(1);
    expect(errs[0]).toContain(
      'level=ERROR msg="audit export: receiver refused a batch, dropped" sink=webhook url=https://recv.test:8443 status=400 lines=3 rejected_total=3',
    );
  });
});

describe("bounded queue", () => {
  test("a hanging receiver: the oldest lines are dropped and counted, memory stays bounded", async () => {
    const { t, calls } = scripted(() => "hang");
    const e = engine(t, { queueMaxLines: 5, timeoutMs: 60_000 });
    for (const l of lines(20)) e.push(l, entry);
    expect(calls.length).toBe(1); // 3 in flight
    expect(e.stats()).toMatchObject({ queued: 3 + 5, droppedQueueFull: 12, dropped: 12 });
    const warns = logs.filter((l) => l.includes("queue full"));
    expect(warns.length).toBe(1);
    expect(warns[0]).toContain("dropped_total=1 queue_max_lines=5");
    await e.close(Date.now());
  });

  test("what is dropped is the oldest: the newest lines are delivered", async () => {
    let release: (() => void) | null = null;
    const { t, calls } = scripted((i) => (i === 0 ? new Promise((r) => (release = () => r(ok))) : ok));
    const e = engine(t, { queueMaxLines: 4, batchMaxLines: 2 });
    for (const l of lines(10)) e.push(l, entry);
    release!();
    await e.close(Date.now() + 1000);
    const got = calls.flatMap((c) => c.body.trim().split("\n")).map((l) => JSON.parse(l).n);
    expect(got).toEqual([0, 1, 6, 7, 8, 9]);
  });
});

describe("shutdown", () => {
  test("close sends what is queued at once (no flush_interval wait)", async () => {
    const { t, calls } = scripted(() => ok);
    const e = engine(t, { flushIntervalMs: 60_000 });
    for (const l of lines(2)) e.push(l, entry);
    const t0 = Date.now();
    await e.close(Date.now() + 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(calls.length).toBe(1);
    expect(e.stats()).toMatchObject({ written: 2, queued: 0 });
  });

  test("a receiver that never answers: close gives up at deadline + grace with a WARN", async () => {
    const { t, calls } = scripted(() => "hang");
    const e = engine(t, { timeoutMs: 60_000, closeGraceMs: 50 });
    for (const l of lines(5)) e.push(l, entry);
    const t0 = Date.now();
    await e.close(Date.now() + 50);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(logs.find((l) => l.includes("shutdown deadline"))).toContain(
      'msg="audit export: shutdown deadline reached, lines not delivered" sink=webhook url=https://recv.test:8443 not_delivered=5 delivered_total=0 dropped_queue_full=0 rejected=0',
    );
    e.push(lines(1)[0]!, entry); // after giving up: ignored, no request
    expect(calls.length).toBe(1);
  });

  test("nothing queued: close resolves at once", async () => {
    const { t } = scripted(() => ok);
    const t0 = Date.now();
    await engine(t).close(Date.now() + 5000);
    expect(Date.now() - t0).toBeLessThan(100);
  });
});

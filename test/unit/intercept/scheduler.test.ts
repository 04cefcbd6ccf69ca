// src/intercept/scheduler.ts: admission into fetch — per-origin and total caps, FIFO within an
// origin, round-robin across origins, abort while waiting, idempotent release (issue 13 item 4).
import { describe, expect, test } from "bun:test";
import { Scheduler } from "../../../src/intercept/scheduler.ts";

const never = () => new AbortController().signal;
/** Let granted promises run their continuations. */
const tick = () => new Promise((r) => setTimeout(r, 0));

/** acquire() with a log of grants. */
function waiter(s: Scheduler, origin: string, log: string[], name = origin, signal = never()) {
  let release: (() => void) | null = null;
  let error: unknown = null;
  const p = s.acquire(origin, signal).then(
    (r) => {
      release = r;
      log.push(name);
    },
    (e) => {
      error = e;
    },
  );
  return {
    p,
    get granted() {
      return release !== null;
    },
    get error() {
      return error;
    },
    release: () => release!(),
  };
}

describe("caps", () => {
  test("per origin: the third request to one origin waits while another origin still goes", async () => {
    const s = new Scheduler(10, 2);
    const log: string[] = [];
    const a1 = waiter(s, "https://a:443", log, "a1");
    const a2 = waiter(s, "https://a:443", log, "a2");
    const a3 = waiter(s, "https://a:443", log, "a3");
    const b1 = waiter(s, "https://b:443", log, "b1");
    await tick();
    expect(log).toEqual(["a1", "a2", "b1"]);
    expect(a3.granted).toBe(false);
    expect(s.stats()).toEqual({ inFlight: 3, waiting: 1 });
    a1.release();
    await tick();
    expect(log).toEqual(["a1", "a2", "b1", "a3"]);
    expect(s.stats()).toEqual({ inFlight: 3, waiting: 0 });
    for (const w of [a2, a3, b1]) w.release();
    expect(s.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("total: every origin waits once the total is reached", async () => {
    const s = new Scheduler(2, 10);
    const log: string[] = [];
    const a = waiter(s, "a", log);
    waiter(s, "b", log);
    const c = waiter(s, "c", log);
    const d = waiter(s, "a", log, "a2");
    await tick();
    expect(log).toEqual(["a", "b"]);
    expect(s.stats()).toEqual({ inFlight: 2, waiting: 2 });
    a.release();
    await tick();
    expect(log).toEqual(["a", "b", "c"]);
    expect(c.granted && !d.granted).toBe(true);
  });

  test("a held-up origin delays only itself", async () => {
    const s = new Scheduler(4, 2);
    const log: string[] = [];
    for (let i = 0; i < 5; i++) waiter(s, "slow", log, `slow${i}`);
    const fast = waiter(s, "fast", log, "fast");
    await tick();
    expect(fast.granted).toBe(true);
    expect(log).toEqual(["slow0", "slow1", "fast"]);
  });
});

describe("order", () => {
  test("FIFO within an origin", async () => {
    const s = new Scheduler(1, 1);
    const log: string[] = [];
    const first = waiter(s, "a", log, "first");
    const ws = [1, 2, 3, 4].map((i) => waiter(s, "a", log, `a${i}`));
    await tick();
    first.release();
    for (const w of ws) {
      await tick();
      w.release();
    }
    await tick();
    expect(log).toEqual(["first", "a1", "a2", "a3", "a4"]);
  });

  test("round-robin across origins: an origin that got a slot goes to the back", async () => {
    const s = new Scheduler(1, 1);
    const log: string[] = [];
    const hold = waiter(s, "x", log, "hold");
    const ws = [
      waiter(s, "a", log, "a1"),
      waiter(s, "a", log, "a2"),
      waiter(s, "a", log, "a3"),
      waiter(s, "b", log, "b1"),
      waiter(s, "b", log, "b2"),
      waiter(s, "c", log, "c1"),
    ];
    await tick();
    hold.release();
    for (let i = 0; i < ws.length; i++) {
      await tick();
      const granted = ws.find((w) => w.granted && !(w as { done?: boolean }).done);
      expect(granted).toBeDefined();
      (granted as { done?: boolean }).done = true;
      granted!.release();
    }
    await tick();
    expect(log).toEqual(["hold", "a1", "b1", "c1", "a2", "b2", "a3"]);
  });
});

describe("abort and release", () => {
  test("abort while waiting: rejected with the signal's reason, removed from the queue, never granted", async () => {
    const s = new Scheduler(1, 1);
    const log: string[] = [];
    const hold = waiter(s, "a", log, "hold");
    const ac = new AbortController();
    const gone = waiter(s, "a", log, "gone", ac.signal);
    const next = waiter(s, "a", log, "next");
    await tick();
    expect(s.stats().waiting).toBe(2);
    ac.abort(new Error("client went away"));
    await tick();
    expect((gone.error as Error).message).toBe("client went away");
    expect(s.stats()).toEqual({ inFlight: 1, waiting: 1 });
    hold.release();
    await tick();
    expect(log).toEqual(["hold", "next"]);
    expect(gone.granted).toBe(false);
    next.release();
    expect(s.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("the last waiter of an origin aborting leaves no empty queue behind", async () => {
    const s = new Scheduler(1, 1);
    const log: string[] = [];
    const hold = waiter(s, "a", log, "hold");
    const ac = new AbortController();
    waiter(s, "b", log, "b", ac.signal);
    await tick();
    ac.abort();
    await tick();
    const c = waiter(s, "c", log, "c");
    hold.release();
    await tick();
    expect(c.granted).toBe(true);
    expect(s.stats()).toEqual({ inFlight: 1, waiting: 0 });
  });

  test("an already aborted signal is rejected at once, without taking a slot", async () => {
    const s = new Scheduler(5, 5);
    const ac = new AbortController();
    ac.abort(new Error("already"));
    await expect(s.acquire("a", ac.signal)).rejects.toThrow("already");
    expect(s.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("an abort after the grant changes nothing", async () => {
    const s = new Scheduler(1, 1);
    const ac = new AbortController();
    const release = await s.acquire("a", ac.signal);
    ac.abort();
    expect(s.stats()).toEqual({ inFlight: 1, waiting: 0 });
    release();
    expect(s.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("release is idempotent: a second call frees nothing more", async () => {
    const s = new Scheduler(1, 1);
    const release = await s.acquire("a", never());
    release();
    release();
    expect(s.stats()).toEqual({ inFlight: 0, waiting: 0 });
    const log: string[] = [];
    waiter(s, "a", log, "one");
    const two = waiter(s, "b", log, "two");
    await tick();
    expect(log).toEqual(["one"]);
    expect(two.granted).toBe(false);
    release(); // a stale release must not hand out a slot either
    await tick();
    expect(two.granted).toBe(false);
  });
});

describe("tryAcquire (the no-wait path)", () => {
  test("a slot when acquire would grant one at once; null when it would wait; queued waiters keep their turn", async () => {
    const s = new Scheduler(3, 2);
    const a = s.tryAcquire("a")!;
    const b = s.tryAcquire("a")!;
    expect(typeof a).toBe("function");
    expect(s.tryAcquire("a")).toBeNull(); // per-origin cap
    const c = s.tryAcquire("b")!;
    expect(s.tryAcquire("c")).toBeNull(); // total cap
    const waiting = s.acquire("a", new AbortController().signal);
    expect(s.stats()).toEqual({ inFlight: 3, waiting: 1 });
    a(); // the freed slot goes to the waiter, not to a later tryAcquire
    expect(s.tryAcquire("a")).toBeNull();
    const d = await waiting;
    expect(s.stats()).toEqual({ inFlight: 3, waiting: 0 });
    for (const r of [b, c, d]) r();
    expect(s.stats()).toEqual({ inFlight: 0, waiting: 0 });
  });
});

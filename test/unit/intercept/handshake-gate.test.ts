// src/intercept/handshake-gate.ts: client TLS handshakes take slots first come, first served; a slot
// comes back when its handshake is over (the release, any number of calls) or after holdMs at most.
import { describe, expect, test } from "bun:test";
import { HandshakeGate, type Release } from "../../../src/intercept/handshake-gate.ts";

/** Acquire and record the order in which the slots were granted. */
function take(gate: HandshakeGate, order: string[], name: string): Promise<Release> {
  return gate.acquire().then((release) => {
    order.push(name);
    return release;
  });
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("HandshakeGate", () => {
  test("at most `slots` at once; the others are served in the order they came", async () => {
    const gate = new HandshakeGate(2, 60_000);
    const order: string[] = [];
    const a = take(gate, order, "a");
    const b = take(gate, order, "b");
    const rest = ["c", "d", "e"].map((n) => take(gate, order, n));
    await tick();
    expect(order).toEqual(["a", "b"]);
    expect(gate.counts).toEqual({ inFlight: 2, waiting: 3 });
    (await b)();
    await tick();
    expect(order).toEqual(["a", "b", "c"]);
    (await a)();
    await tick();
    expect(order).toEqual(["a", "b", "c", "d"]);
    expect(gate.counts).toEqual({ inFlight: 2, waiting: 1 });
    const [c, d, e] = rest as [Promise<Release>, Promise<Release>, Promise<Release>];
    (await c)();
    await tick();
    expect(order).toEqual(["a", "b", "c", "d", "e"]);
    (await d)();
    (await e)();
    expect(gate.counts).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("a second release of the same slot frees nothing more", async () => {
    const gate = new HandshakeGate(1, 60_000);
    const order: string[] = [];
    const a = await take(gate, order, "a");
    const b = take(gate, order, "b");
    const c = take(gate, order, "c");
    a();
    a();
    a();
    await tick();
    expect(order).toEqual(["a", "b"]);
    expect(gate.counts).toEqual({ inFlight: 1, waiting: 1 });
    (await b)();
    (await c)();
    expect(gate.counts).toEqual({ inFlight: 0, waiting: 0 });
  });

  test("a handshake that never ends gives its slot back after holdMs, and its late release is a no-op", async () => {
    const gate = new HandshakeGate(1, 40);
    const order: string[] = [];
    const stalled = await take(gate, order, "stalled");
    const t0 = performance.now();
    const next = take(gate, order, "next");
    const after = take(gate, order, "after");
    const release = await next;
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(35);
    expect(waited).toBeLessThan(1000);
    expect(order).toEqual(["stalled", "next"]);
    stalled(); // long after its hold ran out: must not let "after" in beside "next"
    await tick();
    expect(order).toEqual(["stalled", "next"]);
    release();
    (await after)();
    expect(gate.counts).toEqual({ inFlight: 0, waiting: 0 });
  });
});

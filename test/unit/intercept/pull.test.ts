// src/intercept/pull.ts: the pull-based reader every data-path stream uses. Its read deadlines share
// one lazily armed timer per queue (not one per read); each read must still time out at its own
// deadline, never at an earlier read's, and never after its input arrived.
import { describe, expect, test } from "bun:test";
import { PullQueue, TimeoutError } from "../../../src/intercept/pull.ts";

const queue = () => new PullQueue({ pause() {}, resume() {} }, 1 << 20);
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

/** How long `read` took to settle, and how. */
async function timed(p: Promise<Uint8Array | null>): Promise<{ ms: number; out: string | null | "timeout" }> {
  const t0 = performance.now();
  try {
    const out = text(await p);
    return { ms: performance.now() - t0, out };
  } catch (e) {
    expect(e).toBeInstanceOf(TimeoutError);
    return { ms: performance.now() - t0, out: "timeout" };
  }
}

describe("PullQueue read deadlines", () => {
  test("a read without input times out at its deadline", async () => {
    const r = await timed(queue().read(60));
    expect(r.out).toBe("timeout");
    expect(r.ms).toBeGreaterThanOrEqual(59);
    expect(r.ms).toBeLessThan(400);
  });

  test("input before the deadline: the chunk, and no late rejection of a later read", async () => {
    const q = queue();
    setTimeout(() => q.push(bytes("a")), 20);
    expect(await timed(q.read(80))).toMatchObject({ out: "a" });
    // the timer armed for the first read fires while the second waits with a later deadline: it
    // must re-arm for the second read's own deadline, not reject it
    const second = timed(q.read(200));
    const r = await second;
    expect(r.out).toBe("timeout");
    expect(r.ms).toBeGreaterThanOrEqual(199);
  });

  test("a shorter deadline after a longer one is kept (the armed timer is moved earlier)", async () => {
    const q = queue();
    setTimeout(() => q.push(bytes("x")), 10);
    expect((await timed(q.read(5_000))).out).toBe("x"); // arms a timer 5 s out
    const r = await timed(q.read(50));
    expect(r.out).toBe("timeout");
    expect(r.ms).toBeGreaterThanOrEqual(49);
    expect(r.ms).toBeLessThan(1_000);
  });

  test("many keep-alive style reads in a row: each answered, then the last one times out on time", async () => {
    const q = queue();
    for (let i = 0; i < 200; i++) {
      setTimeout(() => q.push(bytes(String(i))), 0);
      expect((await timed(q.read(100))).out).toBe(String(i));
    }
    const r = await timed(q.read(100));
    expect(r.out).toBe("timeout");
    expect(r.ms).toBeGreaterThanOrEqual(99);
    expect(r.ms).toBeLessThan(600);
  });

  test("a read without a deadline is not rejected by the timer of an earlier one", async () => {
    const q = queue();
    setTimeout(() => q.push(bytes("1")), 5);
    await q.read(30); // arms the timer for ~30 ms
    const p = q.read();
    setTimeout(() => q.push(bytes("2")), 120);
    expect(await timed(p)).toMatchObject({ out: "2" });
  });

  test("end while waiting: null, not a timeout", async () => {
    const q = queue();
    setTimeout(() => q.end(), 20);
    expect(await timed(q.read(100))).toMatchObject({ out: null });
    expect(await q.read(100)).toBeNull();
  });
});

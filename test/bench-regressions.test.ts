// Regressions the benchmark found, pinned without timing: what held memory per request.
import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { Conn, type ConnData } from "../src/intercept/conn.ts";

function fakeSocket(): Socket<ConnData> {
  return {
    write: (b: Uint8Array) => b.byteLength,
    end() {},
    terminate() {},
    pause() {},
    resume() {},
  } as unknown as Socket<ConnData>;
}

describe("Conn close listeners (per-request abort wiring)", () => {
  test("a removed listener is not called and not kept: 10 000 requests on one keep-alive connection leave none behind", () => {
    const conn = new Conn(fakeSocket(), "127.0.0.1", 1);
    let called = 0;
    for (let i = 0; i < 10_000; i++) {
      const off = conn.onceClosed(() => called++);
      off();
    }
    expect((conn as unknown as { closeListeners: unknown[] }).closeListeners.length).toBe(0);
    conn.onClose();
    expect(called).toBe(0);
  });

  test("a listener still registered fires once at close; one added after close fires at once", () => {
    const conn = new Conn(fakeSocket(), "127.0.0.1", 1);
    let a = 0;
    let b = 0;
    const offA = conn.onceClosed(() => a++);
    conn.onClose();
    conn.onClose();
    expect(a).toBe(1);
    offA(); // removing after it fired is harmless
    conn.onceClosed(() => b++);
    expect(b).toBe(1);
  });
});

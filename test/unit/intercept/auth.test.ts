// src/intercept/auth.ts: Proxy-Authorization outcomes (docs/CONTRACT.md §7), the global token
// bucket that paces answers to wrong credentials, and the WARN aggregation of auth failures.
import { afterEach, describe, expect, test } from "bun:test";
import { AuthFailures, checkProxyAuth, tokenDigest } from "../../../src/intercept/auth.ts";
import { AUTH_FAILURE_BURST, AUTH_FAILURE_MAX_WAITING, AUTH_WARN_INTERVAL_MS } from "../../../src/intercept/limits.ts";
import { setLogSink } from "../../../src/log/slog.ts";

const TOKEN = "s3cret-token";
const DIGEST = tokenDigest(TOKEN);
const basic = (userPass: string, enc: BufferEncoding = "utf8") =>
  `Basic ${Buffer.from(userPass, enc).toString("base64")}`;

describe("checkProxyAuth", () => {
  const rows: Array<[string, string | undefined, "ok" | "missing" | "wrong"]> = [
    ["no header", undefined, "missing"],
    ["user:token", basic(`user:${TOKEN}`), "ok"],
    ["empty user", basic(`:${TOKEN}`), "ok"],
    ["any user (the user part is ignored)", basic(`whoever@example:${TOKEN}`), "ok"],
    ["an empty header", "", "wrong"],
    ["token as the user name, no colon", basic(TOKEN), "wrong"],
    ["token as the user name, empty password", basic(`${TOKEN}:`), "wrong"],
    ["lower-case basic", `basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}`, "wrong"],
    ["BASIC", `BASIC ${Buffer.from(`u:${TOKEN}`).toString("base64")}`, "wrong"],
    ["Bearer with the token", `Bearer ${TOKEN}`, "wrong"],
    ["two spaces after Basic", `Basic  ${Buffer.from(`u:${TOKEN}`).toString("base64")}`, "wrong"],
    ["a trailing space", `${basic(`u:${TOKEN}`)} `, "wrong"],
    ["Basic alone", "Basic ", "wrong"],
    ["not base64", "Basic !!!!", "wrong"],
    ["base64url alphabet", `Basic ${Buffer.from(`u:${TOKEN}??>`).toString("base64url")}`, "wrong"],
    ["missing padding", basic(`u:${TOKEN}x`).replace(/=+$/, ""), "wrong"],
    ["padding in the middle", `Basic dQ==${Buffer.from(`:${TOKEN}`).toString("base64")}`, "wrong"],
    ["a prefix of the token", basic(`u:${TOKEN.slice(0, -1)}`), "wrong"],
    ["the token and more", basic(`u:${TOKEN}x`), "wrong"],
    ["the token with a different case", basic(`u:${TOKEN.toUpperCase()}`), "wrong"],
    ["a NUL after the token", basic(`u:${TOKEN}\x00`), "wrong"],
  ];
  for (const [name, value, want] of rows) {
    test(`${name} → ${want}`, () => {
      expect(checkProxyAuth(value, DIGEST)).toBe(want);
    });
  }

  test("the password is everything after the FIRST colon (a token may contain colons)", () => {
    const d = tokenDigest("a:b");
    expect(checkProxyAuth(basic("u:a:b"), d)).toBe("ok");
    expect(checkProxyAuth(basic("u:a:b:"), d)).toBe("wrong");
    expect(checkProxyAuth(basic("a:b"), d)).toBe("wrong");
  });

  test("tokenDigest is SHA-256 (the comparison is constant-time over digests)", () => {
    expect(DIGEST.toString("hex")).toBe(new Bun.CryptoHasher("sha256").update(TOKEN).digest("hex"));
  });

  // Found here and fixed (src/intercept/auth.ts checkProxyAuth): the decoded credentials are read as latin1
  // and then hashed as UTF-8, so a non-ASCII CLEF_PROXY_TOKEN never matches what clients send (the
  // UTF-8 bytes of "user:token", as curl does in a UTF-8 locale); only a client sending latin1 bytes
  // is accepted. docs/CONTRACT.md §7: the password must equal the token exactly (Go compares bytes).
  test("a non-ASCII token sent as UTF-8 → ok", () => {
    const t = "pässwörd-€";
    expect(checkProxyAuth(basic(`u:${t}`, "utf8"), tokenDigest(t))).toBe("ok");
  });
});

describe("AuthFailures: the token bucket", () => {
  const realNow = Date.now;
  afterEach(() => {
    Date.now = realNow;
  });
  /** Run the microtasks queued so far (a turn with a token available needs no timer). */
  const flush = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };

  test(`a burst of ${AUTH_FAILURE_BURST} is answered at once; the next waits for a refill`, async () => {
    const f = new AuthFailures();
    const done: boolean[] = [];
    const turns = Array.from({ length: AUTH_FAILURE_BURST + 1 }, (_, i) =>
      f.turn().then((r) => {
        done[i] = r;
      }),
    );
    await flush();
    expect(done.slice(0, AUTH_FAILURE_BURST)).toEqual(Array(AUTH_FAILURE_BURST).fill(true));
    expect(done[AUTH_FAILURE_BURST]).toBeUndefined(); // still waiting for a token
    await Promise.all(turns); // one refill period (100 ms at 10/s)
    expect(done[AUTH_FAILURE_BURST]).toBe(true);
    expect(f.total).toBe(AUTH_FAILURE_BURST + 1);
  });

  test(`at most ${AUTH_FAILURE_MAX_WAITING} wait; beyond that the answer is "close" (false), counted`, async () => {
    // a frozen clock: the burst empties the bucket and nobody gets a token while the queue fills
    let t = realNow();
    Date.now = () => t;
    const f = new AuthFailures();
    for (let i = 0; i < AUTH_FAILURE_BURST; i++) expect(await f.turn()).toBe(true);
    const waiting = Array.from({ length: AUTH_FAILURE_MAX_WAITING }, () => f.turn());
    expect(await f.turn()).toBe(false);
    expect(f.total).toBe(AUTH_FAILURE_BURST + AUTH_FAILURE_MAX_WAITING + 1);
    // then a clock that moves 10 s at each reading: every waiter finds a full bucket when it wakes
    Date.now = () => (t += 10_000);
    expect(await Promise.all(waiting)).toEqual(Array(AUTH_FAILURE_MAX_WAITING).fill(true));
    // the queue is empty again: a turn is accepted
    expect(await f.turn()).toBe(true);
  });
});

describe("AuthFailures: WARN lines", () => {
  const lines: string[] = [];
  const timers: Array<() => void> = [];
  const realSetTimeout = globalThis.setTimeout;
  let prevSink: ((l: string) => void) | null = null;
  const start = () => {
    lines.length = 0;
    timers.length = 0;
    prevSink = setLogSink((l) => lines.push(l.replace(/^time=\S+ /, "").trimEnd()));
    globalThis.setTimeout = ((fn: () => void, ms: number) => {
      expect(ms).toBe(AUTH_WARN_INTERVAL_MS);
      timers.push(fn);
      return { unref() {} };
    }) as unknown as typeof setTimeout;
  };
  afterEach(() => {
    globalThis.setTimeout = realSetTimeout;
    if (prevSink) setLogSink(prevSink);
    prevSink = null;
  });
  const fire = () => timers.shift()!();
  const attrs = (n: number): Array<[string, string]> => [
    ["remote", `127.0.0.1:${40000 + n}`],
    ["host", "api.test:443"],
    ["method", "CONNECT"],
  ];

  test("the first failure of a quiet period is logged in full, the rest summed per interval", () => {
    start();
    const f = new AuthFailures();
    f.log(attrs(1));
    expect(lines).toEqual([
      'level=WARN msg="workload auth failed" remote=127.0.0.1:40001 host=api.test:443 method=CONNECT',
    ]);
    f.log(attrs(2));
    f.log(attrs(3));
    expect(lines.length).toBe(1);
    expect(timers.length).toBe(1);
    fire();
    expect(lines[1]).toBe('level=WARN msg="workload auth failures" count=2 interval=10s');
    // a new interval opened: failures in it are summed too
    f.log(attrs(4));
    expect(lines.length).toBe(2);
    fire();
    expect(lines[2]).toBe('level=WARN msg="workload auth failures" count=1 interval=10s');
    // an interval without failures closes the window, silently
    fire();
    expect(lines.length).toBe(3);
    expect(timers.length).toBe(0);
    // the next failure is again logged in full
    f.log(attrs(5));
    expect(lines[3]).toBe(
      'level=WARN msg="workload auth failed" remote=127.0.0.1:40005 host=api.test:443 method=CONNECT',
    );
  });

  test("a burst of 10,000 failures gives two lines, not 10,000", () => {
    start();
    const f = new AuthFailures();
    for (let i = 0; i < 10_000; i++) f.log(attrs(i % 100));
    fire();
    fire();
    expect(lines).toEqual([
      'level=WARN msg="workload auth failed" remote=127.0.0.1:40000 host=api.test:443 method=CONNECT',
      'level=WARN msg="workload auth failures" count=9999 interval=10s',
    ]);
  });
});

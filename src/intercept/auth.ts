// Workload authentication on the listener (docs/CONTRACT.md §7, §20): Proxy-Authorization: Basic
// base64(user:CLEF_PROXY_TOKEN), constant-time on the password, and what happens to failures.
//
// A request WITHOUT credentials is the normal first step of curl, git and most clients: 407 at once,
// no log line. WRONG credentials are guessing: their 407s come out of one global token bucket
// (AUTH_FAILURE_BURST, then AUTH_FAILURE_RATE per second; past AUTH_FAILURE_MAX_WAITING waiting
// connections the connection is closed), so 19,000 guesses a second become 10, and their WARN lines
// are summed: the first failure of a quiet period is logged as the reference logs it, the rest of
// each AUTH_WARN_INTERVAL_MS as one `workload auth failures` line with a count.
import { createHash, timingSafeEqual } from "node:crypto";
import { warn } from "../log/slog.ts";
import { AUTH_FAILURE_BURST, AUTH_FAILURE_MAX_WAITING, AUTH_FAILURE_RATE, AUTH_WARN_INTERVAL_MS } from "./limits.ts";

export type AuthOutcome = "ok" | "missing" | "wrong";

/** SHA-256 of the token (a string as UTF-8), what a Proxy-Authorization password is compared by. */
export function tokenDigest(token: string | Uint8Array): Buffer {
  return createHash("sha256").update(token).digest();
}

/** Check a Proxy-Authorization value against the token's digest. */
export function checkProxyAuth(value: string | undefined, digest: Buffer): AuthOutcome {
  if (value === undefined) return "missing";
  if (!value.startsWith("Basic ")) return "wrong";
  const b64 = value.slice(6);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return "wrong";
  // Compared as bytes: the token's UTF-8 bytes against everything after the first ":" (a client in
  // a UTF-8 locale sends a non-ASCII token as UTF-8).
  const decoded = Buffer.from(b64, "base64");
  const i = decoded.indexOf(0x3a);
  if (i < 0) return "wrong";
  return timingSafeEqual(tokenDigest(decoded.subarray(i + 1)), digest) ? "ok" : "wrong";
}

export class AuthFailures {
  private tokens = AUTH_FAILURE_BURST;
  private lastRefill = Date.now();
  private waiting = 0;
  private windowOpen = false;
  private suppressed = 0;
  /** Wrong-credential attempts since start (metrics). */
  total = 0;

  /** Wait for this failure's turn to be answered; false when too many wait (close instead). */
  async turn(): Promise<boolean> {
    this.total++;
    if (this.waiting >= AUTH_FAILURE_MAX_WAITING) return false;
    this.waiting++;
    try {
      for (;;) {
        this.refill();
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return true;
        }
        await Bun.sleep(Math.ceil(1000 / AUTH_FAILURE_RATE));
      }
    } finally {
      this.waiting--;
    }
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(AUTH_FAILURE_BURST, this.tokens + ((now - this.lastRefill) / 1000) * AUTH_FAILURE_RATE);
    this.lastRefill = now;
  }

  /** Log one failure: in full when the log is quiet, else counted into the interval's summary. */
  log(attrs: Array<[string, string]>): void {
    if (this.windowOpen) {
      this.suppressed++;
      return;
    }
    warn("workload auth failed", attrs);
    this.openWindow();
  }

  private openWindow(): void {
    this.windowOpen = true;
    const t = setTimeout(() => {
      const n = this.suppressed;
      this.suppressed = 0;
      if (n === 0) {
        this.windowOpen = false;
        return;
      }
      warn("workload auth failures", [
        ["count", String(n)],
        ["interval", `${AUTH_WARN_INTERVAL_MS / 1000}s`],
      ]);
      this.openWindow();
    }, AUTH_WARN_INTERVAL_MS);
    t.unref?.();
  }
}

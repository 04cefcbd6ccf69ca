// Admission of upstream requests into fetch (issue 13 item 4). Bun's fetch runs at most 256
// requests at once per process (BUN_CONFIG_MAX_HTTP_REQUESTS, read only at process start) and queues
// the rest behind them: 256 requests held by silent upstreams or slow readers froze forwarding to
// every host. Here each origin gets at most `perOrigin` slots and all origins together `total`
// (below fetch's cap, which also leaves room for the agent calls); a request beyond either waits
// (FIFO per origin, origins served round-robin) until a slot frees, its client goes away, or its
// first-byte deadline passes. A held-up origin therefore delays only itself.

export class Scheduler {
  private inFlight = 0;
  private readonly perOriginCount = new Map<string, number>();
  private readonly waiting = new Map<string, Array<{ grant: () => void }>>();

  constructor(
    private readonly total: number,
    private readonly perOrigin: number,
  ) {}

  /** Requests in fetch now, and waiting for a slot (metrics, tests). */
  stats(): { inFlight: number; waiting: number } {
    let w = 0;
    for (const q of this.waiting.values()) w += q.length;
    return { inFlight: this.inFlight, waiting: w };
  }

  /** A slot for `origin` now (its release function), or null when the caller has to wait (acquire). */
  tryAcquire(origin: string): (() => void) | null {
    return this.canRun(origin) ? this.take(origin) : null;
  }

  /** Wait for a slot for `origin`; resolves with its release function. Rejects when `signal` aborts. */
  acquire(origin: string, signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.canRun(origin)) return Promise.resolve(this.take(origin));
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(this.take(origin));
        },
      };
      const onAbort = () => {
        const q = this.waiting.get(origin);
        const i = q?.indexOf(entry) ?? -1;
        if (q && i >= 0) q.splice(i, 1);
        if (q?.length === 0) this.waiting.delete(origin);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const q = this.waiting.get(origin);
      if (q) q.push(entry);
      else this.waiting.set(origin, [entry]);
    });
  }

  private canRun(origin: string): boolean {
    return this.inFlight < this.total && (this.perOriginCount.get(origin) ?? 0) < this.perOrigin;
  }

  private take(origin: string): () => void {
    this.inFlight++;
    this.perOriginCount.set(origin, (this.perOriginCount.get(origin) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      const n = (this.perOriginCount.get(origin) ?? 1) - 1;
      if (n === 0) this.perOriginCount.delete(origin);
      else this.perOriginCount.set(origin, n);
      this.grantNext();
    };
  }

  /** Give freed slots to waiting origins, round-robin (an origin that got one goes to the back). */
  private grantNext(): void {
    for (const [origin, q] of this.waiting) {
      if (this.inFlight >= this.total) return;
      if (!this.canRun(origin)) continue;
      const next = q.shift();
      this.waiting.delete(origin);
      if (q.length > 0) this.waiting.set(origin, q); // re-insert at the end: round-robin
      next?.grant();
    }
  }
}

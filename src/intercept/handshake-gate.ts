// First come, first served for the client-side TLS handshakes of tunnels (docs/PERFORMANCE.md,
// ninth pass). The runtime's socket layer lets at most 5 sockets still in their TLS handshake read
// per event-loop turn and parks the rest in a last-in-first-out queue, so that under a burst of new
// tunnels the handshakes parked first wait until the burst is over: at 64 new connections at a time
// a few per cent of them waited 100–380 ms for their own Finished to be read while newer ones went
// ahead (the c=64 new-connection p99). Letting only a few more handshakes than that budget be under
// way at once keeps the parked queue shallow and the order of arrival the order of service.
//
// A slot is held from the moment the handshake starts (our ServerHello goes out) until it completes
// or fails, and never longer than `holdMs`: a client that stalls mid-handshake — or many of them —
// delays the tunnels queued behind it by that much at most, not by the handshake timeout.

export type Release = () => void;

export class HandshakeGate {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly slots: number,
    private readonly holdMs: number,
  ) {}

  /** Handshakes under way (holding a slot) and waiting for one. */
  get counts(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight, waiting: this.waiting.length };
  }

  /** Resolves, in the order of the calls, once a slot is free; the release may be called any number of times. */
  async acquire(): Promise<Release> {
    if (this.inFlight < this.slots) this.inFlight++;
    else await new Promise<void>((r) => this.waiting.push(r)); // the slot is handed over, the count unchanged
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    };
    const timer = setTimeout(release, this.holdMs);
    return release;
  }
}

// Bounded resource tests for issue 13 (R3, R4, R5, R6): thousands of hostile connections, stalled
// upstreams, the drain deadline and the audit queue bound. Each runs against its own proxy on the
// shared peers of world.ts, with a high open-file limit (this process raises its own; the proxy
// inherits it). Every loop is bounded in count and time.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { OUR_BIN } from "../helpers/bin.ts";
import { curl, parseCurl } from "../helpers/clients.ts";
import { freePort, tempDir } from "../helpers/proxy.ts";
import {
  basicAuth,
  clientHelloBytes,
  exchange,
  type ExchangeOptions,
  hasResponses,
  header,
  JUNK_KINDS,
  junkHandshake,
  parseResponses,
  stalledHandshake,
} from "./wire.ts";
import { rssMiB, startWorld, stopProxy, TOKEN, waitFor, type World } from "./world.ts";

let w: World;

beforeAll(async () => {
  w = await startWorld({ nofile: 65536, startProxy: false });
});

afterAll(async () => {
  await w?.stop();
});

/** Run `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/**
 * `n` exchanges one after another, each timed: their statuses and durations (three non-200 answers
 * in a row end it early — the proxy is stuck, no need to wait out the rest).
 */
async function sequential(
  n: number,
  options: (i: number) => ExchangeOptions,
): Promise<{ statuses: number[]; times: number[] }> {
  const times: number[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const r = await exchange(options(i));
    times.push(Date.now() - t0);
    statuses.push(parseResponses(r.data)[0]?.status ?? 0);
    if (statuses.length >= 3 && statuses.slice(-3).every((st) => st !== 200)) break;
  }
  return { statuses, times };
}

/** Open a raw connection and send `data`; resolves once connected (the socket stays open). */
function openHeld(port: number, data: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1", () => {
      if (data) s.write(data);
      resolve(s);
    });
    s.on("error", () => resolve(s));
    s.on("data", () => {});
  });
}

const plainGet = (host: string, path: string) =>
  `GET http://${host}${path} HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: ${basicAuth(TOKEN)}\r\n\r\n`;

// ------------------------------------------------------------------------------------------------
describe("finding 3 (high): junk handshakes do not use up the connection slots (R3)", () => {
  test("4,300 CONNECTs followed by junk (+300 of 3 other kinds): the proxy still serves within 2 s and SIGTERM exits within 2.5 s", async () => {
    const x = await w.extraProxy({ config: { serve: { drain_timeout: "10s" } } });
    try {
      // 4,300 with the record from the issue, then 100 of each other kind
      const kinds = [
        ...Array<(typeof JUNK_KINDS)[number]>(4300).fill("garbage-record"),
        ...JUNK_KINDS.filter((k) => k !== "garbage-record").flatMap((k) => Array(100).fill(k)),
      ];
      await pool(kinds, 48, async (kind, i) => {
        await junkHandshake(x.port, TOKEN, `api.test:${w.tlsPort}`, kind, i + 1);
      });
      await Bun.sleep(500);
      const t0 = Date.now();
      const r = await exchange({
        port: x.port,
        mode: "tls-tunnel",
        token: TOKEN,
        connectTarget: `api.test:${w.tlsPort}`,
        ca: x.proxyCa,
        data: `GET /after-4300-junk HTTP/1.1\r\nHost: api.test:${w.tlsPort}\r\n\r\n`,
        until: hasResponses(1),
        timeoutMs: 5000,
      });
      const servedMs = Date.now() - t0;
      const status = parseResponses(r.data)[0]?.status ?? 0;
      const t1 = Date.now();
      x.proxy.kill("SIGTERM");
      const code = await Promise.race([x.proxy.exited, Bun.sleep(15_000).then(() => -1)]);
      const exitMs = Date.now() - t1;
      expect({
        status,
        servedWithin2s: servedMs < 2000,
        code,
        exitWithin2500ms: exitMs <= 2500,
      }).toEqual({ status: 200, servedWithin2s: true, code: 0, exitWithin2500ms: true });
    } finally {
      await x.stop();
    }
  }, 90_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 4 (medium): stalled upstream requests do not freeze forwarding (R4)", () => {
  test("1,000 requests held by a silent upstream; 20 sequential requests to another upstream each finish in < 2 s", async () => {
    const x = await w.extraProxy();
    const held: Socket[] = [];
    try {
      const passHost = `pass.test:${w.passPlainPort}`;
      const silentBefore = w.pass.requests.filter((q) => q.target.startsWith("/__silent-r4")).length;
      await pool(
        Array.from({ length: 1000 }, (_, i) => i),
        100,
        async (i) => {
          held.push(await openHeld(x.port, plainGet(passHost, `/__silent-r4-${i}`)));
        },
      );
      const silentSeen = () => w.pass.requests.filter((q) => q.target.startsWith("/__silent-r4")).length - silentBefore;
      // One origin gets at most 128 upstream slots (docs/CONTRACT.md §20.4): 128 of the 1,000 reach
      // the silent upstream, the rest wait inside the proxy — and must not hold up other origins.
      await waitFor(() => silentSeen() >= 128, 10_000, 100);
      await Bun.sleep(300);
      const inFlight = silentSeen();
      const apiHost = `api.test:${w.plainPort}`;
      const { statuses, times } = await sequential(20, (i) => ({
        port: x.port,
        mode: "listener",
        data: plainGet(apiHost, `/r4-other-${i}`),
        until: hasResponses(1),
        timeoutMs: 2500,
      }));
      expect(inFlight).toBe(128);
      expect({ statuses, slow: times.filter((t) => t >= 2000).length }).toEqual({
        statuses: Array(20).fill(200),
        slow: 0,
      });
    } finally {
      for (const s of held) s.destroy();
      await x.stop();
    }
  }, 90_000);

  // The reference ends them on its listener but keeps them inside a TLS tunnel until the upstream
  // answers (docs/CONTRACT.md §20.3): the tunnel case is the one that tells the two apart.
  test.each(["listener", "tls-tunnel"] as const)(
    "clients that go away end their upstream requests and free the origin's slots (%s)",
    async (mode) => {
      const x = await w.extraProxy();
      try {
        const port = mode === "listener" ? w.passPlainPort : w.passTlsPort;
        const host = `pass.test:${port}`;
        const tag = `/__silent-gone-${mode}-`;
        const mine = () => w.pass.requests.filter((q) => q.target.startsWith(tag));
        const request = (path: string) =>
          mode === "listener"
            ? { mode, data: plainGet(host, path) }
            : {
                mode,
                token: TOKEN,
                connectTarget: host,
                ca: x.proxyCa,
                data: `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
              };
        // 128 silent requests: every upstream slot of the origin taken (docs/CONTRACT.md §20.4); each
        // client gives up after 2 s and closes its connection
        const gone = Promise.all(
          Array.from({ length: 128 }, (_, i) => exchange({ port: x.port, ...request(`${tag}${i}`), timeoutMs: 2000 })),
        );
        await waitFor(() => mine().length >= 128, 10_000, 50);
        expect(mine().filter((q) => q.conn.closedAt !== undefined).length).toBe(0);
        await gone;
        // each upstream request is aborted: its connection to the upstream closes
        await waitFor(() => mine().every((q) => q.conn.closedAt !== undefined), 5_000, 50);
        expect(mine().filter((q) => q.conn.closedAt === undefined).length).toBe(0);
        // and the slots are free: a request to the same origin is answered at once, not queued
        const t0 = Date.now();
        const r = await exchange({ port: x.port, ...request("/gone-after"), until: hasResponses(1), timeoutMs: 3000 });
        expect(parseResponses(r.data)[0]?.status).toBe(200);
        expect(Date.now() - t0).toBeLessThan(2000);
      } finally {
        await x.stop();
      }
    },
    60_000,
  );
});

// ------------------------------------------------------------------------------------------------
describe("finding 5 (medium): the drain deadline and the audit queue bound (R5)", () => {
  test("40 requests in flight at SIGTERM (drain 1s): 40 audit lines tls_error/502/shutdown, one per id seen upstream; exit 0 within 4 s", async () => {
    const x = await w.extraProxy({ config: { serve: { drain_timeout: "1s" } } });
    const held: Socket[] = [];
    try {
      const passHost = `pass.test:${w.passPlainPort}`;
      const mine = () => w.pass.requests.filter((q) => q.target.startsWith("/__silent-r5-"));
      for (let i = 0; i < 40; i++) held.push(await openHeld(x.port, plainGet(passHost, `/__silent-r5-${i}`)));
      await waitFor(() => mine().length >= 40, 10_000);
      const ids = mine().map((q) => q.requestId);
      expect(ids.length).toBe(40);
      const before = x.audit().length;
      const t0 = Date.now();
      x.proxy.kill("SIGTERM");
      const code = await Promise.race([x.proxy.exited, Bun.sleep(10_000).then(() => -1)]);
      const exitMs = Date.now() - t0;
      await Bun.sleep(200); // the last stdout bytes
      const lines = x.audit().slice(before);
      const byId = new Map<string, number>();
      for (const l of lines) byId.set(String(l.request_id), (byId.get(String(l.request_id)) ?? 0) + 1);
      expect({
        code,
        exitWithin4s: exitMs <= 4000,
        lines: lines.length,
        eachIdOnce: ids.every((id) => byId.get(String(id)) === 1),
        shape: lines.filter((l) => l.status === "tls_error" && l.upstream_status === 502 && l.reason === "shutdown")
          .length,
      }).toEqual({ code: 0, exitWithin4s: true, lines: 40, eachIdOnce: true, shape: 40 });
    } finally {
      for (const s of held) s.destroy();
      await x.stop();
    }
  }, 30_000);

  test("stdout not read: a flood gets 503 audit_backpressure, RSS stays < 300 MiB; once read, every admitted request has exactly one line", async () => {
    const dir = tempDir("clef-fifo-");
    const fifo = join(dir, "stdout.fifo");
    spawnSync("mkfifo", [fifo]);
    const port = await freePort();
    const cfg = join(dir, "config.json");
    writeFileSync(cfg, JSON.stringify({ listen: { port }, metadata: { proxy_id: "sec" } }));
    // stdout is a FIFO the proxy opens read-write itself: writes succeed until the pipe is full,
    // and nobody reads it until the flood is over.
    const x = await w.extraProxy({
      spawn: { bin: "sh", args: ["-c", 'exec "$1" serve --config "$2" 1<>"$0"', fifo, OUR_BIN, cfg] },
    });
    let reader: ReturnType<typeof Bun.spawn> | undefined;
    try {
      const passHost = `pass.test:${w.passPlainPort}`;
      const idsBefore = new Set(w.pass.requests.map((q) => q.requestId));
      let ok = 0;
      let backpressure = 0;
      let other = 0;
      let badBackpressure = "";
      let maxRss = 0;
      const deadline = Date.now() + 75_000;
      const MAX_REQUESTS = 200_000;
      let sent = 0;
      const rssTimer = setInterval(() => (maxRss = Math.max(maxRss, rssMiB(x.proxy.pid))), 250);
      // 32 keep-alive connections, one request at a time each, until enough 503s were seen
      const worker = async () => {
        let s: Socket | undefined;
        let buf = Buffer.alloc(0);
        let wake: (() => void) | undefined;
        const open = () =>
          new Promise<Socket>((resolve) => {
            const c = netConnect(port, "127.0.0.1", () => resolve(c));
            c.on("data", (d: Buffer) => {
              buf = Buffer.concat([buf, d]);
              wake?.();
            });
            c.on("close", () => {
              s = undefined;
              wake?.();
            });
            c.on("error", () => {});
          });
        while (Date.now() < deadline && sent < MAX_REQUESTS && backpressure < 200) {
          s ??= await open();
          buf = Buffer.alloc(0);
          sent++;
          s.write(plainGet(passHost, "/r5-flood"));
          const got = await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), 5000);
            wake = () => {
              if (hasResponses(1)(buf) || !s) {
                clearTimeout(t);
                resolve(hasResponses(1)(buf));
              }
            };
            wake();
          });
          const [res] = parseResponses(buf);
          if (!got || !res) {
            other++;
            s?.destroy();
            s = undefined;
            continue;
          }
          if (res.status === 200) ok++;
          else if (res.status === 503) {
            backpressure++;
            const body = res.body.toString();
            if (
              header(res, "x-clef-proxy-error") !== "audit_backpressure" ||
              !body.includes('"reason":"audit_backpressure"')
            )
              badBackpressure = `${header(res, "x-clef-proxy-error")} ${body}`;
          } else other++;
          if (header(res, "connection")?.toLowerCase() === "close") {
            s?.destroy();
            s = undefined;
          }
        }
        s?.destroy();
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      clearInterval(rssTimer);
      // Now read stdout: every admitted request must have exactly one line.
      const seenIds = w.pass.requests.map((q) => q.requestId).filter((id) => id && !idsBefore.has(id)) as string[];
      const lines: string[] = [];
      reader = Bun.spawn(["cat", fifo], { stdout: "pipe", stderr: "ignore" });
      const readerDone = (async () => {
        let rest = "";
        for await (const chunk of reader.stdout as ReadableStream<Uint8Array>) {
          rest += Buffer.from(chunk).toString();
          const parts = rest.split("\n");
          rest = parts.pop()!;
          lines.push(...parts);
        }
      })();
      // until every admitted request's line arrived and nothing more comes (bounded)
      const readEnd = Date.now() + 60_000;
      let prev = -1;
      let stableSince = Date.now();
      while (Date.now() < readEnd) {
        await Bun.sleep(250);
        if (lines.length !== prev) {
          prev = lines.length;
          stableSince = Date.now();
        } else if (Date.now() - stableSince > (lines.length >= ok ? 1000 : 10_000)) break;
      }
      const byId = new Map<string, number>();
      let unparsable = 0;
      for (const l of lines) {
        try {
          const id = String(JSON.parse(l).request_id);
          byId.set(id, (byId.get(id) ?? 0) + 1);
        } catch {
          unparsable++;
        }
      }
      const missing = seenIds.filter((id) => byId.get(id) !== 1).length;
      expect({
        got503: backpressure > 0,
        badBackpressure,
        other,
        rssUnder300: maxRss < 300,
        lines: lines.length === ok ? "= admitted" : `${lines.length} lines for ${ok} admitted`,
        unparsable,
        idsWithoutExactlyOneLine: missing,
      }).toEqual({
        got503: true,
        badBackpressure: "",
        other: 0,
        rssUnder300: true,
        lines: "= admitted",
        unparsable: 0,
        idsWithoutExactlyOneLine: 0,
      });
      void readerDone;
    } finally {
      reader?.kill();
      await stopProxy(x.proxy, 5000);
    }
  }, 170_000);
});

// ------------------------------------------------------------------------------------------------
describe("finding 6 (medium): idle unauthenticated connections do not lock out workloads (R6)", () => {
  test("4,200 idle TCP connections open: an authenticated curl succeeds within 3 s; the idle ones are closed within ~10 s", async () => {
    const x = await w.extraProxy();
    const idle: Socket[] = [];
    let closed = 0;
    try {
      await pool(
        Array.from({ length: 4200 }, (_, i) => i),
        200,
        async () => {
          const s = await openHeld(x.port, "");
          s.on("close", () => closed++);
          idle.push(s);
        },
      );
      const opened = Date.now();
      await Bun.sleep(300);
      const t0 = Date.now();
      const c = await curl(
        x.port,
        TOKEN,
        join(x.proxy.home, ".config/clef/proxy/ca.crt"),
        `https://api.test:${w.tlsPort}/r6`,
        ["--max-time", "3"],
      );
      const took = Date.now() - t0;
      const res = parseCurl(c.stdout);
      // the 10 s deadline to authenticate (or eviction) closes every idle connection
      await waitFor(() => closed >= idle.length, Math.max(1000, 13_000 - (Date.now() - opened)), 100);
      expect({ status: res.status, within3s: took < 3000, idleClosed: closed >= idle.length ? "all" : closed }).toEqual(
        {
          status: 200,
          within3s: true,
          idleClosed: "all",
        },
      );
    } finally {
      for (const s of idle) s.destroy();
      await x.stop();
    }
  }, 60_000);
});

// ------------------------------------------------------------------------------------------------
describe("client TLS handshakes take turns (src/intercept/handshake-gate.ts)", () => {
  // A handshake holds one of a few slots from our ServerHello to its end, and never longer than
  // HANDSHAKE_SLOT_HOLD_MS: clients stalling mid-handshake — several times the slots — must not hold
  // up the tunnels behind them until the 10 s handshake timeout.
  test("60 tunnels stalled after their ClientHello: 20 sequential tunnels each finish in < 2 s; the stalled ones are closed by the handshake timeout", async () => {
    const x = await w.extraProxy();
    const stalled: Socket[] = [];
    let closed = 0;
    try {
      const target = `api.test:${w.tlsPort}`;
      const hello = await clientHelloBytes("api.test");
      for (let i = 0; i < 60; i++) {
        const s = await stalledHandshake(x.port, TOKEN, target, hello);
        s.on("close", () => closed++);
        stalled.push(s);
      }
      const opened = Date.now();
      const { statuses, times } = await sequential(20, (i) => ({
        port: x.port,
        mode: "tls-tunnel",
        token: TOKEN,
        connectTarget: target,
        ca: x.proxyCa,
        data: `GET /after-stalled-${i} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
        until: hasResponses(1),
        timeoutMs: 3000,
      }));
      await waitFor(() => closed >= stalled.length, Math.max(1000, 13_000 - (Date.now() - opened)), 100);
      expect({
        statuses,
        slow: times.filter((t) => t >= 2000).length,
        stalledClosed: closed >= stalled.length ? "all" : closed,
      }).toEqual({ statuses: Array(20).fill(200), slow: 0, stalledClosed: "all" });
    } finally {
      for (const s of stalled) s.destroy();
      await x.stop();
    }
  }, 60_000);
});

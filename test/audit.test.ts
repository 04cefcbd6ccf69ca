// The audit log: Go-identical encoding, rotation, nothing lost under bursts and back-pressure,
// bounded shutdown, failing sinks.
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeAuditLine, rfc3339Nano } from "../src/audit/encode.ts";
import { goJsonEncode } from "../src/gojson/encode.ts";
import { AsyncAuditWriter, FileDestination } from "../src/audit/sink.ts";
import type { AuditEntry } from "../src/audit/types.ts";
import { agentEnv, manifest, startAgent } from "./helpers/agent.ts";
import { freePort, startProxy, tempDir } from "./helpers/proxy.ts";

const ROOT = join(import.meta.dir, "..");
const TOKEN = "workload-token-xyz";
const AUTH = `Proxy-Authorization: Basic ${Buffer.from("u:" + TOKEN).toString("base64")}\r\n`;

describe("encoding (byte-identical to the reference's json.Encoder lines)", () => {
  test("the contract's example lines", () => {
    const injected: AuditEntry = {
      ts: 1795384051024780471n,
      requestId: "d77e21c3-aca7-4093-b3cc-4041480edc26",
      clientIp: "127.0.0.1",
      method: "GET",
      host: "api.test:19443",
      path: "/one",
      service: "gh",
      credentialHandle: "ns/KEY",
      injectionPoint: "header:Authorization",
      status: "injected",
      upstreamStatus: 200,
      latencyMs: 7,
    };
    expect(encodeAuditLine(injected, { proxyId: "vm" })).toBe(
      `{"schema_version":1,"ts":"${rfc3339Nano(1795384051024780471n)}","proxy_id":"vm","request_id":"d77e21c3-aca7-4093-b3cc-4041480edc26","client_ip":"127.0.0.1","method":"GET","host":"api.test:19443","path":"/one","service":"gh","credential_handle":"ns/KEY","injection_point":"header:Authorization","status":"injected","upstream_status":200,"latency_ms":7}\n`,
    );
    const denied: AuditEntry = {
      ts: "2026-11-22T21:47:31.054457939Z",
      requestId: "2d94",
      clientIp: "127.0.0.1",
      method: "GET",
      host: "deny.test:19443",
      path: "/deny",
      status: "denied",
      latencyMs: 0,
    };
    expect(encodeAuditLine(denied, { proxyId: "vm", authMode: "lambda-loopback" })).toBe(
      '{"schema_version":1,"ts":"2026-11-22T21:47:31.054457939Z","proxy_id":"vm","request_id":"2d94","client_ip":"127.0.0.1","method":"GET","host":"deny.test:19443","path":"/deny","status":"denied","latency_ms":0,"auth_mode":"lambda-loopback"}\n',
    );
  });

  test("RFC3339Nano trims trailing zeros like Go", () => {
    expect(rfc3339Nano(1795384051000000000n)).toMatch(/:\d\dZ$/);
    expect(rfc3339Nano(1795384051024780470n)).toMatch(/\.02478047Z$/);
    expect(rfc3339Nano(1795384051100000000n)).toMatch(/\.1Z$/);
  });

  test("Go's HTML-safe string escaping", () => {
    expect(goJsonEncode({ b: '<a&b>\u2028\x01\n"\\', a: ["x"] })).toBe(
      '{"a":["x"],"b":"\\u003ca\\u0026b\\u003e\\u2028\\u0001\\n\\"\\\\"}\n',
    );
  });
});

function entry(i: number): AuditEntry {
  return {
    ts: 1795384051024780471n,
    requestId: `id-${i}`,
    clientIp: "127.0.0.1",
    method: "GET",
    host: "h",
    path: "/" + "p".repeat(200),
    status: "denied",
    latencyMs: 0,
  };
}

describe("file sink rotation", () => {
  test("rotates before a write once the size limit is reached, keeping max_files rotated files", async () => {
    const dir = tempDir();
    const file = join(dir, "sub", "audit.log");
    const lineLen = encodeAuditLine(entry(0), { proxyId: "p" }).length;
    const w = new AsyncAuditWriter(new FileDestination(file, 1, 2, lineLen * 10), { proxyId: "p" });
    for (let i = 0; i < 45; i++) w.write(entry(i));
    await w.close(Date.now() + 1000);
    expect(readdirSync(join(dir, "sub")).sort()).toEqual(["audit.log", "audit.log.1", "audit.log.2"]);
    const lines = (f: string) =>
      readFileSync(join(dir, "sub", f), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).request_id);
    // 45 lines at 10 per file: .2 holds 20-29, .1 holds 30-39, current 40-44; 0-19 rotated out.
    expect(lines("audit.log.2")).toEqual(Array.from({ length: 10 }, (_, i) => `id-${20 + i}`));
    expect(lines("audit.log.1")).toEqual(Array.from({ length: 10 }, (_, i) => `id-${30 + i}`));
    expect(lines("audit.log")).toEqual(Array.from({ length: 5 }, (_, i) => `id-${40 + i}`));
    expect((statSync(join(dir, "sub")).mode & 0o777).toString(8)).toBe("750");
    expect((statSync(file).mode & 0o777).toString(8)).toBe("640");
  });

  test("appends to an existing file", async () => {
    const file = join(tempDir(), "a.log");
    writeFileSync(file, "previous\n");
    const w = new AsyncAuditWriter(new FileDestination(file, 100, 5), { proxyId: "p" });
    w.write(entry(1));
    await w.close(Date.now() + 1000);
    expect(readFileSync(file, "utf8")).toStartWith("previous\n{");
  });

  test("through the binary: max_size_mb 1, max_files 2 → audit.log, .1, .2, every line accounted for", async () => {
    const agent = startAgent({ services: manifest([]) });
    const port = await freePort();
    const dir = tempDir();
    const file = join(dir, "audit.log");
    const p = await startProxy({
      config: { listen: { port }, audit: { destination: "file", file, max_size_mb: 1, max_files: 2 } },
      env: agentEnv(agent, TOKEN),
    });
    const big = "x".repeat(8000);
    const n = 400;
    await pipelined(port, n, (i) => `GET http://deny.test/${big}/${i} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}\r\n`);
    p.kill();
    expect(await p.exited).toBe(0);
    agent.stop();
    expect(readdirSync(dir).sort()).toEqual(["audit.log", "audit.log.1", "audit.log.2"]);
    const rotatedSize = statSync(join(dir, "audit.log.2")).size;
    expect(rotatedSize).toBeGreaterThanOrEqual(1 << 20);
    expect(rotatedSize).toBeLessThan((1 << 20) + 9000); // exceeds by at most one line
    // The kept files hold the newest lines, contiguous and in order (older ones rotated out).
    const ids = ["audit.log.2", "audit.log.1", "audit.log"].flatMap((f) =>
      readFileSync(join(dir, f), "utf8")
        .trim()
        .split("\n")
        .map((l) => Number(JSON.parse(l).path.split("/").pop())),
    );
    expect(ids.at(-1)).toBe(n - 1);
    expect(ids.every((v, i) => i === 0 || v === ids[i - 1]! + 1)).toBe(true);
    expect(ids.length).toBeGreaterThan(2 * 128);
  }, 60_000);
});

/** Send n requests pipelined on one connection; resolve when n responses have arrived. */
async function pipelined(port: number, n: number, req: (i: number) => string): Promise<void> {
  const net = await import("node:net");
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let got = 0;
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      const m = buf.match(/HTTP\/1\.1 \d{3} /g);
      got = m ? m.length : 0;
      if (got >= n) {
        s.destroy();
        resolve();
      }
    });
    s.on("error", reject);
    let i = 0;
    const pump = () => {
      while (i < n) {
        if (!s.write(req(i++))) return void s.once("drain", pump);
      }
    };
    pump();
  });
}

describe("nothing lost", () => {
  test("a burst of 10,000 requests: every line on stdout after SIGTERM, each request id once", async () => {
    const agent = startAgent({ services: manifest([]) });
    const port = await freePort();
    const p = await startProxy({ config: { listen: { port } }, env: agentEnv(agent, TOKEN) });
    const per = 2500;
    await Promise.all(
      [0, 1, 2, 3].map((c) =>
        pipelined(port, per, (i) => `GET http://deny.test/c${c}/r${i} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}\r\n`),
      ),
    );
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    agent.stop();
    const lines = p.stdout.filter((l) => l.startsWith("{"));
    expect(lines.length).toBe(4 * per);
    expect(new Set(lines.map((l) => JSON.parse(l).request_id)).size).toBe(4 * per);
    expect(new Set(lines.map((l) => JSON.parse(l).path)).size).toBe(4 * per);
  }, 60_000);

  const script = (n: number, deadlineMs: number) => `
    import { AsyncAuditWriter } from ${JSON.stringify(join(ROOT, "src/audit/sink.ts"))};
    import { createAuditSink } from ${JSON.stringify(join(ROOT, "src/audit/sink.ts"))};
    const w = createAuditSink({ destination: "stdout", file: "", maxSizeMb: 100, maxFiles: 5 }, { proxyId: "p" });
    for (let i = 0; i < ${n}; i++) w.write({ ts: 1n * 1795384051024780471n, requestId: "id-" + i, clientIp: "127.0.0.1", method: "GET", host: "h", path: "/" + "x".repeat(300), status: "denied", latencyMs: 0 });
    await w.close(Date.now() + ${deadlineMs});
    process.exit(0);
  `;

  /** Run the script with stdout on a FIFO nobody reads until `readAfterMs` (never when null). */
  async function withFifoStdout(src: string, readAfterMs: number | null) {
    const dir = tempDir();
    writeFileSync(join(dir, "s.ts"), src);
    const fifo = join(dir, "out.fifo");
    execFileSync("mkfifo", [fifo]);
    const fd = openSync(fifo, "r+"); // O_RDWR: opening does not block, and the kernel pipe is only 64 KiB
    const proc = Bun.spawn([process.execPath, join(dir, "s.ts")], { stdout: fd, stderr: "pipe" });
    let out = "";
    if (readAfterMs !== null) {
      await Bun.sleep(readAfterMs);
      const rs = createReadStream("", { fd, autoClose: false });
      await new Promise<void>((resolve) => {
        rs.on("data", (d) => {
          out += d.toString();
          if (out.split("\n").length > 20000) {
            rs.destroy();
            resolve();
          }
        });
      });
    }
    const code = await Promise.race([proc.exited, Bun.sleep(15_000).then(() => -1)]);
    const err = await new Response(proc.stderr).text();
    proc.kill();
    return { code, out, err };
  }

  test("a stalled stdout reader (a real full pipe): every line arrives, in order, exactly once", async () => {
    const r = await withFifoStdout(script(20000, 10_000), 1500);
    expect(r.code).toBe(0);
    const ids = r.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).request_id);
    expect(ids.length).toBe(20000);
    expect(ids.every((id, i) => id === `id-${i}`)).toBe(true);
    expect(r.err).toContain("audit: back-pressure");
  }, 30_000);

  test("a reader that never reads cannot hang exit: close gives up after deadline + grace with a WARN", async () => {
    const r = await withFifoStdout(script(20000, 200), null);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/msg="audit: shutdown deadline reached before every entry was written" not_written=\d+/);
  }, 30_000);

  test("a failing file sink (/dev/full): WARN on stderr, the proxy keeps serving", async () => {
    if (!existsSync("/dev/full")) return console.warn("NOTICE: /dev/full missing; test skipped");
    const agent = startAgent({ services: manifest([]) });
    const port = await freePort();
    const p = await startProxy({
      config: {
        listen: { port },
        audit: { destination: "file", file: "/dev/full" },
        serve: { drain_timeout: "100ms" },
      },
      env: agentEnv(agent, TOKEN),
    });
    await pipelined(port, 5, (i) => `GET http://deny.test/${i} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}\r\n`);
    await p.waitForStderr(/msg="audit: write failed, retrying; entries are kept"/);
    await pipelined(port, 5, (i) => `GET http://deny.test/again${i} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}\r\n`);
    p.kill();
    expect(await p.exited).toBe(0);
    expect(p.stderr.some((l) => l.includes("audit: shutdown deadline reached before every entry was written"))).toBe(
      true,
    );
    agent.stop();
  }, 30_000);
});

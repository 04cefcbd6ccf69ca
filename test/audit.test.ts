// The audit log: Go-identical encoding, rotation, nothing lost under bursts and back-pressure,
// bounded shutdown, failing sinks; stdout closed at start; the hash chain and `audit verify`
// (the exports: test/audit-export.test.ts; the pure modules: test/unit/audit/).
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeAuditLine, rfc3339Nano } from "../src/audit/encode.ts";
import { goJsonEncode } from "../src/gojson/encode.ts";
import { AsyncAuditWriter, FileDestination } from "../src/audit/sink.ts";
import type { AuditEntry } from "../src/audit/types.ts";
import { agentEnv, manifest, startAgent } from "./helpers/agent.ts";
import { OUR_BIN } from "./helpers/bin.ts";
import { freePort, runCli, startProxy, tempDir } from "./helpers/proxy.ts";

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

describe("stdout closed at start", () => {
  test("`serve … >&-`: audit init fails with one clear line, exit 2 (lines would vanish into /dev/null)", async () => {
    const agent = startAgent({ services: manifest([]) });
    const port = await freePort();
    const cfgDir = tempDir();
    const cfg = join(cfgDir, "c.json");
    writeFileSync(cfg, JSON.stringify({ listen: { port } }));
    const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$@" >&-', OUR_BIN, "serve", "--config", cfg], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tempDir(), ...agentEnv(agent, TOKEN) },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    agent.stop();
    expect(code).toBe(2);
    const lines = err.trim().split("\n");
    expect(lines.at(-1)).toMatch(
      /^time=\S+ level=ERROR msg="audit init" err="audit: stdout is not writable: fd 1 was closed when the process started"$/,
    );
    expect(lines.some((l) => l.includes("msg=listening"))).toBe(true); // the contract's startup order
  });

  test("a deliberate >/dev/null is accepted", async () => {
    const agent = startAgent({ services: manifest([]) });
    const port = await freePort();
    const cfg = join(tempDir(), "c.json");
    writeFileSync(cfg, JSON.stringify({ listen: { port } }));
    const proc = Bun.spawn(["sh", "-c", 'exec "$0" "$@" >/dev/null', OUR_BIN, "serve", "--config", cfg], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tempDir(), ...agentEnv(agent, TOKEN) },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    let err = "";
    const reader = (async () => {
      for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += Buffer.from(c).toString();
    })();
    for (let i = 0; i < 200 && !err.includes("msg=listening"); i++) await Bun.sleep(25);
    await Bun.sleep(100);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    await reader;
    agent.stop();
    expect(err).not.toContain("audit init");
  });
});

describe("hash chain (audit.hash_chain) and `clef-proxy audit verify`", () => {
  const verify = (files: string[]) => runCli(["audit", "verify", ...files]);

  test("through the binary: chained across rotation and a restart; verify passes, then catches tampering", async () => {
    const agent = startAgent({ services: manifest([]) });
    const dir = tempDir();
    const file = join(dir, "audit.log");
    const run = async (tag: string, n: number) => {
      const port = await freePort();
      const p = await startProxy({
        config: {
          listen: { port },
          audit: { destination: "file", file, max_size_mb: 1, max_files: 5, hash_chain: true },
        },
        env: agentEnv(agent, TOKEN),
      });
      const big = "x".repeat(8000);
      await pipelined(
        port,
        n,
        (i) => `GET http://deny.test/${tag}/${big}/${i} HTTP/1.1\r\nHost: deny.test\r\n${AUTH}\r\n`,
      );
      p.kill();
      expect(await p.exited).toBe(0);
    };
    await run("a", 200); // ≈1.6 MB: one rotation
    await run("b", 150); // a restart appends to the current file and continues the chain
    agent.stop();
    const files = ["audit.log.2", "audit.log.1", "audit.log"].map((f) => join(dir, f));
    expect(readdirSync(dir).sort()).toEqual(["audit.log", "audit.log.1", "audit.log.2"]);
    const ok = await verify(files);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout.toString()).toBe(
      `audit verify: ok: 350 lines in 3 files, chain intact from ${files[0]}:1 (the chain starts at its origin)\n`,
    );
    const first = JSON.parse(readFileSync(files[0]!, "utf8").split("\n")[0]!);
    expect(first.prev_sha256).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    // Tampering: each case on a fresh copy of the three files.
    const tamper = async (edit: (lines: string[][]) => void) => {
      const d = tempDir();
      const copies = ["audit.log.2", "audit.log.1", "audit.log"].map((f) => join(d, f));
      const contents = files.map((f) => readFileSync(f, "utf8").split("\n").slice(0, -1));
      edit(contents);
      contents.forEach((ls, i) => writeFileSync(copies[i]!, ls.map((l) => l + "\n").join("")));
      const r = await verify(copies);
      return { code: r.code, out: r.stdout.toString().replace(d + "/", "") };
    };
    const broken = (file: string, line: number) =>
      new RegExp(`^audit verify: broken chain at ${file.replace(/\./g, "\\.")} line ${line}: `);
    // an edited line (status changed) breaks the link to the next line
    let r = await tamper((c) => (c[1]![10] = c[1]![10]!.replace('"denied"', '"injected"')));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(broken("audit.log.1", 12));
    // a deleted line
    r = await tamper((c) => c[0]!.splice(5, 1));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(broken("audit.log.2", 6));
    // reordered lines
    r = await tamper((c) => ([c[2]![3], c[2]![4]] = [c[2]![4]!, c[2]![3]!]));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(broken("audit.log", 4));
    // an inserted line (a copy of line 2, edited): its own link is wrong
    r = await tamper((c) => c[2]!.splice(2, 0, c[2]![1]!.replace("/b/", "/z/")));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(broken("audit.log", 3));
    // the last line of a rotated file removed (a break across files)
    r = await tamper((c) => c[1]!.pop());
    expect(r.code).toBe(1);
    expect(r.out).toMatch(broken("audit.log", 1));
    expect(r.out).toContain("the last line of");
  }, 60_000);

  test("usage and unreadable input exit 2", async () => {
    const none = await runCli(["audit", "verify"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toStartWith("clef-proxy audit verify: at least one file is required\n");
    const missing = await runCli(["audit", "verify", "/nonexistent/audit.log"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("clef-proxy audit verify: open /nonexistent/audit.log: no such file or directory\n");
    expect(missing.stdout.length).toBe(0);
    const sub = await runCli(["audit"]);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toStartWith("clef-proxy audit: missing subcommand (verify)\n");
    const bogus = await runCli(["audit", "bogus"]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toStartWith('clef-proxy audit: unknown subcommand "bogus"\n');
    const flag = await runCli(["audit", "verify", "-x", "f"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toStartWith("clef-proxy audit verify: flag provided but not defined: -x\n");
    const dir = await runCli(["audit", "verify", tempDir()]);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toMatch(/: is a directory\n$/);
  });

  test("a file written without hash_chain is not a verified chain (exit 1)", async () => {
    const f = join(tempDir(), "a.log");
    writeFileSync(f, encodeAuditLine(entry(1), { proxyId: "p" }));
    const r = await runCli(["audit", "verify", f]);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe(
      `audit verify: broken chain at ${f} line 1: no line carries prev_sha256 (written without audit.hash_chain?)\n`,
    );
  });
});

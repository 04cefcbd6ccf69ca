// Spawning clef-proxy (ours or the reference) for process-level tests.
//
// - A clean environment: PATH plus a private temporary HOME (so the CA lands there), plus what the
//   test passes (CLEF_PROXY_AGENT_URL, tokens, ...). Pass `undefined` to drop a variable.
// - `hosts`: names → loopback addresses, visible to the proxy only. The process runs under
//   `unshare -m` with a private /etc/hosts bind-mounted over the real one (nothing on the machine
//   changes). Both our binary and Go's resolver read /etc/hosts.
// - stdout (audit lines) and stderr (slog lines) are collected line by line; `waitFor*` helpers
//   resolve when a line matching a pattern arrives, or reject after a timeout with what was seen.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OUR_BIN } from "./bin.ts";

export interface SpawnOptions {
  bin?: string;
  /** Full argv after the binary. Default: ["serve", "--config", <written config>]. */
  args?: string[];
  /** Config object (JSON-encoded) or raw text, written to a temp file passed with --config. */
  config?: unknown;
  env?: Record<string, string | undefined>;
  hosts?: Record<string, string>;
  cwd?: string;
  home?: string;
}

export interface ProxyProcess {
  proc: ReturnType<typeof Bun.spawn>;
  pid: number;
  home: string;
  configPath: string;
  stdout: string[]; // complete lines so far
  stderr: string[];
  /** Raw stdout bytes so far. */
  stdoutBytes(): Uint8Array;
  exited: Promise<number>;
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<string>;
  waitForStdoutLines(n: number, timeoutMs?: number): Promise<string[]>;
  /**
   * From now on read stdout and stderr and drop what comes (the benches: the pipes must never fill,
   * and splitting and keeping every line of a run under load costs the harness CPU on the machine
   * being measured, and memory). Drops what was collected so far.
   */
  discardOutput(): void;
  kill(signal?: NodeJS.Signals | number): void;
}

export function tempDir(prefix = "clef-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeHostsFile(hosts: Record<string, string>, dir = tempDir("clef-hosts-")): string {
  const p = join(dir, "hosts");
  const lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"];
  for (const [name, ip] of Object.entries(hosts)) lines.push(`${ip} ${name}`);
  writeFileSync(p, lines.join("\n") + "\n");
  return p;
}

/** argv prefix that runs a command with a private /etc/hosts (exec chain keeps the pid). */
export function withHosts(hosts: Record<string, string> | undefined, argv: string[]): string[] {
  if (!hosts || Object.keys(hosts).length === 0) return argv;
  const file = writeHostsFile(hosts);
  return [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount --bind "$0" /etc/hosts && exec "$@"',
    file,
    ...argv,
  ];
}

function collect(
  stream: ReadableStream<Uint8Array>,
  lines: string[],
  raw: Uint8Array[],
  onLine: () => void,
  mode: { discard: boolean },
): void {
  const dec = new TextDecoder();
  let buf = "";
  (async () => {
    for await (const chunk of stream) {
      if (mode.discard) {
        buf = ""; // a partial line from before is dropped too
        continue;
      }
      raw.push(chunk);
      buf += dec.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      onLine();
    }
    if (buf) lines.push(buf);
    onLine();
  })().catch(() => {});
}

export function spawnProxy(opts: SpawnOptions = {}): ProxyProcess {
  const home = opts.home ?? tempDir("clef-home-");
  let configPath = "";
  let args = opts.args;
  if (!args) {
    configPath = join(tempDir("clef-cfg-"), "config.json");
    const text = typeof opts.config === "string" ? opts.config : JSON.stringify(opts.config ?? {});
    writeFileSync(configPath, text);
    args = ["serve", "--config", configPath];
  }
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const argv = withHosts(opts.hosts, [opts.bin ?? OUR_BIN, ...args]);
  const proc = Bun.spawn(argv, { env, cwd: opts.cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const rawOut: Uint8Array[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const mode = { discard: false };
  collect(proc.stdout as ReadableStream<Uint8Array>, stdout, rawOut, notify, mode);
  collect(proc.stderr as ReadableStream<Uint8Array>, stderr, [], notify, mode);
  const exited = proc.exited.then((c) => {
    notify();
    return c;
  });
  let done = false;
  exited.then(() => (done = true));

  function waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const tick = () => {
        const v = check();
        if (v !== undefined) {
          cleanup();
          resolve(v);
        } else if (done) {
          // give the readers a moment to deliver trailing output
          setTimeout(() => {
            const v2 = check();
            cleanup();
            if (v2 !== undefined) resolve(v2);
            else
              reject(
                new Error(
                  `process exited (${proc.exitCode}) before ${what}\nstderr:\n${stderr.join("\n")}\nstdout:\n${stdout.join("\n")}`,
                ),
              );
          }, 50);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timeout waiting for ${what}\nstderr:\n${stderr.join("\n")}\nstdout:\n${stdout.join("\n")}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(tick);
      };
      waiters.add(tick);
      tick();
    });
  }

  return {
    proc,
    pid: proc.pid,
    home,
    configPath,
    stdout,
    stderr,
    stdoutBytes: () => Buffer.concat(rawOut),
    exited,
    waitForStderr: (re, timeoutMs = 15000) =>
      waitUntil(() => stderr.find((l) => re.test(l)), timeoutMs, `stderr ${re}`),
    waitForStdoutLines: (n, timeoutMs = 15000) =>
      waitUntil(() => (stdout.length >= n ? stdout.slice(0, n) : undefined), timeoutMs, `${n} stdout lines`),
    discardOutput: () => {
      mode.discard = true;
      stdout.splice(0);
      stderr.splice(0);
      rawOut.splice(0);
    },
    kill: (signal = "SIGTERM") => {
      try {
        proc.kill(signal);
      } catch {}
    },
  };
}

/** Spawn and wait for the `listening` line (the readiness signal). */
export async function startProxy(opts: SpawnOptions = {}): Promise<ProxyProcess> {
  const p = spawnProxy(opts);
  await p.waitForStderr(/msg=listening /);
  return p;
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run a CLI invocation to completion with a clean env (HOME = fresh temp dir unless given). */
export async function runCli(
  args: string[],
  opts: { bin?: string; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<CliResult> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tempDir("clef-home-") };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const proc = Bun.spawn([opts.bin ?? OUR_BIN, ...args], {
    env,
    cwd: opts.cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).arrayBuffer(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout: Buffer.from(stdout), stderr };
}

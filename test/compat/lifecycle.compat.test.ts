// Differential scenarios outside the data path: CLI and CA commands, CA interop, every exit code,
// startup and shutdown log lines, the calls made to the agent, Lambda, upstream proxy chaining,
// audit file rotation and drain. Each scenario runs the same thing on the reference and on ours
// and compares the normalised outcome, or, for a deliberate improvement, asserts both sides.
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentEnv, manifest, startAgent, type Agent, type AgentScript } from "../helpers/agent.ts";
import { curl, parseCurl, tunnelExchange } from "../helpers/clients.ts";
import { freePort, runCli, spawnProxy, startProxy, tempDir, type ProxyProcess } from "../helpers/proxy.ts";
import { haveTinyproxy, startTinyproxy } from "../helpers/tinyproxy.ts";
import { makeTestPki } from "../helpers/tls.ts";
import { startUpstream, type Upstream } from "../helpers/upstream.ts";
import { HAVE_REF, SIDES, normaliseAudit, type Side } from "./harness.ts";

const agents: Agent[] = [];
const upstreams: Upstream[] = [];
afterAll(() => {
  agents.forEach((a) => a.stop());
  upstreams.forEach((u) => u.stop());
});
function agent(script: AgentScript = {}): Agent {
  const a = startAgent(script);
  agents.push(a);
  return a;
}

type Outcome = Record<string, unknown>;
interface Differential {
  run: (bin: string, side: Side) => Promise<Outcome>;
  check: (o: Outcome) => void;
  improvement?: { item: string; ref: (o: Outcome) => void };
  timeout?: number;
  /** Run both sides at once (slow scenarios that only wait). */
  parallel?: boolean;
  /**
   * Log lines only ours writes (a documented addition, docs/CONTRACT.md §20.7): each pattern must
   * match a line of ours and none of the reference's; those lines are then left out of the comparison.
   */
  oursOnlyLog?: { item: string; lines: RegExp[] };
}

function differential(name: string, d: Differential): void {
  const item = d.improvement?.item ?? d.oursOnlyLog?.item;
  test(
    `${item ? `[§${item}] ` : ""}${name}`,
    async () => {
      const out: Partial<Record<Side, Outcome>> = {};
      if (d.parallel) await Promise.all(SIDES.map(async ({ side, bin }) => (out[side] = await d.run(bin, side))));
      else for (const { side, bin } of SIDES) out[side] = await d.run(bin, side);
      d.check(out.ours!);
      if (d.oursOnlyLog) {
        const extra = (l: string) => d.oursOnlyLog!.lines.some((re) => re.test(l));
        const ours = out.ours!.log as string[];
        for (const re of d.oursOnlyLog.lines) expect(ours.filter((l) => re.test(l)).length).toBe(1);
        out.ours = { ...out.ours, log: ours.filter((l) => !extra(l)) };
        if (out.ref) expect((out.ref.log as string[]).filter(extra)).toEqual([]);
      }
      if (!out.ref) return;
      if (d.improvement) d.improvement.ref(out.ref);
      else expect(out.ours).toEqual(out.ref);
    },
    d.timeout ?? 30_000,
  );
}

const norm = (home: string, s: string) => s.replaceAll(home, "<HOME>");

async function cli(
  bin: string,
  args: string[],
  env: Record<string, string | undefined> = {},
  home = tempDir("clef-home-"),
) {
  const r = await runCli(args, { bin, env: { HOME: home, ...env } });
  return { code: r.code, stdout: norm(home, r.stdout.toString("utf8")), stderr: norm(home, r.stderr), home };
}

/** stderr of a serve run as (level, msg, other attrs) with time, ports and temp paths normalised. */
function serveLog(p: ProxyProcess, port?: number): string[] {
  return p.stderr.map((l) => {
    let s = l.replace(/^time=\S+ /, "").replaceAll(p.home, "<HOME>");
    if (p.configPath) s = s.replaceAll(p.configPath, "<CFG>");
    if (port) s = s.replaceAll(String(port), "<PORT>");
    return s.replace(/not_after=\S+/, "not_after=<T>");
  });
}

if (!HAVE_REF) console.warn("NOTICE: lifecycle.compat runs our side only (facts checked, no differential comparison)");

describe("CLI and CA", () => {
  differential("--help: usage on stdout, exit 0", {
    run: async (bin) => {
      const r = await cli(bin, ["--help"]);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
    check: (o) => {
      expect(o.code).toBe(0);
      expect(String(o.stdout)).toStartWith("clef-proxy — forward credential proxy for @clef-sh/agent\n");
    },
  });
  differential("--version: a bare semver line on stdout", {
    run: async (bin) => {
      const r = await cli(bin, ["--version"]);
      return { code: r.code, shape: /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?\n$/.test(r.stdout), stderr: r.stderr };
    },
    check: (o) => expect(o).toEqual({ code: 0, shape: true, stderr: "" }),
  });
  differential("no subcommand: usage on stderr, exit 1", {
    run: async (bin) => {
      const r = await cli(bin, []);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
    check: (o) => expect(o.code).toBe(1),
  });
  differential("ca path: HOME, then XDG_CONFIG_HOME", {
    run: async (bin) => {
      const a = await cli(bin, ["ca", "path"]);
      const xdg = tempDir("clef-xdg-");
      const b = await cli(bin, ["ca", "path"], { XDG_CONFIG_HOME: xdg });
      return {
        a: [a.code, a.stdout, a.stderr],
        b: [b.code, b.stdout.replaceAll(xdg, "<XDG>"), b.stderr],
        created: existsSync(join(a.home, ".config/clef/proxy")),
      };
    },
    check: (o) => expect(o.a).toEqual([0, "<HOME>/.config/clef/proxy\n", ""]),
  });
  for (const format of ["pem", "der", "der-base64"] as const) {
    differential(`ca export --format ${format}: creates the CA, prints it, file modes`, {
      run: async (bin) => {
        const home = tempDir("clef-home-");
        const e = await runCli(["ca", "export", "--format", format], { bin, env: { HOME: home } });
        const dir = join(home, ".config/clef/proxy");
        const pem = readFileSync(join(dir, "ca.crt"), "utf8");
        const der = new X509Certificate(pem).raw;
        const printed =
          format === "pem"
            ? e.stdout.toString() === pem
            : format === "der"
              ? e.stdout.equals(der)
              : e.stdout.toString() === der.toString("base64"); // no newline
        const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
        const cert = new X509Certificate(pem);
        return {
          code: e.code,
          stderr: norm(home, e.stderr),
          printed,
          modes: [mode(dir), mode(join(dir, "ca.crt")), mode(join(dir, "ca.key"))],
          subject: cert.subject,
          ca: cert.ca,
        };
      },
      check: (o) =>
        expect(o).toMatchObject({
          code: 0,
          printed: true,
          modes: ["700", "644", "600"],
          subject: "O=clef-sh\nCN=clef-proxy",
          ca: true,
        }),
    });
  }
  differential("ca export --format bogus", {
    run: async (bin) => {
      const r = await cli(bin, ["ca", "export", "--format", "bogus"]);
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },
    check: (o) => expect(o.code).not.toBe(0),
  });
  differential("ca export --out writes the file", {
    run: async (bin) => {
      const home = tempDir("clef-home-");
      const out = join(home, "exported.pem");
      const r = await cli(bin, ["ca", "export", "--out", out], {}, home);
      return {
        code: r.code,
        stdout: r.stdout,
        stderr: r.stderr,
        same: readFileSync(out, "utf8") === readFileSync(join(home, ".config/clef/proxy/ca.crt"), "utf8"),
      };
    },
    check: (o) => expect(o).toMatchObject({ code: 0, same: true }),
  });
  differential("ca regenerate without --confirm refuses; with --confirm replaces the CA", {
    run: async (bin) => {
      const home = tempDir("clef-home-");
      await cli(bin, ["ca", "export"], {}, home);
      const before = readFileSync(join(home, ".config/clef/proxy/ca.crt"), "utf8");
      const refused = await cli(bin, ["ca", "regenerate"], {}, home);
      const same = readFileSync(join(home, ".config/clef/proxy/ca.crt"), "utf8") === before;
      const done = await cli(bin, ["ca", "regenerate", "--confirm"], {}, home);
      const changed = readFileSync(join(home, ".config/clef/proxy/ca.crt"), "utf8") !== before;
      return {
        refused: [refused.code, refused.stdout, refused.stderr],
        same,
        done: [done.code, done.stdout, done.stderr],
        changed,
      };
    },
    check: (o) => expect(o).toMatchObject({ same: true, changed: true }),
  });
  test.skipIf(!HAVE_REF)("CA interop: a CA dir written by either binary loads unchanged in the other", async () => {
    for (const [writer, reader] of [
      [SIDES[0]!.bin, SIDES[1]!.bin],
      [SIDES[1]!.bin, SIDES[0]!.bin],
    ]) {
      const home = tempDir("clef-home-");
      await cli(writer!, ["ca", "export"], {}, home);
      const pem = readFileSync(join(home, ".config/clef/proxy/ca.crt"), "utf8");
      const r = await cli(reader!, ["ca", "export"], {}, home);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(pem);
    }
  });
  differential("a lone ca.key (cert missing): not silently replaced", {
    run: async (bin) => {
      const home = tempDir("clef-home-");
      await cli(bin, ["ca", "export"], {}, home);
      const dir = join(home, ".config/clef/proxy");
      const key = readFileSync(join(dir, "ca.key"), "utf8");
      Bun.spawnSync(["rm", join(dir, "ca.crt")]);
      const r = await cli(bin, ["ca", "export"], {}, home);
      return { code: r.code, keyKept: readFileSync(join(dir, "ca.key"), "utf8") === key };
    },
    check: (o) => expect(o).toEqual({ code: 0, keyKept: true }),
    improvement: { item: "18.12", ref: (o) => expect(o).toEqual({ code: 0, keyKept: false }) },
  });
});

describe("serve: exit codes and startup", () => {
  async function exitRun(
    bin: string,
    opts: {
      config?: unknown;
      env?: Record<string, string | undefined>;
      home?: string;
      agent?: AgentScript;
      port?: number;
    },
  ) {
    const a = agent(opts.agent ?? {});
    const port = opts.port ?? (await freePort());
    const p = spawnProxy({
      bin,
      home: opts.home,
      config: opts.config ?? { listen: { port }, metadata: { proxy_id: "compat" } },
      env: { ...agentEnv(a), ...(opts.env ?? {}) },
    });
    const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => -1)]);
    if (code === -1) p.kill("SIGKILL");
    await Bun.sleep(30);
    return {
      code,
      log: serveLog(p, port),
      deleted: !existsSync(p.configPath),
      calls: a.calls.map(
        (c) =>
          `${c.method} ${c.path} auth=${c.headers.authorization ? "bearer" : "none"} ua=${c.headers["user-agent"]}`,
      ),
    };
  }

  differential("exit 0 on SIGTERM: startup and shutdown log lines, agent calls, config deleted", {
    oursOnlyLog: { item: "20.7", lines: [/^level=WARN msg="unknown config field ignored" field=unknown_field$/] },
    run: async (bin) => {
      const a = agent({
        services: manifest(
          [{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/KEY" } }],
          ["pass.test"],
        ),
      });
      const port = await freePort();
      const p = await startProxy({
        bin,
        config: { listen: { port }, metadata: { proxy_id: "compat" }, unknown_field: 1 },
        env: agentEnv(a),
      });
      p.kill("SIGTERM");
      const code = await p.exited;
      return {
        code,
        log: serveLog(p, port),
        deleted: !existsSync(p.configPath),
        stdout: p.stdout,
        calls: a.calls.map(
          (c) => `${c.method} ${c.path} auth=${c.headers.authorization ?? "none"} ua=${c.headers["user-agent"]}`,
        ),
      };
    },
    check: (o) => {
      expect(o.code).toBe(0);
      expect((o.log as string[]).at(-1)).toBe('level=INFO msg="clef-proxy stopped"');
      expect(o.calls).toEqual([
        "GET /v1/ready auth=none ua=Go-http-client/1.1",
        "GET /v1/services auth=Bearer agent-token-0123 ua=Go-http-client/1.1",
      ]);
    },
  });
  differential("exit 0 on SIGINT", {
    run: async (bin) => {
      const port = await freePort();
      const p = await startProxy({ bin, config: { listen: { port } }, env: agentEnv(agent()) });
      p.kill("SIGINT");
      return { code: await p.exited };
    },
    check: (o) => expect(o.code).toBe(0),
  });
  differential("exit 1: /v1/services unauthorized", {
    run: (bin) => exitRun(bin, { env: { CLEF_PROXY_AGENT_TOKEN: "wrong" } }),
    check: (o) => expect(o.code).toBe(1),
  });
  differential("exit 1: services schema_version 2", {
    run: (bin) => exitRun(bin, { agent: { services: { schema_version: 2 } } }),
    check: (o) => expect(o.code).toBe(1),
  });
  differential("exit 1: services answer is not JSON", {
    run: (bin) => exitRun(bin, { agent: { services: () => new Response("{nope") } }),
    check: (o) => expect(o.code).toBe(1),
  });
  differential("exit 1: proxy_auth without a colon", {
    run: async (bin) => {
      const port = await freePort();
      return exitRun(bin, {
        port,
        config: { listen: { port }, upstream: { proxy_url: "http://127.0.0.1:1", proxy_auth: "nocolon" } },
      });
    },
    check: (o) => expect(o.code).toBe(1),
  });
  differential("exit 2: config is not JSON", {
    run: (bin) => exitRun(bin, { config: "{not json" }),
    check: (o) => expect(o).toMatchObject({ code: 2, deleted: true }),
  });
  differential("exit 2: audit file cannot be opened", {
    run: async (bin) => {
      const dir = tempDir();
      mkdirSync(join(dir, "a.log"));
      const port = await freePort();
      const r = await exitRun(bin, {
        port,
        config: { listen: { port }, audit: { destination: "file", file: join(dir, "a.log") } },
      });
      return { ...r, log: r.log.map((l) => l.replaceAll(dir, "<DIR>")) };
    },
    check: (o) => expect(o.code).toBe(2),
  });
  differential("exit 3: agent never ready within 30 s", {
    parallel: true,
    timeout: 45_000,
    run: async (bin) => {
      const r = await (async () => {
        const a = agent({ ready: 503 });
        const port = await freePort();
        const p = spawnProxy({ bin, config: { listen: { port } }, env: agentEnv(a) });
        const code = await Promise.race([p.exited, Bun.sleep(40_000).then(() => -1)]);
        if (code === -1) p.kill("SIGKILL");
        return { code, last: serveLog(p, port).at(-1) };
      })();
      return r;
    },
    check: (o) => expect(o.code).toBe(3),
  });
  // An unset agent variable: ours adds a hint line about standalone mode after the reference's ERROR line.
  const standaloneHint =
    /^level=INFO msg="no agent configured: to run without one \(standalone mode\), pass --services <file>"/;
  for (const [name, env, hint] of [
    ["CLEF_PROXY_AGENT_URL unset", { CLEF_PROXY_AGENT_URL: undefined }, true],
    ["CLEF_PROXY_AGENT_URL with a bad scheme", { CLEF_PROXY_AGENT_URL: "ftp://x" }, false],
    ["CLEF_PROXY_AGENT_TOKEN empty", { CLEF_PROXY_AGENT_TOKEN: "" }, true],
    ["CLEF_PROXY_TOKEN unset", { CLEF_PROXY_TOKEN: undefined }, false],
  ] as const) {
    differential(`exit 4: ${name}`, {
      run: (bin) => exitRun(bin, { env }),
      check: (o) => expect(o.code).toBe(4),
      ...(hint ? { oursOnlyLog: { item: "20.7", lines: [standaloneHint] } } : {}),
    });
  }
  differential("exit 5: corrupt CA certificate", {
    run: async (bin) => {
      const home = tempDir();
      mkdirSync(join(home, ".config/clef/proxy"), { recursive: true });
      writeFileSync(join(home, ".config/clef/proxy/ca.crt"), "garbage");
      writeFileSync(join(home, ".config/clef/proxy/ca.key"), "garbage");
      const r = await exitRun(bin, { home });
      return { ...r, log: r.log.map((l) => l.replaceAll(home, "<HOME>")) };
    },
    check: (o) => expect(o.code).toBe(5),
  });
  differential("exit 6: the port is taken", {
    run: async (bin) => {
      const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
      const r = await exitRun(bin, {
        port: busy.port,
        config: { listen: { port: busy.port }, metadata: { proxy_id: "compat" } },
      });
      busy.stop(true);
      return r;
    },
    check: (o) => expect(o.code).toBe(6),
  });
  differential("--lambda-loopback-only without AWS_LAMBDA_FUNCTION_NAME: exit 2", {
    run: async (bin) => {
      const cfg = join(tempDir(), "c.json");
      writeFileSync(cfg, "{}");
      const r = await runCli(["serve", "--config", cfg, "--lambda-loopback-only"], { bin });
      return { code: r.code, stderr: r.stderr, deleted: !existsSync(cfg) };
    },
    check: (o) =>
      expect(o).toEqual({
        code: 2,
        stderr: "clef-proxy serve: --lambda-loopback-only requires AWS_LAMBDA_FUNCTION_NAME\n",
        deleted: true,
      }),
  });
  differential("services that can never work are reported at startup", {
    run: async (bin) => {
      const port = await freePort();
      const a = agent({
        services: manifest([
          { name: "bad", host: "b.test", auth: { scheme: "basic", credential: "ns/K" } },
          { name: "h", host: "h.test", auth: { scheme: "bearer", credential: "noslash" } },
        ]),
      });
      const p = await startProxy({ bin, config: { listen: { port } }, env: agentEnv(a) });
      p.kill();
      await p.exited;
      return { warns: serveLog(p, port).filter((l) => l.startsWith("level=WARN")).length };
    },
    check: (o) => expect(o.warns).toBe(2),
    improvement: { item: "18.10", ref: (o) => expect(o.warns).toBe(0) },
  });
});

describe("Lambda, chaining, audit file, drain", () => {
  let pki: ReturnType<typeof makeTestPki>;
  let up: Upstream;
  const hostsFor = () => ({ "api.test": "127.0.0.2", "plain.test": "127.0.0.2" });
  const services = () =>
    manifest(
      [
        { name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } },
        { name: "pl", host: "plain.test", auth: { scheme: "bearer", credential: "ns/K" } },
        { name: "ip", host: "127.0.0.2", auth: { scheme: "bearer", credential: "ns/K" } },
      ],
      ["pass.test"],
    );
  const lazy = () => {
    if (!pki) {
      pki = makeTestPki(["api.test", "plain.test", "pass.test"], ["127.0.0.2"]);
      up = startUpstream({ hostname: "127.0.0.2", pki });
      upstreams.push(up);
    }
  };

  async function oneRequest(
    bin: string,
    opts: {
      args?: string[];
      env?: Record<string, string | undefined>;
      config?: Record<string, unknown>;
      token?: string;
      url?: (port: number) => string;
    },
  ) {
    lazy();
    const a = agent({ services: services(), secrets: { "ns/K": "lambda-or-chain-secret" } });
    const port = await freePort();
    const cfg = join(tempDir(), "c.json");
    writeFileSync(cfg, JSON.stringify({ listen: { port }, metadata: { proxy_id: "compat" }, ...(opts.config ?? {}) }));
    const p = await startProxy({
      bin,
      args: ["serve", "--config", cfg, ...(opts.args ?? [])],
      env: { ...agentEnv(a), SSL_CERT_FILE: pki.caPath, ...(opts.env ?? {}) },
      hosts: hostsFor(),
    });
    const ca = join(p.home, ".config/clef/proxy/ca.crt");
    const n = up.seen.length;
    const r = await curl(
      port,
      opts.token ?? "workload-token-xyz",
      ca,
      opts.url ? opts.url(port) : `https://api.test:${up.port}/one`,
    );
    const status = r.code === 0 ? parseCurl(r.stdout).status : 0;
    await Bun.sleep(350);
    p.kill();
    await p.exited;
    const audit = p.stdout.filter((l) => l.startsWith("{")).map(normaliseAudit);
    return {
      status,
      audit,
      upstreamGotSecret: up.seen
        .slice(n)
        .some((s) => s.headers.some(([k, v]) => k === "authorization" && v === "Bearer lambda-or-chain-secret")),
      startLambda: serveLog(p)[0]?.includes("lambda=true"),
      drainLine: serveLog(p).find((l) => l.includes("drain_timeout=")),
    };
  }

  differential("Lambda loopback mode (flag): no workload auth, audit auth_mode, drain 1s", {
    run: (bin) =>
      oneRequest(bin, {
        args: ["--lambda-loopback-only"],
        env: { AWS_LAMBDA_FUNCTION_NAME: "fn", CLEF_PROXY_TOKEN: undefined },
        token: "anything",
      }),
    check: (o) => {
      expect(o).toMatchObject({
        status: 200,
        upstreamGotSecret: true,
        startLambda: true,
        drainLine: 'level=INFO msg="shutdown signal received, draining" drain_timeout=1s',
      });
      expect((o.audit as Outcome[])[0]).toMatchObject({ auth_mode: "lambda-loopback", status: "injected" });
    },
  });
  differential("Lambda loopback mode via CLEF_PROXY_LAMBDA_LOOPBACK", {
    run: (bin) =>
      oneRequest(bin, { env: { AWS_LAMBDA_FUNCTION_NAME: "fn", CLEF_PROXY_LAMBDA_LOOPBACK: "1" }, token: "wrong" }),
    check: (o) => expect(o).toMatchObject({ status: 200, upstreamGotSecret: true }),
    // the reference ignores the variable: the CONNECT gets a 407 and curl gives up
    improvement: {
      item: "18.9",
      ref: (o) => expect(o).toMatchObject({ status: 0, upstreamGotSecret: false, audit: [] }),
    },
  });
  differential("config lambda_loopback_only under Lambda", {
    run: (bin) =>
      oneRequest(bin, {
        config: { lambda_loopback_only: true },
        env: { AWS_LAMBDA_FUNCTION_NAME: "fn" },
        token: "wrong",
      }),
    check: (o) => expect(o).toMatchObject({ status: 200, upstreamGotSecret: true }),
  });
  for (const auth of [null, "corp:s3cret"]) {
    test.skipIf(!haveTinyproxy)(
      `upstream proxy chaining through tinyproxy ${auth ? "with" : "without"} Basic auth: same answer and audit`,
      async () => {
        const out: Partial<Record<Side, Outcome>> = {};
        for (const { side, bin } of SIDES) {
          const tp = await startTinyproxy(auth, hostsFor());
          const upstream: Record<string, unknown> = {
            proxy_url: `http://127.0.0.1:${tp.port}`,
            ...(auth ? { proxy_auth: auth } : {}),
          };
          // tinyproxy resolves the test names through the same private /etc/hosts: both ask it for
          // `api.test:<port>` — the name, as every client does (§18.11 as amended)
          lazy();
          out[side] = await oneRequest(bin, { config: { upstream } });
          const log = await Bun.file(tp.log)
            .text()
            .catch(() => "");
          out[side]!.connectSeenByCorp = log.includes(`CONNECT api.test:${up.port}`);
          tp.stop();
        }
        expect(out.ours).toMatchObject({ status: 200, upstreamGotSecret: true, connectSeenByCorp: true });
        if (out.ref) expect(out.ours).toEqual(out.ref);
      },
    );
  }
  differential("audit file rotation at max_size_mb, max_files kept, names", {
    timeout: 60_000,
    run: async (bin) => {
      const a = agent({ services: manifest([]) });
      const port = await freePort();
      const dir = tempDir("clef-audit-");
      const file = join(dir, "audit.log");
      const p = await startProxy({
        bin,
        config: {
          listen: { port },
          metadata: { proxy_id: "compat" },
          audit: { destination: "file", file, max_size_mb: 1, max_files: 2 },
        },
        env: agentEnv(a),
      });
      const ca = await Bun.file(join(p.home, ".config/clef/proxy/ca.crt")).text();
      // ≈2.6 MiB of denied-request lines: 3 batches of pipelined requests in tunnels
      const one = `GET /${"p".repeat(200)} HTTP/1.1\r\nHost: deny.test\r\n\r\n`;
      const last = one.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
      const answered = (n: number) => (s: string) => s.split("HTTP/1.1 403 ").length - 1 >= n;
      for (let b = 0; b < 3; b++)
        await tunnelExchange(
          port,
          "workload-token-xyz",
          "deny.test:443",
          ca,
          "deny.test",
          one.repeat(2699) + last,
          20_000,
          answered(2700),
        );
      await Bun.sleep(600);
      p.kill();
      await p.exited;
      const files = readdirSync(dir).sort();
      const lines = files.map((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean).length);
      const total = lines.reduce((x, y) => x + y, 0);
      // rotation happens before a write once the size reached the cap: a file exceeds it by less than one line
      const longest = Math.max(
        ...files.flatMap((f) =>
          readFileSync(join(dir, f), "utf8")
            .split("\n")
            .map((l) => l.length + 1),
        ),
      );
      const withinCap = files.every((f) => statSync(join(dir, f)).size < 1024 * 1024 + longest);
      const rotatedFull = files
        .filter((f) => f !== "audit.log")
        .every((f) => statSync(join(dir, f)).size >= 1024 * 1024);
      return {
        names: files,
        withinCap,
        rotatedFull,
        mode: (statSync(file).mode & 0o777).toString(8),
        moreThanTwoMiB: files.reduce((n, f) => n + statSync(join(dir, f)).size, 0) > 2 * 1024 * 1024,
        lines: total > 0,
      };
    },
    check: (o) =>
      expect(o).toEqual({
        names: ["audit.log", "audit.log.1", "audit.log.2"],
        withinCap: true,
        rotatedFull: true,
        mode: "640",
        moreThanTwoMiB: true,
        lines: true,
      }),
  });
  differential("SIGTERM with a request in flight inside a tunnel", {
    run: async (bin) => {
      lazy();
      const a = agent({ services: services(), secrets: { "ns/K": "drain-secret" } });
      const port = await freePort();
      const p = await startProxy({
        bin,
        config: { listen: { port } },
        env: { ...agentEnv(a), SSL_CERT_FILE: pki.caPath },
        hosts: hostsFor(),
      });
      const ca = join(p.home, ".config/clef/proxy/ca.crt");
      const n = up.seen.length;
      const inflight = curl(port, "workload-token-xyz", ca, `https://api.test:${up.port}/slow/1200`);
      while (up.seen.length === n) await Bun.sleep(20);
      p.kill("SIGTERM");
      const code = await p.exited;
      const r = await inflight;
      return {
        code,
        status: r.code === 0 ? parseCurl(r.stdout).status : 0,
        audit: p.stdout.filter((l) => l.startsWith("{")).length,
      };
    },
    check: (o) => expect(o).toEqual({ code: 0, status: 200, audit: 1 }),
    improvement: { item: "18.4", ref: (o) => expect(o).toEqual({ code: 0, status: 0, audit: 0 }) },
  });
});

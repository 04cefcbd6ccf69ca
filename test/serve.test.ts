// `clef-proxy serve` lifecycle through the compiled binary: config errors (side by side with the
// reference where it is installed), config deletion, every exit code, ready polling, Lambda modes,
// signals and drain.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REF_BIN } from "./helpers/bin.ts";
import { AGENT_TOKEN, agentEnv, manifest, startAgent, type Agent } from "./helpers/agent.ts";
import { curl, parseCurl } from "./helpers/clients.ts";
import { freePort, spawnProxy, startProxy, tempDir } from "./helpers/proxy.ts";
import { makeTestPki } from "./helpers/tls.ts";
import { startUpstream } from "./helpers/upstream.ts";

const agents: Agent[] = [];
afterAll(() => agents.forEach((a) => a.stop()));
function agent(script: Parameters<typeof startAgent>[0] = {}): Agent {
  const a = startAgent(script);
  agents.push(a);
  return a;
}

if (!REF_BIN) console.warn("NOTICE: reference binary not installed here; serve tests run on ours only");

/** Run serve with a config text to exit; stderr with the config path and times normalised. */
async function serveOnce(bin: string | undefined, config: string, env: Record<string, string | undefined> = {}) {
  const p = spawnProxy({ bin, config, env });
  const code = await Promise.race([p.exited, Bun.sleep(8000).then(() => -1)]);
  if (code === -1) p.kill("SIGKILL");
  await Bun.sleep(20);
  const norm = p.stderr
    .join("\n")
    .replaceAll(p.configPath, "<cfg>")
    .replace(/time=\S+ /g, "");
  return { code, stderr: norm, deleted: !existsSync(p.configPath) };
}

describe("config errors (exit 2, exact messages, file deleted)", () => {
  const cases: Array<[string, string]> = [
    ["port as string", '{"listen":{"port":"x"}}'],
    ["port out of range", '{"listen":{"port":70000}}'],
    ["port negative", '{"listen":{"port":-1}}'],
    ["port float", '{"listen":{"port":1.5}}'],
    ["listen not an object", '{"listen":"x"}'],
    ["top-level array", "[]"],
    ["trailing data", '{"listen":{}} true'],
    ["empty file", ""],
    ["bad literal", '{"a":tru}'],
    ["bad escape", '{"a":"x\\q"}'],
    ["missing comma", '{"a":1 "b":2}'],
    ["no_proxy not an array", '{"upstream":{"no_proxy":"a"}}'],
    ["proxy_url scheme", '{"upstream":{"proxy_url":"socks5://x:1"}}'],
    ["proxy_url colon", '{"upstream":{"proxy_url":"127.0.0.1:3128"}}'],
    ["proxy_url missing scheme", '{"upstream":{"proxy_url":"://bad"}}'],
    ["audit destination", '{"audit":{"destination":"bogus"}}'],
    ["audit file missing", '{"audit":{"destination":"file"}}'],
    ["audit max_size negative", '{"audit":{"destination":"file","file":"/tmp/clef-never/a.log","max_size_mb":-1}}'],
    ["audit max_files negative", '{"audit":{"destination":"file","file":"/tmp/clef-never/a.log","max_files":-1}}'],
    ["ca half set", '{"ca":{"cert_path":"/x"}}'],
    ["drain number", '{"serve":{"drain_timeout":5}}'],
    ["drain bogus", '{"serve":{"drain_timeout":"bogus"}}'],
    ["drain negative", '{"serve":{"drain_timeout":"-1s"}}'],
    ["drain over cap", '{"serve":{"drain_timeout":"1m0.5s"}}'],
    ["serve not an object", '{"serve":1}'],
    ["lambda without env", '{"lambda_loopback_only":true}'],
    ["bool as string", '{"lambda_loopback_only":"yes"}'],
  ];
  const expected: Record<string, string> = {
    "port as string":
      'clef-proxy serve: parse config "<cfg>": json: cannot unmarshal string into Go struct field ListenConfig.listen.port of type int',
    "port out of range": 'clef-proxy serve: config "<cfg>": listen.port: 70000 out of range (1-65535)',
    "drain over cap": 'clef-proxy serve: config "<cfg>": serve.drain_timeout: 1m0.5s exceeds sanity cap of 1m0s',
    "drain bogus":
      'clef-proxy serve: parse config "<cfg>": config: invalid drain_timeout "bogus": time: invalid duration "bogus"',
    "empty file": 'clef-proxy serve: parse config "<cfg>": unexpected end of JSON input',
  };
  for (const [name, text] of cases) {
    test(name, async () => {
      const ours = await serveOnce(undefined, text);
      expect(ours.code).toBe(2);
      expect(ours.deleted).toBe(true);
      expect(ours.stderr.split("\n").length).toBe(1);
      if (expected[name]) expect(ours.stderr).toBe(expected[name]!);
      if (REF_BIN) {
        const ref = await serveOnce(REF_BIN, text);
        expect(ours.stderr).toBe(ref.stderr);
        expect(ours.code).toBe(ref.code);
      }
    });
  }

  test("missing config file", async () => {
    const p = spawnProxy({ args: ["serve", "--config", "/nonexistent/c.json"] });
    expect(await p.exited).toBe(2);
    expect(p.stderr.join("\n")).toBe(
      'clef-proxy serve: read config "/nonexistent/c.json": open /nonexistent/c.json: no such file or directory',
    );
  });

  test("a valid config is deleted too, and unknown fields are ignored", async () => {
    const a = agent();
    const p = await startProxy({ config: { listen: { port: await freePort() }, unknown: { x: 1 } }, env: agentEnv(a) });
    expect(existsSync(p.configPath)).toBe(false);
    p.kill();
    expect(await p.exited).toBe(0);
  });
});

describe("exit codes", () => {
  test("0: SIGTERM after listening, with the reference's log lines", async () => {
    const a = agent({
      services: manifest(
        [{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/KEY" } }],
        ["pass.test"],
      ),
    });
    const port = await freePort();
    const p = await startProxy({ config: { listen: { port }, metadata: { proxy_id: "pid-1" } }, env: agentEnv(a) });
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    const lines = p.stderr.map((l) => l.replace(/^time=\S+ /, ""));
    expect(lines[0]).toBe(
      `level=INFO msg="clef-proxy starting" version=0.0.4 proxy_id=pid-1 port=${port} lambda=false`,
    );
    expect(lines[1]).toMatch(
      /^level=INFO msg="CA loaded" subject="CN=clef-proxy,O=clef-sh" not_after=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    expect(lines[2]).toBe('level=INFO msg="agent ready"');
    expect(lines[3]).toBe(
      'level=INFO msg="services fetched" identity=myid environment=prod service_count=1 passthrough_count=1',
    );
    expect(lines[4]).toBe(`level=INFO msg=listening addr=127.0.0.1:${port}`);
    expect(lines).toContain('level=INFO msg="shutdown signal received, draining" drain_timeout=5s');
    expect(lines.at(-1)).toBe('level=INFO msg="clef-proxy stopped"');
    expect(p.stdout).toEqual([]);
  });

  test("0: SIGINT too", async () => {
    const p = await startProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(agent()) });
    p.kill("SIGINT");
    expect(await p.exited).toBe(0);
  });

  test("1: /v1/services unauthorized", async () => {
    const a = agent();
    const p = spawnProxy({
      config: { listen: { port: await freePort() } },
      env: { ...agentEnv(a), CLEF_PROXY_AGENT_TOKEN: "wrong" },
    });
    expect(await p.exited).toBe(1);
    expect(p.stderr.at(-1)).toEndWith('level=ERROR msg="fetch /v1/services" err="agent: unauthorized"');
  });

  test("1: schema_version 2, 500 with error body, bad JSON", async () => {
    for (const [services, err] of [
      [{ schema_version: 2 }, "agent: /v1/services schema_version=2, expected 1"],
      [() => Response.json({ error: "boom", detail: "dd" }, { status: 500 }), "agent: /v1/services: 500 boom: dd"],
      [
        () => new Response("{nope"),
        "agent: decode /v1/services: invalid character 'n' looking for beginning of object key string",
      ],
    ] as const) {
      const p = spawnProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(agent({ services })) });
      expect(await p.exited).toBe(1);
      expect(p.stderr.at(-1)).toContain(`err=${JSON.stringify(err)}`);
    }
  });

  test("1: proxy_auth without a colon (intercept init)", async () => {
    const p = spawnProxy({
      config: {
        listen: { port: await freePort() },
        upstream: { proxy_url: "http://127.0.0.1:1", proxy_auth: "nocolon" },
      },
      env: agentEnv(agent()),
    });
    expect(await p.exited).toBe(1);
    expect(p.stderr.at(-1)).toEndWith(
      `level=ERROR msg="intercept init" err="intercept: upstream.proxy_auth must be in 'user:pass' form"`,
    );
  });

  test("2: audit file cannot be opened (after listening)", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "a.log"));
    const p = spawnProxy({
      config: { listen: { port: await freePort() }, audit: { destination: "file", file: join(dir, "a.log") } },
      env: agentEnv(agent()),
    });
    expect(await p.exited).toBe(2);
    expect(p.stderr.at(-1)).toContain(
      `msg="audit init" err="audit: open ${join(dir, "a.log")}: open ${join(dir, "a.log")}: is a directory"`,
    );
  });

  test("3: agent never ready within 30 s; the attempts follow the back-off", async () => {
    const a = agent({ ready: 503 });
    const p = spawnProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(a) });
    expect(await p.exited).toBe(3);
    expect(p.stderr.at(-1)).toEndWith(
      'level=ERROR msg="agent not ready within timeout" err="agent: /v1/ready not reachable: context deadline exceeded (last error: status 503)" timeout=30s',
    );
    const ready = a.calls.filter((c) => c.path === "/v1/ready");
    expect(ready.length).toBeGreaterThanOrEqual(29);
    expect(ready.length).toBeLessThanOrEqual(33);
    expect(ready.every((c) => c.headers.authorization === undefined)).toBe(true);
  }, 40_000);

  test("ready after a few attempts: polled until 200, then /v1/services with the bearer", async () => {
    const a = agent({ ready: (n) => new Response("", { status: n < 3 ? 503 : 200 }) });
    const p = await startProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(a) });
    expect(a.calls.map((c) => c.path)).toEqual(["/v1/ready", "/v1/ready", "/v1/ready", "/v1/services"]);
    expect(a.calls[3]!.headers.authorization).toBe(`Bearer ${AGENT_TOKEN}`);
    p.kill();
    await p.exited;
  });

  test("an https:// agent is verified against SSL_CERT_FILE's roots", async () => {
    const pki = makeTestPki([], ["127.0.0.1"]);
    const a = agent({
      tls: pki,
      services: manifest([{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } }]),
    });
    expect(a.url).toStartWith("https://");
    const p = await startProxy({
      config: { listen: { port: await freePort() } },
      env: { ...agentEnv(a), SSL_CERT_FILE: pki.caPath },
    });
    expect(a.calls.map((c) => c.path)).toEqual(["/v1/ready", "/v1/services"]);
    p.kill();
    expect(await p.exited).toBe(0);
  });

  test("0: a signal during the readiness probe", async () => {
    const p = spawnProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(agent({ ready: 503 })) });
    await p.waitForStderr(/clef-proxy starting/);
    await Bun.sleep(300);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr.at(-1)).toEndWith('msg="shutdown signal received during readiness probe"');
  });

  test("4: agent URL unset / bad scheme / no scheme; agent token unset; workload token unset", async () => {
    const a = agent();
    const cases: Array<[Record<string, string | undefined>, string]> = [
      [{ CLEF_PROXY_AGENT_URL: undefined }, 'msg="agent client init" err="agent: CLEF_PROXY_AGENT_URL is not set"'],
      [
        { CLEF_PROXY_AGENT_URL: "ftp://x" },
        'msg="agent client init" err="agent: CLEF_PROXY_AGENT_URL scheme must be http or https, got \\"ftp\\""',
      ],
      [
        { CLEF_PROXY_AGENT_URL: "127.0.0.1:7777" },
        'msg="agent client init" err="agent: invalid CLEF_PROXY_AGENT_URL \\"127.0.0.1:7777\\": parse \\"127.0.0.1:7777\\": first path segment in URL cannot contain colon"',
      ],
      [{ CLEF_PROXY_AGENT_TOKEN: "" }, 'msg="agent client init" err="agent: CLEF_PROXY_AGENT_TOKEN is not set"'],
      [{ CLEF_PROXY_TOKEN: undefined }, 'level=ERROR msg="workload auth token missing" env=CLEF_PROXY_TOKEN'],
    ];
    for (const [env, line] of cases) {
      const p = spawnProxy({ config: { listen: { port: await freePort() } }, env: { ...agentEnv(a), ...env } });
      expect(await p.exited).toBe(4);
      // the last ERROR line (an unset agent variable is followed by a hint line, test/ops.test.ts)
      expect(p.stderr.filter((l) => l.includes(" level=ERROR ")).at(-1)).toEndWith(line);
    }
  });

  test("a .env or bunfig.toml in the working directory changes nothing (no autoload in the binary)", async () => {
    const cwd = tempDir("clef-cwd-");
    writeFileSync(join(cwd, ".env"), "CLEF_PROXY_TOKEN=from-dotenv\n");
    writeFileSync(
      join(cwd, "evil.ts"),
      `require("node:fs").writeFileSync(${JSON.stringify(join(cwd, "ran"))}, "1");\n`,
    );
    writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./evil.ts"]\n');
    const p = spawnProxy({
      cwd,
      config: { listen: { port: await freePort() } },
      env: { ...agentEnv(agent()), CLEF_PROXY_TOKEN: undefined },
    });
    expect(await p.exited).toBe(4);
    expect(p.stderr.at(-1)).toEndWith('level=ERROR msg="workload auth token missing" env=CLEF_PROXY_TOKEN');
    expect(existsSync(join(cwd, "ran"))).toBe(false);
  });

  test("5: a corrupt CA certificate", async () => {
    const home = tempDir();
    mkdirSync(join(home, ".config/clef/proxy"), { recursive: true });
    writeFileSync(join(home, ".config/clef/proxy/ca.crt"), "garbage");
    writeFileSync(join(home, ".config/clef/proxy/ca.key"), "garbage");
    const p = spawnProxy({ home, config: { listen: { port: await freePort() } }, env: agentEnv(agent()) });
    expect(await p.exited).toBe(5);
    expect(p.stderr.at(-1)).toEndWith(
      `level=ERROR msg="CA load/generate" err="ca: ${home}/.config/clef/proxy/ca.crt: not a CERTIFICATE PEM block" cert_path=${home}/.config/clef/proxy/ca.crt`,
    );
  });

  test("6: the port is taken", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const p = spawnProxy({ config: { listen: { port: busy.port } }, env: agentEnv(agent()) });
    expect(await p.exited).toBe(6);
    busy.stop(true);
    expect(p.stderr.at(-1)).toEndWith(
      `level=ERROR msg="listener bind" addr=127.0.0.1:${busy.port} err="listen tcp 127.0.0.1:${busy.port}: bind: address already in use"`,
    );
  });
});

describe("Lambda", () => {
  test("--lambda-loopback-only without AWS_LAMBDA_FUNCTION_NAME → exit 2", async () => {
    const cfg = join(tempDir(), "c.json");
    writeFileSync(cfg, "{}");
    const p = spawnProxy({ args: ["serve", "--config", cfg, "--lambda-loopback-only"] });
    expect(await p.exited).toBe(2);
    expect(p.stderr).toEqual(["clef-proxy serve: --lambda-loopback-only requires AWS_LAMBDA_FUNCTION_NAME"]);
    expect(existsSync(cfg)).toBe(false);
    if (REF_BIN) {
      writeFileSync(cfg, "{}");
      const r = spawnProxy({ bin: REF_BIN, args: ["serve", "--config", cfg, "--lambda-loopback-only"] });
      expect(await r.exited).toBe(2);
      expect(r.stderr).toEqual(p.stderr);
    }
  });

  for (const [how, env, args] of [
    ["flag", { AWS_LAMBDA_FUNCTION_NAME: "fn" }, ["--lambda-loopback-only"]],
    [
      "CLEF_PROXY_LAMBDA_LOOPBACK=yes (§18.9)",
      { AWS_LAMBDA_FUNCTION_NAME: "fn", CLEF_PROXY_LAMBDA_LOOPBACK: "yes" },
      [],
    ],
  ] as const) {
    test(`loopback mode via ${how}: no auth needed, workload token optional, audit auth_mode, lambda=true, drain 1s`, async () => {
      const pki = makeTestPki(["api.test"], ["127.0.0.2"]);
      const up = startUpstream({ hostname: "127.0.0.2", pki });
      const a = agent({
        services: manifest([{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } }]),
        secrets: { "ns/K": "lambda-secret" },
      });
      const port = await freePort();
      const cfgPath = join(tempDir(), "c.json");
      writeFileSync(cfgPath, JSON.stringify({ listen: { port } }));
      const p = await startProxy({
        args: ["serve", "--config", cfgPath, ...args],
        env: { ...agentEnv(a), CLEF_PROXY_TOKEN: undefined, SSL_CERT_FILE: pki.caPath, ...env },
        hosts: { "api.test": "127.0.0.2" },
      });
      expect(p.stderr[0]).toContain("lambda=true");
      const ca = join(p.home, ".config/clef/proxy/ca.crt");
      const r = await curl(port, "anything-goes", ca, `https://api.test:${up.port}/l`);
      expect(parseCurl(r.stdout).status).toBe(200);
      const [line] = await p.waitForStdoutLines(1);
      expect(JSON.parse(line!).auth_mode).toBe("lambda-loopback");
      expect(line!).toEndWith(',"auth_mode":"lambda-loopback"}');
      p.kill();
      expect(await p.exited).toBe(0);
      expect(p.stderr.some((l) => l.includes("drain_timeout=1s"))).toBe(true);
      up.stop();
    });
  }

  test("CLEF_PROXY_LAMBDA_LOOPBACK without AWS_LAMBDA_FUNCTION_NAME is ignored (auth still required)", async () => {
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port } },
      env: { ...agentEnv(agent()), CLEF_PROXY_LAMBDA_LOOPBACK: "1" },
    });
    const ca = join(p.home, ".config/clef/proxy/ca.crt");
    const r = await curl(port, "wrong-token", ca, "https://api.test/x");
    expect(r.stdout + r.stderr).toContain("407");
    p.kill();
    await p.exited;
  });
});

describe("drain (§18.4)", () => {
  test("SIGTERM with a request in flight inside a tunnel: it completes, is audited, new connections are refused, exit 0", async () => {
    const pki = makeTestPki(["api.test"], ["127.0.0.2"]);
    const up = startUpstream({ hostname: "127.0.0.2", pki });
    const a = agent({
      services: manifest([{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/K" } }]),
      secrets: { "ns/K": "drain-secret" },
    });
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port } },
      env: { ...agentEnv(a), SSL_CERT_FILE: pki.caPath },
      hosts: { "api.test": "127.0.0.2" },
    });
    const ca = join(p.home, ".config/clef/proxy/ca.crt");
    const inflight = curl(port, "workload-token-xyz", ca, `https://api.test:${up.port}/slow/1500`);
    while (up.seen.length === 0) await Bun.sleep(20);
    p.kill("SIGTERM");
    await p.waitForStderr(/shutdown signal received, draining/);
    const refused = await curl(port, "workload-token-xyz", ca, `https://api.test:${up.port}/late`);
    expect(refused.code).not.toBe(0);
    const r = await inflight;
    expect(parseCurl(r.stdout).status).toBe(200);
    expect(await p.exited).toBe(0);
    const lines = p.stdout.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ path: "/slow/1500", status: "injected", upstream_status: 200 });
    up.stop();
  });

  test("drain deadline: a request longer than drain_timeout is cut and the WARN is logged", async () => {
    const pki = makeTestPki(["api.test"], ["127.0.0.2"]);
    const up = startUpstream({ hostname: "127.0.0.2", pki });
    const a = agent({ services: manifest([], ["api.test"]) });
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port }, serve: { drain_timeout: "300ms" } },
      env: { ...agentEnv(a), SSL_CERT_FILE: pki.caPath },
      hosts: { "api.test": "127.0.0.2" },
    });
    const ca = join(p.home, ".config/clef/proxy/ca.crt");
    const inflight = curl(port, "workload-token-xyz", ca, `https://api.test:${up.port}/slow/5000`);
    while (up.seen.length === 0) await Bun.sleep(20);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(
      p.stderr.some((l) =>
        l.includes('level=WARN msg="drain deadline reached, forcing close" err="context deadline exceeded"'),
      ),
    ).toBe(true);
    await inflight;
    up.stop();
  });
});

// The operator's commands and diagnostics through the COMPILED binary (issue 17, `features` from
// issue 16): `check`, `ca env` (evaluated in a real shell, then curl and Python through the proxy
// with only those variables), `features`, `--help` on every command, and the startup / per-request
// diagnostics (unknown config fields, missing standalone secrets, waiting for the agent, the exit-4
// hint). No secret value may appear in any of their output.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ArgsDef, CommandDef } from "citty";
import { agentEnv, manifest, startAgent, type Agent, type AgentScript } from "./helpers/agent.ts";
import { OUR_BIN, REF_BIN } from "./helpers/bin.ts";
import { curl, parseCurl, run } from "./helpers/clients.ts";
import { freePort, runCli, spawnProxy, startProxy, tempDir } from "./helpers/proxy.ts";
import { makeTestPki } from "./helpers/tls.ts";
import { startUpstream, type Upstream } from "./helpers/upstream.ts";
import {
  audit as auditCmd,
  ca as caCmd,
  check as checkCmd,
  features as featuresCmd,
  serve as serveCmd,
} from "../src/cli/commands.ts";

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

const VERSION = (await Bun.file(new URL("../package.json", import.meta.url)).json()).version as string;
const SECRET_A = "value-of-secret-a-7731";
const SECRET_B = "value-of-secret-b-8842";

/** A config + services file in a fresh dir; returns their paths. */
function files(config: unknown, services?: unknown): { dir: string; cfg: string; svc: string } {
  const dir = tempDir("clef-ops-");
  const cfg = join(dir, "config.json");
  const svc = join(dir, "services.json");
  writeFileSync(cfg, typeof config === "string" ? config : JSON.stringify(config));
  if (services !== undefined) writeFileSync(svc, JSON.stringify(services));
  return { dir, cfg, svc };
}

const cleanEnv = (extra: Record<string, string | undefined> = {}) => ({
  CLEF_PROXY_AGENT_URL: undefined,
  CLEF_PROXY_AGENT_TOKEN: undefined,
  CLEF_PROXY_TOKEN: undefined,
  ...extra,
});

describe("features", () => {
  test("one JSON line, keys sorted, features sorted: what this build implements, exit 0", async () => {
    const r = await runCli(["features"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const features = [
      "auth_basic",
      "auth_template",
      "blocked_cidrs",
      "blocked_hosts",
      "metrics",
      "multi_host",
      "otlp",
      "webhook",
      "wildcard_hosts",
    ];
    expect(r.stdout.toString()).toBe(
      `{"audit_schema_version":1,"features":${JSON.stringify(features)},"manifest_schema_versions":[1],"version":"${VERSION}"}\n`,
    );
    const j = JSON.parse(r.stdout.toString());
    expect(j.features).toEqual([...j.features].sort());
    expect(Object.keys(j)).toEqual([...Object.keys(j)].sort());
    expect((await runCli(["features", "--bogus"])).stderr).toBe(
      "clef-proxy features: flag provided but not defined: -bogus\n",
    );
  });
  test.if(REF_BIN !== null)("the reference does not know it (how the agent tells an old binary)", async () => {
    const r = await runCli(["features"], { bin: REF_BIN! });
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith('clef-proxy: unknown subcommand "features"\n');
  });
});

describe("--help on every command (ours; the reference answers `flag: help requested`, exit 1)", () => {
  const commands: Array<[string[], CommandDef<ArgsDef>]> = [
    [["serve"], serveCmd as CommandDef<ArgsDef>],
    [["check"], checkCmd as CommandDef<ArgsDef>],
    [["features"], featuresCmd as CommandDef<ArgsDef>],
    [["audit", "verify"], (auditCmd.subCommands as Record<string, CommandDef<ArgsDef>>).verify!],
    ...Object.entries((caCmd.subCommands ?? {}) as Record<string, CommandDef<ArgsDef>>).map(
      ([n, c]) => [["ca", n], c] as [string[], CommandDef<ArgsDef>],
    ),
  ];
  for (const [path, def] of commands)
    for (const flag of ["--help", "-h", "-help"])
      test(`${path.join(" ")} ${flag}: its usage with every flag on stdout, exit 0`, async () => {
        const r = await runCli([...path, flag]);
        const out = r.stdout.toString();
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
        expect(out).toStartWith(`Usage: clef-proxy ${path.join(" ")}`);
        for (const name of Object.keys(def.args ?? {})) expect(out).toContain(`--${name}`);
        expect(out).toContain("-h, --help");
      });
  test("ca --help / -h / help lists every ca subcommand", async () => {
    for (const a of ["--help", "-h", "help"]) {
      const r = await runCli(["ca", a]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      for (const sub of ["env", "export", "path", "regenerate"]) expect(r.stdout.toString()).toContain(`\n  ${sub} `);
    }
  });
  test("Go flag rules still hold: help after other flags is help; after a positional it is ignored", async () => {
    const a = await runCli(["serve", "--config", "/nonexistent", "--help"]);
    expect(a.code).toBe(0);
    expect(a.stdout.toString()).toStartWith("Usage: clef-proxy serve");
    const b = await runCli(["ca", "regenerate", "extra", "-h"]);
    expect({ code: b.code, stderr: b.stderr }).toEqual({
      code: 1,
      stderr: "clef-proxy ca regenerate: refusing without --confirm\n",
    });
  });
});

describe("check", () => {
  test("standalone, all well: ok summary, exit 0; the config is kept, the CA is not created, no value printed", async () => {
    const port = await freePort();
    const mport = await freePort();
    const { dir, cfg, svc } = files(
      { listen: { port }, metrics: { port: mport } },
      {
        schema_version: 1,
        identity: "me",
        environment: "dev",
        services: [
          { name: "a", host: "a.test", auth: { scheme: "bearer", credential: "ns/A" } },
          { name: "b", host: "b.test", auth: { scheme: "api_key_header", header: "X-K", credential: "ns/B" } },
        ],
        passthrough_hosts: ["p.test"],
        secrets: { "ns/A": "env:SECRET_A", "ns/B": "file:b.secret" },
      },
    );
    writeFileSync(join(dir, "b.secret"), SECRET_B + "\n");
    const home = tempDir("clef-home-");
    const r = await runCli(["check", "--config", cfg, "--services", svc], {
      env: cleanEnv({ HOME: home, SECRET_A }),
    });
    const caDir = join(home, ".config/clef/proxy");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout.toString()).toBe(
      [
        `ok: config ${cfg} (listen 127.0.0.1:${port}, metrics 127.0.0.1:${mport})`,
        `ok: services file ${svc} (2 services, 1 passthrough host)`,
        "ok: credentials (2 handles, every one resolvable)",
        `ok: CA not created yet; serve will create it at ${caDir}/ca.crt and ${caDir}/ca.key`,
        `ok: ports 127.0.0.1:${port}, 127.0.0.1:${mport} free`,
        "clef-proxy check: ok",
        "",
      ].join("\n"),
    );
    expect(existsSync(cfg)).toBe(true);
    expect(existsSync(caDir)).toBe(false);
    for (const v of [SECRET_A, SECRET_B]) expect(r.stdout.toString() + r.stderr).not.toContain(v);
  });

  test("standalone problems: one line each, exit 1; names the variable / file, never a value", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const { dir, cfg, svc } = files(
      { listen: { port: busy.port } },
      {
        schema_version: 1,
        services: [
          { name: "a", host: "a.test", auth: { scheme: "bearer", credential: "ns/A" } },
          { name: "f", host: "f.test", auth: { scheme: "bearer", credential: "ns/F" } },
          { name: "n", host: "n.test", auth: { scheme: "bearer", credential: "ns/N" } },
          { name: "set", host: "s.test", auth: { scheme: "bearer", credential: "ns/SET" } },
          { name: "x", host: "x.test", auth: { scheme: "basic", credential: "ns/SET" } },
        ],
        secrets: { "ns/A": "env:UNSET_VAR", "ns/F": "file:missing.secret", "ns/SET": "env:SECRET_A" },
      },
    );
    const r = await runCli(["check", "--config", cfg, "--services", svc], { env: cleanEnv({ SECRET_A }) });
    busy.stop(true);
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n")).toEqual([
      "clef-proxy check: credential ns/A: env:UNSET_VAR is not set",
      `clef-proxy check: credential ns/F: file:missing.secret ${join(dir, "missing.secret")}: no such file or directory`,
      `clef-proxy check: credential ns/N: no entry in the services file's "secrets" map`,
      'clef-proxy check: service "x" (host "x.test") can never be served: unsupported scheme "basic"',
      `clef-proxy check: listen.port ${busy.port}: listen tcp 127.0.0.1:${busy.port}: bind: address already in use`,
      "",
    ]);
    expect(r.stdout.toString()).not.toContain("clef-proxy check: ok");
    expect(r.stdout.toString() + r.stderr).not.toContain(SECRET_A);
  });

  test("config errors use serve's messages (framed `clef-proxy check:`), the file is kept; unknown fields warn", async () => {
    const bad = files({ listen: { port: 70000 } });
    const r = await runCli(["check", "--config", bad.cfg, "--services", "/nonexistent.json"], { env: cleanEnv() });
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n")[0]).toBe(
      `clef-proxy check: config ${JSON.stringify(bad.cfg)}: listen.port: 70000 out of range (1-65535)`,
    );
    expect(r.stderr).toContain("clef-proxy check: services file");
    expect(existsSync(bad.cfg)).toBe(true);

    const port = await freePort();
    const warn = files({ listen: { port, prot: 1 } }, { schema_version: 1, services: [], secrets: {} });
    const w = await runCli(["check", "--config", warn.cfg, "--services", warn.svc], { env: cleanEnv() });
    expect(w.code).toBe(0);
    expect(w.stderr).toBe(
      `clef-proxy check: warning: config ${JSON.stringify(warn.cfg)}: unknown field listen.prot is ignored (did you mean listen.port?)\n`,
    );
    const missing = await runCli(["check"]);
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({
      code: 2,
      stderr: "clef-proxy check: --config <path> is required\n",
    });
  });

  test("agent mode: ready, services, every handle fetched once; 404 and errors reported by handle", async () => {
    const a = agent({
      services: manifest([
        { name: "a", host: "a.test", auth: { scheme: "bearer", credential: "ns/A" } },
        { name: "a2", host: "a2.test", auth: { scheme: "bearer", credential: "ns/A" } },
        { name: "gone", host: "g.test", auth: { scheme: "bearer", credential: "ns/GONE" } },
        { name: "err", host: "e.test", auth: { scheme: "bearer", credential: "ns/ERR" } },
      ]),
      secrets: {
        "ns/A": SECRET_A,
        "ns/ERR": () => Response.json({ error: "boom", detail: "vault sealed" }, { status: 500 }),
      },
    });
    const port = await freePort();
    const { cfg } = files({ listen: { port } });
    const home = tempDir("clef-home-");
    await runCli(["ca", "export"], { env: { HOME: home } }); // an existing CA is loaded and described
    const r = await runCli(["check", "--config", cfg], { env: { ...agentEnv(a), HOME: home } });
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n")).toEqual([
      "clef-proxy check: credential ns/GONE: not found (the agent answered 404)",
      "clef-proxy check: credential ns/ERR: agent: /v1/secrets/ns/ERR: 500 boom: vault sealed",
      "",
    ]);
    const out = r.stdout.toString();
    expect(out).toContain(`ok: agent ${a.url} (ready; identity "myid", environment "prod", 4 services)\n`);
    expect(out).toMatch(/\nok: CA \S+\/ca\.crt \(CN=clef-proxy,O=clef-sh, expires \d{4}-\d\d-\d\d\)\n/);
    expect(a.calls.map((c) => c.path)).toEqual([
      "/v1/ready",
      "/v1/services",
      "/v1/secrets/ns/A",
      "/v1/secrets/ns/GONE",
      "/v1/secrets/ns/ERR",
    ]);
    expect(out + r.stderr).not.toContain(SECRET_A);
  });

  test("agent mode: missing variables (with the standalone hint), workload token, agent not ready, corrupt CA", async () => {
    const port = await freePort();
    const { cfg } = files({ listen: { port } });
    const home = tempDir("clef-home-");
    mkdirSync(join(home, ".config/clef/proxy"), { recursive: true });
    writeFileSync(join(home, ".config/clef/proxy/ca.crt"), "garbage");
    writeFileSync(join(home, ".config/clef/proxy/ca.key"), "garbage");
    const r = await runCli(["check", "--config", cfg], { env: cleanEnv({ HOME: home }) });
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n")).toEqual([
      "clef-proxy check: agent: CLEF_PROXY_AGENT_URL is not set (or pass --services <file> for standalone mode)",
      "clef-proxy check: CLEF_PROXY_TOKEN is not set (the password workloads put in Proxy-Authorization; serve exits 4)",
      `clef-proxy check: CA: ca: ${home}/.config/clef/proxy/ca.crt: not a CERTIFICATE PEM block`,
      "",
    ]);
    const a = agent({ ready: 503 });
    const t0 = Date.now();
    const nr = await runCli(["check", "--config", cfg], { env: agentEnv(a) });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(nr.code).toBe(1);
    expect(nr.stderr).toBe(
      "clef-proxy check: agent: /v1/ready not reachable: context deadline exceeded (last error: status 503)\n",
    );
  });
});

describe("ca env", () => {
  test("writes ca-bundle.pem (0644: public roots + our CA, each once) and prints the exports", async () => {
    const home = tempDir("clef-home-");
    const r = await runCli(["ca", "env"], { env: { HOME: home } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const dir = join(home, ".config/clef/proxy");
    const bundle = join(dir, "ca-bundle.pem");
    expect(statSync(bundle).mode & 0o777).toBe(0o644);
    const text = readFileSync(bundle, "utf8");
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
    expect(blocks.length).toBeGreaterThan(100);
    expect(new Set(blocks).size).toBe(blocks.length);
    expect(text).toContain(readFileSync(join(dir, "ca.crt"), "utf8").trim());
    if (existsSync("/etc/ssl/certs/ca-certificates.crt")) {
      const sys = readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8").match(
        /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g,
      )!;
      expect(text).toContain(sys.at(-1)!);
    }
    const out = r.stdout.toString();
    for (const v of [
      "SSL_CERT_FILE",
      "CURL_CA_BUNDLE",
      "REQUESTS_CA_BUNDLE",
      "PIP_CERT",
      "GIT_SSL_CAINFO",
      "AWS_CA_BUNDLE",
      "DENO_CERT",
      "CARGO_HTTP_CAINFO",
    ])
      expect(out).toContain(`\nexport ${v}='${bundle}'\n`);
    expect(out).toContain(`\nexport NODE_EXTRA_CA_CERTS='${join(dir, "ca.crt")}'\n`);
    expect(out).toContain("EnvHttpProxyAgent");
    expect(out).toContain("NODE_USE_ENV_PROXY=1");
    // a second run rewrites the bundle in place
    expect((await runCli(["ca", "env"], { env: { HOME: home } })).code).toBe(0);
  });

  test("eval in sh, then curl and Python through the proxy trust it with only those variables", async () => {
    const pki = makeTestPki(["api.test"], ["127.0.0.2"]);
    const up = startUpstream({ hostname: "127.0.0.2", pki });
    upstreams.push(up);
    const a = agent({
      services: manifest([{ name: "gh", host: "api.test", auth: { scheme: "bearer", credential: "ns/KEY" } }]),
      secrets: { "ns/KEY": SECRET_A },
    });
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port } },
      env: { ...agentEnv(a, "tok-ca-env"), SSL_CERT_FILE: pki.caPath },
      hosts: { "api.test": "127.0.0.2" },
    });
    const proxyUrl = `http://u:tok-ca-env@127.0.0.1:${port}`;
    const url = `https://api.test:${up.port}`;
    const env = { PATH: process.env.PATH!, HOME: p.home, HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl };
    const sh = (cmd: string) => run(["sh", "-c", `eval "$("${OUR_BIN}" ca env)" && ${cmd}`], { env });
    // without the variables, curl refuses the proxy's leaf
    expect((await run(["curl", "-sS", "-o", "/dev/null", `${url}/no-trust`], { env })).code).toBe(60);
    const c = await sh(`curl -sS "${url}/curl"`);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout).headers).toContainEqual(["authorization", `Bearer ${SECRET_A}`]);
    if (!Bun.which("python3")) {
      console.warn("NOTICE: python3 not installed: the Python half of this test is skipped");
      p.kill("SIGTERM");
      return;
    }
    const py = await sh(
      `python3 -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' "${url}/python"`,
    );
    expect(py.stderr).toBe("");
    expect(JSON.parse(py.stdout).url).toBe("/python");
    const hasRequests = (await run(["python3", "-c", "import requests"], { env })).code === 0;
    if (hasRequests) {
      const rq = await sh(
        `python3 -c 'import requests,sys; print(requests.get(sys.argv[1]).status_code)' "${url}/requests"`,
      );
      expect(rq.stdout.trim()).toBe("200");
    } else console.warn("NOTICE: python3-requests not installed: REQUESTS_CA_BUNDLE not exercised");
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });

  test("quoting survives a path with a quote and a space; fish and powershell syntax", async () => {
    const xdg = join(tempDir("clef-xdg-"), "it's here");
    const r = await run(["sh", "-c", `eval "$("${OUR_BIN}" ca env --shell sh)" && printf %s "$SSL_CERT_FILE"`], {
      env: { PATH: process.env.PATH!, XDG_CONFIG_HOME: xdg },
    });
    expect(r.stdout).toBe(join(xdg, "clef/proxy/ca-bundle.pem"));
    const bundle = join(xdg, "clef/proxy/ca-bundle.pem");
    const fish = await runCli(["ca", "env", "--shell", "fish"], { env: { XDG_CONFIG_HOME: xdg } });
    expect(fish.stdout.toString()).toContain(`\nset -gx SSL_CERT_FILE '${bundle.replace("'", "\\'")}'\n`);
    const ps = await runCli(["ca", "env", "--shell=powershell"], { env: { XDG_CONFIG_HOME: xdg } });
    expect(ps.stdout.toString()).toContain(
      `\n$env:NODE_EXTRA_CA_CERTS = '${join(xdg, "clef/proxy/ca.crt").replace("'", "''")}'\n`,
    );
    if (Bun.which("fish")) {
      const f = await run(["fish", "-n", "-c", fish.stdout.toString()]);
      expect(f.code).toBe(0);
    }
    const bad = await runCli(["ca", "env", "--shell", "tcsh"]);
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({
      code: 1,
      stderr: 'clef-proxy ca env: unknown shell "tcsh" (want sh, fish, or powershell)\n',
    });
    const nohome = await runCli(["ca", "env"], { env: { HOME: undefined } });
    expect({ code: nohome.code, stderr: nohome.stderr }).toEqual({
      code: 5,
      stderr: "clef-proxy: resolve CA dir: resolve home dir: $HOME is not defined\n",
    });
  });
});

describe("diagnostics", () => {
  test("unknown config fields: one WARN each with the closest field, before start; exit code unchanged", async () => {
    const port = await freePort();
    const p = await startProxy({
      config: { listen: { port, prot: 1 }, zzqqxx: true, drain_timeout: "1s" },
      env: agentEnv(agent()),
    });
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    const lines = p.stderr.map((l) => l.replace(/^time=\S+ /, ""));
    expect(lines.slice(0, 4)).toEqual([
      'level=WARN msg="unknown config field ignored" field=listen.prot did_you_mean=listen.port',
      'level=WARN msg="unknown config field ignored" field=zzqqxx',
      'level=WARN msg="unknown config field ignored" field=drain_timeout did_you_mean=serve.drain_timeout',
      `level=INFO msg="clef-proxy starting" version=${VERSION} proxy_id=${lines[3]!.match(/proxy_id=(\S+)/)![1]} port=${port} lambda=false`,
    ]);
  });

  test("standalone: a missing secret is a WARN at startup per handle and per request; the 502 body is unchanged", async () => {
    const pki = makeTestPki(["a.test", "f.test"], ["127.0.0.2"]);
    const up = startUpstream({ hostname: "127.0.0.2", pki });
    upstreams.push(up);
    const port = await freePort();
    const { cfg, svc } = files(
      { listen: { port } },
      {
        schema_version: 1,
        services: [
          { name: "a", host: "a.test", auth: { scheme: "bearer", credential: "ns/A" } },
          { name: "f", host: "f.test", auth: { scheme: "bearer", credential: "ns/F" } },
          { name: "ok", host: "ok.test", auth: { scheme: "bearer", credential: "ns/OK" } },
        ],
        secrets: { "ns/A": "env:NOT_SET_A", "ns/F": "file:/nonexistent/f.secret", "ns/OK": "env:SECRET_B" },
      },
    );
    const p = await startProxy({
      args: ["serve", "--config", cfg, "--services", svc],
      env: { CLEF_PROXY_TOKEN: "tok-sa", SECRET_B, SSL_CERT_FILE: pki.caPath },
      hosts: { "a.test": "127.0.0.2", "f.test": "127.0.0.2" },
    });
    const warns = () =>
      p.stderr.filter((l) => l.includes('msg="standalone secret unavailable"')).map((l) => l.replace(/^time=\S+ /, ""));
    expect(warns()).toEqual([
      'level=WARN msg="standalone secret unavailable" handle=ns/A source=env:NOT_SET_A problem="is not set"',
      'level=WARN msg="standalone secret unavailable" handle=ns/F source=file:/nonexistent/f.secret problem="/nonexistent/f.secret: no such file or directory"',
    ]);
    const caPath = join(p.home, ".config/clef/proxy/ca.crt");
    const r = parseCurl((await curl(port, "tok-sa", caPath, `https://a.test:${up.port}/x`)).stdout);
    expect(r.status).toBe(502);
    expect(r.body).toBe('{"error":"clef-proxy: credential ns/A not found"}\n');
    await p.waitForStderr(/credential not found/);
    expect(warns().length).toBe(3);
    expect(warns()[2]).toBe(warns()[0]!);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr.join("\n") + p.stdout.join("\n")).not.toContain(SECRET_B);
  });

  test("a client that does not trust the proxy's CA: one WARN naming the host and the fix, once per host and minute", async () => {
    const port = await freePort();
    const { cfg, svc } = files(
      { listen: { port } },
      {
        schema_version: 1,
        services: [{ name: "a", host: "a.test", auth: { scheme: "bearer", credential: "ns/OK" } }],
        secrets: { "ns/OK": "env:SECRET_B" },
      },
    );
    const p = await startProxy({
      args: ["serve", "--config", cfg, "--services", svc],
      env: { CLEF_PROXY_TOKEN: "tok-hs", SECRET_B },
    });
    // curl without the proxy's CA: it refuses our leaf, three times over
    for (let i = 0; i < 3; i++) {
      const r = await run([
        "curl",
        "-sS",
        "--max-time",
        "5",
        "--proxy",
        `http://u:tok-hs@127.0.0.1:${port}`,
        "https://a.test/x",
      ]);
      expect(r.code).not.toBe(0);
    }
    await p.waitForStderr(/msg="TLS handshake with client failed"/);
    await Bun.sleep(200);
    const lines = p.stderr.filter((l) => l.includes('msg="TLS handshake with client failed"'));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain("host=a.test");
    expect(lines[0]).toContain("clef-proxy ca env");
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr.join("\n")).not.toContain(SECRET_B);
  });

  test("agent mode: one INFO 'waiting for agent' when the first /v1/ready poll fails", async () => {
    const a = agent({ ready: (n) => new Response("no", { status: n <= 3 ? 503 : 200 }) });
    const port = await freePort();
    const p = await startProxy({ config: { listen: { port } }, env: agentEnv(a) });
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    const lines = p.stderr.map((l) => l.replace(/^time=\S+ /, ""));
    expect(lines.filter((l) => l.includes("waiting for agent"))).toEqual([
      `level=INFO msg="waiting for agent" url=${a.url}/v1/ready`,
    ]);
    expect(lines.indexOf('level=INFO msg="agent ready"')).toBeGreaterThan(
      lines.findIndex((l) => l.includes("waiting for agent")),
    );
    // a password in CLEF_PROXY_AGENT_URL is not logged
    const b = agent({ ready: (n) => new Response("no", { status: n === 1 ? 503 : 200 }) });
    const withUser = b.url.replace("http://", "http://user:pw-in-url-55@");
    const r = await startProxy({
      config: { listen: { port: await freePort() } },
      env: { ...agentEnv(b), CLEF_PROXY_AGENT_URL: withUser },
    });
    r.kill("SIGTERM");
    await r.exited;
    expect(r.stderr.find((l) => l.includes("waiting for agent"))).toEndWith(`url=${b.url}/v1/ready`);
    expect(r.stderr.join("\n")).not.toContain("pw-in-url-55");
    // ready at once: no such line
    const q = await startProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(agent()) });
    q.kill("SIGTERM");
    await q.exited;
    expect(q.stderr.some((l) => l.includes("waiting for agent"))).toBe(false);
  });

  test("exit 4 for an unset agent variable: the reference's ERROR line, then a hint about --services", async () => {
    for (const [env, err] of [
      [{ CLEF_PROXY_AGENT_URL: undefined }, "agent: CLEF_PROXY_AGENT_URL is not set"],
      [{ CLEF_PROXY_AGENT_TOKEN: "" }, "agent: CLEF_PROXY_AGENT_TOKEN is not set"],
    ] as const) {
      const p = spawnProxy({ config: { listen: { port: await freePort() } }, env: { ...agentEnv(agent()), ...env } });
      expect(await p.exited).toBe(4);
      await Bun.sleep(20);
      const lines = p.stderr.map((l) => l.replace(/^time=\S+ /, ""));
      expect(lines.slice(-2)).toEqual([
        `level=ERROR msg="agent client init" err="${err}"`,
        'level=INFO msg="no agent configured: to run without one (standalone mode), pass --services <file>" usage="clef-proxy serve --config <path> --services <file>"',
      ]);
    }
    const bad = spawnProxy({ config: {}, env: { ...agentEnv(agent()), CLEF_PROXY_AGENT_URL: "ftp://x" } });
    expect(await bad.exited).toBe(4);
    await Bun.sleep(20);
    expect(bad.stderr.at(-1)).toContain('msg="agent client init"');
  });
});

// Phase 2 policy end to end through the compiled binary (shared/PHASE2.md §1.3, §6 F4, §7 F5, §8 F6,
// §10 F8): wildcard precedence, host lists, basic auth with real `git clone`/`git push`, templates,
// blocked hosts and CIDRs, invalid hosts, required_features, and no secret anywhere.
//
// Names resolve to loopback only inside the proxy (private /etc/hosts, test/helpers/proxy.ts);
// clients reach them through the proxy. The git upstream is test/helpers/git.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Agent, agentEnv, manifest, startAgent } from "./helpers/agent.ts";
import { connectRequest, curl, parseCurl, rawExchange, run } from "./helpers/clients.ts";
import { GIT_USER, type GitServer, git, gitEnv, SEED_FILE, SEED_TEXT, startGitServer } from "./helpers/git.ts";
import { freePort, type ProxyProcess, startProxy, spawnProxy, tempDir } from "./helpers/proxy.ts";
import { makeTestPki, type TestPki } from "./helpers/tls.ts";
import { startUpstream, type Upstream } from "./helpers/upstream.ts";

const TOKEN = "workload-token-phase2";
const SECRETS: Record<string, string> = {
  "gh/token": "ghs_gitTOKEN_0123456789",
  "gh/wrong": "ghs_WRONG_token_999",
  "ns/API": "api-secret-AAA",
  "ns/GH": "gh-wild-secret-BBB",
  "acme/account": "acct-777",
  "acme/key": "key-KKK",
  "acme/secret": "sec{{key}}ret-SSS", // a template reference inside a secret arrives literally
  "acme/user": "user-UUU",
  "acme/crlf": "bad\r\nInjected: 1",
  "ns/MULTI": "multi-secret-MMM",
  "ns/BLOCKED": "blocked-secret-never-fetched",
  "ns/CIDR": "cidr-secret-never-fetched",
};

const NAMES = [
  "api.github.test",
  "uploads.github.test",
  "status.github.test",
  "github.test",
  "git.test",
  "gitbad.test",
  "tpl.test",
  "tplb.test",
  "crlf.test",
  "conflict.test",
  "multi1.test",
  "multi2.test",
  "x.multi.test",
  "other.test",
  "x.paste.test",
  "cidr.test",
];

const bearer = (name: string, host: string, credential: string, extra: Record<string, unknown> = {}) => ({
  name,
  host,
  ...extra,
  auth: { scheme: "bearer", credential },
});

const SERVICES = [
  bearer("gh-api", "api.github.test", "ns/API"),
  bearer("gh", "*.github.test", "ns/GH"),
  { name: "git", host: "git.test", auth: { scheme: "basic", username: GIT_USER, credential: "gh/token" } },
  { name: "gitbad", host: "gitbad.test", auth: { scheme: "basic", username: GIT_USER, credential: "gh/wrong" } },
  {
    name: "tpl",
    host: "tpl.test",
    auth: {
      scheme: "template",
      credential: "acme/account",
      credentials: { key: "acme/key", secret: "acme/secret" },
      inject: [
        { type: "header", name: "X-Acme-Sig", value: "sig={{secret}}" },
        { type: "query", name: "account", value: "{{credential}}" },
        { type: "bearer", value: "{{key}}" },
      ],
    },
  },
  {
    name: "tplb",
    host: "tplb.test",
    auth: {
      scheme: "template",
      credential: "acme/key",
      credentials: { user: "acme/user", secret: "acme/secret" },
      inject: [
        { type: "basic", username: "{{user}}", password: "{{secret}}" },
        { type: "header", name: "X-Token", value: "Token token={{credential}}" },
      ],
    },
  },
  {
    name: "tplcrlf",
    host: "crlf.test",
    auth: {
      scheme: "template",
      credential: "acme/crlf",
      inject: [{ type: "header", name: "X-A", value: "{{credential}}" }],
    },
  },
  {
    name: "conflict",
    host: "conflict.test",
    auth: {
      scheme: "template",
      credential: "acme/key",
      inject: [
        { type: "header", name: "Authorization", value: "Token {{credential}}" },
        { type: "bearer", value: "{{credential}}" },
      ],
    },
  },
  bearer("multi", "multi1.test", "ns/MULTI", { hosts: ["multi2.test", "*.multi.test"] }),
  bearer("paste", "x.paste.test", "ns/BLOCKED"),
  bearer("cidr", "cidr.test", "ns/CIDR"),
];
const CONFLICT_PROBLEM = 'auth.inject[1]: header "Authorization" is also written by auth.inject[0]';

let pki: TestPki;
let up: Upstream;
let gitSrv: GitServer;
let agent: Agent;
let proxy: ProxyProcess;
let port: number;
let caPath: string;
/** Everything the proxy itself answered (not the echo's bodies, which mirror the injected request). */
const proxyAnswers: string[] = [];
const clientOutput: string[] = [];

// Upstreams on 127.0.0.3: a name mapped to 127.0.0.1 in /etc/hosts also resolves to ::1 here.
const UP_IP = "127.0.0.3";
const hosts: Record<string, string> = Object.fromEntries(NAMES.map((n) => [n, UP_IP]));
hosts["cidr.test"] = "127.0.0.5";

beforeAll(async () => {
  pki = makeTestPki(NAMES, [UP_IP]);
  up = startUpstream({ hostname: UP_IP, pki });
  gitSrv = await startGitServer({ pki, token: SECRETS["gh/token"]!, hostname: UP_IP });
  agent = startAgent({
    services: manifest(SERVICES, ["status.github.test"], {
      blocked_hosts: ["*.paste.test"],
      blocked_cidrs: ["127.0.0.5/32"],
      required_features: [
        "auth_basic",
        "auth_template",
        "blocked_cidrs",
        "blocked_hosts",
        "multi_host",
        "wildcard_hosts",
      ],
    }),
    secrets: SECRETS,
  });
  port = await freePort();
  proxy = await startProxy({
    config: { listen: { port }, metadata: { proxy_id: "phase2" } },
    env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath },
    hosts,
  });
  caPath = join(proxy.home, ".config/clef/proxy/ca.crt");
}, 60_000);

afterAll(async () => {
  proxy?.kill("SIGKILL");
  await proxy?.exited;
  agent?.stop();
  up?.stop();
  gitSrv?.stop();
});

async function get(host: string, path: string, extra: string[] = []) {
  const r = await curl(port, TOKEN, caPath, `https://${host}:${up.port}${path}`, extra);
  clientOutput.push(r.stderr);
  const p = parseCurl(r.stdout);
  const seen = up.seen.find((s) => s.url.split("?")[0] === path.split("?")[0]);
  if (!seen) proxyAnswers.push(r.stdout);
  return { ...p, seen, header: (n: string) => seen?.headers.filter(([k]) => k === n).map(([, v]) => v) ?? [] };
}

/** The audit line for `path` (waits for it). */
async function auditFor(path: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 150; i++) {
    const line = proxy.stdout.find((l) => l.includes(`"path":${JSON.stringify(path)}`));
    if (line) return JSON.parse(line);
    await Bun.sleep(20);
  }
  throw new Error(`no audit line for ${path}\n${proxy.stdout.join("\n")}`);
}

const secretCalls = (handle: string) => agent.calls.filter((c) => c.path === `/v1/secrets/${handle}`).length;

describe("the git helper on its own (no proxy)", () => {
  test("git clone and git push with the token in the URL; a wrong token fails", async () => {
    const env = gitEnv({ GIT_SSL_CAINFO: pki.caPath });
    const withCreds = (token: string) => gitSrv.url().replace("https://", `https://${GIT_USER}:${token}@`);
    const dir = join(tempDir("clef-git-direct-"), "clone");
    await git(["clone", "-q", withCreds(SECRETS["gh/token"]!), dir], { env });
    expect(readFileSync(join(dir, SEED_FILE), "utf8")).toBe(SEED_TEXT);
    writeFileSync(join(dir, "direct.txt"), "pushed directly\n");
    await git(["add", "direct.txt"], { cwd: dir, env });
    await git(["commit", "-q", "-m", "direct push"], { cwd: dir, env });
    await git(["push", "-q", "origin", "main"], { cwd: dir, env });
    const log = await git(["--git-dir", join(gitSrv.root, "repo.git"), "log", "--format=%s", "main"]);
    expect(log.stdout).toContain("direct push");

    const before = gitSrv.seen.length;
    const bad = await run(["git", "clone", "-q", withCreds("not-the-token"), join(tempDir(), "bad")], { env });
    expect(bad.code).toBe(128);
    expect(bad.stderr).toContain("Authentication failed");
    expect(gitSrv.seen.slice(before).every((s) => s.status === 401)).toBe(true);
  }, 60_000);
});

describe("scheme basic: git through the proxy (F6)", () => {
  const gitThroughProxy = () => gitEnv({ https_proxy: `http://x:${TOKEN}@127.0.0.1:${port}`, GIT_SSL_CAINFO: caPath });

  test("git clone and git push: credentials injected on the first request, no 401 round-trip", async () => {
    const env = gitThroughProxy();
    const before = gitSrv.seen.length;
    const dir = join(tempDir("clef-git-proxy-"), "clone");
    const url = `https://git.test:${gitSrv.port}/repo.git`; // no credentials in the URL
    const clone = await run(["git", "clone", "-q", url, dir], { env });
    clientOutput.push(clone.stderr);
    expect(clone.stderr).toBe("");
    expect(clone.code).toBe(0);
    expect(readFileSync(join(dir, SEED_FILE), "utf8")).toBe(SEED_TEXT);
    writeFileSync(join(dir, "via-proxy.txt"), "pushed through clef-proxy\n");
    await git(["add", "via-proxy.txt"], { cwd: dir, env });
    await git(["commit", "-q", "-m", "push through the proxy"], { cwd: dir, env });
    const push = await run(["git", "push", "-q", "origin", "main"], { cwd: dir, env });
    clientOutput.push(push.stderr);
    expect(push.code).toBe(0);
    const log = await git(["--git-dir", join(gitSrv.root, "repo.git"), "log", "--format=%s", "main"]);
    expect(log.stdout).toContain("push through the proxy");

    const seen = gitSrv.seen.slice(before);
    const expected = `Basic ${Buffer.from(`${GIT_USER}:${SECRETS["gh/token"]}`).toString("base64")}`;
    expect(seen.length).toBeGreaterThanOrEqual(4); // refs + upload-pack, refs + receive-pack
    expect(seen.map((s) => [s.authorization, s.status])).toEqual(seen.map(() => [expected, 200]));
    expect(seen.map((s) => s.url)).toContainEqual("/repo.git/git-receive-pack");
    // the workload never had the token
    expect(readFileSync(join(dir, ".git/config"), "utf8")).not.toContain(SECRETS["gh/token"]!);
    const a = await auditFor("/repo.git/git-receive-pack");
    expect(a).toMatchObject({
      status: "injected",
      service: "git",
      credential_handle: "gh/token",
      injection_point: "header:Authorization",
      upstream_status: 200,
    });
  }, 90_000);

  test("a wrong token at the agent: git gets the upstream's 401 and stops without prompting", async () => {
    const env = gitThroughProxy();
    const before = gitSrv.seen.length;
    const r = await run(["git", "clone", "-q", `https://gitbad.test:${gitSrv.port}/repo.git`, join(tempDir(), "x")], {
      env,
    });
    clientOutput.push(r.stderr);
    expect(r.code).toBe(128);
    expect(r.stderr).toMatch(/Authentication failed|could not read Username|terminal prompts disabled/);
    const seen = gitSrv.seen.slice(before);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]!.authorization).toBe(
      `Basic ${Buffer.from(`${GIT_USER}:${SECRETS["gh/wrong"]}`).toString("base64")}`,
    );
    expect(seen.every((s) => s.status === 401)).toBe(true);
  }, 60_000);
});

describe("scheme template: every entry type (F6)", () => {
  test("header, query and bearer; a secret containing {{key}} arrives literally", async () => {
    const r = await get("tpl.test", "/tpl?z=1&account=workload&a=2", ["-H", "Authorization: Bearer workload"]);
    expect(r.status).toBe(200);
    expect(r.header("x-acme-sig")).toEqual([`sig=${SECRETS["acme/secret"]}`]);
    expect(r.header("authorization")).toEqual([`Bearer ${SECRETS["acme/key"]}`]);
    expect(r.seen!.url).toBe(`/tpl?z=1&account=${SECRETS["acme/account"]}&a=2`);
  }, 30_000);
  test("basic and header entries", async () => {
    const r = await get("tplb.test", "/tplb");
    expect(r.status).toBe(200);
    const basic = Buffer.from(`${SECRETS["acme/user"]}:${SECRETS["acme/secret"]}`).toString("base64");
    expect(r.header("authorization")).toEqual([`Basic ${basic}`]);
    expect(r.header("x-token")).toEqual([`Token token=${SECRETS["acme/key"]}`]);
  }, 30_000);
  test("audit: credential_handle and injection_point of the first entry, the lists when several", async () => {
    await get("tpl.test", "/tpl-audit");
    expect(await auditFor("/tpl-audit")).toMatchObject({
      status: "injected",
      service: "tpl",
      credential_handle: "acme/account",
      injection_point: "header:X-Acme-Sig",
      credential_handles: ["acme/account", "acme/secret", "acme/key"],
      injection_points: ["header:X-Acme-Sig", "query:account", "header:Authorization"],
    });
  }, 30_000);
  test("a rendered value with CR/LF → 500 with the Phase 1 guard text, audit agent_error", async () => {
    const r = await get("crlf.test", "/crlf");
    expect(r.status).toBe(500);
    expect(r.body).toBe(
      '{"error":"clef-proxy: inject: credential value contains CR or LF (header injection guard)"}\n',
    );
    expect(r.seen).toBeUndefined();
    expect(await auditFor("/crlf")).toMatchObject({ status: "agent_error", service: "tplcrlf" });
  }, 30_000);
  test("two entries writing one header: WARN at start, 500 per request", async () => {
    expect(proxy.stderr.join("\n")).toContain(
      `level=WARN msg="service can never be served" service=conflict host=conflict.test problem=${JSON.stringify(CONFLICT_PROBLEM)}`,
    );
    const r = await get("conflict.test", "/conflict");
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ error: `clef-proxy: inject: ${CONFLICT_PROBLEM}` });
    expect(await auditFor("/conflict")).toMatchObject({ status: "agent_error", service: "conflict" });
  }, 30_000);
});

describe("wildcards and host lists (F4, F5)", () => {
  test("the F4 example: api → gh-api, uploads → gh, status → passthrough, apex → 403", async () => {
    const api = await get("api.github.test", "/f4-api");
    expect(api.header("authorization")).toEqual([`Bearer ${SECRETS["ns/API"]}`]);
    const uploads = await get("uploads.github.test", "/f4-uploads");
    expect(uploads.header("authorization")).toEqual([`Bearer ${SECRETS["ns/GH"]}`]);
    const status = await get("status.github.test", "/f4-status", ["-H", "Authorization: Bearer mine"]);
    expect(status.status).toBe(200);
    expect(status.header("authorization")).toEqual(["Bearer mine"]);
    const apex = await get("github.test", "/f4-apex");
    expect(apex.status).toBe(403);
    expect(apex.body).toBe(
      `{"error":"host \\"github.test:${up.port}\\" not in clef-proxy manifest","host":"github.test:${up.port}"}\n`,
    );
    expect(await auditFor("/f4-api")).toMatchObject({ status: "injected", service: "gh-api" });
    expect(await auditFor("/f4-status")).toMatchObject({ status: "passthrough" });
    const deny = await auditFor("/f4-apex");
    expect(deny).toMatchObject({ status: "denied" });
    expect(Object.keys(deny)).not.toContain("reason"); // a Phase 1 denial keeps its Phase 1 line
  }, 30_000);
  test("audit host_pattern only when a wildcard decided", async () => {
    await get("uploads.github.test", "/f4-pattern");
    expect(await auditFor("/f4-pattern")).toMatchObject({
      status: "injected",
      service: "gh",
      host_pattern: "*.github.test",
    });
    expect(Object.keys(await auditFor("/f4-api"))).not.toContain("host_pattern");
  }, 30_000);
  test("a service with host ∪ hosts: each injects, another name is denied", async () => {
    for (const h of ["multi1.test", "multi2.test", "x.multi.test"]) {
      const r = await get(h, `/multi-${h}`);
      expect(r.header("authorization")).toEqual([`Bearer ${SECRETS["ns/MULTI"]}`]);
    }
    expect((await get("other.test", "/multi-other")).status).toBe(403);
  }, 30_000);
});

describe("blocked hosts and CIDRs (F8)", () => {
  test("a blocked wildcard host that is also an exact service → 403 blocked_host; no secret fetched", async () => {
    const r = await get("x.paste.test", "/blocked");
    expect(r.status).toBe(403);
    expect(r.headers["x-clef-proxy-error"]).toBe("blocked_host");
    const host = `x.paste.test:${up.port}`;
    expect(r.body).toBe(
      `{"error":"host ${JSON.stringify(host).replaceAll('"', '\\"')} is blocked by clef-proxy policy","host":"${host}","reason":"blocked_host"}\n`,
    );
    expect(r.seen).toBeUndefined();
    expect(secretCalls("ns/BLOCKED")).toBe(0);
    expect(await auditFor("/blocked")).toMatchObject({
      status: "denied",
      reason: "blocked_host",
      host_pattern: "*.paste.test",
    });
  }, 30_000);
  test("a name resolving into a blocked CIDR → 502 before any secret fetch", async () => {
    const r = await get("cidr.test", "/cidr");
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body)).toEqual({
      detail: "netguard: address blocked by policy: cidr.test resolves to 127.0.0.5 (blocked_cidrs 127.0.0.5/32)",
      error: "clef-proxy: upstream unreachable",
    });
    expect(secretCalls("ns/CIDR")).toBe(0);
    expect(await auditFor("/cidr")).toMatchObject({
      status: "tls_error",
      upstream_status: 502,
      reason: "blocked_cidr",
    });
  }, 30_000);
});

describe("invalid host names (F4)", () => {
  test("an absolute-form target with `*` → 400 invalid_host, nothing resolved or fetched", async () => {
    const target = `*.github.test:${up.port}`;
    const raw = await rawExchange(
      port,
      `GET http://${target}/star HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\nProxy-Authorization: Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}\r\n\r\n`,
    );
    proxyAnswers.push(raw);
    expect(raw).toStartWith("HTTP/1.1 400");
    expect(raw).toContain("X-Clef-Proxy-Error: invalid_host");
    expect(raw.slice(raw.indexOf("\r\n\r\n") + 4)).toBe(
      `{"error":"clef-proxy: invalid host name","host":"${target}","reason":"invalid_host"}\n`,
    );
  }, 30_000);
  test("CONNECT to a `*` name → 400, no tunnel (no wildcard leaf is ever minted)", async () => {
    const raw = await rawExchange(port, connectRequest("*.github.test:443", TOKEN));
    proxyAnswers.push(raw);
    expect(raw).toStartWith("HTTP/1.1 400");
  }, 30_000);
});

describe("startup", () => {
  const startWith = async (extra: Record<string, unknown>) => {
    const a = startAgent({ services: manifest([bearer("a", "a.test", "ns/API")], [], extra), secrets: SECRETS });
    const p = spawnProxy({ config: { listen: { port: await freePort() } }, env: agentEnv(a, TOKEN) });
    const code = await p.exited;
    a.stop();
    return { code, stderr: p.stderr.join("\n") };
  };
  test("required_features naming an unknown feature → exit 1 with the message", async () => {
    const r = await startWith({ required_features: ["wildcard_hosts", "nope"] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'level=ERROR msg="fetch /v1/services" err="agent: /v1/services requires feature \\"nope\\" that this clef-proxy does not support"',
    );
  }, 30_000);
  test("an invalid blocked_hosts entry rejects the manifest → exit 1", async () => {
    const r = await startWith({ blocked_hosts: ["*.com"] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'err="agent: /v1/services rejected: blocked_hosts[0] \\"*.com\\" is not a valid host pattern: a wildcard needs at least two labels after \\"*.\\""',
    );
  }, 30_000);
});

test("no secret in any log line, audit line, proxy answer or client error", async () => {
  await Bun.sleep(300); // the last audit lines
  const text = [...proxy.stdout, ...proxy.stderr, ...proxyAnswers, ...clientOutput].join("\n");
  for (const [handle, value] of Object.entries(SECRETS)) {
    expect({ handle, leaked: text.includes(value) }).toEqual({ handle, leaked: false });
    const b64 = Buffer.from(`${GIT_USER}:${value}`).toString("base64");
    expect({ handle, leaked: text.includes(b64) }).toEqual({ handle, leaked: false });
  }
});

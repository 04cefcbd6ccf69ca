// One Phase 2 manifest on the Go reference (0.0.4) and on ours (shared/PHASE2.md §1.1, §20): the
// reference's old-proxy behaviour is pinned (what an agent gets when it sends Phase 2 fields to an
// old binary: wildcard literal → denied, `hosts` ignored → only `host` injects, basic/template →
// 500 unsupported scheme, blocked_hosts/blocked_cidrs/required_features ignored) beside ours. The
// Phase 1 parts of the same manifest must behave identically on both.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type AgentScript, agentEnv, manifest, startAgent } from "../helpers/agent.ts";
import { connectRequest, parseCurl, proxyUrl, rawExchange, run } from "../helpers/clients.ts";
import { freePort, spawnProxy } from "../helpers/proxy.ts";
import { makeTestPki, type TestPki } from "../helpers/tls.ts";
import { startUpstream, type Upstream } from "../helpers/upstream.ts";
import {
  collect,
  echoBody,
  HAVE_REF,
  mark,
  type Observation,
  respHeaders,
  SIDES,
  type Side,
  settle,
  startWorld,
  stopWorld,
  type World,
} from "./harness.ts";

const SECRETS: Record<string, string> = {
  "p2/API": "p2-api-secret",
  "p2/WILD": "p2-wild-secret",
  "p2/MULTI": "p2-multi-secret",
  "p2/GIT": "p2-git-token",
  "p2/KEY": "p2-template-key",
  "p2/SIG": "p2-template-sig",
  "p2/BLK": "p2-blocked-secret",
  "p2/CIDR": "p2-cidr-secret",
};
const ALL_SECRETS = Object.values(SECRETS);

const NAMES = [
  "api.p2.test",
  "a.wild.p2.test",
  "multi1.p2.test",
  "multi2.p2.test",
  "git.p2.test",
  "tpl.p2.test",
  "blk.p2.test",
];
const CIDR_NAME = "cidr.p2.test";

const SERVICES = [
  { name: "api", host: "api.p2.test", auth: { scheme: "bearer", credential: "p2/API" } },
  { name: "wild", host: "*.wild.p2.test", auth: { scheme: "bearer", credential: "p2/WILD" } },
  {
    name: "multi",
    host: "multi1.p2.test",
    hosts: ["multi2.p2.test"],
    auth: { scheme: "bearer", credential: "p2/MULTI" },
  },
  { name: "git", host: "git.p2.test", auth: { scheme: "basic", username: "x-access-token", credential: "p2/GIT" } },
  {
    name: "tpl",
    host: "tpl.p2.test",
    auth: {
      scheme: "template",
      credential: "p2/KEY",
      credentials: { sig: "p2/SIG" },
      inject: [
        { type: "header", name: "X-Key", value: "Token {{credential}}" },
        { type: "query", name: "sig", value: "{{sig}}" },
      ],
    },
  },
  { name: "blk", host: "blk.p2.test", auth: { scheme: "bearer", credential: "p2/BLK" } },
  { name: "cidr", host: CIDR_NAME, auth: { scheme: "bearer", credential: "p2/CIDR" } },
];

let pki: TestPki;
let up: Upstream; // HTTPS echo on 127.0.0.2
let cidrUp: Upstream; // HTTPS echo on 127.0.0.4 (blocked by blocked_cidrs)
const worlds: Partial<Record<Side, World>> = {};

function agentScript(extra: Record<string, unknown> = {}): AgentScript {
  return {
    services: manifest(SERVICES, [], {
      blocked_hosts: ["blk.p2.test"],
      blocked_cidrs: ["127.0.0.4/32"],
      required_features: ["auth_basic", "wildcard_hosts"],
      ...extra,
    }),
    secrets: SECRETS,
  };
}

beforeAll(async () => {
  pki = makeTestPki([...NAMES, CIDR_NAME], ["127.0.0.2", "127.0.0.4"]);
  up = startUpstream({ hostname: "127.0.0.2", pki });
  cidrUp = startUpstream({ hostname: "127.0.0.4", pki });
  const hosts: Record<string, string> = Object.fromEntries(NAMES.map((n) => [n, "127.0.0.2"]));
  hosts[CIDR_NAME] = "127.0.0.4";
  for (const { side, bin } of SIDES)
    worlds[side] = await startWorld(side, bin, { agent: agentScript(), env: { SSL_CERT_FILE: pki.caPath }, hosts });
}, 60_000);

afterAll(async () => {
  for (const w of Object.values(worlds)) await stopWorld(w);
  up?.stop();
  cidrUp?.stop();
});

if (!HAVE_REF) console.warn("NOTICE: phase2.compat runs our side only (the reference's behaviour is not pinned)");

async function curlThrough(w: World, host: string, path: string, port = up.port): Promise<Observation> {
  const ups = [up, cidrUp];
  const m = mark(w, ups);
  const r = await run([
    "curl",
    "-sS",
    "-i",
    "--max-time",
    "10",
    "--proxy",
    proxyUrl(w.port, w.token),
    "--cacert",
    w.caPath,
    `https://${host}:${port}${path}`,
  ]);
  const p = parseCurl(r.stdout);
  await settle(w, m, 1);
  const body = echoBody(p.body);
  const headers = respHeaders(p.headers);
  if (body === "<echo>") delete headers["content-length"]; // the echo's length follows the request's headers
  return {
    status: r.code === 0 ? p.status : 0,
    headers,
    body,
    ...collect(w, ups, m),
  };
}

const hdr = (o: Observation, name: string) => o.upstream[0]?.headers.filter(([k]) => k === name).map(([, v]) => v);
const json = (o: Observation) => JSON.parse(o.body ?? "null");

function noSecrets(o: Observation): void {
  const text = JSON.stringify({ body: o.body, headers: o.headers, audit: o.audit, log: o.log });
  for (const s of ALL_SECRETS) expect(text.includes(s)).toBe(false);
}

/** Run `action` on each side; `ref` pins the reference (old proxy), `ours` the Phase 2 behaviour. */
function sideBySide(
  name: string,
  action: (w: World) => Promise<Observation>,
  expectations: { ref: (o: Observation) => void; ours: (o: Observation) => void },
): void {
  test(name, async () => {
    const obs: Partial<Record<Side, Observation>> = {};
    for (const { side } of SIDES) obs[side] = await action(worlds[side]!);
    expectations.ours(obs.ours!);
    noSecrets(obs.ours!);
    if (obs.ref) expectations.ref(obs.ref);
  }, 30_000);
}

describe("Phase 1 parts of a Phase 2 manifest", () => {
  test("an exact bearer service answers identically on both (status, upstream request, audit, log)", async () => {
    const obs: Partial<Record<Side, Observation>> = {};
    for (const { side } of SIDES) obs[side] = await curlThrough(worlds[side]!, "api.p2.test", "/same");
    const ours = obs.ours!;
    expect(ours.status).toBe(200);
    expect(hdr(ours, "authorization")).toEqual([`Bearer ${SECRETS["p2/API"]}`]);
    expect(ours.audit).toEqual([expect.objectContaining({ status: "injected", service: "api" })]);
    noSecrets(ours);
    if (obs.ref) {
      const { agent: _a, ...o } = ours;
      const { agent: _b, ...r } = obs.ref;
      expect(o).toEqual(r);
    }
  }, 30_000);
});

describe("old proxy beside ours", () => {
  sideBySide(
    "a wildcard service: the reference reads `*.x` literally (403); ours injects",
    (w) => curlThrough(w, "a.wild.p2.test", "/wild"),
    {
      ref: (o) => {
        expect(o.status).toBe(403);
        expect(o.upstream).toEqual([]);
        expect(o.audit).toEqual([expect.objectContaining({ status: "denied" })]);
      },
      ours: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["p2/WILD"]}`]);
        expect(o.audit).toEqual([expect.objectContaining({ status: "injected", service: "wild" })]);
      },
    },
  );

  test("CONNECT to a literal `*` name: the reference opens the tunnel (and mints a wildcard leaf); ours refuses with 400", async () => {
    const out: Partial<Record<Side, string>> = {};
    for (const { side } of SIDES) {
      const w = worlds[side]!;
      out[side] = await rawExchange(w.port, connectRequest(`*.wild.p2.test:${up.port}`, w.token), 1500);
    }
    expect(out.ours).toStartWith("HTTP/1.1 400");
    if (out.ref !== undefined) expect(out.ref).toStartWith("HTTP/1.0 200");
  }, 30_000);

  sideBySide(
    "services[].hosts: the reference serves `host` only; ours every listed host",
    (w) => curlThrough(w, "multi2.p2.test", "/multi2"),
    {
      ref: (o) => {
        expect(o.status).toBe(403);
        expect(o.upstream).toEqual([]);
      },
      ours: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["p2/MULTI"]}`]);
      },
    },
  );

  sideBySide("services[].hosts: `host` itself injects on both", (w) => curlThrough(w, "multi1.p2.test", "/multi1"), {
    ref: (o) => expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["p2/MULTI"]}`]),
    ours: (o) => expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["p2/MULTI"]}`]),
  });

  sideBySide(
    "scheme basic: the reference answers 500 unsupported scheme; ours injects Basic",
    (w) => curlThrough(w, "git.p2.test", "/basic"),
    {
      ref: (o) => {
        expect(o.status).toBe(500);
        expect(json(o)).toEqual({ error: 'clef-proxy: inject: unsupported scheme "basic"' });
        expect(o.audit).toEqual([expect.objectContaining({ status: "agent_error" })]);
      },
      ours: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "authorization")).toEqual([
          `Basic ${Buffer.from(`x-access-token:${SECRETS["p2/GIT"]}`).toString("base64")}`,
        ]);
        expect(o.audit).toEqual([
          expect.objectContaining({ status: "injected", service: "git", injection_point: "header:Authorization" }),
        ]);
      },
    },
  );

  sideBySide(
    "scheme template: the reference answers 500 unsupported scheme; ours injects every entry",
    (w) => curlThrough(w, "tpl.p2.test", "/tpl?a=1"),
    {
      ref: (o) => {
        expect(o.status).toBe(500);
        expect(json(o)).toEqual({ error: 'clef-proxy: inject: unsupported scheme "template"' });
      },
      ours: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "x-key")).toEqual([`Token ${SECRETS["p2/KEY"]}`]);
        expect(o.upstream[0]!.url).toBe(`/tpl?a=1&sig=${SECRETS["p2/SIG"]}`);
      },
    },
  );

  sideBySide(
    "blocked_hosts: the reference ignores it (injects); ours refuses 403 blocked_host without a secret fetch",
    (w) => curlThrough(w, "blk.p2.test", "/blk"),
    {
      ref: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["p2/BLK"]}`]);
      },
      ours: (o) => {
        expect(o.status).toBe(403);
        expect(json(o)).toMatchObject({ reason: "blocked_host" });
        expect(o.headers?.["x-clef-proxy-error"]).toBe("blocked_host");
        expect(o.upstream).toEqual([]);
        expect(o.agent).toEqual([]);
        expect(o.audit).toEqual([expect.objectContaining({ status: "denied", reason: "blocked_host" })]);
      },
    },
  );

  sideBySide(
    "blocked_cidrs: the reference ignores it (fail-open, injects); ours 502 before any secret fetch",
    (w) => curlThrough(w, CIDR_NAME, "/cidr", cidrUp.port),
    {
      ref: (o) => {
        expect(o.status).toBe(200);
        expect(hdr(o, "authorization")).toEqual([`Bearer ${SECRETS["p2/CIDR"]}`]);
      },
      ours: (o) => {
        expect(o.status).toBe(502);
        expect(json(o)).toEqual({
          detail: `netguard: address blocked by policy: ${CIDR_NAME} resolves to 127.0.0.4 (blocked_cidrs 127.0.0.4/32)`,
          error: "clef-proxy: upstream unreachable",
        });
        expect(o.upstream).toEqual([]);
        expect(o.agent).toEqual([]);
      },
    },
  );
});

describe("required_features at startup", () => {
  test("a feature this binary lacks: the reference ignores the field and serves; ours exits 1 with the message", async () => {
    const out: Partial<Record<Side, { code: number | null; stderr: string }>> = {};
    for (const { side, bin } of SIDES) {
      const a = startAgent(agentScript({ required_features: ["wildcard_hosts", "nope"] }));
      const p = spawnProxy({ bin, config: { listen: { port: await freePort() } }, env: agentEnv(a) });
      const code = await Promise.race([p.exited, p.waitForStderr(/msg=listening /, 15_000).then(() => null)]);
      p.kill("SIGKILL");
      await p.exited;
      a.stop();
      out[side] = { code, stderr: p.stderr.join("\n") };
    }
    expect(out.ours!.code).toBe(1);
    expect(out.ours!.stderr).toContain(
      'level=ERROR msg="fetch /v1/services" err="agent: /v1/services requires feature \\"nope\\" that this clef-proxy does not support"',
    );
    if (out.ref) {
      expect(out.ref.code).toBeNull(); // it started listening
      expect(out.ref.stderr).toContain('msg="services fetched"');
    }
  }, 40_000);
});

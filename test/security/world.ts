// The shared world of the security suite (test/security/):
//
//   workload (the test) ──▶ clef-proxy (compiled binary, private /etc/hosts) ──▶ recorders
//                                      └──▶ scripted agent (secrets S1, S2, V)
//
//   api.test   bearer ns/S1          → recorder "api"  on 127.0.0.1 (TLS and cleartext ports)
//   q.test     api_key_query key ns/S2 → the same recorder (127.0.0.1)
//   vault.test bearer ns/V           → the same recorder; used only by attacks (the agent must never be asked for V)
//   pass.test  passthrough           → recorder "pass" on 127.0.0.3 (same port numbers when free)
//   evil.test  not in the manifest   → "attacker" on 127.0.0.2 (same port numbers, plus 443 and 80
//                                       when they can be bound); reachable by name and as a literal IP
//
// and the Phase 2 policy (shared/PHASE2.md F4–F8), each name placed so that a wrong decision is seen:
//
//   *.w.test + w2.test  template: header X-Api-Key "k={{credential}}" (ns/W1) and query sig (ns/W2)
//                       a.w.test, b.c.w.test, w2.test → the api recorder (127.0.0.1)
//   e.w.test    exact service, bearer ns/E (beats the wildcard)  → 127.0.0.1
//   b.test      basic x-access-token:ns/B                        → 127.0.0.1
//   *.p.w.test  passthrough (the longer wildcard beats *.w.test) → a.p.w.test on the pass recorder
//   w.test      the wildcard's apex: not in the manifest         → the attacker (127.0.0.2)
//   *.x.w.test, blk.test  blocked_hosts                          → z.x.w.test, blk.test at the attacker
//   127.0.0.4/32  blocked_cidrs: c4.w.test (a service name)      → the attacker also listens there
//
// Every upstream uses one test certificate valid for all the names and the three addresses, so a
// proxy that can be steered to the attacker completes TLS there and hands over what it carries.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Agent, agentEnv, manifest, startAgent } from "../helpers/agent.ts";
import { freePort, type ProxyProcess, type SpawnOptions, spawnProxy, startProxy } from "../helpers/proxy.ts";
import { makeTestPki, type TestPki } from "../helpers/tls.ts";
import { portOf, type Recorder, startRecorder } from "./recorder.ts";
import { secretForms } from "./wire.ts";

export const TOKEN = "sec-workload-token-5c1e";
export const S1 = "S1-bearer-7f3a9c2e5d81";
export const S2 = "S2+q/s3cr3t=v&1~key";
export const V = "V-vault-secret-0b7d4e99";
export const W1 = "W1-tmpl-hdr-3e8a61c07b55";
export const W2 = "W2:tmpl/q=s&g+9d";
export const E = "E-exact-4c2b7a19f0d3";
export const B = "B-basic-6a0f2d8e1c47";
export const SECRET_FORMS = [S1, S2, V, W1, W2, E, B].flatMap((s) => secretForms(s));

export const NAMES = [
  "api.test",
  "q.test",
  "vault.test",
  "pass.test",
  "evil.test",
  "a.w.test",
  "b.c.w.test",
  "w2.test",
  "e.w.test",
  "b.test",
  "a.p.w.test",
  "w.test",
  "z.x.w.test",
  "blk.test",
  "c4.w.test",
];

export interface World {
  pki: TestPki;
  agent: Agent;
  proxy: ProxyProcess;
  /** The proxy's listen port. */
  port: number;
  /** The proxy's CA certificate (PEM), for TLS tunnels. */
  proxyCa: string;
  proxyCaPath: string;
  api: Recorder;
  pass: Recorder;
  attacker: Recorder;
  tlsPort: number;
  plainPort: number;
  passTlsPort: number;
  passPlainPort: number;
  /** Audit lines so far, parsed. */
  audit(): Array<Record<string, unknown>>;
  /** Agent calls for a credential handle ("ns/V"). */
  secretCalls(handle: string): number;
  /** Another proxy on the same peers (own port, HOME and CA); stop it yourself. */
  extraProxy(opts?: ExtraProxyOptions): Promise<ExtraProxy>;
  stop(): Promise<void>;
}

export interface ExtraProxyOptions {
  config?: Record<string, unknown>;
  spawn?: Partial<SpawnOptions>;
  /** Do not wait for the `listening` line. */
  noWait?: boolean;
}

export interface ExtraProxy {
  proxy: ProxyProcess;
  port: number;
  proxyCa: string;
  audit(): Array<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after 8 s; resolves with the exit code. */
  stop(): Promise<number>;
}

export interface WorldOptions {
  /** Fixed upstream ports (inside a private network namespace); default ephemeral. */
  tlsPort?: number;
  plainPort?: number;
  /** Also bind the attacker on 443/80 (default true). */
  attackerWellKnown?: boolean;
  config?: Record<string, unknown>;
  /** Extra manifest entries. */
  services?: unknown[];
  passthrough?: string[];
  /** Override spawn options (bin/args/env additions). */
  spawn?: Partial<SpawnOptions>;
  /** Raise RLIMIT_NOFILE of this process (inherited by the proxy) to this value. */
  nofile?: number;
  /** Start the proxy (default true). */
  startProxy?: boolean;
}

/** Raise this process's open-file limit (the proxy inherits it). Root can raise the hard limit. */
export function raiseNofile(n: number): void {
  spawnSync("prlimit", ["--pid", String(process.pid), `--nofile=${n}:${n}`], { stdio: "ignore" });
}

export function worldServices(): unknown[] {
  return [
    { name: "api", host: "api.test", auth: { scheme: "bearer", credential: "ns/S1" } },
    { name: "q", host: "q.test", auth: { scheme: "api_key_query", query: "key", credential: "ns/S2" } },
    { name: "vault", host: "vault.test", auth: { scheme: "bearer", credential: "ns/V" } },
    {
      name: "gh",
      host: "*.w.test",
      hosts: ["w2.test"],
      auth: {
        scheme: "template",
        credential: "ns/W1",
        credentials: { sig: "ns/W2" },
        inject: [
          { type: "header", name: "X-Api-Key", value: "k={{credential}}" },
          { type: "query", name: "sig", value: "{{sig}}" },
        ],
      },
    },
    { name: "exact", host: "e.w.test", auth: { scheme: "bearer", credential: "ns/E" } },
    { name: "git", host: "b.test", auth: { scheme: "basic", username: "x-access-token", credential: "ns/B" } },
  ];
}

/** Passthrough hosts and the Phase 2 block lists of the world's manifest. */
export const WORLD_PASSTHROUGH = ["pass.test", "*.p.w.test"];
export const WORLD_BLOCKS = { blocked_hosts: ["*.x.w.test", "blk.test"], blocked_cidrs: ["127.0.0.4/32"] };

export function worldHosts(): Record<string, string> {
  return {
    "api.test": "127.0.0.1",
    "q.test": "127.0.0.1",
    "vault.test": "127.0.0.1",
    "pass.test": "127.0.0.3",
    "evil.test": "127.0.0.2",
    "a.w.test": "127.0.0.1",
    "b.c.w.test": "127.0.0.1",
    "w2.test": "127.0.0.1",
    "e.w.test": "127.0.0.1",
    "b.test": "127.0.0.1",
    "a.p.w.test": "127.0.0.3",
    "w.test": "127.0.0.2",
    "z.x.w.test": "127.0.0.2",
    "blk.test": "127.0.0.2",
    "c4.w.test": "127.0.0.4",
  };
}

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  if (opts.nofile) raiseNofile(opts.nofile);
  const pki = makeTestPki(NAMES, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]);
  const api = startRecorder({
    name: "api",
    hostname: "127.0.0.1",
    // glibc answers a name mapped to 127.0.0.1 in /etc/hosts with ::1 as well, and the proxy may
    // dial that first: the recorder listens there too.
    alsoOn: ["::1"],
    pki,
    tlsPorts: [opts.tlsPort ?? 0],
    plainPorts: [opts.plainPort ?? 0],
  });
  const tlsPort = portOf(api, true);
  const plainPort = portOf(api, false);
  // The pass.test and attacker listeners take the same port numbers when they can (a confused
  // proxy that dials the wrong address with the right port then reaches a listener that records it).
  let passRec = startRecorder({
    name: "pass",
    hostname: "127.0.0.3",
    pki,
    tlsPorts: [tlsPort],
    plainPorts: [plainPort],
  });
  if (!passRec.ports.has(tlsPort) || !passRec.ports.has(plainPort)) {
    passRec.stop();
    passRec = startRecorder({ name: "pass", hostname: "127.0.0.3", pki, tlsPorts: [0], plainPorts: [0] });
  }
  const wellKnown = opts.attackerWellKnown !== false;
  const attacker = startRecorder({
    name: "attacker",
    hostname: "127.0.0.2",
    alsoOn: ["127.0.0.4"],
    pki,
    tlsPorts: [tlsPort, ...(wellKnown ? [443] : [])],
    plainPorts: [plainPort, ...(wellKnown ? [80] : [])],
  });
  const agent = startAgent({
    services: manifest(
      [...worldServices(), ...(opts.services ?? [])],
      [...WORLD_PASSTHROUGH, ...(opts.passthrough ?? [])],
      WORLD_BLOCKS,
    ),
    secrets: { "ns/S1": S1, "ns/S2": S2, "ns/V": V, "ns/W1": W1, "ns/W2": W2, "ns/E": E, "ns/B": B },
  });
  const extraProxy = async (o: ExtraProxyOptions = {}): Promise<ExtraProxy> => {
    const port = await freePort();
    const spawnOpts: SpawnOptions = {
      config: { listen: { port }, metadata: { proxy_id: "sec" }, ...(o.config ?? {}) },
      hosts: worldHosts(),
      ...o.spawn,
      env: { ...agentEnv(agent, TOKEN), SSL_CERT_FILE: pki.caPath, ...(o.spawn?.env ?? {}) },
    };
    const proxy = o.noWait ? spawnProxy(spawnOpts) : await startProxy(spawnOpts);
    const caPath = join(proxy.home, ".config/clef/proxy/ca.crt");
    return {
      proxy,
      port,
      proxyCa: o.noWait ? "" : readFileSync(caPath, "utf8"),
      audit: () => auditOf(proxy),
      stop: () => stopProxy(proxy),
    };
  };
  let main: ExtraProxy | undefined;
  if (opts.startProxy !== false) main = await extraProxy({ config: opts.config, spawn: opts.spawn });
  const proxy = main?.proxy;
  const port = main?.port ?? 0;
  const proxyCaPath = proxy ? join(proxy.home, ".config/clef/proxy/ca.crt") : "";
  return {
    pki,
    agent,
    proxy: proxy as ProxyProcess,
    port,
    proxyCa: proxy ? readFileSync(proxyCaPath, "utf8") : "",
    proxyCaPath,
    api,
    pass: passRec,
    attacker,
    tlsPort,
    plainPort,
    passTlsPort: portOf(passRec, true),
    passPlainPort: portOf(passRec, false),
    audit: () => auditOf(proxy),
    secretCalls: (handle) => agent.calls.filter((c) => c.path === `/v1/secrets/${handle}`).length,
    extraProxy,
    async stop() {
      if (proxy) await stopProxy(proxy);
      api.stop();
      passRec.stop();
      attacker.stop();
      agent.stop();
    },
  };
}

/** SIGTERM, SIGKILL after `graceMs`; the exit code. */
export async function stopProxy(proxy: ProxyProcess, graceMs = 8000): Promise<number> {
  if (proxy.proc.exitCode !== null || proxy.proc.signalCode) return proxy.exited;
  proxy.kill("SIGTERM");
  const t = setTimeout(() => proxy.kill("SIGKILL"), graceMs);
  const code = await proxy.exited;
  clearTimeout(t);
  return code;
}

export function auditOf(proxy: ProxyProcess | undefined): Array<Record<string, unknown>> {
  if (!proxy) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const l of proxy.stdout) {
    if (!l.startsWith("{")) continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      out.push({ unparsable: l });
    }
  }
  return out;
}

/** utime + stime of a process in seconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields after the comm: index 0 is field 3 (state); utime is field 14, stime field 15
  const ticks = Number(f[11]) + Number(f[12]);
  return ticks / 100; // CLK_TCK is 100 on Linux
}

/** Resident set size of a process in MiB. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Poll until `check` returns a value (not undefined) or the time is up (then the last value or undefined). */
export async function waitFor<T>(
  check: () => T | undefined | false,
  timeoutMs: number,
  stepMs = 25,
): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() >= end) return undefined;
    await Bun.sleep(stepMs);
  }
}

// The differential harness: the same scenario against the reference binary (the oracle) and ours,
// with the same scripted agent, upstreams and clients, then a comparison of what matters.
//
// A "world" is one proxy process (ours or the reference) with its own scripted agent, sharing the
// upstreams of the suite. Scenarios run one after the other, reference first, so every observation
// (upstream requests, audit lines, agent calls, stderr messages) can be sliced per scenario.
//
// Observations are normalised before comparing: times, request ids, latencies, ports of the proxy
// and temp paths are replaced by placeholders; the upstream's view drops what each side's HTTP
// client adds by itself (Connection, Accept-Encoding unless the workload sent one, User-Agent of
// the Go client). Where ours deliberately differs (docs/CONTRACT.md "Deliberate improvements"), the
// scenario asserts BOTH sides: the reference still shows the documented weakness, and ours the fix.
import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { agentEnv, startAgent, type Agent, type AgentScript } from "../helpers/agent.ts";
import { OUR_BIN, REF_BIN } from "../helpers/bin.ts";
import { connectRequest } from "../helpers/clients.ts";
import { freePort, startProxy, type ProxyProcess, type SpawnOptions } from "../helpers/proxy.ts";
import { type Seen, type Upstream, wsServerText } from "../helpers/upstream.ts";

export const HAVE_REF = REF_BIN !== null;
if (!HAVE_REF) {
  console.warn(
    "NOTICE: reference binary (@clef-sh/proxy-linux-x64) not installed or not runnable here: compat scenarios are SKIPPED",
  );
}

export type Side = "ref" | "ours";
export const SIDES: Array<{ side: Side; bin: string }> = [
  ...(REF_BIN ? [{ side: "ref" as const, bin: REF_BIN }] : []),
  { side: "ours", bin: OUR_BIN },
];

export interface World {
  side: Side;
  bin: string;
  agent: Agent;
  proxy: ProxyProcess;
  port: number;
  caPath: string;
  token: string;
}

export interface WorldSpec {
  agent: AgentScript;
  config?: Record<string, unknown>;
  env?: Record<string, string | undefined>;
  hosts?: Record<string, string>;
  token?: string;
}

export async function startWorld(side: Side, bin: string, spec: WorldSpec): Promise<World> {
  const agent = startAgent(spec.agent);
  const port = await freePort();
  const token = spec.token ?? "workload-token-xyz";
  const opts: SpawnOptions = {
    bin,
    config: { listen: { port }, metadata: { proxy_id: "compat" }, ...(spec.config ?? {}) },
    env: { ...agentEnv(agent, token), ...(spec.env ?? {}) },
    hosts: spec.hosts,
  };
  const proxy = await startProxy(opts);
  return { side, bin, agent, proxy, port, token, caPath: join(proxy.home, ".config/clef/proxy/ca.crt") };
}

export async function stopWorld(w: World | undefined): Promise<void> {
  if (!w) return;
  w.proxy.kill("SIGKILL");
  await w.proxy.exited;
  w.agent.stop();
}

// ---------------------------------------------------------------------------------------------
// Observation of one client action

export interface Observation {
  /** What the client saw (status 0 = no HTTP response: connection closed). */
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Requests the upstreams received during the action, normalised. */
  upstream: Array<{
    method: string;
    url: string;
    headers: Array<[string, string]>;
    bodyLength: number;
    bodySha256: string;
  }>;
  /** Audit lines written for the action, normalised. */
  audit: Array<Record<string, unknown>>;
  /** Secret fetches made to the agent during the action (paths). */
  agent: string[];
  /** `msg` values of the stderr lines logged during the action. */
  log: string[];
  /** Raw extras a scenario wants compared. */
  extra?: unknown;
}

export interface Marks {
  upstream: number[];
  audit: number;
  agent: number;
  stderr: number;
}

export function mark(w: World, ups: Upstream[]): Marks {
  return {
    upstream: ups.map((u) => u.seen.length),
    audit: auditLines(w).length,
    agent: w.agent.calls.length,
    stderr: w.proxy.stderr.length,
  };
}

export function auditLines(w: World): string[] {
  return w.proxy.stdout.filter((l) => l.startsWith("{"));
}

/** Headers the two sides' own HTTP clients add or shape differently; not part of the comparison. */
const CLIENT_OWN = new Set(["connection", "accept-encoding"]);

export function normaliseSeen(s: Seen, keepAcceptEncoding = false): Observation["upstream"][number] {
  const headers = s.headers
    .filter(([k]) => !CLIENT_OWN.has(k) || (keepAcceptEncoding && k === "accept-encoding"))
    .filter(([k, v]) => !(k === "user-agent" && v === "Go-http-client/1.1"))
    // fetch adds `Accept: */*` when the workload sent no Accept (it cannot be removed); curl sends
    // the same value itself. Documented in docs/CONTRACT.md.
    .filter(([k, v]) => !(k === "accept" && v === "*/*"))
    .map(([k, v]): [string, string] => [
      k,
      k === "x-clef-request-id"
        ? /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(v)
          ? "<uuid4>"
          : `<bad uuid ${v}>`
        : v,
    ])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return { method: s.method, url: s.url, headers, bodyLength: s.bodyLength, bodySha256: s.bodySha256 };
}

export function normaliseAudit(line: string): Record<string, unknown> {
  const o = JSON.parse(line) as Record<string, unknown>;
  // key order is part of the schema: keep it visible in the comparison
  const keys = Object.keys(o).join(",");
  const out: Record<string, unknown> = { _keys: keys };
  for (const [k, v] of Object.entries(o)) {
    if (k === "ts") out[k] = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/.test(String(v)) ? "<ts>" : `<bad ts ${v}>`;
    else if (k === "request_id") out[k] = /^[0-9a-f-]{36}$/.test(String(v)) ? "<uuid>" : `<bad id ${v}>`;
    else if (k === "latency_ms") out[k] = Number.isInteger(v) && (v as number) >= 0 ? "<ms>" : `<bad latency ${v}>`;
    else out[k] = v;
  }
  return out;
}

export function logMsg(line: string): string | null {
  const m = line.match(/ msg=("(?:[^"\\]|\\.)*"|\S+)/);
  if (m) return m[1]!.startsWith('"') ? JSON.parse(m[1]!) : m[1]!;
  const g = line.match(/\] (WARN|INFO): ([^:]+)/); // goproxy's std-log lines
  return g ? `goproxy ${g[1]}: ${g[2]}` : null;
}

/**
 * Wait until the action's audit lines have arrived: `expectAudit` lines (the reference flushes
 * on a ≈250 ms ticker), or, when 0 are expected, long enough that a late line would have shown.
 */
export async function settle(w: World, m: Marks, expectAudit: number): Promise<void> {
  const deadline = Date.now() + (expectAudit > 0 ? 3000 : 400);
  while (Date.now() < deadline) {
    if (expectAudit > 0 && auditLines(w).length - m.audit >= expectAudit) break;
    await Bun.sleep(20);
  }
  await Bun.sleep(expectAudit > 0 ? 30 : 0);
}

export function collect(
  w: World,
  ups: Upstream[],
  m: Marks,
  opts: { keepAcceptEncoding?: boolean } = {},
): Omit<Observation, "status"> {
  const upstream: Observation["upstream"] = [];
  ups.forEach((u, i) => {
    for (const s of u.seen.slice(m.upstream[i])) upstream.push(normaliseSeen(s, opts.keepAcceptEncoding));
  });
  return {
    upstream,
    audit: auditLines(w).slice(m.audit).map(normaliseAudit),
    agent: w.agent.calls
      .slice(m.agent)
      .filter((c) => c.path.includes("/v1/secrets/"))
      .map((c) => c.path),
    log: w.proxy.stderr
      .slice(m.stderr)
      .map(logMsg)
      .filter((x): x is string => x !== null),
  };
}

/** Parse a raw HTTP/1.x response (the first one in `raw`, after any 1xx). */
export function parseRaw(raw: string): {
  status: number;
  statusLine: string;
  headers: Array<[string, string]>;
  body: string;
  interim: string[];
} {
  const interim: string[] = [];
  let rest = raw;
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) return { status: 0, statusLine: "", headers: [], body: rest, interim };
    const head = rest.slice(0, end).split("\r\n");
    const statusLine = head[0]!;
    const status = Number(statusLine.split(" ")[1]);
    rest = rest.slice(end + 4);
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(statusLine);
      continue;
    }
    const headers = head.slice(1).map((l): [string, string] => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1).trim()];
    });
    return { status, statusLine, headers, body: rest, interim };
  }
}

/** Response headers worth comparing: names as written, minus Date (time). */
export function respHeaders(headers: Array<[string, string]> | Record<string, string>): Record<string, string> {
  const entries = Array.isArray(headers) ? headers : Object.entries(headers);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (k.toLowerCase() === "date") continue;
    out[k] = out[k] !== undefined ? `${out[k]}, ${v}` : v;
  }
  return out;
}

/** The echo upstream's JSON answer mirrors its request (already compared as `upstream`). */
export function echoBody(body: string): string {
  try {
    const o = JSON.parse(body);
    if (o && typeof o === "object" && "bodySha256" in o) return "<echo>";
  } catch {}
  return body;
}

/** Replace a world's variable parts (its proxy port, temp HOME) in free text. */
export function normaliseText(w: World | { port: number; home: string }, text: string): string {
  const port = "port" in w ? w.port : 0;
  const home = "proxy" in w ? (w as World).proxy.home : (w as { home: string }).home;
  return text
    .replaceAll(home, "<HOME>")
    .replaceAll(`:${port}`, ":<PORT>")
    .replace(/time=\S+/g, "time=<T>")
    .replace(/\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\d+\]/g, "<T> [n]");
}

/**
 * CONNECT + TLS, send the upgrade request, and once a 101 head arrived, send `frame`; collect until
 * an echo frame, or 3 s. `answered`: a non-101 answer it accepts as whole ends the exchange at once.
 */
export function wsExchange(
  w: World,
  target: string,
  request: string,
  frame: Uint8Array,
  answered?: (got: string) => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(w.port, "127.0.0.1", () => raw.write(connectRequest(target, w.token)));
    let connectHead = "";
    const onConnect = (c: Buffer) => {
      connectHead += c.toString("latin1");
      if (!connectHead.includes("\r\n\r\n")) return;
      raw.off("data", onConnect);
      let got = "";
      let sent = false;
      const t = tlsConnect(
        {
          socket: raw,
          ca: readFileSync(w.caPath, "utf8"),
          servername: target.replace(/:\d+$/, ""),
          ALPNProtocols: ["http/1.1"],
        },
        () => t.write(request),
      );
      const done = () => resolve(got);
      t.on("data", (d: Buffer) => {
        got += d.toString("latin1");
        if (!sent && got.includes("\r\n\r\n")) {
          sent = true;
          if (got.startsWith("HTTP/1.1 101")) t.write(frame);
          else if (answered?.(got)) t.destroy();
        }
        if (wsServerText(got) !== null) t.destroy();
      });
      t.on("close", done);
      t.on("error", done);
      setTimeout(() => t.destroy(), 3000);
    };
    raw.on("data", onConnect);
    raw.on("error", reject);
  });
}

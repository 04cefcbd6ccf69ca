// The generative fuzzer's runner. Runs INSIDE a private network namespace with only loopback (see
// fuzz.test.ts, which starts it with `unshare -n -m`): mutated requests can name any host or
// address, and whatever the proxy makes of them must not leave the machine.
//
//   bun test/security/fuzz-run.ts        (env: CLEF_FUZZ_COUNT, CLEF_FUZZ_SEED, CLEF_FUZZ_REPORT,
//                                          CLEF_FUZZ_CONCURRENCY, CLEF_FUZZ_BUDGET_S, CLEF_PROXY_BIN)
//
// World: world.ts with fixed upstream ports (8443 TLS, 8080 cleartext) on 127.0.0.1 (api.test,
// q.test, vault.test), 127.0.0.3 (pass.test) and the attacker on 127.0.0.2 (also 443 and 80).
// Cases run in batches; after each batch the invariants are checked:
//   1. nothing reached 127.0.0.2;
//   2. no secret (any encoding) reached pass.test, nor 127.0.0.1 for a request whose Host (and SNI)
//      is not the secret's own service host;
//   3. no secret in any response the fuzzer got, in proxy stderr or in audit lines;
//   4. the proxy still serves a known-good request;
//   5. every request the proxy accepted has exactly one audit line (by X-Clef-Request-Id where the
//      upstream saw it, else by count per batch).
// A violation is attributed to its case (from the response that carried the recorder's id) or,
// failing that, found by bisecting the batch; then the case's bytes are minimised while the
// violation reproduces. The report (JSON) goes to CLEF_FUZZ_REPORT.
import { writeFileSync } from "node:fs";
import { canonicalHost } from "../../src/match/index.ts";
import { estimatedRequests, type FuzzCase, generateCases } from "./fuzz-gen.ts";
import { type RecRequest, requestBytes } from "./recorder.ts";
import { containsAny, escapeBytes, exchange, hasResponses, header, parseResponses, secretForms } from "./wire.ts";
import { S1, S2, startWorld, TOKEN, V, type World } from "./world.ts";

const COUNT = Number(process.env.CLEF_FUZZ_COUNT ?? 10_000);
const SEED = Number(process.env.CLEF_FUZZ_SEED ?? 20261130);
const CONCURRENCY = Number(process.env.CLEF_FUZZ_CONCURRENCY ?? 48);
const BUDGET_MS = Number(process.env.CLEF_FUZZ_BUDGET_S ?? 240) * 1000;
const REPORT = process.env.CLEF_FUZZ_REPORT ?? "";
const BATCH = 250;
const PORTS = { tls: 8443, plain: 8080 };

const SECRETS: Array<{ name: string; forms: Buffer[]; host: string }> = [
  { name: "S1", forms: secretForms(S1), host: "api.test" },
  { name: "S2", forms: secretForms(S2), host: "q.test" },
  { name: "V", forms: secretForms(V), host: "vault.test" },
];
const ALL_FORMS = SECRETS.flatMap((s) => s.forms);

export interface Violation {
  invariant: 1 | 2 | 3 | 4 | 5;
  message: string;
  /** Case ids the violation was attributed to (empty: the batch as a whole). */
  cases: number[];
}

interface CaseOutcome {
  c: FuzzCase;
  tunnelUp: boolean;
  data: Buffer;
  closedByPeer: boolean;
  timedOut: boolean;
}

const log = (s: string) => process.stderr.write(`[fuzz] ${s}\n`);

async function runCase(w: World, c: FuzzCase): Promise<CaseOutcome> {
  const expect = estimatedRequests(c.data);
  const r = await exchange({
    port: w.port,
    mode: c.mode,
    connect: c.connect,
    connectTarget: c.connectTarget,
    servername: c.servername,
    ca: w.proxyCa,
    data: Buffer.from(c.data, "latin1"),
    until: hasResponses(expect),
    quietMs: 300,
    noResponseMs: 1500,
    timeoutMs: 4000,
  });
  // a refused CONNECT's answer counts as the answer
  const data = r.tunnelUp ? r.data : Buffer.concat([Buffer.from(r.connectAnswer, "latin1"), r.data]);
  return { c, tunnelUp: r.tunnelUp, data, closedByPeer: r.closedByPeer, timedOut: r.timedOut };
}

interface Mark {
  api: number;
  pass: number;
  attackerConns: number;
  attackerReqs: number;
  stdout: number;
  stderr: number;
}

function mark(w: World): Mark {
  return {
    api: w.api.requests.length,
    pass: w.pass.requests.length,
    attackerConns: w.attacker.conns.length,
    attackerReqs: w.attacker.requests.length,
    stdout: w.proxy.stdout.length,
    stderr: w.proxy.stderr.length,
  };
}

/** Wait until audit lines and recorded requests stop changing (bounded). */
async function settle(w: World): Promise<void> {
  let prev = "";
  let stable = 0;
  const end = Date.now() + 3000;
  await Bun.sleep(100);
  while (Date.now() < end) {
    const now = `${w.proxy.stdout.length}/${w.api.requests.length}/${w.pass.requests.length}/${w.attacker.conns.length}`;
    if (now === prev) {
      if (++stable >= 4) return;
    } else stable = 0;
    prev = now;
    await Bun.sleep(75);
  }
}

/** Classify one response: does the proxy owe an audit line for it? */
function owesLine(res: ReturnType<typeof parseResponses>[number]): "upstream" | "proxy" | "none" | "interim" {
  if (res.status >= 100 && res.status < 200) return "interim";
  if (header(res, "x-rec-who")) return "upstream";
  if (res.status === 407) return "none";
  if (res.version === "HTTP/1.0" && res.status === 200 && res.headers.length === 0) return "none"; // CONNECT established
  const ct = header(res, "content-type") ?? "";
  if (ct.startsWith("text/plain")) return "none"; // Go-style parse errors, the origin-form 500
  if (res.status === 503 && header(res, "x-clef-proxy-error") === "audit_backpressure") return "none";
  return "proxy";
}

async function runBatch(w: World, cases: FuzzCase[], concurrency = CONCURRENCY): Promise<Violation[]> {
  const m = mark(w);
  const outcomes: CaseOutcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, cases.length) }, async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        outcomes.push(await runCase(w, c));
      }
    }),
  );
  await settle(w);
  return check(w, m, outcomes);
}

/** Running totals of the audit accounting (reported, so a reader can see the invariant had teeth). */
export const accounting = { upstreamSeen: 0, proxyAnswers: 0, noLineAnswers: 0, auditLines: 0, unanswered: 0 };

function check(w: World, m: Mark, outcomes: CaseOutcome[]): Violation[] {
  const v: Violation[] = [];
  const byRecId = new Map<string, number>(); // X-Rec-Id → case id
  let owedProxyLines = 0;
  let slack = 0;
  const respIds = new Set<string>();
  for (const o of outcomes) {
    const responses = parseResponses(o.data);
    let finals = 0;
    for (const res of responses) {
      if (!res.complete && res.status === 0) continue;
      const kind = owesLine(res);
      if (kind === "interim") continue;
      finals++;
      if (kind === "upstream") {
        const id = header(res, "x-rec-id") ?? "";
        if (id) {
          byRecId.set(id, o.c.id);
          respIds.add(id);
        }
        if (header(res, "x-rec-who") === "attacker")
          v.push({ invariant: 1, message: `the attacker answered the fuzzer (request id ${id})`, cases: [o.c.id] });
      } else if (kind === "proxy") owedProxyLines++;
      else accounting.noLineAnswers++;
    }
    slack += Math.max(0, estimatedRequests(o.c.data) - finals);
    const leak = containsAny(o.data, ALL_FORMS);
    if (leak) v.push({ invariant: 3, message: `secret form ${escapeBytes(leak)} in a response`, cases: [o.c.id] });
  }
  const caseOf = (id: string | undefined) => (id && byRecId.has(id) ? [byRecId.get(id)!] : []);

  // 1. the attacker (new connections, or requests on a connection the proxy's pool kept open)
  const attackerConns = w.attacker.conns.slice(m.attackerConns);
  const attackerReqs = w.attacker.requests.slice(m.attackerReqs);
  if (attackerConns.length || attackerReqs.length) {
    const cases = [...new Set(attackerReqs.flatMap((q) => caseOf(q.requestId)))];
    if (!v.some((x) => x.invariant === 1))
      v.push({
        invariant: 1,
        message: `${attackerConns.length} new connection(s) and ${attackerReqs.length} request(s) reached 127.0.0.2`,
        cases,
      });
    const carrying = attackerReqs.filter((q) => containsAny(requestBytes(q), ALL_FORMS));
    if (carrying.length)
      v.push({
        invariant: 2,
        message: `${carrying.length} request(s) carrying a secret reached the attacker (127.0.0.2)`,
        cases: [...new Set(carrying.flatMap((q) => caseOf(q.requestId)))],
      });
  }

  // 2. secrets only at their own host
  const apiReqs = w.api.requests.slice(m.api);
  const passReqs = w.pass.requests.slice(m.pass);
  const seen: RecRequest[] = [...apiReqs, ...passReqs, ...attackerReqs];
  for (const q of passReqs) {
    const f = containsAny(requestBytes(q), ALL_FORMS);
    if (f)
      v.push({ invariant: 2, message: `secret form ${escapeBytes(f)} reached pass.test`, cases: caseOf(q.requestId) });
  }
  for (const q of apiReqs) {
    const bytes = requestBytes(q);
    for (const s of SECRETS) {
      if (!containsAny(bytes, s.forms)) continue;
      const host = canonicalHost(q.host ?? "");
      const sni = q.conn.sni ? canonicalHost(q.conn.sni) : host;
      if (host !== s.host || sni !== s.host)
        v.push({
          invariant: 2,
          message: `${s.name} reached 127.0.0.1 in a request for Host ${JSON.stringify(q.host)} (SNI ${JSON.stringify(q.conn.sni ?? "")})`,
          cases: caseOf(q.requestId),
        });
    }
  }

  // 3. secrets in stderr and audit lines
  const auditRaw = w.proxy.stdout.slice(m.stdout);
  for (const l of [...w.proxy.stderr.slice(m.stderr), ...auditRaw]) {
    const f = containsAny(l, ALL_FORMS);
    if (f) {
      const id = /request_id[=":]+([0-9a-f-]{36})/.exec(l)?.[1];
      v.push({
        invariant: 3,
        message: `secret form ${escapeBytes(f)} in a log/audit line: ${l.slice(0, 160)}`,
        cases: caseOf(id),
      });
    }
  }

  // 5. audit accounting
  const lines: Array<Record<string, unknown>> = [];
  for (const l of auditRaw) {
    if (!l.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(l));
    } catch {
      v.push({ invariant: 5, message: `unparsable audit line ${escapeBytes(l.slice(0, 120))}`, cases: [] });
    }
  }
  const perId = new Map<string, number>();
  for (const l of lines) perId.set(String(l.request_id), (perId.get(String(l.request_id)) ?? 0) + 1);
  const upstreamIds = new Set(seen.map((q) => q.requestId).filter((x): x is string => !!x));
  for (const id of new Set([...upstreamIds, ...respIds])) {
    const n = perId.get(id) ?? 0;
    if (n !== 1)
      v.push({ invariant: 5, message: `request ${id} seen upstream has ${n} audit lines`, cases: caseOf(id) });
  }
  for (const [id, n] of perId)
    if (n > 1 && !upstreamIds.has(id))
      v.push({ invariant: 5, message: `request ${id} has ${n} audit lines`, cases: [] });
  const unmatched = lines.filter((l) => !respIds.has(String(l.request_id))).length;
  accounting.upstreamSeen += upstreamIds.size;
  accounting.proxyAnswers += owedProxyLines;
  accounting.auditLines += lines.length;
  accounting.unanswered += slack;
  const unansweredUpstream = [...upstreamIds].filter((id) => !respIds.has(id)).length;
  if (unmatched < owedProxyLines)
    v.push({
      invariant: 5,
      message: `${owedProxyLines} proxy answers that owe an audit line, but only ${unmatched} lines`,
      cases: [],
    });
  if (unmatched > owedProxyLines + slack + unansweredUpstream)
    v.push({
      invariant: 5,
      message: `${unmatched} audit lines for ${owedProxyLines} proxy answers (+${slack} unanswered requests, +${unansweredUpstream} unanswered upstream requests)`,
      cases: [],
    });
  return v;
}

async function knownGood(w: World): Promise<boolean> {
  const r = await exchange({
    port: w.port,
    mode: "tls-tunnel",
    token: TOKEN,
    connectTarget: `api.test:${PORTS.tls}`,
    ca: w.proxyCa,
    data: `GET /fz-known-good HTTP/1.1\r\nHost: api.test:${PORTS.tls}\r\n\r\n`,
    until: hasResponses(1),
    timeoutMs: 5000,
  });
  const [res] = parseResponses(r.data);
  return res?.status === 200 && header(res, "x-rec-who") === "api";
}

/** Does `c` alone reproduce a violation of `inv`? */
async function reproduces(w: World, c: FuzzCase, inv: number): Promise<boolean> {
  const v = await runBatch(w, [c], 1);
  return v.some((x) => x.invariant === inv);
}

/** Find a case in `cases` that reproduces `inv` on its own, by bisection (bounded). */
async function bisect(w: World, cases: FuzzCase[], inv: number, deadline: number): Promise<FuzzCase | null> {
  let pool = cases;
  while (pool.length > 1 && Date.now() < deadline) {
    const half = pool.slice(0, Math.ceil(pool.length / 2));
    const rest = pool.slice(half.length);
    if ((await runBatch(w, half)).some((x) => x.invariant === inv)) pool = half;
    else if ((await runBatch(w, rest)).some((x) => x.invariant === inv)) pool = rest;
    else return null;
  }
  if (pool.length === 1 && (await reproduces(w, pool[0]!, inv))) return pool[0]!;
  return null;
}

/** Shrink a case's bytes while it still reproduces `inv` (header lines first, then byte ranges). */
async function minimise(w: World, c: FuzzCase, inv: number, deadline: number): Promise<FuzzCase> {
  let best = c;
  const attempt = async (data: string) => {
    if (Date.now() > deadline || data === best.data) return false;
    const cand = { ...best, data };
    if (await reproduces(w, cand, inv)) {
      best = cand;
      return true;
    }
    return false;
  };
  // drop whole lines
  for (let progress = true; progress && Date.now() < deadline; ) {
    progress = false;
    const lines = best.data.split("\r\n");
    for (let i = lines.length - 1; i >= 1; i--) {
      if (lines[i] === "") continue;
      const cand = [...lines.slice(0, i), ...lines.slice(i + 1)].join("\r\n");
      if (await attempt(cand)) {
        progress = true;
        break;
      }
    }
  }
  // drop byte ranges, halving the size
  for (let size = Math.floor(best.data.length / 2); size >= 1 && Date.now() < deadline; size = Math.floor(size / 2)) {
    for (let i = 0; i + size <= best.data.length && Date.now() < deadline; ) {
      if (!(await attempt(best.data.slice(0, i) + best.data.slice(i + size)))) i += size;
    }
  }
  return best;
}

function describeCase(c: FuzzCase): Record<string, unknown> {
  return {
    id: c.id,
    mode: c.mode,
    seed: c.seed,
    ops: c.ops,
    ...(c.connect ? { connect: escapeBytes(c.connect), servername: c.servername } : {}),
    data: escapeBytes(c.data),
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const w = await startWorld({ tlsPort: PORTS.tls, plainPort: PORTS.plain, nofile: 65536 });
  const cases = generateCases({ seed: SEED, count: COUNT, ports: PORTS, token: TOKEN });
  log(`seed ${SEED}, ${COUNT} cases, concurrency ${CONCURRENCY}, proxy on ${w.port}`);
  const counts: Record<string, number> = { "1": 0, "2": 0, "3": 0, "4": 0, "5": 0 };
  const samples: Array<Violation & { batch: number }> = [];
  const failedBatches: Array<{ batch: number; cases: FuzzCase[]; inv: number; v: Violation }> = [];
  let ran = 0;
  let stoppedEarly = "";
  const modes: Record<string, number> = {};
  for (let b = 0; b * BATCH < cases.length; b++) {
    if (Date.now() - t0 > BUDGET_MS) {
      stoppedEarly = `time budget of ${BUDGET_MS / 1000}s reached`;
      break;
    }
    const batch = cases.slice(b * BATCH, (b + 1) * BATCH);
    const v = await runBatch(w, batch);
    ran += batch.length;
    for (const c of batch) modes[c.mode] = (modes[c.mode] ?? 0) + 1;
    for (const x of v) {
      counts[String(x.invariant)]!++;
      if (samples.filter((s) => s.invariant === x.invariant).length < 5) samples.push({ ...x, batch: b });
      if (!failedBatches.some((f) => f.inv === x.invariant))
        failedBatches.push({ batch: b, cases: batch, inv: x.invariant, v: x });
    }
    if (!(await knownGood(w))) {
      counts["4"]!++;
      samples.push({
        invariant: 4,
        message: `the proxy did not serve a known-good request after batch ${b}`,
        cases: [],
        batch: b,
      });
      stoppedEarly = `invariant 4 after batch ${b}`;
      break;
    }
    await settle(w);
    if (b % 8 === 0) log(`batch ${b}: ${ran} cases, ${Date.now() - t0} ms, violations ${JSON.stringify(counts)}`);
  }
  const fuzzMs = Date.now() - t0;
  // reproducers: one minimised case per violated invariant (bounded in time)
  const reproducers: Array<Record<string, unknown>> = [];
  const minimiseUntil = Date.now() + Number(process.env.CLEF_FUZZ_MINIMISE_S ?? 45) * 1000;
  for (const f of failedBatches) {
    if (Date.now() > minimiseUntil || f.inv === 4) break;
    const perCase = Math.min(minimiseUntil, Date.now() + 20_000);
    let culprit: FuzzCase | null = null;
    for (const id of f.v.cases) {
      const c = f.cases.find((x) => x.id === id);
      if (c && (await reproduces(w, c, f.inv))) {
        culprit = c;
        break;
      }
    }
    culprit ??= await bisect(w, f.cases, f.inv, perCase);
    if (!culprit) {
      reproducers.push({ invariant: f.inv, message: f.v.message, reproducer: null, note: "not reproducible alone" });
      continue;
    }
    const small = await minimise(w, culprit, f.inv, perCase);
    reproducers.push({
      invariant: f.inv,
      message: f.v.message,
      original: describeCase(culprit),
      minimal: describeCase(small),
    });
  }
  const proxyAlive = w.proxy.proc.exitCode === null;
  await w.stop();
  const report = {
    seed: SEED,
    count: COUNT,
    ran,
    modes,
    fuzzMs,
    totalMs: Date.now() - t0,
    stoppedEarly,
    proxyAlive,
    violations: counts,
    accounting,
    samples,
    reproducers,
  };
  if (REPORT) writeFileSync(REPORT, JSON.stringify(report, null, 2));
  else console.log(JSON.stringify(report, null, 2));
  log(`done: ${ran} cases in ${fuzzMs} ms, violations ${JSON.stringify(counts)}`);
  process.exit(0);
}

await main();

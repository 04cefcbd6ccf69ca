// The generative fuzzer's runner. Runs INSIDE a private network namespace with only loopback (see
// fuzz.test.ts, which starts it with `unshare -n -m`): mutated requests can name any host or
// address, and whatever the proxy makes of them must not leave the machine.
//
//   bun test/security/fuzz-run.ts        (env: CLEF_FUZZ_COUNT, CLEF_FUZZ_SEED, CLEF_FUZZ_REPORT,
//                                          CLEF_FUZZ_CONCURRENCY, CLEF_FUZZ_BUDGET_S, CLEF_PROXY_BIN)
//
// World: world.ts with fixed upstream ports (8443 TLS, 8080 cleartext) on 127.0.0.1 (api.test,
// q.test, vault.test and the Phase 2 services: *.w.test template, e.w.test, b.test basic),
// 127.0.0.3 (pass.test, *.p.w.test) and the attacker on 127.0.0.2 (also 443 and 80; evil.test, the
// wildcard's apex w.test, the blocked names) and 127.0.0.4 (blocked_cidrs).
// Cases run in batches; after each batch the invariants are checked:
//   1. nothing reached 127.0.0.2 or 127.0.0.4;
//   2. no secret (any encoding) reached the passthrough recorder, nor 127.0.0.1 for a request whose
//      Host (and SNI) is not one its service may receive (fuzz-check.ts SECRETS);
//   3. no secret in any response the fuzzer got, in proxy stderr or in audit lines;
//   4. the proxy still serves a known-good request;
//   5. every request the proxy accepted has exactly one audit line (by X-Clef-Request-Id where the
//      upstream saw it, else by count per batch).
// A violation is attributed to its case (from the response that carried the recorder's id) or,
// failing that, found by bisecting the batch; then the case's bytes are minimised while the
// violation reproduces. The report (JSON) goes to CLEF_FUZZ_REPORT.
import { writeFileSync } from "node:fs";
import { accounting, type CaseOutcome, carried, check, mark, type Violation } from "./fuzz-check.ts";
import { estimatedRequests, type FuzzCase, generateCases } from "./fuzz-gen.ts";
import { escapeBytes, exchange, hasResponses, header, parseResponses } from "./wire.ts";
import { startWorld, TOKEN, type World } from "./world.ts";

const log = (s: string) => process.stderr.write(`[fuzz] ${s}\n`);

const COUNT = Number(process.env.CLEF_FUZZ_COUNT ?? 10_000);
const SEED = Number(process.env.CLEF_FUZZ_SEED ?? 20261130);
const CONCURRENCY = Number(process.env.CLEF_FUZZ_CONCURRENCY ?? 48);
const BUDGET_MS = Number(process.env.CLEF_FUZZ_BUDGET_S ?? 240) * 1000;
const REPORT = process.env.CLEF_FUZZ_REPORT ?? "";
const BATCH = 250;
const PORTS = { tls: 8443, plain: 8080 };

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
  const stderrTail = counts["4"] || !proxyAlive ? w.proxy.stderr.slice(-20) : [];
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
    ...(stderrTail.length ? { stderrTail } : {}),
    violations: counts,
    accounting,
    carried,
    samples,
    reproducers,
  };
  if (REPORT) writeFileSync(REPORT, JSON.stringify(report, null, 2));
  else console.log(JSON.stringify(report, null, 2));
  log(`done: ${ran} cases in ${fuzzMs} ms, violations ${JSON.stringify(counts)}`);
  process.exit(0);
}

await main();

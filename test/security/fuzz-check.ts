// The fuzzer's invariant checker (pure: what the recorders, the proxy's output and the fuzzer's
// responses show for one batch → violations). fuzz-run.ts drives it; fuzz.test.ts checks on
// synthetic batches that each invariant fires.
import { canonicalHost } from "../../src/match/index.ts";
import { estimatedRequests, type FuzzCase } from "./fuzz-gen.ts";
import { type RecConn, type RecRequest, requestBytes } from "./recorder.ts";
import { containsAny, escapeBytes, header, parseResponses, secretForms } from "./wire.ts";
import { B, E, S1, S2, V, W1, W2 } from "./world.ts";

/** Where the template service's secrets may go: `*.w.test` and w2.test, less every name another rule wins. */
function templateHost(h: string): boolean {
  if (h === "w2.test") return true;
  if (!h.endsWith(".w.test") || h === "e.w.test" || h === "c4.w.test") return false;
  return !h.endsWith(".p.w.test") && !h.endsWith(".x.w.test");
}

/** Each secret and the canonical hosts (Host header and SNI) it may reach. Written out, not from src/match. */
export const SECRETS: Array<{ name: string; forms: Buffer[]; allowed: (host: string) => boolean }> = [
  { name: "S1", forms: secretForms(S1), allowed: (h) => h === "api.test" },
  { name: "S2", forms: secretForms(S2), allowed: (h) => h === "q.test" },
  { name: "V", forms: secretForms(V), allowed: (h) => h === "vault.test" },
  { name: "W1", forms: secretForms(W1), allowed: templateHost },
  { name: "W2", forms: secretForms(W2), allowed: templateHost },
  { name: "E", forms: secretForms(E), allowed: (h) => h === "e.w.test" },
  { name: "B", forms: secretForms(B), allowed: (h) => h === "b.test" },
];
const ALL_FORMS = SECRETS.flatMap((s) => s.forms);

export interface Violation {
  invariant: 1 | 2 | 3 | 4 | 5;
  message: string;
  /** Case ids the violation was attributed to (empty: the batch as a whole). */
  cases: number[];
}

export interface CaseOutcome {
  c: FuzzCase;
  tunnelUp: boolean;
  data: Buffer;
  closedByPeer: boolean;
  timedOut: boolean;
}

/** What the checker reads: the recorders and the proxy's output lines. */
export interface Observed {
  api: { requests: RecRequest[] };
  pass: { requests: RecRequest[] };
  attacker: { requests: RecRequest[]; conns: RecConn[] };
  proxy: { stdout: string[]; stderr: string[] };
}

export interface Mark {
  api: number;
  pass: number;
  attackerConns: number;
  attackerReqs: number;
  stdout: number;
  stderr: number;
}

export function mark(w: Observed): Mark {
  return {
    api: w.api.requests.length,
    pass: w.pass.requests.length,
    attackerConns: w.attacker.conns.length,
    attackerReqs: w.attacker.requests.length,
    stdout: w.proxy.stdout.length,
    stderr: w.proxy.stderr.length,
  };
}

export /** Classify one response: does the proxy owe an audit line for it? */
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

/** Running totals of the audit accounting (reported, so a reader can see the invariant had teeth). */
export const accounting = { upstreamSeen: 0, proxyAnswers: 0, noLineAnswers: 0, auditLines: 0, unanswered: 0 };
/** Requests that reached the api recorder carrying each secret (rightly or not): the services were exercised. */
export const carried: Record<string, number> = Object.fromEntries(SECRETS.map((s) => [s.name, 0]));

export function check(w: Observed, m: Mark, outcomes: CaseOutcome[]): Violation[] {
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
      carried[s.name] = (carried[s.name] ?? 0) + 1;
      const host = canonicalHost(q.host ?? "");
      const sni = q.conn.sni ? canonicalHost(q.conn.sni) : host;
      if (!s.allowed(host) || !s.allowed(sni))
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

// The generative fuzzer (fuzz-gen.ts: corpus and mutators; fuzz-run.ts: world, batches, invariants,
// minimisation). At least 10,000 mutated requests per run with a fixed seed (CLEF_FUZZ_COUNT and
// CLEF_FUZZ_SEED override), on the listener, inside cleartext tunnels and inside TLS tunnels.
//
// The runner is started in a private network namespace with only loopback (`unshare -n -m`):
// mutated request-targets can name any host or address, and nothing the proxy makes of them may
// leave the machine. Its JSON report lists every invariant violation with a minimal reproducer.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { OUR_BIN, ROOT } from "../helpers/bin.ts";
import { tempDir } from "../helpers/proxy.ts";
import { type CaseOutcome, check, mark, type Observed } from "./fuzz-check.ts";
import { estimatedRequests, generateCases } from "./fuzz-gen.ts";
import type { RecConn, RecRequest } from "./recorder.ts";
import { S1, S2, TOKEN } from "./world.ts";

const COUNT = Number(process.env.CLEF_FUZZ_COUNT ?? 10_000);
const SEED = Number(process.env.CLEF_FUZZ_SEED ?? 20261130);
const PORTS = { tls: 8443, plain: 8080 };

describe("fuzz corpus", () => {
  test("the same seed gives the same cases; every mode, seed request and mutation family is exercised", () => {
    const a = generateCases({ seed: SEED, count: COUNT, ports: PORTS, token: TOKEN });
    const b = generateCases({ seed: SEED, count: COUNT, ports: PORTS, token: TOKEN });
    expect(a.length).toBe(COUNT);
    expect(b.map((c) => c.data + (c.connect ?? ""))).toEqual(a.map((c) => c.data + (c.connect ?? "")));
    expect(new Set(a.map((c) => c.mode))).toEqual(new Set(["listener", "plain-tunnel", "tls-tunnel"]));
    expect(new Set(a.map((c) => c.seed)).size).toBeGreaterThanOrEqual(15);
    const ops = a.flatMap((c) => c.ops);
    for (const re of [
      /^flip@/,
      /^insert\(/,
      /^truncate@/,
      /^duplicate@/,
      /^method=/,
      /^target=/,
      /^version=/,
      /^host=/,
      /^framing=/,
      /^add /,
      /^remove /,
      /^duplicate [A-Za-z]/,
      /^header-name/,
      /^header-value/,
      /^connect=/,
      /^unmutated$/,
    ])
      expect(ops.some((o) => re.test(o))).toBe(true);
    expect(a.some((c) => c.data.includes("@evil.test"))).toBe(true);
    // the Phase 2 policy of the world is attacked too: wildcard, blocked, passthrough-in-wildcard names
    for (const name of ["a.w.test", "b.test", "a.p.w.test", "z.x.w.test", "w.test", "c4.w.test"])
      expect(a.some((c) => c.data.includes(name) || c.connectTarget?.includes(name))).toBe(true);
    expect(estimatedRequests("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")).toBe(2);
  });
});

describe("fuzz invariant checker (synthetic batches)", () => {
  const conn = (sni?: string): RecConn => ({
    id: 1,
    recorder: "r",
    port: 1,
    tls: sni !== undefined,
    sni,
    chunks: [],
    bytes: 0,
    openedAt: 0,
    sent: 0,
  });
  const seen = (host: string, id: string, extra = "", sni?: string): RecRequest => ({
    conn: conn(sni),
    at: 0,
    method: "GET",
    target: "/",
    headers: [["Host", host]],
    host,
    requestId: id,
    head: Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nX-Clef-Request-Id: ${id}\r\n${extra}\r\n`),
    body: [],
    complete: true,
  });
  const empty = (): Observed => ({
    api: { requests: [] },
    pass: { requests: [] },
    attacker: { requests: [], conns: [] },
    proxy: { stdout: [], stderr: [] },
  });
  const line = (id: string) => JSON.stringify({ request_id: id, status: "injected" });
  const out = (id: number, data: string, sent = "GET / HTTP/1.1\r\n\r\n"): CaseOutcome => ({
    c: { id, mode: "listener", data: sent, ops: [], seed: "s" },
    tunnelUp: true,
    data: Buffer.from(data, "latin1"),
    closedByPeer: true,
    timedOut: false,
  });
  const upstream = (who: string, id: string) =>
    `HTTP/1.1 200 OK\r\nX-Rec-Who: ${who}\r\nX-Rec-Id: ${id}\r\nContent-Length: 0\r\n\r\n`;
  const denied = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{}\n";
  const go400 =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";
  const invariants = (o: Observed, outcomes: CaseOutcome[]) =>
    [...new Set(check(o, mark(empty()), outcomes).map((v) => v.invariant))].sort();

  /** A clean batch: an injected request, a denied one, a parse error. */
  function clean(): [Observed, CaseOutcome[]] {
    const o = empty();
    o.api.requests.push(seen("api.test:8443", "id-1", `Authorization: Bearer ${S1}\r\n`, "api.test"));
    o.proxy.stdout.push(line("id-1"), line("id-2"));
    return [o, [out(1, upstream("api", "id-1")), out(2, denied), out(3, go400)]];
  }

  test("a clean batch has no violation", () => {
    expect(invariants(...clean())).toEqual([]);
  });
  test("1: anything at the attacker", () => {
    const [o, r] = clean();
    o.attacker.requests.push(seen("api.test", "id-9"));
    o.proxy.stdout.push(line("id-9"));
    expect(invariants(o, r)).toEqual([1]);
  });
  test("2: a secret for another Host, another SNI, or at pass.test", () => {
    for (const mutate of [
      (o: Observed) => o.api.requests.push(seen("q.test:8443", "id-5", `Authorization: Bearer ${S1}\r\n`)),
      (o: Observed) => o.api.requests.push(seen("api.test:8443", "id-5", `Authorization: Bearer ${S1}\r\n`, "q.test")),
      (o: Observed) => o.pass.requests.push(seen("pass.test", "id-5", `X-Key: ${encodeURIComponent(S2)}\r\n`)),
    ]) {
      const [o, r] = clean();
      mutate(o);
      o.proxy.stdout.push(line("id-5"));
      expect(invariants(o, r)).toEqual([2]);
    }
  });
  test("3: a secret in a response, in stderr, in an audit line", () => {
    let [o, r] = clean();
    r.push(out(4, `HTTP/1.1 502 Bad Gateway\r\nContent-Length: 40\r\n\r\n${encodeURIComponent(S2)}`));
    o.proxy.stdout.push(line("id-4"));
    expect(invariants(o, r)).toEqual([3]);
    [o, r] = clean();
    o.proxy.stderr.push(`level=INFO msg=x err="${Buffer.from("x" + S1).toString("base64")}"`);
    expect(invariants(o, r)).toEqual([3]);
    [o, r] = clean();
    o.proxy.stdout[1] = JSON.stringify({ request_id: "id-2", path: `/x/${S2}` });
    expect(invariants(o, r)).toEqual([3]);
  });
  test("5: a request seen upstream without exactly one line; a proxy answer without a line; phantom lines", () => {
    let [o, r] = clean();
    o.proxy.stdout.splice(0, 1); // id-1's line lost
    expect(invariants(o, r)).toEqual([5]);
    [o, r] = clean();
    o.proxy.stdout.push(line("id-1")); // twice
    expect(invariants(o, r)).toEqual([5]);
    [o, r] = clean();
    o.proxy.stdout.splice(1, 1); // the 403's line lost
    expect(invariants(o, r)).toEqual([5]);
    [o, r] = clean();
    o.proxy.stdout.push(line("id-x"), line("id-y")); // lines for nothing the fuzzer sent
    expect(invariants(o, r)).toEqual([5]);
  });
});

describe("fuzz run", () => {
  test(`${COUNT} mutated requests (seed ${SEED}): invariants 1–5 hold`, async () => {
    const report = join(tempDir("clef-fuzz-"), "report.json");
    const stderr: string[] = [];
    const p = Bun.spawn(
      [
        "unshare",
        "-n",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" "$@"',
        process.execPath,
        join(ROOT, "test/security/fuzz-run.ts"),
      ],
      {
        cwd: ROOT,
        env: { ...process.env, CLEF_FUZZ_REPORT: report, CLEF_PROXY_BIN: OUR_BIN } as Record<string, string>,
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const collect = (async () => {
      for await (const c of p.stderr as ReadableStream<Uint8Array>) stderr.push(Buffer.from(c).toString());
    })();
    const code = await p.exited;
    await collect;
    let r: {
      ran: number;
      count: number;
      fuzzMs: number;
      stoppedEarly: string;
      proxyAlive: boolean;
      violations: Record<string, number>;
      accounting: Record<string, number>;
      carried: Record<string, number>;
      samples: unknown[];
      reproducers: unknown[];
    };
    try {
      r = JSON.parse(readFileSync(report, "utf8"));
    } catch {
      throw new Error(`fuzz runner exited ${code} without a report:\n${stderr.join("").slice(-4000)}`);
    }
    const violated = Object.values(r.violations).some((n) => n > 0);
    if (violated || r.stoppedEarly) {
      // the reproducers, raw bytes escaped, for whoever reads the failure
      console.error(
        `fuzz: ${r.ran}/${r.count} cases in ${r.fuzzMs} ms; violations by invariant ${JSON.stringify(r.violations)}` +
          `${r.stoppedEarly ? `; stopped early: ${r.stoppedEarly}` : ""}\n` +
          `samples:\n${JSON.stringify(r.samples, null, 2)}\nminimal reproducers:\n${JSON.stringify(r.reproducers, null, 2)}`,
      );
    }
    expect({ ran: r.ran, stoppedEarly: r.stoppedEarly, proxyAlive: r.proxyAlive }).toEqual({
      ran: COUNT,
      stoppedEarly: "",
      proxyAlive: true,
    });
    // the accounting had something to count
    expect(r.accounting.upstreamSeen).toBeGreaterThan(COUNT / 10);
    expect(r.accounting.proxyAnswers).toBeGreaterThan(0);
    // every service of the world, Phase 2 schemes included, injected its secret some of the time
    for (const name of ["S1", "S2", "V", "W1", "W2", "E", "B"]) expect(r.carried[name] ?? 0).toBeGreaterThan(0);
    expect(r.violations).toEqual({ "1": 0, "2": 0, "3": 0, "4": 0, "5": 0 });
  }, 330_000);
});

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
import { estimatedRequests, generateCases } from "./fuzz-gen.ts";
import { TOKEN } from "./world.ts";

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
    expect(estimatedRequests("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")).toBe(2);
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
    expect(r.violations).toEqual({ "1": 0, "2": 0, "3": 0, "4": 0, "5": 0 });
  }, 330_000);
});

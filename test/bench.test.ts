// The benchmark harness's pieces (not its numbers): the Go load generator and upstream build, serve
// and report what they did; a failing target is reported as errors, not hidden.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "./helpers/bin.ts";
import { run } from "./helpers/clients.ts";
import { tempDir } from "./helpers/proxy.ts";
import { makeTestPki, type TestPki } from "./helpers/tls.ts";

const haveGo = Bun.which("go") !== null;
if (!haveGo) console.warn("NOTICE: go not installed; bench harness test skipped (CI installs golang-go)");

describe.skipIf(!haveGo)("bench/loadgen", () => {
  let bin: string;
  let pki: TestPki;
  let upstream: ReturnType<typeof Bun.spawn>;
  let port: number;
  beforeAll(async () => {
    bin = join(tempDir("clef-loadgen-"), "loadgen");
    const b = await run(["go", "build", "-o", bin, "main.go"], {
      cwd: join(ROOT, "bench/loadgen"),
      env: { ...(process.env as Record<string, string>), GO111MODULE: "off", GOFLAGS: "" },
    });
    expect(b.stderr).toBe("");
    pki = makeTestPki(["api.test"], ["127.0.0.2"]);
    upstream = Bun.spawn([bin, "serve", "-addr", "127.0.0.2:0", "-cert", pki.certPath, "-key", pki.keyPath], {
      stdout: "pipe",
    });
    const reader = (upstream.stdout as ReadableStream<Uint8Array>).getReader();
    const { value } = await reader.read();
    port = Number(/listening (\d+)/.exec(new TextDecoder().decode(value))![1]);
  }, 120_000);
  afterAll(() => upstream?.kill());

  test("a counted run against the upstream reports every request, bytes and percentiles", async () => {
    const r = await run([
      bin,
      "load",
      "-url",
      `https://api.test:${port}/bytes/1000`,
      "-ca",
      pki.caPath,
      "-resolve",
      "api.test=127.0.0.2",
      "-c",
      "2",
      "-n",
      "20",
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ requests: 20, errors: 0, bytes: 20_000 });
    expect(j.p50_us).toBeGreaterThan(0);
    expect(j.p99_us).toBeGreaterThanOrEqual(j.p50_us);
  });

  test("each of -urls once; a target that fails is counted as errors with the first error", async () => {
    const r = await run([
      bin,
      "load",
      "-urls",
      `https://api.test:${port}/,https://api.test:${port}/bytes/5`,
      "-ca",
      pki.caPath,
      "-resolve",
      "api.test=127.0.0.2",
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ requests: 2, errors: 0, bytes: 7 });
    const bad = await run([
      bin,
      "load",
      "-url",
      `https://api.test:${port}/`,
      "-proxy",
      "http://x:y@127.0.0.1:1",
      "-ca",
      pki.caPath,
      "-n",
      "3",
    ]);
    const j = JSON.parse(bad.stdout);
    expect(j).toMatchObject({ requests: 3, errors: 3 });
    expect(j.first_error).toContain("connection refused");
  });

  test("untrusted upstream certificate is an error (the generator verifies TLS)", async () => {
    const other = makeTestPki(["api.test"], ["127.0.0.2"]);
    const r = await run([
      bin,
      "load",
      "-url",
      `https://api.test:${port}/`,
      "-ca",
      other.caPath,
      "-resolve",
      "api.test=127.0.0.2",
      "-n",
      "1",
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ requests: 1, errors: 1 });
  });
});

// Release engineering: the helpers the workflows call (stamp, checksums, verify, smoke), run as the
// workflows run them, and a structural check of both workflow files (no actionlint in Debian: the
// YAML is parsed with Bun.YAML and checked against what the release process needs).
import { describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers/bin.ts";
import { run } from "./helpers/clients.ts";
import { tempDir } from "./helpers/proxy.ts";

const BUN = process.execPath;
const script = (name: string) => join(ROOT, "scripts/release", `${name}.ts`);
const helper = (name: string, ...args: string[]) => run([BUN, script(name), ...args]);

describe("stamp-version", () => {
  test("sets the version in each package.json, strips v and refs/tags/, keeps the rest", async () => {
    const dir = tempDir("clef-rel-");
    const a = join(dir, "a.json");
    const b = join(dir, "b.json");
    copyFileSync(join(ROOT, "platforms/proxy-linux-x64/package.json"), a);
    copyFileSync(join(ROOT, "package.json"), b);
    const before = JSON.parse(readFileSync(a, "utf8"));
    const r = await helper("stamp-version", "refs/tags/v1.2.3-rc.1", a, b);
    expect(r.code).toBe(0);
    const after = JSON.parse(readFileSync(a, "utf8"));
    expect(after).toEqual({ ...before, version: "1.2.3-rc.1" });
    expect(Object.keys(after)).toEqual(Object.keys(before));
    expect(readFileSync(a, "utf8")).toBe(JSON.stringify(after, null, 2) + "\n");
    expect(JSON.parse(readFileSync(b, "utf8")).version).toBe("1.2.3-rc.1");
    expect((await helper("stamp-version", "v2.0.0", a)).code).toBe(0);
    expect(JSON.parse(readFileSync(a, "utf8")).version).toBe("2.0.0");
  });

  test("refuses a non-semver version and a broken file, changing nothing", async () => {
    const dir = tempDir("clef-rel-");
    const a = join(dir, "a.json");
    writeFileSync(a, '{"name":"x","version":"0.0.1"}\n');
    for (const bad of ["1.2", "v01.2.3", "latest", "1.2.3.4", ""]) {
      const r = await helper("stamp-version", bad, a);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("not a semantic version");
    }
    expect(readFileSync(a, "utf8")).toBe('{"name":"x","version":"0.0.1"}\n');
    writeFileSync(join(dir, "bad.json"), "{nope");
    expect((await helper("stamp-version", "1.0.0", join(dir, "bad.json"))).code).toBe(1);
    const usage = await helper("stamp-version", "--help");
    expect(usage.code).toBe(0);
    expect(usage.stdout).toStartWith("usage: stamp-version.ts");
    expect((await helper("stamp-version")).code).toBe(1);
  });
});

describe("checksums and verify-checksum", () => {
  test("the .sha256 file equals sha256sum's output and sha256sum -c accepts it", async () => {
    const dir = tempDir("clef-rel-");
    const f = join(dir, "clef-proxy-linux-x64");
    writeFileSync(
      f,
      new Uint8Array(300_000).map((_, i) => (i * 13) & 255),
    );
    const r = await helper("checksums", f);
    expect(r.code).toBe(0);
    const real = await run(["sha256sum", "clef-proxy-linux-x64"], { cwd: dir });
    expect(readFileSync(`${f}.sha256`, "utf8")).toBe(real.stdout);
    expect((await run(["sha256sum", "-c", "clef-proxy-linux-x64.sha256"], { cwd: dir })).code).toBe(0);
  });

  test("verify passes on the right file, fails on a changed byte, a missing entry or a missing file", async () => {
    const dir = tempDir("clef-rel-");
    const f = join(dir, "clef-proxy-win32-x64.exe");
    writeFileSync(f, "binary bytes");
    await helper("checksums", f);
    const ok = await helper("verify-checksum", f);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(": OK ");
    writeFileSync(f, "binary bytez");
    const bad = await helper("verify-checksum", f);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("checksum mismatch");
    writeFileSync(join(dir, "sums"), "0".repeat(64) + "  other\n" + "1".repeat(64) + "  another\n");
    const missing = await helper("verify-checksum", f, join(dir, "sums"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no entry for clef-proxy-win32-x64.exe");
    writeFileSync(join(dir, "junk"), "not a checksum\n");
    expect((await helper("verify-checksum", f, join(dir, "junk"))).stderr).toContain("not in sha256sum format");
    expect((await helper("verify-checksum", join(dir, "nope"))).code).toBe(1);
  });
});

describe("smoke", () => {
  const fake = (out: string, code = 0) => {
    const p = join(tempDir("clef-rel-"), "clef-proxy");
    writeFileSync(p, `#!/bin/sh\n[ "$1" = --version ] || exit 9\nprintf '%s' '${out}'\nexit ${code}\n`);
    chmodSync(p, 0o755);
    return p;
  };
  test("passes when --version prints exactly the tag's version", async () => {
    const r = await helper("smoke", fake("1.4.0\n"), "v1.4.0");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--version → "1.4.0" (exit 0)');
  });
  test("fails on another version, extra output, a non-zero exit or a missing binary", async () => {
    expect((await helper("smoke", fake("1.4.1\n"), "v1.4.0")).stderr).toContain('expected "1.4.0\\n", got "1.4.1\\n"');
    expect((await helper("smoke", fake("v1.4.0\n"), "1.4.0")).code).toBe(1);
    expect((await helper("smoke", fake("1.4.0"), "1.4.0")).code).toBe(1);
    expect((await helper("smoke", fake("1.4.0\n", 3), "1.4.0")).stderr).toContain("exit code 3");
    expect((await helper("smoke", "/nonexistent/clef-proxy", "1.4.0")).code).toBe(1);
  });
  test("the compiled binary passes its own smoke test with package.json's version", async () => {
    const { OUR_BIN } = await import("./helpers/bin.ts");
    const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
    expect((await helper("smoke", OUR_BIN, version)).code).toBe(0);
  });
});

describe("build (scripts/build.ts)", () => {
  // The executables' bytecode is laid out by what `serve` and `--version` run at start-up; if the
  // profile could not be recorded the build would still succeed, only slower to start — this is what
  // notices.
  test("a startup profile is recorded: a build for this machine started as serve and as --version", async () => {
    const { recordStartup } = await import("../scripts/build.ts");
    const dir = tempDir("clef-order-test-");
    const order = await recordStartup(dir);
    expect(order.map((f) => f.slice(dir.length + 1))).toEqual(["serve.order", "version.order"]);
    const [serve, version] = order.map((f) => readFileSync(f, "utf8").split("\n").filter(Boolean));
    // the format's header, then one line per function or module used; serve runs far more than --version
    expect(serve![0]).toMatch(/^v\d+$/);
    expect(version![0]).toMatch(/^v\d+$/);
    expect(serve!.length).toBeGreaterThan(version!.length);
  }, 60_000);
});

describe("workflows", () => {
  type Y = Record<string, any>;
  const load = (name: string): Y => Bun.YAML.parse(readFileSync(join(ROOT, ".github/workflows", name), "utf8")) as Y;
  const ci = load("ci.yml");
  const rel = load("release.yml");
  const steps = (job: Y) => (job.steps as Y[]).map((s) => String(s.run ?? s.uses ?? ""));
  const allRuns = (wf: Y) =>
    Object.values(wf.jobs as Y)
      .flatMap((j) => steps(j as Y))
      .join("\n");

  test("ci: push and pull_request; lint (format + types), npm test, build:all, artifact; read-only token", () => {
    expect(Object.keys(ci.on).sort()).toEqual(["pull_request", "push"]);
    expect(ci.permissions).toEqual({ contents: "read" });
    const s = steps(ci.jobs.test).join("\n");
    for (const needed of [
      "npm ci",
      "npm run lint",
      "npm test",
      "npm run build:all",
      "actions/upload-artifact",
      "tinyproxy",
    ])
      expect(s).toContain(needed);
    expect(JSON.stringify(ci)).not.toContain("id-token");
  });

  test("release: v* tags; test → release → publish; OIDC only on publish, in environment prod", () => {
    expect(rel.on).toEqual({ push: { tags: ["v*"] } });
    expect(rel.permissions).toEqual({ contents: "read" });
    expect(Object.keys(rel.jobs)).toEqual(["test", "release", "publish"]);
    expect(rel.jobs.release.needs).toBe("test");
    expect(rel.jobs.publish.needs).toBe("release");
    expect(rel.jobs.release.permissions).toEqual({ contents: "write" });
    expect(rel.jobs.publish.permissions).toEqual({ contents: "read", "id-token": "write" });
    expect(rel.jobs.publish.environment).toBe("prod");
    expect(JSON.stringify(rel.jobs.test)).not.toContain("id-token");
    expect(JSON.stringify(rel.jobs.release)).not.toContain("id-token");
    expect(JSON.stringify(rel)).not.toMatch(/NODE_AUTH_TOKEN|NPM_TOKEN|secrets\./);
    const r = steps(rel.jobs.release).join("\n");
    for (const needed of [
      "npm run build:all",
      "checksums.ts",
      "smoke.ts",
      "gh release create",
      "--generate-notes",
      "stamp-version.ts",
    ])
      expect(r).toContain(needed);
    const p = steps(rel.jobs.publish).join("\n");
    for (const needed of [
      "gh release download",
      "verify-checksum.ts",
      "smoke.ts",
      "stamp-version.ts",
      "npm publish --provenance --access public",
    ])
      expect(p).toContain(needed);
  });

  test("publish matrix: the five platforms, each on a runner of its OS and CPU", () => {
    const m = (rel.jobs.publish.strategy.matrix.include as Y[]).map(
      (e) => `${e.platform}-${e.arch}@${e.runner}${e.exe}`,
    );
    expect(m.sort()).toEqual([
      "darwin-arm64@macos-14",
      "darwin-x64@macos-13",
      "linux-arm64@ubuntu-24.04-arm",
      "linux-x64@ubuntu-latest",
      "win32-x64@windows-latest.exe",
    ]);
    for (const e of rel.jobs.publish.strategy.matrix.include as Y[]) {
      const pkg = JSON.parse(readFileSync(join(ROOT, `platforms/proxy-${e.platform}-${e.arch}/package.json`), "utf8"));
      expect(pkg.name).toBe(`@clef-sh/proxy-${e.platform}-${e.arch}`);
      expect(pkg.os).toEqual([e.platform]);
      expect(pkg.cpu).toEqual([e.arch]);
      expect(pkg.publishConfig).toEqual({ access: "public", provenance: true });
    }
  });

  test("every scripts/… path and npm script the workflows name exists", () => {
    const text = allRuns(ci) + "\n" + allRuns(rel);
    const paths = [...text.matchAll(/scripts\/[\w./-]+\.ts/g)].map((m) => m[0]);
    expect(paths.length).toBeGreaterThan(5);
    for (const p of paths) expect(existsSync(join(ROOT, p))).toBe(true);
    const pkgScripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts;
    for (const m of text.matchAll(/npm run ([\w:-]+)/g)) expect(pkgScripts[m[1]!]).toBeDefined();
  });
});

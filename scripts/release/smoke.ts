// Smoke-test a built binary: `<binary> --version` must print exactly the expected version.
//
//   bun scripts/release/smoke.ts <binary> <version|vX.Y.Z|refs/tags/vX.Y.Z>
import { args, fail, normaliseVersion } from "./lib.ts";

const USAGE = `usage: smoke.ts <binary> <expected version>
  Runs "<binary> --version" and checks it prints the expected version (a leading "v" is stripped).
`;

const [binary, raw] = args(USAGE, 2);
const expected = normaliseVersion(raw!);
if (!expected) fail(`not a semantic version: ${JSON.stringify(raw)}`);
let proc;
try {
  proc = Bun.spawnSync([binary!, "--version"], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
} catch (e) {
  fail(`cannot run ${binary}: ${(e as Error).message}`);
}
const out = proc.stdout.toString();
const saw = out.trim();
console.log(`${binary} --version → ${JSON.stringify(saw)} (exit ${proc.exitCode})`);
if (proc.exitCode !== 0) fail(`exit code ${proc.exitCode}: ${proc.stderr.toString().trim()}`);
if (out !== `${expected}\n`) fail(`expected ${JSON.stringify(expected + "\n")}, got ${JSON.stringify(out)}`);
console.log("smoke test passed");

// `npm run lint` as part of the suite, so that .ci/run (which runs the README's test command) fails
// on unformatted code or a type error, as the GitHub workflow's lint step does.
import { expect, test } from "bun:test";
import { ROOT } from "./helpers/bin.ts";

test("npm run lint: biome format/lint check and tsc --noEmit are clean", () => {
  const r = Bun.spawnSync(["npm", "run", "--silent", "lint"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) console.error(out);
  expect(r.exitCode).toBe(0);
}, 120_000);

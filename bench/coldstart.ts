// Cold start: wall time of `clef-proxy --version` (what the agent runs to probe the binary), ours
// vs the reference. Usage: bun bench/coldstart.ts [runs=30]. CLEF_PROXY_BIN / REF_BIN override paths.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const ours =
  process.env.CLEF_PROXY_BIN ??
  join(ROOT, "bin", `clef-proxy-${process.platform}-${process.arch}${process.platform === "win32" ? ".exe" : ""}`);
const ref = process.env.REF_BIN ?? join(ROOT, "node_modules", "@clef-sh", "proxy-linux-x64", "bin", "clef-proxy");

function once(bin: string): number {
  const t = performance.now();
  const r = Bun.spawnSync([bin, "--version"], { stdout: "pipe", stderr: "pipe" });
  const dt = performance.now() - t;
  if (r.exitCode !== 0) throw new Error(`${bin} --version exited ${r.exitCode}`);
  return dt;
}

export function measure(bin: string, runs = 30): number[] {
  return measureInterleaved([bin], runs)[0]!;
}

/** Each binary's sorted times, the binaries taking turns run by run: a few milliseconds each, so a
 * busy moment of a shared machine falls on all of them alike rather than on one binary's series. */
export function measureInterleaved(bins: string[], runs = 30): number[][] {
  const times = bins.map(() => [] as number[]);
  for (let i = 0; i < runs + 2; i++) {
    for (const [k, bin] of bins.entries()) {
      const dt = once(bin);
      if (i >= 2) times[k]!.push(dt); // two warm-up runs (page cache)
    }
  }
  return times.map((t) => t.sort((a, b) => a - b));
}

export const median = (xs: number[]) =>
  xs.length % 2 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

if (import.meta.main) {
  if (!existsSync(ours)) throw new Error(`our binary not found at ${ours} (bun scripts/build.ts)`);
  const runs = Number(process.argv[2] ?? 30);
  const withRef = existsSync(ref) && process.platform === "linux" && process.arch === "x64";
  const [o, r] = measureInterleaved(withRef ? [ours, ref] : [ours], runs) as [number[], number[] | undefined];
  console.log(
    `ours       ${ours}\n  median ${fmt(median(o))}  min ${fmt(o[0]!)}  max ${fmt(o[o.length - 1]!)}  (${runs} runs)`,
  );
  if (r) {
    console.log(
      `reference  ${ref}\n  median ${fmt(median(r))}  min ${fmt(r[0]!)}  max ${fmt(r[r.length - 1]!)}  (${runs} runs)`,
    );
    console.log(`ratio ours/reference (median): ${(median(o) / median(r)).toFixed(2)}x`);
  } else {
    console.log("reference binary not available here: no ratio");
  }
}

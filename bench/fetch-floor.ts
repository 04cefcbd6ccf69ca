import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildLoadgen, serveUpstream } from "./loadgen-process.ts";

if (process.argv[2] === "--child") {
  const [, , , port, ca, mib] = process.argv;
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
  const tls = { ca: readFileSync(ca!, "utf8"), serverName: "api.test" };
  await (await fetch(`https://127.0.0.2:${port}/bytes/1000`, { tls } as RequestInit)).arrayBuffer(); // warm-up
  const r0 = rss();
  let max = r0;
  const iv = setInterval(() => (max = Math.max(max, rss())), 10);
  const t0 = performance.now();
  const res = await fetch(`https://127.0.0.2:${port}/bytes/${Number(mib) * 1048576}`, { tls } as RequestInit);
  let n = 0;
  const sizes = new Map<number, number>();
  for await (const c of res.body!) {
    n += c.byteLength;
    const k = 2 ** Math.ceil(Math.log2(Math.max(1, c.byteLength)));
    sizes.set(k, (sizes.get(k) ?? 0) + 1);
  }
  clearInterval(iv);
  max = Math.max(max, rss());
  const s = (performance.now() - t0) / 1000;
  const chunks = [...sizes]
    .sort((a, b) => a[0] - b[0])
    .map(([k, v]) => `≤${k / 1024}K:${v}`)
    .join(" ");
  console.log(
    `${(n / 1048576).toFixed(0)} MiB  ${(n / 1048576 / s).toFixed(0)} MiB/s  RSS growth ${(max - r0).toFixed(1)} MiB  chunks ${chunks}`,
  );
  process.exit(0);
}

const mib = Number(process.argv[2] ?? 100);
const runs = Number(process.argv[3] ?? 3);
const work = mkdtempSync(join(tmpdir(), "clef-fetch-floor-"));
const loadgen = await buildLoadgen(work);
const { makeTestPki } = await import("../test/helpers/tls.ts");
const pki = makeTestPki(["api.test"], ["127.0.0.2"]);
const { proc: up, port: upPort } = await serveUpstream(loadgen, "127.0.0.2:0", pki);
const port = String(upPort);
console.log(`bare Bun ${Bun.version} fetch, ${mib} MiB over HTTPS from the Go upstream, body discarded:`);
try {
  for (let i = 0; i < runs; i++) {
    const p = Bun.spawn([process.execPath, resolve(import.meta.path), "--child", port, pki.caPath, String(mib)], {
      stdout: "inherit",
      stderr: "inherit",
    });
    await p.exited;
  }
} finally {
  up.kill();
  rmSync(work, { recursive: true, force: true });
}

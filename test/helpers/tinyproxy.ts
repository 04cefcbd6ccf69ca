// Debian's tinyproxy as a real corporate proxy for chaining tests (installed by .ci/run).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, tempDir, withHosts } from "./proxy.ts";

export const haveTinyproxy = (() => {
  const r = Bun.spawnSync(["sh", "-c", "command -v tinyproxy"]);
  return r.exitCode === 0;
})();
if (!haveTinyproxy) console.warn("NOTICE: tinyproxy not installed; chained-proxy tests skipped (CI installs it)");

/** `hosts`: names the corporate proxy resolves (a private /etc/hosts, as for the proxy under test). */
export async function startTinyproxy(
  auth: string | null,
  hosts?: Record<string, string>,
): Promise<{ port: number; log: string; stop(): void }> {
  const dir = tempDir("clef-tinyproxy-");
  const port = await freePort();
  const log = join(dir, "tp.log");
  const conf = [
    `Port ${port}`,
    "Listen 127.0.0.1",
    "Timeout 30",
    `LogFile "${log}"`,
    "LogLevel Connect",
    "MaxClients 20",
    "Allow 127.0.0.1",
    ...(auth ? [`BasicAuth ${auth.replace(":", " ")}`] : []),
  ].join("\n");
  writeFileSync(join(dir, "tp.conf"), conf + "\n");
  const proc = Bun.spawn(withHosts(hosts, ["tinyproxy", "-d", "-c", join(dir, "tp.conf")]), {
    stdout: "ignore",
    stderr: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    const ok = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).then(
      (s) => (s.end(), true),
      () => false,
    );
    if (ok) break;
    await Bun.sleep(50);
  }
  return { port, log, stop: () => proc.kill() };
}

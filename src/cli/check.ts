// `clef-proxy check --config <c> [--services <s>]`: everything `serve` would verify at startup,
// without serving and without side effects — the config file is kept (serve deletes it), the CA is
// not created, ports are bound only for an instant, no secret value is ever printed.
//
// Checks: the config (serve's messages), the manifest (the standalone services file, or the agent:
// environment, /v1/ready, /v1/services), unusable services, every credential the services use
// (standalone: the variable is set / the file is readable; agent: each handle fetched once), the
// workload token, the CA (loadable, or where it will be created), and the ports on 127.0.0.1.
//
// Output: one stdout line per area that passed, then `clef-proxy check: ok` (exit 0); or one stderr
// line `clef-proxy check: <problem>` per problem (exit 1). Warnings (unknown config fields) go to
// stderr and do not fail the check.
import { createAgentClient, redactUserinfo } from "../agent/client.ts";
import { credentialHandles, loadServicesFile } from "../agent/file-source.ts";
import { CredentialError, type CredentialSource, type Manifest } from "../agent/types.ts";
import { defaultPaths, loadOrCreateCA, present, resolveCADir } from "../ca/index.ts";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { checkServices } from "../inject/index.ts";
import { setLogSink } from "../log/slog.ts";
import { bindErrorMessage } from "../metrics/server.ts";

/** How long `check` waits for the agent's /v1/ready (serve waits 30 s). */
export const CHECK_READY_TIMEOUT_MS = 3_000;

export interface CheckOptions {
  configPath: string;
  servicesPath?: string;
}

export interface CheckOutput {
  ok(line: string): void;
  problem(line: string): void;
  warning(line: string): void;
}

const LOOPBACK_ON = /^(1|true|yes)$/i;

/** null when `port` can be bound on 127.0.0.1 right now (bound and released at once), else why not. */
function portFree(port: number): string | null {
  try {
    Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    return null;
  } catch (e) {
    return bindErrorMessage(port, e);
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export async function runCheck(
  opts: CheckOptions,
  env: Record<string, string | undefined>,
  out: CheckOutput,
): Promise<number> {
  // Serve's own log lines (the agent client's "waiting for agent", the file source's WARNs) are not
  // part of this command's output: every finding is reported below in check's own words.
  const restoreLog = setLogSink(() => {});
  try {
    return await check(opts, env, out);
  } finally {
    setLogSink(restoreLog);
  }
}

async function check(opts: CheckOptions, env: Record<string, string | undefined>, out: CheckOutput): Promise<number> {
  let problems = 0;
  const problem = (line: string) => {
    problems++;
    out.problem(`clef-proxy check: ${line}`);
  };

  // Config (messages as serve's, framed `clef-proxy check: …`), the file kept.
  let cfg: Config | null = null;
  try {
    cfg = loadConfig(opts.configPath, env, {
      keep: true,
      onUnknownField: (f) =>
        out.warning(
          `clef-proxy check: warning: config ${JSON.stringify(opts.configPath)}: unknown field ${f.path} is ignored` +
            (f.suggestion ? ` (did you mean ${f.suggestion}?)` : ""),
        ),
    });
    out.ok(
      `ok: config ${opts.configPath} (listen 127.0.0.1:${cfg.listen.port}, ` +
        `metrics ${cfg.metrics.port ? `127.0.0.1:${cfg.metrics.port}` : "off"})`,
    );
  } catch (e) {
    problems++;
    out.problem((e as Error).message); // already framed
  }
  const lambda = (env.AWS_LAMBDA_FUNCTION_NAME ?? "") !== "";
  const loopback =
    lambda && ((cfg?.lambdaLoopbackOnly ?? false) || LOOPBACK_ON.test(env.CLEF_PROXY_LAMBDA_LOOPBACK ?? ""));

  // Manifest and credentials.
  let manifest: Manifest | null = null;
  let credentialsChecked = false;
  if (opts.servicesPath) {
    try {
      const src = loadServicesFile(opts.servicesPath, env);
      manifest = src.manifest;
      out.ok(
        `ok: services file ${opts.servicesPath} (${plural(manifest.services.length, "service")}, ` +
          `${plural(manifest.passthroughHosts.length, "passthrough host")})`,
      );
      const missing = src.problems();
      for (const p of missing) problem(`credential ${p.handle}: ${p.source ? `${p.source} ` : ""}${p.problem}`);
      credentialsChecked = missing.length === 0;
    } catch (e) {
      problem((e as Error).message);
    }
  } else {
    let agent: ReturnType<typeof createAgentClient> | null = null;
    try {
      agent = createAgentClient(env);
    } catch (e) {
      problem(`${(e as Error).message} (or pass --services <file> for standalone mode)`);
    }
    if (agent) {
      try {
        await agent.waitReady(undefined, CHECK_READY_TIMEOUT_MS);
        manifest = await agent.services();
        out.ok(
          `ok: agent ${redactUserinfo(agent.baseUrl)} (ready; identity ${JSON.stringify(manifest.identity)}, environment ` +
            `${JSON.stringify(manifest.environment)}, ${plural(manifest.services.length, "service")})`,
        );
        credentialsChecked = (await checkCredentials(agent, manifest, problem)) === 0;
      } catch (e) {
        problem((e as Error).message);
      } finally {
        agent.close();
      }
    }
    if (!loopback && (env.CLEF_PROXY_TOKEN ?? "") === "")
      problem("CLEF_PROXY_TOKEN is not set (the password workloads put in Proxy-Authorization; serve exits 4)");
  }
  if (manifest && credentialsChecked)
    out.ok(`ok: credentials (${plural(credentialHandles(manifest).length, "handle")}, every one resolvable)`);
  if (manifest)
    for (const w of checkServices(manifest))
      problem(
        `service ${JSON.stringify(w.service)} (host ${JSON.stringify(w.host)}) can never be served: ${w.problem}`,
      );

  // CA: loaded when its certificate exists (loading writes nothing then); never created here.
  if (cfg) {
    try {
      const paths = cfg.ca.certPath
        ? { certPath: cfg.ca.certPath, keyPath: cfg.ca.keyPath }
        : defaultPaths(resolveCADir(env));
      if (present(paths.certPath)) {
        const ca = loadOrCreateCA(paths);
        out.ok(`ok: CA ${paths.certPath} (${ca.subject}, expires ${ca.notAfter.toISOString().slice(0, 10)})`);
      } else if (present(paths.keyPath)) {
        out.ok(`ok: CA key ${paths.keyPath} without a certificate; serve will issue a root certificate for it`);
      } else {
        out.ok(`ok: CA not created yet; serve will create it at ${paths.certPath} and ${paths.keyPath}`);
      }
    } catch (e) {
      const msg = (e as Error).message;
      problem(`CA: ${msg.startsWith("resolve home dir") ? `resolve CA dir: ${msg}` : msg}`);
    }

    // Ports.
    const ports: Array<[string, number]> = [["listen.port", cfg.listen.port]];
    if (cfg.metrics.port) ports.push(["metrics.port", cfg.metrics.port]);
    let free = 0;
    for (const [field, port] of ports) {
      const err = portFree(port);
      if (err) problem(`${field} ${port}: ${err}`);
      else free++;
    }
    if (free === ports.length) out.ok(`ok: ports ${ports.map(([, p]) => `127.0.0.1:${p}`).join(", ")} free`);
  }

  if (problems === 0) out.ok("clef-proxy check: ok");
  return problems === 0 ? 0 : 1;
}

/** Fetches each handle once (the value is dropped at once); one problem per handle that fails. */
async function checkCredentials(
  source: CredentialSource,
  manifest: Manifest,
  problem: (line: string) => void,
): Promise<number> {
  let failed = 0;
  for (const h of credentialHandles(manifest)) {
    try {
      await source.secret(h.namespace, h.key);
    } catch (e) {
      failed++;
      if (e instanceof CredentialError && e.kind === "not_found")
        problem(`credential ${h.handle}: not found (the agent answered 404)`);
      else problem(`credential ${h.handle}: ${(e as Error).message}`);
    }
  }
  return failed;
}

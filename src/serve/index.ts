// `clef-proxy serve`: startup order, exit codes, signals and drain (docs/CONTRACT.md §5, §13, §14).
//
// Exit codes: 0 clean / signal; 1 services fetch or intercept init; 2 config or audit init;
// 3 agent not ready within 30 s; 4 agent URL/token or workload token; 5 CA; 6 bind.
import { randomBytes } from "node:crypto";
import { type AgentError, createAgentClient } from "../agent/client.ts";
import { loadServicesFile, warnSecretProblem } from "../agent/file-source.ts";
import { validateManifest } from "../agent/manifest.ts";
import type { CredentialSource, Manifest } from "../agent/types.ts";
import { createAuditSink } from "../audit/sink.ts";
import { CAError, createLeafMinter, defaultPaths, loadOrCreateCA, resolveCADir } from "../ca/index.ts";
import { ConfigError, loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { BindError, bindListener, InterceptInitError } from "../intercept/listener.ts";
import { error, info, warn } from "../log/slog.ts";
import { withAuditMetrics, observeManifest } from "../metrics/observe.ts";
import { registry, setSources } from "../metrics/series.ts";
import { AdminBindError, type AdminServer, startAdminServer } from "../metrics/server.ts";
import { VERSION } from "../version.ts";

export interface ServeOptions {
  configPath: string;
  lambdaLoopbackOnly: boolean;
  servicesPath?: string;
}

const LOOPBACK_ON = /^(1|true|yes)$/i;

/** Signals: the first SIGTERM/SIGINT/SIGHUP starts a drain; a second one cuts it short. */
class Signals {
  readonly controller = new AbortController();
  private count = 0;
  private forceWaiters: Array<() => void> = [];
  private readonly handler = () => {
    this.count++;
    if (this.count === 1) this.controller.abort(new Error("signal"));
    else for (const w of this.forceWaiters.splice(0)) w();
  };
  constructor() {
    for (const s of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(s, this.handler);
  }
  get received(): Promise<void> {
    return new Promise((r) => {
      if (this.controller.signal.aborted) r();
      else this.controller.signal.addEventListener("abort", () => r(), { once: true });
    });
  }
  get forced(): Promise<void> {
    return new Promise((r) => this.forceWaiters.push(r));
  }
  dispose(): void {
    for (const s of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.off(s, this.handler);
  }
}

export async function runServe(opts: ServeOptions): Promise<number> {
  const env = process.env;
  const lambda = (env.AWS_LAMBDA_FUNCTION_NAME ?? "") !== "";
  let cfg: Config;
  try {
    cfg = loadConfig(opts.configPath, env, {
      onUnknownField: (f) =>
        warn("unknown config field ignored", [
          ["field", f.path],
          ...(f.suggestion ? [["did_you_mean", f.suggestion] as [string, string]] : []),
        ]),
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(e.message + "\n");
      return 2;
    }
    throw e;
  }
  if (opts.lambdaLoopbackOnly && !lambda) {
    process.stderr.write("clef-proxy serve: --lambda-loopback-only requires AWS_LAMBDA_FUNCTION_NAME\n");
    return 2;
  }
  const loopback =
    lambda &&
    (opts.lambdaLoopbackOnly || cfg.lambdaLoopbackOnly || LOOPBACK_ON.test(env.CLEF_PROXY_LAMBDA_LOOPBACK ?? ""));
  const signals = new Signals();
  try {
    return await serve(cfg, opts, { lambda, loopback, signals });
  } finally {
    signals.dispose();
  }
}

async function serve(
  cfg: Config,
  opts: ServeOptions,
  mode: { lambda: boolean; loopback: boolean; signals: Signals },
): Promise<number> {
  const env = process.env;
  info("clef-proxy starting", {
    version: VERSION,
    proxy_id: cfg.metadata.proxyId,
    port: cfg.listen.port,
    lambda: mode.lambda,
  });

  // CA (exit 5)
  let certPath = cfg.ca.certPath;
  let ca;
  try {
    const paths = cfg.ca.certPath
      ? { certPath: cfg.ca.certPath, keyPath: cfg.ca.keyPath }
      : defaultPaths(resolveCADir(env));
    certPath = paths.certPath;
    ca = loadOrCreateCA(paths);
  } catch (e) {
    if (!(e instanceof CAError)) throw e;
    const msg = e.message.startsWith("resolve home dir") ? `resolve CA dir: ${e.message}` : e.message;
    error("CA load/generate", { err: msg, cert_path: certPath });
    return 5;
  }
  info("CA loaded", { subject: ca.subject, not_after: ca.notAfter.toISOString().replace(/\.\d{3}Z$/, "Z") });

  // Credentials: the agent (exit 4 / 3 / 1), or a services file in standalone mode.
  let credentials: CredentialSource & { close?(): void };
  let manifest: Manifest;
  let manifestSha256: string;
  if (opts.servicesPath) {
    let src;
    try {
      src = loadServicesFile(opts.servicesPath, env);
    } catch (e) {
      error("services file", { err: (e as Error).message, path: opts.servicesPath });
      return 1;
    }
    credentials = src;
    manifest = src.manifest;
    manifestSha256 = src.sha256;
    info("services loaded", {
      source: opts.servicesPath,
      identity: manifest.identity,
      environment: manifest.environment,
      service_count: manifest.services.length,
      passthrough_count: manifest.passthroughHosts.length,
    });
    src.problems().forEach(warnSecretProblem);
  } else {
    let agent;
    try {
      agent = createAgentClient(env);
    } catch (e) {
      error("agent client init", { err: (e as Error).message });
      if (/ is not set$/.test((e as Error).message))
        info("no agent configured: to run without one (standalone mode), pass --services <file>", {
          usage: "clef-proxy serve --config <path> --services <file>",
        });
      return 4;
    }
    try {
      await agent.waitReady(mode.signals.controller.signal);
    } catch (e) {
      if (mode.signals.controller.signal.aborted) {
        info("shutdown signal received during readiness probe");
        return 0;
      }
      error("agent not ready within timeout", { err: (e as Error).message, timeout: "30s" });
      return (e as AgentError).code ?? 3;
    }
    info("agent ready");
    try {
      manifest = await agent.services();
    } catch (e) {
      error("fetch /v1/services", { err: (e as Error).message });
      return 1;
    }
    info("services fetched", {
      identity: manifest.identity,
      environment: manifest.environment,
      service_count: manifest.services.length,
      passthrough_count: manifest.passthroughHosts.length,
    });
    credentials = agent;
    manifestSha256 = agent.servicesSha256;
  }
  for (const w of validateManifest(manifest).warnings) warn(w.msg, w.attrs);

  // Bind (exit 6)
  let listener;
  try {
    listener = await bindListener(cfg.listen.port);
  } catch (e) {
    if (!(e instanceof BindError)) throw e;
    error("listener bind", { addr: `127.0.0.1:${cfg.listen.port}`, err: e.message });
    return 6;
  }
  // Admin listener (F14, exit 6 like the workload port)
  let admin: AdminServer | undefined;
  if (cfg.metrics.port !== 0) {
    try {
      admin = startAdminServer({ port: cfg.metrics.port, token: cfg.metrics.token, registry });
    } catch (e) {
      if (!(e instanceof AdminBindError)) throw e;
      error("listener bind", { addr: `127.0.0.1:${cfg.metrics.port}`, err: e.message });
      listener.close();
      return 6;
    }
  }
  info("listening", { addr: `127.0.0.1:${listener.port}` });
  if (admin) info("metrics listening", { addr: `127.0.0.1:${admin.port}` });

  // Audit (exit 2)
  let audit;
  try {
    audit = createAuditSink(cfg.audit, {
      proxyId: cfg.metadata.proxyId,
      authMode: mode.loopback ? "lambda-loopback" : undefined,
      exportContext: {
        upstream: cfg.upstream,
        env,
        identity: manifest.identity,
        environment: manifest.environment,
      },
    });
  } catch (e) {
    error("audit init", { err: (e as Error).message });
    listener.close();
    admin?.close();
    return 2;
  }
  const minter = createLeafMinter(ca, { cap: 1024 });
  if (admin) {
    const sink = audit;
    setSources({
      auditStats: () => sink.stats(),
      leafCacheSize: () => minter.size(),
      leafMints: () => minter.stats().mints,
      connectionsOpen: () => {
        const c = listener.stats();
        return { plain: c.plain, tunnel_h1: c.tunnel, upgraded: c.upgraded };
      },
    });
    observeManifest(manifest, manifestSha256);
    audit = withAuditMetrics(sink);
  }

  // Workload token (exit 4) and intercept init (exit 1)
  let token = env.CLEF_PROXY_TOKEN ?? "";
  if (opts.servicesPath && token === "" && !mode.loopback) {
    // Standalone mode is for a person at a terminal: make a token and say how to use it.
    token = randomBytes(18).toString("base64url");
    process.stderr.write(
      `clef-proxy: standalone mode: CLEF_PROXY_TOKEN was not set, generated one for this run.\n` +
        `  export HTTPS_PROXY=http://clef:${token}@127.0.0.1:${listener.port}\n`,
    );
  }
  if (!mode.loopback && token === "") {
    error("workload auth token missing", { env: "CLEF_PROXY_TOKEN" });
    listener.close();
    admin?.close();
    return 4;
  }
  try {
    listener.start({
      config: cfg,
      manifest,
      credentials,
      minter,
      audit,
      proxyId: cfg.metadata.proxyId,
      workloadToken: token,
      lambdaLoopback: mode.loopback,
    });
  } catch (e) {
    if (!(e instanceof InterceptInitError)) throw e;
    error("intercept init", { err: e.message });
    listener.close();
    admin?.close();
    return 1;
  }
  admin?.setReady(true);

  await mode.signals.received;
  admin?.setReady(false);
  info("shutdown signal received, draining", { drain_timeout: cfg.serve.drainTimeoutText });
  const deadline = Date.now() + cfg.serve.drainTimeoutMs;
  listener.stopAccepting();
  const drained = await Promise.race([listener.drain(deadline), mode.signals.forced.then(() => false)]);
  if (!drained) warn("drain deadline reached, forcing close", { err: "context deadline exceeded" });
  listener.close();
  credentials.close?.();
  await audit.close(deadline);
  admin?.close();
  info("clef-proxy stopped");
  return 0;
}

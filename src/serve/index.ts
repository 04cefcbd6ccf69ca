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
import type { AuditSink } from "../audit/types.ts";
import { type CA, CAError, createLeafMinter, defaultPaths, loadOrCreateCA, resolveCADir } from "../ca/index.ts";
import { ConfigError, loadConfig } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { BindError, bindListener, InterceptInitError } from "../intercept/listener.ts";
import type { Listener } from "../intercept/types.ts";
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

/** A startup step either yields its value or the process exit code (docs/CONTRACT.md §5 order). */
type Step<T> = T | { exit: number };
const failed = <T>(r: Step<T>): r is { exit: number } => typeof r === "object" && r !== null && "exit" in r;

interface Mode {
  lambda: boolean;
  loopback: boolean;
  signals: Signals;
}

interface Credentials {
  credentials: CredentialSource & { close?(): void };
  manifest: Manifest;
  sha256: string;
}

async function serve(cfg: Config, opts: ServeOptions, mode: Mode): Promise<number> {
  info("clef-proxy starting", {
    version: VERSION,
    proxy_id: cfg.metadata.proxyId,
    port: cfg.listen.port,
    lambda: mode.lambda,
  });
  const ca = loadCA(cfg);
  if (failed(ca)) return ca.exit;
  const creds = opts.servicesPath ? loadStandalone(opts.servicesPath) : await loadFromAgent(mode);
  if (failed(creds)) return creds.exit;
  for (const w of validateManifest(creds.manifest).warnings) warn(w.msg, w.attrs);

  const bound = await bindAll(cfg);
  if (failed(bound)) return bound.exit;
  const { listener, admin } = bound;
  const closeAll = (code: number) => {
    listener.close();
    admin?.close();
    return code;
  };
  const sink = openAudit(cfg, mode, creds.manifest);
  if (failed(sink)) return closeAll(sink.exit);
  const minter = createLeafMinter(ca, { cap: 1024 });
  let audit: AuditSink = sink;
  if (admin) {
    setSources({
      auditStats: () => sink.stats(),
      leafCacheSize: () => minter.size(),
      leafMints: () => minter.stats().mints,
      connectionsOpen: () => {
        const c = listener.stats();
        return { plain: c.plain, tunnel_h1: c.tunnel, upgraded: c.upgraded };
      },
    });
    observeManifest(creds.manifest, creds.sha256);
    audit = withAuditMetrics(sink);
  }

  const token = workloadToken(opts, mode, listener.port);
  if (failed(token)) return closeAll(token.exit);
  try {
    listener.start({
      config: cfg,
      manifest: creds.manifest,
      credentials: creds.credentials,
      minter,
      audit,
      proxyId: cfg.metadata.proxyId,
      workloadToken: token,
      lambdaLoopback: mode.loopback,
    });
  } catch (e) {
    if (!(e instanceof InterceptInitError)) throw e;
    error("intercept init", { err: e.message });
    return closeAll(1);
  }
  admin?.setReady(true);
  await mode.signals.received;
  admin?.setReady(false);
  await shutdown(cfg, mode, listener, creds.credentials, audit);
  admin?.close();
  info("clef-proxy stopped");
  return 0;
}

/** The CA (exit 5). */
function loadCA(cfg: Config): Step<CA> {
  let certPath = cfg.ca.certPath;
  try {
    const paths = cfg.ca.certPath
      ? { certPath: cfg.ca.certPath, keyPath: cfg.ca.keyPath }
      : defaultPaths(resolveCADir(process.env));
    certPath = paths.certPath;
    const ca = loadOrCreateCA(paths);
    info("CA loaded", { subject: ca.subject, not_after: ca.notAfter.toISOString().replace(/\.\d{3}Z$/, "Z") });
    return ca;
  } catch (e) {
    if (!(e instanceof CAError)) throw e;
    const msg = e.message.startsWith("resolve home dir") ? `resolve CA dir: ${e.message}` : e.message;
    error("CA load/generate", { err: msg, cert_path: certPath });
    return { exit: 5 };
  }
}

/** Standalone mode: the services file is the manifest and the credential source (exit 1). */
function loadStandalone(path: string): Step<Credentials> {
  let src: ReturnType<typeof loadServicesFile>;
  try {
    src = loadServicesFile(path, process.env);
  } catch (e) {
    error("services file", { err: (e as Error).message, path });
    return { exit: 1 };
  }
  const manifest = src.manifest;
  info("services loaded", {
    source: path,
    identity: manifest.identity,
    environment: manifest.environment,
    service_count: manifest.services.length,
    passthrough_count: manifest.passthroughHosts.length,
  });
  src.problems().forEach(warnSecretProblem);
  return { credentials: src, manifest, sha256: src.sha256 };
}

/** Agent mode: client init (exit 4), /v1/ready (exit 3, or 0 on a signal), /v1/services (exit 1). */
async function loadFromAgent(mode: Mode): Promise<Step<Credentials>> {
  let agent: ReturnType<typeof createAgentClient>;
  try {
    agent = createAgentClient(process.env);
  } catch (e) {
    error("agent client init", { err: (e as Error).message });
    if (/ is not set$/.test((e as Error).message))
      info("no agent configured: to run without one (standalone mode), pass --services <file>", {
        usage: "clef-proxy serve --config <path> --services <file>",
      });
    return { exit: 4 };
  }
  try {
    await agent.waitReady(mode.signals.controller.signal);
  } catch (e) {
    if (mode.signals.controller.signal.aborted) {
      info("shutdown signal received during readiness probe");
      return { exit: 0 };
    }
    error("agent not ready within timeout", { err: (e as Error).message, timeout: "30s" });
    return { exit: (e as AgentError).code ?? 3 };
  }
  info("agent ready");
  let manifest: Manifest;
  try {
    manifest = await agent.services();
  } catch (e) {
    error("fetch /v1/services", { err: (e as Error).message });
    return { exit: 1 };
  }
  info("services fetched", {
    identity: manifest.identity,
    environment: manifest.environment,
    service_count: manifest.services.length,
    passthrough_count: manifest.passthroughHosts.length,
  });
  return { credentials: agent, manifest, sha256: agent.servicesSha256 };
}

/** The workload listener and, when configured, the admin listener (exit 6 for either). */
async function bindAll(cfg: Config): Promise<Step<{ listener: Listener; admin?: AdminServer }>> {
  let listener: Listener;
  try {
    listener = await bindListener(cfg.listen.port);
  } catch (e) {
    if (!(e instanceof BindError)) throw e;
    error("listener bind", { addr: `127.0.0.1:${cfg.listen.port}`, err: e.message });
    return { exit: 6 };
  }
  let admin: AdminServer | undefined;
  if (cfg.metrics.port !== 0) {
    try {
      admin = startAdminServer({ port: cfg.metrics.port, token: cfg.metrics.token, registry });
    } catch (e) {
      if (!(e instanceof AdminBindError)) throw e;
      error("listener bind", { addr: `127.0.0.1:${cfg.metrics.port}`, err: e.message });
      listener.close();
      return { exit: 6 };
    }
  }
  info("listening", { addr: `127.0.0.1:${listener.port}` });
  if (admin) info("metrics listening", { addr: `127.0.0.1:${admin.port}` });
  return { listener, admin };
}

/** The audit sink and its exports (exit 2). */
function openAudit(cfg: Config, mode: Mode, manifest: Manifest): Step<ReturnType<typeof createAuditSink>> {
  try {
    return createAuditSink(cfg.audit, {
      proxyId: cfg.metadata.proxyId,
      authMode: mode.loopback ? "lambda-loopback" : undefined,
      exportContext: {
        upstream: cfg.upstream,
        env: process.env,
        identity: manifest.identity,
        environment: manifest.environment,
      },
    });
  } catch (e) {
    error("audit init", { err: (e as Error).message });
    return { exit: 2 };
  }
}

/** CLEF_PROXY_TOKEN (exit 4); standalone mode generates one and says how to use it. */
function workloadToken(opts: ServeOptions, mode: Mode, port: number): Step<string> {
  let token = process.env.CLEF_PROXY_TOKEN ?? "";
  if (opts.servicesPath && token === "" && !mode.loopback) {
    // Standalone mode is for a person at a terminal: make a token and say how to use it.
    token = randomBytes(18).toString("base64url");
    process.stderr.write(
      `clef-proxy: standalone mode: CLEF_PROXY_TOKEN was not set, generated one for this run.\n` +
        `  export HTTPS_PROXY=http://clef:${token}@127.0.0.1:${port}\n`,
    );
  }
  if (!mode.loopback && token === "") {
    error("workload auth token missing", { env: "CLEF_PROXY_TOKEN" });
    return { exit: 4 };
  }
  return token;
}

/** Drain (≤ drain_timeout; a second signal cuts it short), close, flush the audit trail. */
async function shutdown(
  cfg: Config,
  mode: Mode,
  listener: Listener,
  credentials: { close?(): void },
  audit: AuditSink,
): Promise<void> {
  info("shutdown signal received, draining", { drain_timeout: cfg.serve.drainTimeoutText });
  const deadline = Date.now() + cfg.serve.drainTimeoutMs;
  listener.stopAccepting();
  const drained = await Promise.race([listener.drain(deadline), mode.signals.forced.then(() => false)]);
  if (!drained) warn("drain deadline reached, forcing close", { err: "context deadline exceeded" });
  listener.close();
  credentials.close?.();
  await audit.close(deadline);
}

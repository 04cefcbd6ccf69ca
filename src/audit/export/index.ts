// The secondary audit sinks configured under `audit.webhook` and `audit.otlp` (shared/PHASE2.md
// §14, §15), built on one engine (./engine.ts) and one transport (./transport.ts).
import type { Config } from "../../config/types.ts";
import { VERSION } from "../../version.ts";
import { type Exporter, ExportEngine } from "./engine.ts";
import { otlpProtocol } from "./otlp.ts";
import { HttpTransport, type HttpTransportDeps } from "./transport.ts";
import { webhookProtocol } from "./webhook.ts";

/** OTLP has no batch settings of its own in the config: these (the webhook's defaults) apply. */
export const OTLP_BATCH_MAX_LINES = 500;
export const OTLP_FLUSH_INTERVAL_MS = 1_000;

export interface ExportContext {
  proxyId: string;
  version: string;
  /** From the manifest, for the OTLP resource. */
  identity?: string;
  environment?: string;
  /** upstream.proxy_url / no_proxy / proxy_auth: the corporate proxy the exports go through. */
  upstream: Config["upstream"];
  env: Record<string, string | undefined>;
  transportDeps?: HttpTransportDeps;
}

export function createExporters(cfg: Config["audit"], ctx: Partial<ExportContext> & { proxyId: string }): Exporter[] {
  const upstream = ctx.upstream ?? { proxyUrl: "", noProxy: [], proxyAuth: "" };
  const env = ctx.env ?? process.env;
  const version = ctx.version ?? VERSION;
  const out: Exporter[] = [];
  if (cfg.webhook) {
    const w = cfg.webhook;
    const t = new HttpTransport(w.url, w.headers, upstream, env, ctx.transportDeps);
    out.push(
      new ExportEngine(webhookProtocol(w, ctx.proxyId, version), t, {
        batchMaxLines: w.batchMaxLines,
        flushIntervalMs: w.flushIntervalMs,
        timeoutMs: w.timeoutMs,
        queueMaxLines: w.queueMaxLines,
      }),
    );
  }
  if (cfg.otlp) {
    const o = cfg.otlp;
    const t = new HttpTransport(o.url, o.headers, upstream, env, ctx.transportDeps);
    const resource = { proxyId: ctx.proxyId, version, identity: ctx.identity, environment: ctx.environment };
    out.push(
      new ExportEngine(otlpProtocol(resource, t.logUrl), t, {
        batchMaxLines: OTLP_BATCH_MAX_LINES,
        flushIntervalMs: OTLP_FLUSH_INTERVAL_MS,
        timeoutMs: o.timeoutMs,
        queueMaxLines: o.queueMaxLines,
      }),
    );
  }
  return out;
}

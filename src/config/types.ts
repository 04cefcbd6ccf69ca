// The validated, defaulted configuration (see docs/CONTRACT.md §4). Produced by src/config/load.ts.
export interface Config {
  listen: { port: number }; // 1-65535, default 8888; address is always 127.0.0.1
  upstream: {
    proxyUrl: string; // "" = use HTTP(S)_PROXY / NO_PROXY env
    noProxy: string[];
    proxyAuth: string; // "user:pass" or ""
  };
  audit: {
    destination: "stdout" | "file";
    file: string;
    maxSizeMb: number; // default 100
    maxFiles: number; // default 5
    // Phase 2 (shared/PHASE2.md §14, §15, §17): present only when on, so a Phase 1 config reads as before.
    /** audit.hash_chain: every line carries prev_sha256. */
    hashChain?: true;
    /** audit.webhook, when audit.webhook.url is set. */
    webhook?: WebhookConfig;
    /** audit.otlp, when an endpoint is configured (or enabled with the OTEL_EXPORTER_OTLP_* env). */
    otlp?: OtlpConfig;
  };
  ca: { certPath: string; keyPath: string }; // both "" = default CA dir
  metadata: { proxyId: string }; // default: OS hostname
  serve: { drainTimeoutMs: number; drainTimeoutText: string }; // text as Go prints it, e.g. "5s"
  lambdaLoopbackOnly: boolean;
  metrics: { port: number; token: string }; // admin listener on 127.0.0.1 (F14); port 0 = off, token "" = no auth
}

/** What both audit exports share (validated: see src/config/load.ts). */
export interface ExportHttpConfig {
  /** The receiver: https, or http to a loopback host. For OTLP the full logs URL (…/v1/logs). */
  url: string;
  /** Extra request headers (names are tokens, values without CR/LF; never logged). */
  headers: Array<[string, string]>;
  timeoutMs: number; // 1 s – 1 min, default 10 s
  queueMaxLines: number; // 1,000 – 10,000,000, default 100,000
}

export interface WebhookConfig extends ExportHttpConfig {
  hmacSecret: string; // "" = unsigned
  batchMaxLines: number; // 1 – 10,000, default 500
  flushIntervalMs: number; // 100 ms – 1 min, default 1 s
}

export type OtlpConfig = ExportHttpConfig;

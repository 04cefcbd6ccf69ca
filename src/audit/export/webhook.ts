// The audit webhook (shared/PHASE2.md §14, F12; docs/CONTRACT.md §11 "Exports"): batches of audit
// lines POSTed as NDJSON, byte-identical to what the primary sink wrote (prev_sha256 included when
// the chain is on), signed with HMAC-SHA256 over `<unix seconds>.<body>` when hmac_secret is set.
// Batching, retries, the queue and shutdown are the engine's (./engine.ts).
import { createHmac } from "node:crypto";
import type { WebhookConfig } from "../../config/types.ts";
import type { ExportProtocol } from "./engine.ts";

/** A header value from free text (proxy_id): visible ASCII kept, anything else percent-encoded. */
export function headerSafe(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  return s.replace(/[^\x20-\x7e]+/g, (m) =>
    Array.from(Buffer.from(m, "utf8"), (b) => "%" + b.toString(16).toUpperCase().padStart(2, "0")).join(""),
  );
}

/** `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` — what a receiver recomputes. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

/** 408, 429 and 5xx are retried; every other non-2xx answer drops the batch. */
export function webhookRetryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function webhookProtocol(
  cfg: Pick<WebhookConfig, "hmacSecret">,
  proxyId: string,
  version: string,
  nowMs: () => number = Date.now,
): ExportProtocol<string> {
  const id = headerSafe(proxyId);
  return {
    name: "webhook",
    item: (line) => line,
    body: (lines) => lines.join(""),
    headers(body, batchId) {
      const ts = String(Math.floor(nowMs() / 1000));
      const h: Record<string, string> = {
        "Content-Type": "application/x-ndjson",
        "User-Agent": `clef-proxy/${version}`,
        "X-Clef-Proxy-Id": id,
        "X-Clef-Batch-Id": batchId,
        "X-Clef-Timestamp": ts,
      };
      if (cfg.hmacSecret) h["X-Clef-Signature"] = webhookSignature(cfg.hmacSecret, ts, body);
      return h;
    },
    retryable: webhookRetryable,
  };
}

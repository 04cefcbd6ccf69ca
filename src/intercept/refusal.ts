// Every answer the proxy gives instead of (or in place of) an upstream response, in one table
// (docs/CONTRACT.md §8, §9, §18.1, §18.3, shared/PHASE2.md §1.6): status, body, headers, the audit
// line and the log line of each refusal kind. `refuse()` (./request.ts) is the one place that logs,
// answers and audits a refusal, so no refusal is written out twice.
//
// Phase 1 refusals keep the reference's bytes; refusals added since carry a `reason` in the body,
// the audit line and an `X-Clef-Proxy-Error` header.
import type { AuditEntry, AuditStatus } from "../audit/types.ts";
import { goJsonEncode } from "../gojson/encode.ts";
import type { Level } from "../log/slog.ts";

export interface Refusal {
  status: number;
  /** Go json.Encoder output (JSON refusals); for `text` refusals the body is Go's plain `400 Bad Request`. */
  body: string;
  /** Go net/http's plain-text 400 (always with `Connection: close`): a request the proxy cannot read. */
  text?: boolean;
  headers?: Array<[string, string]>;
  /** The audit line, or null for answers that are no decision (parse errors, 407, 503). */
  audit: { status: AuditStatus; fields?: Partial<AuditEntry> } | null;
  log: { level: Level; msg: string; attrs: Array<[string, string]> } | null;
  /** Close the connection after the answer whatever the client asked. */
  close?: boolean;
}

export const UPSTREAM_UNREACHABLE = "clef-proxy: upstream unreachable";
export const AGENT_ERROR = "clef-proxy: agent error";

function withReason(status: number, reason: string, body: Record<string, unknown>, host: string): Refusal {
  return {
    status,
    body: goJsonEncode({ ...body, host, reason }),
    headers: [["X-Clef-Proxy-Error", reason]],
    audit: { status: "denied", fields: { reason } },
    log: { level: "INFO", msg: `denied: ${reason.replace(/_/g, " ")}`, attrs: [] },
  };
}

export const refusals = {
  /** §18.1: the request names more than one host. */
  misdirected: (host: string, detail: string): Refusal => ({
    status: 421,
    body: goJsonEncode({
      detail,
      error: "clef-proxy: misdirected request: the request names more than one host",
      host,
    }),
    audit: { status: "denied" },
    log: { level: "INFO", msg: "denied: misdirected request", attrs: [["reason", detail]] },
  }),

  notInManifest: (host: string, serviceHeader: string): Refusal => ({
    status: 403,
    body: goJsonEncode({ error: `host ${JSON.stringify(host)} not in clef-proxy manifest`, host }),
    audit: { status: "denied" },
    log: { level: "INFO", msg: "denied: host not in manifest", attrs: [["service_header", serviceHeader]] },
  }),

  ambiguous: (host: string, candidates: string[], pattern?: string): Refusal => ({
    status: 400,
    body: goJsonEncode({
      candidates,
      error: `multiple services match host ${JSON.stringify(host)}; set X-Clef-Service header to one of these`,
    }),
    audit: { status: "denied", fields: pattern ? { hostPattern: pattern } : {} },
    log: {
      level: "INFO",
      msg: "ambiguous: multiple services match",
      attrs: [["candidates", `[${candidates.join(" ")}]`]],
    },
  }),

  invalidHost: (host: string): Refusal =>
    withReason(400, "invalid_host", { error: "clef-proxy: invalid host name" }, host),

  unsupportedMethod: (host: string, method: string): Refusal =>
    withReason(
      501,
      "unsupported_method",
      { error: `clef-proxy: method ${JSON.stringify(method)} is not supported` },
      host,
    ),

  unsupportedTarget: (host: string): Refusal =>
    withReason(501, "unsupported_target", { error: "clef-proxy: asterisk-form request-target is not supported" }, host),

  blockedHost: (host: string, pattern: string): Refusal => {
    const r = withReason(
      403,
      "blocked_host",
      { error: `host ${JSON.stringify(host)} is blocked by clef-proxy policy` },
      host,
    );
    r.audit = { status: "denied", fields: { reason: "blocked_host", hostPattern: pattern } };
    return r;
  },

  /** A malformed handle: 500, no agent call (docs/CONTRACT.md §6). */
  malformedHandle: (service: AuditFields, message: string): Refusal => ({
    status: 500,
    body: goJsonEncode({ error: message }),
    audit: { status: "agent_error", fields: service },
    log: {
      level: "ERROR",
      msg: "invalid credential handle in manifest",
      attrs: [
        ["service", service.service ?? ""],
        ["credential", service.credentialHandle ?? ""],
        ["err", message],
      ],
    },
  }),

  /** An agent failure (or an identifier the agent would refuse): 502 `agent error`. */
  agentError: (service: AuditFields, err: string): Refusal => ({
    status: 502,
    body: goJsonEncode({ error: AGENT_ERROR }),
    audit: { status: "agent_error", fields: service },
    log: {
      level: "INFO",
      msg: "agent resolution failed",
      attrs: [
        ["service", service.service ?? ""],
        ["err", err],
      ],
    },
  }),

  credentialNotFound: (service: AuditFields, handle: string, logAttrs: Array<[string, string]>): Refusal => ({
    status: 502,
    body: goJsonEncode({ error: `clef-proxy: credential ${handle} not found` }),
    audit: { status: "agent_error", fields: service },
    log: { level: "INFO", msg: "credential not found", attrs: [["service", service.service ?? ""], ...logAttrs] },
  }),

  /** Injection impossible (scheme, header name, CR/LF guard…): 500 with the inject error's text. */
  injectFailed: (service: AuditFields, message: string): Refusal => ({
    status: 500,
    body: goJsonEncode({ error: message }),
    audit: { status: "agent_error", fields: service },
    log: {
      level: "INFO",
      msg: "injection failed",
      attrs: [
        ["service", service.service ?? ""],
        ["err", message],
      ],
    },
  }),

  /** §18.2, §18.3, §18.21: the upstream could not be reached; `detail` is our own vocabulary. */
  upstreamUnreachable: (fields: AuditFields, detail: string): Refusal => ({
    status: 502,
    body: goJsonEncode({ detail, error: UPSTREAM_UNREACHABLE }),
    audit: { status: "tls_error", fields: { ...fields, upstreamStatus: 502 } },
    log: { level: "INFO", msg: "upstream unreachable", attrs: [["err", detail]] },
  }),

  /** §18.16: the audit queue is full; no line can be promised, so nothing is forwarded. */
  auditBackpressure: (): Refusal => ({
    status: 503,
    body: goJsonEncode({ error: "clef-proxy: audit log is not keeping up; retry later", reason: "audit_backpressure" }),
    headers: [
      ["Retry-After", "1"],
      ["X-Clef-Proxy-Error", "audit_backpressure"],
    ],
    audit: null,
    log: null,
  }),

  /** A request-target the proxy does not accept (§18.20): Go's plain 400, no decision, no line. */
  badRequestTarget: (why: string): Refusal => ({
    status: 400,
    body: "400 Bad Request",
    text: true,
    audit: null,
    log: { level: "WARN", msg: "malformed request", attrs: [["reason", why]] },
    close: true,
  }),
};

/** The service fields an audit line carries once a service was chosen. */
export type AuditFields = Pick<AuditEntry, "service" | "credentialHandle" | "injectionPoint" | "hostPattern">;

// src/intercept/refusal.ts: the refusals decide() does not produce (their bodies are Phase 1 bytes
// or PHASE2 §1.6 with reason + X-Clef-Proxy-Error), as the workload and the audit line see them.
// The decision refusals are in ./decide.test.ts.
import { describe, expect, test } from "bun:test";
import { AGENT_ERROR, refusals, UPSTREAM_UNREACHABLE } from "../../../src/intercept/refusal.ts";

const fields = { service: "gh", credentialHandle: "ns/K", injectionPoint: "header:Authorization" };

describe("refusals outside the decision", () => {
  test("502 upstream unreachable: Phase 1 bytes (detail, error), audit tls_error with upstream_status 502", () => {
    const r = refusals.upstreamUnreachable(fields, "dial tcp 127.0.0.1:1: connect: connection refused");
    expect(r.status).toBe(502);
    expect(r.body).toBe(
      '{"detail":"dial tcp 127.0.0.1:1: connect: connection refused","error":"clef-proxy: upstream unreachable"}\n',
    );
    expect(r.headers).toBeUndefined();
    expect(r.audit).toEqual({ status: "tls_error", fields: { ...fields, upstreamStatus: 502 } });
    expect(r.log).toEqual({
      level: "INFO",
      msg: "upstream unreachable",
      attrs: [["err", "dial tcp 127.0.0.1:1: connect: connection refused"]],
    });
    expect(JSON.parse(r.body).error).toBe(UPSTREAM_UNREACHABLE);
  });

  test("502 credential not found / agent error: Phase 1 bodies, audit agent_error", () => {
    const nf = refusals.credentialNotFound(fields, "ns/K", [["handle", "ns/K"]]);
    expect([nf.status, nf.body, nf.headers]).toEqual([
      502,
      '{"error":"clef-proxy: credential ns/K not found"}\n',
      undefined,
    ]);
    expect(nf.audit).toEqual({ status: "agent_error", fields });
    const ae = refusals.agentError(fields, "agent: timeout");
    expect([ae.status, ae.body]).toEqual([502, '{"error":"clef-proxy: agent error"}\n']);
    expect(JSON.parse(ae.body).error).toBe(AGENT_ERROR);
  });

  test("500 injection failed: the inject error's text (never a value)", () => {
    const r = refusals.injectFailed(
      fields,
      "clef-proxy: inject: credential value contains CR or LF (header injection guard)",
    );
    expect([r.status, r.body, r.headers]).toEqual([
      500,
      '{"error":"clef-proxy: inject: credential value contains CR or LF (header injection guard)"}\n',
      undefined,
    ]);
    expect(r.audit).toEqual({ status: "agent_error", fields });
  });

  test("503 audit backpressure: reason in body and header, Retry-After, no audit line (none can be promised)", () => {
    const r = refusals.auditBackpressure();
    expect(r.status).toBe(503);
    expect(r.body).toBe(
      '{"error":"clef-proxy: audit log is not keeping up; retry later","reason":"audit_backpressure"}\n',
    );
    expect(r.headers).toEqual([
      ["Retry-After", "1"],
      ["X-Clef-Proxy-Error", "audit_backpressure"],
    ]);
    expect(r.audit).toBeNull();
    expect(r.log).toBeNull();
  });

  test("Go json.Encoder escaping in bodies: <, >, & and U+2028 escaped, quotes in hosts", () => {
    const r = refusals.notInManifest('a<b>&"c\u2028', "");
    expect(r.body).toBe(
      '{"error":"host \\"a\\u003cb\\u003e\\u0026\\\\\\"c\\u2028\\" not in clef-proxy manifest","host":"a\\u003cb\\u003e\\u0026\\"c\\u2028"}\n',
    );
    expect(JSON.parse(r.body).host).toBe('a<b>&"c\u2028');
  });
});

// src/audit/export/{webhook,otlp}.ts: the webhook's headers and HMAC, and the OTLP/HTTP JSON
// request (structure per the OTLP protobuf JSON mapping), severities, attributes, traceparent.
import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { encodeAuditLine } from "../../../src/audit/encode.ts";
import {
  exportRequest,
  logRecord,
  otlpProtocol,
  otlpRetryable,
  parseTraceparent,
  partialSuccess,
  splitHostPort,
} from "../../../src/audit/export/otlp.ts";
import { headerSafe, webhookProtocol, webhookRetryable, webhookSignature } from "../../../src/audit/export/webhook.ts";
import type { AuditEntry } from "../../../src/audit/types.ts";

describe("webhook", () => {
  test("headers, and the signature a receiver recomputes over `<timestamp>.<body>`", () => {
    const p = webhookProtocol({ hmacSecret: "k3y" }, "proxy-1", "1.2.3", () => 1_800_000_000_123);
    const body = p.body(['{"a":1}\n', '{"b":2}\n']);
    expect(body).toBe('{"a":1}\n{"b":2}\n');
    const h = p.headers(body, "batch-1");
    expect(h).toEqual({
      "Content-Type": "application/x-ndjson",
      "User-Agent": "clef-proxy/1.2.3",
      "X-Clef-Proxy-Id": "proxy-1",
      "X-Clef-Batch-Id": "batch-1",
      "X-Clef-Timestamp": "1800000000",
      "X-Clef-Signature": "sha256=" + createHmac("sha256", "k3y").update(`1800000000.${body}`).digest("hex"),
    });
    expect(webhookSignature("k3y", "1800000000", body)).toBe(h["X-Clef-Signature"]!);
  });

  test("no hmac_secret → no signature header", () => {
    const h = webhookProtocol({ hmacSecret: "" }, "p", "1", () => 0).headers("x", "b");
    expect(h["X-Clef-Signature"]).toBeUndefined();
    expect(h["X-Clef-Timestamp"]).toBe("0");
  });

  test("retryable: 408, 429, 5xx; everything else permanent", () => {
    expect([408, 429, 500, 502, 503, 504, 599].every(webhookRetryable)).toBe(true);
    expect([301, 302, 400, 401, 403, 404, 413, 422].some(webhookRetryable)).toBe(false);
  });

  test("a proxy_id that is not a header value is percent-encoded", () => {
    expect(headerSafe("vm-1")).toBe("vm-1");
    expect(headerSafe("a\r\nb é")).toBe("a%0D%0Ab %C3%A9");
  });
});

const entry: AuditEntry = {
  ts: 1795384051024780471n,
  requestId: "d77e21c3-aca7-4093-b3cc-4041480edc26",
  clientIp: "127.0.0.1",
  method: "GET",
  host: "api.test:19443",
  path: "/one",
  service: "gh",
  credentialHandle: "ns/KEY",
  injectionPoint: "header:Authorization",
  status: "injected",
  upstreamStatus: 200,
  latencyMs: 7,
  workloadVerified: true,
  credentialHandles: ["ns/A", "ns/B"],
};

describe("OTLP", () => {
  test("traceparent: valid W3C values only", () => {
    expect(parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toEqual({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      flags: 1,
    });
    expect(parseTraceparent(" 01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future ")?.flags).toBe(0);
    for (const bad of [
      undefined,
      "",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // v00 with extra
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", // short
    ])
      expect(parseTraceparent(bad)).toBeNull();
  });

  test("one LogRecord: body is the exact line, attributes, severities, int64 as strings, ids from traceparent", () => {
    const line = encodeAuditLine(entry, { proxyId: "vm" }, "ab".repeat(32));
    const rec = logRecord({
      line,
      tsNs: 1795384051024780471n,
      observedNs: 1795384051030000000n,
      trace: parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    });
    expect(rec).toMatchObject({
      timeUnixNano: "1795384051024780471",
      observedTimeUnixNano: "1795384051030000000",
      severityNumber: 9,
      severityText: "INFO",
      eventName: "clef.proxy.audit",
      body: { stringValue: line.slice(0, -1) },
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      flags: 1,
    });
    const attrs = Object.fromEntries(
      (rec.attributes as Array<{ key: string; value: unknown }>).map((a) => [a.key, a.value]),
    );
    expect(attrs).toEqual({
      "clef.audit.schema_version": { intValue: "1" },
      "clef.audit.ts": { stringValue: "2026-11-22T21:47:31.024780471Z" },
      "clef.audit.proxy_id": { stringValue: "vm" },
      "clef.audit.request_id": { stringValue: "d77e21c3-aca7-4093-b3cc-4041480edc26" },
      "clef.audit.client_ip": { stringValue: "127.0.0.1" },
      "clef.audit.method": { stringValue: "GET" },
      "clef.audit.host": { stringValue: "api.test:19443" },
      "clef.audit.path": { stringValue: "/one" },
      "clef.audit.service": { stringValue: "gh" },
      "clef.audit.credential_handle": { stringValue: "ns/KEY" },
      "clef.audit.injection_point": { stringValue: "header:Authorization" },
      "clef.audit.status": { stringValue: "injected" },
      "clef.audit.upstream_status": { intValue: "200" },
      "clef.audit.latency_ms": { intValue: "7" },
      "clef.audit.workload_verified": { boolValue: true },
      "clef.audit.credential_handles": { arrayValue: { values: [{ stringValue: "ns/A" }, { stringValue: "ns/B" }] } },
      "clef.audit.prev_sha256": { stringValue: "ab".repeat(32) },
      "http.request.method": { stringValue: "GET" },
      "server.address": { stringValue: "api.test" },
      "server.port": { intValue: "19443" },
      "url.path": { stringValue: "/one" },
      "http.response.status_code": { intValue: "200" },
      "client.address": { stringValue: "127.0.0.1" },
    });
  });

  test("severity by status; no trace fields without a valid traceparent; no port → no server.port", () => {
    const sev = (status: AuditEntry["status"]) =>
      logRecord({
        line: encodeAuditLine({ ...entry, status, host: "deny.test" }, { proxyId: "vm" }),
        tsNs: 1n,
        observedNs: 2n,
        trace: null,
      });
    expect(
      [sev("injected"), sev("passthrough"), sev("denied"), sev("agent_error"), sev("tls_error")].map((r) => [
        r.severityNumber,
        r.severityText,
      ]),
    ).toEqual([
      [9, "INFO"],
      [9, "INFO"],
      [13, "WARN"],
      [17, "ERROR"],
      [17, "ERROR"],
    ]);
    const r = sev("denied");
    expect(r.traceId).toBeUndefined();
    expect(r.spanId).toBeUndefined();
    const keys = (r.attributes as Array<{ key: string }>).map((a) => a.key);
    expect(keys).toContain("server.address");
    expect(keys).not.toContain("server.port");
  });

  test("the request: resource, scope, records (ExportLogsServiceRequest JSON)", () => {
    const p = otlpProtocol({ proxyId: "vm", version: "1.2.3", identity: "myid", environment: "prod" }, "http://x");
    const item = p.item(encodeAuditLine(entry, { proxyId: "vm" }), {
      ...entry,
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    });
    expect(item.tsNs).toBe(1795384051024780471n);
    expect(item.trace?.spanId).toBe("00f067aa0ba902b7");
    const req = JSON.parse(p.body([item, item]));
    expect(Object.keys(req)).toEqual(["resourceLogs"]);
    const rl = req.resourceLogs[0];
    expect(rl.resource.attributes).toEqual([
      { key: "service.name", value: { stringValue: "clef-proxy" } },
      { key: "service.version", value: { stringValue: "1.2.3" } },
      { key: "service.instance.id", value: { stringValue: "vm" } },
      { key: "clef.identity", value: { stringValue: "myid" } },
      { key: "clef.environment", value: { stringValue: "prod" } },
    ]);
    expect(rl.scopeLogs[0].scope).toEqual({ name: "clef-proxy.audit", version: "1.2.3" });
    expect(rl.scopeLogs[0].logRecords.length).toBe(2);
    expect(p.headers("", "b")).toEqual({ "Content-Type": "application/json", "User-Agent": "clef-proxy/1.2.3" });
    expect(exportRequest([], { proxyId: "p", version: "1" }).resourceLogs).toBeArrayOfSize(1);
  });

  test("retryable per OTLP/HTTP: 429, 502, 503, 504", () => {
    expect([429, 502, 503, 504].every(otlpRetryable)).toBe(true);
    expect([400, 401, 404, 408, 413, 500, 501].some(otlpRetryable)).toBe(false);
  });

  test("partialSuccess", () => {
    expect(partialSuccess("{}")).toBeNull();
    expect(partialSuccess('{"partialSuccess":{}}')).toBeNull();
    expect(partialSuccess('{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"bad"}}')).toEqual({
      rejected: 2,
      message: "bad",
    });
    expect(partialSuccess("not json")).toBeNull();
  });

  test("host and port", () => {
    expect(splitHostPort("a.test:443")).toEqual(["a.test", 443]);
    expect(splitHostPort("[::1]:8443")).toEqual(["::1", 8443]);
    expect(splitHostPort("[::1]")).toEqual(["::1", null]);
    expect(splitHostPort("a.test")).toEqual(["a.test", null]);
  });
});

// src/audit/encode.ts: the Phase 2 keys (PHASE2 §1.5) after auth_mode, in order, omitted when empty.
import { describe, expect, test } from "bun:test";
import { encodeAuditLine, entryTsNs, rfc3339Nano } from "../../../src/audit/encode.ts";
import type { AuditEntry } from "../../../src/audit/types.ts";

const base: AuditEntry = {
  ts: "2026-11-22T21:47:31.054457939Z",
  requestId: "r1",
  clientIp: "127.0.0.1",
  method: "GET",
  host: "api.test:19443",
  path: "/x",
  status: "denied",
  latencyMs: 0,
};
const PHASE1 =
  '{"schema_version":1,"ts":"2026-11-22T21:47:31.054457939Z","proxy_id":"vm","request_id":"r1","client_ip":"127.0.0.1","method":"GET","host":"api.test:19443","path":"/x","status":"denied","latency_ms":0';

describe("Phase 2 keys", () => {
  test("all of them, in PHASE2 §1.5 order after auth_mode, prev_sha256 last", () => {
    const e: AuditEntry = {
      ...base,
      injectionPoints: ["header:A", "query:k"],
      credentialHandles: ["ns/A", "ns/B"],
      placeholderService: "ph",
      rule: "no-delete",
      reason: "rule_denied",
      hostPattern: "*.github.com",
      workloadVerified: true,
      workload: "ci",
      upstreamProtocol: "HTTP/2",
      protocol: "HTTP/2",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    expect(encodeAuditLine(e, { proxyId: "vm", authMode: "lambda-loopback" }, "ab".repeat(32))).toBe(
      PHASE1 +
        ',"auth_mode":"lambda-loopback","protocol":"HTTP/2","upstream_protocol":"HTTP/2","workload":"ci",' +
        '"workload_verified":true,"host_pattern":"*.github.com","reason":"rule_denied","rule":"no-delete",' +
        '"placeholder_service":"ph","credential_handles":["ns/A","ns/B"],"injection_points":["header:A","query:k"],' +
        `"prev_sha256":"${"ab".repeat(32)}"}\n`,
    );
  });

  test("empty, false, zero and empty arrays are omitted: a Phase 1 line stays byte-identical", () => {
    const e: AuditEntry = {
      ...base,
      protocol: "",
      upstreamProtocol: "",
      workload: "",
      workloadVerified: false,
      hostPattern: "",
      reason: "",
      rule: "",
      placeholderService: "",
      credentialHandles: [],
      injectionPoints: [],
    };
    expect(encodeAuditLine(e, { proxyId: "vm" })).toBe(PHASE1 + "}\n");
    expect(encodeAuditLine(e, { proxyId: "vm" }, "")).toBe(PHASE1 + "}\n");
  });

  test("traceparent is never encoded", () => {
    const line = encodeAuditLine(
      { ...base, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
      {
        proxyId: "vm",
      },
    );
    expect(line).toBe(PHASE1 + "}\n");
    expect(line).not.toContain("traceparent");
  });

  test("array items and strings use Go's HTML-safe escaping", () => {
    const line = encodeAuditLine(
      { ...base, workload: "<a&b>", injectionPoints: ['header:"X"', "é\u2028"] },
      {
        proxyId: "vm",
      },
    );
    expect(line).toEndWith(',"workload":"\\u003ca\\u0026b\\u003e","injection_points":["header:\\"X\\"","é\\u2028"]}\n');
    expect(JSON.parse(line).injection_points).toEqual(['header:"X"', "é\u2028"]);
  });
});

describe("entryTsNs", () => {
  test("bigint, Date and RFC3339Nano strings give the same nanoseconds", () => {
    const ns = 1795384051024780471n;
    expect(entryTsNs(ns)).toBe(ns);
    expect(entryTsNs(rfc3339Nano(ns))).toBe(ns);
    expect(entryTsNs(new Date(1795384051024))).toBe(1795384051024000000n);
    expect(entryTsNs("2026-11-22T21:47:31Z")).toBe(BigInt(Date.parse("2026-11-22T21:47:31Z")) * 1_000_000n);
    expect(entryTsNs("garbage")).toBe(0n);
  });
});

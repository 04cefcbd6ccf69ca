// src/audit/encode.ts: the Phase 2 keys (PHASE2 §1.5) after auth_mode, in order, omitted when empty.
import { describe, expect, test } from "bun:test";
import { encodeAuditLine, entryTsNs, rfc3339Nano, rfc3339NanoMs } from "../../../src/audit/encode.ts";
import { goJsonString } from "../../../src/gojson/encode.ts";
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

describe("fast paths (plain strings quoted as they are, the date formatted once a second)", () => {
  // the encoder before its fast paths: every key and value through goJsonString, the date from scratch
  const pad = (n: number | bigint, w = 2) => String(n).padStart(w, "0");
  const slowTs = (ns: bigint) => {
    const d = new Date(Number(ns / 1_000_000n));
    const frac = ns % 1_000_000_000n;
    const f = frac === 0n ? "" : "." + pad(frac, 9).replace(/0+$/, "");
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${f}Z`;
  };
  const slowLine = (e: AuditEntry, proxyId: string, authMode?: string) => {
    const f: Array<[string, string | number]> = [
      ["schema_version", 1],
      ["ts", slowTs(e.ts as bigint)],
      ["proxy_id", proxyId],
      ["request_id", e.requestId],
      ["client_ip", e.clientIp],
      ["method", e.method],
      ["host", e.host],
      ["path", e.path],
    ];
    if (e.service) f.push(["service", e.service]);
    if (e.credentialHandle) f.push(["credential_handle", e.credentialHandle]);
    if (e.injectionPoint) f.push(["injection_point", e.injectionPoint]);
    f.push(["status", e.status]);
    if (e.upstreamStatus) f.push(["upstream_status", e.upstreamStatus]);
    f.push(["latency_ms", e.latencyMs]);
    if (authMode) f.push(["auth_mode", authMode]);
    if (e.reason) f.push(["reason", e.reason]);
    return `{${f.map(([k, v]) => `${goJsonString(k)}:${typeof v === "number" ? v : goJsonString(v)}`).join(",")}}\n`;
  };

  test("every value, with or without characters to escape, encodes as through the escaper", () => {
    const alphabet = ["a", "Z", "0", " ", "/", "%", "=", "?", "[", "]", "~", "{", "'", '"', "\\", "<", ">", "&"];
    const special = ["\n", "\x01", "\x7f", "é", "\u2028", "\ud800", "\udc00", "😀"];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor(seed / 65536) % n; // (the high bits: the low ones of this generator repeat with a short period)
    };
    const str = () =>
      Array.from({ length: rnd(9) }, () =>
        rnd(5) === 0 ? special[rnd(special.length)] : alphabet[rnd(alphabet.length)],
      ).join("");
    // services from a small pool, so that a service's remembered run is met again — with the same
    // handle and point, and with others
    const services = ["api", "", "a<b", "svc"];
    const statuses = ["injected", "passthrough", "denied", "agent_error", "tls_error", "other", 'q"', "constructor"];
    for (let i = 0; i < 3000; i++) {
      const e: AuditEntry = {
        ts: BigInt(1_700_000_000 + rnd(100_000)) * 1_000_000_000n + BigInt(rnd(3) === 0 ? 0 : rnd(1_000_000_000)),
        requestId: str(),
        clientIp: str(),
        method: str(),
        host: str(),
        path: str(),
        status: statuses[rnd(statuses.length)] as AuditEntry["status"],
        latencyMs: rnd(1000),
        ...(rnd(2) ? { service: rnd(2) ? services[rnd(services.length)] : str() } : {}),
        ...(rnd(2) ? { credentialHandle: rnd(2) ? "ns/KEY" : str() } : {}),
        ...(rnd(2) ? { injectionPoint: rnd(2) ? "header:Authorization" : str() } : {}),
        ...(rnd(2) ? { upstreamStatus: 200 } : {}),
        ...(rnd(2) ? { reason: str() } : {}),
      };
      const proxyId = str();
      const authMode = rnd(2) ? str() : undefined;
      expect(encodeAuditLine(e, { proxyId, authMode })).toBe(slowLine(e, proxyId, authMode));
    }
  });

  test("every kind of ts (milliseconds, Date, bigint, text) gives the line its RFC 3339 text", () => {
    const ctx = { proxyId: "vm" };
    const ms0 = 1795384051000;
    for (const ms of [ms0, ms0 + 1, ms0 + 0.5, ms0 + 999.25, ms0 + 1000, ms0 - 1000 + 0.25]) {
      expect(JSON.parse(encodeAuditLine({ ...base, ts: ms }, ctx)).ts).toBe(rfc3339NanoMs(ms));
      if (Number.isInteger(ms))
        expect(JSON.parse(encodeAuditLine({ ...base, ts: new Date(ms) }, ctx)).ts).toBe(rfc3339NanoMs(ms));
    }
    for (const ns of [1795384051000000000n, 1795384051000000001n, 1795384051999999999n, 1795384052000000000n])
      expect(JSON.parse(encodeAuditLine({ ...base, ts: ns }, ctx)).ts).toBe(rfc3339Nano(ns));
    for (const text of ["2026-11-22T21:47:31Z", "2026-11-22T22:47:31.5+01:00", "2026-11-22T21:47:31.000000001Z"]) {
      const line = encodeAuditLine({ ...base, ts: text }, ctx);
      expect(JSON.parse(line).ts).toBe(text);
      expect(line).toStartWith(`{"schema_version":1,"ts":"${text}","proxy_id":"vm","request_id":"r1",`);
    }
    // a text after a number (and the other way round): the opening is the text's, not the cached second's
    encodeAuditLine({ ...base, ts: ms0 }, ctx);
    expect(JSON.parse(encodeAuditLine({ ...base, ts: "x" }, ctx)).ts).toBe("x");
    expect(JSON.parse(encodeAuditLine({ ...base, ts: ms0 + 2000 }, ctx)).ts).toBe("2026-11-22T21:47:33Z");
  });

  test("timestamps within a second and across seconds (the cached part changes with the second)", () => {
    const t0 = 1795384051n * 1_000_000_000n;
    for (const d of [0n, 1n, 999_999_999n, 1_000_000_000n, 500_000_000n, -1_000_000_000n, 86_400_000_000_000n, 5n])
      expect(rfc3339Nano(t0 + d)).toBe(slowTs(t0 + d));
  });

  // The data path's timestamp is a double (milliseconds since the epoch, the fraction from
  // performance.now()): the same text as the nanoseconds it holds, to the double's ≈0.25 µs.
  test("from milliseconds with a fraction: the text of the nanoseconds they hold", () => {
    const ms0 = 1795384051000;
    const rows: Array<[number, string]> = [
      [ms0, "2026-11-22T21:47:31Z"],
      [ms0 + 1, "2026-11-22T21:47:31.001Z"],
      [ms0 + 999, "2026-11-22T21:47:31.999Z"],
      [ms0 + 1000, "2026-11-22T21:47:32Z"],
      [ms0 + 0.5, "2026-11-22T21:47:31.0005Z"],
      [ms0 + 24.75, "2026-11-22T21:47:31.02475Z"],
      [ms0 - 1000 + 0.25, "2026-11-22T21:47:30.00025Z"],
    ];
    for (const [ms, want] of rows) expect(rfc3339NanoMs(ms)).toBe(want);
    let seed = 3;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const ms = ms0 + (seed % 86_400_000) + (seed % 4096) / 4096;
      const text = rfc3339NanoMs(ms);
      // within a microsecond of the exact value's text, same second, well formed
      expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/);
      const ns = entryTsNs(text);
      const exact = BigInt(Math.round(ms * 1000)) * 1000n; // the µs it names, exactly
      const diff = ns > exact ? ns - exact : exact - ns;
      expect(diff < 1000n).toBe(true);
      expect(entryTsNs(ms) - ns < 1000n && ns - entryTsNs(ms) < 1000n).toBe(true);
    }
  });
});

// A path byte that was not UTF-8 reaches the encoder as U+DC00 + byte (src/http/target.ts
// decodedPath); Go's json.Encoder writes each such byte as the six characters \ufffd, and a valid
// U+FFFD as its UTF-8 (the reference's line for GET /r\xef\xbf\xbd\xe9 holds "/r�\ufffd").
test("path bytes that were not UTF-8 are written as Go writes them: \\ufffd each", () => {
  const line = encodeAuditLine({ ...base, path: "/r\ufffd\udce9\udc80é" }, { proxyId: "vm" });
  expect(line).toContain('"path":"/r\ufffd\\ufffd\\ufffdé"');
  expect(JSON.parse(line).path).toBe("/r\ufffd\ufffd\ufffdé");
});

// The audit settings of the config file (src/config/load.ts): audit.hash_chain, audit.webhook.*,
// audit.otlp.* — defaults, ranges, URL and header rules, the OTEL_EXPORTER_OTLP_* env.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../../src/config/load.ts";

const parse = (audit: unknown, env: Record<string, string> = {}) => parseConfig(JSON.stringify({ audit }), env).audit;
const problem = (audit: unknown, env: Record<string, string> = {}) => {
  try {
    parse(audit, env);
  } catch (e) {
    return (e as Error).message;
  }
  return null;
};

describe("defaults keep Phase 1", () => {
  test("nothing on, and the audit section has only its Phase 1 fields", () => {
    expect(parse({})).toEqual({ destination: "stdout", file: "", maxSizeMb: 100, maxFiles: 5 });
    expect(Object.keys(parse({ hash_chain: false, webhook: { url: "" }, otlp: {} }))).toEqual([
      "destination",
      "file",
      "maxSizeMb",
      "maxFiles",
    ]);
  });

  test("hash_chain", () => {
    expect(parse({ hash_chain: true }).hashChain).toBe(true);
    expect(problem({ hash_chain: "yes" })).toBe(
      "json: cannot unmarshal string into Go struct field AuditConfig.audit.hash_chain of type bool",
    );
  });
});

describe("audit.webhook", () => {
  test("a full section", () => {
    expect(
      parse({
        webhook: {
          url: "https://siem.example/clef?x=1",
          hmac_secret: "s3",
          headers: { "X-Tenant": "t1", Authorization: "Bearer z" },
          batch_max_lines: 10,
          flush_interval: "250ms",
          timeout: "5s",
          queue_max_lines: 2000,
        },
      }).webhook,
    ).toEqual({
      url: "https://siem.example/clef?x=1",
      hmacSecret: "s3",
      headers: [
        ["X-Tenant", "t1"],
        ["Authorization", "Bearer z"],
      ],
      batchMaxLines: 10,
      flushIntervalMs: 250,
      timeoutMs: 5000,
      queueMaxLines: 2000,
    });
  });

  test("defaults (0 and null mean default)", () => {
    expect(parse({ webhook: { url: "https://s.example/", batch_max_lines: 0, flush_interval: null } }).webhook).toEqual(
      {
        url: "https://s.example/",
        hmacSecret: "",
        headers: [],
        batchMaxLines: 500,
        flushIntervalMs: 1000,
        timeoutMs: 10000,
        queueMaxLines: 100000,
      },
    );
  });

  test("URL: https, or http to loopback only", () => {
    for (const ok of ["http://127.0.0.1:9/x", "http://localhost:9", "http://[::1]:9/", "HTTPS://S.example"])
      expect(problem({ webhook: { url: ok } })).toBeNull();
    expect(problem({ webhook: { url: "http://siem.example/x" } })).toBe(
      'audit.webhook.url: scheme must be https (http only for loopback), got "http"',
    );
    expect(problem({ webhook: { url: "ftp://siem.example/x" } })).toBe(
      'audit.webhook.url: scheme must be https (http only for loopback), got "ftp"',
    );
    expect(problem({ webhook: { url: "siem.example/x" } })).toBe(
      'audit.webhook.url: scheme must be https (http only for loopback), got ""',
    );
    expect(problem({ webhook: { url: "127.0.0.1:9/x" } })).toBe(
      'audit.webhook.url: parse "127.0.0.1:9/x": first path segment in URL cannot contain colon',
    );
    expect(problem({ webhook: { url: "://x" } })).toBe('audit.webhook.url: parse "://x": missing protocol scheme');
    expect(problem({ webhook: { url: "https:///x" } })).toBe('audit.webhook.url: "https:///x" has no host');
    // userinfo and query are never echoed
    expect(problem({ webhook: { url: "https://user:SECRET@/x?k=SECRETQ" } })).toBe(
      'audit.webhook.url: "https:///x" has no host',
    );
    expect(problem({ webhook: { url: "https://u:SECRET@h.example/\x01?k=SECRETQ" } })).toBe(
      'audit.webhook.url: parse "https://h.example/\\u0001": net/url: invalid control character in URL',
    );
  });

  test("ranges", () => {
    expect(problem({ webhook: { url: "https://s.example", batch_max_lines: 10001 } })).toBe(
      "audit.webhook.batch_max_lines: 10001 out of range (1-10000)",
    );
    expect(problem({ webhook: { url: "https://s.example", batch_max_lines: -1 } })).toBe(
      "audit.webhook.batch_max_lines: -1 out of range (1-10000)",
    );
    expect(problem({ webhook: { url: "https://s.example", flush_interval: "50ms" } })).toBe(
      "audit.webhook.flush_interval: 50ms out of range (100ms-1m0s)",
    );
    expect(problem({ webhook: { url: "https://s.example", flush_interval: "61s" } })).toBe(
      "audit.webhook.flush_interval: 1m1s out of range (100ms-1m0s)",
    );
    expect(problem({ webhook: { url: "https://s.example", timeout: "500ms" } })).toBe(
      "audit.webhook.timeout: 500ms out of range (1s-1m0s)",
    );
    expect(problem({ webhook: { url: "https://s.example", queue_max_lines: 999 } })).toBe(
      "audit.webhook.queue_max_lines: 999 out of range (1000-10000000)",
    );
    expect(problem({ webhook: { url: "https://s.example", timeout: 5 } })).toBe(
      "config: audit.webhook.timeout must be a duration string: json: cannot unmarshal number into Go value of type string",
    );
    expect(problem({ webhook: { url: "https://s.example", timeout: "soon" } })).toBe(
      'config: invalid audit.webhook.timeout "soon": time: invalid duration "soon"',
    );
  });

  test("headers: token names, not Content-Type/Content-Length/Host, values without CR/LF (never echoed)", () => {
    const h = (headers: unknown) => problem({ webhook: { url: "https://s.example", headers } });
    expect(h({ "Bad Name": "x" })).toBe('audit.webhook.headers: "Bad Name" is not a valid header name');
    expect(h({ "content-type": "x" })).toBe("audit.webhook.headers: content-type cannot be set");
    expect(h({ Host: "x" })).toBe("audit.webhook.headers: Host cannot be set");
    expect(h({ "Content-Length": "1" })).toBe("audit.webhook.headers: Content-Length cannot be set");
    const m = h({ "X-Key": "SECRET\r\nInjected: 1" });
    expect(m).toBe(
      "audit.webhook.headers: the value of X-Key contains CR, LF or another character not allowed in a header",
    );
    expect(m).not.toContain("SECRET");
    expect(h(["x"])).toBe(
      "json: cannot unmarshal array into Go struct field WebhookConfig.audit.webhook.headers of type map[string]string",
    );
    expect(h({ "X-A": 1 })).toBe(
      "json: cannot unmarshal number into Go struct field WebhookConfig.audit.webhook.headers.X-A of type string",
    );
  });
});

describe("audit.otlp", () => {
  const OTEL = {
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/",
    OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Bearer%20abc,X-Scope = s1",
  };

  test("endpoint in the config: a base URL gets /v1/logs, a URL with a path is used as is", () => {
    expect(parse({ otlp: { endpoint: "http://127.0.0.1:4318" } }).otlp).toEqual({
      url: "http://127.0.0.1:4318/v1/logs",
      headers: [],
      timeoutMs: 10000,
      queueMaxLines: 100000,
    });
    expect(parse({ otlp: { endpoint: "https://c.example/otlp/v1/logs" } }).otlp!.url).toBe(
      "https://c.example/otlp/v1/logs",
    );
  });

  test("the OTEL env is read only when enabled", () => {
    expect(parse({}, OTEL).otlp).toBeUndefined();
    expect(parse({ otlp: { enabled: false, endpoint: "http://127.0.0.1:4318" } }, OTEL).otlp).toBeUndefined();
    expect(parse({ otlp: { enabled: true } }, OTEL).otlp).toEqual({
      url: "http://127.0.0.1:4318/v1/logs",
      headers: [
        ["Authorization", "Bearer abc"],
        ["X-Scope", "s1"],
      ],
      timeoutMs: 10000,
      queueMaxLines: 100000,
    });
    expect(
      parse({ otlp: { enabled: true } }, { ...OTEL, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "https://c.example/logs" }).otlp!
        .url,
    ).toBe("https://c.example/logs");
    // config headers win over the env's
    expect(parse({ otlp: { enabled: true, headers: { "X-A": "1" } } }, OTEL).otlp!.headers).toEqual([["X-A", "1"]]);
    // endpoint in the config, headers from the env
    expect(parse({ otlp: { endpoint: "http://127.0.0.1:1" } }, OTEL).otlp!.headers.length).toBe(2);
  });

  test("errors", () => {
    expect(problem({ otlp: { enabled: true } })).toBe(
      "audit.otlp.enabled: true but no endpoint: set audit.otlp.endpoint, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT",
    );
    expect(problem({ otlp: { endpoint: "http://collector.example:4318" } })).toBe(
      'audit.otlp.endpoint: scheme must be https (http only for loopback), got "http"',
    );
    expect(problem({ otlp: { enabled: true } }, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector.example:4318" })).toBe(
      'audit.otlp.endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): scheme must be https (http only for loopback), got "http"',
    );
    expect(problem({ otlp: { enabled: true } }, { ...OTEL, OTEL_EXPORTER_OTLP_HEADERS: "a=1,novalue" })).toBe(
      "audit.otlp.headers: OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value",
    );
    expect(problem({ otlp: { endpoint: "https://c.example", headers: { Host: "x" } } })).toBe(
      "audit.otlp.headers: Host cannot be set",
    );
    expect(problem({ otlp: { endpoint: "https://c.example", queue_max_lines: 20_000_000 } })).toBe(
      "audit.otlp.queue_max_lines: 20000000 out of range (1000-10000000)",
    );
    expect(problem({ otlp: { endpoint: "https://c.example", timeout: "2m" } })).toBe(
      "audit.otlp.timeout: 2m0s out of range (1s-1m0s)",
    );
  });
});

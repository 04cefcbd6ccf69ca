// src/metrics/series.ts and observe.ts in process: every F14 series is declared, the bounded label
// sets hold (no host, path or free text from a request becomes a label), audit entries and the
// manifest are observed, and the rendering passes the real `promtool check metrics` when installed.
import { describe, expect, test } from "bun:test";
import type { AuditEntry, AuditSink } from "../../../src/audit/types.ts";
import { observeAuditEntry, observeManifest, withAuditMetrics } from "../../../src/metrics/observe.ts";
import { registry, series, setSources } from "../../../src/metrics/series.ts";

const entry = (e: Partial<AuditEntry>): AuditEntry => ({
  ts: new Date(),
  requestId: "r",
  clientIp: "127.0.0.1",
  method: "GET",
  host: "evil-host.test:443",
  path: "/secret/path",
  status: "denied",
  latencyMs: 3,
  ...e,
});

describe("series", () => {
  test("every F14 series is declared (shared/PHASE2.md §16)", () => {
    const names = registry.names();
    for (const n of [
      "requests_total",
      "denials_total",
      "request_duration_seconds",
      "upstream_ttfb_seconds",
      "connections_open",
      "h2_streams_open",
      "h2_goaway_total",
      "h2_client_resets_total",
      "agent_requests_total",
      "secret_cache_total",
      "manifest_reloads_total",
      "manifest_last_applied_timestamp_seconds",
      "manifest_info",
      "audit_lines_total",
      "audit_queue_lines",
      "leaf_mints_total",
      "leaf_cache_size",
      "netguard_blocks_total",
      "placeholder_events_total",
      "workload_auth_failures_total",
      "build_info",
    ])
      expect(names).toContain(`clef_proxy_${n}`);
    for (const n of [
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
      "process_start_time_seconds",
      "process_open_fds",
    ])
      expect(names).toContain(n);
  });

  test("audit entries: status/service/protocol/workload labels only from bounded sets", () => {
    observeManifest({ identity: "id", environment: "env", services: [{ name: "gh" }] }, "a".repeat(64));
    observeAuditEntry(entry({ status: "injected", service: "gh", latencyMs: 12 }));
    observeAuditEntry(entry({ status: "injected", service: "not-a-manifest-name" }));
    observeAuditEntry(entry({ status: "denied", reason: "blocked_host", protocol: "HTTP/2" }));
    observeAuditEntry(entry({ status: "denied", reason: "made_up_reason" }));
    observeAuditEntry(entry({ status: "passthrough", workload: "claimed-by-client", workloadVerified: false }));
    const text = registry.render();
    expect(text).toContain('clef_proxy_requests_total{status="injected",service="gh",protocol="h1",workload=""} 1');
    expect(text).toContain('clef_proxy_requests_total{status="injected",service="",protocol="h1",workload=""} 1');
    expect(text).toContain('clef_proxy_requests_total{status="denied",service="",protocol="h2",workload=""} 1');
    expect(text).toContain(
      'clef_proxy_requests_total{status="passthrough",service="",protocol="h1",workload="unverified"} 1',
    );
    expect(text).toContain('clef_proxy_denials_total{reason="blocked_host"} 1');
    expect(text).toContain('clef_proxy_denials_total{reason="other"} 1');
    expect(text).toContain('clef_proxy_request_duration_seconds_bucket{status="injected",le="0.025"} 2');
    expect(text).toContain(`clef_proxy_manifest_info{identity="id",environment="env",sha256="${"a".repeat(64)}"} 1`);
    for (const leak of ["evil-host", "/secret/path", "not-a-manifest-name", "claimed-by-client", "made_up_reason"])
      expect(text).not.toContain(leak);
  });

  test("a new manifest replaces manifest_info; data-path normalisers map raw texts to enums", () => {
    observeManifest({ identity: "id2", environment: "e", services: [] }, "not-hex");
    // the registry is process-wide: other suites in this process (netguard) count too, so compare deltas
    const count = (reason: string) =>
      Number(
        new RegExp(`clef_proxy_netguard_blocks_total\\{reason="${reason}"\\} (\\d+)`).exec(registry.render())?.[1] ?? 0,
      );
    const before = { cloud: count("cloud_metadata"), link: count("link_local"), other: count("other") };
    series.netguardBlocks.inc({ reason: "cloud metadata" });
    series.netguardBlocks.inc({ reason: "link-local" });
    series.netguardBlocks.inc({ reason: "10.0.0.1 is private" });
    series.h2Goaway.inc({ code: "11" });
    series.h2Goaway.inc({ code: "99" });
    const text = registry.render();
    expect(text).toContain('clef_proxy_manifest_info{identity="id2",environment="e",sha256=""} 1');
    expect(text).not.toContain('identity="id"');
    expect(count("cloud_metadata")).toBe(before.cloud + 1);
    expect(count("link_local")).toBe(before.link + 1);
    expect(count("other")).toBe(before.other + 1);
    expect(text).toContain('clef_proxy_h2_goaway_total{code="ENHANCE_YOUR_CALM"} 1');
    expect(text).toContain('clef_proxy_h2_goaway_total{code="other"} 1');
  });

  test("sources: audit stats, leaf cache, connections by kind are read at scrape time", () => {
    setSources({
      auditStats: () => [{ sink: "stdout", queued: 4, written: 10, dropped: 0 }],
      leafCacheSize: () => 17,
      connectionsOpen: () => ({ plain: 2, tunnel_h1: 3 }),
    });
    const text = registry.render();
    expect(text).toContain('clef_proxy_audit_lines_total{sink="stdout",result="written"} 10');
    expect(text).toContain('clef_proxy_audit_lines_total{sink="stdout",result="dropped"} 0');
    expect(text).toContain('clef_proxy_audit_queue_lines{sink="stdout"} 4');
    expect(text).toContain("clef_proxy_leaf_cache_size 17");
    expect(text).toContain('clef_proxy_connections_open{kind="plain"} 2');
    expect(text).toContain('clef_proxy_connections_open{kind="upgraded"} 0');
    expect(text).toMatch(/\nclef_proxy_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1\n/);
    expect(text).toMatch(/\nprocess_open_fds \d+\n/);
  });

  test("withAuditMetrics observes every written entry and passes the rest through", async () => {
    const written: AuditEntry[] = [];
    let released = 0;
    const inner: AuditSink = {
      admit: () => false,
      release: () => released++,
      write: (e) => written.push(e),
      close: async () => {},
      stats: () => [{ sink: "file", queued: 0, written: 1, dropped: 0 }],
    };
    const before = series.requests.get({ status: "tls_error", service: "", protocol: "h1", workload: "" });
    const s = withAuditMetrics(inner);
    s.write(entry({ status: "tls_error" }));
    expect(written.length).toBe(1);
    expect(s.admit()).toBe(false);
    expect(s.stats()[0]!.sink).toBe("file");
    expect(series.requests.get({ status: "tls_error", service: "", protocol: "h1", workload: "" })).toBe(before + 1);
  });

  test("promtool check metrics accepts the rendering", async () => {
    if (!Bun.which("promtool")) return console.warn("NOTICE: promtool not installed (Debian prometheus)");
    const p = Bun.spawn(["promtool", "check", "metrics"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    p.stdin.write(registry.render());
    p.stdin.end();
    const [out, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    expect({ code, out, err }).toEqual({ code: 0, out: "", err: "" });
  });
});

// What the serve lifecycle feeds into the series (src/metrics/series.ts) outside the data path:
// every audit entry (requests, denials, durations) and the manifest in use.
import type { AuditEntry, AuditSink } from "../audit/types.ts";
import { series, setManifestLabels } from "./series.ts";

/** Records one audit entry: requests_total, denials_total (denied only), request_duration_seconds. */
export function observeAuditEntry(e: AuditEntry): void {
  series.requests.inc({
    status: e.status,
    service: e.service ?? "",
    protocol: e.protocol === "HTTP/2" ? "h2" : "h1",
    // A workload name is a label only once the data path verified it (F7); else "unverified".
    workload: !e.workload ? "" : e.workloadVerified ? e.workload : "unverified",
  });
  if (e.status === "denied") series.denials.inc({ reason: e.reason ?? "" });
  series.requestDuration.observe({ status: e.status }, e.latencyMs / 1000);
}

/** The sink with every written entry observed first; admit/close/stats pass through. */
export function withAuditMetrics(sink: AuditSink): AuditSink {
  return {
    admit: () => sink.admit(),
    release: () => sink.release(),
    write(entry) {
      observeAuditEntry(entry);
      sink.write(entry);
    },
    close: (deadlineMs) => sink.close(deadlineMs),
    stats: () => sink.stats(),
  };
}

/** Records the manifest in use: manifest_info, manifest_last_applied_timestamp_seconds, the `service` label set. */
export function observeManifest(
  m: { identity: string; environment: string; services: ReadonlyArray<{ name: string }> },
  sha256: string,
): void {
  setManifestLabels({ services: m.services.map((s) => s.name) });
  series.manifestInfo.reset();
  series.manifestInfo.set({ identity: m.identity, environment: m.environment, sha256 }, 1);
  series.manifestLastApplied.set(undefined, Date.now() / 1000);
}

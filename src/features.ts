// What this binary supports, for `clef-proxy features` and the manifest's `required_features`
// (shared/PHASE2.md §1.3). Sorted. A manifest naming a feature not listed here is refused (exit 1).
export const FEATURES: readonly string[] = [
  "auth_basic",
  "auth_template",
  "blocked_cidrs",
  "blocked_hosts",
  "multi_host",
  "wildcard_hosts",
];

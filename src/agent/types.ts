// What the agent serves (docs/CONTRACT.md §6) and the credential-source interface the data path uses.
// Two implementations: the HTTP agent client (src/agent/client.ts) and, for standalone mode, a
// file-backed source (src/agent/file-source.ts).

export interface ServiceAuth {
  scheme: string; // "bearer" | "api_key_header" | "api_key_query" | "basic" | "template" (others fail per request)
  credential: string; // handle "namespace/key"
  header?: string;
  query?: string;
  /** scheme basic: literal user name ("" allowed, explicitly); exclusive with usernameCredential. */
  username?: string;
  /** scheme basic: handle of the user name. */
  usernameCredential?: string;
  /** scheme template: reference name → handle (≤ 8). */
  credentials?: Record<string, string>;
  /** scheme template: what to write (≤ 8). */
  inject?: InjectEntry[];
}

/** One template entry (PHASE2 §8.2); which fields count depends on `type`. */
export interface InjectEntry {
  type: string; // "header" | "query" | "bearer" | "basic"
  name?: string;
  value?: string;
  username?: string;
  password?: string;
}

export interface Service {
  name: string;
  host: string;
  /** More host patterns (PHASE2 F5, ≤ 64 with `host`); `host` stays the main one. */
  hosts?: string[];
  auth: ServiceAuth;
  /** Fields of the wrong JSON type, found while decoding: the service is unusable (PHASE2 §1.4). */
  decodeProblems?: string[];
}

export interface Manifest {
  schemaVersion: number; // always 1 once validated
  identity: string;
  environment: string;
  services: Service[];
  passthroughHosts: string[];
  /** PHASE2 F8: host patterns refused before anything else; validated (an invalid entry rejects the manifest). */
  blockedHosts?: string[];
  /** PHASE2 F8: CIDRs netguard refuses for every resolved address; validated like blockedHosts. */
  blockedCidrs?: string[];
  /** PHASE2 §1.3: every name is in src/features.ts FEATURES once validated. */
  requiredFeatures?: string[];
}

/** Outcome of a secret fetch failure; the data path maps it to the reference's HTTP answers. */
export class CredentialError extends Error {
  constructor(
    /** "not_found" → 502 `credential ns/key not found`; "agent" → 502 `agent error`. */
    readonly kind: "not_found" | "agent",
    message: string,
  ) {
    super(message);
  }
}

export interface CredentialSource {
  /**
   * Fetch one secret value: a cached value may come back as it is, a fetch as a promise. Failures
   * reject with CredentialError (never a synchronous throw). Never logs the value.
   */
  secret(namespace: string, key: string, signal?: AbortSignal): string | Promise<string>;
}

// What the agent serves (docs/CONTRACT.md §6) and the credential-source interface the data path uses.
// Two implementations: the HTTP agent client (src/agent/client.ts) and, for standalone mode, a
// file-backed source (src/agent/file-source.ts).

export interface ServiceAuth {
  scheme: string; // "bearer" | "api_key_header" | "api_key_query" (others fail per request)
  credential: string; // handle "namespace/key"
  header?: string;
  query?: string;
}

export interface Service {
  name: string;
  host: string;
  auth: ServiceAuth;
}

export interface Manifest {
  schemaVersion: number; // always 1 once validated
  identity: string;
  environment: string;
  services: Service[];
  passthroughHosts: string[];
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
  /** Fetch one secret value. Rejects with CredentialError. Never logs the value. */
  secret(namespace: string, key: string, signal?: AbortSignal): Promise<string>;
}

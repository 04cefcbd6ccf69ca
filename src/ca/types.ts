// The CA (docs/CONTRACT.md §2) and the leaf minter (§3).
import type { KeyObject } from "node:crypto";

export interface CA {
  certPem: string;
  certDer: Uint8Array;
  key: KeyObject; // ECDSA P-256 private key
  keyPem: string; // SEC1 "EC PRIVATE KEY"
  subject: string; // "CN=clef-proxy,O=clef-sh" (Go pkix.Name.String order)
  notAfter: Date;
  certPath: string;
  keyPath: string;
}

export interface Leaf {
  certPem: string; // the leaf only (chain length 1, like the reference)
  keyPem: string;
  serialHex: string;
  notAfter: Date;
}

export interface LeafMinter {
  /** Leaf for a DNS name or IP literal (lower-cased, port stripped by the caller). Concurrent calls for one name mint once. */
  leafFor(name: string): Promise<Leaf>;
  /** For metrics: leaves minted since start (`leaf_mints_total`) and names cached now (`leaf_cache_size`). */
  stats(): { mints: number; size: number };
}

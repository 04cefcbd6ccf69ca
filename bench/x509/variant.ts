// The shape every X.509 implementation under comparison takes (bench/x509.ts): mint a leaf as the
// minter does (fresh P-256 key, certificate, both PEMs), a leaf for fixed parameters (so the
// TBSCertificates of the variants can be compared byte for byte), and the root.
import type { KeyObject } from "node:crypto";
import type { CA, Leaf } from "../../src/ca/index.ts";
import type { LeafParams } from "../../src/ca/leaf.ts";

export interface MintedLeaf extends Leaf {
  certDer: Uint8Array;
}

export interface Variant {
  name: string;
  /** One leaf with a fresh ECDSA P-256 key, ready for TLS (what the minter does on a cache miss). */
  mintLeaf(ca: CA, host: string, now: number): MintedLeaf | Promise<MintedLeaf>;
  /** The leaf certificate DER for fixed parameters (its TBSCertificate is deterministic). */
  leafWith(ca: CA, p: LeafParams): Promise<Uint8Array>;
  /** The root certificate DER for a key, time and serial. */
  issueRoot(key: KeyObject, now: Date, serial: Uint8Array): Promise<Uint8Array>;
}

export const LEAF_LIFETIME_MS = 24 * 3600_000;

/** NotAfter as encoded (whole seconds), like the minter's Leaf.notAfter. */
export const leafNotAfter = (now: number) => new Date(Math.floor((now + LEAF_LIFETIME_MS) / 1000) * 1000);

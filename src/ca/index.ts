// Public surface of the CA module (docs/DESIGN.md "Seams").
export type { CA, Leaf, LeafMinter } from "./types.ts";
export {
  CAError,
  defaultPaths,
  exportCA,
  fsReason,
  isExportFormat,
  loadOrCreateCA,
  present,
  regenerateCA,
  resolveCADir,
} from "./store.ts";
export type { CAPaths, ExportFormat } from "./store.ts";
export { canonicalLeafName, createLeafMinter } from "./leaf.ts";
export type { Minter, MinterOptions } from "./leaf.ts";

// Public surface of the CA module (docs/DESIGN.md "Seams").
export type { CA, Leaf, LeafMinter } from "./types.ts";
export { CAError, defaultPaths, resolveCADir } from "./dir.ts";
export type { CAPaths } from "./dir.ts";
export {
  exportCA,
  fsReason,
  isExportFormat,
  loadOrCreateCA,
  present,
  regenerateCA,
} from "./store.ts";
export type { ExportFormat } from "./store.ts";
export { canonicalLeafName, createLeafMinter } from "./leaf.ts";
export type { Minter, MinterOptions } from "./leaf.ts";

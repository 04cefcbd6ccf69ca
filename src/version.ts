// The bare semver printed by `clef-proxy --version`. Bun inlines this JSON field at build time, so
// `--version` needs no file access and loads nothing else.
import { version } from "../package.json";
export const VERSION: string = version;

// Where the CA lives (docs/CONTRACT.md §2), apart from the CA code: `ca path` needs only this, and
// loading ./store.ts would load node:crypto and the certificate code with it (≈4 ms of cold start,
// docs/PERFORMANCE.md).
import { join } from "node:path";

/** A CA problem: `serve` logs it and exits 5, `ca` commands print it and exit 5. */
export class CAError extends Error {
  override name = "CAError";
}

export interface CAPaths {
  certPath: string;
  keyPath: string;
}

/** $XDG_CONFIG_HOME/clef/proxy (verbatim, even relative) or $HOME/.config/clef/proxy. */
export function resolveCADir(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg) return join(xdg, "clef", "proxy");
  const home = env.HOME;
  if (!home) throw new CAError("resolve home dir: $HOME is not defined");
  return join(home, ".config", "clef", "proxy");
}

export function defaultPaths(dir: string): CAPaths {
  return { certPath: join(dir, "ca.crt"), keyPath: join(dir, "ca.key") };
}

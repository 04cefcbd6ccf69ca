// A Go `flag`-package-compatible parser (FlagSet with ContinueOnError and output discarded, as the
// reference uses it).
//
// Why not citty's parser: the reference is a Go binary and the agent (and scripts) depend on its
// exact behaviour — single *or* double dash, `-f=x` and `-f x`, bool flags that only take a value
// with `=` (`-confirm=false`), parsing that stops at the first non-flag or after `--`, and Go's
// exact error texts ("flag provided but not defined: -bogus", "flag needs an argument: -config",
// "bad flag syntax: ---x", "invalid boolean value ...", "flag: help requested"). citty (mri-based)
// accepts unknown flags, treats `-abc` as short-flag clusters and reorders positionals, so it cannot
// reproduce these outputs. citty still describes the commands (src/cli/commands.ts); this parser
// reads its `args` definitions.

import { goQuote } from "../log/slog.ts";

export type FlagType = "string" | "boolean";
export interface FlagSpec {
  type: FlagType;
  default?: string | boolean;
}

export class FlagError extends Error {
  override name = "FlagError";
}

/** Go's flag.ErrHelp text. */
export const HELP_REQUESTED = "flag: help requested";

/** strconv.ParseBool */
export function parseGoBool(s: string): boolean | undefined {
  switch (s) {
    case "1":
    case "t":
    case "T":
    case "TRUE":
    case "true":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "FALSE":
    case "false":
    case "False":
      return false;
  }
  return undefined;
}

export interface Parsed {
  values: Record<string, string | boolean>;
  /** Arguments left after flag parsing stopped (flag.Args()). */
  rest: string[];
}

export function parseGoFlags(argv: readonly string[], specs: Record<string, FlagSpec>): Parsed {
  const values: Record<string, string | boolean> = {};
  for (const [k, s] of Object.entries(specs)) values[k] = s.default ?? (s.type === "boolean" ? false : "");
  let args = argv.slice();
  for (;;) {
    if (args.length === 0) break;
    const s = args[0]!;
    if (s.length < 2 || s[0] !== "-") break;
    let minuses = 1;
    if (s[1] === "-") {
      minuses = 2;
      if (s.length === 2) {
        args = args.slice(1); // "--" terminates the flags
        break;
      }
    }
    let name = s.slice(minuses);
    if (name.length === 0 || name[0] === "-" || name[0] === "=") throw new FlagError(`bad flag syntax: ${s}`);
    args = args.slice(1);
    let hasValue = false;
    let value = "";
    const eq = name.indexOf("=", 1);
    if (eq > 0) {
      value = name.slice(eq + 1);
      hasValue = true;
      name = name.slice(0, eq);
    }
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) {
      if (name === "help" || name === "h") throw new FlagError(HELP_REQUESTED);
      throw new FlagError(`flag provided but not defined: -${name}`);
    }
    if (spec.type === "boolean") {
      if (hasValue) {
        const b = parseGoBool(value);
        if (b === undefined) throw new FlagError(`invalid boolean value ${goQuote(value)} for -${name}: parse error`);
        values[name] = b;
      } else {
        values[name] = true;
      }
    } else {
      if (!hasValue && args.length > 0) {
        hasValue = true;
        value = args[0]!;
        args = args.slice(1);
      }
      if (!hasValue) throw new FlagError(`flag needs an argument: -${name}`);
      values[name] = value;
    }
  }
  return { values, rest: args };
}

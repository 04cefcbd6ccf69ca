// The reference's usage text, byte for byte (docs/CONTRACT.md §1), and per-command help (ours).
import type { ArgsDef, CommandDef } from "citty";

export const USAGE = `clef-proxy — forward credential proxy for @clef-sh/agent

Usage:
  clef-proxy serve --config <path>
  clef-proxy ca export [--format pem|der|der-base64] [--out <path>]
  clef-proxy ca path
  clef-proxy ca regenerate --confirm
  clef-proxy --version

The proxy is spawned and supervised by @clef-sh/agent. See PROXY_PRD.md.
`;

// Per-command help (ours only; docs/CONTRACT.md §1): `clef-proxy <command> --help` prints it on
// stdout, exit 0. Built from the command's citty definition so a new flag is listed automatically.

function flagSynopsis(name: string, def: ArgsDef[string]): string {
  return def.type === "boolean" ? `--${name}` : `--${name} <${def.valueHint ?? "value"}>`;
}

/** Help text of one command: synopsis, description, its flags or subcommands. */
export function commandHelp(path: string, cmd: CommandDef<ArgsDef>): string {
  const meta = (cmd.meta ?? {}) as { description?: string };
  const args = (cmd.args ?? {}) as ArgsDef;
  const subs = (cmd.subCommands ?? {}) as Record<string, CommandDef<ArgsDef>>;
  const flags = Object.entries(args);
  const subNames = Object.keys(subs);
  const synopsis = subNames.length
    ? `${path} <${subNames.join("|")}>`
    : [path, ...flags.map(([n, d]) => (d.required ? flagSynopsis(n, d) : `[${flagSynopsis(n, d)}]`))].join(" ");
  let out = `Usage: ${synopsis}\n\n${meta.description ?? ""}\n`;
  const rows: Array<[string, string]> = [];
  if (subNames.length) {
    out += "\nCommands:\n";
    for (const [n, c] of Object.entries(subs))
      rows.push([n, ((c.meta ?? {}) as { description?: string }).description ?? ""]);
  } else {
    out += "\nFlags:\n";
    for (const [n, d] of flags) {
      const dflt = d.type === "string" && d.default ? ` (default ${JSON.stringify(d.default)})` : "";
      rows.push([flagSynopsis(n, d), (d.description ?? "") + dflt]);
    }
    rows.push(["-h, --help", "Show this help"]);
  }
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  for (const [a, b] of rows) out += `  ${a.padEnd(width)}${b}\n`;
  if (subNames.length) out += `\nRun '${path} <command> --help' for a command's flags.\n`;
  return out;
}

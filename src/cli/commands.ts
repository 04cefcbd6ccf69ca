// The command tree (citty `defineCommand`: names, descriptions, flag definitions) and the handlers.
// Dispatch and flag parsing are ours (./goflag.ts explains why): each handler receives the raw
// arguments after its command name and returns the process exit code. Everything heavy (the CA code,
// the server) is imported lazily inside the handler that needs it.
//
// `-h`/`--help` on a command prints that command's help (./usage.ts `commandHelp`, from the
// definitions below) on stdout, exit 0 — ours only: the reference answers `flag: help requested`,
// exit 1 (docs/CONTRACT.md §1). The top-level usage text stays the reference's, byte for byte.
import { type ArgsDef, type CommandDef, defineCommand } from "citty";
import { writeSync } from "node:fs";
import { goQuote } from "../log/slog.ts";
import { VERSION } from "../version.ts";
import { type FlagSpec, HELP_REQUESTED, parseGoFlags } from "./goflag.ts";
import { commandHelp, USAGE } from "./usage.ts";

type RunServe = (opts: { configPath: string; lambdaLoopbackOnly: boolean; servicesPath?: string }) => Promise<number>;
type Ctx = { rawArgs: string[]; loadServe?: () => Promise<{ runServe: RunServe }> };

function stderr(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(2, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
      return;
    }
  }
}

async function stdout(data: string | Uint8Array): Promise<void> {
  await Bun.write(Bun.stdout, data);
}

/** The Go-flag specs of a citty args definition. */
function specsOf(args: ArgsDef): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = {};
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "boolean") out[name] = { type: "boolean", default: (def.default as boolean | undefined) ?? false };
    else if (def.type === "string") out[name] = { type: "string", default: (def.default as string | undefined) ?? "" };
  }
  return out;
}

/**
 * Parses flags the Go way; on error prints `<prefix>: <err>` and returns exit code 1. A help flag
 * (`-h`, `-help`, `--help`) prints the command's help on stdout and returns 0.
 */
async function flagsOr1(
  prefix: string,
  argv: string[],
  cmd: CommandDef<any>,
): Promise<{ values: Record<string, string | boolean>; rest: string[] } | number> {
  try {
    return parseGoFlags(argv, specsOf((cmd.args ?? {}) as ArgsDef));
  } catch (e) {
    if ((e as Error).message === HELP_REQUESTED) {
      await stdout(commandHelp(prefix, cmd as CommandDef<ArgsDef>));
      return 0;
    }
    stderr(`${prefix}: ${(e as Error).message}\n`);
    return 1;
  }
}

const HELP_ARGS = new Set(["-h", "-help", "--help"]);

/** The CA directory, or exit code 5 after the reference's `clef-proxy: resolve CA dir: …` line. */
function caDirOr5(resolveCADir: (env: NodeJS.ProcessEnv) => string): string | number {
  try {
    return resolveCADir(process.env);
  } catch (e) {
    stderr(`clef-proxy: resolve CA dir: ${errText(e)}\n`);
    return 5;
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const serveArgs = {
  config: { type: "string", required: true, valueHint: "path", description: "Path to JSON config file (required)" },
  "lambda-loopback-only": { type: "boolean", description: "Disable Proxy-Authorization (only honored in Lambda)" },
  services: {
    type: "string",
    valueHint: "path",
    description: "Standalone mode: services file (agent /v1/services shape + secrets map) used instead of the agent",
  },
} as const satisfies ArgsDef;

export const serve = defineCommand({
  meta: { name: "serve", description: "Run the proxy (spawned by @clef-sh/agent)" },
  args: serveArgs,
  async run({ rawArgs, loadServe }: Ctx): Promise<number> {
    const p = await flagsOr1("clef-proxy serve", rawArgs, serve);
    if (typeof p === "number") return p;
    const configPath = p.values.config as string;
    if (configPath === "") {
      stderr("clef-proxy serve: --config <path> is required\n");
      return 2;
    }
    const servicesPath = p.values.services as string;
    const { runServe } = await (loadServe ?? (() => import("../serve/index.ts")))();
    return runServe({
      configPath,
      lambdaLoopbackOnly: p.values["lambda-loopback-only"] as boolean,
      ...(servicesPath !== "" ? { servicesPath } : {}),
    });
  },
});

const caPath = defineCommand({
  meta: { name: "path", description: "Print the CA directory" },
  async run({ rawArgs }: Ctx): Promise<number> {
    // No flags are parsed (extra arguments are ignored, as the reference does) but a help flag.
    if (HELP_ARGS.has(rawArgs[0] ?? "")) {
      await stdout(commandHelp("clef-proxy ca path", caPath));
      return 0;
    }
    // only where the CA lives: not the CA code (node:crypto), which `ca path` does not need
    const { resolveCADir } = await import("../ca/dir.ts");
    let dir: string;
    try {
      dir = resolveCADir(process.env);
    } catch (e) {
      stderr(`clef-proxy ca path: ${errText(e)}\n`);
      return 5;
    }
    await stdout(dir + "\n");
    return 0;
  },
});

const exportArgs = {
  format: { type: "string", default: "pem", valueHint: "format", description: "Output format: pem | der | der-base64" },
  out: { type: "string", valueHint: "path", description: "Output path; empty means stdout" },
} as const satisfies ArgsDef;

const caExport = defineCommand({
  meta: { name: "export", description: "Print the CA certificate (creating the CA if needed)" },
  args: exportArgs,
  async run({ rawArgs }: Ctx): Promise<number> {
    const p = await flagsOr1("clef-proxy ca export", rawArgs, caExport);
    if (typeof p === "number") return p;
    const format = p.values.format as string;
    const out = p.values.out as string;
    const { resolveCADir, loadOrCreateCA, defaultPaths, exportCA, isExportFormat } = await import("../ca/index.ts");
    if (!isExportFormat(format)) {
      stderr(`clef-proxy ca export: ca: unknown format ${goQuote(format)} (want pem, der, or der-base64)\n`);
      return 1;
    }
    const dir = caDirOr5(resolveCADir);
    if (typeof dir === "number") return dir;
    let data: Uint8Array;
    try {
      data = exportCA(loadOrCreateCA(defaultPaths(dir)), format);
    } catch (e) {
      stderr(`clef-proxy ca export: ${errText(e)}\n`);
      return 5;
    }
    if (out === "") {
      await stdout(data);
      return 0;
    }
    const { writeFileSync } = await import("node:fs");
    try {
      writeFileSync(out, data, { mode: 0o644 }); // like os.WriteFile(out, data, 0644): umask applies, an existing file keeps its mode
    } catch (e) {
      const { fsReason } = await import("../ca/index.ts");
      stderr(`clef-proxy ca export: write ${out}: open ${out}: ${fsReason(e)}\n`);
      return 1;
    }
    return 0;
  },
});

const regenArgs = {
  confirm: { type: "boolean", description: "Confirm destructive regeneration" },
} as const satisfies ArgsDef;

const caRegenerate = defineCommand({
  meta: { name: "regenerate", description: "Replace the CA with a new key and certificate" },
  args: regenArgs,
  async run({ rawArgs }: Ctx): Promise<number> {
    const p = await flagsOr1("clef-proxy ca regenerate", rawArgs, caRegenerate);
    if (typeof p === "number") return p;
    if (p.values.confirm !== true) {
      stderr("clef-proxy ca regenerate: refusing without --confirm\n");
      return 1;
    }
    const { resolveCADir, regenerateCA, defaultPaths } = await import("../ca/index.ts");
    const dir = caDirOr5(resolveCADir);
    if (typeof dir === "number") return dir;
    try {
      regenerateCA(defaultPaths(dir));
    } catch (e) {
      stderr(`clef-proxy ca regenerate: ${errText(e)}\n`);
      return 5;
    }
    return 0;
  },
});

const envArgs = {
  shell: { type: "string", default: "sh", valueHint: "shell", description: "Shell syntax: sh | fish | powershell" },
} as const satisfies ArgsDef;

const caEnv = defineCommand({
  meta: {
    name: "env",
    description:
      "Write ca-bundle.pem (public roots + the CA) beside the CA and print the variables that make common clients trust it",
  },
  args: envArgs,
  async run({ rawArgs }: Ctx): Promise<number> {
    const p = await flagsOr1("clef-proxy ca env", rawArgs, caEnv);
    if (typeof p === "number") return p;
    const { parseShell, renderEnv, writeBundle } = await import("./ca-env.ts");
    const shell = parseShell(p.values.shell as string);
    if (!shell) {
      stderr(`clef-proxy ca env: unknown shell ${goQuote(p.values.shell as string)} (want sh, fish, or powershell)\n`);
      return 1;
    }
    const { resolveCADir, loadOrCreateCA, defaultPaths } = await import("../ca/index.ts");
    const dir = caDirOr5(resolveCADir);
    if (typeof dir === "number") return dir;
    const paths = defaultPaths(dir);
    let bundle: string;
    try {
      bundle = writeBundle(dir, loadOrCreateCA(paths).certPem);
    } catch (e) {
      stderr(`clef-proxy ca env: ${errText(e)}\n`);
      return 5;
    }
    await stdout(renderEnv(shell, bundle, paths.certPath));
    return 0;
  },
});

export const ca = defineCommand({
  meta: { name: "ca", description: "Manage the local CA" },
  subCommands: { env: caEnv, export: caExport, path: caPath, regenerate: caRegenerate },
  async run({ rawArgs }: Ctx): Promise<number> {
    const sub = rawArgs[0];
    if (sub === undefined) {
      stderr("clef-proxy ca: missing subcommand (export|path|regenerate)\n");
      return 1;
    }
    if (HELP_ARGS.has(sub) || sub === "help") {
      await stdout(commandHelp("clef-proxy ca", ca));
      return 0;
    }
    const cmd = (ca.subCommands as Record<string, CommandDef<any>>)[sub];
    if (!Object.hasOwn(ca.subCommands ?? {}, sub) || !cmd) {
      stderr(`clef-proxy ca: unknown subcommand ${goQuote(sub)}\n`);
      return 1;
    }
    return invoke(cmd, rawArgs.slice(1));
  },
});

const AUDIT_USAGE = "usage: clef-proxy audit verify <file>... (oldest first, e.g. audit.log.2 audit.log.1 audit.log)\n";

const auditVerify = defineCommand({
  meta: {
    name: "verify",
    description:
      "audit verify <file>...: check the hash chain (audit.hash_chain) of audit files given oldest first (audit.log.2 audit.log.1 audit.log); exit 0 intact, 1 broken, 2 usage or unreadable input",
  },
  async run({ rawArgs }: Ctx): Promise<number> {
    let files: string[];
    try {
      files = parseGoFlags(rawArgs, {}).rest;
    } catch (e) {
      if ((e as Error).message === HELP_REQUESTED) {
        await stdout(commandHelp("clef-proxy audit verify", auditVerify));
        return 0;
      }
      stderr(`clef-proxy audit verify: ${errText(e)}\n${AUDIT_USAGE}`);
      return 2;
    }
    if (files.length === 0) {
      stderr(`clef-proxy audit verify: at least one file is required\n${AUDIT_USAGE}`);
      return 2;
    }
    const { verifyFiles, formatVerdict } = await import("../audit/chain.ts");
    let verdict: ReturnType<typeof verifyFiles>;
    try {
      verdict = verifyFiles(files);
    } catch (e) {
      stderr(`clef-proxy audit verify: ${errText(e)}\n`);
      return 2;
    }
    await stdout(formatVerdict(verdict) + "\n");
    return verdict.ok ? 0 : 1;
  },
});

/** `clef-proxy audit …` (ours only; usage errors exit 2). */
export const audit = defineCommand({
  meta: { name: "audit", description: "Audit log tools" },
  subCommands: { verify: auditVerify },
  async run({ rawArgs }: Ctx): Promise<number> {
    const sub = rawArgs[0];
    if (sub === undefined) {
      stderr(`clef-proxy audit: missing subcommand (verify)\n${AUDIT_USAGE}`);
      return 2;
    }
    if (HELP_ARGS.has(sub) || sub === "help") {
      await stdout(commandHelp("clef-proxy audit", audit));
      return 0;
    }
    if (sub !== "verify") {
      stderr(`clef-proxy audit: unknown subcommand ${goQuote(sub)}\n${AUDIT_USAGE}`);
      return 2;
    }
    return invoke(auditVerify, rawArgs.slice(1));
  },
});

const checkArgs = {
  config: {
    type: "string",
    required: true,
    valueHint: "path",
    description: "Path to JSON config file (required; not deleted)",
  },
  services: {
    type: "string",
    valueHint: "path",
    description: "Standalone mode: check this services file instead of the agent",
  },
} as const satisfies ArgsDef;

export const check = defineCommand({
  meta: {
    name: "check",
    description:
      "Validate config, manifest (services file or agent), credentials, CA and ports without serving; exit 0 when all is well, 1 with one line per problem",
  },
  args: checkArgs,
  async run({ rawArgs }: Ctx): Promise<number> {
    const p = await flagsOr1("clef-proxy check", rawArgs, check);
    if (typeof p === "number") return p;
    const configPath = p.values.config as string;
    if (configPath === "") {
      stderr("clef-proxy check: --config <path> is required\n");
      return 2;
    }
    const servicesPath = p.values.services as string;
    const { runCheck } = await import("./check.ts");
    const lines: string[] = [];
    const code = await runCheck({ configPath, ...(servicesPath !== "" ? { servicesPath } : {}) }, process.env, {
      ok: (l) => lines.push(l + "\n"),
      problem: (l) => stderr(l + "\n"),
      warning: (l) => stderr(l + "\n"),
    });
    await stdout(lines.join(""));
    return code;
  },
});

export const features = defineCommand({
  meta: { name: "features", description: "Print what this binary supports as one JSON line (for @clef-sh/agent)" },
  args: {},
  async run({ rawArgs }: Ctx): Promise<number> {
    const p = await flagsOr1("clef-proxy features", rawArgs, features);
    if (typeof p === "number") return p;
    const { featuresLine } = await import("../features.ts");
    await stdout(featuresLine(VERSION));
    return 0;
  },
});

export const root = defineCommand({
  meta: { name: "clef-proxy", version: VERSION, description: "forward credential proxy for @clef-sh/agent" },
  subCommands: { serve, check, ca, audit, features },
});

async function invoke(cmd: CommandDef<any>, rawArgs: string[], loadServe?: Ctx["loadServe"]): Promise<number> {
  const r = await (cmd.run as (c: Ctx) => Promise<number>)({ rawArgs, ...(loadServe ? { loadServe } : {}) });
  return typeof r === "number" ? r : 0;
}

/** Runs the CLI for `argv` (without the executable) and returns the exit code. `loadServe` replaces the server module (tests). */
export async function main(argv: string[], loadServe?: Ctx["loadServe"]): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    stderr(USAGE);
    return 1;
  }
  switch (first) {
    case "--version":
    case "-version":
    case "version":
      await stdout(VERSION + "\n");
      return 0;
    case "--help":
    case "-help":
    case "-h":
    case "help":
      await stdout(USAGE);
      return 0;
    case "serve":
      return invoke(serve, argv.slice(1), loadServe);
    case "check":
      return invoke(check, argv.slice(1));
    case "ca":
      return invoke(ca, argv.slice(1));
    case "audit":
      return invoke(audit, argv.slice(1));
    case "features":
      return invoke(features, argv.slice(1));
  }
  stderr(`clef-proxy: unknown subcommand ${goQuote(first)}\n${USAGE}`);
  return 1;
}

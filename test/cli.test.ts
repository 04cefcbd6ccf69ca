// The CLI surface (docs/CONTRACT.md §1) through the compiled binary: exact stdout, stderr and exit
// code for every row, and the same rows run on the reference where it is installed.
import { describe, expect, test } from "bun:test";
import { OUR_BIN, REF_BIN } from "./helpers/bin.ts";
import { runCli } from "./helpers/proxy.ts";
import { parseGoFlags } from "../src/cli/goflag.ts";

if (!REF_BIN) console.warn("NOTICE: reference binary not installed: cli.test.ts runs the rows on ours only");

const USAGE = `clef-proxy — forward credential proxy for @clef-sh/agent

Usage:
  clef-proxy serve --config <path>
  clef-proxy ca export [--format pem|der|der-base64] [--out <path>]
  clef-proxy ca path
  clef-proxy ca regenerate --confirm
  clef-proxy --version

The proxy is spawned and supervised by @clef-sh/agent. See PROXY_PRD.md.
`;
const VERSION = (await Bun.file(new URL("../package.json", import.meta.url)).json()).version as string;

type Row = [args: string[], stdout: string, stderr: string, code: number];
const rows: Row[] = [
  [["--version"], `${VERSION}\n`, "", 0],
  [["-version"], `${VERSION}\n`, "", 0],
  [["version"], `${VERSION}\n`, "", 0],
  [["--version", "extra"], `${VERSION}\n`, "", 0],
  [["--help"], USAGE, "", 0],
  [["-help"], USAGE, "", 0],
  [["-h"], USAGE, "", 0],
  [["help"], USAGE, "", 0],
  [[], "", USAGE, 1],
  [["bogus"], "", `clef-proxy: unknown subcommand "bogus"\n${USAGE}`, 1],
  [["-v"], "", `clef-proxy: unknown subcommand "-v"\n${USAGE}`, 1],
  [["--h"], "", `clef-proxy: unknown subcommand "--h"\n${USAGE}`, 1],
  [[""], "", `clef-proxy: unknown subcommand ""\n${USAGE}`, 1],
  [['\x01é"'], "", `clef-proxy: unknown subcommand "\\x01é\\""\n${USAGE}`, 1],
  [["serve"], "", "clef-proxy serve: --config <path> is required\n", 2],
  [["serve", "extra"], "", "clef-proxy serve: --config <path> is required\n", 2],
  [["serve", "--config="], "", "clef-proxy serve: --config <path> is required\n", 2],
  [["serve", "--config", ""], "", "clef-proxy serve: --config <path> is required\n", 2],
  [["serve", "--"], "", "clef-proxy serve: --config <path> is required\n", 2],
  [["serve", "-"], "", "clef-proxy serve: --config <path> is required\n", 2],
  [["serve", "--", "--config", "x"], "", "clef-proxy serve: --config <path> is required\n", 2],
  [
    ["serve", "--lambda-loopback-only=1", "x", "--config", "/nonexistent"],
    "",
    "clef-proxy serve: --config <path> is required\n",
    2,
  ],
  [["serve", "--config"], "", "clef-proxy serve: flag needs an argument: -config\n", 1],
  [["serve", "-config"], "", "clef-proxy serve: flag needs an argument: -config\n", 1],
  [["serve", "--bogus"], "", "clef-proxy serve: flag provided but not defined: -bogus\n", 1],
  [["serve", "--bogus=1", "--config", "x"], "", "clef-proxy serve: flag provided but not defined: -bogus\n", 1],
  [["serve", "---config"], "", "clef-proxy serve: bad flag syntax: ---config\n", 1],
  [["serve", "-=x"], "", "clef-proxy serve: bad flag syntax: -=x\n", 1],
  [
    ["serve", "--lambda-loopback-only=maybe", "--config", "x"],
    "",
    'clef-proxy serve: invalid boolean value "maybe" for -lambda-loopback-only: parse error\n',
    1,
  ],
  [
    ["serve", "--lambda-loopback-only=\x01"],
    "",
    'clef-proxy serve: invalid boolean value "\\x01" for -lambda-loopback-only: parse error\n',
    1,
  ],
  [["ca"], "", "clef-proxy ca: missing subcommand (export|path|regenerate)\n", 1],
  [["ca", "bogus"], "", 'clef-proxy ca: unknown subcommand "bogus"\n', 1],
  [["ca", "-x"], "", 'clef-proxy ca: unknown subcommand "-x"\n', 1],
  [["ca", "export", "--bogus"], "", "clef-proxy ca export: flag provided but not defined: -bogus\n", 1],
  [["ca", "export", "--format"], "", "clef-proxy ca export: flag needs an argument: -format\n", 1],
  [["ca", "export", "-out"], "", "clef-proxy ca export: flag needs an argument: -out\n", 1],
  [
    ["ca", "export", "--format", "PEM"],
    "",
    'clef-proxy ca export: ca: unknown format "PEM" (want pem, der, or der-base64)\n',
    1,
  ],
  [
    ["ca", "export", "--format", ""],
    "",
    'clef-proxy ca export: ca: unknown format "" (want pem, der, or der-base64)\n',
    1,
  ],
  [
    ["ca", "export", "--format=bogus"],
    "",
    'clef-proxy ca export: ca: unknown format "bogus" (want pem, der, or der-base64)\n',
    1,
  ],
  [["ca", "regenerate"], "", "clef-proxy ca regenerate: refusing without --confirm\n", 1],
  [["ca", "regenerate", "--confirm=false"], "", "clef-proxy ca regenerate: refusing without --confirm\n", 1],
  [["ca", "regenerate", "-confirm=0"], "", "clef-proxy ca regenerate: refusing without --confirm\n", 1],
  [["ca", "regenerate", "extra", "-confirm"], "", "clef-proxy ca regenerate: refusing without --confirm\n", 1],
  [
    ["ca", "regenerate", "-confirm=maybe"],
    "",
    'clef-proxy ca regenerate: invalid boolean value "maybe" for -confirm: parse error\n',
    1,
  ],
  [["ca", "regenerate", "--bogus"], "", "clef-proxy ca regenerate: flag provided but not defined: -bogus\n", 1],
  [["ca", "regenerate", "--confirm"], "", "", 0],
  [["ca", "regenerate", "-confirm", "extra"], "", "", 0],
  [["ca", "regenerate", "--confirm=T"], "", "", 0],
  [["ca", "regenerate", "--confirm=true", "--confirm"], "", "", 0],
];

// `-h`/`--help` on a command: the reference's Go `flag` answer, kept as its rows; ours prints the
// command's usage on stdout, exit 0 (a deliberate difference, docs/CONTRACT.md §1; every flag listed:
// test/ops.test.ts).
const refHelpRows: Row[] = [
  [["serve", "--help"], "", "clef-proxy serve: flag: help requested\n", 1],
  [["serve", "-h"], "", "clef-proxy serve: flag: help requested\n", 1],
  [["ca", "--help"], "", 'clef-proxy ca: unknown subcommand "--help"\n', 1],
  [["ca", "export", "-h"], "", "clef-proxy ca export: flag: help requested\n", 1],
  [["ca", "export", "--help"], "", "clef-proxy ca export: flag: help requested\n", 1],
  [["ca", "regenerate", "-h"], "", "clef-proxy ca regenerate: flag: help requested\n", 1],
];

const bins: Array<[string, string]> = [
  ["ours", OUR_BIN],
  ...(REF_BIN ? [["reference", REF_BIN] as [string, string]] : []),
];

for (const [who, bin] of bins) {
  describe(`CLI rows (${who})`, () => {
    for (const [args, out, err, code] of rows) {
      test(JSON.stringify(args), async () => {
        const r = await runCli(args, { bin });
        expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }).toEqual({
          code,
          stdout: out,
          stderr: err,
        });
      });
    }

    for (const [args, out, err, code] of refHelpRows) {
      test(`${JSON.stringify(args)} (help)`, async () => {
        const r = await runCli(args, { bin });
        if (who === "reference")
          expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }).toEqual({
            code,
            stdout: out,
            stderr: err,
          });
        else {
          expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
          expect(r.stdout.toString()).toStartWith(
            `Usage: clef-proxy ${args.filter((a) => !a.startsWith("-")).join(" ")}`,
          );
        }
      });
    }

    test("ca path prints the dir; extra args and flags ignored", async () => {
      const r = await runCli(["ca", "path", "--bogus", "x"], {
        bin,
        env: { HOME: "/home/u", XDG_CONFIG_HOME: undefined },
      });
      expect({ code: r.code, stdout: r.stdout.toString(), stderr: r.stderr }).toEqual({
        code: 0,
        stdout: "/home/u/.config/clef/proxy\n",
        stderr: "",
      });
    });

    test("ca export: PEM by default, flags after a positional are ignored", async () => {
      const r = await runCli(["ca", "export", "extra", "--format", "der"], { bin });
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout.toString()).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    });

    test("serve passes --config to the server (missing file → the server's read error, exit 2)", async () => {
      const r = await runCli(["serve", "-config=/nonexistent/c.json"], { bin });
      expect({ code: r.code, stderr: r.stderr }).toEqual({
        code: 2,
        stderr:
          'clef-proxy serve: read config "/nonexistent/c.json": open /nonexistent/c.json: no such file or directory\n',
      });
    });
  });
}

describe("Go flag parser (unit)", () => {
  const specs = {
    config: { type: "string" as const },
    on: { type: "boolean" as const },
    fmt: { type: "string" as const, default: "pem" },
  };
  test("forms", () => {
    expect(parseGoFlags(["-config", "a", "--on", "rest", "-fmt", "x"], specs)).toEqual({
      values: { config: "a", on: true, fmt: "pem" },
      rest: ["rest", "-fmt", "x"],
    });
    expect(parseGoFlags(["--config=a=b", "-on=false", "--fmt", "-x"], specs)).toEqual({
      values: { config: "a=b", on: false, fmt: "-x" },
      rest: [],
    });
    expect(parseGoFlags(["-on", "-config", "c", "--", "-on"], specs)).toEqual({
      values: { config: "c", on: true, fmt: "pem" },
      rest: ["-on"],
    });
    expect(parseGoFlags(["-config", "1", "-config", "2"], specs).values.config).toBe("2");
    expect(() => parseGoFlags(["-toString"], specs)).toThrow("flag provided but not defined: -toString");
    expect(() => parseGoFlags(["-on=yes"], specs)).toThrow('invalid boolean value "yes" for -on: parse error');
    expect(() => parseGoFlags(["--"], specs)).not.toThrow();
  });
});

describe("serve dispatch (unit, server module injected)", () => {
  test("flags reach runServe; its return value is the exit code", async () => {
    const calls: unknown[] = [];
    const loadServe = async () => ({
      runServe: async (opts: { configPath: string }) => {
        calls.push(opts);
        return 42;
      },
    });
    const { main } = await import("../src/cli/commands.ts");
    expect(await main(["serve", "--config", "c.json", "-lambda-loopback-only", "--services=s.json"], loadServe)).toBe(
      42,
    );
    expect(await main(["serve", "-config=d.json"], loadServe)).toBe(42);
    expect(calls).toEqual([
      { configPath: "c.json", lambdaLoopbackOnly: true, servicesPath: "s.json" },
      { configPath: "d.json", lambdaLoopbackOnly: false },
    ]);
  });
});

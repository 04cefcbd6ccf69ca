// Cold start (issue 19, docs/PERFORMANCE.md): `--version` and `ca path` must not load what they do not
// need. The compiled binary splits lazily imported modules into chunks (--splitting), so what a
// command loads is the static import graph of its modules: checked here from the sources.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../../src");
const transpiler = new Bun.Transpiler({ loader: "ts" });

/** Every module reachable from `entry` through static imports (type-only imports excluded). */
function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!file.endsWith(".ts")) return; // a builtin, a package or JSON (inlined): not followed
    for (const imp of transpiler.scanImports(readFileSync(file, "utf8"))) {
      if (imp.kind !== "import-statement") continue; // dynamic import(): a chunk of its own
      visit(imp.path.startsWith(".") ? resolve(dirname(file), imp.path) : imp.path);
    }
  };
  visit(resolve(SRC, entry));
  return seen;
}

describe("what a command loads", () => {
  // (not even node:fs: loading it alone cost ≈4 ms of a ≈10–13 ms `--version`, docs/PERFORMANCE.md)
  test("`--version` (src/cli/main.ts): only the version (package.json, inlined)", () => {
    const g = [...staticGraph("cli/main.ts")].map((f) => (f.startsWith("/") ? relative(SRC, f) : f));
    expect(g.sort()).toEqual(["../package.json", "cli/main.ts", "version.ts"]);
  });

  test("`ca path`: the CLI and src/ca/dir.ts, not the CA code or node:crypto", () => {
    const g = new Set([...staticGraph("cli/commands.ts"), ...staticGraph("ca/dir.ts")]);
    expect(g.has("node:crypto")).toBe(false);
    expect(g.has(resolve(SRC, "ca/store.ts"))).toBe(false);
    expect(g.has(resolve(SRC, "ca/index.ts"))).toBe(false);
    // the command really imports dir.ts (not the CA module's index, which loads the CA code)
    expect(readFileSync(resolve(SRC, "cli/commands.ts"), "utf8")).toMatch(
      /const caPath = [\s\S]*?await import\("\.\.\/ca\/dir\.ts"\)[\s\S]*?const exportArgs/,
    );
  });

  test("the graph walk sees node:crypto where it is (the check can fail)", () => {
    expect(staticGraph("ca/store.ts").has("node:crypto")).toBe(true);
  });
});

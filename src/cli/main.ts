// clef-proxy entry point. `--version` is answered before anything else is loaded (the agent runs it
// to probe the binary, so it must be fast); every other command is handled in ./commands.ts, itself
// imported lazily, and the CA code / server are imported only by the command that needs them.
import { VERSION } from "../version.ts";

const argv = process.argv.slice(2);
const first = argv[0];
if (first === "--version" || first === "-version" || first === "version") {
  // console.log, not node:fs's writeSync: importing node:fs alone cost ≈ 4 ms of a ≈ 10 ms start
  // (docs/PERFORMANCE.md, eighth pass); the runtime writes it before the process exits
  console.log(VERSION);
  process.exit(0);
}

let code: number;
try {
  const { main } = await import("./commands.ts");
  code = await main(argv);
} catch (e) {
  // Never a stack trace: a one-line error and a non-zero exit.
  try {
    const { writeSync } = await import("node:fs");
    writeSync(2, `clef-proxy: ${e instanceof Error ? e.message : String(e)}\n`);
  } catch {}
  code = 1;
}
process.exit(code);

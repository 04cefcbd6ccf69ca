// `npm test`: build the host binary (tests run the compiled executable, not only the source), then
// run every test with bun. Extra arguments are passed to `bun test` (e.g. a file filter).
import { $ } from "bun";

const args = process.argv.slice(2);
await $`bun scripts/build.ts`;
const proc = Bun.spawn(["bun", "test", ...args], { stdio: ["inherit", "inherit", "inherit"] });
process.exit(await proc.exited);

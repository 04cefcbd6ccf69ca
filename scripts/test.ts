// `npm test`: build the host binary (tests run the compiled executable, not only the source), then
// run every test with bun. Extra arguments are passed to `bun test` (e.g. a file filter).
export {};
const bun = process.execPath;
const build = Bun.spawnSync([bun, "scripts/build.ts"], { stdio: ["inherit", "inherit", "inherit"] });
if (build.exitCode !== 0) process.exit(build.exitCode ?? 1);
const proc = Bun.spawn([bun, "test", ...process.argv.slice(2)], { stdio: ["inherit", "inherit", "inherit"] });
process.exit(await proc.exited);

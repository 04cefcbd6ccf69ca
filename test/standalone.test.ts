// Standalone mode and the README's first command: `npm start` (examples/ files, no agent) and
// `npm run demo` (the whole loop offline).
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./helpers/clients.ts";
import { freePort, tempDir } from "./helpers/proxy.ts";
import { makeTestPki } from "./helpers/tls.ts";
import { startUpstream } from "./helpers/upstream.ts";

const ROOT = join(import.meta.dir, "..");

test("npm start: runs on examples/, prints how to use it, injects the env-backed secret for localhost", async () => {
  const pki = makeTestPki(["localhost"], ["127.0.0.1"]);
  const up = startUpstream({ hostname: "127.0.0.1", pki });
  const home = tempDir("clef-start-home-");
  const port = await freePort();
  const env = {
    PATH: process.env.PATH!,
    HOME: home,
    PORT: String(port),
    DEMO_TOKEN: "from-the-env-123",
    SSL_CERT_FILE: pki.caPath,
  };
  // Exactly the command `npm start` runs (package.json scripts.start), exec'd so signals reach it.
  const startCmd = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts.start as string;
  const proc = Bun.spawn(["sh", "-c", `exec ${startCmd}`], {
    cwd: ROOT,
    env: { ...env, PATH: `${join(ROOT, "node_modules/.bin")}:${env.PATH}` },
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  const dec = new TextDecoder();
  const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
  while (!err.includes("Ctrl-C stops")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("npm start exited:\n" + err);
    err += dec.decode(value);
  }
  const proxyLine = /export HTTPS_PROXY=(http:\/\/clef:[^@\s]+@127\.0\.0\.1:\d+)/.exec(err)![1]!;
  const caPath = /--cacert (\S+ca\.crt)/.exec(err)![1]!;
  expect(caPath).toBe(join(home, ".config/clef/proxy/ca.crt"));
  const r = await run([
    "curl",
    "-sS",
    "--proxy",
    proxyLine,
    "--cacert",
    caPath,
    `https://localhost:${up.port}/standalone`,
  ]);
  const seen = JSON.parse(r.stdout);
  expect(seen.headers).toContainEqual(["x-api-key", "from-the-env-123"]);
  proc.kill("SIGINT");
  expect(await proc.exited).toBe(0);
  reader.releaseLock();
  up.stop();
}, 60_000);

test("npm run demo: the upstream saw the injected credential, the client never had it", async () => {
  const r = await run(["npm", "run", "demo", "--silent"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH!, HOME: tempDir() },
  });
  expect(r.code).toBe(0);
  expect(r.stdout + r.stderr).toContain("the upstream saw the injected credential; the client never had it");
}, 60_000);

test("standalone services file: a bad secrets map is a clear startup error (exit 1)", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "c.json"), "{}");
  writeFileSync(
    join(dir, "s.json"),
    JSON.stringify({ schema_version: 1, services: [], secrets: { "a/b": "literal-value" } }),
  );
  const r = await run(
    [
      process.execPath,
      join(ROOT, "src/cli/main.ts"),
      "serve",
      "--config",
      join(dir, "c.json"),
      "--services",
      join(dir, "s.json"),
    ],
    { env: { PATH: process.env.PATH!, HOME: dir } },
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("secrets.a/b: must be env:NAME or file:PATH");
  expect(r.stderr).not.toContain("literal-value");
});

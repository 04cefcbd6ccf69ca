// `npm start`: run clef-proxy standalone (no agent) on examples/config.json + examples/services.json,
// print exactly how to use it, and keep running until Ctrl-C.
//
//   PORT=8899 npm start          another port
//   GITHUB_TOKEN=… npm start     secrets come from the environment (see examples/services.json)
import { createConsola } from "consola";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
// Human-facing text goes to stderr: stdout carries the audit lines.
const consola = createConsola({ stdout: process.stderr, stderr: process.stderr });
const port = Number(process.env.PORT ?? 8888);
const token = process.env.CLEF_PROXY_TOKEN || randomBytes(18).toString("base64url");
const services = process.env.CLEF_SERVICES ?? join(root, "examples/services.json");

// The proxy deletes its config file after reading it (it may hold secrets): hand it a copy.
const dir = mkdtempSync(join(tmpdir(), "clef-start-"));
const configPath = join(dir, "config.json");
const config = JSON.parse(readFileSync(join(root, "examples/config.json"), "utf8"));
config.listen = { ...config.listen, port };
writeFileSync(configPath, JSON.stringify(config));

const caDir = process.env.XDG_CONFIG_HOME
  ? join(process.env.XDG_CONFIG_HOME, "clef/proxy")
  : join(process.env.HOME ?? "~", ".config/clef/proxy");
const child = Bun.spawn(
  [process.execPath, join(root, "src/cli/main.ts"), "serve", "--config", configPath, "--services", services],
  {
    env: { ...process.env, CLEF_PROXY_TOKEN: token },
    stdin: "ignore",
    stdout: "inherit",
    stderr: "pipe",
  },
);

let shown = false;
(async () => {
  const dec = new TextDecoder();
  for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
    const text = dec.decode(chunk);
    process.stderr.write(text);
    if (!shown && text.includes("msg=listening")) {
      shown = true;
      consola.success(`clef-proxy is listening on 127.0.0.1:${port} (standalone: services from ${services})`);
      // Plain lines (no box): they are meant to be copied.
      process.stderr.write(
        [
          "Use it from another terminal:",
          `  export HTTPS_PROXY=http://clef:${token}@127.0.0.1:${port}`,
          `  export SSL_CERT_FILE=${join(caDir, "ca.crt")}   # trust the proxy's CA`,
          `  curl --cacert ${join(caDir, "ca.crt")} https://api.github.com/user   # with GITHUB_TOKEN set when npm start ran`,
          "The workload never sees the secret: the proxy injects it. Audit lines go to stdout. Ctrl-C stops.",
          "",
        ].join("\n"),
      );
    }
  }
})();

for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
process.exit(await child.exited);

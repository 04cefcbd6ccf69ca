// `npm run demo`: the whole loop offline, in one process tree on loopback.
//   a local HTTPS upstream (https://localhost) ── the proxy (standalone, secret from the environment)
//   ── one client request that carries no credential. Shows what the upstream received.
import { consola } from "consola";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLeafMinter, loadOrCreateCA } from "../src/ca/index.ts";

const root = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "clef-demo-"));

// 1. An upstream with a certificate from a throwaway CA (the proxy trusts it via SSL_CERT_FILE).
const upstreamCa = loadOrCreateCA({ certPath: join(dir, "upstream-ca.crt"), keyPath: join(dir, "upstream-ca.key") });
const leaf = await createLeafMinter(upstreamCa, { cap: 4 }).leafFor("localhost");
let seenAuth: string | null = null;
const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  tls: { key: leaf.keyPem, cert: leaf.certPem },
  fetch(req) {
    seenAuth = req.headers.get("authorization");
    return Response.json({ hello: "from the upstream", youSentAuthorization: seenAuth !== null });
  },
});

// 2. The proxy, standalone: one service for localhost whose secret is DEMO_SECRET.
const secret = "demo-" + randomBytes(12).toString("hex");
const token = randomBytes(12).toString("hex");
const port = await (async () => {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
})();
writeFileSync(join(dir, "config.json"), JSON.stringify({ listen: { port }, metadata: { proxy_id: "demo" } }));
writeFileSync(
  join(dir, "services.json"),
  JSON.stringify({
    schema_version: 1,
    identity: "demo",
    environment: "local",
    services: [{ name: "demo", host: "localhost", auth: { scheme: "bearer", credential: "demo/secret" } }],
    secrets: { "demo/secret": "env:DEMO_SECRET" },
  }),
);
const proxy = Bun.spawn(
  [
    process.execPath,
    join(root, "src/cli/main.ts"),
    "serve",
    "--config",
    join(dir, "config.json"),
    "--services",
    join(dir, "services.json"),
  ],
  {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, "xdg"),
      CLEF_PROXY_TOKEN: token,
      DEMO_SECRET: secret,
      SSL_CERT_FILE: join(dir, "upstream-ca.crt"),
    },
    stdout: "pipe",
    stderr: "pipe",
  },
);
const stderrLines: string[] = [];
const ready = new Promise<void>((resolveReady, reject) => {
  (async () => {
    const dec = new TextDecoder();
    for await (const c of proxy.stderr as ReadableStream<Uint8Array>) {
      const t = dec.decode(c);
      stderrLines.push(t);
      if (t.includes("msg=listening")) resolveReady();
    }
    reject(new Error("proxy exited:\n" + stderrLines.join("")));
  })();
});
await ready;
consola.success(`proxy listening on 127.0.0.1:${port}; upstream on https://localhost:${upstream.port}`);

// 3. The client: no credential, only the proxy and trust in the proxy's CA.
const proxyCa = readFileSync(join(dir, "xdg/clef/proxy/ca.crt"), "utf8");
const res = await fetch(`https://localhost:${upstream.port}/hello`, {
  proxy: `http://demo:${token}@127.0.0.1:${port}`,
  tls: { ca: proxyCa },
} as RequestInit);
const body = await res.json();
consola.info(`client got ${res.status}: ${JSON.stringify(body)}`);

proxy.kill("SIGTERM");
const audit = (await new Response(proxy.stdout).text()).trim();
await proxy.exited;
upstream.stop(true);

const injected = seenAuth === `Bearer ${secret}`;
consola.info(
  "the client sent no Authorization header; the upstream received: " +
    (seenAuth ? `Authorization: Bearer ${secret.slice(0, 9)}… (the DEMO_SECRET)` : "nothing"),
);
consola.info("audit line: " + audit);
if (!injected || res.status !== 200) {
  consola.error("demo failed: the credential was not injected");
  process.exit(1);
}
consola.success("the upstream saw the injected credential; the client never had it");

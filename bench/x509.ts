// X.509 by hand or by library (issue 15, item 5): today's hand-written DER (src/ca) against node-forge's
// asn1 module + node:crypto and @peculiar/x509 on WebCrypto (bench/x509/*.ts), in one run on this
// machine. Usage: bun bench/x509.ts [leaves=2000]. Writes bench/results/x509.json; the numbers and the
// decision are in docs/DESIGN.md "Leaf minting and X.509".
//
//   1. same bytes: each variant's TBSCertificate for fixed inputs (key, serial, time) against today's,
//      for leaves (DNS, IPv4, IPv6, IPv4-mapped, non-printable CN) and the root;
//   2. mint time: N leaves per variant, fresh P-256 key each (as the minter), interleaved rounds;
//   3. acceptance: openssl verify -x509_strict, Go crypto/x509, Python ssl (VERIFY_X509_STRICT) and
//      Node tls handshakes against a TLS server holding the leaf, all on 127.0.0.1;
//   4. the product binary (bun build --compile, the flags of scripts/build.ts) with each variant as the
//      leaf minter: size and `--version` cold start (hyperfine when installed, else 50 spawns);
//      a compiled probe that mints with each variant checks the libraries work inside a binary.
//
// Needs the dev dependencies node-forge, @peculiar/x509 and reflect-metadata (only this bench uses them).
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import tls from "node:tls";
import { defaultPaths, loadOrCreateCA } from "../src/ca/index.ts";
import { readTLV, spkiDer } from "../src/ca/x509.ts";
import { measure, median } from "./coldstart.ts";
import { variant as forge } from "./x509/forge.ts";
import { variant as hand } from "./x509/hand.ts";
import { variant as peculiar } from "./x509/peculiar.ts";
import type { MintedLeaf, Variant } from "./x509/variant.ts";

const ROOT = resolve(import.meta.dir, "..");
const N = Number(process.argv[2] ?? 2000);
const ROUNDS = 4;
const VARIANTS: Array<{ key: string; v: Variant }> = [
  { key: "hand", v: hand },
  { key: "forge", v: forge },
  { key: "peculiar", v: peculiar },
];
const work = join(tmpdir(), `clef-x509-bench-${process.pid}`);
mkdirSync(work, { recursive: true });
const ca = loadOrCreateCA(defaultPaths(join(work, "ca")));
const caPub = new X509Certificate(Buffer.from(ca.certDer)).publicKey;

function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", cwd: opts.cwd, env: opts.env ?? process.env });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

// ---------------------------------------------------------------------------------------------
// 1. Same bytes

const tbsHex = (d: Uint8Array) => {
  const [, s] = readTLV(d, 0);
  const [, , e] = readTLV(d, s);
  return Buffer.from(d.subarray(s, e)).toString("hex");
};
const HOSTS = ["api.example.com", "127.0.0.1", "::1", "2001:db8::a:1", "::ffff:10.1.2.3", "under_score.test"];
const sameBytes: Record<string, { identical: string[]; different: string[]; signatureOk: boolean }> = {};
{
  const k = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const now = Date.now();
  const serial = Uint8Array.of(0x80, 0x01, 0x02, 0x03);
  for (const { key, v } of VARIANTS.slice(1)) {
    const r = { identical: [] as string[], different: [] as string[], signatureOk: true };
    for (const host of HOSTS) {
      const p = { host, spki: spkiDer(k), serial, now };
      const d = await v.leafWith(ca, p);
      (tbsHex(d) === tbsHex(await hand.leafWith(ca, p)) ? r.identical : r.different).push(host);
      r.signatureOk &&= new X509Certificate(Buffer.from(d)).verify(caPub);
    }
    const at = new Date(now);
    const root = await v.issueRoot(ca.key, at, serial);
    (tbsHex(root) === tbsHex(await hand.issueRoot(ca.key, at, serial)) ? r.identical : r.different).push("root");
    sameBytes[key] = r;
  }
}
console.log("same TBSCertificate bytes as today's code:");
for (const [k, r] of Object.entries(sameBytes))
  console.log(`  ${k.padEnd(9)} identical: ${r.identical.join(", ")}; different: ${r.different.join(", ") || "none"}`);

// ---------------------------------------------------------------------------------------------
// 2. Mint time

const times: Record<string, number[]> = Object.fromEntries(VARIANTS.map(({ key }) => [key, []]));
for (const { v } of VARIANTS) for (let i = 0; i < 100; i++) await v.mintLeaf(ca, `warm${i}.test`, Date.now());
for (let round = 0; round < ROUNDS; round++) {
  for (const { key, v } of VARIANTS) {
    const per = Math.ceil(N / ROUNDS);
    for (let i = 0; i < per; i++) {
      const t = performance.now();
      await v.mintLeaf(ca, `h${round}-${i}.example.test`, Date.now());
      times[key]!.push(performance.now() - t);
    }
  }
}
const stat = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    p99: s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]!,
  };
};
const mint = Object.fromEntries(VARIANTS.map(({ key }) => [key, { n: times[key]!.length, ...stat(times[key]!) }]));
console.log("mint time per leaf (fresh P-256 key, cert, both PEMs):");
for (const [k, s] of Object.entries(mint))
  console.log(`  ${k.padEnd(9)} mean ${s.mean.toFixed(3)} ms  p99 ${s.p99.toFixed(3)} ms  (n=${s.n})`);

// ---------------------------------------------------------------------------------------------
// 3. Acceptance

const ACCEPT_HOSTS = ["api.example.com", "127.0.0.1", "::1", "under_score.test"];
const GO_VERIFY = join(work, "verify");
const goBuilt = run(["go", "build", "-o", GO_VERIFY, "verify.go"], {
  cwd: join(import.meta.dir, "x509"),
  env: { ...process.env, GO111MODULE: "off", GOFLAGS: "" },
});
if (goBuilt.code !== 0) throw new Error(`go build verify.go: ${goBuilt.err}`);
const python = Bun.which("python3");
const node = Bun.which("node");

const PY =
  "import ssl,socket,sys\n" +
  "c=ssl.create_default_context(cafile=sys.argv[1]); c.verify_flags|=ssl.VERIFY_X509_STRICT\n" +
  "s=c.wrap_socket(socket.create_connection(('127.0.0.1',int(sys.argv[2]))),server_hostname=sys.argv[3])\n" +
  "print(s.recv(100).decode(),end='')\n";
const NODE_CLIENT =
  "const tls=require('node:tls'),fs=require('node:fs'),net=require('node:net');const [caf,port,name]=process.argv.slice(1);" +
  "const s=tls.connect({host:'127.0.0.1',port:+port,ca:fs.readFileSync(caf),...(net.isIP(name)?{}:{servername:name})," +
  "checkServerIdentity:(_h,c)=>tls.checkServerIdentity(name,c)});let d='';s.on('data',x=>d+=x);" +
  "s.on('end',()=>{process.stdout.write(d)});s.on('error',e=>{console.error(e.message);process.exit(1)});";

async function serveLeaf(leaf: MintedLeaf): Promise<{ port: number; close(): void }> {
  const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end("hello\n"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

async function client(cmd: string[]): Promise<{ ok: boolean; err: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill(), 20_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { ok: code === 0 && out === "hello\n", err: err.trim().split("\n").pop() ?? "" };
}

type Tally = { ok: number; total: number; failures: string[] };
const acceptance: Record<string, Record<string, Tally>> = {};
for (const { key, v } of VARIANTS) {
  const t: Record<string, Tally> = {};
  const tally = (client: string, host: string, ok: boolean, why = "") => {
    const c = (t[client] ??= { ok: 0, total: 0, failures: [] });
    c.total++;
    if (ok) c.ok++;
    else c.failures.push(`${host}: ${why}`);
  };
  const goArgs: string[] = [];
  for (const host of ACCEPT_HOSTS) {
    const leaf = await v.mintLeaf(ca, host, Date.now());
    const f = join(work, `${key}-${host.replace(/[^a-z0-9.]/g, "_")}.pem`);
    writeFileSync(f, leaf.certPem);
    goArgs.push(f, host);
    const o = run(["openssl", "verify", "-x509_strict", "-CAfile", ca.certPath, f]);
    tally("openssl verify -x509_strict", host, o.code === 0 && o.out === `${f}: OK\n`, o.out + o.err);
    const srv = await serveLeaf(leaf);
    try {
      if (python) {
        const r = await client([python, "-c", PY, ca.certPath, String(srv.port), host]);
        tally("Python ssl strict", host, r.ok, r.err);
      }
      if (node) {
        const r = await client([node, "-e", NODE_CLIENT, ca.certPath, String(srv.port), host]);
        tally("Node tls", host, r.ok, r.err);
      }
    } finally {
      srv.close();
    }
  }
  const g = run([GO_VERIFY, ca.certPath, ...goArgs]);
  for (const line of g.out.trim().split("\n")) {
    const [verdict, host, why] = line.split("\t");
    if (host) tally("Go crypto/x509", host, verdict === "OK", why ?? "");
  }
  acceptance[key] = t;
}
console.log("acceptance (leaves accepted / tried):");
for (const [k, t] of Object.entries(acceptance))
  console.log(
    `  ${k.padEnd(9)} ` +
      Object.entries(t)
        .map(([c, x]) => `${c} ${x.ok}/${x.total}${x.failures.length ? ` (${x.failures.join("; ")})` : ""}`)
        .join(", "),
  );

// ---------------------------------------------------------------------------------------------
// 4. Binaries

// The flags of scripts/build.ts (kept in step by hand: that script builds on import).
const FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];
function compile(entry: string, out: string, cwd: string): void {
  const r = run([process.execPath, "build", ...FLAGS, entry, "--outfile", out], { cwd });
  if (r.code !== 0) throw new Error(`bun build ${entry}: ${r.err}`);
}

/** A copy of the tree whose leaf minter mints with `variant` (bench/x509/<variant>.ts). */
function variantTree(variant: string): string {
  const dir = join(work, `tree-${variant}`);
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(ROOT, "bench", "x509"), join(dir, "bench", "x509"), { recursive: true });
  for (const f of ["package.json", "tsconfig.json"]) copyFileSync(join(ROOT, f), join(dir, f));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const leafTs = join(dir, "src", "ca", "leaf.ts");
  let s = readFileSync(leafTs, "utf8");
  const anchor = "        const leaf = mint(host);\n        entry = { promise: Promise.resolve(leaf), leaf };\n";
  if (!s.includes(anchor)) throw new Error("src/ca/leaf.ts changed: update the patch in bench/x509.ts");
  s = s.replace(
    anchor,
    "        const e: Entry = { promise: Promise.resolve(__variant.mintLeaf(ca, host, now())) };\n" +
      "        e.promise.then((l) => { e.leaf = l; mints++; }, () => lru.delete(host));\n" +
      "        entry = e;\n",
  );
  s = `import { variant as __variant } from "../../bench/x509/${variant}.ts";\n${s}`;
  writeFileSync(leafTs, s);
  return dir;
}

const bins: Record<string, string> = { hand: join(work, "clef-proxy-hand") };
compile(join(ROOT, "src", "cli", "main.ts"), bins.hand!, ROOT);
for (const key of ["forge", "peculiar"]) {
  const dir = variantTree(key);
  bins[key] = join(work, `clef-proxy-${key}`);
  compile(join(dir, "src", "cli", "main.ts"), bins[key]!, dir);
}
for (const [k, b] of Object.entries(bins)) {
  const r = run([b, "--version"]);
  if (r.code !== 0) throw new Error(`${k} binary --version: exit ${r.code} ${r.err}`);
}

// The probe: each variant mints inside a compiled binary; openssl verifies what it wrote.
const PROBE = join(work, "probe.ts");
writeFileSync(
  PROBE,
  `import { writeFileSync } from "node:fs";
import { defaultPaths, loadOrCreateCA } from ${JSON.stringify(join(ROOT, "src/ca/index.ts"))};
import { variant as hand } from ${JSON.stringify(join(import.meta.dir, "x509/hand.ts"))};
import { variant as forge } from ${JSON.stringify(join(import.meta.dir, "x509/forge.ts"))};
import { variant as peculiar } from ${JSON.stringify(join(import.meta.dir, "x509/peculiar.ts"))};
const [dir] = process.argv.slice(2);
const ca = loadOrCreateCA(defaultPaths(dir + "/ca"));
for (const [k, v] of Object.entries({ hand, forge, peculiar })) {
  const leaf = await v.mintLeaf(ca, "probe.example.test", Date.now());
  writeFileSync(dir + "/probe-" + k + ".pem", leaf.certPem);
}
`,
);
const probeBin = join(work, "probe");
compile(PROBE, probeBin, ROOT);
const probeDir = join(work, "probe-out");
mkdirSync(probeDir, { recursive: true });
const pr = run([probeBin, probeDir]);
const compiledOk: Record<string, boolean> = {};
for (const { key } of VARIANTS) {
  const f = join(probeDir, `probe-${key}.pem`);
  compiledOk[key] =
    pr.code === 0 &&
    run(["openssl", "verify", "-x509_strict", "-CAfile", join(probeDir, "ca", "ca.crt"), f]).code === 0;
}
if (pr.code !== 0) console.log(`probe binary failed: ${pr.err}`);

// Cold start: three passes over the binaries, in rotated order (the machine is shared: drift and
// bursts of load from others hit every variant alike), 50 runs each per pass.
const cold: Record<string, { median: number; runs: number; tool: string }> = {};
{
  const all: Record<string, number[]> = Object.fromEntries(Object.keys(bins).map((k) => [k, []]));
  const keys = Object.keys(bins);
  const hyperfine = Bun.which("hyperfine");
  for (let pass = 0; pass < 3; pass++) {
    const order = [...keys.slice(pass % keys.length), ...keys.slice(0, pass % keys.length)];
    if (hyperfine) {
      const json = join(work, `hyperfine-${pass}.json`);
      const cmds = order.map((k) => `${bins[k]} --version`);
      const r = run([hyperfine, "-N", "--warmup", "5", "--runs", "50", "--export-json", json, ...cmds]);
      if (r.code !== 0) throw new Error(`hyperfine: ${r.err}`);
      const res = JSON.parse(readFileSync(json, "utf8")).results as Array<{ times: number[] }>;
      order.forEach((k, i) => all[k]!.push(...res[i]!.times.map((s) => s * 1000)));
    } else {
      for (const k of order) all[k]!.push(...measure(bins[k]!, 50));
    }
  }
  for (const k of keys) {
    const xs = all[k]!.sort((a, b) => a - b);
    cold[k] = { median: median(xs), runs: xs.length, tool: hyperfine ? "hyperfine -N" : "spawn loop" };
  }
}
const size = Object.fromEntries(Object.entries(bins).map(([k, b]) => [k, statSync(b).size]));

console.log("binary (product with the variant as leaf minter):");
for (const { key } of VARIANTS)
  console.log(
    `  ${key.padEnd(9)} size ${(size[key]! / 1048576).toFixed(2)} MiB (${size[key]} B)  --version median ${cold[key]!.median.toFixed(2)} ms (${cold[key]!.tool}, ${cold[key]!.runs} runs)  mints when compiled: ${compiledOk[key] ? "yes" : "NO"}`,
  );

// ---------------------------------------------------------------------------------------------
// Table for docs/DESIGN.md

const clients = ["openssl verify -x509_strict", "Go crypto/x509", "Python ssl strict", "Node tls"];
const rows = VARIANTS.map(({ key, v }) => {
  const m = mint[key]!;
  const acc = clients.map((c) => {
    const x = acceptance[key]![c];
    return x ? `${x.ok}/${x.total}` : "n/a";
  });
  const same =
    key === "hand" ? "—" : sameBytes[key]!.different.length ? `not for ${sameBytes[key]!.different.join(", ")}` : "yes";
  return `| ${v.name} | ${m.mean.toFixed(3)} | ${m.p99.toFixed(3)} | ${(size[key]! / 1048576).toFixed(2)} | ${cold[key]!.median.toFixed(2)} | ${acc.join(" | ")} | ${same} |`;
});
console.log(
  "\n| variant | mint mean ms | mint p99 ms | binary MiB | --version median ms | openssl strict | Go | Python strict | Node | same TBS bytes |\n" +
    "|---|---|---|---|---|---|---|---|---|---|\n" +
    rows.join("\n"),
);

writeFileSync(
  join(import.meta.dir, "results", "x509.json"),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      bun: Bun.version,
      leaves: N,
      mint,
      size,
      coldStart: cold,
      acceptance,
      sameBytes,
      compiledOk,
    },
    null,
    2,
  ) + "\n",
);
if (process.env.KEEP_WORK) console.log(`\nwrote bench/results/x509.json; work dir kept: ${work}`);
else {
  rmSync(work, { recursive: true, force: true }); // three product binaries, ~100 MiB each
  console.log("\nwrote bench/results/x509.json");
}

// CA store (docs/CONTRACT.md §1 `ca` rows, §2, §18.12) through the compiled binary, side by side
// with the reference where it is installed.
import { describe, expect, test } from "bun:test";
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OUR_BIN, REF_BIN } from "./helpers/bin.ts";
import { runCli, tempDir } from "./helpers/proxy.ts";

if (!REF_BIN)
  console.warn("NOTICE: reference binary not installed: ca.test.ts skips the side-by-side and interop tests");
const withRef = REF_BIN ? test : test.skip;

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

function sh(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** A fresh XDG_CONFIG_HOME; returns it and the CA dir inside. */
function xdg(): { xdg: string; dir: string } {
  const x = tempDir("clef-xdg-");
  return { xdg: x, dir: join(x, "clef", "proxy") };
}

async function run(bin: string, args: string[], env: Record<string, string | undefined> = {}, cwd?: string) {
  return runCli(args, { bin, env, cwd });
}

/** Runs `args` on a CA dir prepared by `setup`, for one binary; the dir path is replaced by <dir>. */
async function scenario(bin: string, setup: (dir: string) => void, args = ["ca", "export"]) {
  const { xdg: x, dir } = xdg();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  setup(dir);
  const r = await run(bin, args, { XDG_CONFIG_HOME: x });
  return { code: r.code, stderr: r.stderr.replaceAll(dir, "<dir>"), stdout: r.stdout, dir };
}

// Material made with openssl once per run.
const mat = (() => {
  const d = tempDir("clef-mat-");
  const p = (n: string) => join(d, n);
  sh(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p("ec.key")]);
  sh(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", p("ec.key"), "-out", p("ec.p8")]);
  sh(["openssl", "genrsa", "-out", p("rsa.key"), "1024"]);
  sh(["openssl", "req", "-x509", "-key", p("rsa.key"), "-subj", "/CN=x", "-out", p("rsa-ca.crt")]);
  sh([
    "openssl",
    "req",
    "-x509",
    "-key",
    p("ec.key"),
    "-subj",
    "/CN=x",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-out",
    p("ec-noca.crt"),
  ]);
  sh([
    "openssl",
    "req",
    "-x509",
    "-key",
    p("ec.key"),
    "-subj",
    "/CN=x",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-out",
    p("ec-ca.crt"),
  ]);
  const r = (n: string) => readFileSync(p(n), "utf8");
  return {
    ecKey: r("ec.key"),
    ecP8: r("ec.p8"),
    rsaKey: r("rsa.key"),
    rsaCA: r("rsa-ca.crt"),
    ecNoCA: r("ec-noca.crt"),
    ecCA: r("ec-ca.crt"),
  };
})();

const fresh = (bin: string) => (dir: string) => {
  // a valid pair written by `bin` itself
  const r = Bun.spawnSync([bin, "ca", "regenerate", "--confirm"], {
    env: { PATH: process.env.PATH ?? "", XDG_CONFIG_HOME: join(dir, "..", "..") },
  });
  if (r.exitCode !== 0) throw new Error("regenerate failed");
};

// Load errors: identical text and exit code in both binaries.
const loadErrors: Array<[string, (dir: string, bin: string) => void, string]> = [
  [
    "garbage ca.crt",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.crt"), "garbage\n");
    },
    "clef-proxy ca export: ca: <dir>/ca.crt: not a CERTIFICATE PEM block\n",
  ],
  [
    "empty ca.crt",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.crt"), "");
    },
    "clef-proxy ca export: ca: <dir>/ca.crt: not a CERTIFICATE PEM block\n",
  ],
  [
    "DER garbage",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    },
    "clef-proxy ca export: ca: parse <dir>/ca.crt: x509: malformed certificate\n",
  ],
  [
    "PKCS#8 key",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.key"), mat.ecP8);
    },
    "clef-proxy ca export: ca: <dir>/ca.key: not an EC PRIVATE KEY PEM block\n",
  ],
  [
    "RSA key",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.key"), mat.rsaKey);
    },
    "clef-proxy ca export: ca: <dir>/ca.key: not an EC PRIVATE KEY PEM block\n",
  ],
  [
    "garbage key",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.key"), "g\n");
    },
    "clef-proxy ca export: ca: <dir>/ca.key: not an EC PRIVATE KEY PEM block\n",
  ],
  [
    "RSA cert",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.crt"), mat.rsaCA);
    },
    "clef-proxy ca export: ca: <dir>/ca.crt: not an ECDSA public key\n",
  ],
  [
    "CA:FALSE cert (bad key too)",
    (d) => {
      writeFileSync(join(d, "ca.crt"), mat.ecNoCA);
      writeFileSync(join(d, "ca.key"), "g\n");
    },
    "clef-proxy ca export: ca: <dir>/ca.crt: not marked as CA\n",
  ],
  [
    "bad cert and bad key",
    (d) => {
      writeFileSync(join(d, "ca.crt"), "g\n");
      writeFileSync(join(d, "ca.key"), "g\n");
    },
    "clef-proxy ca export: ca: <dir>/ca.crt: not a CERTIFICATE PEM block\n",
  ],
  [
    "key of another CA",
    (d, b) => {
      fresh(b)(d);
      writeFileSync(join(d, "ca.key"), mat.ecKey);
    },
    "clef-proxy ca export: ca: cert and key do not match\n",
  ],
  [
    "ca.crt is a directory",
    (d) => {
      mkdirSync(join(d, "ca.crt"));
      writeFileSync(join(d, "ca.key"), mat.ecKey);
    },
    "clef-proxy ca export: read <dir>/ca.crt: is a directory\n",
  ],
];

describe("CA load errors (exit 5, reference texts)", () => {
  for (const [label, setup, want] of loadErrors) {
    test(`ours: ${label}`, async () => {
      const r = await scenario(OUR_BIN, (d) => setup(d, OUR_BIN));
      expect([r.code, r.stdout.length, r.stderr]).toEqual([5, 0, want]);
    });
    withRef(`reference: ${label}`, async () => {
      const r = await scenario(REF_BIN!, (d) => setup(d, REF_BIN!));
      expect([r.code, r.stdout.length, r.stderr]).toEqual([5, 0, want]);
    });
  }
});

describe("CA creation", () => {
  test("ca export creates every dir 0700, ca.crt 0644, ca.key 0600; the root has the reference's fields", async () => {
    const home = tempDir("clef-home-");
    const r = await run(OUR_BIN, ["ca", "export"], { HOME: home, XDG_CONFIG_HOME: undefined });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const dir = join(home, ".config", "clef", "proxy");
    expect([mode(join(home, ".config")), mode(join(home, ".config", "clef")), mode(dir)]).toEqual([
      "700",
      "700",
      "700",
    ]);
    expect([mode(join(dir, "ca.crt")), mode(join(dir, "ca.key"))]).toEqual(["644", "600"]);
    const pem = readFileSync(join(dir, "ca.crt"), "utf8");
    expect(r.stdout.toString()).toBe(pem);
    expect(pem).toMatch(
      /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{64}\n)+[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/,
    );
    expect(readFileSync(join(dir, "ca.key"), "utf8")).toMatch(
      /^-----BEGIN EC PRIVATE KEY-----\n[\s\S]+\n-----END EC PRIVATE KEY-----\n$/,
    );
    const x = new X509Certificate(pem);
    expect(x.subject).toBe("O=clef-sh\nCN=clef-proxy");
    expect(x.issuer).toBe("O=clef-sh\nCN=clef-proxy");
    expect(x.ca).toBe(true);
    expect(x.serialNumber).toMatch(/^[0-9A-F]{1,32}$/);
    const life = Date.parse(x.validTo) - Date.parse(x.validFrom);
    expect(life).toBe(3650 * 86_400_000 + 60_000);
    expect(Math.abs(Date.parse(x.validFrom) - (Date.now() - 60_000))).toBeLessThan(30_000);
    expect(x.checkPrivateKey(createPrivateKey(readFileSync(join(dir, "ca.key"), "utf8")))).toBe(true);
  });

  test("modes are exact whatever the umask (077 and 000)", async () => {
    for (const umask of ["077", "000"]) {
      const home = tempDir("clef-home-");
      const p = Bun.spawnSync(["sh", "-c", `umask ${umask}; exec "$0" ca export`, OUR_BIN], {
        env: { PATH: process.env.PATH ?? "", HOME: home },
      });
      expect(p.exitCode).toBe(0);
      const dir = join(home, ".config", "clef", "proxy");
      expect([mode(join(home, ".config")), mode(dir), mode(join(dir, "ca.crt")), mode(join(dir, "ca.key"))]).toEqual([
        "700",
        "700",
        "644",
        "600",
      ]);
    }
  });

  withRef("openssl -text of our root equals the reference's, except serial, key, dates, signature, SKI", async () => {
    const norm = (pem: string) => {
      const f = join(tempDir("clef-x-"), "c.pem");
      writeFileSync(f, pem);
      return sh(["openssl", "x509", "-in", f, "-noout", "-text"])
        .replace(/Serial Number:\n\s+[0-9a-f:]+/, "Serial Number: S")
        .replace(/pub:\n(\s+[0-9a-f:]+\n)+/, "pub: P\n")
        .replace(/Not (Before|After) ?: .*/g, "Not $1: D")
        .replace(/Subject Key Identifier: *\n\s+[0-9A-F:]+/, "SKI: K")
        .replace(/Signature Value:\n(\s+[0-9a-f:]+\n)+/, "Signature Value: V\n");
    };
    const ours = (await run(OUR_BIN, ["ca", "export"])).stdout.toString();
    const ref = (await run(REF_BIN!, ["ca", "export"])).stdout.toString();
    expect(norm(ours)).toBe(norm(ref));
    // and the same DER skeleton: the SKI is SHA-1 of the public key in both
    const asn = (pem: string) => {
      const f = join(tempDir("clef-x-"), "c.pem");
      writeFileSync(f, pem);
      return sh(["openssl", "asn1parse", "-in", f])
        .split("\n")
        .map((l) => l.replace(/^\s*\d+:/, "").replace(/(INTEGER|UTCTIME|HEX DUMP\]:0414)\s*:?[0-9A-Z]*$/, "$1"))
        .filter((l) => !/BIT STRING/.test(l))
        .join("\n");
    };
    expect(asn(ours).replace(/l=\s*\d+/g, "l=")).toBe(asn(ref).replace(/l=\s*\d+/g, "l="));
  });
});

describe("lone files (deliberate improvement §18.12)", () => {
  test("lone ca.key: a new root for the same key; the key file is untouched", async () => {
    const r = await scenario(OUR_BIN, (d) => writeFileSync(join(d, "ca.key"), mat.ecKey, { mode: 0o600 }));
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(readFileSync(join(r.dir, "ca.key"), "utf8")).toBe(mat.ecKey);
    const x = new X509Certificate(r.stdout);
    expect(x.subject).toBe("O=clef-sh\nCN=clef-proxy");
    expect(x.checkPrivateKey(createPrivateKey(mat.ecKey))).toBe(true);
    expect(readFileSync(join(r.dir, "ca.crt"), "utf8")).toBe(r.stdout.toString());
    expect(mode(join(r.dir, "ca.crt"))).toBe("644");
    // loads again, same cert
    const again = await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: join(r.dir, "..", "..") });
    expect(again.stdout.toString()).toBe(r.stdout.toString());
  });

  test("lone ca.key that is not an EC key: CA error, nothing written", async () => {
    const r = await scenario(OUR_BIN, (d) => writeFileSync(join(d, "ca.key"), mat.rsaKey));
    expect([r.code, r.stderr]).toEqual([
      5,
      "clef-proxy ca export: ca: <dir>/ca.key: not an EC PRIVATE KEY PEM block\n",
    ]);
    expect(existsSync(join(r.dir, "ca.crt"))).toBe(false);
  });

  test("lone ca.crt: CA error (exit 5), the cert is left alone", async () => {
    const r = await scenario(OUR_BIN, (d) => writeFileSync(join(d, "ca.crt"), mat.ecCA));
    expect(r.code).toBe(5);
    expect(r.stderr).toBe(
      "clef-proxy ca export: ca: <dir>/ca.crt exists but its key <dir>/ca.key is missing (run `clef-proxy ca regenerate --confirm` to start over)\n",
    );
    expect(readFileSync(join(r.dir, "ca.crt"), "utf8")).toBe(mat.ecCA);
    expect(existsSync(join(r.dir, "ca.key"))).toBe(false);
  });

  withRef("(the reference, for the record: a lone ca.key is silently replaced)", async () => {
    const r = await scenario(REF_BIN!, (d) => writeFileSync(join(d, "ca.key"), mat.ecKey));
    expect(r.code).toBe(0);
    expect(readFileSync(join(r.dir, "ca.key"), "utf8")).not.toBe(mat.ecKey);
  });
});

describe("regenerate", () => {
  test("replaces key and cert (new serial, new key), also over a corrupt CA", async () => {
    const { xdg: x, dir } = xdg();
    const first = await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x });
    const key1 = readFileSync(join(dir, "ca.key"), "utf8");
    const r = await run(OUR_BIN, ["ca", "regenerate", "--confirm"], { XDG_CONFIG_HOME: x });
    expect([r.code, r.stdout.length, r.stderr]).toEqual([0, 0, ""]);
    const second = await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x });
    expect(new X509Certificate(second.stdout).serialNumber).not.toBe(new X509Certificate(first.stdout).serialNumber);
    expect(readFileSync(join(dir, "ca.key"), "utf8")).not.toBe(key1);
    writeFileSync(join(dir, "ca.crt"), "garbage");
    chmodSync(join(dir, "ca.key"), 0o666);
    const r2 = await run(OUR_BIN, ["ca", "regenerate", "-confirm"], { XDG_CONFIG_HOME: x });
    expect([r2.code, r2.stderr]).toEqual([0, ""]);
    expect([mode(join(dir, "ca.crt")), mode(join(dir, "ca.key"))]).toEqual(["644", "600"]);
    expect((await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x })).code).toBe(0);
  });

  for (const bin of [OUR_BIN, REF_BIN]) {
    (bin ? test : test.skip)(
      `${bin === OUR_BIN ? "ours" : "reference"}: unusable dir → exit 5 with Go's mkdir/open texts`,
      async () => {
        const base = tempDir("clef-f-");
        const file = join(base, "afile");
        writeFileSync(file, "x");
        const e = await run(bin!, ["ca", "export"], { XDG_CONFIG_HOME: file });
        expect([e.code, e.stderr.replaceAll(base, "<b>")]).toEqual([
          5,
          "clef-proxy ca export: open <b>/afile/clef/proxy/ca.crt: not a directory\n",
        ]);
        const g = await run(bin!, ["ca", "regenerate", "--confirm"], { XDG_CONFIG_HOME: file });
        expect([g.code, g.stderr.replaceAll(base, "<b>")]).toEqual([
          5,
          "clef-proxy ca regenerate: mkdir <b>/afile/clef/proxy: mkdir <b>/afile: not a directory\n",
        ]);
        mkdirSync(join(base, "x", "clef"), { recursive: true });
        writeFileSync(join(base, "x", "clef", "proxy"), "x");
        const h = await run(bin!, ["ca", "regenerate", "--confirm"], { XDG_CONFIG_HOME: join(base, "x") });
        expect([h.code, h.stderr.replaceAll(base, "<b>")]).toEqual([
          5,
          "clef-proxy ca regenerate: mkdir <b>/x/clef/proxy: mkdir <b>/x/clef/proxy: not a directory\n",
        ]);
        rmSync(join(base, "x", "clef", "proxy"));
        mkdirSync(join(base, "x", "clef", "proxy", "ca.crt"), { recursive: true });
        const i = await run(bin!, ["ca", "regenerate", "--confirm"], { XDG_CONFIG_HOME: join(base, "x") });
        expect([i.code, i.stderr.replaceAll(base, "<b>")]).toEqual([
          5,
          "clef-proxy ca regenerate: write <b>/x/clef/proxy/ca.crt: open <b>/x/clef/proxy/ca.crt: is a directory\n",
        ]);
      },
    );
  }
});

describe("dir resolution", () => {
  for (const bin of [OUR_BIN, REF_BIN]) {
    (bin ? test : test.skip)(`${bin === OUR_BIN ? "ours" : "reference"}: HOME / XDG_CONFIG_HOME rules`, async () => {
      const b = bin!;
      const noHome = { HOME: undefined, XDG_CONFIG_HOME: undefined };
      expect(await run(b, ["ca", "path"], noHome)).toEqual({
        code: 5,
        stdout: Buffer.from(""),
        stderr: "clef-proxy ca path: resolve home dir: $HOME is not defined\n",
      });
      expect(await run(b, ["ca", "path"], { HOME: "", XDG_CONFIG_HOME: "" })).toEqual({
        code: 5,
        stdout: Buffer.from(""),
        stderr: "clef-proxy ca path: resolve home dir: $HOME is not defined\n",
      });
      for (const args of [
        ["ca", "export"],
        ["ca", "regenerate", "--confirm"],
      ]) {
        expect(await run(b, args, noHome)).toEqual({
          code: 5,
          stdout: Buffer.from(""),
          stderr: "clef-proxy: resolve CA dir: resolve home dir: $HOME is not defined\n",
        });
      }
      // flag and format errors come before the dir is resolved
      expect((await run(b, ["ca", "export", "--format", "x"], noHome)).code).toBe(1);
      expect((await run(b, ["ca", "regenerate"], noHome)).code).toBe(1);
      expect((await run(b, ["ca", "path"], { HOME: "/h", XDG_CONFIG_HOME: "" })).stdout.toString()).toBe(
        "/h/.config/clef/proxy\n",
      );
      expect((await run(b, ["ca", "path"], { HOME: "/h", XDG_CONFIG_HOME: "/x/" })).stdout.toString()).toBe(
        "/x/clef/proxy\n",
      );
      expect((await run(b, ["ca", "path"], { HOME: undefined, XDG_CONFIG_HOME: "rel" })).stdout.toString()).toBe(
        "rel/clef/proxy\n",
      );
      expect((await run(b, ["ca", "path", "--bogus", "extra"], { HOME: "/h" })).stdout.toString()).toBe(
        "/h/.config/clef/proxy\n",
      );
      // relative XDG: created under the working directory
      const cwd = tempDir("clef-cwd-");
      const r = await run(
        b,
        ["ca", "export", "--format", "der-base64"],
        { HOME: undefined, XDG_CONFIG_HOME: "rel" },
        cwd,
      );
      expect(r.code).toBe(0);
      expect(Buffer.from(r.stdout.toString(), "base64")).toEqual(
        new X509Certificate(readFileSync(join(cwd, "rel", "clef", "proxy", "ca.crt"))).raw,
      );
      expect(mode(join(cwd, "rel"))).toBe("700");
    });
  }
});

describe("export formats and --out", () => {
  test("pem / der / der-base64 are the same certificate; der-base64 has no newline", async () => {
    const { xdg: x, dir } = xdg();
    const pem = (await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x })).stdout.toString();
    const der = (await run(OUR_BIN, ["ca", "export", "--format", "der"], { XDG_CONFIG_HOME: x })).stdout;
    const b64 = (await run(OUR_BIN, ["ca", "export", "-format=der-base64"], { XDG_CONFIG_HOME: x })).stdout.toString();
    expect(pem).toBe(readFileSync(join(dir, "ca.crt"), "utf8"));
    expect(der).toEqual(new X509Certificate(pem).raw);
    expect(b64).toBe(der.toString("base64"));
    expect(b64.endsWith("\n")).toBe(false);
  });

  test("export re-encodes the first CERTIFICATE block (leading junk, a second block ignored)", async () => {
    const { xdg: x, dir } = xdg();
    const pem = (await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x })).stdout.toString();
    writeFileSync(join(dir, "ca.crt"), "junk\n" + pem + mat.ecCA);
    expect((await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x })).stdout.toString()).toBe(pem);
  });

  test("--out writes the file (0644 when created, an existing file keeps its mode); errors exit 1", async () => {
    const { xdg: x } = xdg();
    const d = tempDir("clef-out-");
    const r = await run(OUR_BIN, ["ca", "export", "--out", join(d, "a.pem")], { XDG_CONFIG_HOME: x });
    expect([r.code, r.stdout.length, r.stderr]).toEqual([0, 0, ""]);
    expect(mode(join(d, "a.pem"))).toBe("644");
    const pem = (await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x })).stdout.toString();
    expect(readFileSync(join(d, "a.pem"), "utf8")).toBe(pem);
    writeFileSync(join(d, "b"), "existing content that is longer than a DER certificate ".repeat(20));
    chmodSync(join(d, "b"), 0o640);
    expect(
      (await run(OUR_BIN, ["ca", "export", "--out", join(d, "b"), "--format", "der"], { XDG_CONFIG_HOME: x })).code,
    ).toBe(0);
    expect(mode(join(d, "b"))).toBe("640");
    expect(readFileSync(join(d, "b"))).toEqual(new X509Certificate(pem).raw);
    const e = await run(OUR_BIN, ["ca", "export", "--out", "/nonexistent/x"], { XDG_CONFIG_HOME: x });
    expect([e.code, e.stderr]).toEqual([
      1,
      "clef-proxy ca export: write /nonexistent/x: open /nonexistent/x: no such file or directory\n",
    ]);
    const f = await run(OUR_BIN, ["ca", "export", "--out", d], { XDG_CONFIG_HOME: x });
    expect([f.code, f.stderr]).toEqual([1, `clef-proxy ca export: write ${d}: open ${d}: is a directory\n`]);
  });
});

describe("interop with the reference", () => {
  withRef("a CA written by the reference loads in ours (same PEM, files untouched)", async () => {
    const { xdg: x, dir } = xdg();
    const ref = await run(REF_BIN!, ["ca", "export"], { XDG_CONFIG_HOME: x });
    const key = readFileSync(join(dir, "ca.key"), "utf8");
    const ours = await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x });
    expect([ours.code, ours.stderr]).toEqual([0, ""]);
    expect(ours.stdout.toString()).toBe(ref.stdout.toString());
    expect(readFileSync(join(dir, "ca.key"), "utf8")).toBe(key);
  });

  withRef("a CA written by ours loads in the reference (same PEM)", async () => {
    const { xdg: x, dir } = xdg();
    const ours = await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x });
    const ref = await run(REF_BIN!, ["ca", "export"], { XDG_CONFIG_HOME: x });
    expect([ref.code, ref.stderr]).toEqual([0, ""]);
    expect(ref.stdout.toString()).toBe(ours.stdout.toString());
    // and a root issued by ours for a lone key is accepted by the reference too
    rmSync(join(dir, "ca.crt"));
    const again = await run(OUR_BIN, ["ca", "export"], { XDG_CONFIG_HOME: x });
    const ref2 = await run(REF_BIN!, ["ca", "export"], { XDG_CONFIG_HOME: x });
    expect(ref2.stdout.toString()).toBe(again.stdout.toString());
    expect(
      createPublicKey(createPrivateKey(readFileSync(join(dir, "ca.key"), "utf8"))).export({
        format: "pem",
        type: "spki",
      }),
    ).toBe(new X509Certificate(again.stdout).publicKey.export({ format: "pem", type: "spki" }));
  });
});

// src/ca/leaf.ts: the CA identity the leaves point at, every field of a leaf byte for byte
// (docs/CONTRACT.md §3), name canonicalisation, the LRU cache and its stats() for metrics. In process,
// from source; node:crypto is the independent parser.
import { describe, expect, test } from "bun:test";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bitString, bool, extension, name, OID, octets, seq, smallInt } from "../../../src/ca/der.ts";
import { type CA, defaultPaths, type LeafMinter, loadOrCreateCA } from "../../../src/ca/index.ts";
import { caIdentity, canonicalLeafName, createLeafMinter, leafIssuer } from "../../../src/ca/leaf.ts";
import { issue, keyId, readTLV, ROOT_NAME, spkiDer } from "../../../src/ca/x509.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const ca: CA = loadOrCreateCA(defaultPaths(join(mkdtempSync(join(tmpdir(), "clef-unit-leaf-")), "ca")));
const caSki = hex(keyId(spkiDer(ca.key)));

function tbsFields(cert: Uint8Array): Uint8Array[] {
  const [, cs] = readTLV(cert, 0);
  const [, ts, te] = readTLV(cert, cs);
  const out: Uint8Array[] = [];
  for (let off = ts; off < te; ) {
    const [, , end] = readTLV(cert, off);
    out.push(cert.subarray(off, end));
    off = end;
  }
  return out;
}

/** The extensions of a leaf, one hex string each, in order. */
function extensions(cert: Uint8Array): string[] {
  const block = tbsFields(cert)[7]!; // [3] { SEQUENCE OF Extension }
  const [, ls] = readTLV(block, 0);
  const [, s, e] = readTLV(block, ls);
  const out: string[] = [];
  for (let off = s; off < e; ) {
    const [, , end] = readTLV(block, off);
    out.push(hex(block.subarray(off, end)));
    off = end;
  }
  return out;
}

describe("caIdentity", () => {
  test("the CA's subject bytes and its SKI extension", () => {
    const id = caIdentity(ca.certDer);
    expect(hex(id.subject)).toBe(hex(name(ROOT_NAME)));
    expect(hex(id.ski)).toBe(caSki);
  });

  test("a CA with another SKI than method 1: that SKI is used, not a computed one", () => {
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const subj = name([[OID.commonName, "Other CA"]]);
    const ski = Uint8Array.of(1, 2, 3, 4);
    const der = issue(
      {
        serial: Uint8Array.of(1),
        issuer: subj,
        subject: subj,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        spki: spkiDer(key),
        extensions: [
          extension(OID.basicConstraints, true, seq(bool(true))),
          extension(OID.subjectKeyId, true, octets(ski)), // critical flag skipped while reading
        ],
      },
      key,
    );
    expect(hex(caIdentity(der).ski)).toBe("01020304");
    expect(hex(caIdentity(der).subject)).toBe(hex(subj));
  });

  test("a CA without SKI: the key identifier is computed from its public key", () => {
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const subj = name([[OID.commonName, "No SKI"]]);
    const der = issue(
      {
        serial: Uint8Array.of(1),
        issuer: subj,
        subject: subj,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        spki: spkiDer(key),
        extensions: [extension(OID.basicConstraints, true, seq(bool(true), smallInt(0)))],
      },
      key,
    );
    expect(hex(caIdentity(der).ski)).toBe(hex(keyId(spkiDer(key))));
  });

  test("garbage is refused", () => {
    expect(() => caIdentity(Uint8Array.of(0x30, 0x03, 0x30, 0x01, 0x00))).toThrow();
  });
});

describe("leaf fields, byte for byte (§3)", () => {
  const sign = leafIssuer(ca);
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const spki = spkiDer(key);
  const now = Date.parse("2026-11-30T12:00:00.750Z");
  const serial = Uint8Array.of(0xc0, 0xff, 0xee);
  const leaf = (host: string) => sign({ host, spki, serial, now });
  const KU = "300e0603551d0f0101ff0404030205a0"; // critical, digitalSignature | keyEncipherment
  const EKU = "30130603551d25040c300a06082b06010505070301"; // serverAuth
  const BC = "300c0603551d130101ff04023000"; // critical, CA:FALSE
  const AKI = `301f0603551d23041830168014${caSki}`; // keyIdentifier = the root's SKI

  test("DNS name: v3, serial, issuer = the root's subject bytes, validity, CN, key, extensions in the reference's order", () => {
    const der = leaf("api.example.com");
    const f = tbsFields(der).map(hex);
    expect(f[0]).toBe("a003020102");
    expect(f[1]).toBe("020400c0ffee");
    expect(f[2]).toBe("300a06082a8648ce3d040302");
    expect(f[3]).toBe(hex(caIdentity(ca.certDer).subject));
    expect(Buffer.from(f[4]!, "hex").toString("latin1")).toBe(
      "0\x1e\x17\x0d261130115900Z\x17\x0d261201120000Z", // −1 min, +24 h, whole seconds
    );
    expect(f[5]).toBe(hex(name([[OID.commonName, "api.example.com"]])));
    expect(f[6]).toBe(hex(spki));
    const host = Buffer.from("api.example.com").toString("hex");
    expect(extensions(der)).toEqual([KU, EKU, BC, AKI, `301a0603551d1104133011820f${host}`]);
    expect(f.length).toBe(8); // no issuer/subject unique IDs
  });

  test("KU as built equals the DER helpers' BIT STRING (5 unused bits)", () => {
    expect(hex(extension(OID.keyUsage, true, bitString(Uint8Array.of(0xa0), 5)))).toBe(KU);
  });

  test("IP literals: SAN [7] with 4 or 16 bytes, CN the literal", () => {
    expect(extensions(leaf("127.0.0.2"))[4]).toBe("300f0603551d11040830068704" + "7f000002");
    expect(extensions(leaf("::1"))[4]).toBe(`301b0603551d1104143012871000${"00".repeat(14)}01`);
    expect(hex(tbsFields(leaf("::1"))[5]!)).toBe(hex(name([[OID.commonName, "::1"]])));
  });

  test("names outside PrintableString: the CN is a UTF8String, the SAN the same IA5 bytes", () => {
    const x = new X509Certificate(Buffer.from(leaf("under_score.test")));
    expect(x.subject).toBe("CN=under_score.test");
    expect(x.subjectAltName).toBe("DNS:under_score.test");
    expect(hex(tbsFields(leaf("*.wild.test"))[5]!).slice(22, 24)).toBe("0c");
  });

  test("signed by the CA key; node:crypto parses every field back", () => {
    const x = new X509Certificate(Buffer.from(leaf("api.example.com")));
    expect(x.verify(new X509Certificate(Buffer.from(ca.certDer)).publicKey)).toBe(true);
    expect(x.checkIssued(new X509Certificate(Buffer.from(ca.certDer)))).toBe(true);
    expect(x.ca).toBe(false);
    expect(x.serialNumber).toBe("C0FFEE");
    expect(x.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // node's keyUsage is the extended key usage
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });
});

describe("canonicalLeafName", () => {
  test("lower-cased, IPv6 brackets stripped", () => {
    expect(canonicalLeafName("API.Example.COM")).toBe("api.example.com");
    expect(canonicalLeafName("[::1]")).toBe("::1");
    expect(canonicalLeafName("[2001:DB8::1]")).toBe("2001:db8::1");
  });

  test("empty, over 253 characters, spaces, controls and non-ASCII are refused", () => {
    for (const bad of ["", "[]", "a".repeat(254), "a b", "x\ty", "x\r\ny", "ü.test", "a\x7f"])
      expect(() => canonicalLeafName(bad)).toThrow("leaf: invalid name");
    expect(canonicalLeafName("a".repeat(253))).toBe("a".repeat(253));
  });
});

describe("minter: cache and stats", () => {
  test("a LeafMinter: stats() counts mints (misses) and the cache size; hits mint nothing", async () => {
    const m: LeafMinter = createLeafMinter(ca, { sharedKey: true });
    expect(m.stats()).toEqual({ mints: 0, size: 0 });
    const a = await m.leafFor("a.test");
    await m.leafFor("A.TEST");
    await m.leafFor("a.test");
    expect(m.stats()).toEqual({ mints: 1, size: 1 });
    await m.leafFor("b.test");
    expect(m.stats()).toEqual({ mints: 2, size: 2 });
    expect(await m.leafFor("a.test")).toBe(a);
    expect(m.stats()).toEqual({ mints: 2, size: 2 });
  });

  test("concurrent calls for one name: one mint, one leaf", async () => {
    const m = createLeafMinter(ca, { sharedKey: true });
    const all = await Promise.all(Array.from({ length: 10 }, () => m.leafFor("same.test")));
    expect(new Set(all).size).toBe(1);
    expect(m.stats().mints).toBe(1);
  });

  test("refused names mint nothing and are not cached", async () => {
    const m = createLeafMinter(ca, { sharedKey: true });
    await expect(m.leafFor("a b")).rejects.toThrow("leaf: invalid name");
    expect(m.stats()).toEqual({ mints: 0, size: 0 });
  });

  test("LRU: eviction of the least recently used; an evicted name is minted again (a new serial)", async () => {
    const m = createLeafMinter(ca, { cap: 2, sharedKey: true });
    const a = await m.leafFor("a.test");
    await m.leafFor("b.test");
    await m.leafFor("a.test"); // a is now the most recent
    await m.leafFor("c.test"); // evicts b
    expect(m.stats()).toEqual({ mints: 3, size: 2 });
    expect(await m.leafFor("a.test")).toBe(a);
    const b2 = await m.leafFor("b.test"); // miss: evicts c
    expect(m.stats()).toEqual({ mints: 4, size: 2 });
    expect(await m.leafFor("a.test")).toBe(a);
    await m.leafFor("c.test"); // miss again: evicts b
    expect(m.stats()).toEqual({ mints: 5, size: 2 });
    expect(b2.serialHex).not.toBe(a.serialHex);
  });

  test("a leaf close to NotAfter is minted again; the cache size stays one", async () => {
    let now = Date.parse("2026-11-30T00:00:00Z");
    const m = createLeafMinter(ca, { now: () => now, refreshBeforeMs: 3600_000, sharedKey: true });
    const a = await m.leafFor("t.test");
    expect(a.notAfter.toISOString()).toBe("2026-12-01T00:00:00.000Z");
    now += 23 * 3600_000 - 1000; // 1 h + 1 s left
    expect(await m.leafFor("t.test")).toBe(a);
    now += 2000; // 59 min 59 s left
    const b = await m.leafFor("t.test");
    expect(b).not.toBe(a);
    expect(m.stats()).toEqual({ mints: 2, size: 1 });
  });

  test("fresh key per leaf by default; sharedKey reuses one", async () => {
    const m = createLeafMinter(ca);
    expect((await m.leafFor("k1.test")).keyPem).not.toBe((await m.leafFor("k2.test")).keyPem);
    const s = createLeafMinter(ca, { sharedKey: true });
    expect((await s.leafFor("k1.test")).keyPem).toBe((await s.leafFor("k2.test")).keyPem);
  });

  test("the leaf's key matches its certificate; Leaf fields agree with the certificate", async () => {
    const leaf = await createLeafMinter(ca).leafFor("match.test");
    const x = new X509Certificate(leaf.certPem);
    expect(x.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(x.serialNumber).toBe(leaf.serialHex);
    expect(Date.parse(x.validTo)).toBe(leaf.notAfter.getTime());
  });
});

// src/ca/der.ts: the DER pieces the root and the leaves are made of, byte for byte. Goldens marked
// "Go" were produced by Go 1.19's crypto/x509 (the reference's encoder).
import { describe, expect, test } from "bun:test";
import {
  bitString,
  bool,
  ctx,
  dirString,
  extension,
  ipBytes,
  name,
  OID,
  octets,
  oid,
  pemDecode,
  seq,
  set,
  smallInt,
  time,
  tlv,
  toPem,
  uint,
} from "../../../src/ca/der.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

describe("TLV and lengths", () => {
  test("short form below 128, long form from 128 (minimal number of length bytes)", () => {
    expect(hex(tlv(0x04, new Uint8Array(0)))).toBe("0400");
    expect(hex(tlv(0x04, new Uint8Array(127))).slice(0, 4)).toBe("047f");
    expect(hex(tlv(0x04, new Uint8Array(128))).slice(0, 6)).toBe("048180");
    expect(hex(tlv(0x04, new Uint8Array(255))).slice(0, 6)).toBe("0481ff");
    expect(hex(tlv(0x04, new Uint8Array(256))).slice(0, 8)).toBe("04820100");
    expect(hex(tlv(0x04, new Uint8Array(65536))).slice(0, 10)).toBe("0483010000");
    expect(tlv(0x04, new Uint8Array(65536)).length).toBe(65536 + 5);
  });

  test("content parts are concatenated in order", () => {
    expect(hex(seq(bytes("0101ff"), bytes("020100")))).toBe("30060101ff020100");
    expect(hex(set(seq()))).toBe("31023000");
  });

  test("tags: BOOLEAN, OCTET STRING, BIT STRING (unused-bits byte), [n] EXPLICIT", () => {
    expect(hex(bool(true))).toBe("0101ff");
    expect(hex(bool(false))).toBe("010100");
    expect(hex(octets(bytes("abcd")))).toBe("0402abcd");
    expect(hex(bitString(bytes("a0"), 5))).toBe("030205a0");
    expect(hex(bitString(bytes("1234")))).toBe("0303001234");
    expect(hex(ctx(0, smallInt(2)))).toBe("a003020102");
    expect(hex(ctx(3, seq()))).toBe("a3023000");
  });
});

describe("INTEGER from an unsigned magnitude", () => {
  test("minimal: leading zeros dropped, a 0x00 pad when the top bit is set", () => {
    expect(hex(uint(bytes("000001")))).toBe("020101");
    expect(hex(uint(bytes("80")))).toBe("02020080");
    expect(hex(uint(bytes("007f")))).toBe("02017f");
    expect(hex(uint(bytes("0000")))).toBe("020100");
    expect(hex(uint(new Uint8Array(0)))).toBe("020100");
    expect(hex(uint(bytes("ff".repeat(16))))).toBe("021100" + "ff".repeat(16));
    expect(hex(smallInt(0))).toBe("020100");
  });
});

describe("OBJECT IDENTIFIER", () => {
  test("the OIDs we issue, base-128 arcs", () => {
    expect(hex(oid(OID.ecdsaWithSHA256))).toBe("06082a8648ce3d040302");
    expect(hex(oid(OID.subjectAltName))).toBe("0603551d11");
    expect(hex(oid(OID.serverAuth))).toBe("06082b06010505070301");
    expect(hex(oid(OID.commonName))).toBe("0603550403");
    expect(hex(oid("1.2.840.10045.2.1"))).toBe("06072a8648ce3d0201"); // id-ecPublicKey
    expect(hex(oid("2.5.4.16383"))).toBe("06045504ff7f"); // a two-byte arc
  });
});

describe("directory strings and names (Go's choice of string type)", () => {
  test("PrintableString when every character is in its set, else UTF8String", () => {
    expect(hex(dirString("api.example.com")).slice(0, 2)).toBe("13");
    expect(hex(dirString("a'b(c)+,-./:=? Z9")).slice(0, 2)).toBe("13");
    expect(hex(dirString("under_score.test")).slice(0, 2)).toBe("0c");
    expect(hex(dirString("a&b.test")).slice(0, 2)).toBe("0c");
    expect(hex(dirString("ü"))).toBe("0c02c3bc"); // UTF-8 bytes
  });

  test("'*' is not PrintableString: a wildcard CN is a UTF8String, as Go marshals it", () => {
    expect(hex(dirString("*.example.com")).slice(0, 2)).toBe("0c");
  });

  test("Name: one attribute per RDN, in the given order (Go goldens)", () => {
    expect(hex(name([[OID.commonName, "ok.test"]]))).toBe("30123110300e060355040313076f6b2e74657374");
    expect(hex(name([[OID.commonName, "*.example.com"]]))).toBe("30183116301406035504030c0d2a2e6578616d706c652e636f6d");
    expect(hex(name([[OID.commonName, "under_score.test"]]))).toBe(
      "301b3119301706035504030c10756e6465725f73636f72652e74657374",
    );
    // The root's subject: O before CN.
    expect(
      hex(
        name([
          [OID.organization, "clef-sh"],
          [OID.commonName, "clef-proxy"],
        ]),
      ),
    ).toBe("30273110300e060355040a1307636c65662d73683113301106035504031" + "30a636c65662d70726f7879");
  });
});

describe("time", () => {
  test("UTCTime (YYMMDDHHMMSSZ, whole seconds) from 1950 to 2049", () => {
    const t = time(new Date("2026-11-30T12:34:56.789Z"));
    expect(hex(t.subarray(0, 2))).toBe("170d");
    expect(Buffer.from(t.subarray(2)).toString()).toBe("261130123456Z");
    expect(Buffer.from(time(new Date("2049-12-31T23:59:59Z")).subarray(2)).toString()).toBe("491231235959Z");
    expect(Buffer.from(time(new Date("1950-01-01T00:00:00Z")).subarray(2)).toString()).toBe("500101000000Z");
  });

  test("GeneralizedTime (YYYYMMDDHHMMSSZ) from 2050 and before 1950 (RFC 5280 §4.1.2.5)", () => {
    const t = time(new Date("2050-01-01T00:00:00Z"));
    expect(hex(t.subarray(0, 2))).toBe("180f");
    expect(Buffer.from(t.subarray(2)).toString()).toBe("20500101000000Z");
    expect(Buffer.from(time(new Date("1949-06-01T01:02:03Z")).subarray(2)).toString()).toBe("19490601010203Z");
  });
});

describe("extensions", () => {
  test("critical adds BOOLEAN TRUE; non-critical omits it (DEFAULT FALSE)", () => {
    expect(hex(extension(OID.basicConstraints, true, seq()))).toBe("300c0603551d130101ff04023000");
    expect(hex(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))))).toBe(
      "30130603551d25040c300a06082b06010505070301",
    );
  });
});

describe("IP literals", () => {
  test("IPv4: 4 bytes; IPv6: 16 bytes, every spelling", () => {
    expect(hex(ipBytes("127.0.0.2")!)).toBe("7f000002");
    expect(hex(ipBytes("::")!)).toBe("00".repeat(16));
    expect(hex(ipBytes("::1")!)).toBe("00".repeat(15) + "01");
    expect(hex(ipBytes("1::")!)).toBe("0001" + "00".repeat(14));
    expect(hex(ipBytes("2001:db8::a:1")!)).toBe("20010db8000000000000000000" + "0a0001");
    expect(hex(ipBytes("2001:DB8:0:0:0:0:a:1")!)).toBe("20010db8000000000000000000" + "0a0001");
    expect(hex(ipBytes("fe80:1:2:3:4:5:6:7")!)).toBe("fe80000100020003000400050006" + "0007");
    expect(hex(ipBytes("::ffff:10.1.2.3")!)).toBe("00000000000000000000ffff0a010203");
    expect(hex(ipBytes("64:ff9b::192.0.2.33")!)).toBe("0064ff9b0000000000000000c0000221");
  });

  test("not an IP literal: null (a DNS name)", () => {
    for (const s of ["api.test", "1.2.3", "1.2.3.256", "01.2.3.4", "[::1]", "", "1::2::3"])
      expect(ipBytes(s)).toBeNull();
  });

  test("a zoned IPv6 literal is not an IP address (Go's net.ParseIP refuses zones; the name goes in a DNS SAN)", () => {
    for (const s of ["::1%lo", "fe80::1%eth0"]) expect(ipBytes(s)).toBeNull();
  });
});

describe("PEM", () => {
  test("toPem: 64-column base64 between the markers, newline-terminated", () => {
    const der = new Uint8Array(100).map((_, i) => i);
    const pem = toPem("CERTIFICATE", der);
    const lines = pem.split("\n");
    expect(lines[0]).toBe("-----BEGIN CERTIFICATE-----");
    expect(lines[1]!.length).toBe(64);
    expect(lines.at(-2)).toBe("-----END CERTIFICATE-----");
    expect(pem.endsWith("-----\n")).toBe(true);
    expect(pemDecode(pem)).toEqual({ type: "CERTIFICATE", bytes: der });
  });

  test("pemDecode: first well-formed block (text before, later blocks ignored; headers skipped)", () => {
    const a = toPem("EC PRIVATE KEY", Uint8Array.of(1, 2, 3));
    const b = toPem("CERTIFICATE", Uint8Array.of(4, 5));
    expect(pemDecode(`junk\n${a}${b}`)).toEqual({ type: "EC PRIVATE KEY", bytes: Uint8Array.of(1, 2, 3) });
    const withHeaders = "-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: x\n\nAQID\n-----END X-----\n";
    expect(pemDecode(withHeaders)).toEqual({ type: "X", bytes: Uint8Array.of(1, 2, 3) });
    const crlf = "-----BEGIN Y-----\r\nAQID\r\n-----END Y-----\r\n";
    expect(pemDecode(crlf)).toEqual({ type: "Y", bytes: Uint8Array.of(1, 2, 3) });
  });

  test("pemDecode: a block with bad base64 is skipped; mismatched markers or none → null", () => {
    expect(pemDecode(`-----BEGIN A-----\n!!!\n-----END A-----\n${toPem("B", Uint8Array.of(9))}`)).toEqual({
      type: "B",
      bytes: Uint8Array.of(9),
    });
    expect(pemDecode("-----BEGIN A-----\nAQID\n-----END B-----\n")).toBeNull();
    expect(pemDecode("no pem here")).toBeNull();
  });
});

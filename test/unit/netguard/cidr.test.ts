// src/netguard/cidr.ts: strict IP literals, CIDR blocks, every address form an IPv4 block covers.
import { describe, expect, test } from "bun:test";
import {
  cidrBlockReason,
  createCidrSet,
  embeddedIpv4,
  formatIp,
  parseCidr,
  parseIp,
} from "../../../src/netguard/cidr.ts";

const fmt = (s: string) => {
  const b = parseIp(s);
  return b ? formatIp(b) : null;
};

describe("IP literals", () => {
  test.each([
    ["10.0.0.1", "10.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::1", "::1"],
    ["::", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"],
    ["fe80::1:2:3:4:5:6", "fe80:0:1:2:3:4:5:6"],
    ["::ffff:10.0.0.1", "10.0.0.1"],
    ["::FFFF:a00:1", "10.0.0.1"],
    ["::10.0.0.1", "::a00:1"],
    ["64:ff9b::10.0.0.1", "64:ff9b::a00:1"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
  ])("%s → %s", (input, out) => {
    expect(fmt(input)).toBe(out);
  });
  test.each([
    "127.1",
    "0x7f.0.0.1",
    "010.0.0.1",
    "2130706433",
    "1.2.3.256",
    "1.2.3.4.5",
    "1.2.3.",
    " 1.2.3.4",
    "::1%lo",
    "[::1]",
    "1::2::3",
    ":::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::8",
    "12345::1",
    "g::1",
    "::ffff:1.2.3",
    "::ffff:01.2.3.4",
    "1.2.3.4::",
    "",
  ])("refused: %p", (input) => {
    expect(parseIp(input)).toBeNull();
  });
  test("embedded IPv4: mapped and NAT64 well-known prefix only", () => {
    expect(formatIp(embeddedIpv4(parseIp("::ffff:1.2.3.4")!)!)).toBe("1.2.3.4");
    expect(formatIp(embeddedIpv4(parseIp("64:ff9b::1.2.3.4")!)!)).toBe("1.2.3.4");
    expect(formatIp(embeddedIpv4(parseIp("1.2.3.4")!)!)).toBe("1.2.3.4");
    expect(embeddedIpv4(parseIp("::1.2.3.4")!)).toBeNull();
    expect(embeddedIpv4(parseIp("2001:db8::1.2.3.4")!)).toBeNull();
  });
});

describe("CIDR blocks", () => {
  test.each([
    ["10.0.0.0/8", 4, 104],
    ["100.64.0.0/10", 4, 106],
    ["0.0.0.0/0", 4, 96],
    ["10.0.0.1", 4, 128],
    ["10.0.0.1/32", 4, 128],
    ["fc00::/7", 6, 7],
    ["::/0", 6, 0],
    ["::1", 6, 128],
    ["::ffff:0:0/96", 6, 96],
    [" 192.168.0.0/16 ", 4, 112],
  ])("%p parses (family %d, %d bits in 128)", (text, family, bits) => {
    const r = parseCidr(text);
    expect(r.ok).toBe(true);
    if (r.ok)
      expect({ family: r.cidr.family, bits: r.cidr.bits, text: r.cidr.text }).toEqual({
        family,
        bits,
        text: text.trim(),
      } as never);
  });
  test.each([
    ["10.1.0.0/8", "host bits set (the network is 10.0.0.0/8)"],
    ["10.0.0.0/33", 'prefix length "33" is not 0-32'],
    ["fc00::/129", 'prefix length "129" is not 0-128'],
    ["10.0.0.0/08", 'prefix length "08" is not 0-32'],
    ["10.0.0.0/", 'prefix length "" is not 0-32'],
    ["10.0.0.0/8/8", 'prefix length "8/8" is not 0-32'],
    ["10/8", '"10" is not an IPv4 or IPv6 address'],
    ["example.com/8", '"example.com" is not an IPv4 or IPv6 address'],
    ["[::1]/128", '"[::1]" is not an IPv4 or IPv6 address'],
    ["fe80::1%eth0/64", '"fe80::1%eth0" is not an IPv4 or IPv6 address'],
    ["fc01::/7", "host bits set (the network is fc00::/7)"],
    ["", '"" is not an IPv4 or IPv6 address'],
  ])("%p refused: %s", (text, problem) => {
    expect(parseCidr(text)).toEqual({ ok: false, problem });
  });

  const set = createCidrSet(["10.0.0.0/8", "100.64.0.0/10", "fc00::/7", "192.0.2.7"]);
  test.each([
    ["10.1.2.3", "10.0.0.0/8"],
    ["10.255.255.255", "10.0.0.0/8"],
    ["::ffff:10.1.2.3", "10.0.0.0/8"],
    ["::ffff:a01:203", "10.0.0.0/8"],
    ["[::ffff:10.1.2.3]", "10.0.0.0/8"],
    ["64:ff9b::10.1.2.3", "10.0.0.0/8"],
    ["100.127.255.255", "100.64.0.0/10"],
    ["fd12:3456::1", "fc00::/7"],
    ["FC00::", "fc00::/7"],
    ["192.0.2.7", "192.0.2.7"],
    ["::ffff:192.0.2.7", "192.0.2.7"],
  ])("%s is blocked by %s", (ip, by) => {
    expect(set.match(ip)?.text).toBe(by);
    expect(cidrBlockReason(set, ip)).toBe(`blocked_cidrs ${by}`);
  });
  test.each([
    "11.0.0.1",
    "9.255.255.255",
    "100.128.0.0",
    "100.63.255.255",
    "192.0.2.8",
    "fe80::1",
    "::1",
    "127.0.0.1",
    "::10.1.2.3", // IPv4-compatible (deprecated, not routed to IPv4)
    "2001:db8::10.1.2.3",
    "not-an-ip",
    "127.1",
  ])("%s is not blocked", (ip) => {
    expect(set.match(ip)).toBeUndefined();
    expect(cidrBlockReason(set, ip)).toBeNull();
  });
  test("an IPv6 block containing ::ffff:0:0/96 covers IPv4 (the same destinations)", () => {
    expect(createCidrSet(["::ffff:0:0/96"]).match("8.8.8.8")?.text).toBe("::ffff:0:0/96");
    expect(createCidrSet(["::/0"]).match("8.8.8.8")?.text).toBe("::/0");
    expect(createCidrSet(["2000::/3"]).match("8.8.8.8")).toBeUndefined();
  });
  test("0.0.0.0/0 covers every IPv4 form, no pure IPv6", () => {
    const all = createCidrSet(["0.0.0.0/0"]);
    for (const ip of ["1.1.1.1", "::ffff:1.1.1.1", "64:ff9b::1.1.1.1"]) expect(all.match(ip)).toBeDefined();
    expect(all.match("2001:db8::1")).toBeUndefined();
  });
  test("the first invalid entry is named", () => {
    expect(() => createCidrSet(["10.0.0.0/8", "10.0.0.0/99"])).toThrow(
      'blocked_cidrs[1] "10.0.0.0/99": prefix length "99" is not 0-32',
    );
  });
  test("odd prefix lengths", () => {
    const s = createCidrSet(["172.16.0.0/12", "2001:db8:8000::/33"]);
    expect(s.match("172.31.255.255")).toBeDefined();
    expect(s.match("172.32.0.0")).toBeUndefined();
    expect(s.match("2001:db8:ffff::1")).toBeDefined();
    expect(s.match("2001:db8:7fff::1")).toBeUndefined();
  });
});

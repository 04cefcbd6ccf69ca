// src/intercept/startup-pages.ts: which mappings are handed back after start-up (only the
// executable's read-only and executable ones), and that doing so leaves the process working.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { executableMappings, releaseStartupPages } from "../../../src/intercept/startup-pages.ts";

// /proc/self/smaps as Linux writes it (fields other than Rss and Anonymous left out): the fourth
// mapping is the relocated read-only data (RELRO), whose pages the process wrote before they became
// read-only
const entry = (header: string, anonymousKb: number) =>
  `${header}\nRss:                 100 kB\nAnonymous:       ${anonymousKb} kB\n`;
const SMAPS = [
  entry("00200000-01a39000 r--p 00000000 fe:00 5390576                            /opt/clef/clef-proxy", 0),
  entry("01a40000-0684a000 r-xp 01838000 fe:00 5390576                            /opt/clef/clef-proxy", 0),
  entry("0684a000-0685f000 rw-p 0684a000 fe:00 5390576                            /opt/clef/clef-proxy", 48),
  entry("0685f000-06867000 r--p 06656000 fe:00 5390576                            /opt/clef/clef-proxy", 12),
  entry("06867000-06cdb000 rw-p 0665e000 fe:00 5390576                            /opt/clef/clef-proxy", 0),
  entry("06cdb000-06e00000 rw-p 00000000 00:00 0                                  [heap]", 1200),
  entry("333bda00000-333fda00000 rw-p 00000000 00:00 0", 0),
  entry(
    "7fb1007a2000-7fb1008f8000 r-xp 00026000 fe:00 339380                     /usr/lib/x86_64-linux-gnu/libc.so.6",
    0,
  ),
  entry("7fb100900000-7fb100901000 r--p 00000000 00:00 0                          /opt/clef/clef-proxy", 0),
  entry("7ffd5c9e8000-7ffd5ca09000 rw-p 00000000 00:00 0                          [stack]", 132),
].join("");
const DONTNEED = 4;
const PAGEOUT = 21;

describe("executableMappings", () => {
  test("the executable's r--p and r-xp file mappings; DONTNEED only for read-only ones holding no written page", () => {
    expect(executableMappings(SMAPS, "/opt/clef/clef-proxy")).toEqual([
      { start: 0x00200000n, end: 0x01a39000n, advice: DONTNEED },
      { start: 0x01a40000n, end: 0x0684a000n, advice: PAGEOUT },
      { start: 0x0685f000n, end: 0x06867000n, advice: PAGEOUT },
    ]);
    expect(executableMappings(SMAPS, "/opt/other")).toEqual([]);
    expect(executableMappings("", "/opt/clef/clef-proxy")).toEqual([]);
    // an entry that says nothing of anonymous pages is paged out, never dropped
    const bare = "00200000-01a39000 r--p 00000000 fe:00 5390576 /opt/clef/clef-proxy\nRss: 4 kB\n";
    expect(
      executableMappings(bare + bare.replace("00200000-01a39000", "01a40000-0684a000"), "/opt/clef/clef-proxy"),
    ).toEqual([
      { start: 0x00200000n, end: 0x01a39000n, advice: PAGEOUT },
      { start: 0x01a40000n, end: 0x0684a000n, advice: PAGEOUT },
    ]);
  });
});

describe.skipIf(process.platform !== "linux")("releaseStartupPages (this test process's own executable)", () => {
  test("advises every mapping of the executable, and the process goes on (JIT, crypto, sockets)", async () => {
    const want = executableMappings(readFileSync("/proc/self/smaps", "utf8"), process.execPath).length;
    expect(want).toBeGreaterThan(0);
    expect(await releaseStartupPages()).toBe(want);
    // code of the runtime that was paged out comes back on use
    const { createHash, generateKeyPairSync } = await import("node:crypto");
    expect(createHash("sha256").update("x").digest("hex")).toHaveLength(64);
    expect(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.type).toBe("public");
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (s, d) => void s.write(d) } });
    const echoed = await new Promise<string>((resolve) => {
      void Bun.connect({
        hostname: "127.0.0.1",
        port: server.port,
        socket: { open: (s) => void s.write("ping"), data: (_s, d) => resolve(d.toString()) },
      });
    });
    server.stop(true);
    expect(echoed).toBe("ping");
  });
});

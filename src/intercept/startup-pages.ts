// After start-up, hand the executable's pages back to the kernel (Linux madvise MADV_PAGEOUT).
//
// The compiled binary is ≈110 MB: the Bun runtime (≈80 MB of machine code) and our bytecode. Starting
// a server touches ≈45 MB of it — page faults map whole runs of neighbouring pages (fault-around) —
// and those pages stay in the process's resident set although serving uses a fraction of them: 45 of
// the ≈50 MiB the proxy held when idle were pages of the executable (docs/PERFORMANCE.md). They are
// clean file pages: MADV_PAGEOUT reclaims them, and the pages serving does use come back on the first
// requests (page faults, the file is the backing store). Nothing anonymous is touched: only the
// executable's read-only and executable mappings are named, and there is no swap to write to.
//
// Best effort and Linux only: any failure (no libc by that name, an old kernel without
// MADV_PAGEOUT, bun:ffi missing) leaves everything as it was.
import { readFileSync } from "node:fs";

const MADV_PAGEOUT = 21;

/** The executable's read-only and executable mappings ([start, end) addresses) in /proc/self/maps. */
export function executableMappings(maps: string, exe: string): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (r-xp|r--p) [0-9a-f]+ \S+ [1-9]\d*\s+(.+)$/.exec(line);
    if (m && m[4] === exe) out.push([BigInt(`0x${m[1]}`), BigInt(`0x${m[2]}`)]);
  }
  return out;
}

/** Page the executable out; returns how many mappings were advised (0 when not possible here). */
export async function releaseStartupPages(): Promise<number> {
  if (process.platform !== "linux") return 0;
  try {
    const exe = process.execPath;
    const ranges = executableMappings(readFileSync("/proc/self/maps", "utf8"), exe);
    if (ranges.length === 0) return 0;
    const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    });
    let n = 0;
    try {
      for (const [start, end] of ranges) if (libc.symbols.madvise(start, end - start, MADV_PAGEOUT) === 0) n++;
    } finally {
      libc.close();
    }
    return n;
  } catch {
    return 0;
  }
}

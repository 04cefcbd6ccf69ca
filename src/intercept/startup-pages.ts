// After start-up, take the executable's pages out of the process's resident set (Linux madvise).
//
// The compiled binary is ≈110 MB: the Bun runtime (≈80 MB of machine code) and our bytecode. Starting
// a server touches ≈45 MB of it — page faults map whole runs of neighbouring pages (fault-around) —
// and those pages stay in the process's resident set although serving uses a fraction of them: 45 of
// the ≈50 MiB the proxy held when idle were pages of the executable (docs/PERFORMANCE.md). They are
// clean pages of the file, and the ones serving does use come back on the first requests.
//
// How each mapping is handed back (docs/PERFORMANCE.md, tenth pass):
// - the machine code (r-xp): MADV_PAGEOUT — the pages leave the page cache too, so that what
//   serving touches again is mapped page by page rather than in runs of cached neighbours
//   (MADV_DONTNEED here left ≈4 MiB more resident when idle and under load);
// - the read-only data (r--p) that holds pages of the file alone: MADV_DONTNEED — only the
//   process's mappings go, the pages stay cached as the file was read. Paged out too, they were
//   read back by the page faults of whatever ran next and cost every later start of the same file
//   (`--version` while a `serve` of it runs: the agent's probe, the bench) ≈40 page faults and
//   ≈1.6M kernel instructions more: 10.3–11.1 → 8.1–8.9 ms, for +0.5 MiB resident;
// - the other read-only mappings (the relocated data, RELRO, whose pages the process wrote before
//   they became read-only): MADV_PAGEOUT as well, which never discards written pages (they are
//   anonymous, and there is no swap to write them to) — MADV_DONTNEED would, and the process would
//   read unrelocated pointers (a crash: test/unit/intercept/startup-pages.test.ts).
//
// Best effort and Linux only: any failure (no libc by that name, an old kernel without
// MADV_PAGEOUT, no smaps, bun:ffi missing) leaves everything as it was.
import { readFileSync } from "node:fs";

const MADV_DONTNEED = 4;
const MADV_PAGEOUT = 21;

/** A mapping of the executable ([start, end) addresses) and the advice it gets. */
export interface Release {
  start: bigint;
  end: bigint;
  advice: typeof MADV_DONTNEED | typeof MADV_PAGEOUT;
}

const MAPPING = /^([0-9a-f]+)-([0-9a-f]+) (\S+) [0-9a-f]+ \S+ (\d+)\s+(.*)$/;

/**
 * The executable's read-only and executable file mappings in /proc/self/smaps, each with its advice:
 * MADV_DONTNEED for read-only ones whose entry says they hold no anonymous (written) page,
 * MADV_PAGEOUT for the others.
 */
export function executableMappings(smaps: string, exe: string): Release[] {
  const out: Release[] = [];
  let current: Release | null = null;
  let readOnly = false;
  for (const line of smaps.split("\n")) {
    const m = MAPPING.exec(line);
    if (m) {
      if (current) out.push(current); // (an entry without an Anonymous field: never DONTNEED)
      const ours = (m[3] === "r-xp" || m[3] === "r--p") && m[4] !== "0" && m[5] === exe;
      current = ours ? { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), advice: MADV_PAGEOUT } : null;
      readOnly = m[3] === "r--p";
    } else if (current && line.startsWith("Anonymous:")) {
      if (readOnly && /^Anonymous:\s+0 kB/.test(line)) current.advice = MADV_DONTNEED;
      out.push(current);
      current = null;
    }
  }
  if (current) out.push(current);
  return out;
}

/** Hand the executable's pages back; returns how many mappings were advised (0 when not possible here). */
export async function releaseStartupPages(): Promise<number> {
  if (process.platform !== "linux") return 0;
  try {
    const exe = process.execPath;
    const ranges = executableMappings(readFileSync("/proc/self/smaps", "utf8"), exe);
    if (ranges.length === 0) return 0;
    const { dlopen, FFIType } = await import("bun:ffi");
    const libc = dlopen("libc.so.6", {
      madvise: { args: [FFIType.u64, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    });
    let n = 0;
    try {
      for (const r of ranges) if (libc.symbols.madvise(r.start, r.end - r.start, r.advice) === 0) n++;
    } finally {
      libc.close();
    }
    return n;
  } catch {
    return 0;
  }
}

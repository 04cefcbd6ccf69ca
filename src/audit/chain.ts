// The hash-chained audit trail (`audit.hash_chain: true`, shared/PHASE2.md §17; docs/CONTRACT.md §11
// "Hash chain"): each line carries `prev_sha256`, the lower-case hex SHA-256 of the previous line's
// bytes as written, trailing newline included. The first line of a new chain hashes the empty string.
//
// Decisions (documented in docs/CONTRACT.md):
// - The file destination continues the chain across restarts: at open, the last line of the audit
//   file (or of `<file>.1` when the file is empty, e.g. right after a rotation) seeds the chain. A
//   torn last line (no trailing newline: the process died mid-write) is first terminated with "\n",
//   so the torn bytes stay a line of their own and `audit verify` reports them where they are.
// - stdout starts a new chain at every start (there is no previous line to read).
// - Rotation does not restart the chain: the first line of a new file links to the last line of the
//   rotated one.
//
// `verify` checks files given oldest first (`audit.log.2 audit.log.1 audit.log`). Lines before the
// first line with a `prev_sha256` (the chain switched on later) are counted, not checked; from the
// first chained line on every line must carry `prev_sha256` equal to the hash of the line before it.
// The very first chained line's predecessor may be absent (rotated away): the summary says so.
import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { errnoText } from "./errno.ts";

/** sha256("") — the `prev_sha256` of the first line of a new chain. */
export const CHAIN_ORIGIN = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

const TAIL_CHUNK = 64 * 1024;
/** A last line longer than this is not read back (lines are bounded by the 1 MiB header limit). */
const MAX_LAST_LINE = 16 * 1024 * 1024;

/**
 * The bytes of the last line of the file open at `fd` (with its "\n"), or null when the file is
 * empty. A torn last line (no trailing "\n") is terminated first when `repairTorn` is set (the fd
 * must be open for appending).
 */
export function lastLineOfFd(fd: number, repairTorn: boolean): Buffer | null {
  let size = fstatSync(fd).size;
  if (size === 0) return null;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] !== 0x0a) {
    if (!repairTorn) return null;
    writeSync(fd, "\n");
    size += 1;
  }
  // Walk back from the byte before the final "\n" to the previous "\n" (or the start of the file).
  const parts: Buffer[] = [];
  let end = size - 1; // exclusive end of the region still to scan (the final "\n" is at size - 1)
  let total = 0;
  while (end > 0) {
    const start = Math.max(0, end - TAIL_CHUNK);
    const buf = Buffer.alloc(end - start);
    readSync(fd, buf, 0, buf.length, start);
    const nl = buf.lastIndexOf(0x0a);
    if (nl >= 0) {
      parts.unshift(buf.subarray(nl + 1));
      break;
    }
    parts.unshift(buf);
    total += buf.length;
    if (total > MAX_LAST_LINE)
      throw new Error(`audit: last line of the audit file is longer than ${MAX_LAST_LINE} bytes`);
    end = start;
  }
  parts.push(Buffer.from("\n"));
  return Buffer.concat(parts);
}

/** Last line of the file at `path` (read only), or null when missing or empty. */
export function lastLineOfPath(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    return lastLineOfFd(fd, false);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------------
// Verification

export type VerifyResult =
  | {
      ok: true;
      files: number;
      lines: number;
      /** Lines before the first chained line (no prev_sha256). */
      unchained: number;
      /** The first chained line hashes the empty string (the chain starts in the given files). */
      fromOrigin: boolean;
      /** Where the first chained line is ("audit.log.2:1"), or null when no line is chained. */
      first: string | null;
    }
  | { ok: false; file: string; line: number; problem: string };

const PREV_RE = /^[0-9a-f]{64}$/;

/** Checks lines fed one at a time, in order (pure: no I/O). */
export class ChainVerifier {
  private prevHash: string | null = null; // hash of the previous line, null before the first line
  private prevWhere: { file: string; line: number } | null = null;
  private chained = false;
  lines = 0;
  unchained = 0;
  fromOrigin = false;
  first: string | null = null;

  /** `bytes` is one line as written, with its "\n" (without it when the file ended mid-line). */
  feed(bytes: Uint8Array, file: string, line: number): { problem: string } | null {
    this.lines++;
    const where = { file, line };
    const hash = sha256Hex(bytes);
    const done = (problem: string | null) => {
      this.prevHash = hash;
      this.prevWhere = where;
      return problem === null ? null : { problem };
    };
    if (bytes.length === 0 || bytes[bytes.length - 1] !== 0x0a)
      return done("incomplete last line (no trailing newline)");
    let obj: unknown;
    try {
      obj = JSON.parse(Buffer.from(bytes.subarray(0, bytes.length - 1)).toString("utf8"));
    } catch {
      return done("not a JSON audit line");
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return done("not a JSON audit line");
    const prev = (obj as Record<string, unknown>).prev_sha256;
    if (prev === undefined) {
      if (!this.chained) {
        this.unchained++;
        return done(null);
      }
      return done("no prev_sha256 (the chain was interrupted)");
    }
    if (typeof prev !== "string" || !PREV_RE.test(prev)) return done("prev_sha256 is not 64 lower-case hex digits");
    if (!this.chained) {
      this.chained = true;
      this.first = `${file}:${line}`;
      this.fromOrigin = prev === CHAIN_ORIGIN && this.prevHash === null;
      // The line before the first chained one, when given, must be its predecessor.
      if (this.prevHash !== null && prev !== this.prevHash) return done(this.mismatch(file));
      return done(null);
    }
    if (prev !== this.prevHash) return done(this.mismatch(file));
    return done(null);
  }

  private mismatch(file: string): string {
    const p = this.prevWhere!;
    const what = p.file === file ? `line ${p.line}` : `the last line of ${p.file} (line ${p.line})`;
    return `prev_sha256 is not the SHA-256 of ${what}: a line was changed, removed, inserted or moved`;
  }
}

/** Yields the lines of an fd as byte arrays (each with its "\n"; a final line may lack it). */
export function* fdLines(fd: number, chunkSize = 1024 * 1024): Generator<Uint8Array> {
  const buf = Buffer.alloc(chunkSize);
  let carry: Buffer[] = [];
  for (;;) {
    const n = readSync(fd, buf, 0, chunkSize, null);
    if (n === 0) break;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0 || nl >= n) break;
      const piece = buf.subarray(start, nl + 1);
      if (carry.length) {
        carry.push(piece);
        yield Buffer.concat(carry);
        carry = [];
      } else yield Buffer.from(piece);
      start = nl + 1;
    }
    if (start < n) carry.push(Buffer.from(buf.subarray(start, n)));
  }
  if (carry.length) yield Buffer.concat(carry);
}

/** Verify files (oldest first). Throws on I/O errors (the CLI exits 2), returns the verdict otherwise. */
export function verifyFiles(paths: string[]): VerifyResult {
  const v = new ChainVerifier();
  for (const path of paths) {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new Error(`open ${path}: ${errnoText(e as NodeJS.ErrnoException)}`);
    }
    try {
      let line = 0;
      const it = fdLines(fd);
      for (;;) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = it.next();
        } catch (e) {
          throw new Error(`read ${path}: ${errnoText(e as NodeJS.ErrnoException)}`);
        }
        if (next.done) break;
        line++;
        const bad = v.feed(next.value, path, line);
        if (bad) return { ok: false, file: path, line, problem: bad.problem };
      }
    } finally {
      closeSync(fd);
    }
  }
  if (v.lines > 0 && v.first === null)
    return {
      ok: false,
      file: paths[0]!,
      line: 1,
      problem: "no line carries prev_sha256 (written without audit.hash_chain?)",
    };
  return {
    ok: true,
    files: paths.length,
    lines: v.lines,
    unchained: v.unchained,
    fromOrigin: v.fromOrigin,
    first: v.first,
  };
}

/** The one-line summary `clef-proxy audit verify` prints. */
export function formatVerdict(r: VerifyResult): string {
  if (!r.ok) return `audit verify: broken chain at ${r.file} line ${r.line}: ${r.problem}`;
  if (r.first === null) return `audit verify: ok: 0 lines in ${r.files} file${r.files === 1 ? "" : "s"}`;
  const start = r.fromOrigin
    ? "the chain starts at its origin"
    : "the first chained line's predecessor is not in the given files";
  const pre = r.unchained ? `; ${r.unchained} earlier lines carry no prev_sha256` : "";
  return `audit verify: ok: ${r.lines} lines in ${r.files} file${r.files === 1 ? "" : "s"}, chain intact from ${r.first} (${start})${pre}`;
}

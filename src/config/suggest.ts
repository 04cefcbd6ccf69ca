// "Did you mean …?" for unknown config fields: the known name closest to a misspelt one, by
// optimal-string-alignment distance (Levenshtein plus adjacent transpositions, so `prot` → `port`
// is one edit), or a shared prefix of at least 4 characters (`lambda_loopback` → `lambda_loopback_only`).
// Nothing is suggested when no name is close.

/** Optimal string alignment distance between a and b. */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev2: number[] = [];
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[n]!;
}

/** The largest distance still worth suggesting for a word of this length. */
function budget(len: number): number {
  return len <= 2 ? 0 : len <= 5 ? 1 : len <= 10 ? 2 : 3;
}

/**
 * The candidate closest to `word` (case-insensitive), or null when none is within the budget.
 * Candidates are [name to compare, value to return]; on a tie the earlier candidate wins.
 */
export function closest(word: string, candidates: ReadonlyArray<readonly [string, string]>): string | null {
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestD = budget(w.length) + 1;
  for (const [name, value] of candidates) {
    const n = name.toLowerCase();
    const prefix = Math.min(w.length, n.length) >= 4 && (n.startsWith(w) || w.startsWith(n));
    const d = prefix ? Math.min(1, editDistance(w, n)) : editDistance(w, n);
    if (d < bestD) {
      best = value;
      bestD = d;
    }
  }
  return best;
}

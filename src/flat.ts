// A string made by concatenation is a tree of its parts until something reads its characters; then
// the engine copies them into one buffer (in place: the same string is flat from then on). A string
// kept to be concatenated into many others — a constant run of a log or audit line — is flattened
// once when it is made, or every line made from it would walk its parts again: each part costs ≈200
// instructions when a line is flattened for its write (docs/PERFORMANCE.md, tenth pass).

/** `s`, flattened now (reading one character makes the engine copy the parts into one buffer). */
export function flat(s: string): string {
  lastRead = s.charCodeAt(0); // (stored: a read whose result goes nowhere could be optimised away)
  return s;
}
/** The last character read (exported so that the store is a use). */
export let lastRead = 0;

// A pure function of a string, remembered: for the values a hot path asks for again and again (the
// same few header names, hosts and log keys on every request). Bounded: at `max` entries the memory
// is cleared and refills; a key longer than `maxKeyLength` is computed every time and never kept.
// A string remembered is flattened when it is computed: it goes into other strings again and again
// (header prefixes, log keys, hosts), and unflattened its parts would be walked every time (./flat.ts).
import { flat } from "./flat.ts";

export function memoize<V>(compute: (key: string) => V, max: number, maxKeyLength = Infinity): (key: string) => V {
  const memo = new Map<string, V>();
  return (key) => {
    let v = memo.get(key);
    if (v === undefined) {
      v = compute(key);
      if (typeof v === "string") flat(v);
      if (key.length <= maxKeyLength) {
        if (memo.size >= max) memo.clear();
        memo.set(key, v);
      }
    }
    return v;
  };
}

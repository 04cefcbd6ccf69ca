// Go encoding/json output, byte for byte: what the reference writes in audit lines (json.Encoder,
// HTML-escaped, trailing newline) and in every JSON error body the workload gets (docs/CONTRACT.md
// §8, §11). The decoder with Go's error texts is ./decode.ts.

/** Go encoding/json string encoding with HTML escaping (json.Encoder default). */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else out += "\\ufffd";
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += "\\ufffd";
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += "\\\\";
        continue;
      case 0x0a:
        out += "\\n";
        continue;
      case 0x0d:
        out += "\\r";
        continue;
      case 0x09:
        out += "\\t";
        continue;
      case 0x3c:
        out += "\\u003c";
        continue;
      case 0x3e:
        out += "\\u003e";
        continue;
      case 0x26:
        out += "\\u0026";
        continue;
      case 0x2028:
        out += "\\u2028";
        continue;
      case 0x2029:
        out += "\\u2029";
        continue;
    }
    if (c < 0x20) out += "\\u00" + c.toString(16).padStart(2, "0");
    else out += s[i]!;
  }
  return out + '"';
}

/** Go json.Encoder for a flat object with string/number values in the given key order. */
export function goJsonObject(fields: Array<[string, string | number]>): string {
  return (
    "{" +
    fields.map(([k, v]) => `${goJsonString(k)}:${typeof v === "number" ? String(v) : goJsonString(v)}`).join(",") +
    "}\n"
  );
}

/** Go json.Encoder output for a map[string]any-like value: keys sorted, trailing newline. */
export function goJsonEncode(value: unknown): string {
  const enc = (x: unknown): string => {
    if (x === null || x === undefined) return "null";
    if (typeof x === "string") return goJsonString(x);
    if (typeof x === "number" || typeof x === "boolean") return String(x);
    if (Array.isArray(x)) return "[" + x.map(enc).join(",") + "]";
    const keys = Object.keys(x as object).sort();
    return "{" + keys.map((k) => `${goJsonString(k)}:${enc((x as Record<string, unknown>)[k])}`).join(",") + "}";
  };
  return enc(value) + "\n";
}

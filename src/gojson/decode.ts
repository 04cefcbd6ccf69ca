// A JSON reader that fails the way Go's encoding/json does, because the reference prints Go's
// messages verbatim (docs/CONTRACT.md §4) and the agent's operators grep for them.
//
// parseGoJson(text) → a value tree that keeps each number's literal text (Go reports
// "cannot unmarshal number 1.5 into …"), or throws GoJsonError with Go's scanner message
// ("invalid character 'x' after top-level value", "unexpected end of JSON input", …).

export class GoJsonError extends Error {}

export type JNode =
  | { t: "null" }
  | { t: "bool"; v: boolean }
  | { t: "num"; raw: string }
  | { t: "str"; v: string }
  | { t: "arr"; v: JNode[] }
  | { t: "obj"; v: Array<[string, JNode]> };

function quoteChar(c: string): string {
  // Go: quoteChar — '\'' → "'\\''", '"' → "'\"'", else strconv.Quote without the quotes, in ''.
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c).slice(1, -1);
  return `'${q}'`;
}

const WS = new Set([" ", "\t", "\n", "\r"]);

export function parseGoJson(text: string): JNode {
  let i = 0;
  const n = text.length;
  const eof = (): never => {
    throw new GoJsonError("unexpected end of JSON input");
  };
  const bad = (c: string, ctx: string): never => {
    throw new GoJsonError(`invalid character ${quoteChar(c)} ${ctx}`);
  };
  const skipWs = () => {
    while (i < n && WS.has(text[i]!)) i++;
  };

  function value(ctx: string): JNode {
    skipWs();
    if (i >= n) eof();
    const c = text[i]!;
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return { t: "str", v: string() };
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    if (c === "t") return literal("true", { t: "bool", v: true });
    if (c === "f") return literal("false", { t: "bool", v: false });
    if (c === "n") return literal("null", { t: "null" });
    return bad(c, ctx);
  }

  function literal(word: string, node: JNode): JNode {
    for (let k = 0; k < word.length; k++) {
      if (i + k >= n) eof();
      if (text[i + k] !== word[k]) bad(text[i + k]!, `in literal ${word} (expecting ${quoteChar(word[k]!)})`);
    }
    i += word.length;
    return node;
  }

  function number(): JNode {
    const start = i;
    if (text[i] === "-") {
      i++;
      if (i >= n) eof();
      if (!(text[i]! >= "0" && text[i]! <= "9")) bad(text[i]!, "in numeric literal");
    }
    if (text[i] === "0") i++;
    else while (i < n && text[i]! >= "0" && text[i]! <= "9") i++;
    if (i < n && text[i] === ".") {
      i++;
      if (i >= n) eof();
      if (!(text[i]! >= "0" && text[i]! <= "9")) bad(text[i]!, "after decimal point in numeric literal");
      while (i < n && text[i]! >= "0" && text[i]! <= "9") i++;
    }
    if (i < n && (text[i] === "e" || text[i] === "E")) {
      i++;
      if (i < n && (text[i] === "+" || text[i] === "-")) i++;
      if (i >= n) eof();
      if (!(text[i]! >= "0" && text[i]! <= "9")) bad(text[i]!, "in exponent of numeric literal");
      while (i < n && text[i]! >= "0" && text[i]! <= "9") i++;
    }
    return { t: "num", raw: text.slice(start, i) };
  }

  function string(): string {
    i++; // opening quote
    let out = "";
    for (;;) {
      if (i >= n) eof();
      const c = text[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        i++;
        if (i >= n) eof();
        const e = text[i]!;
        const map: Record<string, string> = {
          '"': '"',
          "\\": "\\",
          "/": "/",
          b: "\b",
          f: "\f",
          n: "\n",
          r: "\r",
          t: "\t",
        };
        if (e in map) {
          out += map[e];
          i++;
        } else if (e === "u") {
          i++;
          let hex = "";
          for (let k = 0; k < 4; k++) {
            if (i >= n) eof();
            const h = text[i]!;
            if (!/[0-9a-fA-F]/.test(h)) bad(h, "in \\u hexadecimal character escape");
            hex += h;
            i++;
          }
          out += String.fromCharCode(parseInt(hex, 16));
        } else bad(e, "in string escape code");
        continue;
      }
      if (c < " ") bad(c, "in string literal");
      out += c;
      i++;
    }
  }

  function object(): JNode {
    i++;
    const entries: Array<[string, JNode]> = [];
    skipWs();
    if (i >= n) eof();
    if (text[i] === "}") {
      i++;
      return { t: "obj", v: entries };
    }
    for (;;) {
      skipWs();
      if (i >= n) eof();
      if (text[i] !== '"') bad(text[i]!, "looking for beginning of object key string");
      const k = string();
      skipWs();
      if (i >= n) eof();
      if (text[i] !== ":") bad(text[i]!, "after object key");
      i++;
      entries.push([k, value("looking for beginning of value")]);
      skipWs();
      if (i >= n) eof();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return { t: "obj", v: entries };
      }
      bad(text[i]!, "after object key:value pair");
    }
  }

  function array(): JNode {
    i++;
    const items: JNode[] = [];
    skipWs();
    if (i >= n) eof();
    if (text[i] === "]") {
      i++;
      return { t: "arr", v: items };
    }
    for (;;) {
      items.push(value("looking for beginning of value"));
      skipWs();
      if (i >= n) eof();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return { t: "arr", v: items };
      }
      bad(text[i]!, "after array element");
    }
  }

  const root = value("looking for beginning of value");
  skipWs();
  if (i < n) bad(text[i]!, "after top-level value");
  return root;
}

/** Go's name for a JSON value kind in UnmarshalTypeError ("string", "number", "bool", "array", "object"). */
export function kindName(node: JNode): string {
  switch (node.t) {
    case "str":
      return "string";
    case "num":
      return "number";
    case "bool":
      return "bool";
    case "arr":
      return "array";
    case "obj":
      return "object";
    case "null":
      return "null";
  }
}

/** Object member lookup with Go's rule: exact key match preferred, else case-insensitive; last one wins. */
export function member(obj: Extract<JNode, { t: "obj" }>, key: string): JNode | undefined {
  let found: JNode | undefined;
  let exact = false;
  for (const [k, v] of obj.v) {
    if (k === key) {
      found = v;
      exact = true;
    } else if (!exact && k.toLowerCase() === key.toLowerCase()) found = v;
  }
  return found;
}

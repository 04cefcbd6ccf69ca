// Template text for scheme `template` (shared/PHASE2.md §8.2): literal characters and `{{ref}}`, where
// ref is `credential` or a key of `auth.credentials`. Parsed once at load into parts; rendered in a
// single pass, so a secret that itself contains `{{key}}` is written literally (never re-expanded).
// No functions, no escapes, no whitespace inside the braces: a `{{` that is not `{{ref}}` makes the
// service unusable.
//
//   parseTemplate("Token token={{key}}", new Map([["key", "acme/key"]]))
//     → {ok:true, parts:["Token token=", {handle:"acme/key"}]}
//   renderTemplate(parts, (handle) => secret)   → the value to write

export type TemplatePart = string | { handle: string };

export const REF_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REF_AT = /^([A-Za-z_][A-Za-z0-9_]*)\}\}/;

/** `refs`: reference name → credential handle. */
export function parseTemplate(
  text: string,
  refs: ReadonlyMap<string, string>,
): { ok: true; parts: TemplatePart[] } | { ok: false; problem: string } {
  const parts: TemplatePart[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf("{{", i);
    if (open < 0) {
      literal += text.slice(i);
      break;
    }
    literal += text.slice(i, open);
    const m = REF_AT.exec(text.slice(open + 2));
    if (!m) return { ok: false, problem: '"{{" is not followed by a reference name and "}}"' };
    const handle = refs.get(m[1]!);
    if (handle === undefined) return { ok: false, problem: `unknown reference "{{${m[1]}}}"` };
    if (literal) parts.push(literal);
    literal = "";
    parts.push({ handle });
    i = open + 2 + m[0].length;
  }
  if (literal) parts.push(literal);
  return { ok: true, parts };
}

/** Single pass: every part is written once, as it is; a value is never scanned for `{{`. */
export function renderTemplate(parts: readonly TemplatePart[], value: (handle: string) => string): string {
  let out = "";
  for (const p of parts) out += typeof p === "string" ? p : value(p.handle);
  return out;
}

/** The handles a template reads, in order of first appearance. */
export function templateHandles(parts: readonly TemplatePart[]): string[] {
  const out: string[] = [];
  for (const p of parts) if (typeof p !== "string" && !out.includes(p.handle)) out.push(p.handle);
  return out;
}

/** The literal text of a template (for static checks of what the manifest itself writes). */
export function templateLiterals(parts: readonly TemplatePart[]): string {
  return parts.filter((p): p is string => typeof p === "string").join("");
}

// Query-parameter injection (docs/CONTRACT.md §9, §18.6): replace one parameter, keep every other
// byte of the query as the workload sent it.

/** Go url.QueryEscape. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/%20/g, "+")
    .replace(/[!'()*~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%7E/g, "~");
}

function queryUnescapeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}

/** §18.6: replace only `name` (all its values by one); every other parameter keeps order and bytes. */
export function setQueryParam(target: string, name: string, value: string): { target: string; overwrote: boolean } {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  const pair = `${queryEscape(name)}=${queryEscape(value)}`;
  if (query === "") return { target: `${path}?${pair}`, overwrote: false };
  // Split on & and ; keeping separators so untouched bytes survive exactly.
  const parts = query.split(/([&;])/);
  const out: string[] = [];
  let placed = false;
  let overwrote = false;
  for (let i = 0; i < parts.length; i += 2) {
    const seg = parts[i]!;
    const sep = parts[i + 1];
    const eq = seg.indexOf("=");
    const key = queryUnescapeName(eq < 0 ? seg : seg.slice(0, eq));
    if (seg !== "" && key === name) {
      overwrote = true;
      if (placed) continue; // drop further values (and their separator)
      placed = true;
      out.push(pair);
    } else out.push(seg);
    if (sep !== undefined) out.push(sep);
  }
  let joined = out.join("");
  if (!placed) joined = joined === "" || /[&;]$/.test(joined) ? joined + pair : `${joined}&${pair}`;
  else if (/[&;]$/.test(joined) && !/[&;]$/.test(query)) joined = joined.slice(0, -1); // a dropped last duplicate left its separator
  return { target: `${path}?${joined}`, overwrote };
}

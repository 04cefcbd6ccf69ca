// Credential handles and injection (docs/CONTRACT.md §6, §9, §18.5, §18.6, §18.10).
//
//   parseHandle("ns/KEY")                      → {namespace, key} | throws HandleError (500 or 502)
//   applyInjection(service, secret, headers, target) → {headers, target, injectionPoint, overwrote}
//                                                | throws InjectError (500; message is the body's error)
//   checkServices(manifest)                    → startup warnings for unusable services
// Header lists are Array<[name, value]> in wire order. No error message ever contains the secret.
import type { Manifest, Service } from "../agent/types.ts";
import { canonicalHeaderName, FIELD_VALUE, getHeader, type Headers, setHeader, TOKEN } from "../http/headers.ts";

export class HandleError extends Error {
  constructor(
    message: string,
    /** 500: malformed handle (no agent call); 502: invalid identifier (agent error). */
    readonly status: 500 | 502,
  ) {
    super(message);
  }
}

export class InjectError extends Error {}

const IDENT = /^[A-Za-z0-9_-]+$/;
export function parseHandle(handle: string): { namespace: string; key: string } {
  const i = handle.indexOf("/");
  if (i <= 0 || i === handle.length - 1) {
    throw new HandleError(`clef-proxy: malformed credential handle ${JSON.stringify(handle)}`, 500);
  }
  const namespace = handle.slice(0, i);
  const key = handle.slice(i + 1);
  if (!IDENT.test(namespace)) throw new HandleError(`agent: invalid namespace ${JSON.stringify(namespace)}`, 502);
  if (!IDENT.test(key)) throw new HandleError(`agent: invalid key ${JSON.stringify(key)}`, 502);
  return { namespace, key };
}

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

export interface Injected {
  headers: Headers;
  target: string;
  injectionPoint: string;
  overwrote: boolean;
}

/** Inject `secret` per the service's scheme. Throws InjectError with the 500 body's error text. */
export function applyInjection(service: Service, secret: string, headers: Headers, target: string): Injected {
  const a = service.auth;
  const guard = () => {
    if (/[\r\n]/.test(secret))
      throw new InjectError("clef-proxy: inject: credential value contains CR or LF (header injection guard)");
    if (!FIELD_VALUE.test(secret))
      throw new InjectError(
        "clef-proxy: inject: credential value contains a control character (header injection guard)",
      );
  };
  switch (a.scheme) {
    case "bearer": {
      guard();
      const overwrote = getHeader(headers, "authorization") !== undefined;
      return {
        headers: setHeader(headers, "Authorization", `Bearer ${secret}`),
        target,
        injectionPoint: "header:Authorization",
        overwrote,
      };
    }
    case "api_key_header": {
      if (!a.header) throw new InjectError(`clef-proxy: inject: scheme "api_key_header" requires auth.header`);
      if (!TOKEN.test(a.header))
        throw new InjectError(`clef-proxy: inject: auth.header ${JSON.stringify(a.header)} is not a valid header name`);
      guard();
      const name = canonicalHeaderName(a.header);
      const overwrote = getHeader(headers, name) !== undefined;
      return { headers: setHeader(headers, name, secret), target, injectionPoint: `header:${a.header}`, overwrote };
    }
    case "api_key_query": {
      if (!a.query) throw new InjectError(`clef-proxy: inject: scheme "api_key_query" requires auth.query`);
      if (/[\r\n]/.test(secret))
        throw new InjectError("clef-proxy: inject: credential value contains CR or LF (header injection guard)");
      const r = setQueryParam(target, a.query, secret);
      return { headers, target: r.target, injectionPoint: `query:${a.query}`, overwrote: r.overwrote };
    }
    default:
      throw new InjectError(`clef-proxy: inject: unsupported scheme ${JSON.stringify(a.scheme)}`);
  }
}

/** Why injection can never work for this service (scheme and its fields), or null. Handles are checked apart. */
export function serviceProblem(s: Service): string | null {
  const a = s.auth;
  if (!["bearer", "api_key_header", "api_key_query"].includes(a.scheme))
    return `unsupported scheme ${JSON.stringify(a.scheme)}`;
  if (a.scheme === "api_key_header" && !a.header) return `scheme "api_key_header" requires auth.header`;
  if (a.scheme === "api_key_header" && a.header && !TOKEN.test(a.header))
    return `auth.header ${JSON.stringify(a.header)} is not a valid header name`;
  if (a.scheme === "api_key_query" && !a.query) return `scheme "api_key_query" requires auth.query`;
  return null;
}

/** §18.10: reasons a service can never work; one WARN line each at startup. */
export function checkServices(manifest: Manifest): Array<{ service: string; host: string; problem: string }> {
  const out: Array<{ service: string; host: string; problem: string }> = [];
  for (const s of manifest.services) {
    const add = (problem: string) => out.push({ service: s.name, host: s.host, problem });
    const a = s.auth;
    if (!["bearer", "api_key_header", "api_key_query"].includes(a.scheme))
      add(`unsupported scheme ${JSON.stringify(a.scheme)}`);
    if (a.scheme === "api_key_header" && !a.header) add(`scheme "api_key_header" requires auth.header`);
    if (a.scheme === "api_key_header" && a.header && !TOKEN.test(a.header))
      add(`auth.header ${JSON.stringify(a.header)} is not a valid header name`);
    if (a.scheme === "api_key_query" && !a.query) add(`scheme "api_key_query" requires auth.query`);
    try {
      parseHandle(a.credential);
    } catch (e) {
      add((e as Error).message.replace(/^clef-proxy: /, ""));
    }
    if (s.host.trim() === "") add("empty host never matches");
  }
  return out;
}

// The request-target and host names, read strictly (RFC 9112 §3.2, docs/CONTRACT.md §18.20): the
// upstream request is built from the decision, never from client text, so only forms that cannot
// name another host are accepted.
//
//   parseRequestTarget("/x?q=1")                 → {form:"origin", pathAndQuery:"/x?q=1"}
//   parseRequestTarget("https://api.test:8443/x") → {form:"absolute", scheme:"https", authority:"api.test:8443", pathAndQuery:"/x"}
//   parseRequestTarget("@evil.test/x")            → {error:…}  (also "#", userinfo, "evil.test/x", "\\@x")
//   isValidHostName("api.test") / ("*.x.test" → false)

export type RequestTarget =
  | { form: "origin"; pathAndQuery: string }
  | { form: "asterisk" }
  | { form: "absolute"; scheme: "http" | "https"; authority: string; pathAndQuery: string };

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)(.*)$/;

export function parseRequestTarget(target: string): RequestTarget | { error: string } {
  if (target.includes("#")) return { error: "fragment in request-target" };
  if (target === "*") return { form: "asterisk" };
  if (target.startsWith("/")) return { form: "origin", pathAndQuery: target };
  const m = ABSOLUTE.exec(target);
  if (!m) return { error: "request-target is neither origin-form nor absolute-form" };
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "http" && scheme !== "https") return { error: `unsupported scheme in request-target` };
  const authority = m[2]!;
  if (authority === "" || /[@%\\]/.test(authority)) return { error: "invalid authority in request-target" };
  const rest = m[3]!;
  return {
    form: "absolute",
    scheme,
    authority,
    pathAndQuery: rest === "" ? "/" : rest.startsWith("/") ? rest : `/${rest}`,
  };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A canonical host (lower-case, no port, no trailing dot, IPv6 without brackets) that is a DNS name or an IP literal. */
export function isValidHostName(host: string): boolean {
  if (host === "" || host.length > 253) return false;
  if (host.includes(":")) return isIPv6(host);
  if (IPV4.test(host)) return true;
  return host.split(".").every((l) => LABEL.test(l));
}

function isIPv6(h: string): boolean {
  if (!/^[0-9a-f:.]+$/.test(h) || h.split("::").length > 2) return false;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (v4 && !IPV4.test(v4[1]!)) return false;
  const groups = (v4 ? h.slice(0, -v4[1]!.length) + "0:0" : h).split(":");
  const compressed = h.includes("::");
  if (groups.some((g) => g.length > 4)) return false;
  return compressed ? groups.length <= 9 : groups.length === 8;
}

/** A port as written in an authority: 1-65535, digits only. */
export function isValidPort(port: string): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535;
}

// The request-target and host names, read strictly (RFC 9112 §3.2, docs/CONTRACT.md §18.20): the
// upstream request is built from the decision, never from client text, so only forms that cannot
// name another host are accepted.
//
//   parseRequestTarget("/x?q=1")                 → {form:"origin", pathAndQuery:"/x?q=1"}
//   parseRequestTarget("https://api.test:8443/x") → {form:"absolute", scheme:"https", authority:"api.test:8443", pathAndQuery:"/x"}
//   parseRequestTarget("@evil.test/x")            → {error:…}  (also "#", userinfo, "evil.test/x", "\\@x")
//   isValidPort("8443") / ("0", "x" → false); host names: src/match isValidRequestHost

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

/** A port as written in an authority: 1-65535, digits only. */
export function isValidPort(port: string): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535;
}

// Is a URL host loopback? (`http://` receivers are allowed only there: config validation and the
// transport both ask.) Literal forms only: localhost (and *.localhost), 127.0.0.0/8, ::1.
import { isIP } from "node:net";

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6)
    return h === "::1" || h === "0:0:0:0:0:0:0:1" || /^::ffff:(127\.|7f[0-9a-f]{2}:[0-9a-f]{1,4}$)/.test(h);
  return false;
}

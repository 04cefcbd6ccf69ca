// The server name a TLS ClientHello asks for (RFC 8446 §4.1.2, RFC 6066 §3), read from the bytes the
// tunnel already received before the handshake starts: a name that is not a host name (`*.x`,
// garbage) is refused before any TLS is spoken, so it never reaches the handshake (issue 13 item 8).
//
//   sniOf(bytes) → "api.test" | null (no server_name extension) | undefined (not a complete,
//                  well-formed ClientHello in these bytes: decided after the handshake instead)
import { latin1 } from "../http/head-buffer.ts";

export function sniOf(b: Uint8Array): string | null | undefined {
  // TLS record: type 22 (handshake), version, length; handshake: type 1 (ClientHello), length
  if (b.length < 9 || b[0] !== 0x16 || b[5] !== 0x01) return undefined;
  const recordEnd = 5 + ((b[3]! << 8) | b[4]!);
  const helloEnd = 9 + ((b[6]! << 16) | (b[7]! << 8) | b[8]!);
  if (helloEnd > recordEnd || recordEnd > b.length) return undefined;
  let p = 9 + 2 + 32; // client version, random
  const skip = (lenBytes: number): boolean => {
    if (p + lenBytes > helloEnd) return false;
    let n = 0;
    for (let i = 0; i < lenBytes; i++) n = (n << 8) | b[p + i]!;
    p += lenBytes + n;
    return p <= helloEnd;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return undefined; // session id, cipher suites, compression
  if (p === helloEnd) return null; // no extensions
  if (p + 2 > helloEnd) return undefined;
  const extEnd = p + 2 + ((b[p]! << 8) | b[p + 1]!);
  if (extEnd > helloEnd) return undefined;
  p += 2;
  while (p + 4 <= extEnd) {
    const type = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    const body = p + 4;
    if (body + len > extEnd) return undefined;
    if (type === 0) return serverName(b, body, body + len);
    p = body + len;
  }
  return null;
}

/** server_name extension body: list length, then entries (type 0 = host_name, length, name). */
function serverName(b: Uint8Array, p: number, end: number): string | null | undefined {
  if (p + 2 > end) return undefined;
  const listEnd = p + 2 + ((b[p]! << 8) | b[p + 1]!);
  if (listEnd > end) return undefined;
  p += 2;
  while (p + 3 <= listEnd) {
    const type = b[p]!;
    const len = (b[p + 1]! << 8) | b[p + 2]!;
    if (p + 3 + len > listEnd) return undefined;
    if (type === 0) return latin1(b, p + 3, p + 3 + len);
    p += 3 + len;
  }
  return null;
}

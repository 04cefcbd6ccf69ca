// Credential handles "namespace/key" (docs/CONTRACT.md §6) and the injection error type.
//
//   parseHandle("ns/KEY") → {namespace, key} | throws HandleError (500: malformed, no agent call; 502: invalid identifier)

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

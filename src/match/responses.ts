// The JSON bodies the workload gets for matching decisions (docs/CONTRACT.md §8, §18.1).
import { goJsonEncode } from "../gojson/encode.ts";

export const denyBody = (host: string): string =>
  goJsonEncode({ error: `host ${JSON.stringify(host)} not in clef-proxy manifest`, host });

export const ambiguousBody = (host: string, candidates: string[]): string =>
  goJsonEncode({
    candidates,
    error: `multiple services match host ${JSON.stringify(host)}; set X-Clef-Service header to one of these`,
  });

export const misdirectedBody = (host: string, reason: string): string =>
  goJsonEncode({
    detail: reason,
    error: "clef-proxy: misdirected request: the request names more than one host",
    host,
  });

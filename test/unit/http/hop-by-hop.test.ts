// src/http/hop-by-hop.ts: fields that describe one connection are removed before forwarding
// (RFC 9110 §7.6.1, docs/CONTRACT.md §18.8), and the upstream response fields the writer redoes.
import { describe, expect, test } from "bun:test";
import { deleteHeader, type Headers, setHeader } from "../../../src/http/headers.ts";
import { RESPONSE_HOP_BY_HOP, stripHopByHop, upstreamRequestHeaders } from "../../../src/http/hop-by-hop.ts";
import { rng } from "../../helpers/rng.ts";

describe("stripHopByHop (requests)", () => {
  test("hop-by-hop fields, those Connection names, Proxy-*, X-Clef-Service removed; the rest in order", () => {
    const h = stripHopByHop([
      ["Connection", "keep-alive, X-Hop"],
      ["X-Hop", "1"],
      ["Keep-Alive", "5"],
      ["TE", "trailers"],
      ["Proxy-Authorization", "p"],
      ["Proxy-Connection", "k"],
      ["X-Clef-Service", "s"],
      ["Transfer-Encoding", "chunked"],
      ["Accept", "*/*"],
    ]);
    expect(h).toEqual([["Accept", "*/*"]]);
  });

  test("any case; Trailer, Upgrade, every Proxy-* field; several Connection fields and odd spacing", () => {
    expect(
      stripHopByHop([
        ["A", "1"],
        ["connection", " x-one ,,X-TWO"],
        ["CONNECTION", "x-three"],
        ["x-one", "1"],
        ["X-Two", "2"],
        ["x-three", "3"],
        ["trailer", "X-T"],
        ["UPGRADE", "websocket"],
        ["proxy-anything", "p"],
        ["x-clef-SERVICE", "s"],
        ["Authorization", "Bearer w"],
        ["B", "2"],
      ]),
    ).toEqual([
      ["A", "1"],
      ["Authorization", "Bearer w"],
      ["B", "2"],
    ]);
  });

  test("Connection can name an end-to-end field, which then goes too (RFC 9110 §7.6.1)", () => {
    expect(
      stripHopByHop([
        ["Connection", "Authorization, Cookie"],
        ["Authorization", "x"],
        ["Cookie", "c"],
        ["Host", "a.test"],
      ]),
    ).toEqual([["Host", "a.test"]]);
  });

  test("a real upgrade keeps Upgrade and Connection (also when Connection names Upgrade), nothing else hop-by-hop", () => {
    expect(
      stripHopByHop(
        [
          ["Connection", "Upgrade, X-Hop"],
          ["Upgrade", "websocket"],
          ["X-Hop", "1"],
          ["Keep-Alive", "5"],
          ["Proxy-Authorization", "p"],
          ["Sec-WebSocket-Key", "k"],
        ],
        { upgrade: true },
      ),
    ).toEqual([
      ["Connection", "Upgrade, X-Hop"],
      ["Upgrade", "websocket"],
      ["Sec-WebSocket-Key", "k"],
    ]);
  });

  test("nothing to remove: the same fields, input untouched", () => {
    const h: Array<[string, string]> = [
      ["Host", "a.test"],
      ["Accept", "*/*"],
    ];
    expect(stripHopByHop(h)).toEqual(h);
    expect(stripHopByHop([])).toEqual([]);
  });
});

describe("RESPONSE_HOP_BY_HOP", () => {
  test("the fields the response writer drops (framing is redone)", () => {
    expect([...RESPONSE_HOP_BY_HOP].sort()).toEqual([
      "connection",
      "content-length",
      "keep-alive",
      "proxy-connection",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade",
    ]);
  });
});

// The data path's one pass (src/intercept/prepare.ts) against the steps it stands for, on hostile
// lists: names in any case, repeated, named by Connection (Host and the request id among them),
// Proxy-*, X-Clef-Service, Expect, with and without a WebSocket handshake.
describe("upstreamRequestHeaders equals stripHopByHop, then Expect deleted, then Host and the request id set", () => {
  const oracle = (h: Headers, upgrade: boolean, host: string, id: string) =>
    setHeader(setHeader(deleteHeader(stripHopByHop(h, { upgrade }), "expect"), "Host", host), "X-Clef-Request-Id", id);
  const names = [
    "Host",
    "host",
    "HOST",
    "Expect",
    "expect",
    "X-Clef-Request-Id",
    "x-clef-request-id",
    "Accept",
    "A",
    "Connection",
    "connection",
    "Upgrade",
    "Keep-Alive",
    "TE",
    "Proxy-Authorization",
    "proxy-x",
    "X-Clef-Service",
    "Transfer-Encoding",
    "Authorization",
    "X-Hop",
  ];
  const tokens = [
    "host",
    "Host",
    "x-clef-request-id",
    "expect",
    "upgrade",
    "accept",
    "a",
    "x-hop",
    "authorization",
    "",
    " ",
    "close",
    "keep-alive",
  ];

  test("20,000 seeded lists", () => {
    const r = rng(19);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    for (let i = 0; i < 20_000; i++) {
      const h: Headers = Array.from({ length: Math.floor(r() * 9) }, (_, j): [string, string] => {
        const name = pick(names);
        const value =
          name.toLowerCase() === "connection"
            ? Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(tokens)).join(r() < 0.5 ? "," : " , ")
            : `v${j}`;
        return [name, value];
      });
      const upgrade = r() < 0.3;
      expect(upstreamRequestHeaders(h, upgrade, "api.test:443", `id-${i}`)).toEqual(
        oracle(h, upgrade, "api.test:443", `id-${i}`),
      );
    }
  });

  test("Connection: Host cannot remove the decided Host; a second Host and request id never go upstream", () => {
    const h: Headers = [
      ["Connection", "Host, X-Clef-Request-Id"],
      ["Host", "evil.test"],
      ["X-Clef-Request-Id", "forged"],
      ["Accept", "*/*"],
      ["host", "evil2.test"],
    ];
    expect(upstreamRequestHeaders(h, false, "api.test", "ID")).toEqual([
      ["Accept", "*/*"],
      ["Host", "api.test"],
      ["X-Clef-Request-Id", "ID"],
    ]);
    expect(
      upstreamRequestHeaders(
        [
          ["host", "evil.test"],
          ["Accept", "*/*"],
          ["Expect", "100-continue"],
          ["x-clef-request-id", "forged"],
          ["HOST", "evil2.test"],
        ],
        false,
        "api.test",
        "ID",
      ),
    ).toEqual([
      ["Host", "api.test"],
      ["Accept", "*/*"],
      ["X-Clef-Request-Id", "ID"],
    ]);
  });
});

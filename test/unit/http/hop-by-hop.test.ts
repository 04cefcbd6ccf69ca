// src/http/hop-by-hop.ts: fields that describe one connection are removed before forwarding
// (RFC 9110 §7.6.1, docs/CONTRACT.md §18.8), and the upstream response fields the writer redoes.
import { describe, expect, test } from "bun:test";
import { RESPONSE_HOP_BY_HOP, stripHopByHop } from "../../../src/http/hop-by-hop.ts";

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

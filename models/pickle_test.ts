import { assertEquals, assertThrows } from "@std/assert";
import { PickleFunction, unpickle } from "./pickle.ts";

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
const refuseAll = {
  findClass: (m: string, n: string): never => {
    throw new Error(`refused ${m}.${n}`);
  },
};

// pickle.dumps({'a': [1, -2, 3.5, None, True, False, (1, 2), (), (1,), (1, 2, 3)],
//               'big': 2**70, 'neg': -300000, 's': 'héllo', 'b': b'\x00\x01', 'long': -2**40},
//              protocol=P)
const PROTOCOL_4 = hex(
  "80049574000000000000007d94288c0161945d94284b014afeffffff47400c0000000000004e88894b014b0286" +
    "94294b0185944b014b024b038794658c03626967948a090000000000000000408c036e6567944a206cfbff8c01" +
    "73948c0668c3a96c6c6f948c01629443020001948c046c6f6e67948a060000000000ff752e",
);
const PROTOCOL_2 = hex(
  "80027d71002858010000006171015d7102284b014afeffffff47400c0000000000004e88894b014b0286710329" +
    "4b018571044b014b024b0387710565580300000062696771068a0900000000000000004058030000006e6567" +
    "71074a206cfbff5801000000737108580600000068c3a96c6c6f7109580100000062710a635f636f64656373" +
    "0a656e636f64650a710b58020000000001710c58060000006c6174696e31710d86710e52710f58040000006c" +
    "6f6e6771108a060000000000ff752e",
);
const EXPECTED = new Map<unknown, unknown>([
  ["a", [1, -2, 3.5, null, true, false, [1, 2], [], [1], [1, 2, 3]]],
  ["big", 2n ** 70n],
  ["neg", -300000],
  ["s", "héllo"],
  ["b", new Uint8Array([0, 1])],
  ["long", -(2 ** 40)],
]);

Deno.test("unpickle: protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, LONG1, BINBYTES)", () => {
  assertEquals(unpickle(PROTOCOL_4, refuseAll), EXPECTED);
});

Deno.test("unpickle: protocol 2 resolves every global through findClass", () => {
  // Protocol 2 pickles bytes as _codecs.encode('\x00\x01', 'latin1'): a global call.
  assertThrows(() => unpickle(PROTOCOL_2, refuseAll), Error, "refused _codecs.encode");
  const asked: string[] = [];
  const value = unpickle(PROTOCOL_2, {
    findClass: (m, n) => {
      asked.push(`${m}.${n}`);
      return new PickleFunction(
        "_codecs.encode",
        ([s]) => new Uint8Array([...(s as string)].map((c) => c.charCodeAt(0))),
      );
    },
  });
  assertEquals(asked, ["_codecs.encode"]);
  assertEquals(value, EXPECTED);
});

Deno.test("unpickle: REDUCE calls only what findClass returned as a PickleFunction", () => {
  // GLOBAL 'm Thing', EMPTY_TUPLE, REDUCE: findClass hands back a plain value, not callable.
  const p = new Uint8Array([
    0x80,
    2,
    0x63,
    ...new TextEncoder().encode("m\nThing\n"),
    0x29,
    0x52,
    0x2e,
  ]);
  assertThrows(
    () => unpickle(p, { findClass: () => ({ harmless: true }) }),
    Error,
    "corrupt pickle: call of a non-callable Object",
  );
});

Deno.test("unpickle: malformed input fails with the byte offset", () => {
  assertThrows(
    () => unpickle(new Uint8Array([0x80, 2, 0xff]), refuseAll),
    Error,
    "unsupported opcode 0xff at byte 2",
  );
  assertThrows(
    () => unpickle(new Uint8Array([0x80, 2, 0x58, 9, 0, 0, 0, 0x61]), refuseAll),
    Error,
    "data ends",
  );
  assertThrows(
    () => unpickle(new Uint8Array([0x80, 2, 0x2e]), refuseAll),
    Error,
    "stack underflow at byte 2",
  );
  assertThrows(
    () => unpickle(new Uint8Array([0x80, 2, 0x68, 3, 0x2e]), refuseAll),
    Error,
    "memo entry 3",
  );
  assertThrows(() => unpickle(new Uint8Array([0x80, 2, 0x74, 0x2e]), refuseAll), Error, "no MARK");
  assertThrows(() => unpickle(new Uint8Array([0x80, 2, 0x4e]), refuseAll), Error, "data ends");
});

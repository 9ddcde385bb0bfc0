import { assertEquals, assertThrows } from "@std/assert";
import { zipSync } from "fflate";
import { detectWeightsFormat, readWeights } from "./weights.ts";
import { writeSafetensors } from "./safetensors.ts";
import { verifyHashPrefix } from "./hash.ts";
import { assertRejects } from "@std/assert";

Deno.test("readWeights dispatches on the magic bytes, not the name", () => {
  const st = writeSafetensors(
    new Map([["w", { dtype: "float32", shape: [1], data: new Float32Array([2]) }]]),
  );
  assertEquals(detectWeightsFormat(st), "safetensors");
  assertEquals(readWeights(st, "named-like-a.pth").get("w")?.data, new Float32Array([2]));

  const zip = zipSync({ "x/readme": new Uint8Array(1) });
  assertEquals(detectWeightsFormat(zip), "pth");
  assertThrows(() => readWeights(zip, "w.pth"), Error, "w.pth: no data.pkl");
});

Deno.test("readWeights names the file when it is neither format", () => {
  assertThrows(
    () => readWeights(new TextEncoder().encode("<html>not weights</html>"), "page.html"),
    Error,
    "page.html: not a PyTorch .pth (zip) or .safetensors file",
  );
  assertThrows(
    () => readWeights(new Uint8Array(0), "empty.pth"),
    Error,
    "empty.pth: not a PyTorch",
  );
  // torch.save before 1.6: a bare pickle starting with PROTO 2 and a magic number.
  assertThrows(
    () =>
      readWeights(
        new Uint8Array([0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]),
        "old.pth",
      ),
    Error,
    "old.pth: legacy (pre-1.6, non-zip) torch.save format is not supported",
  );
});

Deno.test("verifyHashPrefix compares the SHA-256 prefix as torchvision does", async () => {
  const abc = new TextEncoder().encode("abc"); // sha256: ba7816bf8f01cfea...
  await verifyHashPrefix(abc, "ba7816bf", "abc.pth");
  await assertRejects(
    () => verifyHashPrefix(abc, "f37072fd", "abc.pth"),
    Error,
    "abc.pth: SHA-256 ba7816bf",
  );
});

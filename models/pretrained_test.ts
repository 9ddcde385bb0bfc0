import { assertEquals } from "@std/assert";
import { largestActivationBytes, testResizeFor } from "./pretrained.ts";
import { RESNET18_IMAGENET } from "./resnet18.ts";

Deno.test("testResizeFor: ImageNet's 256 at 224, scaled like the crop elsewhere", () => {
  assertEquals(testResizeFor(RESNET18_IMAGENET, 224), 256);
  assertEquals(testResizeFor(RESNET18_IMAGENET, 64), 73);
  assertEquals(testResizeFor({ ...RESNET18_IMAGENET, testResize: 232 }, 224), 232);
});

Deno.test("the stem output of batch 128 at 224 px is 392 MiB", () => {
  assertEquals(largestActivationBytes(128, 224), 128 * 112 * 112 * 64 * 4);
});

import { assert, assertEquals, assertRejects } from "@std/assert";
import { fileKernelStore } from "./kernel_store.ts";

Deno.test("the kernel-choice file: missing is empty, saves atomically, reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/nested/kernel-choices.json`;
    const store = fileKernelStore(path);
    assertEquals(await store.load(), {});
    await store.save({ "v1 llvmpipe :: Conv2D a": "fast" });
    await store.save({ "v1 llvmpipe :: Conv2D a": "stock", "v1 gpu :: Conv2D a": "small" });
    assertEquals(await store.load(), {
      "v1 llvmpipe :: Conv2D a": "stock",
      "v1 gpu :: Conv2D a": "small",
    });
    const names = [...Deno.readDirSync(`${dir}/nested`)].map((e) => e.name);
    assertEquals(names, ["kernel-choices.json"], "no temporary files left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt kernel-choice file is an error naming it (core's tuner warns and ignores it)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kernel-choices.json`;
    await Deno.writeTextFile(path, '{"truncated": "fa');
    const error = await assertRejects(() => fileKernelStore(path).load());
    assert((error as Error).message.startsWith(`${path}: not valid JSON`), String(error));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

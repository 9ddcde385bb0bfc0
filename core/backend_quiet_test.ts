import { assert, assertEquals } from "@std/assert";
import { DENO_WEBGPU_BACKENDS, quietMesaDeviceSelect, skipWgpuOpenGl } from "./backend.ts";

function fakeEnv(vars: Record<string, string>) {
  const map = new Map(Object.entries(vars));
  return { get: (k: string) => map.get(k), set: (k: string, v: string) => void map.set(k, v), map };
}

Deno.test("quietMesaDeviceSelect switches the layer off only in headless sessions", () => {
  const headless = fakeEnv({});
  quietMesaDeviceSelect(headless);
  assertEquals(headless.map.get("NODEVICE_SELECT"), "1");
  const sessions: Record<string, string>[] = [
    { XDG_RUNTIME_DIR: "/run/user/1000" },
    { MESA_VK_DEVICE_SELECT: "10de:1234" },
    { NODEVICE_SELECT: "0" },
  ];
  for (const vars of sessions) {
    const env = fakeEnv(vars);
    quietMesaDeviceSelect(env);
    assertEquals(env.map.get("NODEVICE_SELECT"), vars.NODEVICE_SELECT);
  }
});

Deno.test("skipWgpuOpenGl closes only wgpu's OpenGL backend, and an explicit choice stands", () => {
  const unset = fakeEnv({});
  skipWgpuOpenGl(unset);
  assertEquals(unset.map.get("DENO_WEBGPU_BACKEND"), "vulkan,metal,dx12");
  const chosen = fakeEnv({ DENO_WEBGPU_BACKEND: "gl" });
  skipWgpuOpenGl(chosen);
  assertEquals(chosen.map.get("DENO_WEBGPU_BACKEND"), "gl");
});

Deno.test("deno task test runs with the same wgpu backends as setupBackend sets", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert(
    config.tasks.test.startsWith(`DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKENDS} `),
    config.tasks.test,
  );
});

/** Runs `code` in a fresh Deno with `env` (XDG_RUNTIME_DIR removed), returning its output. */
async function runScript(code: string): Promise<{ code: number; output: string }> {
  const env = Deno.env.toObject();
  delete env.XDG_RUNTIME_DIR;
  delete env.NODEVICE_SELECT;
  delete env.DENO_WEBGPU_BACKEND;
  const file = await Deno.makeTempFile({
    dir: new URL(".", import.meta.url).pathname,
    suffix: ".ts",
  });
  try {
    await Deno.writeTextFile(file, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", file],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, output: text };
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("setupBackend prints nothing of its own: no tfjs-node banner, no Wayland probe error", async () => {
  const cpu = await runScript(`
    import * as tf from "@tensorflow/tfjs-core";
    import { setupBackend } from "./backend.ts";
    await setupBackend({ backend: "cpu" });
    console.log("sum", tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]);
  `);
  assertEquals(cpu.code, 0, cpu.output);
  assertEquals(cpu.output.trim(), "sum 3");

  const gpu = await runScript(`
    import { setupBackend } from "./backend.ts";
    const report = await setupBackend({ backend: "webgpu", env: Deno.env });
    console.log("backend", report.backend);
  `);
  assertEquals(gpu.code, 0, gpu.output);
  assert(!gpu.output.includes("XDG_RUNTIME_DIR"), gpu.output);
  assertEquals(gpu.output.trim(), "backend webgpu");
});

Deno.test("setupBackend with env never loads libEGL (its exit-time teardown corrupted the heap)", async () => {
  const script = (env: string) => `
    import { setupBackend } from "./backend.ts";
    await setupBackend({ backend: "webgpu"${env} });
    const maps = Deno.readTextFileSync("/proc/self/maps");
    console.log("libEGL", /libEGL/.test(maps), "lavapipe", /libvulkan_lvp/.test(maps));
  `;
  // Without env, wgpu opens every backend: EGL is loaded next to Vulkan (the test can fail).
  const all = await runScript(script(""));
  assertEquals(all.output.match(/^libEGL.*$/m)?.[0], "libEGL true lavapipe true", all.output);
  const skipped = await runScript(script(", env: Deno.env"));
  assertEquals(skipped.code, 0, skipped.output);
  assertEquals(skipped.output.trim(), "libEGL false lavapipe true");
});

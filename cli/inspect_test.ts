import { assertEquals, assertStringIncludes } from "@std/assert";

const SCRIPT = new URL("./inspect.ts", import.meta.url).pathname;
const FIXTURE = new URL("../../shared/fixtures/torch-resnet18/", import.meta.url);
const haveFixtures = await Deno.stat(FIXTURE).then(() => true, () => false);
if (!haveFixtures) console.log(`skipping inspect fixture tests: ${FIXTURE.pathname} is absent`);

async function inspect(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    cwd: new URL("..", import.meta.url).pathname, // the repository root, for its deno.json
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

for (const format of ["pth", "safetensors"]) {
  Deno.test({
    name: `inspect --weights on the ${format} fixture`,
    ignore: !haveFixtures,
    fn: async () => {
      const file = new URL(`resnet18-seed0.${format}`, FIXTURE).pathname;
      const { code, stdout } = await inspect("--weights", file);
      assertEquals(code, 0);
      assertEquals(stdout.trim().split("\n"), [
        `file: ${file}`,
        `format: ${format}`,
        "architecture: resnet18",
        "tensors: 122",
        "parameters: 11,689,512",
        "fc: Linear(in_features=512, out_features=1000, bias=True)",
      ]);
    },
  });
}

Deno.test({
  name: "inspect --weights on the ResNet-50 fixture (F16 safetensors)",
  ignore: !haveFixtures,
  fn: async () => {
    const file = new URL("../torch-resnet50/resnet50-seed0-f16.safetensors", FIXTURE).pathname;
    const { code, stdout } = await inspect("--weights", file);
    assertEquals(code, 0);
    assertEquals(stdout.trim().split("\n"), [
      `file: ${file}`,
      "format: safetensors",
      "architecture: resnet50",
      "tensors: 320",
      "parameters: 25,557,032",
      "fc: Linear(in_features=2048, out_features=1000, bias=True)",
    ]);
  },
});

Deno.test("inspect --help", async () => {
  const { code, stdout } = await inspect("--help");
  assertEquals(code, 0);
  assertStringIncludes(stdout, "usage: deno task inspect --weights FILE");
});

Deno.test("inspect: a missing or unreadable file is a one-line error naming it (exit 1; no flag: exit 2)", async () => {
  const missing = await inspect("--weights", "/nonexistent/weights.pth");
  assertEquals(missing.code, 1);
  assertEquals(
    missing.stderr.trim(),
    "webtune inspect: /nonexistent/weights.pth: cannot read (no such file)",
  );

  const junk = await Deno.makeTempFile({ suffix: ".pth" });
  await Deno.writeTextFile(junk, "this is not a checkpoint");
  const bad = await inspect("--weights", junk);
  assertEquals(bad.code, 1);
  assertEquals(
    bad.stderr.trim(),
    `webtune inspect: ${junk}: not a PyTorch .pth (zip) or .safetensors file`,
  );
  await Deno.remove(junk);

  const none = await inspect();
  assertEquals([none.code, none.stderr.trim()], [
    2,
    "webtune inspect: --weights FILE is required (see --help)",
  ]);
});

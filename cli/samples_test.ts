import { assertEquals, assertStringIncludes } from "@std/assert";
import { probeImage } from "@webtune/data";
import { samplesCommand } from "./samples.ts";
import { runCommand } from "./shell.ts";

const HOTDOG_MINI = new URL("../../shared/datasets/hotdog-mini", import.meta.url).pathname;
const haveShared = (() => {
  try {
    Deno.statSync(HOTDOG_MINI);
    return true;
  } catch {
    console.log(`skipping the hotdog-mini samples test: ${HOTDOG_MINI} does not exist`);
    return false;
  }
})();

async function run(args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await runCommand(samplesCommand, args, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

Deno.test({
  name: "samples: writes the 2x8 grid of hotdog-mini as a PNG of the right size",
  ignore: !haveShared,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/sub/grid.png`;
      const r = await run(["--data", HOTDOG_MINI, "--out", file]);
      assertEquals(r.code, 0, r.err.join("\n"));
      assertStringIncludes(r.out[0], "the first 8 and last 8 of 200 training images");
      assertStringIncludes(r.out[0], "classes: hotdog, not-hotdog");
      // 8 cells of 128 px plus 9 gaps of 4 px; 2 rows plus 3 gaps.
      assertEquals(probeImage(await Deno.readFile(file)), {
        format: "png",
        width: 1060,
        height: 268,
      });
      assertEquals([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["grid.png"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("samples: synthetic data through the real command line; usage errors exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./samples.ts", import.meta.url).pathname,
        "--data",
        "synthetic",
        "--tile",
        "32",
        "--out",
        `${dir}/s.png`,
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const { code, stdout, stderr } = await cmd.output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    assertStringIncludes(new TextDecoder().decode(stdout), "classes: circles, stripes");
    assertEquals(probeImage(await Deno.readFile(`${dir}/s.png`)), {
      format: "png",
      width: 292,
      height: 76,
    });

    const bad = await run(["--data", "synthetic", "--tile", "big"]);
    assertEquals(bad.code, 2);
    assertEquals(bad.err, ['webtune samples: --tile expects a number, got "big"']);
    const missing = await run(["--data", `${dir}/nope`, "--out", `${dir}/x.png`]);
    assertEquals([missing.code, missing.err], [1, [
      `webtune samples: --data ${dir}/nope: no such file or directory`,
    ]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Two checkouts' `deno task bench` speeds, alternated in one run: the machine's load changes
 * from minute to minute, so a before/after ratio is only fair between runs taken back to back.
 *
 * ```sh
 * deno run -A cli/bench_ab.ts --before /work/main --after . --rounds 3 -- --sizes 64 --steps 4 \
 *   --skip-first-step --skip-data
 * ```
 *
 * Each round runs `deno task bench --json <args>` in `--before`, then in `--after`, and prints
 * both runs' training and inference images/s per size with their ratios (after ÷ before); at the
 * end, the median ratio over the rounds.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** The fields of `bench --json` this script reads. */
interface BenchJson {
  training: { size: number; train_images_per_sec: number; infer_images_per_sec: number }[];
}

async function bench(dir: string, args: string[]): Promise<BenchJson> {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: ["task", "--quiet", "bench", "--json", ...args],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(`bench in ${dir} failed (${code}): ${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(text.slice(text.indexOf("{")));
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      before: { type: "string", default: "/work/main" },
      after: { type: "string", default: "." },
      rounds: { type: "string", default: "3" },
    },
  });
  const ratios = new Map<string, number[]>();
  for (let round = 1; round <= Number(values.rounds); round++) {
    const before = await bench(values.before, positionals);
    const after = await bench(values.after, positionals);
    for (const b of before.training) {
      const a = after.training.find((t) => t.size === b.size);
      if (!a) continue;
      for (
        const [what, key] of [["train", "train_images_per_sec"], [
          "infer",
          "infer_images_per_sec",
        ]] as const
      ) {
        const ratio = a[key] / b[key];
        const name = `${what} ${b.size} px`;
        ratios.set(name, [...ratios.get(name) ?? [], ratio]);
        console.log(
          `round ${round} ${name}: before ${b[key].toFixed(2)}, after ${a[key].toFixed(2)} ` +
            `images/s (${ratio.toFixed(3)}×)`,
        );
      }
      console.log(
        `round ${round} infer ÷ train ${b.size} px: before ${
          (b.infer_images_per_sec / b.train_images_per_sec).toFixed(2)
        }, after ${(a.infer_images_per_sec / a.train_images_per_sec).toFixed(2)}`,
      );
    }
  }
  for (const [name, rs] of ratios) {
    const median = [...rs].sort((a, b) => a - b)[Math.floor(rs.length / 2)];
    console.log(
      `${name}: median after ÷ before ${median.toFixed(3)} (${
        rs.map((r) => r.toFixed(3)).join(", ")
      })`,
    );
  }
}

if (import.meta.main) await main();

import { formatDuration, RunEta, type TrainEvent } from "@webtune/core";

/** How a training run is shown: a progress bar and the chapter's summary lines, or JSON lines. */
export interface Renderer {
  onEvent(event: TrainEvent): void;
}

/** `--json`: every event as one JSON object per line on stdout. */
export function jsonRenderer(write: (line: string) => void = console.log): Renderer {
  return { onEvent: (event) => write(JSON.stringify(event)) };
}

/**
 * A progress bar on stderr (redrawn in place on a terminal) and, per epoch, a line in the
 * chapter's format on stdout: `epoch 1/5: loss 0.178, train acc 0.931, test acc 0.911`.
 */
export function textRenderer(
  adapterName: string,
  out: (line: string) => void = console.log,
  isTerminal = Deno.stderr.isTerminal(),
): Renderer {
  const encoder = new TextEncoder();
  const bar = (text: string) => {
    if (isTerminal) Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}`));
  };
  const eta = new RunEta();
  return {
    onEvent(event) {
      eta.onEvent(event);
      switch (event.type) {
        case "run-start":
          out(
            `training on ${event.trainExamples} images, testing on ${event.testExamples}, ` +
              `epochs ${event.startEpoch}..${event.epochs}`,
          );
          break;
        case "batch-end": {
          const width = 24;
          const done = Math.round((event.batch / Math.max(1, event.batches)) * width);
          const left = eta.secondsLeft();
          bar(
            `epoch ${event.epoch} [${"#".repeat(done)}${".".repeat(width - done)}] ` +
              `${event.batch}/${event.batches} loss ${event.loss.toFixed(3)}` +
              (event.lr === undefined ? "" : ` lr ${event.lr.toPrecision(3)}`) +
              (left === undefined ? "" : `, run ends in ${formatDuration(left)}`),
          );
          break;
        }
        case "freeze":
          out(
            event.trainable === "head"
              ? `epoch ${event.epoch}: training the head only (${event.parameters} tensors)`
              : `epoch ${event.epoch}: training all layers (${event.parameters} tensors)`,
          );
          break;
        case "epoch-end": {
          bar("");
          const m = event.metrics;
          out(
            `epoch ${m.epoch}: loss ${m.loss.toFixed(3)}, train acc ${m.train_acc.toFixed(3)}, ` +
              `test acc ${m.test_acc.toFixed(3)} (${m.seconds.toFixed(1)} s` +
              (m.epoch < eta.epochs
                ? `; run ends in ${formatDuration(eta.secondsLeft() ?? 0)})`
                : ")"),
          );
          break;
        }
        case "stopped":
          bar("");
          out(`stopped in epoch ${event.epoch} after batch ${event.batch}`);
          break;
        case "run-end": {
          const last = event.epochs.at(-1);
          if (last) {
            out(
              `loss ${last.loss.toFixed(3)}, train acc ${last.train_acc.toFixed(3)}, ` +
                `test acc ${last.test_acc.toFixed(3)}`,
            );
          }
          out(`${event.examplesPerSec.toFixed(1)} examples/sec on ${adapterName}`);
          break;
        }
        case "checkpoint":
          break;
      }
    },
  };
}

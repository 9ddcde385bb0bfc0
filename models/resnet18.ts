/**
 * ResNet-18 exactly as torchvision builds it (`torchvision.models.resnet18`), in tfjs, NHWC.
 *
 * Read top-down: the pretrained config, the architecture as the list of its `state_dict`
 * entries, then the model, whose `forward` is the network. Every tensor is kept under PyTorch's
 * key name so checkpoints load and save without a mapping table.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { batchNorm, type BatchNormEpilogue, type ForwardMode } from "./batch_norm.ts";
import "./gradients.ts";
import { tfjsShape } from "./layout.ts";

export type { ForwardMode } from "./batch_norm.ts";

/** Where a pretrained model comes from and how its inputs must be prepared (timm-style). */
export interface PretrainedConfig {
  /** Short name, e.g. `resnet18.tv_in1k`. */
  name: string;
  /** Download URL of the checkpoint. */
  url: string;
  /** Leading hex digits of the file's SHA-256, as torchvision's `check_hash` verifies. */
  hashPrefix: string;
  /** Per-channel RGB mean of the input normalisation (inputs in [0, 1]). */
  mean: [number, number, number];
  /** Per-channel RGB standard deviation of the input normalisation. */
  std: [number, number, number];
  /** Training/evaluation crop size in pixels. */
  inputSize: number;
  /** The shorter side is resized to this before the evaluation centre crop. */
  testResize: number;
  /** The state_dict prefix of the classification head, replaced when fine-tuning. */
  classifier: "fc";
  /** Number of classes of the pretrained head. */
  numClasses: number;
  /** Class names in label order, where the config carries them. */
  classNames?: readonly string[];
  /** Index of the "hotdog" class in the pretrained head. */
  hotdogIndex: number;
}

/** torchvision's `ResNet18_Weights.IMAGENET1K_V1`. */
export const RESNET18_IMAGENET: PretrainedConfig = {
  name: "resnet18.tv_in1k",
  url: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
  hashPrefix: "f37072fd",
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  inputSize: 224,
  testResize: 256,
  classifier: "fc",
  numClasses: 1000,
  hotdogIndex: 934, // ImageNet class 934 is "hotdog, hot dog, red hot"
};

/** What kind of state_dict entry a tensor is. */
export type EntryKind = "parameter" | "buffer" | "counter";

/** One `state_dict` entry: its name, PyTorch shape and kind. */
export interface EntrySpec {
  name: string;
  /** PyTorch layout: conv OIHW, linear [out, in]; `[]` for `num_batches_tracked`. */
  shape: number[];
  kind: EntryKind;
}

/** Output channels and first-block stride of layer1..layer4. */
const STAGES = [
  { channels: 64, stride: 1 },
  { channels: 128, stride: 2 },
  { channels: 256, stride: 2 },
  { channels: 512, stride: 2 },
] as const;

/** Width of the pooled features that feed `fc`. */
export const FEATURES = 512;

/**
 * The `state_dict` of `torchvision.models.resnet18(num_classes=numClasses)`, in PyTorch's order
 * (module registration order: conv1, bn1, layer1.0.conv1, layer1.0.bn1, ..., fc).
 *
 * @example
 * ```ts
 * import { resnet18Spec } from "@webtune/models";
 * resnet18Spec(1000).length; // 122 (62 parameters, 40 running stats, 20 counters)
 * ```
 */
export function resnet18Spec(numClasses: number): EntrySpec[] {
  const spec: EntrySpec[] = [];
  const conv = (name: string, out: number, inp: number, k: number) =>
    spec.push({ name: `${name}.weight`, shape: [out, inp, k, k], kind: "parameter" });
  const bn = (name: string, c: number) => {
    spec.push({ name: `${name}.weight`, shape: [c], kind: "parameter" });
    spec.push({ name: `${name}.bias`, shape: [c], kind: "parameter" });
    spec.push({ name: `${name}.running_mean`, shape: [c], kind: "buffer" });
    spec.push({ name: `${name}.running_var`, shape: [c], kind: "buffer" });
    spec.push({ name: `${name}.num_batches_tracked`, shape: [], kind: "counter" });
  };

  conv("conv1", 64, 3, 7);
  bn("bn1", 64);
  let inChannels = 64;
  STAGES.forEach(({ channels, stride }, i) => {
    for (let block = 0; block < 2; block++) {
      const p = `layer${i + 1}.${block}`;
      const blockIn = block === 0 ? inChannels : channels;
      conv(`${p}.conv1`, channels, blockIn, 3);
      bn(`${p}.bn1`, channels);
      conv(`${p}.conv2`, channels, channels, 3);
      bn(`${p}.bn2`, channels);
      if (block === 0 && (stride !== 1 || blockIn !== channels)) {
        conv(`${p}.downsample.0`, channels, blockIn, 1);
        bn(`${p}.downsample.1`, channels);
      }
    }
    inChannels = channels;
  });
  spec.push({ name: "fc.weight", shape: [numClasses, FEATURES], kind: "parameter" });
  spec.push({ name: "fc.bias", shape: [numClasses], kind: "parameter" });
  return spec;
}

/** Makes tfjs variable names unique per model (tfjs keeps one global registry of names). */
let modelCount = 0;

/**
 * ResNet-18 with every `state_dict` tensor as a tfjs variable under its PyTorch name.
 *
 * `new ResNet18(numClasses)` gives all-zero weights; use {@linkcode createResNet18} for PyTorch's
 * initialisation, {@linkcode fromSourceModel} to start from a checkpoint, and
 * {@linkcode loadStateDict} / {@linkcode stateDictOf} to load and save.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { createResNet18 } from "@webtune/models";
 * const model = createResNet18({ numClasses: 2, random: Math.random });
 * const { logits, features } = model.forward(tf.zeros([2, 64, 64, 3]), "eval"); // [2,2], [2,512]
 * ```
 */
export class ResNet18 {
  /** Width of the classification head. */
  readonly numClasses: number;
  /**
   * Every float tensor of the state_dict in tfjs layout (conv HWIO, linear [in, out], others
   * 1-D), in state_dict order. Parameters are trainable variables, running stats are not.
   */
  readonly variables: Map<string, tf.Variable> = new Map();
  /** `num_batches_tracked` of each BatchNorm (`"bn1.num_batches_tracked" -> 3`), on the host. */
  numBatchesTracked: Map<string, number> = new Map();

  constructor(numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`ResNet18: numClasses must be a positive integer, got ${numClasses}`);
    }
    this.numClasses = numClasses;
    const id = modelCount++;
    for (const { name, shape, kind } of resnet18Spec(numClasses)) {
      if (kind === "counter") {
        this.numBatchesTracked.set(name, 0);
        continue;
      }
      const zeros = tf.zeros(tfjsShape(shape));
      this.variables.set(name, tf.variable(zeros, kind === "parameter", `resnet18_${id}/${name}`));
      zeros.dispose();
    }
  }

  /**
   * The network. `x` is [N,H,W,3], normalised like the pretrained config says; any H,W for which
   * every stage keeps at least one pixel (32 and up). Returns the logits [N,numClasses] and the
   * globally pooled features [N,512] that feed `fc`. In `train` mode it updates the BatchNorm
   * running statistics and counters (so call it once per training step).
   */
  forward(x: tf.Tensor4D, mode: ForwardMode): { logits: tf.Tensor2D; features: tf.Tensor2D } {
    if (x.rank !== 4 || x.shape[3] !== 3) {
      throw new Error(`ResNet18.forward: expected an NHWC batch [N,H,W,3], got [${x.shape}]`);
    }
    return tf.tidy(() => {
      // Stem: 7×7/2 conv, BN, ReLU, 3×3/2 max pool (224 px -> 56 px).
      let h = this.conv(x, "conv1", 2, 3);
      h = this.bn(h, "bn1", mode, { relu: true });
      h = tf.maxPool(h, 3, 2, 1);

      // Four stages of two BasicBlocks; the first block of layer2-4 halves the resolution.
      STAGES.forEach(({ stride }, i) => {
        h = this.basicBlock(h, `layer${i + 1}.0`, stride, mode);
        h = this.basicBlock(h, `layer${i + 1}.1`, 1, mode);
      });

      // Adaptive average pool to 1×1, flatten, linear head.
      const features = tf.mean(h, [1, 2]) as tf.Tensor2D;
      const logits = tf.add(tf.matMul(features, this.v("fc.weight")), this.v("fc.bias"));
      return { logits: logits as tf.Tensor2D, features };
    });
  }

  /** conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut (1×1 conv + BN when shapes change). */
  private basicBlock(x: tf.Tensor4D, p: string, stride: number, mode: ForwardMode): tf.Tensor4D {
    const out = this.bn(this.conv(x, `${p}.conv1`, stride, 1), `${p}.bn1`, mode, { relu: true });
    const identity = this.variables.has(`${p}.downsample.0.weight`)
      ? this.bn(this.conv(x, `${p}.downsample.0`, stride, 0), `${p}.downsample.1`, mode)
      : x;
    // bn2, the shortcut and the ReLU in one op (one closed-form gradient, see batch_norm.ts).
    const conv2 = this.conv(out, `${p}.conv2`, 1, 1);
    return this.bn(conv2, `${p}.bn2`, mode, { residual: identity, relu: true });
  }

  /**
   * A bias-free convolution with PyTorch's symmetric zero padding. A numeric `pad` is explicit
   * padding in tfjs (never 'same', whose split differs from PyTorch's for stride 2); its
   * forward and both gradients on webgpu match tf.pad + 'valid' and the cpu backend
   * (models/gradients_test.ts).
   */
  private conv(x: tf.Tensor4D, name: string, stride: number, pad: number): tf.Tensor4D {
    return tf.conv2d(x, this.v(`${name}.weight`) as tf.Tensor4D, stride, pad);
  }

  private bn(
    x: tf.Tensor4D,
    name: string,
    mode: ForwardMode,
    epilogue?: BatchNormEpilogue,
  ): tf.Tensor4D {
    const y = batchNorm(
      x,
      {
        weight: this.v(`${name}.weight`),
        bias: this.v(`${name}.bias`),
        runningMean: this.v(`${name}.running_mean`),
        runningVar: this.v(`${name}.running_var`),
      },
      mode,
      epilogue,
    );
    if (mode === "train") {
      const key = `${name}.num_batches_tracked`;
      this.numBatchesTracked.set(key, (this.numBatchesTracked.get(key) ?? 0) + 1);
    }
    return y;
  }

  private v(name: string): tf.Variable {
    const variable = this.variables.get(name);
    if (!variable) throw new Error(`ResNet18: no variable ${name}`);
    return variable;
  }

  /** The trainable tensors (conv/fc weights, fc bias, BN weight/bias) in state_dict order. */
  parameters(): [string, tf.Variable][] {
    return [...this.variables].filter(([, v]) => v.trainable);
  }

  /** The BatchNorm running statistics (`running_mean`, `running_var`) in state_dict order. */
  buffers(): [string, tf.Variable][] {
    return [...this.variables].filter(([, v]) => !v.trainable);
  }

  /** Frees every variable. The model is unusable afterwards. */
  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

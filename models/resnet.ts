/**
 * ResNet-18, -34 and -50 exactly as torchvision builds them (`torchvision.models.resnet18/34/50`),
 * in tfjs, NHWC.
 *
 * Read top-down: the architectures, their pretrained configs, the architecture as the list of its
 * `state_dict` entries, then the model, whose `forward` is the network. Every tensor is kept under
 * PyTorch's key name so checkpoints load and save without a mapping table.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  batchNorm,
  type BatchNormEpilogue,
  type BatchNormVariables,
  type ForwardMode,
} from "./batch_norm.ts";
import { convBiasAct, FoldedConvCache, hasConvBiasAct } from "./conv_bn.ts";
import "./gradients.ts";
import { tfjsShape } from "./layout.ts";

export type { ForwardMode } from "./batch_norm.ts";

/** The ResNets webtune builds, by torchvision's function names. */
export type Arch = "resnet18" | "resnet34" | "resnet50";

/** torchvision's two residual blocks. */
export type BlockKind = "BasicBlock" | "Bottleneck";

/** How torchvision's `ResNet(block, layers)` is called for one architecture. */
export interface ArchDefinition {
  /** `BasicBlock` (two 3×3 convs) or `Bottleneck` (1×1, 3×3 with the stride, 1×1 ×4). */
  block: BlockKind;
  /** Blocks in layer1..layer4. */
  layers: readonly [number, number, number, number];
  /** Output channels of a block ÷ its width: 1 for `BasicBlock`, 4 for `Bottleneck`. */
  expansion: 1 | 4;
  /** Width of the pooled features that feed `fc` (512 × expansion). */
  features: number;
}

/** `torchvision.models.resnet.{resnet18,resnet34,resnet50}`'s `_resnet(block, layers, ...)`. */
export const ARCHITECTURES: Readonly<Record<Arch, ArchDefinition>> = {
  resnet18: { block: "BasicBlock", layers: [2, 2, 2, 2], expansion: 1, features: 512 },
  resnet34: { block: "BasicBlock", layers: [3, 4, 6, 3], expansion: 1, features: 512 },
  resnet50: { block: "Bottleneck", layers: [3, 4, 6, 3], expansion: 4, features: 2048 },
};

/** Every {@linkcode Arch}, smallest first. */
export const ARCHS: readonly Arch[] = Object.keys(ARCHITECTURES) as Arch[];

/** Whether `name` is an architecture webtune builds (for parsing flags and config files). */
export function isArch(name: string): name is Arch {
  return Object.hasOwn(ARCHITECTURES, name);
}

/** Where a pretrained model comes from and how its inputs must be prepared (timm-style). */
export interface PretrainedConfig {
  /** Short name, e.g. `resnet18.tv_in1k`. */
  name: string;
  /** The architecture the checkpoint fits. */
  arch: Arch;
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

/** What every torchvision `IMAGENET1K_V1` ResNet checkpoint shares (its transforms and classes). */
type ImagenetCommon = Omit<PretrainedConfig, "name" | "arch" | "url" | "hashPrefix">;

/** A torchvision ImageNet checkpoint of `arch` whose file name ends in `-<hashPrefix>.pth`. */
function torchvisionImagenet(arch: Arch, hashPrefix: string): PretrainedConfig {
  const common: ImagenetCommon = {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    inputSize: 224,
    testResize: 256,
    classifier: "fc",
    numClasses: 1000,
    hotdogIndex: 934, // ImageNet class 934 is "hotdog, hot dog, red hot"
  };
  return {
    name: `${arch}.tv_in1k`,
    arch,
    url: `https://download.pytorch.org/models/${arch}-${hashPrefix}.pth`,
    hashPrefix,
    ...common,
  };
}

/**
 * torchvision's `ResNet{18,34,50}_Weights.IMAGENET1K_V1`, one per architecture.
 *
 * @example
 * ```ts
 * import { PRETRAINED_CONFIGS } from "@webtune/models";
 * PRETRAINED_CONFIGS.resnet50.url; // "https://download.pytorch.org/models/resnet50-0676ba61.pth"
 * ```
 */
export const PRETRAINED_CONFIGS: Readonly<Record<Arch, PretrainedConfig>> = {
  resnet18: torchvisionImagenet("resnet18", "f37072fd"),
  resnet34: torchvisionImagenet("resnet34", "b627a593"),
  resnet50: torchvisionImagenet("resnet50", "0676ba61"),
};

/**
 * The default pretrained weights of `arch`.
 *
 * @example
 * ```ts
 * import { pretrainedConfig } from "@webtune/models";
 * pretrainedConfig("resnet34").hashPrefix; // "b627a593"
 * ```
 */
export function pretrainedConfig(arch: Arch): PretrainedConfig {
  return PRETRAINED_CONFIGS[arch];
}

/** What kind of state_dict entry a tensor is. */
export type EntryKind = "parameter" | "buffer" | "counter";

/** One `state_dict` entry: its name, PyTorch shape and kind. */
export interface EntrySpec {
  name: string;
  /** PyTorch layout: conv OIHW, linear [out, in]; `[]` for `num_batches_tracked`. */
  shape: number[];
  kind: EntryKind;
}

/** Width (`planes`) and first-block stride of layer1..layer4. */
const STAGES = [
  { planes: 64, stride: 1 },
  { planes: 128, stride: 2 },
  { planes: 256, stride: 2 },
  { planes: 512, stride: 2 },
] as const;

/** One residual block's place in the network, as torchvision's `_make_layer` lays it out. */
interface BlockPlan {
  /** `layer2.0` */
  prefix: string;
  inChannels: number;
  planes: number;
  stride: number;
  /** A 1×1 conv + BN shortcut (`downsample`), when the stride or channel count changes. */
  downsample: boolean;
}

/** Every residual block of `arch` in order. */
function blockPlan(arch: Arch): BlockPlan[] {
  const { layers, expansion } = ARCHITECTURES[arch];
  const plan: BlockPlan[] = [];
  let inChannels = 64;
  STAGES.forEach(({ planes, stride }, i) => {
    for (let b = 0; b < layers[i]; b++) {
      const s = b === 0 ? stride : 1;
      plan.push({
        prefix: `layer${i + 1}.${b}`,
        inChannels,
        planes,
        stride: s,
        downsample: s !== 1 || inChannels !== planes * expansion,
      });
      inChannels = planes * expansion;
    }
  });
  return plan;
}

/**
 * The `state_dict` of `torchvision.models.<arch>(num_classes=numClasses)`, in PyTorch's order
 * (module registration order: conv1, bn1, layer1.0.conv1, layer1.0.bn1, ..., fc).
 *
 * @example
 * ```ts
 * import { resnetSpec } from "@webtune/models";
 * resnetSpec("resnet50", 1000).length; // 320 (161 parameters, 106 running stats, 53 counters)
 * ```
 */
export function resnetSpec(arch: Arch, numClasses: number): EntrySpec[] {
  const { block, expansion, features } = ARCHITECTURES[arch];
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
  for (const { prefix: p, inChannels, planes, downsample } of blockPlan(arch)) {
    if (block === "BasicBlock") {
      conv(`${p}.conv1`, planes, inChannels, 3);
      bn(`${p}.bn1`, planes);
      conv(`${p}.conv2`, planes, planes, 3);
      bn(`${p}.bn2`, planes);
    } else {
      conv(`${p}.conv1`, planes, inChannels, 1);
      bn(`${p}.bn1`, planes);
      conv(`${p}.conv2`, planes, planes, 3);
      bn(`${p}.bn2`, planes);
      conv(`${p}.conv3`, planes * expansion, planes, 1);
      bn(`${p}.bn3`, planes * expansion);
    }
    if (downsample) {
      conv(`${p}.downsample.0`, planes * expansion, inChannels, 1);
      bn(`${p}.downsample.1`, planes * expansion);
    }
  }
  spec.push({ name: "fc.weight", shape: [numClasses, features], kind: "parameter" });
  spec.push({ name: "fc.bias", shape: [numClasses], kind: "parameter" });
  return spec;
}

/** Makes tfjs variable names unique per model (tfjs keeps one global registry of names). */
let modelCount = 0;

/**
 * A torchvision ResNet with every `state_dict` tensor as a tfjs variable under its PyTorch name.
 *
 * `new ResNet(arch, numClasses)` gives all-zero weights; use {@linkcode createResNet} for
 * PyTorch's initialisation, {@linkcode fromSourceModel} to start from a checkpoint, and
 * {@linkcode loadStateDict} / {@linkcode stateDictOf} to load and save.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { createResNet } from "@webtune/models";
 * const model = createResNet("resnet50", { numClasses: 2, random: Math.random });
 * const { logits, features } = model.forward(tf.zeros([2, 64, 64, 3]), "eval"); // [2,2], [2,2048]
 * ```
 */
export class ResNet {
  /** Which torchvision ResNet this is. */
  readonly arch: Arch;
  /** Width of the classification head. */
  readonly numClasses: number;
  /** Width of the pooled features that feed `fc`. */
  readonly features: number;
  /**
   * Every float tensor of the state_dict in tfjs layout (conv HWIO, linear [in, out], others
   * 1-D), in state_dict order. Parameters are trainable variables, running stats are not.
   */
  readonly variables: Map<string, tf.Variable> = new Map();
  /** `num_batches_tracked` of each BatchNorm (`"bn1.num_batches_tracked" -> 3`), on the host. */
  numBatchesTracked: Map<string, number> = new Map();
  readonly #blocks: BlockPlan[];
  /** The `eval` forward's convs with their BatchNorm folded in (see conv_bn.ts). */
  readonly #folded = new FoldedConvCache();

  constructor(arch: Arch, numClasses: number) {
    if (!isArch(arch)) {
      throw new Error(`ResNet: unknown architecture ${arch} (known: ${ARCHS.join(", ")})`);
    }
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`ResNet: numClasses must be a positive integer, got ${numClasses}`);
    }
    this.arch = arch;
    this.numClasses = numClasses;
    this.features = ARCHITECTURES[arch].features;
    this.#blocks = blockPlan(arch);
    const id = modelCount++;
    for (const { name, shape, kind } of resnetSpec(arch, numClasses)) {
      if (kind === "counter") {
        this.numBatchesTracked.set(name, 0);
        continue;
      }
      const zeros = tf.zeros(tfjsShape(shape));
      this.variables.set(name, tf.variable(zeros, kind === "parameter", `${arch}_${id}/${name}`));
      zeros.dispose();
    }
  }

  /**
   * The network. `x` is [N,H,W,3], normalised like the pretrained config says; any H,W for which
   * every stage keeps at least one pixel (32 and up). Returns the logits [N,numClasses] and the
   * globally pooled features [N,features] that feed `fc`. In `train` mode it updates the
   * BatchNorm running statistics and counters (so call it once per training step); `frozen`
   * normalises with the running statistics and leaves them and the counters alone.
   */
  forward(x: tf.Tensor4D, mode: ForwardMode): { logits: tf.Tensor2D; features: tf.Tensor2D } {
    if (x.rank !== 4 || x.shape[3] !== 3) {
      throw new Error(`${this.arch}.forward: expected an NHWC batch [N,H,W,3], got [${x.shape}]`);
    }
    const block = ARCHITECTURES[this.arch].block === "BasicBlock"
      ? this.basicBlock.bind(this)
      : this.bottleneck.bind(this);
    return tf.tidy(() => {
      // Stem: 7×7/2 conv, BN, ReLU, 3×3/2 max pool (224 px -> 56 px).
      let h = this.convBn(x, "conv1", 2, 3, "bn1", mode, { relu: true });
      h = tf.maxPool(h, 3, 2, 1);

      // layer1..layer4; the first block of layer2-4 halves the resolution.
      for (const plan of this.#blocks) h = block(h, plan, mode);

      // Adaptive average pool to 1×1, flatten, linear head.
      const features = tf.mean(h, [1, 2]) as tf.Tensor2D;
      const logits = tf.add(tf.matMul(features, this.v("fc.weight")), this.v("fc.bias"));
      return { logits: logits as tf.Tensor2D, features };
    });
  }

  /** BasicBlock: conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, ReLU. */
  private basicBlock(x: tf.Tensor4D, plan: BlockPlan, mode: ForwardMode): tf.Tensor4D {
    const p = plan.prefix;
    const relu = { relu: true };
    const out = this.convBn(x, `${p}.conv1`, plan.stride, 1, `${p}.bn1`, mode, relu);
    // The last BN, the shortcut and the ReLU in one op (one closed-form gradient, batch_norm.ts).
    const residual = this.shortcut(x, plan, mode);
    return this.convBn(out, `${p}.conv2`, 1, 1, `${p}.bn2`, mode, { residual, relu: true });
  }

  /**
   * Bottleneck (torchvision's "ResNet V1.5"): conv1×1 → BN → ReLU → conv3×3 with the stride →
   * BN → ReLU → conv1×1 to 4× the width → BN, plus the shortcut, ReLU.
   */
  private bottleneck(x: tf.Tensor4D, plan: BlockPlan, mode: ForwardMode): tf.Tensor4D {
    const p = plan.prefix;
    const relu = { relu: true };
    let out = this.convBn(x, `${p}.conv1`, 1, 0, `${p}.bn1`, mode, relu);
    out = this.convBn(out, `${p}.conv2`, plan.stride, 1, `${p}.bn2`, mode, relu);
    const residual = this.shortcut(x, plan, mode);
    return this.convBn(out, `${p}.conv3`, 1, 0, `${p}.bn3`, mode, { residual, relu: true });
  }

  /** The identity, or a strided 1×1 conv + BN where the block changes the shape. */
  private shortcut(x: tf.Tensor4D, plan: BlockPlan, mode: ForwardMode): tf.Tensor4D {
    if (!plan.downsample) return x;
    const p = plan.prefix;
    return this.convBn(x, `${p}.downsample.0`, plan.stride, 0, `${p}.downsample.1`, mode);
  }

  /**
   * conv → BatchNorm (→ + residual → ReLU). In `eval` mode on a backend with the fused kernel
   * (webtune's webgpu) the BatchNorm is folded into the conv (conv_bn.ts), with the residual and
   * ReLU in the conv's store: no BatchNorm pass, and the same numbers up to float32 rounding.
   */
  private convBn(
    x: tf.Tensor4D,
    conv: string,
    stride: number,
    pad: number,
    bn: string,
    mode: ForwardMode,
    epilogue?: BatchNormEpilogue,
  ): tf.Tensor4D {
    if (mode === "eval" && hasConvBiasAct()) {
      const weight = this.v(`${conv}.weight`);
      const folded = this.#folded.get(conv, weight, this.bnVariables(bn), { stride, pad });
      return convBiasAct(x, folded, stride, pad, epilogue);
    }
    return this.bn(this.conv(x, conv, stride, pad), bn, mode, epilogue);
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
    const y = batchNorm(x, this.bnVariables(name), mode, epilogue);
    if (mode === "train") {
      const key = `${name}.num_batches_tracked`;
      this.numBatchesTracked.set(key, (this.numBatchesTracked.get(key) ?? 0) + 1);
    }
    return y;
  }

  private bnVariables(name: string): BatchNormVariables {
    return {
      weight: this.v(`${name}.weight`),
      bias: this.v(`${name}.bias`),
      runningMean: this.v(`${name}.running_mean`),
      runningVar: this.v(`${name}.running_var`),
    };
  }

  private v(name: string): tf.Variable {
    const variable = this.variables.get(name);
    if (!variable) throw new Error(`${this.arch}: no variable ${name}`);
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

  /**
   * Frees the `eval` forward's folded filters (conv_bn.ts; as many floats as the conv weights):
   * they are kept from one `eval` forward to the next until a parameter changes, and an
   * evaluation or prediction releases them when it ends. The next `eval` forward folds again.
   */
  releaseEvalCache(): void {
    this.#folded.dispose();
  }

  /** Frees every variable. The model is unusable afterwards. */
  dispose(): void {
    this.#folded.dispose();
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

/**
 * d2l's `DATA_HUB` entries webtune knows.
 *
 * @module
 */
import type { Checksum } from "./download.ts";

/** A downloadable file: where it is and what it must hash to. */
export interface HubEntry {
  /** Where to download it. */
  url: string;
  /** What it must hash to. */
  checksum: Checksum;
}

/**
 * d2l §14.2's hot-dog data set, `d2l.DATA_HUB['hotdog']`: 2800 photos in
 * `hotdog/{train,test}/{hotdog,not-hotdog}` (1000 + 1000 for training, 400 + 400 for testing).
 *
 * @example
 * ```ts
 * import { HOTDOG } from "@webtune/data";
 * console.log(HOTDOG.url); // http://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip
 * ```
 */
export const HOTDOG: HubEntry = {
  url: "http://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip",
  checksum: { algorithm: "sha1", hex: "fba480ffa8aa7e0febbb511d181409f899b9baa5" },
};

/**
 * torchvision's ImageNet ResNet-18 weights (`ResNet18_Weights.IMAGENET1K_V1`), the chapter's
 * `pretrained=True` source model. Its file name carries the first 8 hex digits of its SHA-256,
 * which is what torchvision checks.
 *
 * @example
 * ```ts
 * import { RESNET18_IMAGENET } from "@webtune/data";
 * console.log(RESNET18_IMAGENET.checksum); // { algorithm: "sha256", hex: "f37072fd" }
 * ```
 */
export const RESNET18_IMAGENET: HubEntry = {
  url: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
  checksum: { algorithm: "sha256", hex: "f37072fd" },
};

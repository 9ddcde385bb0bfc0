/**
 * d2l's `DATA_HUB` entries webtune knows (data sets only: pretrained weights are declared
 * beside their model, e.g. `RESNET18_IMAGENET` in `@webtune/models`).
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

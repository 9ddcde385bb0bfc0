/**
 * The camera as an image source for predictions. Frames stay in the page like everything else.
 *
 * @module
 */
import { type RgbImage, rgbImage } from "@webtune/data";

/** A running camera shown in a `<video>`. */
export interface Camera {
  /** The current frame as RGB (alpha dropped, as the decoder does for PNGs). */
  frame(): RgbImage;
  /** The current frame as a JPEG, as a phone's camera would save it. */
  snapshot(): Promise<Blob>;
  stop(): void;
}

/** Asks for the camera (the browser asks the user) and shows it in `video`. */
export async function startCamera(video: HTMLVideoElement): Promise<Camera> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("this browser offers no camera to pages (needs https or localhost)");
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment" },
    audio: false,
  });
  video.srcObject = stream;
  await video.play();
  return {
    snapshot() {
      return draw(video).canvas.convertToBlob({ type: "image/jpeg", quality: 0.92 });
    },
    frame: () => videoFrame(video),
    stop() {
      for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
    },
  };
}

function draw(video: HTMLVideoElement) {
  const width = video.videoWidth, height = video.videoHeight;
  if (!width || !height) throw new Error("the camera has not sent a picture yet");
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("no 2D canvas to grab a frame with");
  ctx.drawImage(video, 0, 0);
  return { canvas, ctx, width, height };
}

/** The frame a playing `<video>` shows, as RGB (alpha dropped, as the decoder does for PNGs). */
export function videoFrame(video: HTMLVideoElement): RgbImage {
  const { ctx, width, height } = draw(video);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return rgbImage(width, height, rgb);
}

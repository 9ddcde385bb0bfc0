/**
 * Live prediction on the camera: the label and its probability over the video, frame after
 * frame, with the frame rate. It pauses while the tab is hidden (no one is looking, and a
 * hidden tab should not keep the GPU busy) and goes on when it is shown again.
 *
 * @module
 */
import { videoFrame } from "./camera.ts";
import { byId, percent } from "./dom.ts";
import { nextFrame, type Page } from "./page.ts";
import { currentPredictor } from "./predictor.ts";

/** Frames the shown rate is averaged over. */
const FPS_WINDOW = 10;

/** What the browser test reads (on `window.webtune.live`). */
export interface LiveHook {
  /** The user asked for live prediction (it may be paused). */
  on: boolean;
  /** A prediction loop is running now. */
  running: boolean;
  /** Frames classified since live prediction was last started or resumed. */
  frames: number;
  fps: number;
  label?: string;
  probability?: number;
  /** Why it is paused, if it is. */
  paused?: string;
}

/** Wires the Live button of the camera box. */
export function setupLivePrediction(page: Page): void {
  const button = byId("live", HTMLButtonElement);
  const video = byId("video", HTMLVideoElement);
  const overlay = byId("live-label", HTMLElement);
  const rate = byId("live-fps", HTMLElement);
  const live: LiveHook = { on: false, running: false, frames: 0, fps: 0 };
  page.hook.live = live;

  const show = () => {
    button.textContent = live.on ? "Stop live prediction" : "Live prediction";
    button.setAttribute("aria-pressed", String(live.on));
    overlay.hidden = !live.on;
    rate.textContent = live.paused
      ? `Paused: ${live.paused}.`
      : live.on
      ? `${live.fps.toFixed(1)} frames/s`
      : "";
  };

  const loop = async () => {
    if (live.running) return;
    live.running = true;
    live.paused = undefined;
    live.frames = 0;
    /** When the last few frames were done: the rate is over these, not since the start. */
    const times = [performance.now()];
    try {
      while (live.on && !document.hidden && video.srcObject) {
        const predictor = currentPredictor(page.session);
        if (!predictor) {
          live.paused = "no model to predict with";
          break;
        }
        const [p] = await predictor.predict([{ name: "camera", image: videoFrame(video) }]);
        live.frames++;
        times.push(performance.now());
        if (times.length > FPS_WINDOW + 1) times.shift();
        live.fps = (times.length - 1) / ((times.at(-1)! - times[0]) / 1000);
        live.label = p.class;
        live.probability = p.probabilities[p.class];
        overlay.textContent = `${p.class} ${percent(live.probability)}`;
        show();
        // Let the page paint (and the user click) between two predictions.
        await nextFrame();
      }
      if (live.on && document.hidden) live.paused = "the tab is hidden";
      if (!video.srcObject) live.on = false;
    } catch (e) {
      live.on = false;
      throw e;
    } finally {
      live.running = false;
      show();
    }
  };

  /**
   * Runs the loop outside `page.act`: it lasts as long as the user wants, and the page counts
   * an action as busy until it ends.
   */
  const start = () =>
    // After the click returns: a first prediction on WebGL compiles its shaders synchronously,
    // which would hold up the click's event for that long.
    setTimeout(() =>
      loop().catch((e) => {
        const message = e instanceof Error ? e.message : String(e);
        byId("error", HTMLElement).textContent = message;
        page.hook.error = message;
      }), 0);
  button.addEventListener("click", () => {
    live.on = !live.on;
    live.paused = undefined;
    show();
    if (live.on) start();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && live.on && !live.running) start();
  });
  byId("camera-off", HTMLButtonElement).addEventListener("click", () => {
    live.on = false;
    show();
  });
  page.onRefresh(() => {
    button.disabled = !currentPredictor(page.session) || !page.backendReady();
  });
  show();
}

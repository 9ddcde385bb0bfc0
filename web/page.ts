/**
 * What every view of the page shares: the session, the test hook, and how actions report
 * errors and refresh the controls.
 *
 * @module
 */
import type { WebtuneHook } from "./hook.ts";
import type { Session } from "./session.ts";

/** The page's shared context, handed to each view's setup function. */
export interface Page {
  session: Session;
  hook: WebtuneHook;
  /** Whether a backend is set up (training and predicting need one). */
  backendReady(): boolean;
  /**
   * Runs a user action: clears the previous error, shows this one's in the alert region (and
   * on the hook), and refreshes every view's controls afterwards.
   */
  act(action: () => Promise<void>): Promise<void>;
  /** Re-evaluates which controls are enabled, after any state change. */
  refresh(): void;
  /** Registers a view's refresh function. */
  onRefresh(update: () => void): void;
}

/**
 * Yields to the browser so a status line paints before a long synchronous step. A hidden tab
 * gets no animation frames, so a timer stands in for one.
 */
export function nextFrame(): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 50);
    requestAnimationFrame(() => {
      clearTimeout(timer);
      setTimeout(resolve, 0);
    });
  });
}

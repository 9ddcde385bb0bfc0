/**
 * Registers tfjs's gradient functions (side effect of importing this module).
 *
 * Why: `@tensorflow/tfjs-core`'s npm bundles register no gradients, and its ESM file that does
 * (`dist/register_all_gradients.js`) imports `./gradients/Abs_grad` without a `.js` extension,
 * which Deno's npm loader (like Node's) refuses; `tf.grad` then fails with "gradient function not
 * found". The union package `@tensorflow/tfjs` registers every gradient into tfjs-core's global
 * registry when it is imported, so we import it once here, beside the model that needs it, rather
 * than transcribing tfjs's gradients by hand.
 *
 * @module
 */
import "@tensorflow/tfjs";

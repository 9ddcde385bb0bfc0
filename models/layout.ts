/**
 * PyTorch ↔ tfjs weight layouts. PyTorch stores conv weights OIHW and linear weights
 * [out, in]; tfjs's `conv2d` wants HWIO and `matMul(x, w)` wants [in, out]. Everything else
 * (biases, BatchNorm vectors) is 1-D in both. The rank tells which case applies.
 *
 * @module
 */

/** The tfjs shape of a tensor with this PyTorch shape. */
export function tfjsShape(torchShape: readonly number[]): number[] {
  if (torchShape.length === 4) {
    const [o, i, h, w] = torchShape;
    return [h, w, i, o];
  }
  if (torchShape.length === 2) return [torchShape[1], torchShape[0]];
  return [...torchShape];
}

/** PyTorch layout → tfjs layout (OIHW → HWIO, [out,in] → [in,out], else a copy). */
export function toTfjsLayout(data: Float32Array, torchShape: readonly number[]): Float32Array {
  if (torchShape.length === 4) {
    const [o, i, h, w] = torchShape;
    const out = new Float32Array(data.length);
    let src = 0;
    for (let oo = 0; oo < o; oo++) {
      for (let ii = 0; ii < i; ii++) {
        for (let hh = 0; hh < h; hh++) {
          for (let ww = 0; ww < w; ww++) out[((hh * w + ww) * i + ii) * o + oo] = data[src++];
        }
      }
    }
    return out;
  }
  if (torchShape.length === 2) return transpose2d(data, torchShape[0], torchShape[1]);
  return data.slice();
}

/** tfjs layout → PyTorch layout (HWIO → OIHW, [in,out] → [out,in], else a copy). */
export function toTorchLayout(data: Float32Array, torchShape: readonly number[]): Float32Array {
  if (torchShape.length === 4) {
    const [o, i, h, w] = torchShape;
    const out = new Float32Array(data.length);
    let dst = 0;
    for (let oo = 0; oo < o; oo++) {
      for (let ii = 0; ii < i; ii++) {
        for (let hh = 0; hh < h; hh++) {
          for (let ww = 0; ww < w; ww++) out[dst++] = data[((hh * w + ww) * i + ii) * o + oo];
        }
      }
    }
    return out;
  }
  if (torchShape.length === 2) return transpose2d(data, torchShape[1], torchShape[0]);
  return data.slice();
}

/** [rows, cols] row-major → [cols, rows] row-major. */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

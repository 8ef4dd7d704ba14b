/**
 * Softmax cross-entropy for classifiers, built from backend kernels and differentiable w.r.t. the
 * logits.
 *
 * The loss of a row is -log softmax(x)[y]; the gradient of the mean over rows is
 * (softmax(x) - onehot(y)) / B, the exact and numerically safe form (no division by a probability).
 * The one-hot matrix is built on the device from the labels (1 - sign|y - k|), so labels never have to
 * be read back. The forward value clamps the label's probability to at least {@link MIN_PROBABILITY}
 * before the logarithm, so a confidently wrong row costs at most -log(1e-30) ≈ 69 instead of
 * infinity; the gradient is unaffected.
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import { result, type Tensor } from "../tensor.ts";

/** The smallest probability the forward value takes the logarithm of. */
export const MIN_PROBABILITY = 1e-30;

/**
 * One-hot rows [B, K] of `labels` ([B] integral floats in [0, K)), on the device. A label outside
 * [0, K) gives a row of zeros.
 */
export function oneHot(labels: Tensor, classes: number): Tensor {
  const be = labels.backend, B = labels.size;
  const iota = be.upload(Array.from({ length: classes }, (_, k) => k));
  const diff = be.binary("sub", labels.storage, iota, {
    a: [B, 1],
    b: [1, classes],
    out: [B, classes],
  });
  const ne = be.unary("sign", be.unary("abs", diff)); // 0 where equal, 1 elsewhere
  return result("oneHot", be, be.affine(ne, -1, 1), [B, classes], [], () => []);
}

/**
 * Mean softmax cross-entropy of `logits` [B, K] against `labels` [B] (class indices stored as
 * integral floats). A scalar tensor; gradients flow to the logits only.
 */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  if (logits.shape.length !== 2) {
    throw new RangeError(`crossEntropy needs logits [B, K], got [${logits.shape}]`);
  }
  const [B, K] = logits.shape;
  if (labels.size !== B) {
    throw new RangeError(`crossEntropy: ${B} rows of logits but ${labels.size} labels`);
  }
  if (labels.backend !== logits.backend) {
    throw new Error("crossEntropy: logits and labels live on different backends");
  }
  const be = logits.backend;
  const hot = oneHot(labels, K).storage;
  const p = be.softmax(logits.storage, B, K);
  const py = be.reduceSum(be.binary("mul", p, hot, { a: [B, K], b: [B, K], out: [B, K] }), [B, K], [
    B,
    1,
  ]);
  const logp = be.unary("log", be.clamp(py, MIN_PROBABILITY, 1));
  const y = be.affine(be.reduceSum(logp, [B, 1], [1, 1]), -1 / B, 0);
  return result("crossEntropy", be, y, [], [logits], (g: Storage) => {
    const d = be.binary("sub", p, hot, { a: [B, K], b: [B, K], out: [B, K] });
    return [be.affine(be.binary("mul", d, g, { a: [B, K], b: [1, 1], out: [B, K] }), 1 / B, 0)];
  });
}

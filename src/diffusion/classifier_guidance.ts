/**
 * Classifier guidance (Dhariwal & Nichol 2021, section 4; seed 001's derivation): a classifier
 * p(y | x_t, t) trained on noisy images steers any model toward class y by adding the gradient of
 * its log-probability to the score, grad log p(x_t | y) = grad log p(x_t) + s grad log p(y | x_t).
 * In the noise prediction (score = -eps / sigma_t) that is
 *
 *   eps <- eps - s sigma_t grad_x log p(y | x_t, t),
 *
 * taken here by the tape autograd with respect to the input. The shift is applied to the network's
 * raw output through the prediction type's affine link to eps (an x0-predicting network's output
 * moves by +s sigma_t^2 / alpha_t grad, a v-predicting one's by -s sigma_t / alpha_t grad), so every
 * sampler and prediction type gets it through the one Denoiser. A learned-variance network's
 * output is split first: the shift moves its eps channels, and its variance output v is kept.
 *
 * @module
 */

import { crossEntropy } from "../eval/cross_entropy.ts";
import type { Classifier } from "../eval/classifier.ts";
import { add, affine } from "../ops/elementwise.ts";
import { backward, Tensor, withGrad } from "../tensor.ts";
import type { Level } from "./noise_level.ts";
import type { Prediction } from "./parameterization.ts";
import { joinLearnedOutput, splitLearnedOutput } from "./learned_variance.ts";

/**
 * The gradient of sum_i log p(labels_i | x_i, t_i) with respect to x [B, C, H, W], from the
 * noise-conditional `classifier` at timesteps t [B] (one backward pass).
 */
export function classifierGradient(
  classifier: Classifier,
  x: Tensor,
  t: Tensor,
  labels: Tensor,
): Tensor {
  return withGrad(() => {
    const leaf = new Tensor(x.backend, x.storage, x.shape, { requiresGrad: true });
    // Weights held fixed: the backward pass computes the input's gradient and nothing else.
    const { logits } = classifier.forwardFixed(leaf, t);
    // crossEntropy is the batch mean of -log p(y | x): its gradient times -B is the one we want.
    backward(crossEntropy(logits, labels));
    return affine(leaf.grad!, -x.shape[0]);
  });
}

/**
 * The network output `output` of `prediction` type at noise level `level`, moved so that its eps
 * estimate shifts by -scale sigma grad (`grad` from {@link classifierGradient}). With
 * `learnSigma`, `output` is [eps; v] along axis 1: eps moves, v is kept.
 */
export function classifierGuidedOutput(
  output: Tensor,
  grad: Tensor,
  prediction: Prediction,
  level: Level,
  scale: number,
  learnSigma = false,
): Tensor {
  if (learnSigma) {
    const { output: eps, v } = splitLearnedOutput(output);
    return joinLearnedOutput(classifierGuidedOutput(eps, grad, prediction, level, scale), v);
  }
  const { a, s } = level;
  const factor = prediction === "epsilon"
    ? -scale * s
    : prediction === "x0"
    ? (scale * s * s) / a
    : (-scale * s) / a;
  return add(output, affine(grad, factor));
}

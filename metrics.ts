/**
 * How good samples are: the sliced Wasserstein distance and its ratio to the true-sample floor, the
 * share of spiral points off the arm, the Fréchet distance between Gaussian fits of features, and
 * the small MNIST classifier whose confidence, class balance and features score generated digits.
 *
 * @example The sliced Wasserstein distance between two samples of the same spiral
 * ```ts
 * import { slicedWasserstein } from "./metrics.ts";
 * import { Random, sampleToy } from "./data.ts";
 *
 * const a = sampleToy("spiral", 2_000, new Random(1)).data;
 * const b = sampleToy("spiral", 2_000, new Random(2)).data;
 * console.log(slicedWasserstein(a, b, 2)); // small: two samples of one distribution
 * ```
 *
 * @module
 */

export { qualityRatio, slicedWasserstein } from "./src/metrics/sliced_wasserstein.ts";
export type {
  QualityRatio,
  QualityRatioOptions,
  SlicedWassersteinOptions,
} from "./src/metrics/sliced_wasserstein.ts";
export { offArmFraction } from "./src/metrics/spiral_arm.ts";
export type { SpiralArmOptions } from "./src/metrics/spiral_arm.ts";
export { offSupportFraction } from "./src/metrics/off_support.ts";
export type { OffSupportOptions } from "./src/metrics/off_support.ts";
export { featureStats, frechetDistance, frechetDistanceOf } from "./src/metrics/frechet.ts";
export type { GaussianStats } from "./src/metrics/frechet.ts";
export {
  accuracy,
  argmaxRows,
  Classifier,
  classify,
  loadClassifier,
  saveClassifier,
  trainClassifier,
} from "./src/eval/classifier.ts";
export type {
  Classification,
  ClassifierConfig,
  ClassifierOutput,
  ClassifierProgress,
  LoadedClassifier,
  TrainClassifierOptions,
} from "./src/eval/classifier.ts";

// The types the classifier's API hands out or takes (its tensors, parameters, noise schedule and
// backend), exported as types so that this documentation is complete; their classes and functions
// are in ./engine and the library (./mod.ts).
export * from "./src/engine_types.ts";
export type {
  CosineScheduleConfig,
  LinearScheduleConfig,
  ScheduleConfig,
  SigmoidScheduleConfig,
  VeScheduleConfig,
} from "./src/diffusion/schedule.ts";
export type { BackendChoice } from "./src/backends/registry.ts";
export * from "./src/backend_types.ts";

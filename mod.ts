/**
 * Denoising diffusion probabilistic models for Deno: train and sample DDPMs with a typed API, on a
 * backend behind one kernel interface.
 *
 * ```ts
 * import { sample, sampleToy, standardize, train, Random } from "./mod.ts";
 *
 * const points = standardize(sampleToy("spiral", 10_000, new Random(1)).data, 2);
 * const model = await train({ data: { values: points.data, shape: [10_000, 2] }, steps: 2_000 });
 * const { values } = await sample(model, { count: 1_000 });
 * ```
 *
 * Importing this module reads no file, asks no permission and needs no build step, so it works from a
 * URL.
 *
 * @module
 */

import "./backends.ts";

export { STREAMS, train } from "./src/train.ts";
export type { Dataset, MlpOptions, TrainOptions, TrainProgress, UNetOptions } from "./src/train.ts";
export { sample, SAMPLERS } from "./src/sample.ts";
export type { SampleOptions, SamplerKind, Samples } from "./src/sample.ts";
export { DiffusionModel } from "./src/model.ts";
export type { DiffusionConfig, WeightsChoice } from "./src/model.ts";
export { decodeModel, encodeModel, loadModel, saveModel } from "./src/io/model_file.ts";
export { decodeSafetensors, encodeSafetensors } from "./src/io/safetensors.ts";
export type { NamedTensor, SafetensorsContent } from "./src/io/safetensors.ts";

export { makeSchedule, respace } from "./src/diffusion/schedule.ts";
export type {
  CosineScheduleConfig,
  LinearScheduleConfig,
  Schedule,
  ScheduleConfig,
  SigmoidScheduleConfig,
} from "./src/diffusion/schedule.ts";
export { DdpmSampler } from "./src/diffusion/ddpm.ts";
export type { DdpmOptions, SamplerVariance } from "./src/diffusion/ddpm.ts";
export type { Prediction } from "./src/diffusion/parameterization.ts";
export { ImportanceSampler, TIMESTEP_SAMPLINGS } from "./src/diffusion/timestep_sampler.ts";
export type { TimestepSampling, TimestepStats } from "./src/diffusion/timestep_sampler.ts";
export type { MlpConfig, TimeInput } from "./src/models/mlp.ts";
export type { NetworkConfig } from "./src/models/registry.ts";
export { DEFAULT_UNET_CONFIG, UNET_OPTION_DEFAULTS, unetConfig } from "./src/models/unet.ts";
export type { UNetAttentionKind, UNetBlockKind, UNetConfig } from "./src/models/unet.ts";
export { loadMnist } from "./src/data/mnist.ts";
export type { MnistData, MnistOptions, MnistSplit } from "./src/data/mnist.ts";
export { parseIdx, readIdx } from "./src/data/idx.ts";
export type { IdxFile, IdxType } from "./src/data/idx.ts";
export type { LrSchedule } from "./src/optim/lr_schedule.ts";

export {
  applyStandardization,
  invertStandardization,
  sampleToy,
  standardize,
  TOY_DISTRIBUTIONS,
} from "./src/data/toy.ts";
export type { Standardization, ToyDistribution, ToySample } from "./src/data/toy.ts";
export { qualityRatio, slicedWasserstein } from "./src/metrics/sliced_wasserstein.ts";
export type { QualityRatio, QualityRatioOptions } from "./src/metrics/sliced_wasserstein.ts";
export { offArmFraction } from "./src/metrics/spiral_arm.ts";

export {
  accuracy,
  Classifier,
  classify,
  loadClassifier,
  saveClassifier,
  trainClassifier,
} from "./src/eval/classifier.ts";
export { crossEntropy } from "./src/eval/cross_entropy.ts";
export { featureStats, frechetDistance, frechetDistanceOf } from "./src/metrics/frechet.ts";
export type { GaussianStats } from "./src/metrics/frechet.ts";
export { Random } from "./src/random.ts";
export { createReferenceBackend } from "./src/backends/reference/mod.ts";
export { type BackendChoice, type BackendSelection, selectBackend } from "./backends.ts";
export type { Backend, BackendName, DType, LossKind, Storage } from "./src/backend.ts";
export { FileFormatError, OptionError, TrainingError } from "./src/errors.ts";
export { Tensor } from "./src/tensor.ts";

/**
 * Denoising diffusion models for Deno: train and sample DDPMs (Ho et al. 2020, and their family)
 * with a typed API, on WebGPU, WebAssembly SIMD threads or plain TypeScript behind one kernel
 * interface.
 *
 * This entry point is the library: `train` and `sample`, the model and its files, schedules,
 * samplers, the network configurations, the backend choice and the errors. The rest has its own
 * entry point: `./data` (toy distributions, MNIST), `./metrics` (sample quality), `./io` (file
 * formats, pictures, the progress bar), `./engine` (tensors, autograd ops, the kernel interface and
 * the backends' registry), `./wasm` and `./webgpu` (the backends themselves).
 *
 * Importing this module reads no file, asks no permission and needs no build step, so it works from
 * a URL; the WebAssembly and WebGPU backends are loaded only when chosen.
 *
 * @example Training on the 2-D spiral and sampling
 * ```ts
 * import { sample, train } from "./mod.ts";
 * import { Random, sampleToy, standardize } from "./data.ts";
 *
 * const points = standardize(sampleToy("spiral", 10_000, new Random(1)).data, 2);
 * const model = await train({ data: { values: points.data, shape: [10_000, 2] }, steps: 200 });
 * const { values } = await sample(model, { count: 1_000, steps: 50 });
 * console.log(values.length); // 2000
 * ```
 *
 * @module
 */

import "./backends.ts";

export { train } from "./src/train.ts";
export type {
  Dataset,
  FcUNetOptions,
  MlpOptions,
  TrainOptions,
  TrainProgress,
  UNetOptions,
} from "./src/train.ts";
export {
  checkSampleOptions,
  DEFAULT_CLASSIFIER_SCALE,
  DEFAULT_GUIDANCE_SCALE,
  defaultSampleBatch,
  sample,
} from "./src/sample.ts";
export type { SampleOptions, Samples } from "./src/sample.ts";
export { BOUND_VARIANCES, nll } from "./src/diffusion/vlb.ts";
export type {
  BoundVariance,
  NllImages,
  NllOptions,
  NllResult,
  NllTerms,
} from "./src/diffusion/vlb.ts";
export { createSampler, SAMPLER_DEFINITIONS, SAMPLERS } from "./src/samplers/registry.ts";
export { SAMPLER_VARIANCES } from "./src/samplers/sampler.ts";
export type { SamplerKind } from "./src/samplers/registry.ts";
export type {
  DenoiseFn,
  PredictorKind,
  Sampler,
  SamplerDefinition,
  SamplerOptions,
  SamplerVariance,
  StepContext,
} from "./src/samplers/sampler.ts";
export { INTEGER_SPACINGS, SPACINGS } from "./src/samplers/spacing.ts";
export type { Spacing } from "./src/samplers/spacing.ts";
export { Denoiser } from "./src/diffusion/denoiser.ts";
export type { DenoiserOutputs, Estimate } from "./src/diffusion/denoiser.ts";
export { HYBRID_VLB_WEIGHT } from "./src/diffusion/learned_variance.ts";
export { NoiseLevels } from "./src/diffusion/noise_level.ts";
export type { Level } from "./src/diffusion/noise_level.ts";
export { DiffusionModel } from "./src/model.ts";
export type { DiffusionConfig, WeightsChoice } from "./src/model.ts";
export {
  decodeModel,
  encodeModel,
  loadModel,
  readModelMetadata,
  saveModel,
} from "./src/io/model_file.ts";
export type { SaveOptions } from "./src/io/model_file.ts";

export { geometricSigmas, makeSchedule, respace } from "./src/diffusion/schedule.ts";
export type {
  CosineScheduleConfig,
  LinearScheduleConfig,
  Schedule,
  ScheduleConfig,
  SigmoidScheduleConfig,
  VeScheduleConfig,
} from "./src/diffusion/schedule.ts";
export {
  DEFAULT_VE_SCHEDULE,
  epsilonFromScore,
  OBJECTIVES,
  scoreTime,
} from "./src/diffusion/score_matching.ts";
export type { ObjectiveKind } from "./src/diffusion/score_matching.ts";
export { PREDICTIONS } from "./src/diffusion/parameterization.ts";
export type { Prediction } from "./src/diffusion/parameterization.ts";
export { LOSS_KINDS } from "./src/backend.ts";
export type { LossKind } from "./src/backend.ts";
export { LR_SCHEDULES } from "./src/optim/lr_schedule.ts";
export type { LrSchedule } from "./src/optim/lr_schedule.ts";
export { TIMESTEP_SAMPLINGS } from "./src/diffusion/timestep_sampler.ts";
export type { TimestepSampling, TimestepStats } from "./src/diffusion/timestep_sampler.ts";

export type { MlpConfig, TimeInput } from "./src/models/mlp.ts";
export type { NetworkConfig } from "./src/models/registry.ts";
export { unetConfig, unetResolutions } from "./src/models/unet.ts";
export type { UNetAttentionKind, UNetBlockKind, UNetConfig } from "./src/models/unet.ts";
export type { FcUNetConfig } from "./src/models/fc_unet.ts";

export { BACKEND_CHOICES, selectBackend } from "./backends.ts";
export type { BackendChoice, BackendSelection } from "./backends.ts";
// The kernel interface a `Backend` is: its op groups and every type their methods take (the helpers
// that go with them are in ./engine).
export * from "./src/backend_types.ts";

// The engine's types that the API above hands out or takes (the tensors of samplers and scores, the
// model's parameters, optimizer state and network, the classifier of classifier guidance), exported
// as types so that this documentation is complete; their classes and functions are in ./engine and
// ./metrics.
export * from "./src/engine_types.ts";
export type { AdamState } from "./src/optim/adam.ts";
export type { ForwardContext, Network } from "./src/models/network.ts";
export type { Classifier, ClassifierConfig, ClassifierOutput } from "./src/eval/classifier.ts";

export { DeviceLostError, FileFormatError, OptionError, TrainingError } from "./src/errors.ts";
export * from "./src/limits.ts";
export { PACKAGE_NAME, VERSION } from "./src/version.ts";

/**
 * The engine under the library: tensors with a tape autograd, the differentiable ops, the kernel
 * interface every backend implements (the sum of the op groups in src/kernels/), the reference
 * backend and the registry that chooses backends by name, the optimizer, the counter-based random
 * generator, and the pieces of a training step (parameters in flat buffers, the denoising
 * objective). Use it to write a custom model, training loop or backend.
 *
 * @example A gradient through the tape on the reference backend
 * ```ts
 * import { backward, createReferenceBackend, mul, sum, variable } from "./engine.ts";
 *
 * const be = createReferenceBackend();
 * const x = variable(be, [1, 2, 3], [3]);
 * backward(sum(mul(x, x)));
 * console.log(await x.grad!.toArray()); // Float32Array [2, 4, 6]
 * ```
 *
 * @module
 */

export {
  backward,
  detach,
  noGrad,
  result,
  Tensor,
  tensor,
  variable,
  withGrad,
} from "./src/tensor.ts";
export type { GradNode } from "./src/tensor.ts";
export {
  abs,
  add,
  affine,
  clamp,
  combine,
  cos,
  div,
  exp,
  gelu,
  log,
  maximum,
  minimum,
  mul,
  neg,
  relu,
  sigmoid,
  silu,
  sin,
  sqrt,
  square,
  sub,
  tanh,
  unary,
} from "./src/ops/elementwise.ts";
export type { CombineOptions } from "./src/ops/elementwise.ts";
export { linear, matmul } from "./src/ops/matmul.ts";
export type { MatmulOptions } from "./src/ops/matmul.ts";
export { conv2d } from "./src/ops/conv.ts";
export type { Conv2dOptions } from "./src/ops/conv.ts";
export { depthwiseConv2d } from "./src/ops/depthwise_conv.ts";
export { dropout } from "./src/ops/dropout.ts";
export { groupNorm, groupNormSilu, softmax } from "./src/ops/norm.ts";
export { mean, sum } from "./src/ops/reduce.ts";
export {
  concat,
  gather,
  gatherRows,
  permute,
  reshape,
  slice,
  split,
  upsampleNearest,
} from "./src/ops/shape.ts";
export { regressionLoss } from "./src/ops/loss.ts";

export * from "./src/backend.ts";
export { createReferenceBackend } from "./src/backends/reference/mod.ts";
export type { ReferenceBackend, ReferenceOptions } from "./src/backends/reference/mod.ts";
export { registerBackend } from "./src/backends/registry.ts";
export type { BackendLoader, DeviceProbe } from "./src/backends/registry.ts";
export { BACKEND_CHOICES, selectBackend } from "./backends.ts";
export type { BackendChoice, BackendSelection } from "./backends.ts";

export { Adam } from "./src/optim/adam.ts";
export type { AdamOptions, AdamState } from "./src/optim/adam.ts";
export { learningRate } from "./src/optim/lr_schedule.ts";
export type { LrOptions, LrSchedule } from "./src/optim/lr_schedule.ts";
export { blocksFor, Random } from "./src/random.ts";
export type { RandomPosition } from "./src/random.ts";
export { STREAMS } from "./src/random_streams.ts";
export { ParamLayout, ParamRecorder, ParamStore, recordParams } from "./src/nn/params.ts";
export type { ParamEntry, ParamInit, ParamSource, ParamSpec } from "./src/nn/params.ts";
export { Linear } from "./src/nn/linear.ts";
export { ClassEmbedding, MAX_CLASSES } from "./src/nn/class_embedding.ts";
export { type Guidance, guidedOutput } from "./src/diffusion/guidance.ts";
export { classifierGradient, classifierGuidedOutput } from "./src/diffusion/classifier_guidance.ts";
export { BatchEdit, type EditInputs, editStart } from "./src/diffusion/editing.ts";
export { Conv2d } from "./src/nn/conv.ts";
export type { Conv2dLayerOptions } from "./src/nn/conv.ts";
export { DepthwiseConv2d } from "./src/nn/depthwise_conv.ts";
export { GroupNorm } from "./src/nn/groupnorm.ts";
export { Attention } from "./src/nn/attention.ts";
export type { AttentionOptions } from "./src/nn/attention.ts";
export { LinearAttention } from "./src/nn/linear_attention.ts";
export type { LinearAttentionOptions } from "./src/nn/linear_attention.ts";
export { ResBlock } from "./src/nn/resnet_block.ts";
export { ConvNextBlock } from "./src/nn/convnext_block.ts";
export { timestepEmbedding } from "./src/nn/embedding.ts";
export type { DropoutFn } from "./src/nn/dropout.ts";
export { buildNetwork, networkSpecs } from "./src/models/registry.ts";
export type { ForwardContext, Network } from "./src/models/network.ts";
export { DenoisingObjective } from "./src/diffusion/objective.ts";
export type {
  ObjectiveBatchOptions,
  ObjectiveConfig,
  ObjectiveTerms,
} from "./src/diffusion/objective.ts";
export { DeviceSchedule, qSample } from "./src/diffusion/forward.ts";
export type { NoiseLevel, Prediction } from "./src/diffusion/parameterization.ts";

// The library's types that the engine's functions and classes take (the network, schedule and
// noise-level configurations, the classifier of classifier guidance), exported as types so that
// this documentation is complete; their values and functions are in ./mod.ts and ./metrics.
export type { NetworkConfig } from "./src/models/registry.ts";
export type { MlpConfig, TimeInput } from "./src/models/mlp.ts";
export type { UNetAttentionKind, UNetBlockKind, UNetConfig } from "./src/models/unet.ts";
export type { FcUNetConfig } from "./src/models/fc_unet.ts";
export type {
  CosineScheduleConfig,
  LinearScheduleConfig,
  Schedule,
  ScheduleConfig,
  SigmoidScheduleConfig,
  VeScheduleConfig,
} from "./src/diffusion/schedule.ts";
export type { Level } from "./src/diffusion/noise_level.ts";
export type { Classifier, ClassifierConfig, ClassifierOutput } from "./src/eval/classifier.ts";

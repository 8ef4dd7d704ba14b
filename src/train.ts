/**
 * `train(options)`: fits a diffusion model to data and returns it.
 *
 * One step: draw batch indices, timesteps and noise on the device (counter-based, so the draws of
 * step k are fixed by the seed and k alone), noise the batch in closed form, predict, take the loss,
 * back-propagate into the flat gradient buffer, take one fused Adam step, update the EMA. The loss is
 * read back only every `progressEvery` steps.
 *
 * @module
 */

import type { LossKind } from "./backend.ts";
import { type BackendChoice, selectBackend } from "./backends/select.ts";
import { DeviceSchedule, minSnrWeights, qSample } from "./diffusion/forward.ts";
import { type Prediction, PREDICTIONS, predictionTarget } from "./diffusion/parameterization.ts";
import { makeBetas, type ScheduleConfig } from "./diffusion/schedule.ts";
import { checkChoice, checkInt, checkNumber, OptionError, TrainingError } from "./errors.ts";
import { type DiffusionConfig, DiffusionModel } from "./model.ts";
import type { MlpOptions } from "./models/mlp.ts";
import type { ForwardContext } from "./models/network.ts";
import { type NetworkConfig, networkSpecs, resolveNetworkConfig } from "./models/registry.ts";
import type { UNetOptions } from "./models/unet.ts";
import { ParamLayout } from "./nn/params.ts";
import { LOSS_KINDS, regressionLoss } from "./ops/loss.ts";
import { mul, sub } from "./ops/elementwise.ts";
import { mean } from "./ops/reduce.ts";
import { gather, gatherRows, reshape } from "./ops/shape.ts";
import { Adam } from "./optim/adam.ts";
import { learningRate, LR_SCHEDULES, type LrSchedule } from "./optim/lr_schedule.ts";
import { blocksFor, Random } from "./random.ts";
import {
  ImportanceSampler,
  TIMESTEP_SAMPLINGS,
  type TimestepSampling,
} from "./diffusion/timestep_sampler.ts";
import { sizeOf } from "./shape.ts";
import { backward, Tensor } from "./tensor.ts";

/** Training data: `values` holds `shape[0]` samples of shape `shape.slice(1)`, row-major. */
export interface Dataset {
  /** The values. */
  values: Float32Array;
  /** [count, ...sampleShape]. */
  shape: readonly number[];
}

// Each network's options live beside it; re-exported here, where `train` takes them.
export type { MlpOptions } from "./models/mlp.ts";
export type { UNetOptions } from "./models/unet.ts";

/** Progress reported every `progressEvery` steps. */
export interface TrainProgress {
  /** Steps done. */
  step: number;
  /** Total steps. */
  steps: number;
  /** Loss of the latest step. */
  loss: number;
  /** Steps per second since the previous report. */
  stepsPerSecond: number;
  /** Learning rate of the latest step. */
  lr: number;
  /** Milliseconds since training began. */
  elapsedMs: number;
}

/** Options of {@link train}. Everything but `data` has a default. */
export interface TrainOptions {
  /** The training data. */
  data: Dataset;
  /** The denoising network: an MLP for vector data (default), a UNet for images. */
  network?: MlpOptions | UNetOptions;
  /** The noise schedule (default linear 1e-4 .. 0.02 over T = 1000). */
  schedule?: ScheduleConfig;
  /** What the network predicts (default "epsilon"). */
  prediction?: Prediction;
  /** The regression loss (default "l2"). */
  loss?: LossKind;
  /**
   * Min-SNR-gamma loss weighting (Hang et al. 2023): each sample's squared error is weighted so that
   * it equals min(SNR_t, gamma) times its x0 error, which caps the weight of nearly clean timesteps
   * and speeds up convergence. 5 is the paper's choice; null (default) weights all timesteps as the
   * prediction type does. Needs the "l2" loss.
   */
  minSnrGamma?: number | null;
  /**
   * How training timesteps are drawn (default "uniform"). "importance" draws t in proportion to the
   * estimated size of its gradient, sqrt(λ_t ℓ̄_t) from running means ℓ̄ of the weighted loss, and
   * weights each sample by 1 / (T p_t), so the objective stays the uniform one with less gradient
   * noise (see {@link ImportanceSampler}); t is uniform until every timestep bin has been seen a
   * few times. Needs the "l2" loss. The statistics are kept in `model.timestepStats` and saved in
   * checkpoints.
   */
  timestepSampling?: TimestepSampling;
  /** Huber threshold (default 1). */
  huberDelta?: number;
  /** Optimizer steps (default 10,000). */
  steps?: number;
  /** Batch size (default 256). */
  batchSize?: number;
  /** Peak learning rate (default 1e-3). */
  lr?: number;
  /** Learning-rate schedule (default "cosine"). */
  lrSchedule?: LrSchedule;
  /** Linear warm-up steps (default 0). */
  warmupSteps?: number;
  /** "adam" or "adamw" (default "adam"). */
  optimizer?: "adam" | "adamw";
  /** Weight decay (default 0). */
  weightDecay?: number;
  /** Adam's moment decays [beta1, beta2], each in [0, 1) (default [0.9, 0.999], PyTorch's). */
  adamBetas?: readonly [number, number];
  /** Clip the gradient's global norm to this (default null: no clipping). */
  gradClip?: number | null;
  /**
   * EMA decay of the weights; null for none (default 0.999). At step s the decay used is
   * min(emaDecay, (1 + s) / (10 + s)) (a warm-up, so early EMA weights follow the model), which
   * stays below 0.999 until step 8,990: any decay from 0.999 up acts the same in shorter runs.
   */
  emaDecay?: number | null;
  /** Seed of every random draw (default 0). */
  seed?: number;
  /** Which backend computes (default "auto"). */
  backend?: BackendChoice;
  /** Called every `progressEvery` steps and at the end. */
  onProgress?: (p: TrainProgress) => void;
  /** How often to read the loss back and report (default 100 steps). */
  progressEvery?: number;
  /** Stops training cleanly after the current step; the model trained so far is returned. */
  signal?: AbortSignal;
  /** Called once with the backend chosen and why. */
  onBackend?: (reason: string) => void;
  /**
   * Continue training this model (one returned by `train`, or loaded from a file saved with its
   * optimizer state) from its `stepsTrained` up to `steps`. The configuration and backend come
   * from the model; with the same options and seed the result equals an uninterrupted run.
   */
  resume?: DiffusionModel;
  /** How often `onCheckpoint` runs, in steps (default: never, except on abort). */
  checkpointEvery?: number;
  /** Called every `checkpointEvery` steps and when training is aborted, e.g. to save the model. */
  onCheckpoint?: (model: DiffusionModel) => Promise<void> | void;
}

/**
 * Random streams under the seed: one per kind of draw. Dropout site i of the network's forward
 * pass (see {@link ForwardContext}) draws from stream `dropout + i`, at the step's own counter.
 */
export const STREAMS = {
  init: 0,
  batch: 1,
  time: 2,
  noise: 3,
  sample: 4,
  dropout: 0x10000,
} as const;

function checkDataset(d: Dataset): void {
  if (!(d?.values instanceof Float32Array)) {
    throw new OptionError("data.values must be a Float32Array");
  }
  if (d.shape.length < 2 || d.shape.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new OptionError(
      `data.shape must be [count, ...sampleShape] of positive integers, got [${d.shape}]`,
    );
  }
  if (sizeOf(d.shape) !== d.values.length) {
    throw new OptionError(
      `data.shape [${d.shape}] needs ${sizeOf(d.shape)} values, data has ${d.values.length}`,
    );
  }
  for (let i = 0; i < d.values.length; i++) {
    if (!Number.isFinite(d.values[i])) {
      throw new OptionError(`data holds a non-finite value at index ${i}`);
    }
  }
}

function resolveNetwork(
  n: MlpOptions | UNetOptions | undefined,
  dataShape: readonly number[],
  T: number,
): NetworkConfig {
  return resolveNetworkConfig(n, dataShape, T);
}

/** Throws an {@link OptionError} unless `model` can continue training with `config`. */
function checkResumable(model: DiffusionModel, config: DiffusionConfig, ema: boolean): void {
  const a = JSON.stringify(model.config), b = JSON.stringify(config);
  if (a !== b) {
    throw new OptionError(
      `resume: the model's configuration differs from these options (model ${a}, options ${b})`,
    );
  }
  if (!model.optimizer) {
    throw new OptionError("resume: the model holds no optimizer state; save checkpoints with it");
  }
  if (ema !== (model.ema !== null)) {
    throw new OptionError(
      `resume: the model ${model.ema ? "has" : "has no"} EMA weights; set emaDecay to match`,
    );
  }
}

/** Validates options and fills in defaults, throwing an {@link OptionError} that names the bad one. */
export function resolveTrainOptions(o: TrainOptions) {
  checkDataset(o.data);
  const schedule: ScheduleConfig = o.schedule ??
    { kind: "linear", T: 1000, betaStart: 1e-4, betaEnd: 0.02 };
  try {
    makeBetas(schedule);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
  const r = {
    schedule,
    prediction: o.prediction ?? "epsilon",
    loss: o.loss ?? "l2",
    huberDelta: o.huberDelta ?? 1,
    minSnrGamma: o.minSnrGamma ?? null,
    timestepSampling: o.timestepSampling ?? "uniform",
    steps: o.steps ?? 10_000,
    batchSize: o.batchSize ?? 256,
    lr: o.lr ?? 1e-3,
    lrSchedule: o.lrSchedule ?? "cosine",
    warmupSteps: o.warmupSteps ?? 0,
    optimizer: o.optimizer ?? "adam",
    weightDecay: o.weightDecay ?? 0,
    adamBetas: o.adamBetas ?? [0.9, 0.999] as const,
    gradClip: o.gradClip ?? null,
    emaDecay: o.emaDecay === undefined ? 0.999 : o.emaDecay,
    seed: o.seed ?? 0,
    progressEvery: o.progressEvery ?? 100,
  };
  checkChoice("prediction", r.prediction, PREDICTIONS);
  checkChoice("loss", r.loss, LOSS_KINDS);
  checkChoice("lrSchedule", r.lrSchedule, LR_SCHEDULES);
  checkChoice("optimizer", r.optimizer, ["adam", "adamw"] as const);
  checkChoice("timestepSampling", r.timestepSampling, TIMESTEP_SAMPLINGS);
  if (r.timestepSampling === "importance" && r.loss !== "l2") {
    throw new OptionError(
      `timestepSampling "importance" weights the squared error; set loss to "l2" (got ${
        JSON.stringify(r.loss)
      }) or timestepSampling to "uniform"`,
    );
  }
  checkNumber("huberDelta", r.huberDelta, { gt: 0 });
  if (r.minSnrGamma !== null) {
    checkNumber("minSnrGamma", r.minSnrGamma, { gt: 0 });
    if (r.loss !== "l2") {
      throw new OptionError(
        `minSnrGamma weights the squared error; set loss to "l2" (got ${
          JSON.stringify(r.loss)
        }) or minSnrGamma to null`,
      );
    }
  }
  checkInt("steps", r.steps, 0);
  checkInt("batchSize", r.batchSize, 1);
  checkNumber("lr", r.lr, { gt: 0 });
  checkInt("warmupSteps", r.warmupSteps, 0);
  checkNumber("weightDecay", r.weightDecay, { ge: 0 });
  if (!Array.isArray(r.adamBetas) || r.adamBetas.length !== 2) {
    throw new OptionError(`adamBetas must be [beta1, beta2], got ${JSON.stringify(r.adamBetas)}`);
  }
  checkNumber("adamBetas[0]", r.adamBetas[0], { ge: 0, lt: 1 });
  checkNumber("adamBetas[1]", r.adamBetas[1], { ge: 0, lt: 1 });
  if (r.gradClip !== null) checkNumber("gradClip", r.gradClip, { gt: 0 });
  if (r.emaDecay !== null) checkNumber("emaDecay", r.emaDecay, { ge: 0, lt: 1 });
  checkInt("seed", r.seed, 0);
  checkInt("progressEvery", r.progressEvery, 1);
  const network = resolveNetwork(o.network, o.data.shape, schedule.T);
  const config: DiffusionConfig = {
    network,
    schedule,
    prediction: r.prediction,
    sampleShape: [...o.data.shape.slice(1)],
  };
  return { ...r, config };
}

/** Trains a diffusion model on `options.data` and returns it. */
export async function train(options: TrainOptions): Promise<DiffusionModel> {
  const o = resolveTrainOptions(options);
  let model: DiffusionModel;
  if (options.resume) {
    model = options.resume;
    checkResumable(model, o.config, o.emaDecay !== null);
    options.onBackend?.(`resuming on the model's ${model.backend.name} backend`);
  } else {
    const { backend, reason } = await selectBackend(options.backend);
    options.onBackend?.(reason);
    const layout = new ParamLayout(networkSpecs(o.config.network));
    const init = layout.initialValues(new Random(o.seed, STREAMS.init));
    model = new DiffusionModel(o.config, backend, init, o.emaDecay === null ? null : init);
  }
  const be = model.backend;
  const net = model.network("raw");
  const opt = new Adam(model.params, {
    decoupled: o.optimizer === "adamw",
    weightDecay: o.weightDecay,
    beta1: o.adamBetas[0],
    beta2: o.adamBetas[1],
    clipNorm: o.gradClip,
  }, model.optimizer);
  model.optimizer = opt.state;
  const checkpointEvery = options.checkpointEvery ?? 0;
  if (checkpointEvery !== 0) checkInt("checkpointEvery", checkpointEvery, 1);
  const sched = new DeviceSchedule(be, model.schedule);
  const rootWeights = o.minSnrGamma === null
    ? null
    : sched.minSnrRootWeights(o.prediction, o.minSnrGamma);
  const [count, ...sampleShape] = options.data.shape;
  const data = new Tensor(be, be.upload(options.data.values), options.data.shape);
  const B = o.batchSize, T = o.schedule.T, n = B * sizeOf(sampleShape);
  const idx = new Tensor(be, be.alloc(B), [B]);
  const t = new Tensor(be, be.alloc(B), [B]);
  const eps = new Tensor(be, be.alloc(n), [B, ...sampleShape]);
  // Importance sampling: t drawn on the host, the per-sample root weights sqrt(λ_t / (T p_t))
  // written to `rootW` each step.
  const lambda = o.timestepSampling === "importance"
    ? minSnrWeights(model.schedule, o.prediction, o.minSnrGamma)
    : null;
  const sampler = lambda
    ? new ImportanceSampler(T, lambda, model.timestepStats ?? undefined)
    : null;
  model.timestepStats = sampler ? sampler.stats : null;
  const tHost = new Float32Array(B), share = new Float64Array(B), rootHost = new Float32Array(B);
  const rootW = sampler ? new Tensor(be, be.alloc(B), [B]) : null;
  const lrOpts = { lr: o.lr, schedule: o.lrSchedule, steps: o.steps, warmupSteps: o.warmupSteps };
  const start = performance.now();
  let lastReport = start;

  let lastStep = model.stepsTrained;
  for (let step = model.stepsTrained + 1; step <= o.steps; step++) {
    const k = step - 1;
    be.beginScope();
    be.randomInt(
      idx.storage,
      { seed: o.seed, stream: STREAMS.batch, counter: k * blocksFor(B) },
      0,
      count,
    );
    const timeDraw = { seed: o.seed, stream: STREAMS.time, counter: k * blocksFor(B) };
    if (sampler) {
      const u = new Random(timeDraw.seed, timeDraw.stream, timeDraw.counter).uniforms(B);
      sampler.draw(u, tHost, share);
      for (let i = 0; i < B; i++) rootHost[i] = Math.sqrt(lambda![tHost[i]] * share[i]);
      be.write(t.storage, tHost);
      be.write(rootW!.storage, rootHost);
    } else {
      be.randomInt(t.storage, timeDraw, 1, T + 1);
    }
    be.randomNormal(eps.storage, {
      seed: o.seed,
      stream: STREAMS.noise,
      counter: k * blocksFor(n),
    });
    const x0 = gatherRows(data, idx);
    const lvl = sched.level(t, x0.shape.length);
    const xt = qSample(x0, eps, lvl);
    const target = predictionTarget(o.prediction, x0, eps, lvl);
    const ctx: ForwardContext = {
      training: true,
      draw: (site, size) => ({
        seed: o.seed,
        stream: STREAMS.dropout + site,
        counter: k * blocksFor(size),
      }),
    };
    let pred = net.forward(xt, t, ctx), goal = target;
    if (rootWeights || rootW) {
      const w = reshape(rootW ?? gather(rootWeights!, t), lvl.a.shape);
      pred = mul(w, pred);
      goal = mul(w, target);
    }
    const loss = regressionLoss(o.loss, pred, goal, o.huberDelta);
    // Each sample's weighted squared error times 1 / (T p_t), for the sampler's statistics.
    const diff = sampler ? sub(pred, goal) : null;
    const perSample = diff ? mean(mul(diff, diff), diff.shape.slice(1).map((_, i) => i + 1)) : null;
    be.fill(model.params.grads!, 0);
    backward(loss);
    const lr = learningRate(step, lrOpts);
    opt.step(lr);
    if (model.ema) {
      const decay = Math.min(o.emaDecay!, (1 + step) / (10 + step));
      be.ema(model.ema.values, model.params.values, decay);
    }
    be.flush();
    model.stepsTrained = step;
    const aborted = options.signal?.aborted ?? false;
    const report = step % o.progressEvery === 0 || step === o.steps || aborted;
    const value = report ? (await be.read(loss.storage))[0] : 0;
    if (sampler) {
      const scaled = await be.read(perSample!.storage);
      for (let i = 0; i < B; i++) scaled[i] /= share[i];
      sampler.update(tHost, scaled);
    }
    be.endScope();
    if (report) {
      if (!Number.isFinite(value)) {
        throw new TrainingError(
          `training diverged: the loss is ${value} at step ${step}; lower the learning rate or set gradient clipping`,
        );
      }
      const now = performance.now();
      options.onProgress?.({
        step,
        steps: o.steps,
        loss: value,
        lr,
        stepsPerSecond: ((step - lastStep) * 1000) / Math.max(1e-9, now - lastReport),
        elapsedMs: now - start,
      });
      lastReport = now;
      lastStep = step;
      // Let timers and signal handlers run (an abort from Ctrl-C arrives as a macrotask).
      await new Promise((r) => setTimeout(r, 0));
    }
    const stop = aborted || (options.signal?.aborted ?? false);
    if (options.onCheckpoint && (stop || (checkpointEvery && step % checkpointEvery === 0))) {
      await options.onCheckpoint(model);
    }
    if (stop) break;
  }
  for (const s of [data.storage, idx.storage, t.storage, eps.storage]) be.free(s);
  if (rootW) be.free(rootW.storage);
  return model;
}

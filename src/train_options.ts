/**
 * The options of `train()`: their types, defaults and validation. {@link resolveTrainOptions}
 * checks every option before any work is done, throwing an {@link OptionError} that names the bad
 * one, and returns them complete, with the model's configuration.
 *
 * @module
 */

import type { LossKind } from "./backend.ts";
import type { BackendChoice } from "./backends/registry.ts";
import { type Prediction, PREDICTIONS } from "./diffusion/parameterization.ts";
import { makeBetas, type ScheduleConfig } from "./diffusion/schedule.ts";
import { DEFAULT_VE_SCHEDULE, type ObjectiveKind, OBJECTIVES } from "./diffusion/score_matching.ts";
import { TIMESTEP_SAMPLINGS, type TimestepSampling } from "./diffusion/timestep_sampler.ts";
import { checkChoice, checkInt, checkNumber, OptionError } from "./errors.ts";
import type { DiffusionConfig, DiffusionModel } from "./model.ts";
import type { FcUNetOptions } from "./models/fc_unet.ts";
import type { MlpOptions } from "./models/mlp.ts";
import { resolveNetworkConfig } from "./models/registry.ts";
import { checkClasses } from "./nn/class_embedding.ts";
import type { UNetOptions } from "./models/unet.ts";
import { LOSS_KINDS } from "./ops/loss.ts";
import { LR_SCHEDULES, type LrSchedule } from "./optim/lr_schedule.ts";
import { sizeOf } from "./shape.ts";

/**
 * Training data: `values` holds `shape[0]` samples of shape `shape.slice(1)`, row-major; with
 * `labels`, one class a sample, the model trained on it is class-conditional.
 */
export interface Dataset {
  /** The values. */
  values: Float32Array;
  /** [count, ...sampleShape]. */
  shape: readonly number[];
  /** Class labels in [0, classes), one a sample: a class-conditional model (absent: unconditional). */
  labels?: Int32Array;
  /** The number of classes (default: the largest label + 1). */
  classes?: number;
}

// Each network's options live beside it; re-exported here, where `train` takes them.
export type { MlpOptions } from "./models/mlp.ts";
export type { UNetOptions } from "./models/unet.ts";
export type { FcUNetOptions } from "./models/fc_unet.ts";

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
  /**
   * The denoising network: an MLP for vector data (default), a UNet for images, or the fully
   * connected UNet (`kind: "fc-unet"`) for either.
   */
  network?: MlpOptions | UNetOptions | FcUNetOptions;
  /**
   * The training objective (default "ddpm"): "ddpm" regresses the network's prediction (eps, x0
   * or v) under the noise schedule; "dsm" trains a score model by denoising score matching over
   * the geometric noise levels of a "ve" schedule (Song & Ermon 2019; see
   * src/diffusion/score_matching.ts), which samples with `sampler: "langevin"` (annealed Langevin
   * dynamics over its levels). With "dsm", `prediction`, `minSnrGamma`, `huberDelta`,
   * `condDropout`, a loss other than "l2", importance-sampled timesteps and labelled data are
   * refused: they belong to the DDPM objective.
   */
  objective?: ObjectiveKind;
  /**
   * The noise schedule (default linear 1e-4 .. 0.02 over T = 1000; with objective "dsm", and
   * only a "ve" schedule there, `{ kind: "ve", T: 50, sigmaMin: 0.01, sigmaMax: 10 }`).
   */
  schedule?: ScheduleConfig;
  /** What the network predicts (default "epsilon"). */
  prediction?: Prediction;
  /**
   * Learned reverse variances (Nichol & Dhariwal 2021, "Improved DDPM", §3.1; default false): the
   * network outputs a second set of channels v (its last layer doubles), the reverse step's
   * variance is exp(frac log beta_t + (1 - frac) log betaTilde_t) with frac = (v + 1) / 2, and the
   * loss is the hybrid L_simple + 0.001 L_vlb, L_vlb training the variance alone
   * (src/diffusion/learned_variance.ts). The model's DDPM sampler and `nll` then use the learned
   * variance by default. Recorded as `learnSigma: true` in the network's configuration. Needs
   * prediction "epsilon" and objective "ddpm".
   */
  learnSigma?: boolean;
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
  /**
   * Class-conditional models: the share of samples trained with the null class instead of their
   * label (default 0.1), so the one network also predicts unconditionally (classifier-free
   * guidance, Ho & Salimans 2022).
   */
  condDropout?: number;
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
  if (d.labels === undefined) {
    if (d.classes !== undefined) {
      throw new OptionError("data.classes is set but data.labels is not; pass the labels too");
    }
    return;
  }
  if (!(d.labels instanceof Int32Array) || d.labels.length !== d.shape[0]) {
    throw new OptionError(
      `data.labels must be an Int32Array of ${d.shape[0]} labels, one a sample, got ${
        d.labels instanceof Int32Array ? d.labels.length : typeof d.labels
      }`,
    );
  }
  if (d.classes !== undefined) {
    try {
      checkClasses("data.classes", d.classes);
    } catch (e) {
      throw new OptionError((e as Error).message);
    }
  }
  const classes = datasetClasses(d)!;
  for (let i = 0; i < d.labels.length; i++) {
    const y = d.labels[i];
    if (y < 0 || y >= classes) {
      throw new OptionError(
        `data.labels[${i}] is ${y}, outside [0, ${classes}); labels are 0 .. data.classes - 1`,
      );
    }
  }
}

/** The number of classes of a labelled dataset (data.classes, or the largest label + 1). */
function datasetClasses(d: Dataset): number | undefined {
  if (!d.labels) return undefined;
  if (d.classes !== undefined) return d.classes;
  let max = -1;
  for (const y of d.labels) max = Math.max(max, y);
  return max + 1;
}

/** The options of {@link TrainOptions} that shape the run, complete, and the model's configuration. */
export interface ResolvedTrainOptions {
  /** The training objective. */
  objective: ObjectiveKind;
  /** The noise schedule. */
  schedule: ScheduleConfig;
  /** What the network predicts. */
  prediction: Prediction;
  /** Learned variances and the hybrid loss. */
  learnSigma: boolean;
  /** The regression loss. */
  loss: LossKind;
  /** Huber threshold. */
  huberDelta: number;
  /** Min-SNR-gamma weighting's gamma, or null. */
  minSnrGamma: number | null;
  /** How timesteps are drawn. */
  timestepSampling: TimestepSampling;
  /** Optimizer steps. */
  steps: number;
  /** Batch size. */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Learning-rate schedule. */
  lrSchedule: LrSchedule;
  /** Linear warm-up steps. */
  warmupSteps: number;
  /** "adam" or "adamw". */
  optimizer: "adam" | "adamw";
  /** Weight decay. */
  weightDecay: number;
  /** Adam's moment decays. */
  adamBetas: readonly [number, number];
  /** Global-norm gradient clipping, or null. */
  gradClip: number | null;
  /** EMA decay, or null for no EMA. */
  emaDecay: number | null;
  /** Seed of every random draw. */
  seed: number;
  /** How often the loss is read back and reported. */
  progressEvery: number;
  /** Share of a conditional model's samples trained with the null class (0 when unconditional). */
  condDropout: number;
  /** The model's configuration (network, schedule, prediction, sample shape). */
  config: DiffusionConfig;
}

/** Validates options and fills in defaults, throwing an {@link OptionError} that names the bad one. */
export function resolveTrainOptions(o: TrainOptions): ResolvedTrainOptions {
  checkDataset(o.data);
  const objective = o.objective ?? "ddpm";
  checkChoice("objective", objective, OBJECTIVES);
  const schedule: ScheduleConfig = o.schedule ??
    (objective === "dsm"
      ? { ...DEFAULT_VE_SCHEDULE }
      : { kind: "linear", T: 1000, betaStart: 1e-4, betaEnd: 0.02 });
  try {
    makeBetas(schedule);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
  if (objective === "dsm") checkScoreMatchingOptions(o, schedule);
  const r: Omit<ResolvedTrainOptions, "config"> = {
    objective,
    schedule,
    prediction: o.prediction ?? "epsilon",
    learnSigma: o.learnSigma ?? false,
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
    condDropout: o.data?.labels ? o.condDropout ?? 0.1 : 0,
  };
  checkChoice("prediction", r.prediction, PREDICTIONS);
  if (typeof r.learnSigma !== "boolean") {
    throw new OptionError(`learnSigma must be true or false, got ${JSON.stringify(r.learnSigma)}`);
  }
  if (r.learnSigma && r.prediction !== "epsilon") {
    throw new OptionError(
      `learnSigma learns the variance beside an eps prediction (the mean from eps, Improved ` +
        `DDPM's setting); set prediction to "epsilon" (got ${JSON.stringify(r.prediction)}) ` +
        `or drop learnSigma`,
    );
  }
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
  if (o.condDropout !== undefined) {
    if (!o.data.labels) {
      throw new OptionError("condDropout applies to labelled data; pass data.labels or drop it");
    }
    checkNumber("condDropout", o.condDropout, { ge: 0, lt: 1 });
  }
  const network = resolveNetworkConfig(
    o.network,
    o.data.shape,
    schedule.T,
    datasetClasses(o.data),
    r.learnSigma,
  );
  const config: DiffusionConfig = {
    network,
    schedule,
    prediction: r.prediction,
    sampleShape: [...o.data.shape.slice(1)],
    // Recorded only for score models: a DDPM model's configuration stays as it always was.
    ...(objective === "dsm" ? { objective } : {}),
  };
  return { ...r, config };
}

/**
 * Throws an {@link OptionError} naming the first option that does not apply to objective "dsm":
 * a schedule other than "ve", or an option of the DDPM objective.
 */
function checkScoreMatchingOptions(o: TrainOptions, schedule: ScheduleConfig): void {
  if (schedule.kind !== "ve") {
    throw new OptionError(
      `schedule: objective "dsm" trains over geometric noise levels; set schedule to ` +
        `{ kind: "ve", T, sigmaMin, sigmaMax } or leave it out (got kind ${
          JSON.stringify(schedule.kind)
        })`,
    );
  }
  const fix = `drop it or set objective to "ddpm"`;
  const ddpmOnly: [keyof TrainOptions, boolean][] = [
    ["prediction", o.prediction !== undefined],
    ["minSnrGamma", o.minSnrGamma !== undefined && o.minSnrGamma !== null],
    ["huberDelta", o.huberDelta !== undefined],
    ["loss", o.loss !== undefined && o.loss !== "l2"],
    ["timestepSampling", o.timestepSampling !== undefined && o.timestepSampling !== "uniform"],
    ["condDropout", o.condDropout !== undefined],
    ["learnSigma", o.learnSigma !== undefined && o.learnSigma !== false],
  ];
  for (const [name, set] of ddpmOnly) {
    if (set) {
      throw new OptionError(
        `${name} applies to objective "ddpm"; a "dsm" network outputs sigma times the score ` +
          `under the sigma^2-weighted squared error (${fix})`,
      );
    }
  }
  if (o.data.labels) {
    throw new OptionError(
      `data.labels: objective "dsm" trains unconditional score models; drop the labels or set ` +
        `objective to "ddpm"`,
    );
  }
}

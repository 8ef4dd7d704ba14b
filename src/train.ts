/**
 * `train(options)`: the training loop. It fits a diffusion model to data and returns it.
 *
 * One step: draw batch indices, timesteps and noise on the device (counter-based, so the draws of
 * step k are fixed by the seed and k alone), take the objective's loss on the batch
 * (src/diffusion/objective.ts: noise in closed form, predict, weight, compare; or, for objective
 * "dsm", src/diffusion/score_matching.ts; with `learnSigma`, the hybrid loss of
 * src/diffusion/learned_variance.ts), back-propagate into the flat gradient buffer, take one
 * fused Adam step, update the EMA. The loss is read back only every `progressEvery` steps;
 * checkpoints are the caller's (`onCheckpoint`). The options, their defaults and their checks are
 * in src/train_options.ts.
 *
 * @module
 */

import { selectBackend } from "./backends/registry.ts";
import { minSnrWeights } from "./diffusion/forward.ts";
import { DenoisingObjective } from "./diffusion/objective.ts";
import { ScoreMatchingObjective } from "./diffusion/score_matching.ts";
import { ImportanceSampler } from "./diffusion/timestep_sampler.ts";
import { checkInt, OptionError, TrainingError } from "./errors.ts";
import { type DiffusionConfig, DiffusionModel } from "./model.ts";
import type { ForwardContext } from "./models/network.ts";
import { networkSpecs } from "./models/registry.ts";
import { ParamLayout } from "./nn/params.ts";
import { add, mul } from "./ops/elementwise.ts";
import { gather, gatherRows } from "./ops/shape.ts";
import { Adam } from "./optim/adam.ts";
import { learningRate } from "./optim/lr_schedule.ts";
import { blocksFor, Random } from "./random.ts";
import { STREAMS } from "./random_streams.ts";
import { sizeOf } from "./shape.ts";
import { backward, Tensor } from "./tensor.ts";
import { resolveTrainOptions, type TrainOptions } from "./train_options.ts";

export type {
  Dataset,
  FcUNetOptions,
  MlpOptions,
  ResolvedTrainOptions,
  TrainOptions,
  TrainProgress,
  UNetOptions,
} from "./train_options.ts";
export { resolveTrainOptions } from "./train_options.ts";

/** Throws an {@link OptionError} unless `model` can continue training with `config`. */
function checkResumable(model: DiffusionModel, config: DiffusionConfig, ema: boolean): void {
  const differences = configDifferences(model.config, config);
  if (differences.length > 0) {
    throw new OptionError(
      `resume: these options differ from the model's configuration: ${differences.join("; ")}`,
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

/**
 * The settings in which two configurations differ, one "path: model X, options Y" each (`path`
 * dotted, e.g. `network.base`), in a stable order.
 */
function configDifferences(model: unknown, options: unknown, path = ""): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObject(model) && isObject(options)) {
    const keys = [...new Set([...Object.keys(model), ...Object.keys(options)])].sort();
    return keys.flatMap((k) => configDifferences(model[k], options[k], path ? `${path}.${k}` : k));
  }
  const a = JSON.stringify(model) ?? "unset", b = JSON.stringify(options) ?? "unset";
  return a === b ? [] : [`${path || "configuration"}: model ${a}, options ${b}`];
}

/** An epsilon-prediction loss above this is a divergence (the target's variance is 1). */
const DIVERGED_EPS_LOSS = 1e4;

/** Throws a {@link TrainingError} naming the step when the model's weights hold NaN or infinity. */
async function checkFiniteWeights(model: DiffusionModel, step: number): Promise<void> {
  for (const store of [model.params, model.ema]) {
    if (!store) continue;
    const values = await model.backend.read(store.values);
    const i = values.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) {
      throw new TrainingError(
        `training diverged: a weight is ${values[i]} after step ${step}; lower the learning ` +
          `rate or set gradient clipping (the last checkpoint was kept)`,
      );
    }
  }
}

/**
 * Trains a diffusion model on `options.data` and returns it.
 *
 * @example Fitting the 2-D spiral with the MLP denoiser
 * ```ts
 * import { train } from "../mod.ts";
 * import { Random, sampleToy, standardize } from "../data.ts";
 *
 * const points = standardize(sampleToy("spiral", 10_000, new Random(1)).data, 2);
 * const model = await train({ data: { values: points.data, shape: [10_000, 2] }, steps: 200 });
 * console.log(model.stepsTrained); // 200
 * ```
 */
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
  // The DDPM regression, or denoising score matching over the "ve" levels (score_matching.ts).
  const objective = o.objective === "dsm"
    ? new ScoreMatchingObjective(be, model.schedule)
    : new DenoisingObjective(be, model.schedule, {
      prediction: o.prediction,
      loss: o.loss,
      huberDelta: o.huberDelta,
      minSnrGamma: o.minSnrGamma,
      learnSigma: o.learnSigma,
    });
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
  // With learned variances the L_vlb term is weighted by 1 / (T p_t) alone (no min-SNR), written
  // to `vlbW` each step; the sampler's statistics stay on the simple loss (objective.ts).
  const vlbW = sampler && o.learnSigma ? new Tensor(be, be.alloc(B), [B]) : null;
  const vlbHost = vlbW ? new Float32Array(B) : null;
  // Class-conditional: the labels on the device; each step a host-drawn share condDropout of the
  // batch gets the null class, y <- y * keep + classes * (1 - keep).
  const classes = model.config.network.classes ?? 0;
  const labels = classes && options.data.labels
    ? new Tensor(be, be.upload(Float32Array.from(options.data.labels)), [count])
    : null;
  if (!labels && classes) {
    throw new OptionError("resume: the model is class-conditional; pass data.labels");
  }
  const keep = labels ? new Tensor(be, be.alloc(B), [B]) : null;
  const nulls = labels ? new Tensor(be, be.alloc(B), [B]) : null;
  const keepHost = new Float32Array(B), nullHost = new Float32Array(B);
  // The largest loss since the last report, kept on the device: a spike between two reports (a
  // divergence that kills the network, after which the loss looks tame again) is still seen.
  // [worst, latest]: both come back in one read at each report.
  const watch = be.alloc(2), worst = be.view(watch, 0, 1), latest = be.view(watch, 1, 1);
  const one = { a: [1], b: [1], out: [1] };
  be.fill(watch, 0);
  const lrOpts = { lr: o.lr, schedule: o.lrSchedule, steps: o.steps, warmupSteps: o.warmupSteps };
  const start = performance.now();
  let lastReport = start;

  let lastStep = model.stepsTrained;
  // An already-aborted signal trains nothing.
  if (options.signal?.aborted) return model;
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
      if (vlbW) {
        vlbHost!.set(share);
        be.write(vlbW.storage, vlbHost!);
      }
    } else {
      be.randomInt(t.storage, timeDraw, 1, T + 1);
    }
    be.randomNormal(eps.storage, {
      seed: o.seed,
      stream: STREAMS.noise,
      counter: k * blocksFor(n),
    });
    const ctx: ForwardContext = {
      training: true,
      draw: (site, size) => ({
        seed: o.seed,
        stream: STREAMS.dropout + site,
        counter: k * blocksFor(size),
      }),
    };
    let y: Tensor | undefined;
    if (labels) {
      const u = new Random(o.seed, STREAMS.labelDropout, k * blocksFor(B)).uniforms(B);
      for (let i = 0; i < B; i++) {
        const drop = u[i] < o.condDropout;
        keepHost[i] = drop ? 0 : 1;
        nullHost[i] = drop ? classes : 0;
      }
      be.write(keep!.storage, keepHost);
      be.write(nulls!.storage, nullHost);
      y = add(mul(gather(labels, idx), keep!), nulls!);
    }
    const { loss, perSample } = objective.loss(net, gatherRows(data, idx), t, eps, {
      ctx,
      rootWeights: rootW,
      perSample: sampler !== null,
      labels: y,
      vlbWeights: vlbW,
    });
    be.copy(worst, be.binary("max", worst, loss.storage, one));
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
    const checkpointDue = options.onCheckpoint !== undefined &&
      (aborted || (checkpointEvery !== 0 && step % checkpointEvery === 0));
    const report = step % o.progressEvery === 0 || step === o.steps || aborted || checkpointDue;
    if (report) be.copy(latest, loss.storage);
    const [peak, value] = report ? await be.read(watch) : [0, 0];
    if (sampler) {
      // Each sample's weighted squared error times 1 / (T p_t), for the sampler's statistics.
      const scaled = await be.read(perSample!.storage);
      for (let i = 0; i < B; i++) scaled[i] /= share[i];
      sampler.update(tHost, scaled);
    }
    be.endScope();
    if (report) {
      // An epsilon target (a score model's -z too) has unit variance whatever the data: a loss
      // this far above 1 is a divergence, not a slow start.
      if (!Number.isFinite(value) || (o.prediction === "epsilon" && value > DIVERGED_EPS_LOSS)) {
        throw new TrainingError(
          `training diverged: the loss is ${value} at step ${step}; lower the learning rate or set gradient clipping`,
        );
      }
      if (!Number.isFinite(peak) || (o.prediction === "epsilon" && peak > DIVERGED_EPS_LOSS)) {
        throw new TrainingError(
          `training diverged: the loss reached ${peak} between steps ${
            lastStep + 1
          } and ${step}; ` +
            `lower the learning rate or set gradient clipping`,
        );
      }
      be.fill(worst, 0);
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
      // Never hand a diverged model to a checkpoint: the last good file stays.
      await checkFiniteWeights(model, step);
      await options.onCheckpoint(model);
    }
    if (stop) break;
  }
  for (const s of [data.storage, idx.storage, t.storage, eps.storage, watch]) be.free(s);
  for (const x of [rootW, vlbW, labels, keep, nulls]) if (x) be.free(x.storage);
  return model;
}

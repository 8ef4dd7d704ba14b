/**
 * `sample(model, options)`: draws samples by running a sampler (chosen by name from
 * src/samplers/registry.ts) from pure noise down to the clean sample, in batches. x stays on the
 * backend for all steps and is read back once per batch.
 *
 * The noise is counter-based: x_T of sample n, and the j-th draw of step i, come from fixed Philox
 * blocks of (seed, stream, sample), so the samples do not depend on the batch size.
 *
 * A learned-variance model (`train({ learnSigma: true })`) is sampled through the same Denoiser,
 * which splits its output: the DDPM sampler (and pc's ddpm predictor) use the learned variance by
 * default (`variance: "learned"`; "posterior" and "beta" stay selectable), and every other sampler
 * runs on the eps half and ignores v. Classifier-free guidance combines the eps halves and keeps
 * the conditional v; classifier guidance shifts eps and keeps v.
 *
 * @module
 */

import type { Storage } from "./backend.ts";
import { Denoiser } from "./diffusion/denoiser.ts";
import { BatchEdit, editStart } from "./diffusion/editing.ts";
import { guidedOutput } from "./diffusion/guidance.ts";
import { classifierGradient, classifierGuidedOutput } from "./diffusion/classifier_guidance.ts";
import type { Classifier } from "./eval/classifier.ts";
import { type Conditioning, resolveConditioning } from "./sample_conditioning.ts";
import { NoiseLevels } from "./diffusion/noise_level.ts";
import { epsilonFromScore } from "./diffusion/score_matching.ts";
import { checkChoice, checkInt, checkNumber, OptionError, TrainingError } from "./errors.ts";
import { MAX_SAMPLE_VALUES, MAX_SAMPLES } from "./limits.ts";
import type { DiffusionModel, WeightsChoice } from "./model.ts";
import { blocksFor } from "./random.ts";
import { STREAMS } from "./random_streams.ts";
import { PREDICTORS } from "./samplers/predictor_corrector.ts";
import { createSampler, type SamplerKind, SAMPLERS } from "./samplers/registry.ts";
import type { NetworkConfig } from "./models/registry.ts";
import {
  type Sampler,
  SAMPLER_VARIANCES,
  type SamplerOptions,
  type StepContext,
} from "./samplers/sampler.ts";
import { SPACINGS } from "./samplers/spacing.ts";
import { sizeOf } from "./shape.ts";
import { noGrad, Tensor } from "./tensor.ts";

export { type SamplerKind, SAMPLERS } from "./samplers/registry.ts";
export { DEFAULT_CLASSIFIER_SCALE, DEFAULT_GUIDANCE_SCALE } from "./sample_conditioning.ts";

/** Options of {@link sample}: which sampler and its options, how many samples, and callbacks. */
export interface SampleOptions extends SamplerOptions {
  /** How many samples (default 1,000). */
  count?: number;
  /**
   * The sampler (default "ddpm", ancestral). The others: "ddim", "heun", "euler" (probability-flow
   * ODE), "euler-maruyama" (reverse SDE), "pc" (predictor-corrector), "langevin" (annealed
   * Langevin dynamics), "dpm++2m" (DPM-Solver++(2M)); see src/samplers/.
   */
  sampler?: SamplerKind;
  /** Seed of the noise (default 0). */
  seed?: number;
  /** The weights to use (default "ema" when the model keeps them). */
  weights?: WeightsChoice;
  /** Called after each sampling step. */
  onProgress?: (p: { step: number; steps: number }) => void;
  /** Called with x after the steps whose model time (rounded) is listed in `trajectoryAt`. */
  onTrajectory?: (t: number, x: Float32Array) => void;
  /** Model timesteps at which to report x through `onTrajectory` (for the first batch). */
  trajectoryAt?: readonly number[];
  /**
   * Samples denoised at once (default: {@link defaultSampleBatch}; rounded up so that batches start
   * on whole random blocks). The samples are the same for every batch size.
   */
  batchSize?: number;
  /**
   * Class-conditional models: the class of every sample, or one class a sample (`count` of them),
   * each in [0, classes). Without it a conditional model samples unconditionally.
   */
  classes?: number | readonly number[];
  /**
   * Classifier-free guidance scale w with `classes` (default 2): 0 is the unconditional model, 1
   * the conditional one, above 1 sharper and more typical of the class (src/diffusion/guidance.ts).
   * Each step is one network call on a doubled batch (none extra at w = 1).
   */
  guidanceScale?: number;
  /** Guidance rescale phi in [0, 1] (Lin et al. 2023; default 0: none). */
  guidanceRescale?: number;
  /**
   * Classifier guidance toward `classes` (src/diffusion/classifier_guidance.ts): a noise-conditional
   * classifier trained on this model's schedule (`trainClassifier({ noise })`), on the model's
   * backend (`loadClassifier(path, model.backend)`). Works on unconditional models.
   */
  classifier?: Classifier;
  /** The classifier guidance scale s (default 3). */
  classifierScale?: number;
  /**
   * Edit these samples (count x ...sampleShape values) instead of drawing from noise: with
   * `strength`, SDEdit; with `mask`, inpainting (src/diffusion/editing.ts).
   */
  init?: Float32Array;
  /** SDEdit: noise `init` to model time strength T, in (0, 1], and denoise from there (default 1). */
  strength?: number;
  /**
   * Inpainting: 1 where `init` is kept, 0 where the model fills in; one sample's shape (for every
   * sample) or one a sample.
   */
  mask?: Float32Array;
  /**
   * Inpainting: RePaint's resampling (Lugmayr et al. 2022), each step taken this many times (default
   * 1: once), noised back between passes so the generated region harmonises with the known one.
   * Multistep samplers (dpm++2m) pair every pass with the previous grid time's estimate.
   */
  resampling?: number;
}

/**
 * The default number of samples denoised at once: 256 for the image networks, whose activations
 * take about 0.4 MB a sample; for the MLP, as many as keep its widest activation near 16 MiB
 * (2^22 / width: 16,384 at the toy's width 256), since at batch 256 its products are too small to
 * fill the cores and a 10,000-point step pays 40 batches' worth of kernel launches.
 */
export function defaultSampleBatch(network: NetworkConfig): number {
  return network.kind === "mlp" ? Math.max(256, Math.floor(2 ** 22 / network.hidden)) : 256;
}

/** Samples and their shape [count, ...sampleShape]. */
export interface Samples {
  /** The values, row-major. */
  values: Float32Array;
  /** [count, ...sampleShape]. */
  shape: number[];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Checks the sampler options, throwing an OptionError that names the bad one. */
function checkSamplerOptions(o: SampleOptions, T: number, learnSigma: boolean): void {
  if (o.eta !== undefined) checkNumber("eta", o.eta, { ge: 0 });
  checkChoice("variance", o.variance ?? "posterior", SAMPLER_VARIANCES);
  if (o.variance === "learned" && !learnSigma) {
    throw new OptionError(
      `variance "learned" needs a model trained with learnSigma (this one predicts no variance); ` +
        `use "posterior" or "beta"`,
    );
  }
  if (o.clip !== undefined && o.clip !== null) checkNumber("clip", o.clip, { gt: 0 });
  if (o.steps !== undefined) checkInt("steps", o.steps, 1, T);
  if (o.spacing !== undefined) checkChoice("spacing", o.spacing, SPACINGS);
  if (o.predictor !== undefined) checkChoice("predictor", o.predictor, PREDICTORS);
  if (o.correctorSteps !== undefined) checkInt("correctorSteps", o.correctorSteps, 0);
  if (o.snr !== undefined) checkNumber("snr", o.snr, { gt: 0 });
  if (o.langevinSteps !== undefined) checkInt("langevinSteps", o.langevinSteps, 1);
  if (o.stepSize !== undefined) checkNumber("stepSize", o.stepSize, { gt: 0 });
}

/**
 * Checks `options` against `model` as {@link sample} does, before any work: throws an OptionError
 * naming the first bad option (scripts call it before they create their output folder).
 */
export function checkSampleOptions(model: DiffusionModel, options: SampleOptions): void {
  resolveSampleOptions(model, options);
}

/** The checked options: count, seed, the sampler and the conditioning. */
function resolveSampleOptions(
  model: DiffusionModel,
  options: SampleOptions,
): Conditioning & { count: number; seed: number; sampler: Sampler } {
  const count = options.count ?? 1000, seed = options.seed ?? 0;
  checkInt("count", count, 1, MAX_SAMPLES);
  const values = count * sizeOf(model.config.sampleShape);
  if (values > MAX_SAMPLE_VALUES) {
    throw new OptionError(
      `count ${count} asks for ${values} values (${
        (values / 2 ** 28).toFixed(1)
      } GiB of float32), ` +
        `above the ${MAX_SAMPLE_VALUES} one call returns; draw them in several calls`,
    );
  }
  checkInt("seed", seed, 0);
  checkChoice("weights", options.weights ?? "ema", ["ema", "raw"] as const);
  if (options.batchSize !== undefined) checkInt("batchSize", options.batchSize, 1);
  const kind = options.sampler ?? "ddpm";
  checkChoice("sampler", kind, SAMPLERS);
  checkSamplerOptions(options, model.schedule.T, model.learnSigma);
  const objective = model.config.objective ?? "ddpm";
  if (objective === "dsm") {
    for (const k of ["classifier", "init"] as const) {
      if (options[k] !== undefined) {
        throw new OptionError(
          `${k}: a score model (objective "dsm") samples unguided and without edits; drop ${k}`,
        );
      }
    }
  }
  const conditioning = resolveConditioning(model, options, count);
  try {
    // A learned-variance model's ancestral steps use its variance unless told otherwise.
    const sampling = model.learnSigma && options.variance === undefined
      ? { ...options, variance: "learned" as const }
      : options;
    const sampler = createSampler(
      kind,
      model.schedule,
      model.config.prediction,
      sampling,
      objective,
    );
    return { ...conditioning, count, seed, sampler };
  } catch (e) {
    // A sampler's own checks (a spacing it cannot step on, say) are the user's to fix.
    if (e instanceof RangeError) throw new OptionError(`sampler "${kind}": ${e.message}`);
    throw e;
  }
}

/**
 * Draws `count` samples from the model.
 *
 * @example Twenty-step DPM-Solver++ samples of a trained model
 * ```ts
 * import { sample, train } from "../mod.ts";
 * import { Random, sampleToy, standardize } from "../data.ts";
 *
 * const points = standardize(sampleToy("spiral", 2_000, new Random(1)).data, 2);
 * const model = await train({ data: { values: points.data, shape: [2_000, 2] }, steps: 100 });
 * const { values, shape } = await sample(model, { count: 500, sampler: "dpm++2m", steps: 20 });
 * console.log(shape, values.length); // [500, 2] 1000
 * ```
 */
export async function sample(model: DiffusionModel, options: SampleOptions = {}): Promise<Samples> {
  const { count, seed, sampler, labels, guidance, classifier: guide, edit } = resolveSampleOptions(
    model,
    options,
  );
  const classes = model.config.network.classes ?? 0, prediction = model.config.prediction;
  const learnSigma = model.learnSigma;
  const objective = model.config.objective ?? "ddpm";
  const be = model.backend;
  const net = model.network(options.weights ?? "ema");
  const per = sizeOf(model.config.sampleShape), shape = [count, ...model.config.sampleShape];
  // Chunks start at element offsets divisible by 4, so each chunk's draws are the same Philox
  // blocks as in one big batch: the samples do not depend on the batch size.
  const align = 4 / gcd(per, 4);
  const wanted = Math.min(options.batchSize ?? defaultSampleBatch(model.config.network), count);
  const batch = Math.max(align, Math.ceil(wanted / align) * align);
  const totalBlocks = blocksFor(count * per);
  const values = new Float32Array(count * per);
  const steps = sampler.timesteps.length, chunks = Math.ceil(count / batch);
  const first = edit ? editStart(sampler.timesteps, edit.strength, model.schedule.T) : 0;
  const jumps = edit?.resampling ?? 1;
  const levels = new NoiseLevels(model.schedule);
  const want = new Set(options.trajectoryAt ?? []);
  for (let c = 0; c < chunks; c++) {
    const start = c * batch, m = Math.min(batch, count - start), n = m * per;
    if (edit && first === steps) {
      // An edit too weak to reach the first step: the input comes back as it is.
      values.set(edit.init.subarray(start * per, (start + m) * per), start * per);
      continue;
    }
    // Draw 0 of step i (and x_T, "step -1") on the sampling stream; draw j > 0 on its own stream.
    const drawOn = (stream: number, k: number) => ({
      seed,
      stream,
      counter: k * totalBlocks + (start * per) / 4,
    });
    const draw = (k: number, j: number) =>
      drawOn(j === 0 ? STREAMS.sample : STREAMS.sampleExtra + j, k);
    let x = new Tensor(be, be.alloc(n), [m, ...model.config.sampleShape]);
    be.randomNormal(x.storage, draw(0, 0));
    if (sampler.varianceExploding) {
      // A score model's own coordinates: x starts from N(0, sigma_VE(t_first)^2 I).
      const scaled = be.affine(x.storage, levels.sigmaVE(sampler.timesteps[first]), 0);
      be.free(x.storage);
      x = new Tensor(be, scaled, x.shape);
    }
    const t = new Tensor(be, be.alloc(m), [m]);
    const y = labels ? new Tensor(be, be.upload(labels.subarray(start, start + m)), [m]) : null;
    const batchEdit = edit ? new BatchEdit(be, edit, { start, shape: x.shape, per }, levels) : null;
    if (batchEdit && edit!.strength < 1) {
      // SDEdit: the input noised to the first step's time with the start noise.
      be.beginScope();
      const noised = batchEdit.noised(sampler.timesteps[first], x);
      be.flush();
      be.endScope([noised.storage]);
      be.free(x.storage);
      x = noised;
    }
    const network = (xi: Tensor, tm: number): Tensor => {
      be.fill(t.storage, tm);
      if (y && guide) {
        const out = net.forward(xi, t);
        const grad = classifierGradient(guide.model, xi, t, y);
        const level = levels.level(tm);
        return classifierGuidedOutput(out, grad, prediction, level, guide.scale, learnSigma);
      }
      if (y && guidance) {
        return guidedOutput(net, { x: xi, t, labels: y }, classes, guidance, learnSigma);
      }
      return net.forward(xi, t, undefined, y ?? undefined);
    };
    // A score model: read as one in its own coordinates (annealed Langevin), or as an epsilon
    // model through the exact change to the variance-preserving ones (every other sampler).
    const scoreModel = objective === "dsm";
    const denoiser = new Denoiser(
      scoreModel && !sampler.varianceExploding ? epsilonFromScore(network, levels) : network,
      model.schedule,
      model.config.prediction,
      options.clip ?? null,
      scoreModel && sampler.varianceExploding ? "dsm" : "ddpm",
      learnSigma,
    );
    sampler.reset?.();
    let kept: Storage[] = [];
    for (let i = first; i < steps; i++) {
      const ti = sampler.timesteps[i], next = sampler.timesteps[i + 1] ?? 0;
      const keep: Storage[] = [];
      // Pass u > 0 of a RePaint resampling step draws from its own streams.
      let pass = 0;
      const passStream = (k: number) => STREAMS.resample + 256 * pass + k;
      const ctx: StepContext = {
        denoiser,
        noise: (j = 0) => {
          const z = be.alloc(n);
          be.randomNormal(z, pass === 0 ? draw(i + 1, j) : drawOn(passStream(j), i + 1));
          return new Tensor(be, z, x.shape);
        },
        keep: (k) => void keep.push(k.storage),
      };
      be.beginScope();
      const prev = x;
      x = noGrad(() => {
        let cur = prev;
        for (;; pass++) {
          let out = sampler.step(ctx, i, cur);
          if (!batchEdit) return out;
          out = batchEdit.blend(
            out,
            next,
            () => drawOn(pass === 0 ? STREAMS.inpaint : passStream(128), i + 1),
          );
          if (pass + 1 >= jumps || next === 0) return out;
          // RePaint: back to t_i through q(x_ti | x_tnext), and the step again.
          cur = batchEdit.renoise(out, next, ti, drawOn(passStream(129), i + 1));
        }
      });
      be.flush();
      be.endScope([x.storage, ...keep]);
      be.free(prev.storage);
      for (const s of kept) if (s !== x.storage && !keep.includes(s)) be.free(s);
      kept = keep;
      if (c === 0 && want.has(Math.round(ti)) && options.onTrajectory) {
        options.onTrajectory(ti, Float32Array.from(await be.read(x.storage)));
      }
      const run = steps - first;
      options.onProgress?.({ step: c * run + i - first + 1, steps: chunks * run });
      if ((i + 1) % 20 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    const got = await be.read(x.storage);
    const bad = got.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new TrainingError(
        `sampling produced ${got[bad]} (sample ${start + Math.floor(bad / per)}): the model's ` +
          `weights are finite but it diverged; retrain with a lower learning rate`,
      );
    }
    values.set(got, start * per);
    for (const s of kept) if (s !== x.storage) be.free(s);
    for (const st of [x.storage, t.storage]) be.free(st);
    if (y) be.free(y.storage);
    batchEdit?.dispose();
  }
  return { values, shape };
}

/**
 * `sample(model, options)`: draws samples by running a sampler (chosen by name from
 * src/samplers/registry.ts) from pure noise down to the clean sample, in batches. x stays on the
 * backend for all steps and is read back once per batch.
 *
 * The noise is counter-based: x_T of sample n, and the j-th draw of step i, come from fixed Philox
 * blocks of (seed, stream, sample), so the samples do not depend on the batch size.
 *
 * @module
 */

import type { Storage } from "./backend.ts";
import { Denoiser } from "./diffusion/denoiser.ts";
import { BatchEdit, type EditInputs, editStart } from "./diffusion/editing.ts";
import { type Guidance, guidedOutput } from "./diffusion/guidance.ts";
import { NoiseLevels } from "./diffusion/noise_level.ts";
import { checkChoice, checkInt, checkNumber, OptionError } from "./errors.ts";
import type { DiffusionModel, WeightsChoice } from "./model.ts";
import { blocksFor } from "./random.ts";
import { STREAMS } from "./random_streams.ts";
import { PREDICTORS } from "./samplers/predictor_corrector.ts";
import { createSampler, type SamplerKind, SAMPLERS } from "./samplers/registry.ts";
import type { SamplerOptions, StepContext } from "./samplers/sampler.ts";
import { SPACINGS } from "./samplers/spacing.ts";
import { sizeOf } from "./shape.ts";
import { noGrad, Tensor } from "./tensor.ts";

export { type SamplerKind, SAMPLERS } from "./samplers/registry.ts";

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
   * Samples denoised at once (default 256; rounded up so that batches start on whole random
   * blocks). The samples are the same for every batch size.
   */
  batchSize?: number;
  /**
   * Class-conditional models: the class of every sample, or one class a sample (`count` of them),
   * each in [0, classes). Without it a conditional model samples unconditionally.
   */
  classes?: number | readonly number[];
  /**
   * Classifier-free guidance scale w with `classes` (default 3): 0 is the unconditional model, 1
   * the conditional one, above 1 sharper and more typical of the class (src/diffusion/guidance.ts).
   * Each step is one network call on a doubled batch (none extra at w = 1).
   */
  guidanceScale?: number;
  /** Guidance rescale phi in [0, 1] (Lin et al. 2023; default 0: none). */
  guidanceRescale?: number;
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
}

/** The guidance scale `sample` uses with `classes` when none is given. */
export const DEFAULT_GUIDANCE_SCALE = 3;

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
function checkSamplerOptions(o: SampleOptions, T: number): void {
  if (o.eta !== undefined) checkNumber("eta", o.eta, { ge: 0 });
  checkChoice("variance", o.variance ?? "posterior", ["posterior", "beta"] as const);
  if (o.clip !== undefined && o.clip !== null) checkNumber("clip", o.clip, { gt: 0 });
  if (o.steps !== undefined) checkInt("steps", o.steps, 1, T);
  if (o.spacing !== undefined) checkChoice("spacing", o.spacing, SPACINGS);
  if (o.predictor !== undefined) checkChoice("predictor", o.predictor, PREDICTORS);
  if (o.correctorSteps !== undefined) checkInt("correctorSteps", o.correctorSteps, 0);
  if (o.snr !== undefined) checkNumber("snr", o.snr, { gt: 0 });
  if (o.langevinSteps !== undefined) checkInt("langevinSteps", o.langevinSteps, 1);
  if (o.stepSize !== undefined) checkNumber("stepSize", o.stepSize, { gt: 0 });
}

/** The class labels, guidance and edit of a sampling run, checked. */
interface Conditioning {
  /** One label a sample (as floats), or null to sample unconditionally. */
  labels: Float32Array | null;
  /** The guidance, or null for one plain network call a step. */
  guidance: Guidance | null;
  /** The edit, or null to sample from noise. */
  edit: (EditInputs & { strength: number }) | null;
}

function checkFiniteIn(name: string, v: Float32Array, lo: number, hi: number): void {
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= lo && v[i] <= hi)) {
      throw new OptionError(`${name}[${i}] is ${v[i]}; values must be finite, in [${lo}, ${hi}]`);
    }
  }
}

/** Checks the conditioning and editing options, throwing an OptionError naming the bad one. */
function resolveConditioning(model: DiffusionModel, o: SampleOptions, count: number): Conditioning {
  const classes = model.config.network.classes ?? 0;
  let labels: Float32Array | null = null, guidance: Guidance | null = null;
  if (o.classes === undefined) {
    for (const k of ["guidanceScale", "guidanceRescale"] as const) {
      if (o[k] !== undefined) throw new OptionError(`${k} needs classes: say which to sample`);
    }
  } else {
    if (!classes) {
      throw new OptionError(
        "classes: the model is unconditional (trained without data.labels); drop classes and guidance",
      );
    }
    const list = typeof o.classes === "number" ? new Array(count).fill(o.classes) : o.classes;
    if (list.length !== count) {
      throw new OptionError(
        `classes has ${list.length} entries for ${count} samples; give one or count`,
      );
    }
    list.forEach((c, i) => checkInt(`classes[${i}]`, c, 0, classes - 1));
    labels = Float32Array.from(list);
    const scale = o.guidanceScale ?? DEFAULT_GUIDANCE_SCALE, rescale = o.guidanceRescale ?? 0;
    checkNumber("guidanceScale", scale, { ge: 0 });
    checkNumber("guidanceRescale", rescale, { ge: 0, le: 1 });
    guidance = scale === 1 && rescale === 0 ? null : { scale, rescale };
  }
  if (o.init === undefined) {
    for (const k of ["strength", "mask"] as const) {
      if (o[k] !== undefined) throw new OptionError(`${k} edits a given sample: pass init too`);
    }
    return { labels, guidance, edit: null };
  }
  const per = sizeOf(model.config.sampleShape), shape = `[${model.config.sampleShape}]`;
  if (!(o.init instanceof Float32Array) || o.init.length !== count * per) {
    throw new OptionError(
      `init must be a Float32Array of count x ${shape} = ${count * per} values, got ${
        o.init instanceof Float32Array ? o.init.length : typeof o.init
      }`,
    );
  }
  checkFiniteIn("init", o.init, -Infinity, Infinity);
  if (o.strength === undefined && o.mask === undefined) {
    throw new OptionError("init needs strength (SDEdit) or mask (inpainting)");
  }
  const strength = o.strength ?? 1;
  checkNumber("strength", strength, { gt: 0, le: 1 });
  if (o.mask !== undefined) {
    if (
      !(o.mask instanceof Float32Array) || (o.mask.length !== per && o.mask.length !== count * per)
    ) {
      throw new OptionError(
        `mask must be a Float32Array of one sample's ${shape} (${per} values) or one a sample (${
          count * per
        }), got ${o.mask instanceof Float32Array ? o.mask.length : typeof o.mask}`,
      );
    }
    checkFiniteIn("mask", o.mask, 0, 1);
  }
  return { labels, guidance, edit: { init: o.init, mask: o.mask, strength } };
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
  const count = options.count ?? 1000, seed = options.seed ?? 0;
  checkInt("count", count, 1);
  checkInt("seed", seed, 0);
  const kind = options.sampler ?? "ddpm";
  checkChoice("sampler", kind, SAMPLERS);
  checkSamplerOptions(options, model.schedule.T);
  const { labels, guidance, edit } = resolveConditioning(model, options, count);
  const classes = model.config.network.classes ?? 0;
  const be = model.backend;
  let sampler;
  try {
    sampler = createSampler(kind, model.schedule, model.config.prediction, options);
  } catch (e) {
    // A sampler's own checks (a spacing it cannot step on, say) are the user's to fix.
    if (e instanceof RangeError) throw new OptionError(`sampler "${kind}": ${e.message}`);
    throw e;
  }
  const net = model.network(options.weights ?? "ema");
  const per = sizeOf(model.config.sampleShape), shape = [count, ...model.config.sampleShape];
  // Chunks start at element offsets divisible by 4, so each chunk's draws are the same Philox
  // blocks as in one big batch: the samples do not depend on the batch size.
  const align = 4 / gcd(per, 4);
  const batch = Math.max(
    align,
    Math.ceil(Math.min(options.batchSize ?? 256, count) / align) * align,
  );
  checkInt("batchSize", batch, 1);
  const totalBlocks = blocksFor(count * per);
  const values = new Float32Array(count * per);
  const steps = sampler.timesteps.length, chunks = Math.ceil(count / batch);
  const first = edit ? editStart(sampler.timesteps, edit.strength, model.schedule.T) : 0;
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
    const denoiser = new Denoiser(
      (xi, tm) => {
        be.fill(t.storage, tm);
        if (y && guidance) return guidedOutput(net, { x: xi, t, labels: y }, classes, guidance);
        return net.forward(xi, t, undefined, y ?? undefined);
      },
      model.schedule,
      model.config.prediction,
      options.clip ?? null,
    );
    sampler.reset?.();
    let kept: Storage[] = [];
    for (let i = first; i < steps; i++) {
      const ti = sampler.timesteps[i];
      const keep: Storage[] = [];
      const ctx: StepContext = {
        denoiser,
        noise: (j = 0) => {
          const z = be.alloc(n);
          be.randomNormal(z, draw(i + 1, j));
          return new Tensor(be, z, x.shape);
        },
        keep: (k) => void keep.push(k.storage),
      };
      be.beginScope();
      const prev = x;
      x = noGrad(() => {
        const next = sampler.step(ctx, i, prev);
        if (!batchEdit) return next;
        return batchEdit.blend(
          next,
          sampler.timesteps[i + 1] ?? 0,
          () => drawOn(STREAMS.inpaint, i + 1),
        );
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
    values.set(await be.read(x.storage), start * per);
    for (const s of kept) if (s !== x.storage) be.free(s);
    for (const st of [x.storage, t.storage]) be.free(st);
    if (y) be.free(y.storage);
    batchEdit?.dispose();
  }
  return { values, shape };
}

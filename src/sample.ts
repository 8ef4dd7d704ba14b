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
  const want = new Set(options.trajectoryAt ?? []);
  for (let c = 0; c < chunks; c++) {
    const start = c * batch, m = Math.min(batch, count - start), n = m * per;
    // Draw 0 of step i (and x_T, "step -1") on the sampling stream; draw j > 0 on its own stream.
    const draw = (k: number, j: number) => ({
      seed,
      stream: j === 0 ? STREAMS.sample : STREAMS.sampleExtra + j,
      counter: k * totalBlocks + (start * per) / 4,
    });
    let x = new Tensor(be, be.alloc(n), [m, ...model.config.sampleShape]);
    be.randomNormal(x.storage, draw(0, 0));
    const t = new Tensor(be, be.alloc(m), [m]);
    const denoiser = new Denoiser(
      (xi, tm) => {
        be.fill(t.storage, tm);
        return net.forward(xi, t);
      },
      model.schedule,
      model.config.prediction,
      options.clip ?? null,
    );
    sampler.reset?.();
    let kept: Storage[] = [];
    for (let i = 0; i < steps; i++) {
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
      x = noGrad(() => sampler.step(ctx, i, prev));
      be.flush();
      be.endScope([x.storage, ...keep]);
      be.free(prev.storage);
      for (const s of kept) if (s !== x.storage && !keep.includes(s)) be.free(s);
      kept = keep;
      if (c === 0 && want.has(Math.round(ti)) && options.onTrajectory) {
        options.onTrajectory(ti, Float32Array.from(await be.read(x.storage)));
      }
      options.onProgress?.({ step: c * steps + i + 1, steps: chunks * steps });
      if ((i + 1) % 20 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    values.set(await be.read(x.storage), start * per);
    for (const s of kept) if (s !== x.storage) be.free(s);
    for (const st of [x.storage, t.storage]) be.free(st);
  }
  return { values, shape };
}

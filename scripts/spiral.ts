/**
 * The toy demo: trains a diffusion model on the 2-D spiral (or the 1-D Gaussian mixture, or the
 * ramp) of the seed, samples 10,000 points, writes them as CSV with a picture of training data beside
 * generated data and the forward-noising strip, and prints the quality figure. `--objective dsm`
 * trains a score model by denoising score matching instead and samples it with annealed Langevin
 * dynamics (seed 001 §3).
 *
 *   deno run -A scripts/spiral.ts [--dist spiral|gmm1d|ramp] [--steps N] [--out DIR] ... (--help)
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_CHOICES,
  type BackendChoice,
  makeSchedule,
  MAX_DEPTH,
  MAX_T,
  MAX_WIDTH,
  type ObjectiveKind,
  OBJECTIVES,
  OptionError,
  sample,
  type SamplerKind,
  saveModel,
  type ScheduleConfig,
  train,
} from "../mod.ts";
import {
  applyStandardization,
  invertStandardization,
  Random,
  sampleToy,
  standardize,
  TOY_DISTRIBUTIONS,
  toyDim,
  type ToyDistribution,
} from "../data.ts";
import { offSupportFraction, qualityRatio } from "../metrics.ts";
import {
  checkChoice,
  checkInt,
  checkNumber,
  checkSize,
  forwardStrip,
  stack,
  writePngAtomic,
  writeTextFileAtomic,
} from "../io.ts";
import { info, numberFlag, outFlag, prepareOutDir, progressBar, runMain } from "./cli.ts";
import {
  SAMPLER_FLAG_SPECS,
  type SamplerFlagValues,
  samplerFromFlags,
  samplerHelp,
} from "./sampler_flags.ts";

/** The demo's defaults: reach the quality bar quickly on the reference backend. */
const DEFAULTS = {
  dist: "spiral",
  steps: 8_000,
  batch: 256,
  lr: 7e-3,
  warmup: 200,
  hidden: 96,
  layers: 4,
  T: 200,
  schedule: "cosine",
  "beta-start": 1e-4,
  "beta-end": 0.02,
  ema: 0.999,
  samples: 10_000,
  "train-size": 100_000,
  seed: 0,
  "data-seed": 1,
  backend: "auto",
  out: "out/spiral",
  "time-input": "scalar",
} as const;

/** The demo's sampler: the ancestral one, all T steps, with the posterior variance. */
const DEFAULT_SAMPLER: SamplerKind = "ddpm";

/**
 * `--objective dsm`'s defaults, in place of the DDPM ones: 25 noise levels, geometric from 0.01 to
 * 5. sigmaMax follows Song & Ermon (2020, technique 1), about the largest pairwise distance of the
 * data: 4.0 for the standardized spiral, 4.6 for gmm1d, 4.2 for the ramp (3,000 points each); in
 * two dimensions few levels suffice (their technique 2 allows a large ratio between levels).
 */
const DSM_DEFAULTS = {
  T: 25,
  "sigma-min": 0.01,
  "sigma-max": 5,
} as const;

/**
 * `--objective dsm`'s sampler where the flags leave it: annealed Langevin over all 25 levels, 8
 * steps a level at delta = 1 (201 network calls, as many as the DDPM default's 200 ancestral
 * steps). Mean sliced-Wasserstein ratios over three sampling seeds of one 25-level model each
 * (steps a level x delta): spiral 8 x 1, 1.19; 8 x 0.7, 1.10; 12 x 0.7, 1.37; gmm1d 8 x 1, 1.94;
 * 8 x 0.7, 2.88; 12 x 0.7, 1.84; 16 x 1, 1.32 and 32 x 0.5, 1.13 (two seeds; 2 and 4 times the
 * calls). The spiral wants small steps (less bias per level), gmm1d long chains (moving mass
 * between its two modes).
 */
const DSM_SAMPLER = { sampler: "langevin", langevinSteps: 8, stepSize: 1 } as const;

/** The flags that only one objective reads. */
const OBJECTIVE_FLAGS: Record<ObjectiveKind, string[]> = {
  ddpm: ["schedule", "beta-start", "beta-end", "seed-recipe"],
  dsm: ["sigma-min", "sigma-max"],
};

/** The seed's own recipe (T = 200, beta to 0.2, batch 64, constant Adam 1e-3, sigma^2 = beta, 10^5 steps). */
const SEED_RECIPE = {
  steps: 100_000,
  batch: 64,
  lr: 1e-3,
  hidden: 256,
  layers: 3,
  T: 200,
  schedule: "linear",
  "beta-start": 1e-4,
  "beta-end": 0.2,
  "lr-schedule": "constant",
  warmup: 0,
  ema: 0,
  "train-size": 10_000,
} as const;

const HELP = `Trains a diffusion model on a toy distribution and shows what it learned.

Usage: deno run -A scripts/spiral.ts [options]

  --dist NAME          spiral (2-D, default), gmm1d or ramp (1-D)
  --objective NAME     ddpm (default: regress the noise under a schedule) or dsm (denoising score
                       matching over geometric noise levels, sampled with annealed Langevin)
  --steps N            training steps (default ${DEFAULTS.steps})
  --batch N            batch size (default ${DEFAULTS.batch})
  --lr X               peak learning rate, cosine-decayed (default ${DEFAULTS.lr})
  --lr-schedule NAME   cosine (default) or constant
  --warmup N           linear learning-rate warm-up steps (default ${DEFAULTS.warmup})
  --hidden N           MLP width (default ${DEFAULTS.hidden})
  --layers N           MLP hidden layers (default ${DEFAULTS.layers})
  --time-input NAME    scalar (the seed's t in [-0.5, 0.5], default) or sinusoidal
  --T N                diffusion steps (default ${DEFAULTS.T}); dsm: noise levels (default ${DSM_DEFAULTS.T})
  --schedule NAME      cosine (default), linear or sigmoid (ddpm only)
  --beta-start X       first beta of the linear schedule (default ${
  DEFAULTS["beta-start"]
}; ddpm only)
  --beta-end X         last beta of the linear schedule (default ${DEFAULTS["beta-end"]}; ddpm only)
  --sigma-min X        dsm: the smallest noise level (default ${DSM_DEFAULTS["sigma-min"]})
  --sigma-max X        dsm: the largest noise level, about the data's largest pairwise distance
                       (default ${DSM_DEFAULTS["sigma-max"]}, standardized units)
  --ema X              EMA decay of the weights, 0 for none (default ${DEFAULTS.ema})
${samplerHelp(DEFAULT_SAMPLER, 23, "sample-steps")}
                       dsm: --sampler ${DSM_SAMPLER.sampler} over all T levels, --langevin-steps ${DSM_SAMPLER.langevinSteps},
                       --step-size ${DSM_SAMPLER.stepSize} (x0 + sigma z coordinates, from N(0, sigma-max^2 I)); the other
                       samplers draw from a dsm model through x / sqrt(1 + sigma^2)
  --clip X             clip the sampler's x0 estimate to [-X, X] (default: off)
  --samples N          points to generate (default ${DEFAULTS.samples})
  --train-size N       training points drawn (default ${DEFAULTS["train-size"]}; the seed: 10,000)
  --seed N             seed of training and sampling (default ${DEFAULTS.seed})
  --data-seed N        seed of the training data (default ${DEFAULTS["data-seed"]})
  --backend NAME       ${BACKEND_CHOICES.join(", ")} (default auto)
  --out DIR            output folder (default ${DEFAULTS.out})
  --seed-recipe        the seed's own configuration: 10,000 training points, T=200, beta 1e-4..0.2,
                       batch 64, 3 x 256, constant lr 1e-3, sigma^2 = beta, no EMA, 100,000 steps (slow; other flags
                       given explicitly still override it; ddpm only)
  --no-eval            skip the quality figure
  -h, --help           this text

Writes DIR/samples.csv, DIR/density.png (training data | generated), DIR/forward.png (q(x_t|x_0) at
t = 1, 5, 10, 50, 100, 200 of a 200-step process, rescaled to T; dsm: x0 + sigma z drawn as
(x0 + sigma z) / sqrt(1 + sigma^2)) and DIR/model.safetensors.
Quality: sliced Wasserstein distance of the generated points to a large fresh true sample, divided
by the same distance for independent true sets of the same size (1.0 is as good as real data), and
the share of generated points off the support: farther than 0.1 (standardized units) from every
point of 100,000 fresh true points.

Permissions (beside -A), run from the repository: --allow-read=.,DIR --allow-write=DIR.`;

/** The t values of the seed's strip (of a 200-step process), mapped onto T steps. */
function stripTimes(T: number): number[] {
  const ts = [1, 5, 10, 50, 100, 200].map((t) => Math.max(1, Math.round((t * T) / 200)));
  return [...new Set(ts)];
}

async function main(args: string[]): Promise<void> {
  const { values: f } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      dist: { type: "string" },
      objective: { type: "string" },
      steps: { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      "lr-schedule": { type: "string" },
      warmup: { type: "string" },
      hidden: { type: "string" },
      layers: { type: "string" },
      "time-input": { type: "string" },
      T: { type: "string" },
      schedule: { type: "string" },
      "beta-start": { type: "string" },
      "beta-end": { type: "string" },
      "sigma-min": { type: "string" },
      "sigma-max": { type: "string" },
      ema: { type: "string" },
      ...SAMPLER_FLAG_SPECS,
      "sample-steps": { type: "string" },
      samples: { type: "string" },
      "train-size": { type: "string" },
      clip: { type: "string" },
      seed: { type: "string" },
      "data-seed": { type: "string" },
      backend: { type: "string" },
      out: { type: "string" },
      "seed-recipe": { type: "boolean" },
      "no-eval": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  const objective = (f.objective ?? "ddpm") as ObjectiveKind;
  checkChoice("--objective", objective, OBJECTIVES);
  for (const [owner, flags] of Object.entries(OBJECTIVE_FLAGS)) {
    if (owner === objective) continue;
    for (const flag of flags) {
      if ((f as Record<string, unknown>)[flag] !== undefined) {
        throw new OptionError(
          `--${flag} applies only to --objective ${owner} (the objective is ${objective})`,
        );
      }
    }
  }
  const dsm = objective === "dsm";
  const base: Record<string, string | number> = { ...DEFAULTS, "lr-schedule": "cosine" };
  if (dsm) Object.assign(base, DSM_DEFAULTS);
  if (f["seed-recipe"]) Object.assign(base, SEED_RECIPE);
  const str = (k: string) => String((f as Record<string, unknown>)[k] ?? base[k]);
  const n = (k: string) => {
    const v = (f as Record<string, unknown>)[k];
    return typeof v === "string" ? numberFlag(k, v) : Number(base[k]);
  };

  const dist = str("dist") as ToyDistribution;
  checkChoice("--dist", dist, TOY_DISTRIBUTIONS);
  const steps = n("steps"),
    batch = n("batch"),
    lr = n("lr"),
    hidden = n("hidden"),
    layers = n("layers");
  const T = n("T"),
    ema = n("ema"),
    count = n("samples"),
    seed = n("seed"),
    dataSeed = n("data-seed");
  const trainSize = n("train-size"), warmup = n("warmup");
  const dim = toyDim(dist);
  checkInt("--warmup", warmup, 0);
  checkSize("--train-size", trainSize, 1, 10_000_000, (v) => v * dim * 8);
  const clipFlag = (f as Record<string, unknown>).clip;
  const clip = typeof clipFlag === "string" ? numberFlag("clip", clipFlag) : null;
  if (clip !== null) checkNumber("--clip", clip, { gt: 0 });
  checkSize("--steps", steps, 1, 1e9);
  checkSize("--hidden", hidden, 1, MAX_WIDTH, (v) => v * v * layers * 20);
  checkSize("--layers", layers, 1, MAX_DEPTH, (v) => hidden * hidden * v * 20);
  // A training step keeps about four activations of every layer for each sample.
  checkSize("--batch", batch, 1, 65_536, (v) => v * hidden * layers * 16);
  checkNumber("--lr", lr, { gt: 0 });
  checkSize("--T", T, 2, MAX_T, (v) => v * 8 * 12);
  checkNumber("--ema", ema, { ge: 0, lt: 1 });
  checkSize("--samples", count, 2, 1_000_000, (v) => v * (dim * 12 + hidden * 16));
  checkInt("--seed", seed, 0);
  checkInt("--data-seed", dataSeed, 0);
  const lrSchedule = str("lr-schedule") as "cosine" | "constant";
  checkChoice("--lr-schedule", lrSchedule, ["cosine", "constant"] as const);
  const timeInput = str("time-input") as "scalar" | "sinusoidal";
  checkChoice("--time-input", timeInput, ["scalar", "sinusoidal"] as const);
  const backend = str("backend") as BackendChoice & string;
  checkChoice("--backend", backend, BACKEND_CHOICES);
  const kind = dsm ? "ve" : str("schedule");
  if (!dsm) checkChoice("--schedule", kind, ["cosine", "linear", "sigmoid"] as const);
  let schedule: ScheduleConfig;
  if (dsm) {
    const sigmaMin = n("sigma-min"), sigmaMax = n("sigma-max");
    checkNumber("--sigma-min", sigmaMin, { gt: 0 });
    if (!(Number.isFinite(sigmaMax) && sigmaMax > sigmaMin)) {
      throw new OptionError(
        `--sigma-max must be a finite number above --sigma-min ${sigmaMin}, got ${sigmaMax}`,
      );
    }
    schedule = { kind: "ve", T, sigmaMin, sigmaMax };
  } else if (kind === "linear") {
    const betaStart = n("beta-start"), betaEnd = n("beta-end");
    checkNumber("--beta-start", betaStart, { gt: 0, lt: 1 });
    checkNumber("--beta-end", betaEnd, { gt: 0, lt: 1 });
    schedule = { kind: "linear", T, betaStart, betaEnd };
  } else {
    for (const flag of ["beta-start", "beta-end"]) {
      if ((f as Record<string, unknown>)[flag] !== undefined) {
        throw new OptionError(
          `--${flag} applies only to --schedule linear (the schedule is ${kind})`,
        );
      }
    }
    schedule = { kind: kind as "cosine" | "sigmoid", T };
  }
  // The ancestral sampler runs all T steps unless told otherwise (the others their own defaults);
  // a dsm model's annealed Langevin visits all T levels.
  const defaultSampler: SamplerKind = dsm ? DSM_SAMPLER.sampler : DEFAULT_SAMPLER;
  const allSteps: SamplerKind = dsm ? "langevin" : "ddpm";
  const sampleSteps = f["sample-steps"] ??
    ((f.sampler ?? defaultSampler) === allSteps ? String(T) : undefined);
  const sampling = samplerFromFlags(
    f as SamplerFlagValues,
    T,
    { text: sampleSteps, flag: "sample-steps" },
    defaultSampler,
  );
  // The seed's recipe keeps its sigma^2 = beta_t; the demo's default is the posterior variance.
  if (sampling.sampler === "ddpm" && f["seed-recipe"]) sampling.options.variance ??= "beta";
  if (dsm && sampling.sampler === "langevin") {
    sampling.options.langevinSteps ??= DSM_SAMPLER.langevinSteps;
    sampling.options.stepSize ??= DSM_SAMPLER.stepSize;
  }
  const out = outFlag(str("out"), "out/spiral");

  const started = performance.now();
  const raw = sampleToy(dist, trainSize, new Random(dataSeed, 0));
  const { data, stats } = standardize(raw.data, dim);
  await prepareOutDir(out);

  info(
    `${dist}: ${trainSize} training points; MLP ${layers}x${hidden}, ${
      schedule.kind === "ve"
        ? `dsm over ${T} noise levels ${schedule.sigmaMin}..${schedule.sigmaMax}`
        : `${kind} schedule T=${T}`
    }, ` +
      `${steps} steps of batch ${batch}, lr ${lr} (${lrSchedule}), EMA ${ema || "off"}`,
  );
  const bar = progressBar({ total: steps, label: "train" });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let model;
  try {
    model = await train({
      data: { values: data, shape: [trainSize, dim] },
      network: { hidden, layers, timeInput },
      objective,
      schedule,
      steps,
      batchSize: batch,
      lr,
      lrSchedule,
      warmupSteps: warmup,
      emaDecay: ema > 0 ? ema : null,
      seed,
      backend,
      progressEvery: 50,
      signal: abort.signal,
      onBackend: (reason) => info(reason),
      onProgress: (p) => bar.update(p.step, { loss: p.loss, stepsPerSecond: p.stepsPerSecond }),
    });
  } finally {
    bar.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  const trainedAt = performance.now();
  // The model is saved before sampling: a failure or Ctrl-C later keeps the training.
  await saveModel(model, `${out}/model.safetensors`);
  if (abort.signal.aborted) {
    console.log(
      `stopped by Ctrl-C after ${model.stepsTrained} steps; wrote ${out}/model.safetensors`,
    );
    model.backend.dispose();
    Deno.exit(130);
  }
  // Ctrl-C while sampling: the model is on disk, every other file is written whole or not at all.
  const interrupted = () => {
    console.log(`\nstopped by Ctrl-C while sampling; kept ${out}/model.safetensors`);
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);

  const sbar = progressBar({ total: sampling.steps, label: "sample" });
  const gen = await sample(model, {
    ...sampling.options,
    count,
    steps: sampling.steps,
    sampler: sampling.sampler,
    // At most 100,000 points at once (the samples do not depend on the batch size).
    batchSize: Math.min(count, 100_000),
    clip,
    seed: seed + 1,
    onProgress: (p) => sbar.update(p.step),
  });
  sbar.stop();
  const sampledAt = performance.now();

  // Files: CSV of generated points (in the data's raw coordinates), the pictures, the model.
  const rawGen = invertStandardization(gen.values, dim, stats);
  const header = dim === 2 ? "x,y" : "x";
  const rows = [header];
  for (let i = 0; i < count; i++) {
    rows.push(Array.from(rawGen.subarray(i * dim, (i + 1) * dim)).join(","));
  }
  await writeTextFileAtomic(`${out}/samples.csv`, rows.join("\n") + "\n");
  const shown = data.subarray(0, Math.min(data.length, count * dim));
  await writePngAtomic(`${out}/density.png`, forwardStrip([shown, gen.values], dim, { size: 320 }));
  const sched = makeSchedule(schedule), noise = new Random(seed, 9);
  const strip = stripTimes(T).map((t) => {
    const a = sched.sqrtAlphasCumprod[t - 1], s = sched.sqrtOneMinusAlphasCumprod[t - 1];
    const e = noise.normals(shown.length);
    return shown.map((x, i) => a * x + s * e[i]);
  });
  await writePngAtomic(`${out}/forward.png`, stack([forwardStrip(strip, dim, { size: 160 })]));
  Deno.removeSignalListener("SIGINT", interrupted);
  console.log(`wrote ${out}/samples.csv, density.png, forward.png, model.safetensors`);

  if (!f["no-eval"]) {
    const truth = new Random(dataSeed + 1000, 0);
    const q = qualityRatio(
      gen.values,
      dim,
      (m) => applyStandardization(sampleToy(dist, m, truth).data, dim, stats),
    );
    console.log(
      `quality ratio ${q.ratio.toFixed(3)}  (sliced Wasserstein ${q.distance.toFixed(4)} ` +
        `vs true-sample floor ${q.floor.toFixed(4)} ± ${
          q.floorStd.toFixed(4)
        }; 1.0 = as good as real data)`,
    );
    const dense = applyStandardization(sampleToy(dist, 100_000, truth).data, dim, stats);
    const off = offSupportFraction(gen.values, dense, dim as 1 | 2);
    console.log(
      `off the support: ${(100 * off).toFixed(2)}% of generated points farther than 0.1 ` +
        `(standardized) from 100,000 true points`,
    );
  }
  model.backend.dispose();
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const rate = (model.stepsTrained * 1000) / (trainedAt - started);
  console.log(
    `wall time ${s(performance.now() - started)} s (training ${s(trainedAt - started)} s at ` +
      `${rate.toFixed(1)} steps/s, sampling ${s(sampledAt - trainedAt)} s)`,
  );
}

if (import.meta.main) await runMain(main);

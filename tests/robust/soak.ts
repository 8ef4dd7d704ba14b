/**
 * A soak run: trains the 2-D spiral through the public API, round after round, until the time is
 * up, and watches the process's memory for growth. Each round resumes the same model for 2,000
 * more steps at a constant learning rate on a wasm backend of the given thread count, samples
 * 2,000 points, saves the model to a temporary folder and loads it back on a fresh wasm backend
 * (checked bit for bit against the trained weights, then disposed). Every 10 seconds it records
 * the resident set size (RSS) and the V8 heap in use.
 *
 * At the end it prints the minutes elapsed, RSS and heap at minute 1, at the end and their
 * maxima, and the least-squares slope of each after minute 1 (MB per minute: near 0 when nothing
 * leaks), with the rounds done and steps trained; `--json FILE` also writes these figures and the
 * raw samples.
 *
 *   deno run -A tests/robust/soak.ts [--minutes 30] [--threads 1] [--json FILE]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type DiffusionModel,
  loadModel,
  OptionError,
  sample,
  saveModel,
  train,
} from "../../mod.ts";
import { Random, sampleToy, standardize } from "../../data.ts";
import { writeTextFileAtomic } from "../../io.ts";
import { createWasmBackend } from "../../wasm/mod.ts";
import { numberFlag, runMain } from "../../scripts/cli.ts";

const HELP = `Trains the spiral in rounds until the time is up and reports the memory's growth.

Usage: deno run -A tests/robust/soak.ts [options]

  --minutes X    how long to run (default 30; rounds already started finish)
  --threads N    wasm backend threads (default 1)
  --json FILE    also write the figures and the raw memory samples as JSON
  -h, --help     this text`;

/** Steps trained, and points sampled, per round. */
const ROUND_STEPS = 2_000;
const SAMPLE_COUNT = 2_000;
/** Seconds between memory samples. */
const SAMPLE_EVERY_S = 10;
/** The slope after minute 1 is given when the samples after minute 1 span at least this. */
const MIN_SLOPE_SPAN_MINUTES = 1;
/** Training points of the spiral. */
const TRAIN_SIZE = 100_000;

/** One memory sample. */
interface MemorySample {
  /** Seconds since the start. */
  seconds: number;
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
}

/** Figures of one measure (megabytes; the slope in megabytes per minute). */
interface Figures {
  atMinute1: number | null;
  end: number;
  max: number;
  slopePerMinute: number | null;
  /** The slope over the second half of the run, after the allocators' warm-up. */
  secondHalfSlope: number | null;
}

const MB = 1024 * 1024;

/** The least-squares slope of y over x; null when the x span less than `minSpan`. */
function slope(xs: number[], ys: number[], minSpan: number): number | null {
  const n = xs.length;
  if (n < 2 || xs[n - 1] - xs[0] < minSpan) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxx === 0 ? null : sxy / sxx;
}

/** The figures of one measure over the samples. */
function figures(samples: MemorySample[], pick: (s: MemorySample) => number): Figures {
  const values = samples.map((s) => pick(s) / MB);
  const first = samples.findIndex((s) => s.seconds >= 60);
  const after = first < 0 ? [] : samples.slice(first);
  const half = samples.filter((s) => s.seconds >= samples.at(-1)!.seconds / 2);
  return {
    atMinute1: first < 0 ? null : values[first],
    end: values.at(-1)!,
    max: Math.max(...values),
    slopePerMinute: slope(
      after.map((s) => s.seconds / 60),
      after.map((s) => pick(s) / MB),
      MIN_SLOPE_SPAN_MINUTES,
    ),
    secondHalfSlope: slope(
      half.map((s) => s.seconds / 60),
      half.map((s) => pick(s) / MB),
      MIN_SLOPE_SPAN_MINUTES,
    ),
  };
}

function parseFlags(args: string[]): { minutes: number; threads: number; json?: string } | null {
  const { values: f } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      minutes: { type: "string" },
      threads: { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (f.help) return null;
  const minutes = f.minutes === undefined ? 30 : numberFlag("minutes", f.minutes);
  if (!(minutes > 0)) throw new OptionError(`--minutes must be above 0, got ${f.minutes}`);
  const threads = f.threads === undefined ? 1 : numberFlag("threads", f.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new OptionError(`--threads must be an integer from 1 to 64, got ${f.threads}`);
  }
  if (f.json !== undefined && f.json.trim() === "") {
    throw new OptionError("--json must name a file, got an empty path");
  }
  return { minutes, threads, json: f.json };
}

/** Throws unless the two weight maps are equal bit for bit. */
function assertSameWeights(
  got: Map<string, Float32Array>,
  want: Map<string, Float32Array>,
  what: string,
): void {
  const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (const [name, w] of want) {
    const g = got.get(name);
    const x = g && bits(g), y = bits(w);
    const same = x !== undefined && x.length === y.length && x.every((b, i) => b === y[i]);
    if (!same) throw new Error(`${what}: ${name} differs from the trained model after a reload`);
  }
}

async function main(args: string[]): Promise<void> {
  const flags = parseFlags(args);
  if (flags === null) {
    console.log(HELP);
    return;
  }
  const { minutes, threads, json } = flags;

  const start = performance.now();
  const elapsedS = () => (performance.now() - start) / 1000;
  const samples: MemorySample[] = [];
  const record = () => {
    const m = Deno.memoryUsage();
    samples.push({ seconds: elapsedS(), rss: m.rss, heapUsed: m.heapUsed });
  };
  const maybeRecord = () => {
    if (elapsedS() - samples.at(-1)!.seconds >= SAMPLE_EVERY_S) record();
  };
  record();

  const { data } = standardize(sampleToy("spiral", TRAIN_SIZE, new Random(1, 0)).data, 2);
  const backend = await createWasmBackend({ threads });
  const folder = await Deno.makeTempDir({ prefix: "soak_" });
  const path = `${folder}/model.safetensors`;
  let model: DiffusionModel | undefined;
  let rounds = 0;
  try {
    while (elapsedS() < minutes * 60) {
      model = await train({
        data: { values: data, shape: [TRAIN_SIZE, 2] },
        network: { hidden: 96, layers: 4 },
        schedule: { kind: "cosine", T: 200 },
        steps: (model?.stepsTrained ?? 0) + ROUND_STEPS,
        batchSize: 256,
        lr: 1e-3,
        lrSchedule: "constant",
        emaDecay: 0.999,
        backend,
        resume: model,
        progressEvery: 100,
        onProgress: maybeRecord,
      });
      maybeRecord();
      const points = await sample(model, { count: SAMPLE_COUNT, seed: rounds });
      if (!points.values.every(Number.isFinite)) {
        throw new Error(`round ${rounds + 1}: the samples are not all finite`);
      }
      maybeRecord();
      await saveModel(model, path);
      const loadBackend = await createWasmBackend({ threads });
      try {
        const loaded = await loadModel(path, loadBackend);
        if (loaded.stepsTrained !== model.stepsTrained) {
          throw new Error(
            `round ${
              rounds + 1
            }: reloaded at step ${loaded.stepsTrained}, not ${model.stepsTrained}`,
          );
        }
        for (const which of ["raw", "ema"] as const) {
          assertSameWeights(
            await loaded.weights(which),
            await model.weights(which),
            `round ${rounds + 1}`,
          );
        }
      } finally {
        loadBackend.dispose();
      }
      rounds++;
      maybeRecord();
    }
  } finally {
    backend.dispose();
    await Deno.remove(folder, { recursive: true }).catch(() => {});
  }
  record();

  const elapsedMinutes = elapsedS() / 60;
  const rss = figures(samples, (s) => s.rss), heap = figures(samples, (s) => s.heapUsed);
  const steps = model?.stepsTrained ?? 0;
  const mb = (v: number | null) => (v === null ? "n/a" : v.toFixed(1));
  const perMinute = (v: number | null) =>
    v === null ? "n/a" : `${v >= 0 ? "+" : ""}${v.toFixed(2)}`;
  console.log(
    [
      `minutes elapsed        ${elapsedMinutes.toFixed(2)} (${threads} thread${
        threads > 1 ? "s" : ""
      })`,
      `rounds / steps         ${rounds} / ${steps}`,
      `                       RSS MB      heap used MB`,
      `at minute 1            ${mb(rss.atMinute1).padEnd(12)}${mb(heap.atMinute1)}`,
      `at the end             ${mb(rss.end).padEnd(12)}${mb(heap.end)}`,
      `maximum                ${mb(rss.max).padEnd(12)}${mb(heap.max)}`,
      `slope after minute 1   ${perMinute(rss.slopePerMinute).padEnd(12)}${
        perMinute(heap.slopePerMinute)
      }  (MB per minute)`,
      `slope, second half     ${perMinute(rss.secondHalfSlope).padEnd(12)}${
        perMinute(heap.secondHalfSlope)
      }  (MB per minute)`,
    ].join("\n"),
  );
  if (rss.slopePerMinute === null) {
    console.log(
      `(no slope: the samples after minute 1 must span ${MIN_SLOPE_SPAN_MINUTES} minute; run longer)`,
    );
  }
  if (json !== undefined) {
    const report = {
      minutes: elapsedMinutes,
      threads,
      rounds,
      steps,
      rssMB: rss,
      heapUsedMB: heap,
      samples,
    };
    await writeTextFileAtomic(json, JSON.stringify(report, null, 2) + "\n");
  }
}

if (import.meta.main) await runMain(() => main(Deno.args));

/**
 * The browser demo's training run, shared by the page's worker (web/worker.js) and anything that
 * wants to replay it (it takes the library as an argument, so it runs on the bundle in a browser
 * and in Deno alike): the spiral of scripts/spiral.ts, trained with that script's settings, a
 * preview of samples every few hundred steps, and at the end the quality figure: the share of
 * generated points farther than 0.1 (standardized units) from every point of 100,000 true ones.
 *
 * @module
 */

/** The run's settings; the page's query string may change `steps`, `seed` and `backend`. */
export const DEMO = Object.freeze({
  steps: 4000,
  batch: 256,
  lr: 7e-3,
  warmup: 200,
  hidden: 96,
  layers: 4,
  T: 200,
  ema: 0.999,
  trainSize: 100_000,
  seed: 0,
  dataSeed: 1,
  backend: "auto",
  /** A preview of samples every this many steps. */
  previewEvery: 500,
  /** Points in a preview (drawn with a fast sampler: DPM-Solver++(2M), 20 steps). */
  previewCount: 1000,
  /** Points in the final sample (the ancestral sampler over all T steps, as scripts/spiral.ts). */
  finalCount: 2000,
  /** True points the final figure compares with. */
  densePoints: 100_000,
});

/**
 * @typedef {object} DemoEvent One message of the run: `backend` (which backend and why), `progress`
 *   (step, loss, steps/s), `data` (training points), `samples` (generated points, `final` for the
 *   last; all in standardized units), `done` (the figure).
 * @property {"backend" | "progress" | "data" | "samples" | "done"} type
 */

/**
 * Trains the spiral with the library `lib` (the bundle's exports), reporting through `emit`;
 * `signal` stops training early (the final sample and figure still come).
 *
 * @param {Record<string, any>} lib the library: web/dist/diffusion.js's exports
 * @param {Partial<typeof DEMO>} params settings that differ from {@link DEMO}
 * @param {(event: DemoEvent & Record<string, unknown>) => void} emit receives every event
 * @param {AbortSignal} [signal] stops the training
 * @returns {Promise<{ offSupport: number, steps: number }>} the figure and the steps trained
 */
export async function runDemo(lib, params, emit, signal) {
  const p = { ...DEMO, ...params };
  const started = performance.now();
  const raw = lib.sampleToy("spiral", p.trainSize, new lib.Random(p.dataSeed, 0));
  const { data, stats } = lib.standardize(raw.data, 2);
  emit({ type: "data", points: data.slice(0, 2 * p.previewCount) });
  const preview = async (model, final) => {
    const out = await lib.sample(model, {
      count: final ? p.finalCount : p.previewCount,
      seed: p.seed + 1,
      ...(final ? { sampler: "ddpm", steps: p.T } : { sampler: "dpm++2m", steps: 20 }),
    });
    emit({ type: "samples", step: model.stepsTrained, final, points: out.values });
    return out.values;
  };
  const model = await lib.train({
    data: { values: data, shape: [p.trainSize, 2] },
    network: { hidden: p.hidden, layers: p.layers },
    schedule: { kind: "cosine", T: p.T },
    steps: p.steps,
    batchSize: p.batch,
    lr: p.lr,
    lrSchedule: "cosine",
    warmupSteps: p.warmup,
    emaDecay: p.ema,
    seed: p.seed,
    backend: p.backend,
    progressEvery: 50,
    signal,
    checkpointEvery: p.previewEvery,
    onBackend: (reason) => emit({ type: "backend", reason }),
    onProgress: (q) => emit({ type: "progress", ...q }),
    // The preview is drawn between steps: the run trains the same as without it.
    onCheckpoint: async (m) => {
      if (m.stepsTrained < p.steps && !signal?.aborted) await preview(m, false);
    },
  });
  const backend = model.backend;
  emit({
    type: "backend",
    name: backend.name,
    threads: backend.threads ?? null,
    relaxedSimd: backend.relaxedSimd,
  });
  const trainedAt = performance.now();
  const points = await preview(model, true);
  const truth = lib.sampleToy("spiral", p.densePoints, new lib.Random(p.dataSeed + 1000, 0));
  const dense = lib.applyStandardization(truth.data, 2, stats);
  const offSupport = lib.offSupportFraction(points, dense, 2);
  const steps = model.stepsTrained;
  backend.dispose();
  emit({
    type: "done",
    offSupport,
    steps,
    trainSeconds: (trainedAt - started) / 1000,
    seconds: (performance.now() - started) / 1000,
  });
  return { offSupport, steps };
}

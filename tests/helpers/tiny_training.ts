/**
 * What the resume and timestep-sampler tests share: a tiny 2-D dataset, quick training options on
 * the reference backend, and training stopped part way as Ctrl-C would stop it.
 *
 * @module
 */

import type { DiffusionModel } from "../../src/model.ts";
import { Random } from "../../src/random.ts";
import { type Dataset, train, type TrainOptions } from "../../src/train.ts";

/** 200 seeded 2-D points around (0, 1). */
export function tinyPoints(): Dataset {
  const r = new Random(3), v = Float32Array.from(r.normals(400), (x, i) => x * 0.5 + (i % 2));
  return { values: v, shape: [200, 2] };
}

/** 40 steps of a small MLP on {@link tinyPoints}, seeded, on the reference backend. */
export const TINY_TRAINING: TrainOptions = {
  data: tinyPoints(),
  steps: 40,
  batchSize: 16,
  lr: 3e-3,
  network: { hidden: 16 },
  schedule: { kind: "cosine", T: 20 },
  progressEvery: 10,
  backend: "reference",
  seed: 4,
};

/**
 * Trains with `options` and stops through its abort signal once step `at` is reported (progress
 * is reported every `progressEvery` steps): the model as it stands then.
 */
export function trainStoppedAt(options: TrainOptions, at: number): Promise<DiffusionModel> {
  const ctl = new AbortController();
  return train({
    ...options,
    signal: ctl.signal,
    onProgress: (p) => {
      if (p.step === at) ctl.abort();
    },
  });
}

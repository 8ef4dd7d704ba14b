/**
 * What the conditioning, guidance and editing tests share: two labelled 1-D clusters (class 0 at
 * -1.5, class 1 at +1.5, each of standard deviation 0.3) and a small class-conditional MLP trained
 * on them once per test file, on the reference backend.
 *
 * @module
 */

import { type DiffusionModel, train, type TrainOptions } from "../../mod.ts";
import { Random } from "../../data.ts";

/** The centre of class c's cluster. */
export const CENTRES = [-1.5, 1.5] as const;

/** 1,000 points, alternating class 0 and class 1. */
export function twoClusters(): { values: Float32Array; labels: Int32Array } {
  const n = 1000, z = new Random(3).normals(n);
  const values = new Float32Array(n), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    values[i] = CENTRES[i % 2] + 0.3 * z[i];
  }
  return { values, labels };
}

/** Training options of the shared conditional model (`steps` overridable, e.g. for resume). */
export function conditionalTraining(steps = 800): TrainOptions {
  const { values, labels } = twoClusters();
  return {
    data: { values, shape: [values.length, 1], labels },
    network: { hidden: 48, layers: 2 },
    schedule: { kind: "linear", T: 40, betaStart: 1e-3, betaEnd: 0.2 },
    steps,
    batchSize: 64,
    lr: 4e-3,
    seed: 2,
    backend: "reference",
    progressEvery: 100,
  };
}

let shared: Promise<DiffusionModel> | null = null;

/** The shared conditional model, trained on first use. */
export function conditionalModel(): Promise<DiffusionModel> {
  shared ??= train(conditionalTraining());
  return shared;
}

/** Mean and standard deviation of values. */
export function moments(v: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < v.length; i++) m += v[i];
  m /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(s / v.length) };
}

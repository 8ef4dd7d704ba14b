/**
 * The three figures eval_mnist.ts and compare_samplers.ts report for a set of MNIST images, from the
 * classifier's output: the share classified with max probability > 0.9, the class histogram, and
 * the Fréchet distance of the classifier's features against the MNIST test set.
 *
 * @module
 */

import type { BackendChoice } from "../mod.ts";
import { loadMnist } from "../data.ts";
import {
  argmaxRows,
  type Classifier,
  classify,
  featureStats,
  frechetDistance,
  type GaussianStats,
  loadClassifier,
} from "../metrics.ts";

/** The three figures for a set of images. */
export interface Figures {
  label: string;
  confident: number;
  histogram: number[];
  frechet: number;
}

/** The figures of images whose classifier output is `probabilities` and `features`. */
export function figures(
  label: string,
  probabilities: Float32Array,
  features: Float32Array,
  reference: GaussianStats,
): Figures {
  const n = probabilities.length / 10, pred = argmaxRows(probabilities, 10);
  let confident = 0;
  const counts = new Array(10).fill(0);
  for (let i = 0; i < n; i++) {
    if (probabilities[i * 10 + pred[i]] > 0.9) confident++;
    counts[pred[i]]++;
  }
  return {
    label,
    confident: confident / n,
    histogram: counts.map((c) => (100 * c) / n),
    frechet: frechetDistance(featureStats(features, reference.dim), reference),
  };
}

/** The figures as an aligned text table, one row a set of images. */
export function table(rows: Figures[]): string {
  const w = Math.max(...rows.map((r) => r.label.length), 6);
  const digits = Array.from({ length: 10 }, (_, d) => String(d).padStart(5)).join("");
  const head = `${"".padEnd(w)}  conf>0.9  ${"Fréchet".padStart(9)} |${digits}  (% per class)`;
  const lines = rows.map((r) =>
    `${r.label.padEnd(w)}  ${(100 * r.confident).toFixed(1).padStart(7)}%  ${
      r.frechet.toFixed(3).padStart(9)
    } |${r.histogram.map((h) => h.toFixed(1).padStart(5)).join("")}`
  );
  return [head, ...lines].join("\n");
}

/** The judge of a set of MNIST images: the classifier and the Gaussian of its test-set features. */
export interface MnistJudge {
  /** The classifier eval_mnist.ts trained. */
  classifier: Classifier;
  /** Mean and covariance of its features over the 10,000 test digits (the Fréchet reference). */
  reference: GaussianStats;
}

/** Loads the classifier at `path` and its feature statistics over the MNIST test set. */
export async function loadMnistJudge(
  path: string,
  data: string | undefined,
  backend: BackendChoice,
): Promise<MnistJudge> {
  const classifier = (await loadClassifier(path, backend)).model;
  const test = await loadMnist({ split: "test", dir: data });
  const ref = await classify(classifier, test.images);
  return { classifier, reference: featureStats(ref.features, classifier.config.features) };
}

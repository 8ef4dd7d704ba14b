/**
 * The random-fill kernels: uniforms, normals and integers from the counter-based generator, the
 * same values on every backend (src/random.ts defines them).
 *
 * @module
 */

import type { Storage } from "./memory.ts";

/** Where a random fill draws from (see src/random.ts for the exact definition). */
export interface RandomDraw {
  /** The seed, an integer in [0, 2^53). */
  seed: number;
  /** Stream under the seed. */
  stream: number;
  /** First Philox block. */
  counter: number;
}

/** Random fills. */
export interface RandomOps {
  /** Fills `out` with uniforms in [0, 1), in place. */
  randomUniform(out: Storage, draw: RandomDraw): void;
  /** Fills `out` with standard normals, in place. */
  randomNormal(out: Storage, draw: RandomDraw): void;
  /** Fills `out` with integers in [lo, hi) stored as floats, in place. */
  randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void;
}

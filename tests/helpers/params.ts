/**
 * Parameter helpers shared by the network tests: a parameter store over given values, and uniform
 * draws in a range.
 */

import type { Backend } from "../../src/backend.ts";
import { type ParamLayout, ParamStore } from "../../src/nn/params.ts";
import type { Random } from "../../src/random.ts";

/** A store over `values` on `be` (with a gradient buffer when `grads`), as DiffusionModel builds. */
export function storeOf(
  be: Backend,
  layout: ParamLayout,
  values: ArrayLike<number>,
  grads = false,
): ParamStore {
  return new ParamStore(be, layout, be.upload(values), grads ? be.alloc(layout.length) : null);
}

/** `n` draws uniform in [lo, hi) from `rng`. */
export function uniformArray(rng: Random, n: number, lo: number, hi: number): Float64Array {
  const u = rng.uniforms(n);
  for (let i = 0; i < n; i++) u[i] = lo + (hi - lo) * u[i];
  return u;
}

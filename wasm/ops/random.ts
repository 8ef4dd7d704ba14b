/**
 * The wasm backend's random fills: uniform, normal and integer draws from the counter-based
 * generator keyed by the draw's seed, so a fill's values do not depend on how it is split over
 * threads.
 *
 * @module
 */

import type { RandomDraw, RandomOps, Storage } from "../../src/backend.ts";
import { seedKey } from "../../src/random.ts";
import type { WasmRuntime } from "../runtime.ts";

/** The wasm backend's random fills over runtime `rt`. */
export function randomOps(rt: WasmRuntime): RandomOps {
  return {
    randomUniform(out: Storage, draw: RandomDraw): void {
      const o = rt.s(out), [k0, k1] = seedKey(draw.seed);
      rt.each(
        "randomUniform",
        o.length,
        (b, e) => [o.ptr, o.length, draw.counter, draw.stream, k0, k1, b, e],
      );
    },

    randomNormal(out: Storage, draw: RandomDraw): void {
      const o = rt.s(out), [k0, k1] = seedKey(draw.seed);
      // Split from rt.minDraws values (each is dear); each value depends on its index alone, so
      // the bits do not depend on the split.
      rt.par(
        "randomNormal",
        o.length,
        16,
        rt.minDraws,
        (b, e) => [o.ptr, o.length, draw.counter, draw.stream, k0, k1, b, e],
      );
    },

    randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void {
      const o = rt.s(out), [k0, k1] = seedKey(draw.seed);
      rt.each(
        "randomInt",
        o.length,
        (b, e) => [o.ptr, o.length, draw.counter, draw.stream, k0, k1, lo, hi, b, e],
      );
    },
  };
}

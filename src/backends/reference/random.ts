/**
 * The reference backend's random fills, straight from src/random.ts.
 *
 * @module
 */

import type { RandomDraw, RandomOps, Storage } from "../../backend.ts";
import { fillNormal, fillUniform, uniformToInt } from "../../random.ts";
import { arr } from "./memory.ts";

/** The reference backend's random fills. */
export function randomOps(): RandomOps {
  return {
    randomUniform(out: Storage, draw: RandomDraw): void {
      fillUniform(arr(out), draw);
    },

    randomNormal(out: Storage, draw: RandomDraw): void {
      fillNormal(arr(out), draw);
    },

    randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void {
      const o = arr(out), u = new Float64Array(o.length);
      fillUniform(u, draw);
      for (let i = 0; i < o.length; i++) o[i] = uniformToInt(u[i], lo, hi);
    },
  };
}

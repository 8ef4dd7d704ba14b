/**
 * The `webgpu` backend's random fills: Philox-4x32-10 draws that reproduce src/random.ts, a
 * thread per block of four lanes.
 *
 * @module
 */

import type { RandomDraw, RandomOps, Storage } from "../../src/backend.ts";
import { seedKey } from "../../src/random.ts";
import { LANES, randomKernel, type RandomKind } from "../kernels/random.ts";
import type { GpuRuntime } from "../runtime.ts";
import { linearGrid } from "../wgsl.ts";

/** The `webgpu` backend's random fills on `rt`. */
export function randomOps(rt: GpuRuntime): RandomOps {
  const random = (
    kind: RandomKind,
    out: Storage,
    draw: RandomDraw,
    lo: number,
    range: number,
  ): void => {
    const O = rt.storage(out);
    const [k0, k1] = seedKey(draw.seed);
    if (!Number.isSafeInteger(draw.counter) || draw.counter < 0) {
      throw new RangeError(`random counter must be a non-negative integer, got ${draw.counter}`);
    }
    if (O.length === 0) return;
    const blocks = Math.ceil(O.length / LANES);
    rt.run(randomKernel(kind), [O], [
      blocks,
      O.length,
      draw.counter >>> 0,
      Math.floor(draw.counter / 4294967296) >>> 0,
      draw.stream >>> 0,
      k0,
      k1,
      lo,
      range,
    ], linearGrid(blocks));
  };

  return {
    randomUniform(out: Storage, draw: RandomDraw): void {
      random("uniform", out, draw, 0, 1);
    },

    randomNormal(out: Storage, draw: RandomDraw): void {
      random("normal", out, draw, 0, 1);
    },

    randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void {
      if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo || hi - lo > 2 ** 24) {
        throw new RangeError(
          `randomInt: need integers lo < hi with hi - lo <= 2^24, got [${lo}, ${hi})`,
        );
      }
      random("int", out, draw, lo, hi - lo);
    },
  };
}

/**
 * Dropout inside a network: hands out one random draw per dropout site of a forward pass, in the
 * order the sites run, so a training step's masks are fixed by (seed, step, site).
 *
 * @module
 */

import type { RandomDraw } from "../backend.ts";
import { dropout } from "../ops/dropout.ts";
import type { Tensor } from "../tensor.ts";

/** Applies dropout to a tensor at the next site of a forward pass. */
export type DropoutFn = (x: Tensor) => Tensor;

/**
 * A dropout function for one forward pass: its k-th call drops with probability `p` using
 * `draw(k, x.size)`.
 */
export function dropoutSites(
  p: number,
  draw: (site: number, size: number) => RandomDraw,
): DropoutFn {
  let site = 0;
  return (x) => dropout(x, p, draw(site++, x.size));
}

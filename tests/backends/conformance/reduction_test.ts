/**
 * Conformance of the reduction kernels on every backend: `reduceSum` over every pattern of summed
 * axes, short and long sums (long ones in several chunks, the last one short), `sumSquares` over
 * several storages (none included), and `permute` (the UNet's patch shuffles among them), which
 * must move values exactly.
 */

import assert from "node:assert/strict";
import { conformance } from "./harness.ts";

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

conformance("reduction: reduceSum over every axis pattern, long sums in chunks", async (c) => {
  const { be, ref, data } = c;
  const cases: [number[], number[]][] = [
    [[9], [9]],
    [[1000], [1]],
    [[7, 5], [1, 1]],
    [[6, 5], [6, 5]],
    [[64, 256], [1, 256]],
    [[64, 256], [64, 1]],
    [[300, 3], [1, 3]],
    [[4100, 3], [4100, 1]],
    [[9000, 2], [1, 1]], // one sum of 18,000: 4 chunks
    [[3, 4, 5], [1, 4, 1]],
    [[3, 4, 5], [3, 1, 5]],
    [[5, 1, 3], [1, 1, 3]],
    [[1, 9, 1], [1, 1, 1]],
    [[5, 7, 9], [1, 7, 1]],
    [[5, 7, 9], [5, 1, 9]],
    [[5, 7, 9], [1, 1, 1]],
    [[3, 4100, 2], [1, 4100, 1]],
    [[2, 3, 4, 5], [2, 1, 1, 5]],
    [[2, 3, 4, 5], [1, 3, 4, 1]],
    [[2, 3, 4, 5], [2, 1, 4, 1]],
    [[2, 3, 4, 5], [1, 3, 1, 5]],
    [[17, 3, 41, 37], [1, 3, 1, 1]], // 25,789 per sum: 6 chunks, the last one short
  ];
  for (const [shape, out] of cases) {
    const [xb, xr] = c.pair(data.normal(size(shape)));
    await c.same(
      be.reduceSum(xb, shape, out),
      ref.reduceSum(xr, shape, out),
      `[${shape}]->[${out}]`,
    );
  }
});

conformance("reduction: sumSquares over several storages", async (c) => {
  const { be, ref, data } = c;
  for (const sizes of [[1, 33, 1000], [5000, 7, 70000]]) {
    const pairs = sizes.map((n) => c.pair(data.normal(n)));
    await c.same(
      be.sumSquares(pairs.map((p) => p[0])),
      ref.sumSquares(pairs.map((p) => p[1])),
      `sumSquares [${sizes}]`,
    );
  }
  assert.deepEqual([...await c.read(be.sumSquares([]))], [0]);
});

conformance("reduction: permute moves every value exactly", async (c) => {
  const { be, ref, data } = c;
  const cases: [number[], number[]][] = [
    [[5, 7], [1, 0]],
    [[37, 53], [1, 0]],
    [[3, 4, 5], [2, 0, 1]],
    [[3, 4, 5], [0, 2, 1]],
    [[3, 4, 5], [1, 0, 2]],
    [[6, 1, 5], [1, 2, 0]],
    [[4, 1, 6], [2, 1, 0]],
    [[2, 3, 4, 5], [0, 2, 1, 3]],
    [[2, 3, 4, 5], [3, 2, 1, 0]],
    [[2, 3, 4, 5], [0, 2, 3, 1]],
    [[2, 3, 4, 5], [3, 1, 2, 0]],
    // The UNet's patches: space to depth and back (2x2 patches of 1x6x6, batch 2).
    [[2, 1, 3, 2, 3, 2], [0, 1, 3, 5, 2, 4]],
    [[2, 1, 2, 2, 3, 3], [0, 1, 4, 2, 5, 3]],
  ];
  for (const [shape, perm] of cases) {
    const [xb, xr] = c.pair(data.normal(size(shape)));
    await c.exact(
      be.permute(xb, shape, perm),
      ref.permute(xr, shape, perm),
      `permute [${shape}] (${perm})`,
    );
  }
});

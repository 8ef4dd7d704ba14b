/**
 * Image grids: size, placement, the [-1, 1] -> [0, 255] mapping, pixel scaling, RGB, and bad shapes.
 */

import assert from "node:assert/strict";
import { imageGrid } from "../../src/plot/image_grid.ts";

Deno.test("image grid: size, placement and the [-1, 1] -> [0, 255] mapping", () => {
  // Three 2x2 grey images: all -1, all +1, and a gradient.
  const v = new Float32Array([-1, -1, -1, -1, 1, 1, 1, 1, -1, 0, 0.5, 2]);
  const g = imageGrid(v, [3, 1, 2, 2], { columns: 2, gap: 1, scale: 1, background: 7 });
  assert.equal(g.width, 2 * 2 + 3 * 1);
  assert.equal(g.height, 2 * 2 + 3 * 1);
  assert.equal(g.channels, 1);
  const px = (x: number, y: number) => g.data[y * g.width + x];
  assert.equal(px(0, 0), 7); // gap
  assert.equal(px(1, 1), 0); // image 0
  assert.equal(px(4, 1), 255); // image 1
  assert.equal(px(1, 4), 0); // image 2: -1
  assert.equal(px(2, 4), 128); // 0 -> 127.5 rounds to 128
  assert.equal(px(2, 5), 255); // 2 is clamped to 1
  assert.equal(px(4, 4), 7); // no fourth image: background
});

Deno.test("image grid: scale repeats pixels, RGB keeps channels, bad shapes are refused", () => {
  const rgb = new Float32Array([1, -1, 0]); // one 1x1 image: R=1, G=-1, B=0
  const g = imageGrid(rgb, [1, 3, 1, 1], { scale: 3, gap: 0 });
  assert.equal(g.width, 3);
  assert.equal(g.channels, 3);
  for (let p = 0; p < 9; p++) {
    assert.deepEqual([...g.data.subarray(p * 3, p * 3 + 3)], [255, 0, 128]);
  }
  assert.throws(() => imageGrid(new Float32Array(8), [2, 2, 2, 1]), /1 or 3/);
  assert.throws(() => imageGrid(new Float32Array(5), [1, 1, 2, 2]), /needs 4 values/);
});

/**
 * The plots' histograms and renderers: 2-D density and 1-D histograms (counts, bins, ranges),
 * density and bar rendering, colour maps, side-by-side and stacked layouts, and the forward strip.
 */

import assert from "node:assert/strict";
import { Random } from "../../src/random.ts";
import { spiral } from "../../src/data/toy.ts";
import {
  blankImage,
  colorRamp,
  densityHistogram2d,
  forwardStrip,
  histogram1d,
  magma,
  renderDensity,
  renderHistogram1d,
  type RgbaImage,
  sideBySide,
  stack,
  valueRange,
  viridis,
  WHITE,
} from "../../src/plot/histogram.ts";

function pixel(image: RgbaImage, x: number, y: number): number[] {
  const i = (y * image.width + x) * 4;
  return [...image.data.subarray(i, i + 4)];
}

Deno.test("densityHistogram2d: counts sum to the in-range points, and points land in their bins", () => {
  const points = new Float32Array([
    0.1,
    0.1, // bin (0, 0)
    0.9,
    0.1, // bin (3, 0)
    0.9,
    0.9, // bin (3, 3)
    1.0,
    1.0, // upper edge: last bin (3, 3)
    0.3,
    0.6, // bin (1, 2)
    -0.1,
    0.5, // outside x
    0.5,
    1.5, // outside y
    NaN,
    0.5, // skipped
  ]);
  const g = densityHistogram2d(points, { bins: 4, range: [[0, 1], [0, 1]] });
  assert.equal(g.inRange, 5);
  assert.equal(g.counts.reduce((a, b) => a + b, 0), 5);
  const at = (ix: number, iy: number) => g.counts[iy * g.binsX + ix];
  assert.equal(at(0, 0), 1);
  assert.equal(at(3, 0), 1);
  assert.equal(at(3, 3), 2);
  assert.equal(at(1, 2), 1);
});

Deno.test("densityHistogram2d: default range holds every point; uneven bins", () => {
  const { data } = spiral(5000, new Random(1));
  const g = densityHistogram2d(data, { bins: [30, 20] });
  assert.equal(g.counts.length, 600);
  assert.equal(g.inRange, 5000);
  assert.equal(g.counts.reduce((a, b) => a + b, 0), 5000);
  assert.throws(() => densityHistogram2d(new Float32Array(3)), /x, y pairs/);
  assert.throws(() => densityHistogram2d(data, { bins: 0 }), /bins must be a positive integer/);
  assert.throws(
    () => densityHistogram2d(data, { range: [[1, 0], [0, 1]] }),
    /lo < hi, got \[1, 0\]/,
  );
});

Deno.test("histogram1d: counts and bins", () => {
  const h = histogram1d(new Float32Array([0, 0.24, 0.25, 0.5, 0.99, 1, 2, -1]), {
    bins: 4,
    range: [0, 1],
  });
  assert.deepEqual([...h.counts], [2, 1, 1, 2]);
  assert.equal(h.inRange, 6);
  assert.deepEqual(valueRange(new Float32Array([3, 1, 2])), [1, 3]);
  assert.deepEqual(valueRange(new Float32Array([2])), [1.5, 2.5]);
  assert.deepEqual(valueRange(new Float32Array([])), [0, 1]);
});

Deno.test("renderDensity: size, y up, empty bins show the background", () => {
  const g = densityHistogram2d(new Float32Array([0.1, 0.1, 0.1, 0.1, 0.9, 0.9]), {
    bins: 2,
    range: [[0, 1], [0, 1]],
  });
  const im = renderDensity(g, { width: 40, height: 20 });
  assert.equal(im.width, 40);
  assert.equal(im.height, 20);
  assert.equal(im.data.length, 40 * 20 * 4);
  // Bottom-left bin has the max count (top of the map), top-right half of it, the rest are empty.
  assert.deepEqual(pixel(im, 5, 15), [...viridis(1), 255]);
  assert.deepEqual(pixel(im, 35, 5), [...viridis(0.5), 255]);
  assert.deepEqual(pixel(im, 5, 5), [...WHITE]);
  assert.deepEqual(pixel(im, 35, 15), [...WHITE]);
  const framed = renderDensity(g, 10, { frame: [1, 2, 3, 255], background: [0, 0, 0, 255] });
  assert.deepEqual(pixel(framed, 0, 4), [1, 2, 3, 255]);
  assert.deepEqual(pixel(framed, 9, 9), [1, 2, 3, 255]);
});

Deno.test("colour maps: endpoints differ and interpolate between anchors", () => {
  for (const map of [viridis, magma]) {
    const lo = map(0), hi = map(1);
    assert.notDeepEqual(lo, hi);
    const brightness = (c: readonly number[]) => c[0] + c[1] + c[2];
    assert.ok(brightness(hi) > brightness(lo) + 300);
    assert.deepEqual(map(-1), lo);
    assert.deepEqual(map(2), hi);
  }
  const ramp = colorRamp([[0, 0, 0], [100, 200, 50]]);
  assert.deepEqual(ramp(0.5), [50, 100, 25]);
  assert.throws(() => colorRamp([[0, 0, 0]]), /at least 2 anchor/);
});

Deno.test("renderHistogram1d: the tallest bar leaves a margin, empty bins draw nothing", () => {
  const h = histogram1d(new Float32Array([0.1, 0.1, 0.6]), { bins: 2, range: [0, 1] });
  const im = renderHistogram1d(h, { width: 20, height: 100 }, { bar: [9, 9, 9, 255] });
  assert.deepEqual(pixel(im, 2, 99), [9, 9, 9, 255]);
  assert.deepEqual(pixel(im, 2, 5), [9, 9, 9, 255]); // height 95 of 100
  assert.deepEqual(pixel(im, 2, 4), [...WHITE]);
  assert.deepEqual(pixel(im, 15, 52), [9, 9, 9, 255]); // half as tall: rows 52..99
  assert.deepEqual(pixel(im, 15, 51), [...WHITE]);
});

Deno.test("sideBySide and stack: sizes add up and pixels keep their places", () => {
  const a = blankImage(10, 6, [255, 0, 0, 255]);
  const b = blankImage(4, 9, [0, 255, 0, 255]);
  const row = sideBySide([a, b], { gap: 3, background: [0, 0, 0, 255] });
  assert.equal(row.width, 10 + 3 + 4);
  assert.equal(row.height, 9);
  assert.deepEqual(pixel(row, 9, 5), [255, 0, 0, 255]);
  assert.deepEqual(pixel(row, 11, 0), [0, 0, 0, 255]); // gap
  assert.deepEqual(pixel(row, 13, 8), [0, 255, 0, 255]);
  assert.deepEqual(pixel(row, 0, 7), [0, 0, 0, 255]); // below the shorter image
  const grid = stack([row, a]);
  assert.equal(grid.width, 17);
  assert.equal(grid.height, 9 + 4 + 6);
  assert.deepEqual(pixel(grid, 0, 13), [255, 0, 0, 255]);
  assert.deepEqual(pixel(grid, 12, 13), [...WHITE]);
  assert.throws(() => sideBySide([]), /at least one image/);
  assert.throws(() => stack([a], { gap: -1 }), /gap must be/);
});

Deno.test("forwardStrip: one panel per set, 2-D densities and 1-D bars", () => {
  const r = new Random(2);
  const sets2 = [spiral(500, r).data, spiral(500, r).data, spiral(500, r).data];
  const strip2 = forwardStrip(sets2, 2, { size: 50, gap: 2 });
  assert.equal(strip2.width, 3 * 50 + 2 * 2);
  assert.equal(strip2.height, 50);
  const sets1 = [r.normals(300), r.normals(300)].map((x) => new Float32Array(x));
  const strip1 = forwardStrip(sets1, 1, { size: { width: 30, height: 20 }, range: [-4, 4] });
  assert.equal(strip1.width, 2 * 30 + 4);
  assert.equal(strip1.height, 20);
  assert.throws(() => forwardStrip(sets1, 3), /dim must be 1 or 2/);
  assert.throws(() => forwardStrip(sets2, 2, { range: [0, 1] }), /2-D sets need range/);
  assert.throws(() => forwardStrip([new Float32Array(3)], 2), /not a multiple of dim 2/);
});

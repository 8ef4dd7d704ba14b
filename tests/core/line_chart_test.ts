/**
 * The line chart and its bitmap font: a series is drawn in its colour where its points map, the
 * legend shows each colour, text lands where it is drawn, and bad input is refused.
 */

import assert from "node:assert/strict";
import { drawText, GLYPH, textWidth } from "../../src/plot/font.ts";
import { blankImage, type Rgb, type RgbaImage } from "../../src/plot/histogram.ts";
import { lineChart, PALETTE } from "../../src/plot/line_chart.ts";

function count(im: RgbaImage, c: Rgb, x0 = 0, x1 = im.width): number {
  let n = 0;
  for (let y = 0; y < im.height; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * im.width + x) * 4;
      if (im.data[o] === c[0] && im.data[o + 1] === c[1] && im.data[o + 2] === c[2]) n++;
    }
  }
  return n;
}

Deno.test("lineChart: each series in its colour, a rising line rises, the legend beside", () => {
  const im = lineChart([
    { label: "up", points: [[10, 1], [100, 2]] },
    { label: "flat", points: [[10, 1.5], [100, 1.5]] },
  ], { width: 400, height: 300, logX: true, title: "T", xLabel: "x", yLabel: "y" });
  assert.equal(im.width, 400);
  assert.equal(im.height, 300);
  const [up, flat] = PALETTE;
  assert.ok(count(im, up) > 200 && count(im, flat) > 200, "both lines drawn");
  // The rising series: its leftmost pixels are lower in the image than its rightmost.
  const rows = (c: Rgb, x: number) => {
    const ys: number[] = [];
    for (let y = 0; y < im.height; y++) {
      const o = (y * im.width + x) * 4;
      if (im.data[o] === c[0] && im.data[o + 1] === c[1] && im.data[o + 2] === c[2]) ys.push(y);
    }
    return ys;
  };
  let first = -1, last = -1;
  for (let x = 0; x < im.width && first < 0; x++) if (rows(up, x).length) first = x;
  for (let x = 200; x >= 0 && last < 0; x--) if (rows(up, x).length) last = x;
  assert.ok(first >= 0 && last > first);
  assert.ok(Math.min(...rows(up, first)) > Math.max(...rows(up, last)), "higher y is drawn higher");
});

Deno.test("lineChart: on a log y axis, 1, 10, 100 at even x lie on a straight line", () => {
  const [c] = PALETTE;
  const middle = (logY: boolean) => {
    const im = lineChart([{ label: "a", points: [[1, 1], [2, 10], [3, 100]] }], {
      width: 400,
      height: 300,
      logY,
    });
    const ys = (x: number) => {
      const out: number[] = [];
      for (let y = 0; y < im.height; y++) {
        const o = (y * im.width + x) * 4;
        if (im.data[o] === c[0] && im.data[o + 1] === c[1] && im.data[o + 2] === c[2]) out.push(y);
      }
      return out;
    };
    // The plot's columns with ink (the legend's swatch lies right of x = 280).
    const cols = Array.from({ length: 280 }, (_, x) => x).filter((x) => ys(x).length > 0);
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const first = mean(ys(cols[0])), last = mean(ys(cols.at(-1)!));
    const mid = mean(ys(Math.round((cols[0] + cols.at(-1)!) / 2)));
    return Math.abs(mid - (first + last) / 2);
  };
  assert.ok(middle(true) < 4, `log y: ${middle(true)} pixels off the straight line`);
  assert.ok(middle(false) > 30, `linear y: ${middle(false)} pixels off`);
});

Deno.test("lineChart: bad input is refused", () => {
  assert.throws(() => lineChart([{ label: "a", points: [] }]), /no points/);
  assert.throws(() => lineChart([{ label: "a", points: [[1, NaN]] }]), /finite/);
  assert.throws(() => lineChart([{ label: "a", points: [[0, 1]] }], { logX: true }), /x > 0/);
  assert.throws(() => lineChart([{ label: "a", points: [[1, 0]] }], { logY: true }), /y > 0/);
});

Deno.test("drawText: glyphs at the place and scale asked, unknown characters as '?'", () => {
  const im = blankImage(40, 20);
  const ink: Rgb = [255, 0, 0];
  drawText(im, "1", 3, 2, ink, 2);
  // "1" is a column of ink at glyph column 2 (image x = 3 + 2*2 .. +1) over all 7 rows.
  for (let y = 2 + 2; y < 2 + 2 * GLYPH.height; y++) {
    const o = (y * im.width + 3 + 2 * 2) * 4;
    assert.deepEqual([...im.data.subarray(o, o + 3)], ink, `row ${y}`);
  }
  assert.equal(count(im, ink, 0, 3), 0, "nothing left of the text");
  assert.equal(textWidth("ab", 2), (2 * (GLYPH.width + 1) - 1) * 2);
  const q = blankImage(10, 10), r = blankImage(10, 10);
  drawText(q, "~", 0, 0, ink);
  drawText(r, "?", 0, 0, ink);
  assert.deepEqual(q.data, r.data);
});

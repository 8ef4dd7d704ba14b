/**
 * Line charts as RGBA images (for PNG): one line with markers per series over shared axes, tick
 * labels, axis titles and a legend, drawn with the 5 x 7 bitmap font of font.ts. The x axis can be
 * logarithmic (network evaluations 10, 20, 50, 100, ...).
 *
 * @module
 */

import { drawText, GLYPH, textWidth } from "./font.ts";
import { blankImage, type Rgb, type RgbaImage } from "./histogram.ts";

/** One line of a chart. */
export interface ChartSeries {
  /** The legend's label. */
  label: string;
  /** The points, in the order they are joined. */
  points: readonly (readonly [number, number])[];
  /** The colour (default: the next of {@link PALETTE}). */
  color?: Rgb;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  /** Image width in pixels (default 720). */
  width?: number;
  /** Image height in pixels (default 440). */
  height?: number;
  /** Title above the plot. */
  title?: string;
  /** Label of the x axis. */
  xLabel?: string;
  /** Label of the y axis (written above the axis). */
  yLabel?: string;
  /** A logarithmic x axis (default false). */
  logX?: boolean;
  /** A logarithmic y axis (default false), ticked at 1, 2 and 5 times powers of ten. */
  logY?: boolean;
  /** x positions of the ticks (default: the distinct x values of the points, at most 12). */
  xTicks?: readonly number[];
  /** The y range (default: the points', padded by 5%). */
  yRange?: readonly [number, number];
}

/** Ten distinguishable colours (matplotlib's tab10). */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];

function setPixel(im: RgbaImage, x: number, y: number, c: Rgb): void {
  x = Math.round(x);
  y = Math.round(y);
  if (x < 0 || y < 0 || x >= im.width || y >= im.height) return;
  const o = (y * im.width + x) * 4;
  im.data[o] = c[0];
  im.data[o + 1] = c[1];
  im.data[o + 2] = c[2];
  im.data[o + 3] = 255;
}

/** A line `width` pixels thick from (x0, y0) to (x1, y1). */
function line(im: RgbaImage, x0: number, y0: number, x1: number, y1: number, c: Rgb, width = 1) {
  const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
  const r = (width - 1) / 2;
  for (let i = 0; i <= n; i++) {
    const x = x0 + ((x1 - x0) * i) / n, y = y0 + ((y1 - y0) * i) / n;
    for (let dx = -r; dx <= r; dx++) {
      for (let dy = -r; dy <= r; dy++) setPixel(im, x + dx, y + dy, c);
    }
  }
}

function square(im: RgbaImage, x: number, y: number, half: number, c: Rgb): void {
  for (let dx = -half; dx <= half; dx++) {
    for (let dy = -half; dy <= half; dy++) setPixel(im, x + dx, y + dy, c);
  }
}

/** A short decimal label for a tick value. */
function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || Number.isInteger(v)) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

/** About `count` round tick values covering [lo, hi]. */
function niceTicks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

/** Ticks at 1, 2 and 5 times the powers of ten within [lo, hi] (both > 0). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** d).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/** The chart of `series` (at least one point in all). */
export function lineChart(
  series: readonly ChartSeries[],
  options: LineChartOptions = {},
): RgbaImage {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new RangeError("lineChart: no points to draw");
  if (all.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))) {
    throw new RangeError("lineChart: every point must be finite");
  }
  const logX = options.logX ?? false, logY = options.logY ?? false;
  if (logX && all.some(([x]) => x <= 0)) throw new RangeError("lineChart: log x needs x > 0");
  if (logY && all.some(([, y]) => y <= 0)) throw new RangeError("lineChart: log y needs y > 0");
  const fy = (y: number) => (logY ? Math.log10(y) : y);
  const width = options.width ?? 720, height = options.height ?? 440;
  const im = blankImage(width, height);
  const s = 2, gh = GLYPH.height * s; // text scale and glyph height
  const legendWidth = Math.max(...series.map((x) => textWidth(x.label, s))) + 60;
  const left = 16 + textWidth("00000", s), right = width - legendWidth - 16;
  const top = (options.title ? 2 : 1) * (gh + 10) + 10, bottom = height - 24 - 2 * gh;
  const xs = all.map(([x]) => (logX ? Math.log(x) : x));
  let [ylo, yhi] = (options.yRange ?? [
    Math.min(...all.map(([, y]) => y)),
    Math.max(...all.map(([, y]) => y)),
  ]).map(fy);
  if (!options.yRange) {
    const pad = (yhi - ylo || Math.abs(yhi) || 1) * 0.05;
    ylo -= pad;
    yhi += pad;
  }
  const xlo = Math.min(...xs), xhi = Math.max(...xs), xspan = xhi - xlo || 1;
  const px = (x: number) => left + (((logX ? Math.log(x) : x) - xlo) / xspan) * (right - left);
  const py = (y: number) => bottom - ((fy(y) - ylo) / (yhi - ylo || 1)) * (bottom - top);

  for (const t of logY ? logTicks(10 ** ylo, 10 ** yhi) : niceTicks(ylo, yhi)) {
    const y = py(t);
    line(im, left, y, right, y, GRID);
    const label = tickLabel(t);
    drawText(im, label, left - 8 - textWidth(label, s), Math.round(y - gh / 2), INK, s);
  }
  const xTicks = options.xTicks ?? [...new Set(all.map(([x]) => x))].sort((a, b) => a - b)
    .slice(0, 12);
  for (const t of xTicks) {
    const x = px(t);
    line(im, x, top, x, bottom, GRID);
    const label = tickLabel(t);
    drawText(im, label, Math.round(x - textWidth(label, s) / 2), bottom + 8, INK, s);
  }
  line(im, left, bottom, right, bottom, INK, 2);
  line(im, left, top, left, bottom, INK, 2);
  if (options.title) drawText(im, options.title, 8, 8, INK, s);
  if (options.yLabel) drawText(im, options.yLabel, 8, top - gh - 10, INK, s);
  if (options.xLabel) {
    const w = textWidth(options.xLabel, s);
    drawText(im, options.xLabel, Math.round((left + right - w) / 2), bottom + 16 + gh, INK, s);
  }
  series.forEach((ser, i) => {
    const c = ser.color ?? PALETTE[i % PALETTE.length];
    for (let k = 1; k < ser.points.length; k++) {
      const [x0, y0] = ser.points[k - 1], [x1, y1] = ser.points[k];
      line(im, px(x0), py(y0), px(x1), py(y1), c, 2);
    }
    for (const [x, y] of ser.points) square(im, px(x), py(y), 3, c);
    const ly = top + i * (gh + 8);
    line(im, right + 20, ly + gh / 2, right + 44, ly + gh / 2, c, 3);
    drawText(im, ser.label, right + 50, ly, INK, s);
  });
  return im;
}

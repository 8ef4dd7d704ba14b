/**
 * Pixel plots without fonts: 2-D density histograms (like Mathematica's `DensityHistogram`), 1-D bar
 * histograms, perceptual colour maps, and composition of panels into rows and grids.
 *
 * Images are 8-bit RGBA, row-major, top row first: {@link RgbaImage}. Write them with
 * `writePngAtomic` from `src/io/png.ts`.
 *
 * @module
 */

/** An 8-bit RGBA image: `height` rows of `width` pixels, 4 bytes each, top row first. */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Bytes per pixel: always 4 (red, green, blue, alpha). */
  channels: 4;
  /** `width * height * 4` bytes. */
  data: Uint8Array;
}

/** A colour: red, green, blue, each 0 to 255. */
export type Rgb = readonly [number, number, number];

/** A colour with alpha: red, green, blue, alpha, each 0 to 255. */
export type Rgba = readonly [number, number, number, number];

/** A closed interval `[lo, hi]` with `lo < hi`. */
export type Interval = readonly [number, number];

/** Maps `t` in [0, 1] to a colour (values outside are clamped). */
export type ColorMap = (t: number) => Rgb;

/** White, opaque. */
export const WHITE: Rgba = [255, 255, 255, 255];

/** Near-black, opaque: a dark background for bright colour maps such as {@link magma}. */
export const DARK: Rgba = [16, 16, 24, 255];

/** Light grey, opaque: the default panel frame. */
export const FRAME_GREY: Rgba = [190, 190, 190, 255];

/** Anchor colours of a viridis-like ramp (dark purple, blue, teal, green, yellow), evenly spaced. */
export const VIRIDIS_ANCHORS: readonly Rgb[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** Anchor colours of a magma-like ramp (black, purple, pink, orange, pale yellow), evenly spaced. */
export const MAGMA_ANCHORS: readonly Rgb[] = [
  [0, 0, 4],
  [81, 18, 124],
  [183, 55, 121],
  [252, 137, 97],
  [252, 253, 191],
];

/**
 * A colour map that interpolates linearly between evenly spaced anchor colours: `t = 0` gives the
 * first anchor and `t = 1` the last. Needs at least two anchors.
 */
export function colorRamp(anchors: readonly Rgb[]): ColorMap {
  if (anchors.length < 2) {
    throw new RangeError(`colorRamp needs at least 2 anchor colours, got ${anchors.length}`);
  }
  const last = anchors.length - 1;
  return (t: number): Rgb => {
    const x = (Number.isNaN(t) ? 0 : Math.min(1, Math.max(0, t))) * last;
    const i = Math.min(last - 1, Math.floor(x));
    const f = x - i;
    const a = anchors[i], b = anchors[i + 1];
    return [
      Math.round(a[0] + (b[0] - a[0]) * f),
      Math.round(a[1] + (b[1] - a[1]) * f),
      Math.round(a[2] + (b[2] - a[2]) * f),
    ];
  };
}

/** The viridis-like colour map: dark purple at 0, yellow at 1. */
export const viridis: ColorMap = colorRamp(VIRIDIS_ANCHORS);

/** The magma-like colour map: black at 0, pale yellow at 1. */
export const magma: ColorMap = colorRamp(MAGMA_ANCHORS);

/** Counts of 2-D points in a grid of bins over a rectangle. */
export interface Histogram2d {
  /** Counts, row-major by y: bin (ix, iy) is `counts[iy * binsX + ix]`; iy = 0 is the lowest y. */
  counts: Uint32Array;
  /** Bins along x. */
  binsX: number;
  /** Bins along y. */
  binsY: number;
  /** The x and y intervals the bins cover. */
  range: readonly [Interval, Interval];
  /** Number of points counted (inside the range); the others were skipped. */
  inRange: number;
}

/** Options of {@link densityHistogram2d}. */
export interface Histogram2dOptions {
  /** Bins along both axes, or `[binsX, binsY]` (default 64). */
  bins?: number | readonly [number, number];
  /** `[[xlo, xhi], [ylo, yhi]]` (default: the points' bounding box). */
  range?: readonly [Interval, Interval];
}

/** Counts of 1-D values in equal bins over an interval. */
export interface Histogram1d {
  /** Counts per bin, lowest values first. */
  counts: Uint32Array;
  /** Number of bins. */
  bins: number;
  /** The interval the bins cover. */
  range: Interval;
  /** Number of values counted (inside the range); the others were skipped. */
  inRange: number;
}

/** Options of {@link histogram1d}. */
export interface Histogram1dOptions {
  /** Number of bins (default 50). */
  bins?: number;
  /** `[lo, hi]` (default: the values' range). */
  range?: Interval;
}

function checkBins(what: string, bins: number): void {
  if (!Number.isSafeInteger(bins) || bins < 1) {
    throw new RangeError(`${what}: bins must be a positive integer, got ${bins}`);
  }
}

function checkInterval(what: string, range: Interval): void {
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) {
    throw new RangeError(`${what}: range must be finite [lo, hi] with lo < hi, got [${lo}, ${hi}]`);
  }
}

/**
 * The smallest interval holding the finite values `data[offset], data[offset + stride], ...`,
 * widened by `pad` times its width on each side; a single value v gives [v - 0.5, v + 0.5] and no
 * finite values give [0, 1].
 */
export function valueRange(data: Float32Array, stride = 1, offset = 0, pad = 0): Interval {
  let lo = Infinity, hi = -Infinity;
  for (let i = offset; i < data.length; i += stride) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(lo <= hi)) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  const w = (hi - lo) * pad;
  return [lo - w, hi + w];
}

/** The bin of `v` among `bins` equal bins over [lo, hi] (hi itself in the last), or -1 outside. */
function binOf(v: number, lo: number, hi: number, bins: number): number {
  if (!(v >= lo && v <= hi)) return -1; // also skips NaN
  return Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins));
}

/**
 * Counts 2-D points (row-major `x0, y0, x1, y1, ...`) in `binsX * binsY` equal bins over `range`.
 * Bins are closed below and open above, except the last, which also holds the upper edge; points
 * outside the range or not finite are skipped.
 */
export function densityHistogram2d(
  points: Float32Array,
  options: Histogram2dOptions = {},
): Histogram2d {
  if (points.length % 2 !== 0) {
    throw new RangeError(
      `densityHistogram2d: points has ${points.length} values; pass 2-D points as x, y pairs`,
    );
  }
  const bins = options.bins ?? 64;
  const [binsX, binsY] = typeof bins === "number" ? [bins, bins] : bins;
  checkBins("densityHistogram2d", binsX);
  checkBins("densityHistogram2d", binsY);
  const range = options.range ?? [valueRange(points, 2, 0), valueRange(points, 2, 1)];
  checkInterval("densityHistogram2d x", range[0]);
  checkInterval("densityHistogram2d y", range[1]);
  const [[xlo, xhi], [ylo, yhi]] = range;
  const counts = new Uint32Array(binsX * binsY);
  let inRange = 0;
  for (let i = 0; i < points.length; i += 2) {
    const ix = binOf(points[i], xlo, xhi, binsX);
    const iy = binOf(points[i + 1], ylo, yhi, binsY);
    if (ix < 0 || iy < 0) continue;
    counts[iy * binsX + ix]++;
    inRange++;
  }
  return { counts, binsX, binsY, range, inRange };
}

/**
 * Counts `values` in equal bins over `range`. Bins are closed below and open above, except the
 * last, which also holds the upper edge; values outside the range or not finite are skipped.
 */
export function histogram1d(values: Float32Array, options: Histogram1dOptions = {}): Histogram1d {
  const bins = options.bins ?? 50;
  checkBins("histogram1d", bins);
  const range = options.range ?? valueRange(values);
  checkInterval("histogram1d", range);
  const counts = new Uint32Array(bins);
  let inRange = 0;
  for (let i = 0; i < values.length; i++) {
    const b = binOf(values[i], range[0], range[1], bins);
    if (b < 0) continue;
    counts[b]++;
    inRange++;
  }
  return { counts, bins, range, inRange };
}

/** A width and height in pixels, or one number for a square. */
export type ImageSize = number | { width: number; height: number };

function sizeOf(what: string, size: ImageSize): { width: number; height: number } {
  const s = typeof size === "number" ? { width: size, height: size } : size;
  if (
    !Number.isSafeInteger(s.width) || s.width < 1 || !Number.isSafeInteger(s.height) ||
    s.height < 1
  ) {
    throw new RangeError(
      `${what}: image size must be positive integers, got ${s.width} x ${s.height}`,
    );
  }
  return s;
}

/** A `width` x `height` image filled with `background`. */
export function blankImage(width: number, height: number, background: Rgba = WHITE): RgbaImage {
  const { width: w, height: h } = sizeOf("blankImage", { width, height });
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < data.length; i += 4) data.set(background, i);
  return { width: w, height: h, channels: 4, data };
}

function drawFrame(image: RgbaImage, color: Rgba): void {
  const { width, height, data } = image;
  for (let x = 0; x < width; x++) {
    data.set(color, x * 4);
    data.set(color, ((height - 1) * width + x) * 4);
  }
  for (let y = 0; y < height; y++) {
    data.set(color, y * width * 4);
    data.set(color, (y * width + width - 1) * 4);
  }
}

/** Options of {@link renderDensity}. */
export interface RenderDensityOptions {
  /** Colour of non-empty bins by count / max count (default {@link viridis}). */
  colorMap?: ColorMap;
  /** Colour of empty bins (default {@link WHITE}). */
  background?: Rgba;
  /** How counts map to colour: `"linear"` (default, like DensityHistogram) or `"sqrt"`. */
  scale?: "linear" | "sqrt";
  /** A 1-pixel frame colour, or none (default). */
  frame?: Rgba;
}

/**
 * Renders a 2-D histogram as an image of `size` pixels, y up: each bin is a block of pixels
 * coloured by its count relative to the largest count; empty bins show the background.
 */
export function renderDensity(
  grid: Histogram2d,
  size: ImageSize,
  options: RenderDensityOptions = {},
): RgbaImage {
  const { width, height } = sizeOf("renderDensity", size);
  const colorMap = options.colorMap ?? viridis;
  const background = options.background ?? WHITE;
  const transform = options.scale === "sqrt" ? Math.sqrt : (t: number) => t;
  const { counts, binsX, binsY } = grid;
  if (counts.length !== binsX * binsY) {
    throw new RangeError(
      `renderDensity: grid has ${counts.length} counts for ${binsX} x ${binsY} bins; ` +
        `use a grid made by densityHistogram2d`,
    );
  }
  let max = 0;
  for (let i = 0; i < counts.length; i++) if (counts[i] > max) max = counts[i];
  const colors = new Array<Rgba>(counts.length);
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    colors[i] = c === 0 ? background : [...colorMap(transform(c / max)), 255];
  }
  const data = new Uint8Array(width * height * 4);
  for (let py = 0; py < height; py++) {
    const iy = binsY - 1 - Math.floor((py * binsY) / height);
    for (let px = 0; px < width; px++) {
      const ix = Math.floor((px * binsX) / width);
      data.set(colors[iy * binsX + ix], (py * width + px) * 4);
    }
  }
  const image: RgbaImage = { width, height, channels: 4, data };
  if (options.frame) drawFrame(image, options.frame);
  return image;
}

/** Options of {@link renderHistogram1d}. */
export interface RenderBarsOptions {
  /** Bar colour (default a muted blue). */
  bar?: Rgba;
  /** Background colour (default {@link WHITE}). */
  background?: Rgba;
  /** A 1-pixel frame colour, or none (default). */
  frame?: Rgba;
}

/** The default bar colour of {@link renderHistogram1d}. */
export const BAR_BLUE: Rgba = [94, 129, 181, 255];

/**
 * Renders a 1-D histogram as a bar chart of `size` pixels: each bin is a column of pixels whose
 * bar height is its count relative to the largest count (the tallest bar leaves a 5% margin).
 */
export function renderHistogram1d(
  hist: Histogram1d,
  size: ImageSize,
  options: RenderBarsOptions = {},
): RgbaImage {
  const { width, height } = sizeOf("renderHistogram1d", size);
  const bar = options.bar ?? BAR_BLUE;
  const image = blankImage(width, height, options.background ?? WHITE);
  const { counts, bins } = hist;
  if (counts.length !== bins) {
    throw new RangeError(
      `renderHistogram1d: histogram has ${counts.length} counts for ${bins} bins; ` +
        `use a histogram made by histogram1d`,
    );
  }
  let max = 0;
  for (let i = 0; i < bins; i++) if (counts[i] > max) max = counts[i];
  const usable = Math.max(1, Math.floor(height * 0.95));
  for (let px = 0; px < width; px++) {
    const c = counts[Math.floor((px * bins) / width)];
    const h = max === 0 ? 0 : Math.round((c / max) * usable);
    for (let py = height - h; py < height; py++) image.data.set(bar, (py * width + px) * 4);
  }
  if (options.frame) drawFrame(image, options.frame);
  return image;
}

/** Options of {@link sideBySide} and {@link stack}. */
export interface ComposeOptions {
  /** Pixels between neighbouring images (default 4). */
  gap?: number;
  /** Colour of the gaps and of space beside smaller images (default {@link WHITE}). */
  background?: Rgba;
}

function checkImages(what: string, images: readonly RgbaImage[], gap: number): void {
  if (images.length === 0) throw new RangeError(`${what}: pass at least one image`);
  if (!Number.isSafeInteger(gap) || gap < 0) {
    throw new RangeError(`${what}: gap must be an integer >= 0, got ${gap}`);
  }
  images.forEach((im, i) => {
    if (im.channels !== 4 || im.data.length !== im.width * im.height * 4) {
      throw new RangeError(
        `${what}: image ${i} is not ${im.width} x ${im.height} RGBA (${im.data.length} bytes); ` +
          `pass RgbaImage values`,
      );
    }
  });
}

/** Copies `src` into `dst` with its top-left corner at (x0, y0); it must fit. */
function blit(dst: RgbaImage, src: RgbaImage, x0: number, y0: number): void {
  const rowBytes = src.width * 4;
  for (let y = 0; y < src.height; y++) {
    const from = y * rowBytes;
    dst.data.set(src.data.subarray(from, from + rowBytes), ((y0 + y) * dst.width + x0) * 4);
  }
}

/**
 * Places images left to right, top-aligned, `gap` pixels apart: the width is the sum of the widths
 * plus the gaps, the height the largest height.
 */
export function sideBySide(images: readonly RgbaImage[], options: ComposeOptions = {}): RgbaImage {
  const gap = options.gap ?? 4;
  checkImages("sideBySide", images, gap);
  const width = images.reduce((s, im) => s + im.width, 0) + gap * (images.length - 1);
  const height = Math.max(...images.map((im) => im.height));
  const out = blankImage(width, height, options.background ?? WHITE);
  let x = 0;
  for (const im of images) {
    blit(out, im, x, 0);
    x += im.width + gap;
  }
  return out;
}

/**
 * Places images top to bottom, left-aligned, `gap` pixels apart: the height is the sum of the
 * heights plus the gaps, the width the largest width.
 */
export function stack(images: readonly RgbaImage[], options: ComposeOptions = {}): RgbaImage {
  const gap = options.gap ?? 4;
  checkImages("stack", images, gap);
  const width = Math.max(...images.map((im) => im.width));
  const height = images.reduce((s, im) => s + im.height, 0) + gap * (images.length - 1);
  const out = blankImage(width, height, options.background ?? WHITE);
  let y = 0;
  for (const im of images) {
    blit(out, im, 0, y);
    y += im.height + gap;
  }
  return out;
}

/** Options of {@link forwardStrip}. */
export interface ForwardStripOptions {
  /** Size of each panel (default 160 x 160). */
  size?: ImageSize;
  /** Bins per axis (default 64 for 2-D, 50 for 1-D). */
  bins?: number;
  /**
   * Shared range: `[lo, hi]` for 1-D, `[[xlo, xhi], [ylo, yhi]]` for 2-D (default: the bounding box
   * of all sets, widened by 2% on each side).
   */
  range?: Interval | readonly [Interval, Interval];
  /** Pixels between panels (default 4). */
  gap?: number;
  /** Background of gaps and empty bins (default {@link WHITE}). */
  background?: Rgba;
  /** Colour map of 2-D panels (default {@link viridis}). */
  colorMap?: ColorMap;
  /** Panel frame colour (default {@link FRAME_GREY}). */
  frame?: Rgba;
}

function isPair(range: ForwardStripOptions["range"]): range is readonly [Interval, Interval] {
  return Array.isArray(range) && Array.isArray(range[0]);
}

/**
 * Renders point sets (one per time step, row-major with `dim` 1 or 2 values per point) as one row
 * of panels over a shared range: 2-D sets as density histograms, 1-D sets as bar histograms. Each
 * panel is scaled to its own largest count.
 */
export function forwardStrip(
  sets: readonly Float32Array[],
  dim: number,
  options: ForwardStripOptions = {},
): RgbaImage {
  if (dim !== 1 && dim !== 2) {
    throw new RangeError(`forwardStrip: dim must be 1 or 2, got ${dim}`);
  }
  if (sets.length === 0) throw new RangeError("forwardStrip: pass at least one point set");
  const size = options.size ?? 160;
  const background = options.background ?? WHITE;
  const frame = options.frame ?? FRAME_GREY;
  const all = new Float32Array(sets.reduce((s, x) => s + x.length, 0));
  let offset = 0;
  for (const [i, s] of sets.entries()) {
    if (s.length % dim !== 0) {
      throw new RangeError(
        `forwardStrip: set ${i} has ${s.length} values, not a multiple of dim ${dim}`,
      );
    }
    all.set(s, offset);
    offset += s.length;
  }
  let panels: RgbaImage[];
  if (dim === 2) {
    if (options.range !== undefined && !isPair(options.range)) {
      throw new RangeError("forwardStrip: 2-D sets need range [[xlo, xhi], [ylo, yhi]]");
    }
    const range = options.range ?? [valueRange(all, 2, 0, 0.02), valueRange(all, 2, 1, 0.02)];
    const bins = options.bins ?? 64;
    panels = sets.map((s) =>
      renderDensity(densityHistogram2d(s, { bins, range }), size, {
        colorMap: options.colorMap,
        background,
        frame,
      })
    );
  } else {
    if (options.range !== undefined && isPair(options.range)) {
      throw new RangeError("forwardStrip: 1-D sets need range [lo, hi]");
    }
    const range = options.range ?? valueRange(all, 1, 0, 0.02);
    const bins = options.bins ?? 50;
    panels = sets.map((s) =>
      renderHistogram1d(histogram1d(s, { bins, range }), size, { background, frame })
    );
  }
  return sideBySide(panels, { gap: options.gap, background });
}

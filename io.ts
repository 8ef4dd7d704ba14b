/**
 * What goes in and out of a program built on the library: the safetensors format and atomic file
 * writes (no file is ever half-written), PNG pictures (image grids, density plots and histograms),
 * the terminal progress bar, and the option checks that turn bad input into one clear
 * `OptionError`.
 *
 * @example A grid of four 2x2 grey images as a PNG
 * ```ts
 * import { encodePng, imageGrid } from "./io.ts";
 *
 * const values = Float32Array.from({ length: 16 }, (_, i) => (i % 3) - 1); // in [-1, 1]
 * const png = encodePng(imageGrid(values, [4, 1, 2, 2]));
 * console.log(png.length > 0); // true
 * ```
 *
 * @module
 */

export { decodeSafetensors, encodeSafetensors } from "./src/io/safetensors.ts";
export type { NamedTensor, SafetensorsContent } from "./src/io/safetensors.ts";
export {
  removeStaleTemporaryFiles,
  writeFileAtomic,
  writeTextFileAtomic,
} from "./src/io/atomic.ts";
export { encodePng, writePngAtomic } from "./src/io/png.ts";
export type { PixelImage } from "./src/io/png.ts";
export { imageGrid } from "./src/plot/image_grid.ts";
export type { ImageGridOptions } from "./src/plot/image_grid.ts";
export {
  densityHistogram2d,
  forwardStrip,
  histogram1d,
  renderDensity,
  renderHistogram1d,
  sideBySide,
  stack,
} from "./src/plot/histogram.ts";
export type {
  ColorMap,
  ComposeOptions,
  ForwardStripOptions,
  Histogram1d,
  Histogram1dOptions,
  Histogram2d,
  Histogram2dOptions,
  ImageSize,
  Interval,
  RenderBarsOptions,
  RenderDensityOptions,
  Rgb,
  Rgba,
  RgbaImage,
} from "./src/plot/histogram.ts";
export { lineChart, PALETTE } from "./src/plot/line_chart.ts";
export type { ChartSeries, LineChartOptions } from "./src/plot/line_chart.ts";
export { drawText, textWidth } from "./src/plot/font.ts";
export { differenceMap, greyToRgb } from "./src/plot/difference_map.ts";
export { createProgress, PROGRESS_FORMATS } from "./src/terminal/progress.ts";
export type {
  Progress,
  ProgressFormat,
  ProgressOptions,
  ProgressValues,
} from "./src/terminal/progress.ts";
export { checkChoice, checkInt, checkNumber, checkSize, formatBytes } from "./src/errors.ts";

/**
 * Sample grids: images with values in [-1, 1] laid out in rows and columns as one 8-bit picture.
 *
 * @module
 */

import type { PixelImage } from "../io/png.ts";

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Images per row (default: the square root of the count, rounded up). */
  columns?: number;
  /** Pixels between images (default 2). */
  gap?: number;
  /** Each image pixel becomes a block of scale x scale (default 2). */
  scale?: number;
  /** Value of the gaps, 0..255 (default 255: white). */
  background?: number;
}

/**
 * Lays out images [n, c, h, w] (c = 1 grey or 3 RGB, values in [-1, 1], clamped) as a grid.
 */
export function imageGrid(
  values: Float32Array,
  shape: readonly number[],
  options: ImageGridOptions = {},
): PixelImage {
  if (shape.length !== 4 || (shape[1] !== 1 && shape[1] !== 3)) {
    throw new RangeError(`imageGrid needs images [n, 1 or 3, h, w], got [${shape}]`);
  }
  const [n, c, h, w] = shape;
  if (values.length !== n * c * h * w) {
    throw new RangeError(
      `imageGrid: [${shape}] needs ${n * c * h * w} values, got ${values.length}`,
    );
  }
  const cols = options.columns ?? Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
  const gap = options.gap ?? 2, scale = options.scale ?? 2, bg = options.background ?? 255;
  const cw = w * scale, ch = h * scale;
  const width = cols * cw + (cols + 1) * gap, height = rows * ch + (rows + 1) * gap;
  const data = new Uint8Array(width * height * c).fill(bg);
  const byte = (v: number) => Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5);
  for (let i = 0; i < n; i++) {
    const x0 = gap + (i % cols) * (cw + gap), y0 = gap + Math.floor(i / cols) * (ch + gap);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const sy = Math.floor(y / scale), sx = Math.floor(x / scale);
        const o = ((y0 + y) * width + x0 + x) * c;
        for (let k = 0; k < c; k++) data[o + k] = byte(values[((i * c + k) * h + sy) * w + sx]);
      }
    }
  }
  return { width, height, channels: c as 1 | 3, data };
}

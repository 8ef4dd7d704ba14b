/**
 * PNG encoding of 8-bit images (grayscale, grayscale + alpha, RGB or RGBA) with `fast-png`, and an
 * atomic file writer that never leaves a half-written PNG behind.
 *
 * @module
 */

// Pinned as the project asks; deno.json has no import map entry for it.
import { encode } from "npm:fast-png@8.0.0";
import { writeFileAtomic } from "./atomic.ts";

/** An 8-bit image: `height` rows of `width` pixels, `channels` bytes per pixel, row-major. */
export interface PixelImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Bytes per pixel: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
  /** `width * height * channels` bytes, top row first. */
  data: Uint8Array;
}

function checkImage(image: PixelImage): void {
  const { width, height, channels, data } = image;
  if (!Number.isSafeInteger(width) || width < 1 || !Number.isSafeInteger(height) || height < 1) {
    throw new RangeError(
      `PNG image size must be positive integers, got ${width} x ${height}`,
    );
  }
  if (channels !== 1 && channels !== 2 && channels !== 3 && channels !== 4) {
    throw new RangeError(
      `PNG image channels must be 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA), got ${channels}`,
    );
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * channels) {
    throw new RangeError(
      `PNG image data must be a Uint8Array of width * height * channels = ${
        width * height * channels
      } bytes, got ${data instanceof Uint8Array ? data.length : "another type"}`,
    );
  }
}

/** Encodes an 8-bit image as PNG file bytes. */
export function encodePng(image: PixelImage): Uint8Array {
  checkImage(image);
  return encode({
    width: image.width,
    height: image.height,
    data: image.data,
    depth: 8,
    channels: image.channels,
  });
}

/**
 * Writes `image` as a PNG file at `path` atomically (see {@link writeFileAtomic}): a crash leaves
 * either the old file or the complete new one. The folder must exist.
 */
export async function writePngAtomic(path: string, image: PixelImage): Promise<void> {
  await writeFileAtomic(path, encodePng(image));
}

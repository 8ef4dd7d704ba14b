/**
 * Model files: save/load round trips (weights, EMA, config, steps, samples), PyTorch state_dict
 * names and shapes, EMA-only files, atomic saves, and every malformed file failing with a
 * FileFormatError that names it.
 */

import assert from "node:assert/strict";
import { FileFormatError } from "../../src/errors.ts";
import {
  decodeModel,
  EMA_PREFIX,
  encodeModel,
  loadModel,
  MODEL_FORMAT,
  saveModel,
} from "../../src/io/model_file.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type NamedTensor,
} from "../../src/io/safetensors.ts";
import type { DiffusionModel } from "../../src/model.ts";
import { sample } from "../../src/sample.ts";
import { train, type TrainOptions } from "../../src/train.ts";

/** 64 points on two noisy rings, from a small fixed-seed generator (no library code involved). */
function toyData(): { values: Float32Array; shape: number[] } {
  const n = 64, values = new Float32Array(2 * n);
  let s = 12345;
  const u = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < n; i++) {
    const r = (i % 2 ? 1 : 0.5) + 0.05 * u(), a = 2 * Math.PI * u();
    values[2 * i] = r * Math.cos(a);
    values[2 * i + 1] = r * Math.sin(a);
  }
  return { values, shape: [n, 2] };
}

const TINY: TrainOptions = {
  data: toyData(),
  steps: 5,
  batchSize: 8,
  network: { hidden: 8 },
  schedule: { kind: "cosine", T: 10 },
  backend: "reference",
};

let cached: Promise<DiffusionModel> | null = null;
/** The tiny trained model shared by the tests (trained once). */
function tinyModel(): Promise<DiffusionModel> {
  cached ??= train(TINY);
  return cached;
}

/** PyTorch's state_dict names and shapes for nn.Sequential(Linear(3,8), ReLU, Linear(8,8), ReLU,
 * Linear(8,8), ReLU, Linear(8,2)). */
const TORCH_NAMES: [string, number[]][] = [
  ["net.0.weight", [8, 3]],
  ["net.0.bias", [8]],
  ["net.2.weight", [8, 8]],
  ["net.2.bias", [8]],
  ["net.4.weight", [8, 8]],
  ["net.4.bias", [8]],
  ["net.6.weight", [2, 8]],
  ["net.6.bias", [2]],
];

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "model_file_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Asserts that loading `path` rejects with a FileFormatError naming it and matching `problem`. */
async function assertLoadFails(path: string, problem: RegExp): Promise<void> {
  await assert.rejects(loadModel(path, "reference"), (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected a FileFormatError, got ${e}`);
    assert.ok(e.message.includes(path), `message should name ${path}: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

/** The saved model's tensors and metadata, with `edit` applied, re-encoded. */
async function editedModelBytes(
  edit: (tensors: Map<string, NamedTensor>, metadata: Record<string, string>) => void,
): Promise<Uint8Array> {
  const { tensors, metadata } = decodeSafetensors(await encodeModel(await tinyModel()));
  edit(tensors, metadata);
  return encodeSafetensors(tensors, metadata);
}

function assertWeightsEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, v] of a) assert.deepEqual(b.get(name), v, name);
}

Deno.test("model file: save then load keeps weights, EMA, config, steps and samples", async () => {
  const model = await tinyModel();
  const raw = await model.weights("raw"), ema = await model.weights("ema");
  // The EMA must differ from the raw weights, or the EMA check below would prove nothing.
  assert.notDeepEqual([...ema.get("net.0.weight")!], [...raw.get("net.0.weight")!]);

  await withTempDir(async (dir) => {
    const path = `${dir}/tiny.safetensors`;
    await saveModel(model, path);
    const loaded = await loadModel(path, "reference");
    assert.notEqual(loaded, model);
    assert.equal(loaded.backend.name, "reference");
    assertWeightsEqual(await loaded.weights("raw"), raw);
    assertWeightsEqual(await loaded.weights("ema"), ema);
    assert.ok(loaded.ema !== null);
    assert.deepEqual(loaded.config, model.config);
    assert.equal(loaded.stepsTrained, 5);
    assert.equal(loaded.stepsTrained, model.stepsTrained);

    const want = await sample(model, { count: 50, seed: 3 });
    const got = await sample(loaded, { count: 50, seed: 3 });
    assert.deepEqual(got.shape, [50, 2]);
    assert.deepEqual(got.values, want.values);
    const wantRaw = await sample(model, { count: 50, seed: 3, weights: "raw" });
    const gotRaw = await sample(loaded, { count: 50, seed: 3, weights: "raw" });
    assert.deepEqual(gotRaw.values, wantRaw.values);
    assert.notDeepEqual(gotRaw.values, got.values);
  });
});

Deno.test("model file: tensors carry PyTorch state_dict names and shapes, plus EMA copies", async () => {
  const model = await tinyModel();
  const { tensors, metadata } = decodeSafetensors(await encodeModel(model));
  const names = [...tensors.keys()];
  const isOpt = (n: string) => n.startsWith("optimizer.");
  const rawNames = names.filter((n) => !n.startsWith(EMA_PREFIX) && !isOpt(n));
  const emaNames = names.filter((n) => n.startsWith(EMA_PREFIX));
  assert.deepEqual(rawNames, TORCH_NAMES.map(([n]) => n));
  assert.deepEqual(emaNames.sort(), TORCH_NAMES.map(([n]) => `ema.${n}`).sort());
  // The optimizer's moments ride along (for resuming) under their own prefixes.
  assert.deepEqual(
    names.filter(isOpt).sort(),
    TORCH_NAMES.flatMap(([n]) => [`optimizer.m.${n}`, `optimizer.v.${n}`]).sort(),
  );
  assert.equal(metadata.optimizer_step, "5");
  assert.equal(EMA_PREFIX, "ema.");
  for (const [name, shape] of TORCH_NAMES) {
    assert.deepEqual(tensors.get(name)!.shape, shape, name);
    assert.deepEqual(tensors.get(`ema.${name}`)!.shape, shape, `ema.${name}`);
  }
  const raw = await model.weights("raw"), ema = await model.weights("ema");
  for (const [name] of TORCH_NAMES) {
    assert.deepEqual(tensors.get(name)!.data, raw.get(name), name);
    assert.deepEqual(tensors.get(`ema.${name}`)!.data, ema.get(name), `ema.${name}`);
  }
  assert.equal(metadata.format, MODEL_FORMAT);
  assert.deepEqual(JSON.parse(metadata.config), model.config);
  assert.equal(metadata.steps_trained, "5");
});

Deno.test("model file: a model without EMA saves no ema tensors and loads without EMA", async () => {
  const model = await train({ ...TINY, steps: 2, emaDecay: null });
  assert.equal(model.ema, null);
  const bytes = await encodeModel(model, { optimizer: false });
  const names = [...decodeSafetensors(bytes).tensors.keys()];
  assert.deepEqual(names, TORCH_NAMES.map(([n]) => n));
  const loaded = await decodeModel(bytes, "no-ema.safetensors", "reference");
  assert.equal(loaded.ema, null);
  assertWeightsEqual(await loaded.weights("raw"), await model.weights("raw"));
  assert.equal(loaded.stepsTrained, 2);
});

Deno.test("model file: a missing file is a FileFormatError naming it", async () => {
  await withTempDir(async (dir) => {
    await assertLoadFails(`${dir}/nothing-here.safetensors`, /no such file/);
  });
});

Deno.test("model file: a folder is a FileFormatError naming it", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/model.safetensors`);
    await assertLoadFails(`${dir}/model.safetensors`, /folder/);
  });
});

Deno.test("model file: a truncated file is a FileFormatError naming it", async () => {
  const bytes = await encodeModel(await tinyModel());
  await withTempDir(async (dir) => {
    const path = `${dir}/half.safetensors`;
    await Deno.writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await assertLoadFails(path, /truncated/);
    // Cut inside the data only (the header intact), and inside the header.
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 4));
    await assertLoadFails(path, /truncated/);
    await Deno.writeFile(path, bytes.subarray(0, 100));
    await assertLoadFails(path, /truncated/);
    await Deno.writeFile(path, new Uint8Array(0));
    await assertLoadFails(path, /truncated/);
  });
});

Deno.test("model file: a foreign safetensors file is a FileFormatError naming it", async () => {
  const model = await tinyModel();
  const shapes = new Map(model.layout.entries.map((e) => [e.name, e.shape]));
  const tensors = new Map<string, NamedTensor>();
  for (const [name, data] of await model.weights("raw")) {
    tensors.set(name, { shape: shapes.get(name)!, data });
  }
  await withTempDir(async (dir) => {
    const path = `${dir}/torch.safetensors`;
    await Deno.writeFile(path, encodeSafetensors(tensors, { format: "pt" }));
    await assertLoadFails(path, /not a model file.*"pt"/);
    await Deno.writeFile(path, encodeSafetensors(tensors));
    await assertLoadFails(path, /not a model file/);
  });
});

Deno.test("model file: a missing tensor is a FileFormatError naming file and tensor", async () => {
  const bytes = await editedModelBytes((t) => t.delete("net.2.bias"));
  await withTempDir(async (dir) => {
    const path = `${dir}/missing.safetensors`;
    await Deno.writeFile(path, bytes);
    await assertLoadFails(path, /net\.2\.bias.*missing/);
  });
});

Deno.test("model file: a tensor of the wrong shape is a FileFormatError naming it", async () => {
  // Same number of values, transposed shape.
  const transposed = await editedModelBytes((t) => {
    const w = t.get("net.0.weight")!;
    t.set("net.0.weight", { shape: [3, 8], data: w.data });
  });
  const emaWrong = await editedModelBytes((t) => {
    t.set("ema.net.6.bias", { shape: [3], data: new Float32Array(3) });
  });
  await withTempDir(async (dir) => {
    const path = `${dir}/shape.safetensors`;
    await Deno.writeFile(path, transposed);
    await assertLoadFails(path, /net\.0\.weight.*\[3,8\].*\[8,3\]/);
    await Deno.writeFile(path, emaWrong);
    await assertLoadFails(path, /ema\.net\.6\.bias.*\[3\].*\[2\]/);
  });
});

Deno.test("model file: an unreadable configuration is a FileFormatError naming the file", async () => {
  const notJson = await editedModelBytes((_, m) => (m.config = "{oops"));
  const badSchedule = await editedModelBytes((_, m) => {
    const c = JSON.parse(m.config);
    c.schedule.T = 0;
    m.config = JSON.stringify(c);
  });
  await withTempDir(async (dir) => {
    const path = `${dir}/config.safetensors`;
    await Deno.writeFile(path, notJson);
    await assertLoadFails(path, /configuration/);
    await Deno.writeFile(path, badSchedule);
    await assertLoadFails(path, /configuration/);
  });
});

Deno.test("model file: a file of another format is a FileFormatError naming it", async () => {
  const png = Uint8Array.from([
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a, // PNG signature
    0x00,
    0x00,
    0x00,
    0x0d,
    0x49,
    0x48,
    0x44,
    0x52, // IHDR chunk
    0x00,
    0x00,
    0x00,
    0x01,
    0x00,
    0x00,
    0x00,
    0x01,
    0x08,
    0x06,
    0x00,
    0x00,
    0x00,
    0x1f,
    0x15,
    0xc4,
    0x89,
  ]);
  const random = new Uint8Array(4096);
  crypto.getRandomValues(random);
  random[7] = 0x80; // the first 8 bytes read as a header length far beyond the file
  const text = new TextEncoder().encode("x,y\n0.1,0.2\n0.3,0.4\n".repeat(20));
  await withTempDir(async (dir) => {
    for (
      const [name, bytes] of [["img.png", png], ["noise.bin", random], ["pts.csv", text]] as const
    ) {
      const path = `${dir}/${name}`;
      await Deno.writeFile(path, bytes);
      await assertLoadFails(path, /safetensors/);
    }
  });
});

Deno.test("model file: saving over an existing file leaves no temporary files", async () => {
  const model = await tinyModel();
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    await Deno.writeFile(path, new TextEncoder().encode("old content"));
    await saveModel(model, path);
    await saveModel(model, path);
    assert.deepEqual(await listDir(dir), ["model.safetensors"]);
    assert.deepEqual(await Deno.readFile(path), await encodeModel(model));
    const loaded = await loadModel(path, "reference");
    assertWeightsEqual(await loaded.weights("raw"), await model.weights("raw"));
  });
});

Deno.test("model file: a failed save throws and creates no file", async () => {
  const model = await tinyModel();
  await withTempDir(async (dir) => {
    // The folder does not exist.
    const path = `${dir}/no-such-folder/model.safetensors`;
    await assert.rejects(saveModel(model, path));
    assert.equal(await exists(path), false);
    assert.equal(await exists(`${dir}/no-such-folder`), false);
    assert.deepEqual(await listDir(dir), []);

    // The target is a folder: the rename fails, and the temporary file must be cleaned up.
    await Deno.mkdir(`${dir}/target.safetensors`);
    await assert.rejects(saveModel(model, `${dir}/target.safetensors`));
    assert.deepEqual(await listDir(dir), ["target.safetensors"]);
    assert.ok((await Deno.stat(`${dir}/target.safetensors`)).isDirectory);
    assert.deepEqual(await listDir(`${dir}/target.safetensors`), []);
  });
});

Deno.test("model file: only: 'ema' writes just the EMA weights under the plain state_dict names", async () => {
  const model = await tinyModel();
  const { tensors, metadata } = decodeSafetensors(await encodeModel(model, { only: "ema" }));
  assert.deepEqual([...tensors.keys()], TORCH_NAMES.map(([n]) => n));
  const ema = await model.weights("ema");
  for (const [name] of TORCH_NAMES) assert.deepEqual(tensors.get(name)!.data, ema.get(name), name);
  assert.equal(metadata.weights, "ema");
  const loaded = await decodeModel(
    await encodeModel(model, { only: "ema" }),
    "ema.safetensors",
    "reference",
  );
  assert.equal(loaded.ema, null);
  assert.equal(loaded.optimizer, null);
  assertWeightsEqual(await loaded.weights("raw"), ema);
});

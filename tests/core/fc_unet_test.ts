/**
 * The fully connected UNet of seed 003 (src/models/fc_unet.ts): its parameters and their count for
 * the seed's sizes, output shapes for image and vector input, the forward pass against a direct
 * float64 loop, gradients against central finite differences, that train() lowers its loss, a
 * save/load round trip, and bad options ending in one OptionError naming the field.
 */

import assert from "node:assert/strict";
import type { Backend } from "../../src/backend.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { OptionError } from "../../src/errors.ts";
import { loadModel, saveModel } from "../../src/io/model_file.ts";
import type { DiffusionModel } from "../../src/model.ts";
import { FcUNet, type FcUNetConfig, type FcUNetOptions } from "../../src/models/fc_unet.ts";
import {
  type NetworkOptions,
  networkSampleShape,
  networkSpecs,
  resolveNetworkConfig,
} from "../../src/models/registry.ts";
import { ParamLayout, ParamStore } from "../../src/nn/params.ts";
import { regressionLoss } from "../../src/ops/loss.ts";
import { Random } from "../../src/random.ts";
import { sample } from "../../src/sample.ts";
import { backward, noGrad, tensor } from "../../src/tensor.ts";
import { type Dataset, train, type TrainOptions, type TrainProgress } from "../../src/train.ts";
import { gradCheck, paramGradError } from "../helpers/gradcheck.ts";

/** A fully connected UNet configuration for samples of `shape`. */
function config(
  shape: number[],
  o: Partial<Omit<FcUNetConfig, "kind" | "shape" | "dim">> = {},
): FcUNetConfig {
  const { kind: _, ...c } = resolveNetworkConfig(
    { kind: "fc-unet", ...o } as FcUNetOptions,
    [1, ...shape],
    o.T ?? 20,
  ) as FcUNetConfig;
  return { kind: "fc-unet", ...c, ...o };
}

/** The network over its initial weights (moved off the norms' 1 and 0) on `be`. */
function netOn(be: Backend, cfg: FcUNetConfig, seed: number, grads = false) {
  const layout = new ParamLayout(networkSpecs(cfg));
  const values = Float64Array.from(layout.initialValues(new Random(seed)));
  const rng = new Random(seed + 1);
  for (const e of layout.entries) {
    if (e.init.kind !== "constant") continue;
    const u = rng.uniforms(e.size);
    for (let i = 0; i < e.size; i++) values[e.offset + i] += 0.6 * u[i] - 0.3;
  }
  const store = new ParamStore(
    be,
    layout,
    be.upload(values),
    grads ? be.alloc(layout.length) : null,
  );
  return { net: new FcUNet(cfg, store), layout, values, store };
}

Deno.test("fc-unet: the seed's default sizes for MNIST, parameter for parameter", () => {
  const cfg = resolveNetworkConfig({ kind: "fc-unet" }, [60_000, 1, 28, 28], 1000);
  assert.deepEqual(cfg, {
    kind: "fc-unet",
    shape: [1, 28, 28],
    dim: 784,
    widths: [2000, 1000, 500],
    T: 1000,
    layerNorm: true,
    embeddingDim: 32,
  });
  assert.deepEqual(networkSampleShape(cfg), [1, 28, 28]);
  const specs = networkSpecs(cfg);
  assert.deepEqual(specs.map((s) => [s.name, s.shape]), [
    ["down.0.weight", [2000, 785]],
    ["down.0.bias", [2000]],
    ["down.1.weight", [1000, 2000]],
    ["down.1.bias", [1000]],
    ["down.2.weight", [500, 1000]],
    ["down.2.bias", [500]],
    ["down_norm.0.weight", [2000]],
    ["down_norm.0.bias", [2000]],
    ["down_norm.1.weight", [1000]],
    ["down_norm.1.bias", [1000]],
    ["down_norm.2.weight", [500]],
    ["down_norm.2.bias", [500]],
    ["up.0.weight", [2000, 1000]],
    ["up.0.bias", [2000]],
    ["up.1.weight", [1000, 500]],
    ["up.1.bias", [1000]],
    ["up_norm.0.weight", [2000]],
    ["up_norm.0.bias", [2000]],
    ["up_norm.1.weight", [1000]],
    ["up_norm.1.bias", [1000]],
    ["out.weight", [784, 2000]],
    ["out.bias", [784]],
  ]);
  // By hand, from the seed's layers: Linear(784 + 1 -> 2000), Linear(2000 -> 1000),
  // Linear(1000 -> 500), Linear(500 -> 1000), Linear(1000 -> 2000), Linear(2000 -> 784), and a
  // LayerNorm (scale and shift) after each of the first five.
  const linears = (785 * 2000 + 2000) + (2000 * 1000 + 1000) + (1000 * 500 + 500) +
    (500 * 1000 + 1000) + (1000 * 2000 + 2000) + (2000 * 784 + 784);
  const norms = 2 * (2000 + 1000 + 500 + 1000 + 2000);
  assert.equal(linears, 8_145_284);
  assert.equal(norms, 13_000);
  assert.equal(new ParamLayout(specs).count, 8_158_284);
  assert.equal(linears + norms, 8_158_284);

  // Without the norms, and conditional: the class embedding (32 wide) joins the input.
  const plain = networkSpecs({ ...cfg, layerNorm: false });
  assert.equal(new ParamLayout(plain).count, 8_145_284);
  assert.ok(plain.every((s) => !s.name.includes("norm")));
  const cond = resolveNetworkConfig({ kind: "fc-unet" }, [10, 1, 28, 28], 1000, 10);
  const condSpecs = networkSpecs(cond);
  assert.deepEqual(condSpecs[0].shape, [2000, 785 + 32]);
  assert.deepEqual(condSpecs.at(-1), {
    name: "label_emb.weight",
    shape: [11, 32],
    init: { kind: "uniform", bound: Math.sqrt(3) },
  });
  assert.equal(new ParamLayout(condSpecs).count, 8_158_284 + 32 * 2000 + 11 * 32);
});

Deno.test("fc-unet: image input comes back image-shaped, flat input flat, vector data too", async () => {
  const be = createReferenceBackend();
  const cfg = config([1, 4, 4], { widths: [12, 6, 3] });
  const { net } = netOn(be, cfg, 3);
  const x = new Random(4).normals(3 * 16), t = tensor(be, [1, 7, 20], [3]);
  const img = noGrad(() => net.forward(tensor(be, x, [3, 1, 4, 4]), t));
  const flat = noGrad(() => net.forward(tensor(be, x, [3, 16]), t));
  assert.deepEqual([...img.shape], [3, 1, 4, 4]);
  assert.deepEqual([...flat.shape], [3, 16]);
  assert.deepEqual(await img.toArray(), await flat.toArray());
  assert.throws(() => net.forward(tensor(be, x, [3, 16, 1]), t), /x must be \[B, 1,4,4\] or/);
  assert.throws(() => net.forward(tensor(be, x, [3, 1, 4, 4]), tensor(be, [1], [1])), /t has 1/);
  assert.throws(
    () => net.forward(tensor(be, x, [3, 1, 4, 4]), t, undefined, tensor(be, [0, 0, 0], [3])),
    /unconditional/,
  );

  // Vector data [count, 2], one level.
  const vcfg = config([2], { widths: [8] });
  assert.deepEqual(networkSampleShape(vcfg), [2]);
  const v = netOn(be, vcfg, 5).net;
  const y = noGrad(() =>
    v.forward(tensor(be, [0.1, -0.2, 0.3, 0.4], [2, 2]), tensor(be, [2, 9], [2]))
  );
  assert.deepEqual([...y.shape], [2, 2]);
  assert.ok((await y.toArray()).every(Number.isFinite));
});

/** The seed's forward pass written out directly in float64, one sample at a time. */
function directForward(
  cfg: FcUNetConfig,
  layout: ParamLayout,
  values: Float64Array,
  x: Float64Array,
  t: number[],
): Float64Array {
  const p = (name: string) => {
    const e = layout.get(name);
    return values.subarray(e.offset, e.offset + e.size);
  };
  const linear = (name: string, v: Float64Array) => {
    const w = p(`${name}.weight`), b = p(`${name}.bias`), n = v.length, out = Float64Array.from(b);
    for (let o = 0; o < out.length; o++) for (let i = 0; i < n; i++) out[o] += w[o * n + i] * v[i];
    return out;
  };
  const gelu = (v: Float64Array) =>
    v.map((z) => 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3))));
  const layerNorm = (name: string, v: Float64Array) => {
    if (!cfg.layerNorm) return v;
    const g = p(`${name}.weight`), b = p(`${name}.bias`);
    const mean = v.reduce((s, z) => s + z, 0) / v.length;
    const variance = v.reduce((s, z) => s + (z - mean) ** 2, 0) / v.length;
    return v.map((z, i) => ((z - mean) / Math.sqrt(variance + 1e-5)) * g[i] + b[i]);
  };
  const addTo = (a: Float64Array, b: Float64Array) => a.map((z, i) => z + b[i]);
  const D = cfg.dim, out = new Float64Array(x.length);
  for (let s = 0; s < t.length; s++) {
    const input = new Float64Array(D + 1);
    input.set(x.subarray(s * D, (s + 1) * D));
    input[D] = t[s] / cfg.T;
    // FCEncoder: out0 = input_transform(x), out = LN(gelu(out0)), ...
    const h0 = linear("down.0", input);
    const h1 = linear("down.1", layerNorm("down_norm.0", gelu(h0)));
    const h2 = linear("down.2", layerNorm("down_norm.1", gelu(h1)));
    let a = addTo(layerNorm("down_norm.2", gelu(h2)), h2);
    a = addTo(layerNorm("up_norm.1", gelu(linear("up.1", a))), h1);
    a = addTo(layerNorm("up_norm.0", gelu(linear("up.0", a))), h0);
    out.set(linear("out", a), s * D);
  }
  return out;
}

Deno.test("fc-unet: the forward pass is the seed's, written out directly (float64)", async () => {
  const be = createReferenceBackend({ dtype: "float64" });
  for (const layerNorm of [true, false]) {
    const cfg = config([2, 3, 3], { widths: [10, 7, 4], layerNorm, T: 50 });
    const { net, layout, values } = netOn(be, cfg, 9);
    const x = Float64Array.from(new Random(10).normals(2 * 18)), t = [3, 41];
    const got = await noGrad(() => net.forward(tensor(be, x, [2, 2, 3, 3]), tensor(be, t, [2])))
      .toArray();
    const want = directForward(cfg, layout, values, x, t);
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Math.abs(got[i] - want[i]) < 1e-12,
        `layerNorm ${layerNorm}, ${i}: ${got[i]} vs ${want[i]}`,
      );
    }
  }
});

Deno.test("fc-unet: gradients of an L2 loss match central finite differences (float64)", async () => {
  const be = createReferenceBackend({ dtype: "float64" });
  // Conditional, so the class embedding's gradient is checked too.
  const cfg = { ...config([1, 2, 2], { widths: [5, 4, 3], embeddingDim: 3 }), classes: 3 };
  const { net, layout, values, store } = netOn(be, cfg, 11, true);
  const rng = new Random(12);
  const x = tensor(be, rng.normals(8), [2, 1, 2, 2]),
    target = tensor(be, rng.normals(8), [2, 1, 2, 2]);
  const t = tensor(be, [4, 17], [2]), labels = tensor(be, [2, 3], [2]);
  const loss = () => regressionLoss("l2", net.forward(x, t, undefined, labels), target);
  backward(loss());
  const grads = await be.read(store.grads!);

  // Every element of every parameter tensor.
  const { worst, at } = await paramGradError(be, layout, store, values, grads, loss, "all");
  for (const e of layout.entries) {
    assert.ok(
      grads.subarray(e.offset, e.offset + e.size).some((g) => g !== 0),
      `${e.name} has no gradient`,
    );
  }
  assert.ok(worst < 1e-5, `worst relative error ${worst} at ${at}`);

  // And with respect to the input, image-shaped and flat, through the shared helper.
  for (const shape of [[2, 1, 2, 2], [2, 4]]) {
    await gradCheck(
      be,
      [{ data: rng.normals(8), shape }],
      ([xi]) => net.forward(xi, t, undefined, labels),
      { tol: 1e-6 },
    );
  }
});

/** 48 images 1x4x4: two bar patterns (rows or columns) plus a little noise, in [-1, 1]. */
function bars(): Dataset {
  const n = 48, noise = new Random(21).normals(n * 16), values = new Float32Array(n * 16);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < 16; i++) {
      const row = i >> 2, col = i & 3;
      const on = s % 2 ? row % 2 === 0 : col % 2 === 0;
      values[s * 16 + i] = (on ? 0.8 : -0.8) + 0.05 * noise[s * 16 + i];
    }
  }
  return { values, shape: [n, 1, 4, 4] };
}

const TRAINING: TrainOptions = {
  data: bars(),
  network: { kind: "fc-unet", widths: [32, 16, 8] },
  schedule: { kind: "cosine", T: 50 },
  steps: 300,
  batchSize: 32,
  lr: 3e-3,
  progressEvery: 10,
  backend: "reference",
  seed: 5,
};

let trained: Promise<{ model: DiffusionModel; reports: TrainProgress[] }> | null = null;
/** The model of {@link TRAINING} and its progress reports (trained once). */
function trainedModel() {
  trained ??= (async () => {
    const reports: TrainProgress[] = [];
    const model = await train({ ...TRAINING, onProgress: (p) => reports.push(p) });
    return { model, reports };
  })();
  return trained;
}

Deno.test("fc-unet: train() on images lowers the loss", async () => {
  const { model, reports } = await trainedModel();
  assert.equal(model.config.network.kind, "fc-unet");
  assert.deepEqual(model.config.sampleShape, [1, 4, 4]);
  assert.equal(reports.at(-1)!.step, 300);
  const mean = (ps: TrainProgress[]) => ps.reduce((s, p) => s + p.loss, 0) / ps.length;
  const early = mean(reports.slice(0, 3)), late = mean(reports.slice(-5));
  console.log(
    `fc-unet training: loss ${early.toFixed(4)} (steps 10-30) -> ${late.toFixed(4)} (last 50)`,
  );
  assert.ok(late < 0.6 * early, `loss ${early} -> ${late}`);
  const s = await sample(model, { count: 4, seed: 1, sampler: "ddim", steps: 10 });
  assert.deepEqual(s.shape, [4, 1, 4, 4]);
  assert.ok(s.values.every(Number.isFinite));
});

Deno.test("fc-unet: a saved model loads back with the same configuration and outputs", async () => {
  const { model } = await trainedModel();
  const dir = await Deno.makeTempDir({ prefix: "fc_unet_" });
  try {
    const path = `${dir}/fc.safetensors`;
    await saveModel(model, path);
    const loaded = await loadModel(path, "reference");
    assert.deepEqual(loaded.config, model.config);
    const x = new Random(30).normals(3 * 16), t = [1, 25, 50];
    for (const weights of ["raw", "ema"] as const) {
      const out = async (m: DiffusionModel) => {
        const be = m.backend;
        return await noGrad(() =>
          m.network(weights).forward(tensor(be, x, [3, 1, 4, 4]), tensor(be, t, [3]))
        ).toArray();
      };
      assert.deepEqual(await out(loaded), await out(model), weights);
    }
    const a = await sample(model, { count: 4, seed: 2, sampler: "ddim", steps: 5 });
    const b = await sample(loaded, { count: 4, seed: 2, sampler: "ddim", steps: 5 });
    assert.deepEqual(b.values, a.values);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fc-unet: bad options end in one OptionError naming the field", async () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ widths: [] }, /^network\.widths must list 1 to 16 widths, got \[\]$/],
    [{ widths: "2000" }, /^network\.widths must list 1 to 16 widths, got "2000"$/],
    [{ widths: Array(17).fill(8) }, /^network\.widths must list 1 to 16 widths/],
    [{ widths: [8, 0] }, /^network\.widths\[1\] must be an integer in \[1, 16384\], got 0$/],
    [{ widths: [16385] }, /^network\.widths\[0\] must be an integer in \[1, 16384\], got 16385$/],
    [{ widths: [8, 4.5] }, /^network\.widths\[1\] must be an integer/],
    [{ layerNorm: "yes" }, /^network\.layerNorm must be true or false, got "yes"$/],
    [{ embeddingDim: 0 }, /^network\.embeddingDim must be an integer in \[1, 16384\], got 0$/],
  ];
  for (const [o, re] of bad) {
    const options = { kind: "fc-unet", ...o } as NetworkOptions;
    assert.throws(
      () => resolveNetworkConfig(options, [10, 1, 4, 4], 100),
      (e: Error) => e instanceof OptionError && re.test(e.message),
      JSON.stringify(o),
    );
    // Through train(), before any work.
    await assert.rejects(
      train({ ...TRAINING, network: options as FcUNetOptions, steps: 1 }),
      (e: Error) => e instanceof OptionError && re.test(e.message),
      JSON.stringify(o),
    );
  }
  assert.throws(
    () => resolveNetworkConfig({ kind: "fc-net" as "fc-unet" }, [10, 2], 100),
    (e: Error) =>
      e instanceof OptionError &&
      e.message === 'network.kind must be "mlp", "unet" or "fc-unet", got "fc-net"',
  );
});

/**
 * The UNet against its PyTorch twin (../shared/bench/torch_twin.py): state_dict names, shapes and
 * order, the parameter count, output shapes, a numeric forward cross-check (needs /usr/bin/python3
 * with torch; skipped with a printed reason otherwise), the attention block against a direct loop,
 * and gradients of a tiny UNet against central finite differences in float64.
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { encodeSafetensors, type NamedTensor } from "../../src/io/safetensors.ts";
import {
  checkUNetConfig,
  DEFAULT_UNET_CONFIG,
  UNet,
  type UNetConfig,
  unetConfig,
} from "../../src/models/unet.ts";
import { networkSpecs } from "../../src/models/registry.ts";
import { Attention } from "../../src/nn/attention.ts";
import { ParamLayout, recordParams } from "../../src/nn/params.ts";
import { regressionLoss } from "../../src/ops/loss.ts";
import { Random } from "../../src/random.ts";
import { backward, noGrad, tensor } from "../../src/tensor.ts";
import { saveModel } from "../../src/io/model_file.ts";
import "../../backends.ts";
import { train } from "../../src/train.ts";
import { paramGradError } from "../helpers/gradcheck.ts";
import { storeOf, uniformArray } from "../helpers/params.ts";

const PYTHON = "/usr/bin/python3";
const TWIN = new URL("../../../shared/bench/torch_twin.py", import.meta.url).pathname;

/** Runs the twin with `args`; stdout, or throws with stderr. */
async function runTwin(args: string[]): Promise<string> {
  const out = await new Deno.Command(PYTHON, {
    args: [TWIN, ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`torch_twin.py ${args.join(" ")} failed:\n${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** Why the twin cannot run here, or null when it can. */
async function twinMissing(): Promise<string | null> {
  try {
    await Deno.stat(TWIN);
  } catch {
    return `${TWIN} not found`;
  }
  try {
    const out = await new Deno.Command(PYTHON, { args: ["-c", "import torch"], stderr: "piped" })
      .output();
    if (!out.success) return `${PYTHON} cannot import torch`;
  } catch {
    return `${PYTHON} not found`;
  }
  return null;
}

const MISSING = await twinMissing();
if (MISSING) console.log(`unet_test: PyTorch twin checks skipped: ${MISSING}`);

Deno.test("unet: the default parameter list is the twin's: 793,697 parameters", () => {
  const specs = networkSpecs(unetConfig());
  assert.deepEqual(unetConfig(), { ...DEFAULT_UNET_CONFIG, mults: [1, 2, 2], attentionAt: [7] });
  assert.equal(new ParamLayout(specs).count, 793_697);
  assert.equal(specs.length, 112);
  assert.equal(new Set(specs.map((s) => s.name)).size, specs.length, "names are unique");
  // Initialisation: GroupNorm weight 1 / bias 0, Linear and Conv uniform in ±1/sqrt(fan_in).
  const byName = new Map(specs.map((s) => [s.name, s]));
  assert.deepEqual(byName.get("attn.n.weight")!.init, { kind: "constant", value: 1 });
  assert.deepEqual(byName.get("up.2.n1.bias")!.init, { kind: "constant", value: 0 });
  assert.deepEqual(byName.get("up.2.c1.weight")!.init, {
    kind: "uniform",
    bound: 1 / Math.sqrt(96 * 9),
  });
  assert.deepEqual(byName.get("up.2.c1.bias")!.init, {
    kind: "uniform",
    bound: 1 / Math.sqrt(96 * 9),
  });
  assert.deepEqual(byName.get("tmlp.2.bias")!.init, { kind: "uniform", bound: 1 / Math.sqrt(128) });
});

Deno.test({
  name: "unet: state_dict names, shapes and order equal the PyTorch twin's",
  ignore: MISSING !== null,
  fn: async () => {
    const lines = (await runTwin(["names", "unet"])).trim().split("\n");
    const twin = lines.map((l) => {
      const m = /^(\S+) \(([\d, ]*)\)$/.exec(l.trim());
      assert.ok(m, `unexpected line from the twin: ${l}`);
      return {
        name: m[1],
        shape: m[2].split(",").map((s) => s.trim()).filter((s) => s).map(Number),
      };
    });
    const ours = networkSpecs(unetConfig()).map((s) => ({ name: s.name, shape: s.shape }));
    assert.deepEqual(ours, twin);
  },
});

Deno.test("unet: output shape equals input shape (1x28x28 default, 3x32x32, attention at every level)", () => {
  const be = createReferenceBackend();
  const configs: UNetConfig[] = [
    unetConfig(),
    unetConfig({ channels: 3, imageSize: 32 }),
    unetConfig({
      base: 8,
      mults: [1, 2],
      groups: 2,
      imageSize: 8,
      channels: 2,
      attentionAt: [8, 4],
    }),
  ];
  assert.deepEqual(configs[1].attentionAt, [8]);
  for (const cfg of configs) {
    const layout = new ParamLayout(networkSpecs(cfg));
    const net = new UNet(cfg, storeOf(be, layout, layout.initialValues(new Random(3))));
    const rng = new Random(4);
    const shape = [2, cfg.channels, cfg.imageSize, cfg.imageSize];
    const x = tensor(be, rng.normals(shape.reduce((a, b) => a * b)), shape);
    const y = noGrad(() => net.forward(x, tensor(be, [1, 150], [2])));
    assert.deepEqual([...y.shape], shape, `config ${JSON.stringify(cfg)}`);
  }
});

Deno.test("unet: configuration errors name the problem", () => {
  assert.throws(() => networkSpecs(unetConfig({ imageSize: 30 })), /divisible by 4/);
  assert.throws(
    () => networkSpecs(unetConfig({ imageSize: 32, attentionAt: [7] })),
    /attentionAt/,
  );
  assert.throws(() => networkSpecs(unetConfig({ groups: 7 })), /groups/);
  assert.throws(() => networkSpecs(unetConfig({ heads: 3 })), /heads/);
  assert.throws(() => checkUNetConfig(unetConfig({ groups: 7 })), /groups/);
  assert.throws(() => checkUNetConfig(unetConfig({ heads: 3 })), /heads/);
  checkUNetConfig(unetConfig({ channels: 3, imageSize: 32 }));
  assert.throws(
    () => networkSpecs(unetConfig({ base: 6, groups: 3, mults: [1, 0] })),
    /mults\[1\]/,
  );
  assert.throws(() => networkSpecs(unetConfig({ base: 5, groups: 1 })), /base/);
  const cfg = unetConfig({ base: 8, mults: [1, 2], groups: 2, imageSize: 8 });
  const be = createReferenceBackend();
  const layout = new ParamLayout(networkSpecs(cfg));
  const net = new UNet(cfg, storeOf(be, layout, layout.initialValues(new Random(0))));
  assert.throws(
    () =>
      net.forward(
        tensor(be, new Float32Array(2 * 64), [2, 8, 8]),
        tensor(be, [1, 2], [2]),
      ),
    /x must be/,
  );
});

Deno.test("attention: the block equals a direct loop over heads, queries and keys", async () => {
  const be = createReferenceBackend({ dtype: "float64" });
  const b = 2, c = 8, hh = 3, ww = 2, hw = hh * ww, heads = 2, d = c / heads, groups = 2;
  const layout = new ParamLayout(recordParams((p) => new Attention(p, "a", c, { heads, groups })));
  const rng = new Random(11);
  const values = uniformArray(rng, layout.length, -0.6, 0.6);
  const net = new Attention(storeOf(be, layout, values), "a", c, { heads, groups });
  const xv = rng.normals(b * c * hw);
  const y = await net.forward(tensor(be, xv, [b, c, hh, ww])).toArray();
  const p = (name: string) => {
    const e = layout.get(name);
    return values.subarray(e.offset, e.offset + e.size);
  };
  const [gw, gb, qw, qb, ow, ob] = [
    "a.n.weight",
    "a.n.bias",
    "a.qkv.weight",
    "a.qkv.bias",
    "a.o.weight",
    "a.o.bias",
  ]
    .map(p);
  for (let n = 0; n < b; n++) {
    const x = xv.subarray(n * c * hw, (n + 1) * c * hw);
    // GroupNorm.
    const xn = new Float64Array(c * hw), per = (c / groups) * hw;
    for (let g = 0; g < groups; g++) {
      const seg = x.subarray(g * per, (g + 1) * per);
      const mu = seg.reduce((s, v) => s + v, 0) / per;
      const vr = seg.reduce((s, v) => s + (v - mu) ** 2, 0) / per;
      for (let i = 0; i < per; i++) {
        const ch = g * (c / groups) + Math.floor(i / hw);
        xn[g * per + i] = ((seg[i] - mu) / Math.sqrt(vr + 1e-5)) * gw[ch] + gb[ch];
      }
    }
    // 1x1 conv to 3c.
    const qkv = new Float64Array(3 * c * hw);
    for (let o = 0; o < 3 * c; o++) {
      for (let i = 0; i < hw; i++) {
        let s = qb[o];
        for (let k = 0; k < c; k++) s += qw[o * c + k] * xn[k * hw + i];
        qkv[o * hw + i] = s;
      }
    }
    const at = (part: number, h: number, dd: number, i: number) =>
      qkv[((part * heads + h) * d + dd) * hw + i];
    const att = new Float64Array(c * hw);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hw; i++) {
        const s = Array.from({ length: hw }, (_, j) => {
          let v = 0;
          for (let dd = 0; dd < d; dd++) v += at(0, h, dd, i) * at(1, h, dd, j);
          return v / Math.sqrt(d);
        });
        const mx = Math.max(...s),
          e = s.map((v) => Math.exp(v - mx)),
          z = e.reduce((a, v) => a + v, 0);
        for (let dd = 0; dd < d; dd++) {
          let v = 0;
          for (let j = 0; j < hw; j++) v += (e[j] / z) * at(2, h, dd, j);
          att[(h * d + dd) * hw + i] = v;
        }
      }
    }
    for (let o = 0; o < c; o++) {
      for (let i = 0; i < hw; i++) {
        let s = ob[o] + x[o * hw + i];
        for (let k = 0; k < c; k++) s += ow[o * c + k] * att[k * hw + i];
        const got = y[n * c * hw + o * hw + i];
        assert.ok(Math.abs(got - s) < 1e-12, `n ${n} o ${o} i ${i}: ${got} vs ${s}`);
      }
    }
  }
});

Deno.test({
  name: "unet: forward matches the PyTorch twin at t = 37 (random weights, batch 2)",
  ignore: MISSING !== null,
  fn: async () => {
    const cfg = unetConfig();
    const layout = new ParamLayout(networkSpecs(cfg));
    const values = layout.initialValues(new Random(1));
    const tensors = new Map<string, NamedTensor>();
    for (const e of layout.entries) {
      tensors.set(e.name, { shape: e.shape, data: values.slice(e.offset, e.offset + e.size) });
    }
    const B = 2, n = B * 28 * 28;
    const x = Float32Array.from(new Random(2).normals(n));
    const dir = await Deno.makeTempDir({ prefix: "unet_twin_" });
    try {
      const ckpt = `${dir}/w.safetensors`, xf = `${dir}/x.f32`, of = `${dir}/y.f32`;
      await Deno.writeFile(ckpt, encodeSafetensors(tensors));
      const xb = new Uint8Array(4 * n), xv = new DataView(xb.buffer);
      x.forEach((v, i) => xv.setFloat32(4 * i, v, true));
      await Deno.writeFile(xf, xb);
      await runTwin(["forward", "unet", ckpt, xf, "37", of]);
      const ob = await Deno.readFile(of);
      assert.equal(ob.length, 4 * n, "the twin's output has the input's size");
      const ov = new DataView(ob.buffer, ob.byteOffset, ob.byteLength);
      const twin = Float32Array.from({ length: n }, (_, i) => ov.getFloat32(4 * i, true));

      const be = createReferenceBackend();
      const net = new UNet(cfg, storeOf(be, layout, values));
      const t0 = performance.now();
      const y = noGrad(() => net.forward(tensor(be, x, [B, 1, 28, 28]), tensor(be, [37, 37], [B])));
      const ours = await y.toArray();
      const ms = performance.now() - t0;
      let diff = 0, scale = 0;
      for (let i = 0; i < n; i++) {
        diff = Math.max(diff, Math.abs(ours[i] - twin[i]));
        scale = Math.max(scale, Math.abs(twin[i]));
      }
      console.log(
        `unet vs twin: max |diff| ${diff.toExponential(3)}, max |output| ${scale.toFixed(4)}, ` +
          `relative ${(diff / scale).toExponential(3)}; our forward ${ms.toFixed(0)} ms`,
      );
      assert.ok(scale > 0.01, "the output is not trivially small");
      assert.ok(diff < 1e-4 * scale, `max abs diff ${diff} exceeds 1e-4 x output scale ${scale}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("unet: gradients of an L2 loss match central finite differences (tiny UNet, float64)", async () => {
  const be = createReferenceBackend({ dtype: "float64" });
  const cfg = unetConfig({ base: 8, mults: [1, 2], groups: 2, imageSize: 8, attentionAt: [8, 4] });
  const layout = new ParamLayout(networkSpecs(cfg));
  const rng = new Random(21);
  const values = Float64Array.from(layout.initialValues(new Random(20)));
  // Move GroupNorm scales and shifts off 1 and 0, so their gradients are checked at a generic point.
  for (const e of layout.entries) {
    if (e.init.kind === "constant") {
      const u = uniformArray(rng, e.size, -0.3, 0.3);
      for (let i = 0; i < e.size; i++) values[e.offset + i] += u[i];
    }
  }
  const store = storeOf(be, layout, values, true);
  const net = new UNet(cfg, store);
  const shape = [2, 1, 8, 8];
  const x = tensor(be, rng.normals(128), shape), target = tensor(be, rng.normals(128), shape);
  const t = tensor(be, [3, 170], [2]);
  const loss = () => regressionLoss("l2", net.forward(x, t), target);
  backward(loss());
  const grads = await be.read(store.grads!);

  // One random element of every parameter tensor.
  const { worst, at: worstName } = await paramGradError(
    be,
    layout,
    store,
    values,
    grads,
    loss,
    rng,
  );
  console.log(
    `unet gradient check: ${layout.entries.length} tensors, worst relative error ${
      worst.toExponential(2)
    } (${worstName})`,
  );
  assert.ok(worst < 1e-5, `worst relative error ${worst} at ${worstName}`);
  // Every tensor receives some gradient.
  for (const e of layout.entries) {
    assert.ok(
      grads.subarray(e.offset, e.offset + e.size).some((g) => g !== 0),
      `${e.name} has no gradient`,
    );
  }
});

Deno.test({
  name:
    "unet: a trained model saved with saveModel({ only: 'ema' }) loads in the twin with the same output",
  ignore: MISSING !== null,
  fn: async () => {
    const r = new Random(5), N = 8, n1 = 28 * 28;
    const images = Float32Array.from(r.uniforms(N * n1), (u) => 2 * u - 1);
    const model = await train({
      data: { values: images, shape: [N, 1, 28, 28] },
      network: { kind: "unet" },
      schedule: { kind: "linear", T: 200, betaStart: 1e-4, betaEnd: 0.02 },
      steps: 3,
      batchSize: 4,
      progressEvery: 3,
      backend: "wasm",
    });
    const dir = await Deno.makeTempDir({ prefix: "unet_ckpt_" });
    try {
      const ckpt = `${dir}/ema.safetensors`, xf = `${dir}/x.f32`, of = `${dir}/y.f32`;
      await saveModel(model, ckpt, { only: "ema" });
      const B = 2, x = Float32Array.from(new Random(6).normals(B * n1));
      const xb = new Uint8Array(4 * x.length), xv = new DataView(xb.buffer);
      x.forEach((v, i) => xv.setFloat32(4 * i, v, true));
      await Deno.writeFile(xf, xb);
      await runTwin(["forward", "unet", ckpt, xf, "120", of]);
      const ob = await Deno.readFile(of),
        ov = new DataView(ob.buffer, ob.byteOffset, ob.byteLength);
      const be = model.backend;
      const y = noGrad(() =>
        model.network("ema").forward(tensor(be, x, [B, 1, 28, 28]), tensor(be, [120, 120], [B]))
      );
      const ours = await y.toArray();
      let diff = 0, scale = 0;
      for (let i = 0; i < x.length; i++) {
        const t = ov.getFloat32(4 * i, true);
        diff = Math.max(diff, Math.abs(ours[i] - t));
        scale = Math.max(scale, Math.abs(t));
      }
      assert.ok(scale > 0.01, "the output is not trivially small");
      assert.ok(diff < 1e-4 * scale, `max abs diff ${diff} vs output scale ${scale}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
      model.backend.dispose();
    }
  },
});

/**
 * The UNet's options beyond the PyTorch twin (dropout, blocksPerLevel, ConvNeXt blocks, linear
 * attention) on the reference backend: validation, parameter counts worked out by hand from the
 * layer formulas, parameter names, output shapes, gradients against central finite differences in
 * float64, and short training runs (reproducible, resumable, with deterministic sampling). The
 * blocks those options add (dropout, depthwise convolution, linear attention, the ConvNeXt block)
 * are tested on their own in unet_blocks_test.ts.
 */

import assert from "node:assert/strict";
import type { Backend } from "../../src/backend.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { OptionError } from "../../src/errors.ts";
import { decodeModel, encodeModel } from "../../src/io/model_file.ts";
import { DiffusionModel } from "../../src/model.ts";
import type { ForwardContext } from "../../src/models/network.ts";
import { checkUNetConfig, UNet, type UNetConfig, unetConfig } from "../../src/models/unet.ts";
import { networkSpecs } from "../../src/models/registry.ts";
import { dropoutSites } from "../../src/nn/dropout.ts";
import { ParamLayout } from "../../src/nn/params.ts";
import { regressionLoss } from "../../src/ops/loss.ts";
import { Random } from "../../src/random.ts";
import { sample } from "../../src/sample.ts";
import { backward, noGrad, tensor } from "../../src/tensor.ts";
import { type Dataset, train, type TrainOptions } from "../../src/train.ts";
import { float64Backend, paramGradError } from "../helpers/gradcheck.ts";
import { storeOf, uniformArray } from "../helpers/params.ts";
import { trainStoppedAt } from "../helpers/tiny_training.ts";

// ---- helpers ------------------------------------------------------------------------------------

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Parameter counts of the layers, from their formulas. */
const conv = (ci: number, co: number, k: number) => co * ci * k * k + co;
const gn = (c: number) => 2 * c;
const lin = (i: number, o: number) => i * o + o;
const res = (ci: number, co: number, td: number) =>
  gn(ci) + conv(ci, co, 3) + lin(td, co) + gn(co) + conv(co, co, 3) +
  (ci !== co ? conv(ci, co, 1) : 0);
const cnx = (ci: number, co: number, td: number, m: number) =>
  lin(td, ci) + (ci * 7 * 7 + ci) + gn(ci) + conv(ci, co * m, 3) + gn(co * m) +
  conv(co * m, co, 3) + (ci !== co ? conv(ci, co, 1) : 0);
const fullAttn = (c: number) => gn(c) + conv(c, 3 * c, 1) + conv(c, c, 1);
const linAttn = (c: number) => fullAttn(c) + gn(c);

/** The small UNet's sizes as `train` takes them: base 8 (time dim 32), levels of 8 and 16 channels. */
const SMALL_NET = { base: 8, mults: [1, 2], groups: 2, heads: 2 };
/** The small configuration: 1x8x8, attention at 4x4. */
const SMALL = { channels: 1, imageSize: 8, ...SMALL_NET };
const small = (o: Partial<UNetConfig> = {}) => unetConfig({ ...SMALL, attentionAt: [4], ...o });

function count(c: UNetConfig): number {
  return new ParamLayout(networkSpecs(c)).count;
}

/** A training context whose site s draws from stream 100 + s at block `step`·1000. */
function trainingCtx(seed: number, step: number): ForwardContext {
  return { training: true, draw: (site) => ({ seed, stream: 100 + site, counter: step * 1000 }) };
}

/** A UNet of `cfg` on `be` with weights from `seed` (GroupNorm params moved off 1 and 0). */
function unetOn(be: Backend, cfg: UNetConfig, seed: number, grads = false) {
  const layout = new ParamLayout(networkSpecs(cfg));
  const values = Float64Array.from(layout.initialValues(new Random(seed)));
  const rng = new Random(seed, 9);
  for (const e of layout.entries) {
    if (e.init.kind !== "constant") continue;
    const u = uniformArray(rng, e.size, -0.3, 0.3);
    for (let i = 0; i < e.size; i++) values[e.offset + i] += u[i];
  }
  const store = storeOf(be, layout, values, grads);
  return { layout, values, store, net: new UNet(cfg, store) };
}

// ---- configuration ------------------------------------------------------------------------------

Deno.test("unet options: at their defaults they leave the twin's configuration (793,697 parameters)", () => {
  const explicit = unetConfig({
    dropout: 0,
    blocksPerLevel: 1,
    block: "resnet",
    convnextMult: 2,
    attention: "full",
    patch: 1,
  });
  assert.deepEqual(explicit, unetConfig());
  assert.equal(
    JSON.stringify(unetConfig()),
    '{"kind":"unet","channels":1,"imageSize":28,"base":32,"mults":[1,2,2],"groups":8,"heads":4,"attentionAt":[7]}',
  );
  assert.equal(count(unetConfig()), 793_697);
  assert.equal(count(explicit), 793_697);
  assert.deepEqual(networkSpecs(explicit), networkSpecs(unetConfig()));
  // Non-default options are kept.
  const c = unetConfig({ dropout: 0.1, blocksPerLevel: 2, block: "convnext", convnextMult: 3 });
  assert.equal(c.dropout, 0.1);
  assert.equal(c.blocksPerLevel, 2);
  assert.equal(c.block, "convnext");
  assert.equal(c.convnextMult, 3);
  assert.equal(unetConfig({ attention: "linear" }).attention, "linear");
  // With patches, the default attention sits at the lowest patched resolution.
  assert.deepEqual(unetConfig({ patch: 2, mults: [1, 2] }).attentionAt, [7]);
  assert.equal(unetConfig({ patch: 2, mults: [1, 2] }).patch, 2);
});

Deno.test("unet options: invalid values are RangeErrors naming the field", async () => {
  const bad: [Partial<UNetConfig>, RegExp][] = [
    [{ dropout: -0.1 }, /dropout must be a probability in \[0, 1\)/],
    [{ dropout: 1 }, /dropout/],
    [{ dropout: NaN }, /dropout/],
    [{ dropout: "0.1" as unknown as number }, /dropout/],
    [{ blocksPerLevel: 0 }, /blocksPerLevel must be an integer in \[1, \d+\]/],
    [{ blocksPerLevel: 1.5 }, /blocksPerLevel/],
    [{ block: "vit" as unknown as "resnet" }, /block must be one of "resnet", "convnext"/],
    [{ attention: "sparse" as unknown as "full" }, /attention must be one of "full", "linear"/],
    [{ block: "convnext", convnextMult: 0 }, /convnextMult must be an integer in \[1, \d+\]/],
    [{ convnextMult: 3 }, /convnextMult applies only to block "convnext"/],
    [{ patch: 0 }, /patch must be an integer in \[1, \d+\]/],
    [{ patch: 3 }, /imageSize 8 must be divisible by 6 for 2 levels of 3x3 patches/],
    [{ patch: 2, mults: [1, 2, 2, 2] }, /imageSize 8 must be divisible by 16/],
    [{ patch: 2, attentionAt: [8] }, /attentionAt lists 8, not one of the resolutions 4, 2/],
  ];
  for (const [o, re] of bad) {
    const cfg = small(o);
    assert.throws(
      () => checkUNetConfig(cfg),
      (e: Error) => e instanceof RangeError && re.test(e.message),
    );
    assert.throws(() => networkSpecs(cfg), re);
  }
  // Groups: ConvNeXt blocks and linear attention use GroupNorm(1), so only the output norm and
  // full attention need `groups` to divide their channels. Levels of 16 and 8 channels on a base of
  // 8 with 16 groups: the ResBlocks' 8 channels fail, the output norm's 16 pass.
  const g16 = { base: 8, mults: [2, 1], groups: 16, heads: 2 };
  assert.throws(
    () => checkUNetConfig(small({ ...g16, attentionAt: [] })),
    /8 channels .* 16 groups/,
  );
  checkUNetConfig(small({ ...g16, attentionAt: [], block: "convnext" }));
  assert.throws(
    () => checkUNetConfig(small({ ...g16, attentionAt: [4], block: "convnext" })),
    /8 channels .* 16 groups/,
  );
  checkUNetConfig(small({ ...g16, attentionAt: [4], block: "convnext", attention: "linear" }));
  assert.throws(
    () =>
      checkUNetConfig(
        small({ ...g16, heads: 3, attentionAt: [4], attention: "linear", block: "convnext" }),
      ),
    /heads/,
  );
  // Through train(): an OptionError with the same message.
  const data: Dataset = { values: new Float32Array(2 * 64), shape: [2, 1, 8, 8] };
  await assert.rejects(
    () =>
      train({ data, network: { kind: "unet", ...SMALL_NET, dropout: 1 }, backend: "reference" }),
    (e: Error) => e instanceof OptionError && /dropout/.test(e.message),
  );
  await assert.rejects(
    () =>
      train({
        data,
        network: { kind: "unet", ...SMALL_NET, blocksPerLevel: 0 },
        backend: "reference",
      }),
    (e: Error) => e instanceof OptionError && /blocksPerLevel/.test(e.message),
  );
});

// ---- parameters ---------------------------------------------------------------------------------

Deno.test("unet options: parameter counts equal the layer formulas", () => {
  const td = 32;
  // Stem (time MLP, input conv), tail (output norm and conv), ds.0, us.0.
  const fixed = lin(8, 32) + lin(32, 32) + conv(1, 8, 3) + gn(8) + conv(8, 1, 3) + conv(8, 8, 3) +
    conv(16, 16, 3);
  // [in, out] of down.0, down.1, mid1, mid2, up.0, up.1 and of the extra blocks of n = 2:
  // downx.0.1, downx.1.1, upx.0.1 (on 16 + 16 skip), upx.1.1 (on 8 + 8 skip).
  const blocks: [number, number][] = [[8, 8], [8, 16], [16, 16], [16, 16], [32, 16], [24, 8]];
  const extra: [number, number][] = [[8, 8], [16, 16], [32, 16], [16, 8]];
  const sumOf = (bs: [number, number][], f: (ci: number, co: number) => number) =>
    bs.reduce((s, [ci, co]) => s + f(ci, co), 0);
  const resnet = (ci: number, co: number) => res(ci, co, td);

  const base = fixed + sumOf(blocks, resnet) + fullAttn(16);
  assert.equal(base, 32_617, "the formulas, summed by hand: 1424 + 89 + 584 + 2320 + ...");
  assert.equal(count(small()), base);
  assert.equal(count(small({ dropout: 0.3 })), base, "dropout has no parameters");
  assert.equal(count(small({ blocksPerLevel: 2 })), base + sumOf(extra, resnet));
  assert.equal(count(small({ blocksPerLevel: 2 })), 49_601);
  assert.equal(count(small({ attention: "linear" })), base + gn(16));
  assert.equal(
    count(small({ attention: "linear", attentionAt: [8, 4] })),
    base + gn(16) + 2 * linAttn(8),
    "dattn.0 and uattn.1 over 8 channels",
  );
  for (const m of [1, 2, 3]) {
    const convnext = (ci: number, co: number) => cnx(ci, co, td, m);
    assert.equal(
      count(small({ block: "convnext", convnextMult: m })),
      fixed + sumOf(blocks, convnext) + fullAttn(16),
      `convnext mult ${m}`,
    );
  }
  // Everything at once: 3 blocks a level (two extra per level).
  const convnext = (ci: number, co: number) => cnx(ci, co, td, 2);
  const extra3: [number, number][] = [[8, 8], [8, 8], [16, 16], [16, 16], [32, 16], [32, 16], [
    16,
    8,
  ], [16, 8]];
  assert.equal(
    count(
      small({ dropout: 0.1, blocksPerLevel: 3, block: "convnext", attention: "linear" }),
    ),
    fixed + sumOf(blocks, convnext) + sumOf(extra3, convnext) + linAttn(16),
  );
});

Deno.test("unet options: parameter names keep the defaults' names and name extra blocks downx/upx", () => {
  const names = (c: UNetConfig) => networkSpecs(c).map((s) => s.name);
  const one = names(small({ attentionAt: [8, 4] }));
  const two = names(small({ attentionAt: [8, 4], blocksPerLevel: 2 }));
  // Every name of the one-block UNet appears in the two-block one, in the same order.
  let at = -1;
  for (const n of one) {
    const i = two.indexOf(n);
    assert.ok(i > at, `${n} keeps its name and relative order`);
    at = i;
  }
  const extra = two.filter((n) => !one.includes(n));
  const prefixes = [...new Set(extra.map((n) => n.split(".").slice(0, 3).join(".")))];
  assert.deepEqual(prefixes, ["downx.0.1", "downx.1.1", "upx.0.1", "upx.1.1"]);
  assert.ok(two.includes("upx.1.1.skip.weight"), "upx.1.1 maps 16 channels to 8");
  assert.ok(!two.includes("downx.0.1.skip.weight"), "downx.0.1 keeps 8 channels");
  // The extra down blocks follow all down.* blocks, the extra up blocks all up.* blocks.
  assert.ok(two.indexOf("downx.0.1.n1.weight") > two.indexOf("down.1.skip.bias"));
  assert.ok(two.indexOf("downx.1.1.c2.bias") < two.indexOf("ds.0.weight"));
  assert.ok(two.indexOf("upx.0.1.n1.weight") > two.indexOf("up.1.skip.bias"));
  assert.ok(two.indexOf("upx.1.1.skip.bias") < two.indexOf("us.0.weight"));

  const cn = networkSpecs(small({ block: "convnext" })).filter((s) => s.name.startsWith("down.1."));
  assert.deepEqual(cn.map((s) => [s.name, s.shape]), [
    ["down.1.t.weight", [8, 32]],
    ["down.1.t.bias", [8]],
    ["down.1.dw.weight", [8, 1, 7, 7]],
    ["down.1.dw.bias", [8]],
    ["down.1.n1.weight", [8]],
    ["down.1.n1.bias", [8]],
    ["down.1.c1.weight", [32, 8, 3, 3]],
    ["down.1.c1.bias", [32]],
    ["down.1.n2.weight", [32]],
    ["down.1.n2.bias", [32]],
    ["down.1.c2.weight", [16, 32, 3, 3]],
    ["down.1.c2.bias", [16]],
    ["down.1.skip.weight", [16, 8, 1, 1]],
    ["down.1.skip.bias", [16]],
  ]);
  assert.deepEqual(cn[2].init, { kind: "uniform", bound: 1 / 7 }, "depthwise fan-in is 7·7");
  const la = names(small({ attention: "linear" })).filter((n) => n.startsWith("attn."));
  assert.deepEqual(la, [
    "attn.n.weight",
    "attn.n.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.o.weight",
    "attn.o.bias",
    "attn.on.weight",
    "attn.on.bias",
  ]);
});

Deno.test("unet options: output shapes equal input shapes, in training and evaluation", () => {
  const be = createReferenceBackend();
  const configs = [
    small({ dropout: 0.5 }),
    small({ blocksPerLevel: 2, attentionAt: [8, 4] }),
    small({ block: "convnext", convnextMult: 3 }),
    small({ attention: "linear", attentionAt: [8, 4] }),
    unetConfig({
      channels: 3,
      imageSize: 8,
      base: 8,
      mults: [1, 2, 2],
      groups: 4,
      heads: 4,
      attentionAt: [4, 2],
      dropout: 0.2,
      blocksPerLevel: 3,
      block: "convnext",
      attention: "linear",
    }),
  ];
  for (const cfg of configs) {
    const { net } = unetOn(be, cfg, 3);
    const shape = [2, cfg.channels, cfg.imageSize, cfg.imageSize];
    const x = tensor(be, new Random(4).normals(size(shape)), shape), t = tensor(be, [1, 15], [2]);
    for (const ctx of [undefined, trainingCtx(1, 0)]) {
      const y = noGrad(() => net.forward(x, t, ctx));
      assert.deepEqual([...y.shape], shape, JSON.stringify(cfg));
    }
  }
});

Deno.test("unet options: patch p equals the unpatched UNet on the image's p x p patches stacked into channels", async () => {
  const be = createReferenceBackend();
  const p = 2, n = 2, side = 8;
  const patched = small({ patch: p, attentionAt: [4, 2] });
  const plain = unetConfig({ ...SMALL_NET, channels: 4, imageSize: 4, attentionAt: [4, 2] });
  // The same layers: only inc and outc see p² times the channels.
  assert.deepEqual(networkSpecs(patched), networkSpecs(plain));
  assert.equal(count(patched), count(small({ attentionAt: [8, 4] })) + 3 * 8 * 9 + 3 * (8 * 9 + 1));
  const a = unetOn(be, patched, 6), b = unetOn(be, plain, 6);
  const xs = new Random(7).normals(n * side * side);
  // Space to depth by hand: channel i·p + j of patch (y, x) is pixel (p·y + i, p·x + j).
  const q = side / p, stacked = new Float64Array(xs.length);
  const at = (bi: number, c: number, y: number, x: number) => ((bi * p * p + c) * q + y) * q + x;
  for (let bi = 0; bi < n; bi++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        stacked[at(bi, (y % p) * p + (x % p), y >> 1, x >> 1)] = xs[(bi * side + y) * side + x];
      }
    }
  }
  const t = tensor(be, [3, 17], [n]);
  const got = await be.read(
    noGrad(() => a.net.forward(tensor(be, xs, [n, 1, side, side]), t)).storage,
  );
  const want = await be.read(
    noGrad(() => b.net.forward(tensor(be, stacked, [n, 4, q, q]), t)).storage,
  );
  let checked = 0;
  for (let bi = 0; bi < n; bi++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const w = want[at(bi, (y % p) * p + (x % p), y >> 1, x >> 1)];
        assert.ok(Math.abs(got[(bi * side + y) * side + x] - w) <= 1e-6 * (1 + Math.abs(w)));
        checked++;
      }
    }
  }
  assert.equal(checked, got.length);
  // The output is not trivially the input (a wrong layout would still pass on a constant image).
  assert.ok(got.some((v, i) => Math.abs(v - got[0]) > 1e-3 && i > 0));
});

// ---- the UNet with options ----------------------------------------------------------------------

Deno.test("unet options: gradients of an L2 loss match central finite differences (float64, training with dropout)", async () => {
  const be = float64Backend();
  const configs = [
    { blocksPerLevel: 2, attention: "linear" as const, dropout: 0.3 },
    { block: "convnext" as const, convnextMult: 2, dropout: 0.3 },
  ].map((o) => small({ ...o, imageSize: 4, attentionAt: [4, 2] }));
  for (const [ci, cfg] of configs.entries()) {
    const { layout, values, store, net } = unetOn(be, cfg, 20 + ci, true);
    const rng = new Random(21 + ci);
    const shape = [2, 1, 4, 4];
    const x = tensor(be, rng.normals(32), shape), target = tensor(be, rng.normals(32), shape);
    const t = tensor(be, [3, 17], [2]);
    const ctx = trainingCtx(5, 2);
    const loss = () => regressionLoss("l2", net.forward(x, t, ctx), target);
    backward(loss());
    const grads = await be.read(store.grads!);
    const { worst, at: worstName } = await paramGradError(
      be,
      layout,
      store,
      values,
      grads,
      loss,
      rng,
    );
    assert.ok(worst < 1e-5, `config ${ci}: worst relative error ${worst} at ${worstName}`);
    for (const e of layout.entries) {
      assert.ok(
        grads.subarray(e.offset, e.offset + e.size).some((g) => g !== 0),
        `config ${ci}: ${e.name} has no gradient`,
      );
    }
  }
});

Deno.test("unet options: dropout only acts in training; evaluation is deterministic and unaffected", async () => {
  const be = createReferenceBackend();
  for (const extra of [{}, { block: "convnext" as const }]) {
    const withDrop = small({ ...extra, dropout: 0.5 }), without = small(extra);
    const { values, net } = unetOn(be, withDrop, 30);
    const plain = new UNet(without, storeOf(be, new ParamLayout(networkSpecs(without)), values));
    const shape = [2, 1, 8, 8];
    const x = tensor(be, new Random(31).normals(128), shape), t = tensor(be, [4, 9], [2]);
    const run = (n: UNet, ctx?: ForwardContext) => noGrad(() => n.forward(x, t, ctx)).toArray();
    const ref = await run(plain);
    assert.deepEqual(await run(net), ref, "no context: as without dropout");
    assert.deepEqual(await run(net), ref, "and again");
    const evalCtx: ForwardContext = {
      training: false,
      draw: () => {
        throw new Error("evaluation must not draw");
      },
    };
    assert.deepEqual(await run(net, evalCtx), ref, "training false: as without dropout");
    assert.deepEqual(await run(plain, trainingCtx(1, 0)), ref, "p = 0 draws nothing");
    const a = await run(net, trainingCtx(1, 0));
    assert.notDeepEqual(a, ref, "training: dropout changes the output");
    assert.deepEqual(await run(net, trainingCtx(1, 0)), a, "the same draws give the same output");
    assert.notDeepEqual(await run(net, trainingCtx(1, 1)), a, "another step, other masks");
  }
  // Sites are numbered in the order the dropouts run, each with the draw for its size.
  const seen: [number, number][] = [];
  const drop = dropoutSites(0.5, (site, n) => {
    seen.push([site, n]);
    return { seed: 0, stream: site, counter: 0 };
  });
  drop(tensor(be, [1, 2, 3], [3]));
  drop(tensor(be, [1, 2], [2]));
  assert.deepEqual(seen, [[0, 3], [1, 2]]);
});

// ---- training -----------------------------------------------------------------------------------

/** 16 images 1x8x8: bright squares at four places on a dark ground, in [-1, 1]. */
function squares(): Dataset {
  const values = new Float32Array(16 * 64).fill(-1);
  for (let n = 0; n < 16; n++) {
    const oy = 4 * ((n >> 1) % 2), ox = 4 * (n % 2);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) values[n * 64 + (oy + y) * 8 + ox + x] = 1;
    }
  }
  return { values, shape: [16, 1, 8, 8] };
}

function trainOptions(network: Partial<UNetConfig>, steps = 6): TrainOptions {
  return {
    data: squares(),
    network: { kind: "unet", ...SMALL_NET, attentionAt: [4], ...network },
    schedule: { kind: "cosine", T: 20 },
    steps,
    batchSize: 4,
    lr: 2e-3,
    progressEvery: 1,
    backend: "reference",
    seed: 9,
  };
}

async function flatWeights(m: DiffusionModel, which: "raw" | "ema" = "raw"): Promise<Float32Array> {
  return Float32Array.from(await m.backend.read((which === "ema" ? m.ema! : m.params).values));
}

const OPTION_CASES: [string, Partial<UNetConfig>][] = [
  ["dropout", { dropout: 0.2 }],
  ["blocksPerLevel", { blocksPerLevel: 2 }],
  ["convnext", { block: "convnext", convnextMult: 3 }],
  ["linear attention", { attention: "linear", attentionAt: [8, 4] }],
];

for (const [name, network] of OPTION_CASES) {
  Deno.test(`unet options: a tiny UNet with ${name} trains with finite losses and samples deterministically`, async () => {
    const losses: number[] = [];
    const model = await train({ ...trainOptions(network), onProgress: (p) => losses.push(p.loss) });
    assert.equal(losses.length, 6);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    for (const [k, v] of Object.entries(network)) {
      assert.deepEqual((model.config.network as unknown as Record<string, unknown>)[k], v);
    }
    const init = new ParamLayout(networkSpecs(model.config.network as UNetConfig))
      .initialValues(new Random(9, 0));
    assert.notDeepEqual(await flatWeights(model), init, "the weights moved");
    const opts = { count: 3, steps: 4, seed: 2, batchSize: 4 };
    const a = await sample(model, opts), b = await sample(model, opts);
    assert.deepEqual(a.shape, [3, 1, 8, 8]);
    assert.ok(a.values.every(Number.isFinite));
    assert.deepEqual(a.values, b.values, "sampling is deterministic");
  });
}

Deno.test("unet options: dropout in train() is active, reproducible, and leaves sampling alone", async () => {
  const withDrop = await train(trainOptions({ dropout: 0.3 }));
  const again = await train(trainOptions({ dropout: 0.3 }));
  const without = await train(trainOptions({}));
  const w = await flatWeights(withDrop);
  assert.deepEqual(await flatWeights(again), w, "the same seed gives the same model");
  assert.notDeepEqual(await flatWeights(without), w, "dropout changed the training");
  // The same weights in a configuration without dropout sample exactly the same.
  const { dropout: _, ...plainNet } = withDrop.config.network as UNetConfig;
  const plain = new DiffusionModel(
    { ...withDrop.config, network: plainNet },
    withDrop.backend,
    w,
    await flatWeights(withDrop, "ema"),
  );
  const opts = { count: 2, steps: 5, seed: 4 };
  assert.deepEqual((await sample(withDrop, opts)).values, (await sample(plain, opts)).values);
});

Deno.test("unet options: stopping, saving, loading and resuming with dropout gives exactly the uninterrupted result", async () => {
  const opts = trainOptions({ dropout: 0.3, blocksPerLevel: 2 }, 6);
  const straight = await train(opts);
  const half = await trainStoppedAt(opts, 3);
  assert.equal(half.stepsTrained, 3);
  const loaded = await decodeModel(await encodeModel(half), "memory", "reference");
  assert.deepEqual(loaded.config, straight.config);
  const resumed = await train({ ...opts, resume: loaded });
  assert.equal(resumed.stepsTrained, 6);
  for (const which of ["raw", "ema"] as const) {
    assert.deepEqual(await flatWeights(resumed, which), await flatWeights(straight, which), which);
  }
});

/**
 * Learned reverse variances (Nichol & Dhariwal 2021, §3.1), training side: the stop-gradient
 * `detach`, the hybrid loss against a hand computation, its gradients (finite differences, and none
 * from L_vlb into the eps channels), the device's tanh-CDF decoder against the host's exact one,
 * the doubled outputs of the three networks, the refusals, checkpoints (config, validation,
 * bit-exact resume), a short training run, and the loss on every backend. Sampling and the bound:
 * learned_variance_sampling_test.ts.
 */

import assert from "node:assert/strict";
import "../../backends.ts";
import type { Backend } from "../../src/backend.ts";
import { selectBackend } from "../../src/backends/registry.ts";
import { DeviceSchedule, qSample } from "../../src/diffusion/forward.ts";
import {
  approxDiscretizedGaussianLogLikelihood,
  HybridVlbTerm,
  splitLearnedOutput,
} from "../../src/diffusion/learned_variance.ts";
import { DenoisingObjective } from "../../src/diffusion/objective.ts";
import { makeSchedule, type Schedule } from "../../src/diffusion/schedule.ts";
import { discretizedGaussianLogLikelihood } from "../../src/diffusion/vlb.ts";
import { FileFormatError, OptionError } from "../../src/errors.ts";
import { decodeModel, encodeModel, loadModel, saveModel } from "../../src/io/model_file.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/io/safetensors.ts";
import type { DiffusionModel } from "../../src/model.ts";
import {
  buildNetwork,
  type NetworkOptions,
  networkSpecs,
  resolveNetworkConfig,
} from "../../src/models/registry.ts";
import { ParamLayout, ParamStore } from "../../src/nn/params.ts";
import { add, affine, mul } from "../../src/ops/elementwise.ts";
import { regressionLoss } from "../../src/ops/loss.ts";
import { mean } from "../../src/ops/reduce.ts";
import { reshape } from "../../src/ops/shape.ts";
import { Random } from "../../src/random.ts";
import { backward, detach, noGrad, tensor, variable } from "../../src/tensor.ts";
import { train } from "../../src/train.ts";
import { resolveTrainOptions } from "../../src/train_options.ts";
import { float64Backend, gradCheck, paramGradError } from "../helpers/gradcheck.ts";
import { fixedNet, read, SCHEDULE, tinyBatch } from "../helpers/learned_variance.ts";
import { TINY_TRAINING, trainStoppedAt } from "../helpers/tiny_training.ts";
import { hasWebGpuAdapter } from "../helpers/webgpu.ts";

/** The epsilon objective with learned variances (the hybrid loss), L_vlb weighted by `vlbWeight`. */
function hybridObjective(be: Backend, s: Schedule, vlbWeight?: number): DenoisingObjective {
  return new DenoisingObjective(be, s, {
    prediction: "epsilon",
    loss: "l2",
    huberDelta: 1,
    minSnrGamma: null,
    learnSigma: true,
    vlbWeight,
  });
}

Deno.test("detach: the same storage, no gradient path", async () => {
  const be = float64Backend();
  const x = variable(be, [1, 2, 3], [3]);
  const d = detach(x);
  assert.equal(d.storage, x.storage);
  assert.deepEqual([...d.shape], [3]);
  assert.equal(d.node, null);
  assert.equal(d.requiresGrad, false);
  // d(sum(x * x) + sum(x * detach(x)))/dx = 2x + detach(x) = 3x, not 4x.
  backward(add(mean(mul(x, x)), mean(mul(x, d))));
  assert.deepEqual([...await read(x.grad!)], [1, 2, 3].map((v) => (3 * v) / 3));
});

/** The hybrid loss of one batch, written out in float64 (the module notes' equations). */
function handHybrid(
  s: Schedule,
  x0: Float64Array,
  eps: Float64Array,
  out: Float64Array,
  t: number[],
  C: number,
  lambda = 0.001,
  weights?: number[],
): { loss: number; perSample: number[] } {
  const B = t.length, T = s.T;
  const cdf = (z: number) =>
    0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));
  let simple = 0;
  const perSample: number[] = [];
  for (let b = 0; b < B; b++) {
    const i = t[b] - 1, a = s.sqrtAlphasCumprod[i], sd = s.sqrtOneMinusAlphasCumprod[i];
    const c1 = s.posteriorMeanCoef1[i], c2 = s.posteriorMeanCoef2[i];
    const logBeta = Math.log(s.betas[i]);
    const logTilde = Math.log(t[b] === 1 ? s.posteriorVariance[1] : s.posteriorVariance[i]);
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const k = b * C + c, epsHat = out[b * 2 * C + c], v = out[b * 2 * C + C + c];
      simple += (epsHat - eps[k]) ** 2 / (B * C);
      const xt = a * x0[k] + sd * eps[k], x0Hat = (xt - sd * epsHat) / a;
      const mq = c1 * x0[k] + c2 * xt, mp = c1 * x0Hat + c2 * xt;
      const frac = (v + 1) / 2, lv = frac * logBeta + (1 - frac) * logTilde;
      if (t[b] >= 2) {
        // KL(N(mq, e^logTilde) || N(mp, e^lv)).
        sum += 0.5 *
          (-1 + lv - logTilde + Math.exp(logTilde - lv) + (mq - mp) ** 2 * Math.exp(-lv));
      } else {
        const sigma = Math.exp(lv / 2), x = x0[k];
        const hi = x > 0.999 ? 1 : cdf((x - mp + 1 / 255) / sigma);
        const lo = x < -0.999 ? 0 : cdf((x - mp - 1 / 255) / sigma);
        sum -= Math.log(Math.max(hi - lo, 1e-12));
      }
    }
    perSample.push(sum / C / Math.LN2);
  }
  const w = weights ?? perSample.map(() => 1);
  const vlb = perSample.reduce((p, l, b) => p + w[b] * l, 0) / B;
  return { loss: simple + lambda * T * vlb, perSample };
}

Deno.test("the hybrid loss equals L_simple + lambda T mean L_t computed by hand (float64)", async () => {
  const be = float64Backend(), s = makeSchedule(SCHEDULE), B = 4, C = 3;
  const { x0, eps, out } = tinyBatch(B, C, 1);
  const ts = [1, 2, 5, 10];
  const objective = hybridObjective(be, s);
  const x = tensor(be, x0, [B, C]), e = tensor(be, eps, [B, C]), t = tensor(be, ts, [B]);
  const terms = objective.loss(fixedNet(tensor(be, out, [B, 2 * C])), x, t, e);
  const want = handHybrid(s, x0, eps, out, ts, C);
  const got = (await read(terms.loss))[0];
  assert.ok(Math.abs(got - want.loss) < 1e-12 * Math.max(1, want.loss), `${got} vs ${want.loss}`);
  const per = await read(terms.vlb!);
  want.perSample.forEach((l, b) => assert.ok(Math.abs(per[b] - l) < 1e-12 * Math.max(1, l)));
  // Per-sample weights (importance sampling's 1 / (T p_t)) weight the L_vlb term alone.
  const w = [0.5, 2, 1, 3];
  const weighted = objective.loss(fixedNet(tensor(be, out, [B, 2 * C])), x, t, e, {
    vlbWeights: tensor(be, w, [B]),
  });
  const wantW = handHybrid(s, x0, eps, out, ts, C, 0.001, w).loss;
  assert.ok(Math.abs((await read(weighted.loss))[0] - wantW) < 1e-12 * Math.max(1, wantW));
});

Deno.test("L_vlb sends no gradient into the eps channels; its v gradient matches finite differences", async () => {
  const be = float64Backend(), s = makeSchedule(SCHEDULE), B = 4, C = 3;
  const { x0, eps, out } = tinyBatch(B, C, 2);
  const ts = [1, 3, 6, 9];
  const x = tensor(be, x0, [B, C]), e = tensor(be, eps, [B, C]), t = tensor(be, ts, [B]);
  // lambda huge: any leak of L_vlb into the eps channels would dominate their gradient.
  const objective = hybridObjective(be, s, 1e3);
  const leaf = variable(be, out, [B, 2 * C]);
  backward(objective.loss(fixedNet(leaf), x, t, e).loss);
  const g = await read(leaf.grad!);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const k = b * 2 * C + c, simple = (2 * (out[k] - eps[b * C + c])) / (B * C);
      assert.ok(Math.abs(g[k] - simple) < 1e-14, `eps grad ${b},${c}: ${g[k]} vs ${simple}`);
      assert.notEqual(g[k + C], 0, `v grad ${b},${c}`);
    }
  }
  // Not vacuous: the hybrid loss does depend on eps through L_vlb (finite differences see it).
  const lossAt = (o: Float64Array) =>
    noGrad(() => objective.loss(fixedNet(tensor(be, o, [B, 2 * C])), x, t, e).loss);
  const k = 2 * C + 1, h = 1e-6, plus = Float64Array.from(out), minus = Float64Array.from(out);
  plus[k] += h;
  minus[k] -= h;
  const numeric = ((await read(lossAt(plus)))[0] - (await read(lossAt(minus)))[0]) / (2 * h);
  assert.ok(Math.abs(numeric - g[k]) > 1e-3, `eps leaks nothing to compare: ${numeric}`);

  // The per-sample L_t as a function of v (eps held) against central finite differences.
  const term = new HybridVlbTerm(be, s);
  const level = new DeviceSchedule(be, s).level(t, 2);
  const xt = qSample(x, e, level);
  const epsHat = tensor(
    be,
    Array.from({ length: B * C }, (_, i) => out[Math.floor(i / C) * 2 * C + (i % C)]),
    [B, C],
  );
  const v = Array.from({ length: B * C }, (_, i) => out[Math.floor(i / C) * 2 * C + C + (i % C)]);
  await gradCheck(
    be,
    [{ data: v, shape: [B, C] }],
    ([vv]) => term.perSample({ x0: x, xt, t, eps: epsHat, v: vv, level }),
    { tol: 1e-6 },
  );
});

Deno.test("hybrid-loss gradients of a tiny MLP match finite differences of the stop-gradient loss", async () => {
  const be = float64Backend(), s = makeSchedule(SCHEDULE), B = 3, C = 2;
  const config = resolveNetworkConfig({ hidden: 5, layers: 2 }, [8, C], s.T, undefined, true);
  const layout = new ParamLayout(networkSpecs(config));
  const values = Float64Array.from(layout.initialValues(new Random(7)));
  const store = new ParamStore(be, layout, be.upload(values), be.alloc(layout.length));
  const net = buildNetwork(config, store);
  const { x0, eps } = tinyBatch(B, C, 3);
  const x = tensor(be, x0, [B, C]), e = tensor(be, eps, [B, C]), t = tensor(be, [1, 4, 8], [B]);
  const objective = hybridObjective(be, s, 0.5);
  backward(objective.loss(net, x, t, e).loss);
  const grads = await be.read(store.grads!);
  // The loss whose plain gradient the stop-gradient one is: L_vlb's eps frozen at its value here.
  const level = new DeviceSchedule(be, s).level(t, 2), xt = qSample(x, e, level);
  const eps0 = noGrad(() => splitLearnedOutput(net.forward(xt, t)).output);
  const term = new HybridVlbTerm(be, s);
  const frozen = () => {
    const { output, v } = splitLearnedOutput(net.forward(xt, t));
    const vlb = term.perSample({ x0: x, xt, t, eps: eps0, v, level });
    return add(regressionLoss("l2", output, e), affine(mean(vlb), 0.5 * s.T));
  };
  const { worst, at } = await paramGradError(be, layout, store, values, grads, frozen, "all");
  assert.ok(worst < 1e-5, `worst relative error ${worst} at ${at}`);
});

Deno.test("the device's tanh-CDF decoder matches vlb.ts's exact one within the approximation's error", async () => {
  const be = float64Backend();
  const xs: number[] = [], means: number[] = [], scales: number[] = [];
  const r = new Random(4);
  for (const k of [0, 1, 60, 127, 128, 200, 254, 255]) {
    for (const logScale of [-5, -4, -3, -2, -1]) {
      for (const u of r.uniforms(3)) {
        xs.push(-1 + (2 * k) / 255);
        means.push(-1 + (2 * k) / 255 + (u - 0.5) * 2 * Math.exp(logScale));
        scales.push(logScale);
      }
    }
  }
  const n = xs.length;
  const got = await read(
    approxDiscretizedGaussianLogLikelihood(
      tensor(be, xs, [n]),
      tensor(be, means, [n]),
      tensor(be, scales, [n]),
    ),
  );
  const exact = discretizedGaussianLogLikelihood(xs, means, scales);
  // |Phi_tanh - Phi| < 1.8e-4 everywhere: a bin's probability p moves by at most 3.6e-4, its log
  // by about 3.6e-4 / p.
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.exp(exact[i]);
    if (p < 1e-3) continue;
    const err = Math.abs(got[i] - exact[i]);
    worst = Math.max(worst, err);
    assert.ok(
      err <= 3.6e-4 / p + 1e-9,
      `x ${xs[i]} mean ${means[i]} logScale ${scales[i]}: ${got[i]} vs ${exact[i]}`,
    );
  }
  assert.ok(worst > 0 && worst < 0.01, `worst ${worst}`);
});

Deno.test("learnSigma doubles the last layer of the MLP, the UNet and the fc-unet, and nothing else", () => {
  const be = float64Backend(), T = 10;
  const cases: { options: NetworkOptions; data: number[]; last: string }[] = [
    { options: { hidden: 6, layers: 2 }, data: [4, 3], last: "net.4" },
    {
      options: { kind: "unet", base: 8, mults: [1, 2], groups: 4, heads: 1, attentionAt: [] },
      data: [4, 2, 8, 8],
      last: "outc",
    },
    {
      options: {
        kind: "unet",
        base: 8,
        mults: [1],
        groups: 4,
        heads: 1,
        attentionAt: [],
        patch: 2,
      },
      data: [4, 3, 8, 8],
      last: "outc",
    },
    { options: { kind: "fc-unet", widths: [8, 4] }, data: [4, 2, 3, 3], last: "out" },
  ];
  for (const c of cases) {
    const plain = resolveNetworkConfig(c.options, c.data, T);
    const learned = resolveNetworkConfig(c.options, c.data, T, undefined, true);
    assert.equal("learnSigma" in plain, false);
    assert.equal(learned.learnSigma, true);
    const a = new ParamLayout(networkSpecs(plain)).entries;
    const b = new ParamLayout(networkSpecs(learned)).entries;
    assert.deepEqual(b.map((e) => e.name), a.map((e) => e.name));
    a.forEach((e, i) => {
      const want = e.name.startsWith(`${c.last}.`)
        ? [2 * e.shape[0], ...e.shape.slice(1)]
        : e.shape;
      assert.deepEqual([...b[i].shape], [...want], `${c.options.kind ?? "mlp"} ${e.name}`);
    });
    const layout = new ParamLayout(networkSpecs(learned));
    const store = new ParamStore(be, layout, be.upload(layout.initialValues(new Random(1))), null);
    const net = buildNetwork(learned, store);
    const [, first, ...rest] = c.data;
    const x = tensor(be, new Random(2).normals(2 * first * (rest.reduce((p, d) => p * d, 1))), [
      2,
      first,
      ...rest,
    ]);
    const out = noGrad(() => net.forward(x, tensor(be, [3, 7], [2])));
    assert.deepEqual([...out.shape], [2, 2 * first, ...rest]);
    if (c.options.kind === "fc-unet") {
      // Flat input: [B, D] in, [B, 2D] out.
      const flat = noGrad(() => net.forward(reshape(x, [2, x.size / 2]), tensor(be, [3, 7], [2])));
      assert.deepEqual([...flat.shape], [2, x.size]);
    }
  }
});

Deno.test("learnSigma with another prediction or objective ends in one OptionError naming it", () => {
  const data = TINY_TRAINING.data;
  for (const o of [{ prediction: "x0" }, { prediction: "v" }, { objective: "dsm" }] as const) {
    assert.throws(() => resolveTrainOptions({ data, learnSigma: true, ...o }), (e: unknown) => {
      assert.ok(e instanceof OptionError, String(e));
      assert.match(e.message, /learnSigma/);
      return true;
    });
  }
  assert.throws(
    () => resolveTrainOptions({ data, learnSigma: "yes" as unknown as boolean }),
    /learnSigma must be true or false/,
  );
  // Off, the configuration is the one every earlier file holds.
  const off = JSON.stringify(resolveTrainOptions({ data, learnSigma: false }).config);
  assert.equal(off, JSON.stringify(resolveTrainOptions({ data }).config));
  assert.doesNotMatch(off, /learnSigma/);
});

Deno.test("a learned-variance checkpoint says so, is validated on load, and resumes bit for bit", async () => {
  const opts = { ...TINY_TRAINING, learnSigma: true, timestepSampling: "importance" } as const;
  const straight = await train(opts);
  const half = await trainStoppedAt(opts, 20);
  const dir = await Deno.makeTempDir();
  try {
    await saveModel(half, `${dir}/ckpt.safetensors`);
    const loaded = await loadModel(`${dir}/ckpt.safetensors`, "reference");
    assert.equal(loaded.config.network.learnSigma, true);
    assert.equal(loaded.learnSigma, true);
    await assert.rejects(
      () => train({ ...opts, learnSigma: false, resume: loaded }),
      /network\.learnSigma: model true, options unset/,
    );
    const resumed = await train({ ...opts, resume: loaded });
    for (const which of ["raw", "ema"] as const) {
      const a = await straight.weights(which), b = await resumed.weights(which);
      for (const [name, v] of a) assert.deepEqual(b.get(name), v, `${which} ${name}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // Tampered configurations are refused.
  const bytes = await encodeModel(straight);
  const { tensors, metadata } = decodeSafetensors(bytes, "x");
  const config = JSON.parse(metadata.config);
  for (
    const [change, message] of [
      [{ ...config, prediction: "x0" }, /learnSigma needs prediction "epsilon"/],
      [
        { ...config, network: { ...config.network, learnSigma: false } },
        /learnSigma must be true or absent/,
      ],
      [{ ...config, network: { ...config.network, learnSigma: undefined } }, /has shape/],
    ] as const
  ) {
    const bad = encodeSafetensors(tensors, { ...metadata, config: JSON.stringify(change) });
    await assert.rejects(() => decodeModel(bad, "bad.safetensors", "reference"), (e: unknown) => {
      assert.ok(e instanceof FileFormatError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("a short training run with learnSigma lowers the hybrid loss and its L_vlb", async () => {
  const losses: number[] = [];
  // A linear schedule: the cosine one's beta_T = 0.999 makes L_T's eps-based mean too noisy here.
  const opts = {
    ...TINY_TRAINING,
    schedule: { kind: "linear", T: 20, betaStart: 1e-3, betaEnd: 0.2 },
    steps: 200,
    learnSigma: true,
    onProgress: (p: { loss: number }) => losses.push(p.loss),
  } as const;
  const start = await train({ ...opts, steps: 0 });
  const model = await train(opts);
  const first = losses[0], last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(last < 0.5 * first, `loss ${first} -> ${last}`);
  // L_vlb on one fixed batch, ten samples at each t, before and after (each model on its backend).
  const T = model.schedule.T, B = 10 * T, data = TINY_TRAINING.data;
  const noise = new Random(9).normals(2 * B);
  const vlbOf = async (m: DiffusionModel) => {
    const be = m.backend;
    const x0 = tensor(be, data.values.subarray(0, 2 * B), [B, 2]);
    const t = tensor(be, Array.from({ length: B }, (_, i) => (i % T) + 1), [B]);
    const objective = hybridObjective(be, m.schedule);
    const eps = tensor(be, noise, [B, 2]);
    const per = await read(noGrad(() => objective.loss(m.network("raw"), x0, t, eps).vlb!));
    return per.reduce((a, b) => a + b, 0) / B;
  };
  const before = await vlbOf(start), after = await vlbOf(model);
  assert.ok(after < 0.8 * before, `L_vlb ${before} -> ${after}`);
});

Deno.test({
  name: "the hybrid loss, L_t and the v gradient agree on the reference, wasm and webgpu backends",
  // A WebGPU device lives on after the test (as in tests/helpers/webgpu.ts).
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = makeSchedule({ kind: "cosine", T: 50 }), B = 6, C = 4;
    const { x0, eps } = tinyBatch(B, C, 11);
    const out = Float64Array.from(new Random(12).normals(2 * B * C), (v) => 0.5 * v);
    const ts = [1, 2, 7, 20, 40, 49];
    const names = ["reference", "wasm", ...(hasWebGpuAdapter ? ["webgpu" as const] : [])] as const;
    const results: Float64Array[] = [];
    for (const name of names) {
      const { backend: be } = await selectBackend(name);
      const objective = hybridObjective(be, s);
      const leaf = variable(be, out, [B, 2 * C]);
      const x = tensor(be, x0, [B, C]), e = tensor(be, eps, [B, C]), t = tensor(be, ts, [B]);
      const terms = objective.loss(fixedNet(leaf), x, t, e);
      backward(terms.loss);
      be.flush();
      results.push(
        Float64Array.from([
          ...await be.read(terms.loss.storage),
          ...await be.read(terms.vlb!.storage),
          ...await be.read(leaf.grad!.storage),
        ]),
      );
      if (name !== "reference") be.dispose();
    }
    for (const [k, r] of results.entries()) {
      r.forEach((v, i) => {
        const want = results[0][i];
        assert.ok(
          Math.abs(v - want) <= 1e-4 * Math.max(1, Math.abs(want)),
          `${names[k]} value ${i}: ${v} vs reference ${want}`,
        );
      });
    }
  },
});

/**
 * Learned reverse variances (Nichol & Dhariwal 2021, §3.1), sampling side: the DDPM sampler's
 * learned variance (plain and respaced) against a hand computation, guidance (eps guided, v the
 * conditional half's; classifier guidance keeps v), sampling a learned-variance model with several
 * samplers, and the bound's "learned" variance.
 */

import assert from "node:assert/strict";
import { Classifier } from "../../metrics.ts";
import type { Backend } from "../../src/backend.ts";
import { classifierGuidedOutput } from "../../src/diffusion/classifier_guidance.ts";
import { type DenoiseFn, Denoiser } from "../../src/diffusion/denoiser.ts";
import { guidedOutput } from "../../src/diffusion/guidance.ts";
import { makeSchedule } from "../../src/diffusion/schedule.ts";
import { nll, variationalBound } from "../../src/diffusion/vlb.ts";
import { OptionError } from "../../src/errors.ts";
import { classifierConfig, classifierSpecs } from "../../src/eval/classifier.ts";
import type { Network } from "../../src/models/network.ts";
import { ParamLayout } from "../../src/nn/params.ts";
import { add, affine, mul } from "../../src/ops/elementwise.ts";
import { concat, reshape } from "../../src/ops/shape.ts";
import { Random } from "../../src/random.ts";
import { sample } from "../../src/sample.ts";
import { DdpmSampler } from "../../src/samplers/ddpm.ts";
import type { StepContext } from "../../src/samplers/sampler.ts";
import { noGrad, tensor } from "../../src/tensor.ts";
import { train } from "../../src/train.ts";
import { conditionalTraining, moments } from "../helpers/conditional.ts";
import { float64Backend } from "../helpers/gradcheck.ts";
import { read, SCHEDULE, tinyBatch } from "../helpers/learned_variance.ts";
import { TINY_TRAINING } from "../helpers/tiny_training.ts";

/** A step context over `denoiser` whose every noise draw is `noise` (ones or zeros). */
function stepContext(denoiser: Denoiser, be: Backend, shape: number[], value: number): StepContext {
  const n = shape.reduce((a, b) => a * b, 1);
  return { denoiser, noise: () => tensor(be, new Array(n).fill(value), shape), keep: () => {} };
}

Deno.test("the DDPM sampler's learned variance, plain and respaced, against a hand computation", async () => {
  const be = float64Backend(), s = makeSchedule(SCHEDULE);
  const v = [-1, 0, 0.5, 1.3], B = 4;
  // eps = 0 and v per sample: the step's noise term is exp(log sigma^2 / 2) times the noise.
  const fn: DenoiseFn = () => concat([tensor(be, [0, 0, 0, 0], [B, 1]), tensor(be, v, [B, 1])], 1);
  const denoiser = new Denoiser(fn, s, "epsilon", null, "ddpm", true);
  const xt = tensor(be, [0.3, -0.2, 0.9, -1.1], [B, 1]);
  const ab = (t: number) => (t === 0 ? 1 : s.alphasCumprod[t - 1]);
  for (const steps of [10, 4]) {
    const sampler = new DdpmSampler(s, "epsilon", { variance: "learned", steps });
    const ts = sampler.timesteps;
    for (let i = 0; i < ts.length; i++) {
      const meanStep = await read(
        noGrad(() => sampler.step(stepContext(denoiser, be, [B, 1], 0), i, xt)),
      );
      const noisy = await read(
        noGrad(() => sampler.step(stepContext(denoiser, be, [B, 1], 1), i, xt)),
      );
      // The respaced schedule's beta and posterior variance, by hand.
      const t = ts[i], prev = ts[i + 1] ?? 0;
      const beta = 1 - ab(t) / ab(prev), tilde = (beta * (1 - ab(prev))) / (1 - ab(t));
      for (let b = 0; b < B; b++) {
        const frac = (v[b] + 1) / 2;
        const sigma = i === ts.length - 1
          ? 0
          : Math.exp(0.5 * (frac * Math.log(beta) + (1 - frac) * Math.log(tilde)));
        const got = noisy[b] - meanStep[b];
        assert.ok(
          Math.abs(got - sigma) < 1e-12,
          `steps ${steps}, t ${t}, v ${v[b]}: ${got} vs ${sigma}`,
        );
      }
    }
  }
  // A model without v cannot take "learned".
  const plain = new Denoiser(() => tensor(be, [0, 0, 0, 0], [B, 1]), s, "epsilon", null);
  const sampler = new DdpmSampler(s, "epsilon", { variance: "learned" });
  assert.throws(() => sampler.step(stepContext(plain, be, [B, 1], 1), 0, xt), /learnSigma/);
});

Deno.test("guidance splits first: eps guided, v the conditional half's; classifier guidance keeps v", async () => {
  const be = float64Backend();
  // out = [x (1 + label); x + label] along axis 1 for x [B, 1].
  const net: Network = {
    forward: (x, _t, _ctx, labels) => {
      const lab = reshape(labels!, [x.shape[0], 1]);
      return concat([mul(x, affine(lab, 1, 1)), add(x, lab)], 1);
    },
  };
  const x = tensor(be, [0.5, -2], [2, 1]), t = tensor(be, [3, 3], [2]);
  const labels = tensor(be, [1, 0], [2]), classes = 2, w = 3;
  const out = await read(
    noGrad(() => guidedOutput(net, { x, t, labels }, classes, { scale: w, rescale: 0 }, true)),
  );
  const xs = [0.5, -2], ys = [1, 0];
  for (let b = 0; b < 2; b++) {
    const cond = xs[b] * (1 + ys[b]), uncond = xs[b] * (1 + classes);
    assert.ok(Math.abs(out[b * 2] - (uncond + w * (cond - uncond))) < 1e-12);
    assert.ok(Math.abs(out[b * 2 + 1] - (xs[b] + ys[b])) < 1e-12, "v is the conditional one");
  }
  const grad = tensor(be, [1, 1], [2, 1]);
  const shifted = await read(
    classifierGuidedOutput(
      tensor(be, [0.1, 7, 0.2, 8], [2, 2]),
      grad,
      "epsilon",
      { a: 0.6, s: 0.8 },
      2,
      true,
    ),
  );
  // eps - s scale grad = eps - 1.6; v (7, 8) untouched.
  [0.1 - 1.6, 7, 0.2 - 1.6, 8].forEach((want, i) => assert.ok(Math.abs(shifted[i] - want) < 1e-12));
});

Deno.test("a learned-variance model samples with every sampler, guided and classifier-guided", async () => {
  // The two labelled clusters, class-conditional, learned variances.
  const model = await train({ ...conditionalTraining(300), learnSigma: true });
  for (const sampler of ["ddpm", "ddim", "dpm++2m"] as const) {
    const got = await sample(model, {
      count: 200,
      sampler,
      steps: 20,
      classes: 1,
      guidanceScale: 2,
    });
    const m = moments(got.values);
    assert.ok(Math.abs(m.mean - 1.5) < 0.3, `${sampler}: mean ${m.mean}`);
  }
  // The default variance of a learned-variance model is its own; "posterior" is still a choice.
  const a = await sample(model, { count: 16, steps: 10 });
  const b = await sample(model, { count: 16, steps: 10, variance: "learned" });
  const c = await sample(model, { count: 16, steps: 10, variance: "posterior" });
  assert.deepEqual(a.values, b.values);
  assert.notDeepEqual(a.values, c.values);
  // A model without v refuses "learned", in sampling and in the bound.
  const plain = await train({ ...TINY_TRAINING, steps: 2 });
  await assert.rejects(() => sample(plain, { count: 4, variance: "learned" }), OptionError);
  await assert.rejects(
    () => nll(plain, { values: new Float32Array(4), shape: [2, 2] }, { variance: "learned" }),
    OptionError,
  );

  // Classifier guidance on an unconditional learned-variance UNet: scale 0 is the plain sampler.
  const images = Float32Array.from(new Random(5).normals(16 * 16), (v) => Math.tanh(v));
  const unet = await train({
    data: { values: images, shape: [16, 1, 4, 4] },
    network: { kind: "unet", base: 8, mults: [1], groups: 4, heads: 1, attentionAt: [] },
    schedule: { kind: "linear", T: 20, betaStart: 1e-3, betaEnd: 0.2 },
    steps: 3,
    batchSize: 8,
    learnSigma: true,
    backend: "reference",
  });
  const cfg = {
    ...classifierConfig(1, 4, 2),
    widths: [4, 4, 4] as [number, number, number],
    features: 4,
    noise: unet.config.schedule,
  };
  const guide = new Classifier(
    cfg,
    unet.backend,
    new ParamLayout(classifierSpecs(cfg)).initialValues(new Random(6)),
  );
  const o = { count: 4, steps: 5, seed: 3 } as const;
  const unguided = await sample(unet, o);
  const zero = await sample(unet, { ...o, classes: 1, classifier: guide, classifierScale: 0 });
  const guided = await sample(unet, { ...o, classes: 1, classifier: guide, classifierScale: 50 });
  assert.deepEqual(zero.values, unguided.values);
  assert.notDeepEqual(guided.values, unguided.values);
  assert.ok(guided.values.every(Number.isFinite));
});

Deno.test("the bound's learned variance: v = -1 is the posterior's, v = +1 beta's (but at the decoder)", async () => {
  const be = float64Backend(), s = makeSchedule(SCHEDULE), B = 3, D = 2;
  const { x0 } = tinyBatch(B, D, 8);
  const run = async (vValue: number | null, variance: "posterior" | "beta" | "learned") => {
    const fn: DenoiseFn = (x) => {
      const eps = affine(x, 0.3);
      return vValue === null
        ? eps
        : concat([eps, tensor(be, new Array(x.size).fill(vValue), x.shape)], 1);
    };
    const terms = new Float64Array(B * (s.T + 1));
    await variationalBound({
      denoiser: new Denoiser(fn, s, "epsilon", 1, "ddpm", vValue !== null),
      backend: be,
      schedule: s,
      sampleShape: [D],
      values: x0,
      count: B,
      variance,
      seed: 1,
      batchSize: B,
      timesteps: Array.from({ length: s.T - 1 }, (_, i) => ({ t: i + 2, weight: 1 })),
      terms,
    });
    return terms;
  };
  const close = (a: Float64Array, b: Float64Array, skipDecoder = false) =>
    a.forEach((v, i) => {
      if (skipDecoder && i % (s.T + 1) === 1) return;
      assert.ok(Math.abs(v - b[i]) < 1e-9 * Math.max(1, Math.abs(v)), `term ${i}: ${v} vs ${b[i]}`);
    });
  close(await run(-1, "learned"), await run(null, "posterior"));
  const large = await run(1, "learned"), beta = await run(null, "beta");
  close(large, beta, true);
  // At t = 1 "beta" uses betaTilde_2 (both papers' fixed choice), the learned range log beta_1.
  assert.notEqual(large[1], beta[1]);
});

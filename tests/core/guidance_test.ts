/**
 * Class-conditional sampling and classifier-free guidance on a small conditional MLP (two labelled
 * 1-D clusters, tests/helpers/conditional.ts), on the reference backend: the guided combination
 * against separate network calls, w = 0 and w = 1 against the unconditional and conditional
 * samplers bit for bit, the classes landing where they should, and bad options.
 */

import assert from "node:assert/strict";
import {
  createSampler,
  decodeModel,
  Denoiser,
  encodeModel,
  OptionError,
  sample,
  train,
} from "../../mod.ts";
import { STREAMS } from "../../src/random_streams.ts";
import { guidedOutput } from "../../src/diffusion/guidance.ts";
import { noGrad, tensor } from "../../engine.ts";
import { CENTRES, conditionalModel, moments } from "../helpers/conditional.ts";
import { TINY_TRAINING } from "../helpers/tiny_training.ts";

Deno.test("the guided output is u + w (c - u) of the two predictions, from one doubled call", async () => {
  const model = await conditionalModel(), be = model.backend, net = model.network("ema");
  const xs = [-2, -0.5, 0.3, 1.9], x = tensor(be, xs, [4, 1]), t = tensor(be, [5, 12, 30, 40], [4]);
  const labels = tensor(be, [0, 1, 1, 0], [4]);
  const read = async (f: () => ReturnType<typeof net.forward>) => await be.read(noGrad(f).storage);
  const c = await read(() => net.forward(x, t, undefined, labels));
  const u = await read(() => net.forward(x, t, undefined, tensor(be, [2, 2, 2, 2], [4])));
  const plain = await read(() => net.forward(x, t));
  assert.deepEqual([...plain], [...u], "no labels is the null class");
  let calls = 0;
  const counting = {
    forward: (...a: Parameters<typeof net.forward>) => (calls++, net.forward(...a)),
  };
  for (const w of [0, 1, 2.5]) {
    const g = await read(() =>
      guidedOutput(counting, { x, t, labels }, 2, { scale: w, rescale: 0 })
    );
    for (let i = 0; i < 4; i++) {
      assert.ok(Math.abs(g[i] - (u[i] + w * (c[i] - u[i]))) < 1e-5, `w ${w}, sample ${i}`);
    }
  }
  assert.equal(calls, 3, "one network call per guided output");
  // Rescale 1 gives each sample the conditional output's spread (one value a sample here: a
  // spread of 0, so the floor keeps it finite and the output collapses to 0).
  const r = await read(() => guidedOutput(net, { x, t, labels }, 2, { scale: 3, rescale: 1 }));
  for (const v of r) assert.ok(Number.isFinite(v));
});

Deno.test("guidance w = 0 is the unconditional sampler and w = 1 the conditional one, bit for bit", async () => {
  const model = await conditionalModel();
  const base = { count: 64, seed: 5, sampler: "ddim", steps: 10 } as const;
  const uncond = await sample(model, base);
  const w0 = await sample(model, { ...base, classes: 1, guidanceScale: 0 });
  assert.deepEqual(w0.values, uncond.values);
  // The conditional sampler, written out: DDIM's steps (deterministic; the start draw is sample's,
  // stream 4 at counter 0) through a Denoiser whose network call carries the labels.
  const be = model.backend, net = model.network("ema"), n = 64;
  const byHand = async (label: number) => {
    const fill = (v: number) => tensor(be, new Array(n).fill(v), [n]);
    const d = new Denoiser(
      (x, tm) => net.forward(x, fill(tm), undefined, fill(label)),
      model.schedule,
      model.config.prediction,
      null,
    );
    const sampler = createSampler("ddim", model.schedule, model.config.prediction, { steps: 10 });
    let x = tensor(be, new Float32Array(n), [n, 1]);
    be.randomNormal(x.storage, { seed: 5, stream: STREAMS.sample, counter: 0 });
    const ctx = {
      denoiser: d,
      noise: () => {
        throw new Error("DDIM draws no noise");
      },
      keep: () => {},
    };
    for (let i = 0; i < sampler.timesteps.length; i++) {
      const prev = x;
      x = noGrad(() => sampler.step(ctx, i, prev));
    }
    return await be.read(x.storage);
  };
  for (const label of [0, 1]) {
    const w1 = await sample(model, { ...base, classes: label, guidanceScale: 1 });
    assert.deepEqual(w1.values, await byHand(label), `class ${label}`);
  }
  const guided = await sample(model, { ...base, classes: 0, guidanceScale: 1 });
  const w2 = await sample(model, { ...base, classes: 0, guidanceScale: 2 });
  assert.notDeepEqual(guided.values, w2.values);
  assert.notDeepEqual(guided.values, uncond.values);
});

Deno.test("each class's samples land on its cluster, and guidance tightens them", async () => {
  const model = await conditionalModel();
  for (const c of [0, 1] as const) {
    const w1 = moments((await sample(model, { count: 400, classes: c, guidanceScale: 1 })).values);
    assert.ok(Math.abs(w1.mean - CENTRES[c]) < 0.15, `class ${c}: mean ${w1.mean}`);
    assert.ok(w1.std > 0.2 && w1.std < 0.4, `class ${c}: std ${w1.std} (data 0.3)`);
    const w3 = moments((await sample(model, { count: 400, classes: c, guidanceScale: 3 })).values);
    assert.ok(w3.std < w1.std, `class ${c}: w 3 std ${w3.std} below w 1's ${w1.std}`);
    assert.ok(Math.sign(w3.mean) === Math.sign(CENTRES[c]));
  }
  // One class a sample: the first half class 0, the second class 1.
  const mixed = await sample(model, {
    count: 200,
    classes: Array.from({ length: 200 }, (_, i) => (i < 100 ? 0 : 1)),
    guidanceScale: 1,
  });
  assert.ok(moments(mixed.values.subarray(0, 100)).mean < -1);
  assert.ok(moments(mixed.values.subarray(100)).mean > 1);
  // Without classes the model is the unconditional mixture: both clusters.
  const u = (await sample(model, { count: 400 })).values;
  const left = u.filter((v) => v < 0).length / u.length;
  assert.ok(left > 0.3 && left < 0.7, `unconditional: ${left} of samples left of 0`);
});

Deno.test("bad class and guidance options end in one clear error", async () => {
  const model = await conditionalModel();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ classes: 2 }, /classes\[0\] must be an integer in \[0, 1\]/],
    [{ classes: -1 }, /classes\[0\]/],
    [{ classes: 0.5 }, /classes\[0\]/],
    [{ classes: [0, 1] }, /classes has 2 entries for 4 samples/],
    [{ guidanceScale: 2 }, /guidanceScale needs classes/],
    [{ classes: 0, guidanceScale: -1 }, /guidanceScale/],
    [{ classes: 0, guidanceRescale: 1.5 }, /guidanceRescale/],
  ];
  for (const [o, re] of cases) {
    await assert.rejects(() => sample(model, { count: 4, ...o }), (e: Error) => {
      assert.ok(e instanceof OptionError, `${JSON.stringify(o)}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
  const plain = await train({ ...TINY_TRAINING, steps: 2 });
  await assert.rejects(
    () => sample(plain, { count: 4, classes: 0 }),
    /the model is unconditional/,
  );
});

Deno.test("guided and edited sampling on the wasm backend matches the reference backend", async () => {
  const model = await conditionalModel();
  const onWasm = await decodeModel(await encodeModel(model), "conditional model", "wasm");
  const init = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i));
  const runs = [
    {
      count: 64,
      classes: 1,
      guidanceScale: 3,
      guidanceRescale: 0.5,
      sampler: "dpm++2m",
      steps: 10,
    },
    { count: 64, classes: 0, init, strength: 0.6, sampler: "ddim", steps: 10 },
    { count: 64, classes: 1, init, mask: Float32Array.from([1]), sampler: "ddim", steps: 10 },
  ] as const;
  for (const o of runs) {
    const a = await sample(model, o), b = await sample(onWasm, o);
    let worst = 0;
    for (let i = 0; i < a.values.length; i++) {
      worst = Math.max(worst, Math.abs(a.values[i] - b.values[i]));
    }
    assert.ok(worst < 1e-3, `${JSON.stringify(Object.keys(o))}: max difference ${worst}`);
  }
  onWasm.backend.dispose();
});

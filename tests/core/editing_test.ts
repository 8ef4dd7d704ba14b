/**
 * Editing a given sample with every sampler: SDEdit's two limits (a strength too small to reach a
 * step returns the input; strength 1 is sampling from noise with the same seed), an edit toward
 * another class, inpainting keeping the known region bit for bit, and bad inputs.
 */

import assert from "node:assert/strict";
import { OptionError, sample, SAMPLERS, train } from "../../mod.ts";
import { CENTRES, conditionalModel, moments } from "../helpers/conditional.ts";
import { TINY_TRAINING } from "../helpers/tiny_training.ts";

const N = 64;
const FROM_CLASS_0 = () => new Float32Array(N).fill(CENTRES[0]);

Deno.test("SDEdit: strength too small to reach a step returns the input; strength 1 is sampling from noise", async () => {
  const model = await conditionalModel();
  for (const sampler of SAMPLERS) {
    const init = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
    // T = 40: strength 0.01 starts at t0 = 0.4, below every sampler's first step.
    const kept = await sample(model, { count: N, sampler, steps: 8, init, strength: 0.01 });
    assert.deepEqual(kept.values, init, sampler);
    const fromNoise = await sample(model, { count: N, sampler, steps: 8, seed: 3 });
    const strength1 = await sample(model, {
      count: N,
      sampler,
      steps: 8,
      seed: 3,
      init,
      strength: 1,
    });
    assert.deepEqual(strength1.values, fromNoise.values, sampler);
  }
});

Deno.test("SDEdit keeps a weak edit near the input and carries a strong one to the class asked for", async () => {
  const model = await conditionalModel();
  const init = FROM_CLASS_0();
  const weak = moments((await sample(model, { count: N, init, strength: 0.2, classes: 0 })).values);
  assert.ok(Math.abs(weak.mean - CENTRES[0]) < 0.2, `weak edit mean ${weak.mean}`);
  const strong = await sample(model, {
    count: N,
    init,
    strength: 0.9,
    classes: 1,
    guidanceScale: 2,
  });
  assert.ok(
    moments(strong.values).mean > 1,
    `strong edit to class 1: ${moments(strong.values).mean}`,
  );
  // In between, the edit moves part of the way: farther than the weak one.
  const mid = moments((await sample(model, { count: N, init, strength: 0.5, classes: 1 })).values);
  assert.ok(mid.mean > weak.mean, `${mid.mean} vs ${weak.mean}`);
});

Deno.test("inpainting keeps the known region exactly and fills in the rest, with every sampler", async () => {
  // 2-D points: coordinate 0 known (mask 1), coordinate 1 generated.
  const model = await train({ ...TINY_TRAINING, steps: 60 });
  const init = Float32Array.from({ length: 2 * N }, (_, i) => (i % 2 === 0 ? 0.25 * (i % 7) : 99));
  const mask = Float32Array.from([1, 0]);
  for (const sampler of SAMPLERS) {
    for (const resampling of [1, 2]) {
      const got = await sample(model, {
        count: N,
        sampler,
        steps: 6,
        init,
        mask,
        clip: 4,
        resampling,
      });
      for (let i = 0; i < N; i++) {
        assert.equal(got.values[2 * i], init[2 * i], `${sampler}: sample ${i} known coordinate`);
        const y = got.values[2 * i + 1];
        assert.ok(Number.isFinite(y) && Math.abs(y) < 10, `${sampler}: generated ${y}`);
      }
    }
  }
  // RePaint's resampling: the known region still exact, the generated one drawn anew.
  const once = await sample(model, { count: N, steps: 6, init, mask, clip: 4 });
  const thrice = await sample(model, { count: N, steps: 6, init, mask, clip: 4, resampling: 3 });
  assert.deepEqual(
    await sample(model, { count: N, steps: 6, init, mask, clip: 4, resampling: 1 }),
    once,
  );
  for (let i = 0; i < N; i++) assert.equal(thrice.values[2 * i], init[2 * i]);
  assert.notDeepEqual(thrice.values, once.values);
  assert.ok(thrice.values.every((v) => Number.isFinite(v) && Math.abs(v) < 10));
  // One mask a sample: the first half of the samples known whole, the rest generated.
  const each = Float32Array.from({ length: 2 * N }, (_, i) => (i < N ? 1 : 0));
  const half = await sample(model, { count: N, init, mask: each, strength: 1, clip: 4 });
  assert.deepEqual(half.values.subarray(0, N), init.subarray(0, N));
  assert.ok(half.values.subarray(N).every((v) => Math.abs(v) < 10));
});

Deno.test("bad edit inputs end in one clear error", async () => {
  const model = await conditionalModel();
  const init = FROM_CLASS_0();
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { init: new Float32Array(3), strength: 0.5 },
      /init must be a Float32Array of count x \[1\] = 64 values, got 3/,
    ],
    [{ init: Array.from(init), strength: 0.5 }, /init must be a Float32Array/],
    [{ init: init.map((v, i) => (i === 5 ? NaN : v)), strength: 0.5 }, /init\[5\] is NaN/],
    [{ init }, /init needs strength \(SDEdit\) or mask \(inpainting\)/],
    [{ init, strength: 0 }, /strength/],
    [{ init, strength: 1.5 }, /strength/],
    [{ strength: 0.5 }, /strength edits a given sample: pass init too/],
    [{ mask: new Float32Array(1) }, /mask edits a given sample/],
    [
      { init, mask: new Float32Array(2) },
      /mask must be a Float32Array of one sample's \[1\] \(1 values\) or one a sample \(64\), got 2/,
    ],
    [{ init, mask: Float32Array.from([2]) }, /mask\[0\] is 2/],
    [{ init, strength: 0.5, resampling: 2 }, /resampling is for inpainting: pass a mask/],
    [{ init, mask: Float32Array.from([1]), resampling: 0 }, /resampling/],
  ];
  for (const [o, re] of cases) {
    await assert.rejects(() => sample(model, { count: N, ...o }), (e: Error) => {
      assert.ok(e instanceof OptionError, `${re}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
});

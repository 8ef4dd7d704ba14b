/**
 * Classifier guidance: the noise-conditional classifier's input gradient against finite
 * differences, the output shift of each prediction type against its eps link, guided sampling that
 * raises the classifier's belief in the class asked for (and is the plain sampler at scale 0), and
 * bad classifiers refused with one clear error.
 */

import assert from "node:assert/strict";
import { OptionError, sample, train } from "../../mod.ts";
import { Classifier, trainClassifier } from "../../metrics.ts";
import { classifierConfig, classifierSpecs } from "../../src/eval/classifier.ts";
import {
  classifierGradient,
  classifierGuidedOutput,
  noGrad,
  ParamLayout,
  softmax,
  tensor,
} from "../../engine.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { predictEpsilon } from "../../src/diffusion/parameterization.ts";
import { Random } from "../../data.ts";
import { float64Backend, relErr } from "../helpers/gradcheck.ts";

const NOISE = { kind: "linear", T: 10, betaStart: 0.01, betaEnd: 0.3 } as const;

function tinyClassifier(be = float64Backend(), size = 6): Classifier {
  const config = {
    ...classifierConfig(1, size, 3),
    widths: [2, 3, 4] as [number, number, number],
    features: 5,
    noise: NOISE,
  };
  const layout = new ParamLayout(classifierSpecs(config));
  return new Classifier(config, be, layout.initialValues(new Random(7, 0)));
}

Deno.test("the classifier's input gradient equals finite differences of sum log p(y | x_t, t)", async () => {
  const be = float64Backend(), c = tinyClassifier(be);
  const n = 2, per = 36, x = new Random(1).normals(n * per), labels = [0, 2], ts = [3, 7];
  const logp = async (v: ArrayLike<number>) => {
    const p = noGrad(() =>
      softmax(c.forward(tensor(be, v, [n, 1, 6, 6]), tensor(be, ts, [n])).logits)
    );
    const probs = await be.read(p.storage);
    return labels.reduce((s, y, i) => s + Math.log(probs[i * 3 + y]), 0);
  };
  const g = await be.read(
    classifierGradient(c, tensor(be, x, [n, 1, 6, 6]), tensor(be, ts, [n]), tensor(be, labels, [n]))
      .storage,
  );
  // The weights are held fixed: no weight gradient was computed or accumulated.
  assert.ok((await be.read(c.params.grads!)).every((v) => v === 0), "weight gradients untouched");
  const h = 1e-6;
  let worst = 0, largest = 0;
  for (let i = 0; i < x.length; i++) {
    const up = Float64Array.from(x), down = Float64Array.from(x);
    up[i] += h;
    down[i] -= h;
    const numeric = ((await logp(up)) - (await logp(down))) / (2 * h);
    worst = Math.max(worst, relErr(g[i], numeric));
    largest = Math.max(largest, Math.abs(numeric));
  }
  assert.ok(largest > 1e-3, "the gradient is not vacuous");
  assert.ok(worst < 1e-6, `max relative error ${worst}`);
});

Deno.test("classifier guidance moves each prediction type's eps estimate by -s sigma grad", async () => {
  const be = float64Backend(), r = new Random(2);
  const x = tensor(be, r.normals(8), [8]), out = tensor(be, r.normals(8), [8]);
  const grad = tensor(be, r.normals(8), [8]), level = { a: 0.6, s: 0.8 }, scale = 2.5;
  const g = await be.read(grad.storage);
  for (const kind of ["epsilon", "x0", "v"] as const) {
    const before = await be.read(predictEpsilon(kind, out, x, level).storage);
    const moved = classifierGuidedOutput(out, grad, kind, level, scale);
    const after = await be.read(predictEpsilon(kind, moved, x, level).storage);
    for (let i = 0; i < 8; i++) {
      assert.ok(Math.abs(after[i] - before[i] + scale * 0.8 * g[i]) < 1e-12, `${kind} ${i}`);
    }
  }
});

Deno.test("classifier-guided sampling raises p(y | x) of the class asked for; scale 0 is the plain sampler", async () => {
  // Images of 8x8: class 0 bright on the left, class 1 bright on the right.
  const n = 256, per = 64, r = new Random(5), z = r.normals(n * per);
  const images = new Float32Array(n * per), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < per; p++) {
      const left = p % 8 < 4;
      images[i * per + p] = (left === (labels[i] === 0) ? 0.8 : -0.8) + 0.1 * z[i * per + p];
    }
  }
  const schedule = { kind: "linear", T: 20, betaStart: 1e-3, betaEnd: 0.2 } as const;
  const model = await train({
    data: { values: images, shape: [n, 1, 8, 8] },
    network: { kind: "unet", base: 8, mults: [1, 2], groups: 4, heads: 1, attentionAt: [] },
    schedule,
    steps: 60,
    batchSize: 32,
    lr: 3e-3,
    backend: "wasm",
  });
  const judge = await trainClassifier({
    images,
    labels,
    shape: [n, 1, 8, 8],
    classes: 2,
    steps: 150,
    batchSize: 32,
    config: { widths: [4, 4, 4], features: 8 },
    noise: schedule,
    backend: "wasm",
  });
  // The judge lives on its own backend object: guidance needs the classifier on the model's.
  const o = { count: 64, sampler: "ddim", steps: 10, seed: 3 } as const;
  await assert.rejects(
    () => sample(model, { ...o, classes: 0, classifier: judge }),
    /another backend than the model/,
  );
  const guide = new Classifier(
    judge.config,
    model.backend,
    await judge.backend.read(judge.params.values),
  );
  const plain = await sample(model, o);
  const zero = await sample(model, { ...o, classes: 1, classifier: guide, classifierScale: 0 });
  assert.deepEqual(zero.values, plain.values);
  const belief = async (values: Float32Array, y: number) => {
    const be = judge.backend;
    const p = noGrad(() =>
      softmax(
        judge.forward(tensor(be, values, [64, 1, 8, 8]), tensor(be, new Array(64).fill(1), [64]))
          .logits,
      )
    );
    const probs = await be.read(p.storage);
    let s = 0;
    for (let i = 0; i < 64; i++) s += probs[i * 2 + y];
    return s / 64;
  };
  for (const y of [0, 1]) {
    const guided = await sample(model, { ...o, classes: y, classifier: guide, classifierScale: 5 });
    const before = await belief(plain.values, y), after = await belief(guided.values, y);
    assert.ok(after > before + 0.1 && after > 0.8, `class ${y}: p(y | x) ${before} -> ${after}`);
  }
});

Deno.test("a classifier that cannot guide the model is refused with one clear error", async () => {
  const model = await train({
    data: { values: new Float32Array(8 * 36).fill(0.5), shape: [8, 1, 6, 6] },
    network: { kind: "unet", base: 8, mults: [1], groups: 4, heads: 1, attentionAt: [] },
    schedule: NOISE,
    steps: 1,
    batchSize: 4,
    backend: "reference",
  });
  const be = model.backend, ok = tinyClassifier(be);
  const clean = (() => {
    const config = { ...ok.config, noise: undefined };
    return new Classifier(
      config,
      be,
      new Float32Array(new ParamLayout(classifierSpecs(config)).length),
    );
  })();
  const other = (() => {
    const config = { ...ok.config, noise: { ...NOISE, T: 20 } };
    return new Classifier(
      config,
      be,
      new Float32Array(new ParamLayout(classifierSpecs(config)).length),
    );
  })();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ classes: 0, classifier: clean }, /reads clean images/],
    [
      { classes: 0, classifier: tinyClassifier(be, 8) },
      /reads images \[1,8,8\], the model makes \[1,6,6\]/,
    ],
    [{ classes: 0, classifier: other }, /trained on the schedule/],
    [{ classes: 0, classifier: tinyClassifier(createReferenceBackend()) }, /another backend/],
    [{ classes: 0, classifier: ok, guidanceScale: 2 }, /guidanceScale is classifier-free guidance/],
    [{ classes: 3, classifier: ok }, /classes\[0\] must be an integer in \[0, 2\]/],
    [{ classifier: ok }, /classifier needs classes/],
    [{ classes: 0, classifier: ok, classifierScale: -1 }, /classifierScale/],
  ];
  for (const [opts, re] of cases) {
    await assert.rejects(() => sample(model, { count: 2, ...opts }), (e: Error) => {
      assert.ok(e instanceof OptionError, `${re}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
});

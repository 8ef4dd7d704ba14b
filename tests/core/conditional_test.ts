/**
 * Class-conditional models: the class embedding (lookup and gradient), labelled training data and
 * its checks, the checkpoint that says it is conditional, and a conditional run resumed bit for bit.
 */

import assert from "node:assert/strict";
import { loadModel, OptionError, sample, saveModel, train } from "../../mod.ts";
import { ClassEmbedding } from "../../src/nn/class_embedding.ts";
import { noGrad, type Tensor, tensor } from "../../engine.ts";
import { float64Backend, gradCheck } from "../helpers/gradcheck.ts";
import { conditionalModel, conditionalTraining, twoClusters } from "../helpers/conditional.ts";
import { trainStoppedAt } from "../helpers/tiny_training.ts";

/** A parameter source handing out one given tensor (the embedding's weight). */
const holding = (w: Tensor) => ({ param: () => w });

Deno.test("the class embedding looks up one row a label (the last the null class), with its gradient", async () => {
  const be = float64Backend();
  const rows = Array.from({ length: 4 * 3 }, (_, i) => i * 0.25 - 1);
  const w = tensor(be, rows, [4, 3]);
  const labels = [0, 2, 3, 1, 2, 3];
  const emb = new ClassEmbedding(holding(w), "label_emb", 3, 3);
  const got = await be.read(noGrad(() => emb.forward(tensor(be, labels, [6]))).storage);
  assert.deepEqual([...got], labels.flatMap((y) => rows.slice(3 * y, 3 * y + 3)));
  const nulls = await be.read(noGrad(() => emb.embed(undefined, 2, w)).storage);
  assert.deepEqual([...nulls], [...rows.slice(9), ...rows.slice(9)]);
  // d/dW of sum(R * embed(labels)) scatters R's rows into the labels' rows.
  await gradCheck(
    be,
    [{ data: rows, shape: [4, 3] }, { data: labels, shape: [6], grad: false }],
    ([wt, y]) => new ClassEmbedding(holding(wt), "label_emb", 3, 3).forward(y),
  );
  assert.throws(() => new ClassEmbedding(holding(w), "e", 0, 3), /classes must be an integer/);
});

Deno.test("labelled data trains a conditional model whose checkpoint says so and loads", async () => {
  const model = await conditionalModel();
  assert.equal(model.config.network.classes, 2);
  assert.ok(model.layout.entries.some((e) => e.name === "label_emb.weight"));
  const entry = model.layout.entries.find((e) => e.name === "label_emb.weight")!;
  assert.deepEqual(entry.shape, [3, 32]); // classes + 1 rows of the embedding size
  const dir = await Deno.makeTempDir({ prefix: "conditional_" });
  try {
    await saveModel(model, `${dir}/m.safetensors`);
    const again = await loadModel(`${dir}/m.safetensors`, "reference");
    assert.equal(again.config.network.classes, 2);
    const o = { count: 32, classes: 1, guidanceScale: 2, sampler: "ddim", steps: 8 } as const;
    assert.deepEqual((await sample(again, o)).values, (await sample(model, o)).values);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // An unlabelled model keeps its old parameters and configuration: no classes, no label_emb.
  const { values } = twoClusters();
  const plain = await train({ ...conditionalTraining(2), data: { values, shape: [1000, 1] } });
  assert.equal(plain.config.network.classes, undefined);
  assert.ok(!plain.layout.entries.some((e) => e.name.startsWith("label_emb")));
});

Deno.test("a conditional run stopped and resumed from its checkpoint equals an uninterrupted one", async () => {
  const whole = await train(conditionalTraining(30));
  const half = await trainStoppedAt({ ...conditionalTraining(30), progressEvery: 5 }, 15);
  assert.equal(half.stepsTrained, 15);
  const dir = await Deno.makeTempDir({ prefix: "conditional_resume_" });
  try {
    await saveModel(half, `${dir}/half.safetensors`);
    const loaded = await loadModel(`${dir}/half.safetensors`, "reference");
    const resumed = await train({ ...conditionalTraining(30), resume: loaded });
    assert.deepEqual(await resumed.weights("raw"), await whole.weights("raw"));
    assert.deepEqual(await resumed.weights("ema"), await whole.weights("ema"));
    // Resuming a conditional model without its labels is refused.
    const { values } = twoClusters();
    await assert.rejects(
      () =>
        train({
          ...conditionalTraining(40),
          data: { values, shape: [1000, 1] },
          resume: loaded,
        }),
      OptionError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad labels end in one clear error before training", async () => {
  const { values, labels } = twoClusters();
  const shape = [1000, 1];
  const cases: [Record<string, unknown>, Record<string, unknown>, RegExp][] = [
    [{ labels: labels.subarray(0, 10) }, {}, /data.labels must be an Int32Array of 1000 labels/],
    [
      { labels: Int32Array.from(labels, (y, i) => (i === 7 ? 2 : y)), classes: 2 },
      {},
      /data.labels\[7\] is 2, outside \[0, 2\)/,
    ],
    [
      { labels: Int32Array.from(labels, (y, i) => (i === 3 ? -1 : y)) },
      {},
      /data.labels\[3\] is -1/,
    ],
    [{ labels: Array.from(labels) }, {}, /must be an Int32Array/],
    [{ classes: 2 }, {}, /data.classes is set but data.labels is not/],
    [{ labels, classes: 0 }, {}, /classes must be an integer/],
    [{}, { condDropout: 0.1 }, /condDropout applies to labelled data/],
    [{ labels }, { condDropout: 1 }, /condDropout/],
  ];
  for (const [data, extra, re] of cases) {
    await assert.rejects(
      () => train({ ...conditionalTraining(5), data: { values, shape, ...data }, ...extra }),
      (e: Error) => {
        assert.ok(e instanceof OptionError, `${re}: ${e}`);
        assert.match(e.message, re);
        return true;
      },
    );
  }
});

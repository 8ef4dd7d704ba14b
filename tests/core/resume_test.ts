/**
 * Stopping, saving, loading and resuming training gives exactly the uninterrupted result; checkpoint
 * callbacks, and files without optimizer state refusing to resume.
 */

import assert from "node:assert/strict";
import { OptionError } from "../../src/errors.ts";
import { loadModel, saveModel } from "../../src/io/model_file.ts";
import { train } from "../../src/train.ts";
import { TINY_TRAINING as opts, trainStoppedAt } from "../helpers/tiny_training.ts";

Deno.test("stopping, saving, loading and resuming gives exactly the uninterrupted result", async () => {
  const straight = await train(opts);

  const half = await trainStoppedAt(opts, 20);
  assert.equal(half.stepsTrained, 20);
  const dir = await Deno.makeTempDir();
  try {
    await saveModel(half, `${dir}/ckpt.safetensors`);
    const loaded = await loadModel(`${dir}/ckpt.safetensors`, "reference");
    assert.equal(loaded.stepsTrained, 20);
    assert.equal(loaded.optimizer?.step, 20);
    const resumed = await train({ ...opts, resume: loaded });
    assert.equal(resumed.stepsTrained, 40);
    for (const which of ["raw", "ema"] as const) {
      const a = await straight.weights(which), b = await resumed.weights(which);
      for (const [name, v] of a) assert.deepEqual(b.get(name), v, `${which} ${name}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoints fire every N steps; a file saved without optimizer state cannot resume", async () => {
  const seen: number[] = [];
  const model = await train({
    ...opts,
    steps: 30,
    checkpointEvery: 10,
    onCheckpoint: (m) => {
      seen.push(m.stepsTrained);
    },
  });
  assert.deepEqual(seen, [10, 20, 30]);
  const dir = await Deno.makeTempDir();
  try {
    await saveModel(model, `${dir}/weights.safetensors`, { optimizer: false });
    const loaded = await loadModel(`${dir}/weights.safetensors`, "reference");
    assert.equal(loaded.optimizer, null);
    await assert.rejects(() => train({ ...opts, resume: loaded }), OptionError);
    const withState = await loadModel(`${dir}/weights.safetensors`, "reference");
    withState.optimizer = model.optimizer;
    await assert.rejects(
      () => train({ ...opts, network: { hidden: 8 }, resume: withState }),
      /these options differ from the model's configuration: network\.hidden: model 16, options 8$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

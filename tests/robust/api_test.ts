/**
 * The library's API under careless input and faults: sampling options that used to fall back or
 * clamp silently, sizes past what one call can return, an already-aborted training, a model whose
 * weights went non-finite (refused at checkpoint time and on load), and samples that come out NaN.
 */

import assert from "node:assert/strict";
import { decodeModel, encodeModel, OptionError, sample, train, TrainingError } from "../../mod.ts";
import { TINY_TRAINING } from "../helpers/tiny_training.ts";

Deno.test("sample: an unknown weights value, batchSize 0 and a count past the limits are refused", async () => {
  const model = await train({ ...TINY_TRAINING, steps: 2 });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ weights: "best" }, /weights must be one of ema, raw, got "best"/],
    [{ batchSize: 0 }, /batchSize/],
    [{ count: 1e12 }, /count/],
    [{ count: 200_000_000 }, /count/],
  ];
  for (const [o, re] of cases) {
    await assert.rejects(() => sample(model, o), (e: Error) => {
      assert.ok(e instanceof OptionError, `${JSON.stringify(o)}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("train: an already-aborted signal trains no step", async () => {
  const ctl = new AbortController();
  ctl.abort();
  let checkpoints = 0;
  const model = await train({
    ...TINY_TRAINING,
    signal: ctl.signal,
    onCheckpoint: () => void checkpoints++,
  });
  assert.equal(model.stepsTrained, 0);
  assert.equal(checkpoints, 0);
});

Deno.test("non-finite weights: no checkpoint is handed out, the file is refused, NaN samples throw", async () => {
  const model = await train({ ...TINY_TRAINING, steps: 2 });
  const be = model.backend;
  const poisoned = Float32Array.from(await be.read(model.params.values));
  // The output layer's last bias: every sample's output is NaN (a NaN before a ReLU may vanish).
  const last = model.layout.entries.at(-1)!;
  poisoned[last.offset + last.size - 1] = NaN;
  be.write(model.params.values, poisoned);
  // A file written from it anyway (by hand) is refused on load, naming the tensor.
  const bytes = await encodeModel(model);
  await assert.rejects(
    () => decodeModel(bytes, "poisoned.safetensors", "reference"),
    /poisoned.safetensors.*tensor net\.\d+\.bias holds NaN: the run that wrote it diverged/,
  );
  // Its samples are NaN: sampling says so instead of returning them.
  await assert.rejects(() => sample(model, { count: 8, weights: "raw" }), TrainingError);
  // Training on from it: the checkpoint callback never sees the non-finite weights.
  let handed = 0;
  await assert.rejects(
    () =>
      train({
        ...TINY_TRAINING,
        steps: 6,
        resume: model,
        checkpointEvery: 1,
        onCheckpoint: () => void handed++,
      }),
    (e: Error) => e instanceof TrainingError && /diverged/.test(e.message),
  );
  assert.equal(handed, 0);
});

/**
 * scripts/train_mnist.ts and scripts/sample.ts from the command line: bad flags, the loss,
 * weighting and timestep-sampling defaults, attention and patch options, checkpoints and --resume,
 * and sampling grids, trajectories and raw output from a checkpoint.
 */

import assert from "node:assert/strict";
import { loadModel, readModelMetadata, saveModel } from "../../src/io/model_file.ts";
import { decodeSafetensors } from "../../src/io/safetensors.ts";
import { runDeno } from "../helpers/run_deno.ts";

function run(args: string[], script = "scripts/train_mnist.ts") {
  return runDeno(["run", "-A", script, ...args]);
}

const TINY = [
  ...["--steps", "4", "--batch", "4", "--sample-every", "2", "--checkpoint-every", "2"],
  ...["--base", "8", "--mults", "1,2"],
];
const GRIDS = ["--sample-count", "4", "--sample-steps", "2", "--backend", "wasm"];

Deno.test("train_mnist: bad flags end in one error line naming the flag, no files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string[], RegExp][] = [
      [["--bogus"], /bogus/],
      [["--steps", "-1"], /steps/],
      [["--batch", "0"], /--batch/],
      [["--preset", "tpu"], /--preset/],
      [["--T", "1"], /--T/],
      [["--schedule", "linear", "--T", "200"], /keeps 3\d% of the image at t = T.*--beta-end/],
      [["--sample-steps", "5000"], /--sample-steps/],
      [["--base", "7"], /--base/],
      [["--min-snr", "-1"], /--min-snr/],
      [["--min-snr", "5", "--loss", "l1"], /--min-snr .*--loss l2/],
      [["--base", "2"], /--base/],
      [["--mults", "1,0"], /--mults/],
      [["--mults", "1,x"], /--mults/],
      [["--mults", "1,2,2,2"], /--mults/],
      [["--attention-at", "14,5"], /--attention-at .*28, 14, 7/],
      [["--attention-at", "7,7"], /--attention-at/],
      [["--patch", "3"], /--patch must divide the image side, 28/],
      [["--adam-beta2", "1"], /--adam-beta2/],
      [["--timesteps", "loss-aware"], /--timesteps/],
      [["--timesteps", "importance", "--loss", "huber"], /--timesteps importance .*--loss l2/],
      [["--patch", "2", "--mults", "1,2,4"], /--mults 1,2,4 with --patch 2: .*14x14/],
      [["--resume", `${dir}/none.safetensors`], /no such file/],
      [["--export-weights", dir], /--export-weights .* is a folder, not a file/],
      [["--export-weights", ""], /--export-weights must name a file/],
      [["--learn-sigma", "--prediction", "x0"], /--learn-sigma .*--prediction epsilon/],
    ];
    for (const [args, re] of cases) {
      const r = await run([...args, "--out", `${dir}/out`]);
      assert.equal(r.code, 1, args.join(" "));
      assert.equal(r.stderr.length, 1, `${args.join(" ")}: ${r.stderr.join(" | ")}`);
      assert.match(r.stderr[0], /^error: /);
      assert.match(r.stderr[0], re);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A tiny run (TINY, no grids) with `extra` flags in a temporary folder: the checkpoint's model (on
 * the reference backend) and its training settings; the folder is removed.
 */
async function tinyRun(extra: string[], steps = 1) {
  const dir = await Deno.makeTempDir();
  try {
    const r = await run([...TINY, "--steps", String(steps), "--sample-every", "0", ...extra]
      .concat(["--backend", "wasm", "--sample-count", "1", "--sample-steps", "1", "--out", dir]));
    assert.equal(r.code, 0, r.stderr.join("\n"));
    const path = `${dir}/checkpoint.safetensors`;
    const training = JSON.parse((await readModelMetadata(path)).training);
    const model = await loadModel(path, "reference");
    const net = model.config.network;
    assert.equal(net.kind, "unet");
    return { model, net: net.kind === "unet" ? net : null, training };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("train_mnist: --export-weights writes the EMA weights alone as a plain state_dict, also on --resume", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ckpt = `${dir}/checkpoint.safetensors`;
    const flags = [...TINY, "--sample-every", "0", ...GRIDS, "--sample-count", "1", "--out", dir];
    for (
      const [args, file] of [
        [[...flags, "--steps", "1"], `${dir}/new/ema.safetensors`],
        [["--resume", ckpt, "--steps", "2", "--backend", "wasm"], `${dir}/resumed.safetensors`],
      ] as const
    ) {
      const r = await run([...args, "--export-weights", file]);
      assert.equal(r.code, 0, r.stderr.join("\n"));
      const model = await loadModel(ckpt, "reference");
      const { tensors, metadata } = decodeSafetensors(await Deno.readFile(file));
      assert.equal(metadata.weights, "ema");
      assert.equal(metadata.steps_trained, String(model.stepsTrained));
      const ema = await model.weights("ema");
      assert.deepEqual([...tensors.keys()], [...ema.keys()]);
      for (const [name, values] of ema) assert.deepEqual(tensors.get(name)!.data, values, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train_mnist: --loss l1 turns the default min-SNR weighting and importance sampling off", async () => {
  const { model, training } = await tinyRun(["--loss", "l1"], 2);
  assert.equal(training.loss, "l1");
  assert.equal(training["min-snr"], 0);
  assert.equal(training.timesteps, "uniform");
  assert.equal(model.timestepStats, null);
});

Deno.test("train_mnist: by default t is importance-sampled and its statistics are checkpointed", async () => {
  const { model, training } = await tinyRun([], 2);
  assert.equal(training.timesteps, "importance");
  assert.equal(model.timestepStats?.count.reduce((a, b) => a + b), 2 * 4);
});

Deno.test("train_mnist: --learn-sigma doubles the UNet's output channels and is recorded", async () => {
  const { model, net, training } = await tinyRun(["--learn-sigma"], 2);
  assert.equal(net?.learnSigma, true);
  assert.equal(model.learnSigma, true);
  assert.equal(training["learn-sigma"], "yes");
  const shapes = new Map(model.layout.entries.map((e) => [e.name, e.shape]));
  assert.deepEqual(shapes.get("outc.weight"), [2, 8, 3, 3]);
  assert.deepEqual(shapes.get("inc.weight"), [8, 1, 3, 3]);
});

Deno.test("train_mnist: --attention-at puts attention at the listed resolutions", async () => {
  const { model, net } = await tinyRun(["--attention-at", "28,14"]);
  assert.deepEqual(net?.attentionAt, [28, 14]);
  assert.equal(net?.patch, undefined);
  // 28 (the top level, down and up) and 14 (the lowest: the middle block).
  const names = model.layout.entries.map((e) => e.name);
  for (const prefix of ["dattn.0.", "uattn.", "attn."]) {
    assert.ok(names.some((n) => n.startsWith(prefix)), `${prefix}: ${names.join(" ")}`);
  }
});

Deno.test("train_mnist: --patch 2 trains the UNet on 2x2 patches (4 channels at 14x14)", async () => {
  const { model, net, training } = await tinyRun(["--patch", "2"]);
  assert.equal(net?.patch, 2);
  assert.deepEqual(net?.attentionAt, [7]);
  const shapes = new Map(model.layout.entries.map((e) => [e.name, e.shape]));
  assert.deepEqual(shapes.get("inc.weight"), [8, 4, 3, 3]);
  assert.deepEqual(shapes.get("outc.weight"), [4, 8, 3, 3]);
  assert.equal(training.patch, 2);
});

Deno.test("train_mnist: --resume of a checkpoint from before --adam-beta2 and --timesteps goes on with 0.999 and uniform t", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/checkpoint.safetensors`;
    const r = await run([...TINY, "--steps", "1", "--sample-every", "0", ...GRIDS, "--out", dir]);
    assert.equal(r.code, 0, r.stderr.join("\n"));
    const meta = await readModelMetadata(path);
    const { "adam-beta2": _, timesteps: __, ...older } = JSON.parse(meta.training);
    await saveModel(await loadModel(path, "reference"), path, {
      metadata: { training: JSON.stringify(older), rng: meta.rng },
    });
    const again = await run(["--resume", path, "--steps", "2"]);
    assert.equal(again.code, 0, again.stderr.join("\n"));
    const training = JSON.parse((await readModelMetadata(path)).training);
    assert.equal(training["adam-beta2"], 0.999);
    assert.equal(training.timesteps, "uniform");
    const resumed = await loadModel(path, "reference");
    assert.equal(resumed.stepsTrained, 2);
    assert.equal(resumed.timestepStats, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train_mnist: a tiny run writes grids and a checkpoint; --resume continues it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await run([...TINY, ...GRIDS, "--out", dir]);
    assert.equal(r.code, 0, r.stderr.join("\n"));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "checkpoint.safetensors",
      "samples_000002_ema.png",
      "samples_000002_raw.png",
      "samples_000004_ema.png",
      "samples_000004_raw.png",
    ]);
    const meta = await readModelMetadata(`${dir}/checkpoint.safetensors`);
    assert.equal(JSON.parse(meta.training).batch, 4);
    assert.equal(JSON.parse(meta.training)["min-snr"], 1);
    assert.equal(JSON.parse(meta.training)["adam-beta2"], 0.99);
    assert.equal(meta.optimizer_step, "4");
    const again = await run(["--resume", `${dir}/checkpoint.safetensors`, "--steps", "6"]);
    assert.equal(again.code, 0, again.stderr.join("\n"));
    const model = await loadModel(`${dir}/checkpoint.safetensors`, "reference");
    assert.equal(model.stepsTrained, 6);
    assert.equal(model.config.network.kind, "unet");
    if (model.config.network.kind === "unet") {
      assert.equal(model.config.network.base, 8);
      assert.deepEqual(model.config.network.mults, [1, 2]);
      assert.deepEqual(model.config.network.attentionAt, [14]);
    }
    const refused = await run([
      "--resume",
      `${dir}/checkpoint.safetensors`,
      "--steps",
      "8",
      "--lr",
      "0.1",
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr[0], /--lr cannot change on --resume/);
    const resized = await run(["--resume", `${dir}/checkpoint.safetensors`, "--base", "16"]);
    assert.equal(resized.code, 1);
    assert.match(resized.stderr[0], /--base cannot change on --resume/);
    const learned = await run(["--resume", `${dir}/checkpoint.safetensors`, "--learn-sigma"]);
    assert.equal(learned.code, 1);
    assert.match(learned.stderr[0], /--learn-sigma cannot change on --resume/);

    // scripts/sample.ts on the same checkpoint: grid, trajectory, forward figure, raw float32.
    const out = `${dir}/samples`, ckpt = `${dir}/checkpoint.safetensors`;
    const drawn = await run(
      [ckpt, "--count", "3", "--steps", "4", "--trajectory", "2", "--forward", "2", "--raw"]
        .concat(["--backend", "wasm", "--out", out]),
      "scripts/sample.ts",
    );
    assert.equal(drawn.code, 0, drawn.stderr.join("\n"));
    const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(files, ["forward.png", "samples.f32", "samples.png", "trajectory.png"]);
    const raw = await Deno.readFile(`${out}/samples.f32`);
    assert.equal(raw.byteLength, 3 * 28 * 28 * 4);
    const px = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    assert.ok(
      px.every((v) => Number.isFinite(v) && Math.abs(v) <= 3),
      "finite pixels near [-1, 1]",
    );
    assert.ok(new Set(px).size > 100, "the samples are not constant");
    const png = await Deno.readFile(`${out}/samples.png`);
    assert.deepEqual([...png.subarray(1, 4)], [80, 78, 71]); // "PNG"
    const badFlags: [string[], RegExp][] = [
      [[], /exactly one checkpoint/],
      [[ckpt, "--steps", "0"], /--steps/],
      [[ckpt, "--variance", "wide"], /--variance/],
      [[ckpt, "--variance", "learned"], /variance "learned" needs a model trained with learnSigma/],
      [[ckpt, "--sampler", "ddim", "--variance", "beta"], /--variance .*--sampler ddpm/],
    ];
    for (const [args, re] of badFlags) {
      const bad = await run([...args, "--out", `${dir}/bad`], "scripts/sample.ts");
      assert.equal(bad.code, 1);
      assert.equal(bad.stderr.length, 1, bad.stderr.join(" | "));
      assert.match(bad.stderr[0], re);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

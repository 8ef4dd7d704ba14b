/**
 * The conditioning scripts from the command line on tiny models: train_mnist.ts --conditional,
 * sample.ts --class (classifier-free and classifier guidance), train_classifier.ts,
 * guidance_sweep.ts and explain.ts write what they say; bad flags are one error line.
 */

import assert from "node:assert/strict";
import { loadModel, readModelMetadata } from "../../mod.ts";
import { loadMnist } from "../../data.ts";
import { saveClassifier, trainClassifier } from "../../metrics.ts";
import { runScript } from "../helpers/run_deno.ts";

const run = runScript;

const TINY = [
  ...["--steps", "2", "--batch", "4", "--base", "8", "--mults", "1,2", "--backend", "wasm"],
  ...["--sample-every", "0", "--sample-count", "10", "--sample-steps", "2"],
];

async function pngSize(path: string): Promise<[number, number]> {
  const b = await Deno.readFile(path), v = new DataView(b.buffer);
  assert.deepEqual([...b.subarray(1, 4)], [80, 78, 71], path);
  return [v.getUint32(16), v.getUint32(20)];
}

Deno.test("conditional training, guided sampling, classifier guidance, the sweep and explanations", async () => {
  const dir = await Deno.makeTempDir({ prefix: "guidance_cli_" });
  try {
    // The default run is class-conditional.
    const trained = await run("train_mnist.ts", [...TINY, "--out", `${dir}/cond`]);
    assert.equal(trained.code, 0, trained.stderr.join("\n"));
    assert.match(trained.stdout, /class-conditional, labels dropped 0.1/);
    const ckpt = `${dir}/cond/checkpoint.safetensors`;
    const model = await loadModel(ckpt, "reference");
    assert.equal(model.config.network.classes, 10);
    assert.equal(JSON.parse((await readModelMetadata(ckpt)).training).conditional, "yes");
    model.backend.dispose();

    // --class all: one row a digit (2 columns of 28x28 at scale 2 with 2-pixel gaps).
    const grid = await run("sample.ts", [
      ckpt,
      ...["--class", "all", "--count", "20", "--guidance", "2", "--steps", "2"],
      ...["--trajectory", "0", "--forward", "0", "--backend", "wasm", "--out", `${dir}/s`],
    ]);
    assert.equal(grid.code, 0, grid.stderr.join("\n"));
    assert.deepEqual(await pngSize(`${dir}/s/samples.png`), [2 * 56 + 3 * 2, 10 * 56 + 11 * 2]);

    // An unconditional model and a noise-conditional classifier for it.
    const plain = await run("train_mnist.ts", [
      ...TINY,
      "--unconditional",
      "--out",
      `${dir}/plain`,
    ]);
    assert.equal(plain.code, 0, plain.stderr.join("\n"));
    const plainCkpt = `${dir}/plain/checkpoint.safetensors`;
    const plainModel = await loadModel(plainCkpt, "reference");
    assert.equal(plainModel.config.network.classes, undefined);
    plainModel.backend.dispose();
    const noisy = await run("train_classifier.ts", [
      ...["--model", plainCkpt, "--steps", "3", "--batch", "8", "--backend", "wasm"],
      ...["--out", `${dir}/noisy`],
    ]);
    assert.equal(noisy.code, 0, noisy.stderr.join("\n"));
    assert.match(noisy.stdout, /test accuracy t=1: [\d.]+%, t=250/);
    const guided = await run("sample.ts", [
      plainCkpt,
      ...["--class", "7", "--guide", `${dir}/noisy/classifier.safetensors`],
      ...["--guide-scale", "2", "--count", "4", "--steps", "2", "--trajectory", "0"],
      ...["--forward", "0", "--backend", "wasm", "--out", `${dir}/g`],
    ]);
    assert.equal(guided.code, 0, guided.stderr.join("\n"));
    await pngSize(`${dir}/g/samples.png`);

    // The judge: a clean classifier, briefly trained.
    const train = await loadMnist({ split: "train" });
    const judge = await trainClassifier({
      images: train.images.subarray(0, 512 * 784),
      labels: train.labels.subarray(0, 512),
      shape: [512, 1, 28, 28],
      steps: 5,
      backend: "wasm",
    });
    await saveClassifier(judge, `${dir}/judge.safetensors`);
    judge.backend.dispose();
    const judgeFlag = ["--classifier", `${dir}/judge.safetensors`, "--backend", "wasm"];

    const sweep = await run("guidance_sweep.ts", [
      ckpt,
      ...["--scales", "0,2", "--count", "20", "--steps", "2", "--out", `${dir}/sweep`],
      ...judgeFlag,
    ]);
    assert.equal(sweep.code, 0, sweep.stderr.join("\n"));
    const report = JSON.parse(await Deno.readTextFile(`${dir}/sweep/guidance.json`));
    assert.deepEqual(report.rows.map((r: { scale: number }) => r.scale), [0, 2]);
    for (const r of report.rows) {
      assert.ok(r.correct >= 0 && r.correct <= 100 && r.frechet > 0, JSON.stringify(r));
    }
    for (
      const f of ["correct.png", "confident.png", "frechet.png", "tradeoff.png", "samples_w2.png"]
    ) {
      await pngSize(`${dir}/sweep/${f}`);
    }
    const redrawn = await run("guidance_sweep.ts", [
      ...["--from", `${dir}/sweep/guidance.json`, "--out", `${dir}/sweep3`],
    ]);
    assert.equal(redrawn.code, 0, redrawn.stderr.join("\n"));
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${dir}/sweep3/guidance.json`)).rows,
      report.rows,
    );
    await pngSize(`${dir}/sweep3/tradeoff.png`);
    // eval_mnist on a conditional model draws each digit in turn, unguided, by default.
    const evaluated = await run("eval_mnist.ts", [
      ckpt,
      ...["--count", "20", "--real", "20", "--steps", "2", ...judgeFlag],
    ]);
    assert.equal(evaluated.code, 0, evaluated.stderr.join("\n"));
    assert.match(evaluated.stdout, /samples \(20, ddpm 2, digits in turn, w 1\)/);
    // compare_samplers.ts draws a conditional model's classes in turn, unguided.
    const compared = await run("compare_samplers.ts", [
      ckpt,
      ...["--samplers", "ddim", "--evaluations", "2", "--count", "20", "--no-reference"],
      ...["--out", `${dir}/cmp`, ...judgeFlag],
    ]);
    assert.equal(compared.code, 0, compared.stderr.join("\n"));
    assert.match(compared.stdout, /\| ddim \| 2 \| 2 \|/);
    const bySweep = await run("guidance_sweep.ts", [
      plainCkpt,
      ...["--guide", `${dir}/noisy/classifier.safetensors`, "--scales", "1", "--count", "10"],
      ...["--steps", "2", "--out", `${dir}/sweep2`, ...judgeFlag],
    ]);
    assert.equal(bySweep.code, 0, bySweep.stderr.join("\n"));
    assert.match(bySweep.stdout, /classifier guidance by .*\| classifier scale s \|/s);

    const explained = await run("explain.ts", [
      ckpt,
      ...["--digit", "4", "--to", "9", "--count", "2", "--steps", "4", "--out", `${dir}/ex`],
      ...judgeFlag,
    ]);
    assert.equal(explained.code, 0, explained.stderr.join("\n"));
    assert.match(explained.stdout, /\/2 counterfactuals read as 9/);
    // One row: input | counterfactual | difference, 28x28 at scale 4.
    assert.deepEqual(await pngSize(`${dir}/ex/explain_0.png`), [3 * 112 + 4 * 2, 112 + 2 * 2]);
    await pngSize(`${dir}/ex/explain.png`);

    // Bad flags: one line each, naming the problem.
    const bad: [string, string[], RegExp][] = [
      ["sample.ts", [plainCkpt, "--class", "3"], /the model is unconditional/],
      ["sample.ts", [ckpt, "--guidance", "2"], /--guidance needs --class/],
      ["sample.ts", [ckpt, "--class", "10"], /--class must be an integer in \[0, 9\]/],
      ["sample.ts", [ckpt, "--class", "all", "--count", "15"], /multiple of 10/],
      [
        "sample.ts",
        [ckpt, "--class", "1", "--guide", `${dir}/judge.safetensors`],
        /reads clean images/,
      ],
      ["explain.ts", [plainCkpt, ...judgeFlag], /not a class-conditional model/],
      ["explain.ts", [ckpt, "--digit", "3", "--to", "3"], /--to must differ/],
      ["train_classifier.ts", [], /--model is required/],
      ["train_mnist.ts", ["--conditional", "--unconditional"], /not both/],
      ["sample.ts", [ckpt, "--class", "1", "--guide-scale", "2"], /--guide-scale needs --guide/],
      ["guidance_sweep.ts", [ckpt, "--count", "15"], /multiple of 10/],
      [
        "guidance_sweep.ts",
        [plainCkpt, "--guide", `${dir}/judge.safetensors`, ...judgeFlag],
        /reads clean images/,
      ],
      [
        "sample.ts",
        [ckpt, "--class", "1", "--sampler", "ddim", "--variance", "beta"],
        /--variance/,
      ],
    ];
    for (const [script, args, re] of bad) {
      const r = await run(script, [...args, "--out", `${dir}/bad`]);
      assert.equal(r.code, 1, `${script} ${args.join(" ")}`);
      assert.equal(r.stderr.length, 1, r.stderr.join(" | "));
      assert.match(r.stderr[0], re);
    }
    await assert.rejects(() => Deno.stat(`${dir}/bad`), Deno.errors.NotFound, "no output folder");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The scripts under faults and careless input: numbers are decimal, a file in the way of --out is
 * named, a copy resumes beside itself (never where its metadata points), a diverging run keeps its
 * last good checkpoint, Ctrl-C keeps the work done and exits 130, and the flag helpers' edges.
 */

import assert from "node:assert/strict";
import { loadModel, readModelMetadata } from "../../mod.ts";
import { numberFlag, prepareOutDir } from "../../scripts/cli.ts";
import { runScript } from "../helpers/run_deno.ts";

const root = new URL("../..", import.meta.url).pathname;

function spawn(script: string, args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `scripts/${script}`, ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

const run = runScript;

const TINY = [
  ...["--batch", "4", "--base", "8", "--mults", "1,2", "--backend", "wasm", "--sample-every", "0"],
  ...["--sample-count", "1", "--sample-steps", "1"],
];

Deno.test("flags: numbers are decimal; a file in the way of --out is named", async () => {
  assert.equal(numberFlag("steps", "1e3"), 1000);
  assert.equal(numberFlag("lr", "-.5"), -0.5);
  for (const bad of ["0x10", "0b11", "", " ", "1e", "Infinity", "12abc"]) {
    assert.throws(() => numberFlag("steps", bad), /--steps needs a decimal number/, bad);
  }
  const dir = await Deno.makeTempDir({ prefix: "robust_" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    await assert.rejects(
      () => prepareOutDir(`${dir}/file`),
      /--out .*file is a file, not a folder/,
    );
    await assert.rejects(() => prepareOutDir(`${dir}/file/sub`), /--out .*file\/sub/);
    await prepareOutDir(`${dir}/a/b`);
    assert.deepEqual([...Deno.readDirSync(`${dir}/a/b`)], [], "the probe is removed");
    const r = await run("spiral.ts", ["--out", `${dir}/file`]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.stderr.length, 1, r.stderr.join(" | "));
    assert.match(r.stderr[0], /is a file, not a folder/);
    const hex = await run("train_mnist.ts", ["--steps", "0x10", "--out", `${dir}/hex`]);
    assert.equal(hex.code, 1);
    assert.match(hex.stderr[0], /--steps needs a decimal number, got "0x10"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train_mnist: a copy resumes beside itself, not in the folder its metadata names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_resume_" });
  try {
    const first = await run("train_mnist.ts", [...TINY, "--steps", "2", "--out", `${dir}/a`]);
    assert.equal(first.code, 0, first.stderr.join("\n"));
    const original = await Deno.readFile(`${dir}/a/checkpoint.safetensors`);
    assert.equal(
      JSON.parse((await readModelMetadata(`${dir}/a/checkpoint.safetensors`)).training).out,
      `${dir}/a`,
    );
    await Deno.mkdir(`${dir}/b`);
    await Deno.writeFile(`${dir}/b/checkpoint.safetensors`, original);
    const again = await run("train_mnist.ts", [
      ...["--resume", `${dir}/b/checkpoint.safetensors`, "--steps", "4"],
    ]);
    assert.equal(again.code, 0, again.stderr.join("\n"));
    assert.deepEqual(await Deno.readFile(`${dir}/a/checkpoint.safetensors`), original);
    assert.equal((await loadModel(`${dir}/b/checkpoint.safetensors`, "reference")).stepsTrained, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train_mnist: a diverging run stops with one line and keeps its last good checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_nan_" });
  try {
    const r = await run("train_mnist.ts", [
      ...TINY,
      ...["--steps", "40", "--lr", "1e6", "--checkpoint-every", "1", "--sample-every", "1"],
      ...["--out", dir],
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr.at(-1)!, /^error: training diverged: .*(step|after step) \d+/);
    const ckpt = `${dir}/checkpoint.safetensors`;
    const exists = await Deno.stat(ckpt).then(() => true, () => false);
    if (exists) {
      const model = await loadModel(ckpt, "reference");
      for (const [, w] of await model.weights("raw")) assert.ok(w.every(Number.isFinite));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Ctrl-C keeps the work done and exits 130: spiral.ts and train_mnist.ts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_sigint_" });
  try {
    const cases: [string, string[], string][] = [
      [
        "spiral.ts",
        ["--steps", "400000", "--out", `${dir}/spiral`],
        `${dir}/spiral/model.safetensors`,
      ],
      [
        "train_mnist.ts",
        [...TINY, "--steps", "100000", "--out", `${dir}/mnist`],
        `${dir}/mnist/checkpoint.safetensors`,
      ],
    ];
    for (const [script, args, kept] of cases) {
      const child = spawn(script, args).spawn();
      // Once training has started (its first checkpoint or a few seconds in), interrupt it.
      await new Promise((r) => setTimeout(r, 6000));
      child.kill("SIGINT");
      const out = await child.output();
      assert.equal(out.code, 130, `${script}: ${new TextDecoder().decode(out.stderr)}`);
      assert.match(new TextDecoder().decode(out.stdout), /stopped by Ctrl-C/);
      const model = await loadModel(kept, "reference");
      assert.ok(model.stepsTrained > 0, `${script}: ${model.stepsTrained} steps kept`);
    }
    assert.ok(!(await Deno.stat(`${dir}/spiral/samples.csv`).then(() => true, () => false)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spiral.ts: a learning rate that blows the network up stops with one line, writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_spiral_lr_" });
  try {
    // At lr 50 the loss spikes past 1e4 within the first steps, then the dead network's loss
    // looks tame (about 1) again: the spike between two progress reports must still be seen.
    const r = await run("spiral.ts", ["--lr", "50", "--steps", "2000", "--out", dir]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.length, 1, r.stderr.join("\n"));
    assert.match(
      r.stderr[0],
      /^error: training diverged: the loss (reached|is) \S+ (between steps \d+ and \d+|at step \d+); lower the learning rate/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no samples.csv, model or picture");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

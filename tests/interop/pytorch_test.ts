/**
 * interop/pytorch: our checkpoints in PyTorch and PyTorch's in ours, with the same outputs.
 *
 * (a) Tiny MLPs and UNets (two with learnSigma's doubled output) trained here for a few steps are
 * saved, loaded by interop/pytorch in a Python child process, and evaluated on inputs this test
 * writes; PyTorch's outputs must match our network's within 1e-4 of the output's scale. (b) The same Python process takes one Adam step on
 * each model and writes our format (raw, EMA and moments), and `torchrun --nproc_per_node=2` runs
 * two DDP steps of interop/pytorch/train_ddp.py on a tiny IDX folder; loadModel reads what they
 * wrote and gives PyTorch's outputs.
 *
 * Skipped, saying why, where `/usr/bin/python3 -c "import torch"` fails.
 */

import assert from "node:assert/strict";
import { type DiffusionModel, loadModel, saveModel, train } from "../../mod.ts";
import { noGrad, tensor } from "../../engine.ts";
import { Random } from "../../src/random.ts";

const PYTHON = "/usr/bin/python3";
const ROOT = new URL("../../", import.meta.url).pathname;
const LIB = `${ROOT}interop/pytorch`;

/** Why the tests cannot run here, or null when PyTorch is there. */
function missingTorch(): string | null {
  try {
    const r = new Deno.Command(PYTHON, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "piped",
    })
      .outputSync();
    if (r.success) return null;
    const last = new TextDecoder().decode(r.stderr).trim().split("\n").at(-1);
    return `${PYTHON} -c "import torch" failed: ${last}`;
  } catch (e) {
    return `${PYTHON} cannot run: ${(e as Error).message}`;
  }
}

const skip = missingTorch();
if (skip) console.log(`tests/interop/pytorch_test.ts skipped: ${skip}`);

/** Evaluates (and for `write`, trains one Adam step, writes our format and reloads) in PyTorch. */
const SNIPPET = `
import json, sys, torch
job = json.load(open(sys.argv[1]))
sys.path.insert(0, job["lib"])
from checkpoint import load_checkpoint, save_checkpoint
torch.manual_seed(0)
torch.set_num_threads(1)

def inputs(e):
    x = torch.frombuffer(bytearray(open(e["x"], "rb").read()), dtype=torch.float32).reshape(e["shape"])
    y = None if e["labels"] is None else torch.tensor(e["labels"], dtype=torch.long)
    return x, torch.tensor(e["t"], dtype=torch.float32), y

for e in job["evals"]:
    ck = load_checkpoint(e["ckpt"])
    x, t, y = inputs(e)
    if e.get("write"):
        net = ck.network("raw").train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        net(x, t, y).square().mean().backward()
        opt.step()
        params = dict(net.named_parameters())
        save_checkpoint(
            e["write"], ck.config, raw=net.state_dict(), ema=ck.raw, steps_trained=ck.steps_trained + 1,
            m={n: opt.state[p]["exp_avg"] for n, p in params.items()},
            v={n: opt.state[p]["exp_avg_sq"] for n, p in params.items()},
            optimizer_step=1, extra={"note": "one PyTorch Adam step"})
        ck = load_checkpoint(e["write"])
    with torch.no_grad():
        out = ck.network(e["weights"])(x, t, y)
    open(e["out"], "wb").write(out.contiguous().numpy().astype("<f4").tobytes())
`;

/** One evaluation: a checkpoint, its weights, the inputs, where PyTorch writes its output. */
interface Eval {
  ckpt: string;
  weights: "raw" | "ema";
  x: string;
  shape: number[];
  t: number[];
  labels: number[] | null;
  out: string;
  /** PyTorch -> ours: write a checkpoint here after one Adam step, and evaluate it. */
  write?: string;
}

async function python(args: string[], cwd = ROOT): Promise<string> {
  const r = await new Deno.Command(PYTHON, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { PYTHONDONTWRITEBYTECODE: "1" },
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `${args.join(" ")} failed:\n${text}`);
  return text;
}

async function runEvals(dir: string, evals: Eval[]): Promise<void> {
  await Deno.writeTextFile(`${dir}/job.json`, JSON.stringify({ lib: LIB, evals }));
  await Deno.writeTextFile(`${dir}/job.py`, SNIPPET);
  await python([`${dir}/job.py`, `${dir}/job.json`]);
}

/** Our network's output for an evaluation's inputs (reference backend). */
async function ours(model: DiffusionModel, e: Eval): Promise<Float32Array | Float64Array> {
  const be = model.backend;
  const bytes = await Deno.readFile(e.x);
  const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const net = model.network(e.weights);
  const out = noGrad(() =>
    net.forward(
      tensor(be, x, e.shape),
      tensor(be, e.t, [e.t.length]),
      undefined,
      e.labels ? tensor(be, e.labels, [e.labels.length]) : undefined,
    )
  );
  return await be.read(out.storage);
}

async function theirs(e: Eval): Promise<Float32Array> {
  const bytes = await Deno.readFile(e.out);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** max |a - b| and that over max |b|. */
function difference(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number } {
  assert.equal(a.length, b.length);
  let abs = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, rel: abs / Math.max(scale, 1e-6) };
}

async function compare(label: string, model: DiffusionModel, e: Eval): Promise<void> {
  const a = await ours(model, e), b = await theirs(e);
  assert.ok(b.every(Number.isFinite), `${label}: PyTorch's output is finite`);
  const d = difference(a, b);
  console.log(
    `  ${label} (${e.weights}): max |ours - PyTorch| ${d.abs.toExponential(2)}, relative ${
      d.rel.toExponential(2)
    }`,
  );
  assert.ok(d.rel <= 1e-4, `${label}: relative difference ${d.rel}`);
}

/** A tiny model, trained a few steps on seeded data (reference backend, with EMA). */
interface Case {
  name: string;
  model: DiffusionModel;
  shape: number[];
  classes: number;
  T: number;
}

async function tinyCases(): Promise<Case[]> {
  const r = new Random(11);
  const common = { steps: 3, batchSize: 4, lr: 1e-2, emaDecay: 0.9, backend: "reference" as const };
  const points = Float32Array.from(r.normals(64 * 2));
  const images = Float32Array.from(r.uniforms(16 * 64), (u) => 2 * u - 1);
  const labels = Int32Array.from({ length: 64 }, (_, i) => i % 3);
  // learnSigma doubles the last layer (eps, then v): one MLP and one UNet (with patches) have it.
  const mlp = (timeInput: "scalar" | "sinusoidal", cond: boolean, learnSigma = false) =>
    train({
      ...common,
      learnSigma,
      data: { values: points, shape: [64, 2], labels: cond ? labels : undefined },
      network: { kind: "mlp", hidden: 16, layers: 2, timeInput, embeddingDim: 8 },
      schedule: { kind: "linear", T: 50, betaStart: 1e-4, betaEnd: 0.2 },
    });
  const unet = (options: Record<string, unknown>, cond: boolean, learnSigma = false) =>
    train({
      ...common,
      learnSigma,
      data: {
        values: images,
        shape: [16, 1, 8, 8],
        labels: cond ? labels.slice(0, 16) : undefined,
      },
      network: { kind: "unet", base: 8, mults: [1, 2], ...options },
      schedule: { kind: "cosine", T: 100 },
    });
  return [
    {
      name: "mlp scalar t, learnSigma",
      model: await mlp("scalar", false, true),
      shape: [5, 2],
      classes: 0,
      T: 50,
    },
    {
      name: "mlp sinusoidal t, conditional",
      model: await mlp("sinusoidal", true),
      shape: [5, 2],
      classes: 3,
      T: 50,
    },
    {
      name: "unet, conditional",
      model: await unet({}, true),
      shape: [5, 1, 8, 8],
      classes: 3,
      T: 100,
    },
    {
      name: "unet patch 2, 2 blocks, attention at 4 and 2, dropout, learnSigma",
      model: await unet(
        { patch: 2, blocksPerLevel: 2, attentionAt: [4, 2], dropout: 0.1 },
        false,
        true,
      ),
      shape: [5, 1, 8, 8],
      classes: 0,
      T: 100,
    },
  ];
}

/** Writes seeded inputs for `c` and returns its evaluation (outputs and checkpoints in `dir`). */
async function evalOf(dir: string, c: Case, i: number, weights: "raw" | "ema"): Promise<Eval> {
  const n = c.shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from(new Random(100 + i).normals(n));
  await Deno.writeFile(`${dir}/x${i}.f32`, new Uint8Array(x.buffer));
  return {
    ckpt: `${dir}/m${i}.safetensors`,
    weights,
    x: `${dir}/x${i}.f32`,
    shape: c.shape,
    t: [1, 2.5, Math.floor(c.T / 2), c.T - 1, c.T],
    // Each class, and the null class (no class) last.
    labels: c.classes ? [0, 1, 2, c.classes, 1] : null,
    out: `${dir}/out_${i}_${weights}.f32`,
  };
}

Deno.test({
  name:
    "interop/pytorch: our checkpoints give our outputs in PyTorch, and PyTorch's give theirs in ours",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pytorch_interop_" });
    try {
      const cases = await tinyCases();
      const evals: Eval[] = [];
      for (const [i, c] of cases.entries()) {
        await saveModel(c.model, `${dir}/m${i}.safetensors`);
        evals.push(await evalOf(dir, c, i, "ema"), await evalOf(dir, c, i, "raw"));
      }
      // PyTorch -> ours: one Adam step of each, written in our format.
      const back = await Promise.all(cases.map(async (c, i) => {
        const e = await evalOf(dir, c, i, "raw");
        return { ...e, out: `${dir}/back_${i}.f32`, write: `${dir}/torch_${i}.safetensors` };
      }));
      await runEvals(dir, [...evals, ...back]);
      console.log("our checkpoints -> PyTorch:");
      for (const [k, e] of evals.entries()) {
        await compare(cases[k >> 1].name, cases[k >> 1].model, e);
      }
      console.log("PyTorch (one Adam step) -> ours:");
      for (const [i, e] of back.entries()) {
        const model = await loadModel(e.write!, "reference");
        assert.equal(model.stepsTrained, cases[i].model.stepsTrained + 1);
        assert.equal(model.optimizer?.step, 1);
        assert.deepEqual(model.config, cases[i].model.config);
        await compare(cases[i].name, model, e);
        // The EMA written is the weights we saved: our raw output before the step.
        const before = await ours(cases[i].model, { ...e, weights: "raw" });
        assert.deepEqual(await ours(model, { ...e, weights: "ema" }), before);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Writes an IDX file of unsigned bytes. */
async function writeIdx(path: string, dims: number[], data: Uint8Array): Promise<void> {
  const head = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  head.setUint8(2, 0x08);
  head.setUint8(3, dims.length);
  dims.forEach((d, i) => head.setUint32(4 + 4 * i, d));
  const bytes = new Uint8Array(head.byteLength + data.length);
  bytes.set(new Uint8Array(head.buffer));
  bytes.set(data, head.byteLength);
  await Deno.writeFile(path, bytes);
}

Deno.test({
  name: "interop/pytorch: two DDP steps under torchrun write a checkpoint loadModel reads",
  ignore: skip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pytorch_ddp_" });
    try {
      const r = new Random(5);
      const pixels = Uint8Array.from(r.uniforms(32 * 64), (u) => Math.floor(256 * u));
      const labels = Uint8Array.from({ length: 32 }, (_, i) => i % 3);
      await writeIdx(`${dir}/train-images-idx3-ubyte`, [32, 8, 8], pixels);
      await writeIdx(`${dir}/train-labels-idx1-ubyte`, [32], labels);
      const model = await train({
        data: {
          values: Float32Array.from(pixels, (p) => p / 127.5 - 1),
          shape: [32, 1, 8, 8],
          labels: Int32Array.from(labels),
        },
        network: { kind: "unet", base: 8, mults: [1, 2] },
        schedule: { kind: "cosine", T: 100 },
        steps: 2,
        batchSize: 4,
        emaDecay: 0.99,
        backend: "reference",
      });
      await saveModel(model, `${dir}/in.safetensors`);
      const log = await python([
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "--monitor_interval=0.2",
        // Debian's torch 1.13 on Python 3.11 cannot parse the default "--redirects 0 --tee 0".
        ...["--redirects", "1", "--tee", "1", "--log_dir", `${dir}/logs`],
        `${LIB}/train_ddp.py`,
        ...["--checkpoint", `${dir}/in.safetensors`, "--out", `${dir}/out.safetensors`],
        ...["--steps", "2", "--batch", "2", "--lr", "1e-3", "--data", dir],
      ]);
      assert.match(log, /wrote .*out\.safetensors at step 4/);
      const trained = await loadModel(`${dir}/out.safetensors`, "reference");
      assert.equal(trained.stepsTrained, 4);
      assert.equal(trained.optimizer?.step, 4);
      assert.ok(trained.ema);
      const e = await evalOf(
        dir,
        { name: "ddp", model, shape: [5, 1, 8, 8], classes: 3, T: 100 },
        0,
        "ema",
      );
      await runEvals(dir, [{ ...e, ckpt: `${dir}/out.safetensors` }]);
      console.log("PyTorch (torchrun, 2 processes, 2 DDP steps) -> ours:");
      await compare("unet, conditional", trained, e);
      // The weights moved.
      const before = await ours(model, e), after = await ours(trained, e);
      assert.ok(difference(before, after).abs > 1e-6);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

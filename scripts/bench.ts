/**
 * Benchmark (not a test): in one invocation, this machine's WebAssembly SIMD multiply-add ceiling,
 * the GEMM and convolution kernels' GFLOP/s at the models' shapes on one and on all cores (each the
 * best of at least six runs and more until 1 s has passed), the spiral MLP's training and sampling
 * steps (the sampling step also beside the time its multiply-adds take at the ceiling), and the
 * MNIST UNet's training step (batch 128) and denoising forward (batch 64), each beside the PyTorch
 * twin (`../shared/bench/torch_twin.py`) measured in the same run when it can run, with the
 * ratios; then every sampler on the UNet at batch 64 (ms per network evaluation, the share beyond
 * the network's forward pass, images per second at 20 evaluations), 1,000 digits at 20
 * evaluations beside PyTorch's `no_grad` forwards, and classifier-free guidance's step beside an
 * unguided one.
 *
 *   deno task bench [--quick] [--threads N] [--no-unet] [--rounds N] [--backend wasm|webgpu]
 *                   [--twin PATH]
 *
 * `--threads N`: the threaded column (default all cores). `--quick`: fewer repetitions and no
 * UNet. `--rounds N`: rounds of the CPU UNet comparison, ours and the twin's in turn (default 3);
 * besides the best of each, the ratio of each round and their median. `--backend webgpu`: the
 * UNet rows on the WebGPU backend (a hardware adapter; add `--allow-software` to time llvmpipe)
 * beside `torch_twin.py bench unet --device cuda`; with `--profile`, then the GPU time per kernel
 * of a training step and a sampling step.
 * `--twin PATH`: where torch_twin.py is (default ../shared/bench/torch_twin.py). `--python PATH`:
 * the interpreter that has PyTorch (default /usr/bin/python3, Debian's; a CUDA machine's may differ).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createWebGpuBackend } from "../gpu/mod.ts";
import {
  type Backend,
  createSampler,
  type DiffusionModel,
  type NetworkConfig,
  sample,
  SAMPLERS,
  train,
} from "../mod.ts";
import { Random, sampleToy } from "../data.ts";
import { conv2dGeometry, noGrad, tensor } from "../engine.ts";
import { openWasmBackend, type WasmBackend } from "../wasm/mod.ts";
import { ceiling, CONV_SHAPES, convGflops, fmt, gemmCases, gemmGflops } from "./bench_kernels.ts";

function parseFlags() {
  try {
    return parseArgs({
      args: Deno.args,
      strict: true,
      options: {
        quick: { type: "boolean", default: false },
        threads: { type: "string" },
        "no-unet": { type: "boolean", default: false },
        rounds: { type: "string", default: "3" },
        backend: { type: "string", default: "wasm" },
        "allow-software": { type: "boolean", default: false },
        profile: { type: "boolean", default: false },
        twin: { type: "string" },
        python: { type: "string", default: "/usr/bin/python3" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message} (see --help)`);
    Deno.exit(1);
  }
}
const flags = parseFlags();
if (flags.help) {
  console.log(
    "deno task bench [--quick] [--threads N] [--no-unet] [--rounds N] [--backend wasm|webgpu] " +
      "[--allow-software] [--profile] [--twin PATH] [--python PATH]",
  );
  Deno.exit(0);
}
if (flags.backend !== "wasm" && flags.backend !== "webgpu") {
  console.error(`error: --backend must be wasm or webgpu, got "${flags.backend}"`);
  Deno.exit(1);
}
const quick = flags.quick;
/** Rounds of the CPU UNet comparison (ours, then the twin), the best of each kept. */
const unetRounds = Number(flags.rounds);
if (!Number.isInteger(unetRounds) || unetRounds < 1) {
  console.error(`error: --rounds must be a positive integer, got "${flags.rounds}"`);
  Deno.exit(1);
}
const threads = flags.threads === undefined ? navigator.hardwareConcurrency : Number(flags.threads);
if (!Number.isInteger(threads) || threads < 1) {
  console.error(`error: --threads must be a positive integer, got "${flags.threads}"`);
  Deno.exit(1);
}
const twinPath = flags.twin ??
  new URL("../../shared/bench/torch_twin.py", import.meta.url).pathname;

// ---- the MLP ----------------------------------------------------------------------------------

const T = 200;

async function trainMs(
  be: WasmBackend,
): Promise<{ stepMs: number; sampleMs: number; sampleBestMs: number; sampleGflop: number }> {
  const { data } = sampleToy("spiral", 10_000, new Random(3));
  const run = async (steps: number) => {
    const t0 = performance.now();
    const model = await train({
      data: { values: data, shape: [10_000, 2] },
      steps,
      batchSize: 64,
      network: { hidden: 256 },
      schedule: { kind: "linear", T, betaStart: 1e-4, betaEnd: 0.02 },
      progressEvery: steps,
      backend: be,
    });
    return { ms: performance.now() - t0, model };
  };
  const few = quick ? 10 : 20, many = quick ? 60 : 320;
  await run(few);
  // The step: the difference of a long and a short run over their extra steps (the setup
  // cancels), the best of three such pairs (a slow phase of the machine can swallow one).
  const pairs = [];
  for (let r = 0; r < (quick ? 1 : 3); r++) pairs.push([await run(few), await run(many)] as const);
  const stepMs = Math.min(...pairs.map(([a, b]) => (b.ms - a.ms) / (many - few)));
  const { model } = pairs[pairs.length - 1][1];
  const steps = quick ? 2 : 4;
  await sample(model, { count: 10_000, steps: 1 });
  // The mean of `steps` steps (as the twin's figure, a mean over its runs), and for the ceiling
  // line the best of such runs within a budget (the machine's slow phases last seconds).
  let sampleMs = 0, sampleBestMs = Infinity, runs = 0;
  const start = performance.now();
  while (runs < 40 && (runs < (quick ? 1 : 4) || (!quick && performance.now() - start < 3000))) {
    const t0 = performance.now();
    await sample(model, { count: 10_000, steps });
    const ms = (performance.now() - t0) / steps;
    if (runs++ === 0) sampleMs = ms;
    sampleBestMs = Math.min(sampleBestMs, ms);
  }
  const sampleGflop = mlpForwardGflop(model.config.network, 10_000);
  return { stepMs, sampleMs, sampleBestMs, sampleGflop };
}

/** GFLOP of one forward pass of an MLP over `rows` rows: 2 per multiply-add of its weights. */
function mlpForwardGflop(network: NetworkConfig, rows: number): number {
  if (network.kind !== "mlp") throw new Error(`the bench's MLP is an MLP, got ${network.kind}`);
  const width = network.dim + 1, { hidden, layers, dim } = network;
  if (network.timeInput !== "scalar" || network.classes || network.learnSigma) {
    throw new Error("the bench's MLP has a scalar time input and no classes or learned variances");
  }
  const macs = width * hidden + (layers - 1) * hidden * hidden + hidden * dim;
  return (2 * rows * macs) / 1e9;
}

// ---- the PyTorch twin -------------------------------------------------------------------------

interface Twin {
  stepMs: number;
  forwardMs: number;
}

async function torchTwinAt(
  threadCount: number,
  kind: "mlp" | "unet",
  device: "cpu" | "cuda" = "cpu",
): Promise<Twin | string> {
  try {
    await Deno.stat(twinPath);
  } catch {
    return `no PyTorch twin at ${twinPath} (pass --twin PATH)`;
  }
  let out;
  try {
    out = await new Deno.Command(flags.python, {
      args: [
        twinPath,
        "bench",
        kind,
        "--threads",
        String(threadCount),
        "--T",
        String(T),
        "--device",
        device,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    return `could not run ${flags.python} (${(e as Error).message}; pass --python PATH)`;
  }
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    return `the twin failed: ${err} (install: apt-get update && apt-get install -y python3-torch libopenblas0-pthread)`;
  }
  const step = /train step: ([\d.]+) ms/.exec(text),
    fwd = /denoising forward.*: ([\d.]+) ms/
      .exec(text);
  if (!step || !fwd) return `unexpected twin output: ${text.trim()}`;
  return { stepMs: Number(step[1]), forwardMs: Number(fwd[1]) };
}

/** Figure by figure, the faster of two measurements. */
function bestOf(a: Twin, b: Twin): Twin {
  return { stepMs: Math.min(a.stepMs, b.stepMs), forwardMs: Math.min(a.forwardMs, b.forwardMs) };
}

/** The PyTorch twin's CPU figures: the faster of one and two threads, figure by figure. */
async function torchTwinCpu(kind: "mlp" | "unet"): Promise<Twin | string> {
  const a = await torchTwinAt(1, kind);
  if (typeof a === "string") return a;
  const b = await torchTwinAt(2, kind);
  if (typeof b === "string") return a;
  return bestOf(a, b);
}

const ratio = (theirs: number, ours: number) => `${(theirs / ours).toFixed(2)}x`;

// ---- the MNIST UNet -----------------------------------------------------------------------------

/** Trains the default UNet for `steps` steps of batch 128 on random images; returns ms and model. */
async function unetRun(be: Backend, steps: number) {
  const rng = new Random(5);
  const images = new Float32Array(256 * 28 * 28).map(() => rng.uniform() * 2 - 1);
  const t0 = performance.now();
  const model = await train({
    data: { values: images, shape: [256, 1, 28, 28] },
    steps,
    batchSize: 128,
    network: { kind: "unet" },
    schedule: { kind: "linear", T, betaStart: 1e-4, betaEnd: 0.02 },
    progressEvery: steps,
    backend: be,
  });
  return { ms: performance.now() - t0, model };
}

/** One UNet training step (batch 128) and one denoising forward pass (batch 64), in ms. */
async function unetMs(be: Backend, few: number, many: number): Promise<Twin> {
  const run = (steps: number) => unetRun(be, steps);
  await run(1);
  const a = await run(few), b = await run(many);
  const stepMs = (b.ms - a.ms) / (many - few);
  await sample(b.model, { count: 64, steps: 1 });
  const t0 = performance.now();
  await sample(b.model, { count: 64, steps: many });
  return { stepMs, forwardMs: (performance.now() - t0) / many };
}

function unetReport(label: string, mine: Twin, theirs: Twin | string, twinLabel: string): void {
  console.log(
    `\nMNIST UNet (the twin's: 32/64/64 channels, 793,697 parameters, T = ${T}), ${label}, ms:\n` +
      `  ${"".padEnd(36)} ${"ours".padStart(8)}` +
      (typeof theirs === "string" ? "" : ` ${"PyTorch".padStart(8)}   ${"ratio".padStart(6)}`),
  );
  const line = (name: string, ours: number, torch: number | null) =>
    console.log(
      `  ${name.padEnd(36)} ${fmt(ours, 1)}` +
        (torch === null ? "" : ` ${fmt(torch, 1)}   ${ratio(torch, ours).padStart(6)}`),
    );
  const tw = typeof theirs === "string" ? null : theirs;
  line("train step, batch 128", mine.stepMs, tw?.stepMs ?? null);
  line("denoising forward, batch 64", mine.forwardMs, tw?.forwardMs ?? null);
  if (typeof theirs === "string") console.log(`  (PyTorch column skipped: ${theirs})`);
  else console.log(`  (PyTorch: ${twinLabel}; ratio = PyTorch time / ours, above 1 we are faster)`);
}

/**
 * Each sampler on the UNet at batch 64: milliseconds per network evaluation (a whole run of about
 * 20 evaluations, divided by its evaluations), the share of that beyond the network's forward pass
 * (the sampler's own work: the update, the estimates, the noise), and images per second at 20
 * evaluations. Returns the best images per second at 20 evaluations.
 */
async function samplerRows(model: DiffusionModel): Promise<number> {
  const be = model.backend, net = model.network("ema");
  const x = tensor(be, new Float32Array(64 * 28 * 28), [64, 1, 28, 28]);
  const t = tensor(be, new Float32Array(64).fill(100), [64]);
  const forward = () => {
    be.beginScope();
    noGrad(() => net.forward(x, t));
    be.flush();
    be.endScope();
  };
  forward();
  const reps = quick ? 3 : 8;
  let forwardMs = Infinity;
  for (let r = 0; r < 2; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) forward();
    await be.read(t.storage); // waits for a GPU backend's queue
    forwardMs = Math.min(forwardMs, (performance.now() - t0) / reps);
  }
  console.log(
    `
samplers on the UNet, batch 64 (network forward alone ${fmt(forwardMs, 1)} ms):
` +
      `  ${"".padEnd(18)} ${"evals".padStart(5)} ${"ms/eval".padStart(8)} ${"beyond".padStart(7)}` +
      ` ${"images/s at 20 evals".padStart(21)}`,
  );
  let fastest = 0;
  for (const kind of SAMPLERS) {
    let steps = 1;
    while (
      steps < model.schedule.T &&
      createSampler(kind, model.schedule, model.config.prediction, { steps: steps + 1 })
          .evaluations <= 20
    ) steps++;
    const o = { sampler: kind, steps, count: 64, clip: 1 } as const;
    const evals = createSampler(kind, model.schedule, model.config.prediction, o).evaluations;
    await sample(model, o);
    let ms = Infinity;
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      const t0 = performance.now();
      await sample(model, o);
      ms = Math.min(ms, (performance.now() - t0) / evals);
    }
    console.log(
      `  ${kind.padEnd(18)} ${String(evals).padStart(5)} ${fmt(ms, 1)}  ${
        fmt((100 * (ms - forwardMs)) / forwardMs, 1)
      }% ${fmt((64 * 1000) / (20 * ms), 1).padStart(21)}`,
    );
    fastest = Math.max(fastest, (64 * 1000) / (20 * ms));
  }
  for (const st of [x.storage, t.storage]) be.free(st);
  return fastest;
}

/**
 * 1,000 digits at 20 network evaluations: ours at the fastest sampler's pace, beside PyTorch's
 * denoising forward (batch 64, `torch.no_grad()`) run 20 times over 16 batches.
 */
function thousandDigits(imagesPerSecond: number, twin: Twin | string): void {
  const ours = 1000 / imagesPerSecond;
  const line = `  1,000 digits at 20 evaluations: ours ${ours.toFixed(1)} s`;
  if (typeof twin === "string") return console.log(line);
  const theirs = (20 * Math.ceil(1000 / 64) * twin.forwardMs) / 1000;
  console.log(
    `${line}, PyTorch ${theirs.toFixed(1)} s (20 x 16 of its no_grad forwards at batch 64; ` +
      `ratio ${ratio(theirs, ours)})`,
  );
}

/**
 * Classifier-free guidance on a class-conditional UNet at batch 64: a guided ancestral step is one
 * network call on the doubled batch (128), so it should cost the forward at batch 128, about twice
 * an unguided step, and nothing beyond.
 */
async function guidanceRows(be: Backend): Promise<void> {
  const rng = new Random(6);
  const images = new Float32Array(256 * 28 * 28).map(() => rng.uniform() * 2 - 1);
  const model = await train({
    data: {
      values: images,
      shape: [256, 1, 28, 28],
      labels: Int32Array.from({ length: 256 }, (_, i) => i % 10),
    },
    steps: 1,
    batchSize: 128,
    network: { kind: "unet" },
    schedule: { kind: "linear", T, betaStart: 1e-4, betaEnd: 0.02 },
    backend: be,
  });
  const classes = Array.from({ length: 64 }, (_, i) => i % 10), steps = quick ? 4 : 20;
  const time = async (o: Record<string, unknown>) => {
    await sample(model, { count: 64, steps: 2, ...o });
    let ms = Infinity;
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      const t0 = performance.now();
      await sample(model, { count: 64, steps, ...o });
      ms = Math.min(ms, (performance.now() - t0) / steps);
    }
    return ms;
  };
  const plain = await time({});
  const conditional = await time({ classes, guidanceScale: 1 });
  const guided = await time({ classes, guidanceScale: 3 });
  const doubled = await time({ count: 128 });
  console.log(
    `
classifier-free guidance, conditional UNet, batch 64, ms per ancestral step:
  unconditional ${fmt(plain, 1)}, conditional (w = 1) ${fmt(conditional, 1)}, guided (w = 3) ${
      fmt(guided, 1)
    }
  guided / unconditional ${fmt(guided / plain, 2)}x; an unguided step at batch 128 ${
      fmt(doubled, 1)
    } ms (guided / that ${fmt(guided / doubled, 2)}x: one call on the doubled batch)`,
  );
}

/** Prints the GPU time per kernel of a UNet training step and a sampling step (timestamps). */
async function gpuProfile(): Promise<void> {
  const be = await createWebGpuBackend({
    allowFallbackAdapter: flags["allow-software"],
    profile: true,
  });
  const steps = 4;
  const table = async (what: string, wallMs: number, per: number, dispatches: number) => {
    const rows = await be.profile(true);
    const total = rows.reduce((a, r) => a + r.ms, 0) / per;
    console.log(
      `\n${what}: GPU ${fmt(total, 2)} ms (sum of kernel times), wall ${
        fmt(wallMs / per, 2)
      } ms, ` +
        `${Math.round(dispatches / per)} dispatches (profiled: a pass per dispatch)`,
    );
    for (const r of rows.slice(0, 30)) {
      console.log(
        `  ${fmt(r.ms / per, 3)} ms ${fmt((100 * r.ms) / per / total, 1)}% ` +
          `${String(r.calls / per).padStart(5)}x  ${r.label}`,
      );
    }
  };
  const { model } = await unetRun(be, 2);
  await be.profile(true);
  let d0 = be.stats().dispatches;
  const { ms } = await unetRun(be, steps);
  await table("UNet train step, batch 128", ms, steps, be.stats().dispatches - d0);
  await sample(model, { count: 64, steps: 1 });
  await be.profile(true);
  d0 = be.stats().dispatches;
  const t0 = performance.now();
  await sample(model, { count: 64, steps: steps });
  const wall = performance.now() - t0;
  await table("UNet sampling step, batch 64", wall, steps, be.stats().dispatches - d0);
  be.dispose();
}

// ---- the report ------------------------------------------------------------------------------

if (flags.backend === "webgpu") {
  const be = await createWebGpuBackend({ allowFallbackAdapter: flags["allow-software"] });
  console.log(`webgpu backend on ${be.adapterInfo.description}; Deno ${Deno.version.deno}`);
  const mine = await unetMs(be, 10, quick ? 20 : 60);
  const fastest = await samplerRows((await unetRun(be, 1)).model);
  await guidanceRows(be);
  be.dispose();
  const theirs = await torchTwinAt(1, "unet", "cuda");
  unetReport("WebGPU", mine, theirs, "torch_twin.py bench unet --device cuda, eager fp32");
  thousandDigits(fastest, theirs);
  if (flags.profile) await gpuProfile();
  Deno.exit(0);
}

const one = openWasmBackend({ threads: 1 });
const all = openWasmBackend({ threads });
await all.ready();
const N = all.threads;
console.log(
  `wasm backend: ${one.relaxedSimd ? "relaxed" : "plain"} SIMD; ${navigator.hardwareConcurrency} ` +
    `cores; threaded column: ${N} threads; Deno ${Deno.version.deno}`,
);
console.log("(timings on a shared machine are noisy; each figure is the best of several runs)\n");

const peak = ceiling(one.relaxedSimd, quick);
console.log(`FMA ceiling, 12 independent f32x4 accumulators, one core: ${fmt(peak)} GFLOP/s`);
if (one.relaxedSimd) {
  console.log(
    `  (plain SIMD, multiply + add:                             ${
      fmt(ceiling(false, quick))
    } GFLOP/s)`,
  );
}

const header = (what: string) =>
  console.log(
    `\n${what}, GFLOP/s:\n` +
      `  ${"".padEnd(30)}  1 thread  % ceiling  ${
        String(N).padStart(2)
      } threads  % of ${N} x ceiling`,
  );
const gemmRow = (label: string, g1: number, gn: number) =>
  console.log(
    `  ${label.padEnd(30)} ${fmt(g1)} ${fmt((100 * g1) / peak, 0)}%   ${fmt(gn)} ${
      fmt((100 * gn) / (N * peak), 0)
    }%`,
  );

header("GEMM through backend.matmul (allocation + kernel)");
for (const c of [...gemmCases(64, "train"), ...gemmCases(10_000, "sample")]) {
  if (quick && c.m * c.n * c.k > 1e8) continue;
  gemmRow(c.label, ...gemmGflops(one, all, c, quick));
}

if (!quick) {
  header("UNet convolutions, batch 128 (forward / data gradient / filter gradient)");
  for (const [label, c, o, side, k, stride] of CONV_SHAPES) {
    const g = conv2dGeometry(128, c, side, side, o, k, stride, (k - 1) / 2);
    const [g1, gn] = convGflops(one, all, g, quick);
    ["fwd", "dX", "dW"].forEach((kind, i) => gemmRow(`${label} ${kind}`, g1[i], gn[i]));
  }
}

console.log(`\nspiral MLP (3 x ${256}, batch 64, T = ${T}), ms:`);
const mine1 = await trainMs(one);
const mineN = N > 1 ? await trainMs(all) : mine1;
const twin = await torchTwinCpu("mlp");
if (typeof twin === "string") console.log(`  (PyTorch column skipped: ${twin})`);
const row = (label: string, a: number, b: number, torch: number | null) =>
  console.log(
    `  ${label.padEnd(36)} ${fmt(a, 3)} ${fmt(b, 3)}` +
      (torch === null
        ? ""
        : ` ${fmt(torch, 3)}   ${ratio(torch, a).padStart(6)} ${ratio(torch, b).padStart(6)}`),
  );
console.log(
  `  ${"".padEnd(36)} ${"1 thread".padStart(8)} ${`${N} thr.`.padStart(8)}` +
    (typeof twin === "string"
      ? ""
      : ` ${"PyTorch".padStart(8)}   ${"ratio 1".padStart(6)} ${`ratio ${N}`.padStart(6)}`),
);
const tw = typeof twin === "string" ? null : twin;
row("train step", mine1.stepMs, mineN.stepMs, tw?.stepMs ?? null);
row("sampling step, 10,000 points", mine1.sampleMs, mineN.sampleMs, tw?.forwardMs ?? null);
{
  // The sampling step against the time its multiply-adds take at the FMA ceiling measured above.
  const g = mine1.sampleGflop, at1 = (g / peak) * 1e3, atN = at1 / N;
  row("the same, best of runs", mine1.sampleBestMs, mineN.sampleBestMs, null);
  row(`the same at the ceiling, ${g.toFixed(2)} GFLOP`, at1, atN, null);
  console.log(
    `  (best of runs / time at the ceiling: ${
      (mine1.sampleBestMs / at1).toFixed(2)
    }x on 1 thread, ` +
      `${(mineN.sampleBestMs / atN).toFixed(2)}x on ${N})`,
  );
}
if (tw) {
  const ours = quick
    ? "runs of 10 and 60 steps, the difference per step"
    : "runs of 20 and 320 steps, the difference per step, the best of three such pairs";
  console.log(
    "  (PyTorch: torch_twin.py bench mlp, the faster of --threads 1 and 2; its sampling figure is the network's forward\n" +
      `  pass alone; our train step: ${ours};\n` +
      "  ratio = PyTorch time / wasm time, above 1 the wasm backend is faster)",
  );
}

if (!quick && !flags["no-unet"]) {
  // Ours and the twin's in turn, `unetRounds` times, the best of each kept: the machine's speed
  // drifts by tens of percent within a minute, and a single pass of each could land on different
  // phases of it. The ratio of each round (taken close together in time) is printed too.
  const rounds: [Twin, Twin | string][] = [];
  for (let r = 0; r < unetRounds; r++) {
    rounds.push([await unetMs(all, 1, 3), await torchTwinCpu("unet")]);
  }
  const mine = rounds.map(([m]) => m).reduce(bestOf);
  const paired = rounds.filter((r): r is [Twin, Twin] => typeof r[1] !== "string");
  const theirs = paired.length ? paired.map(([, t]) => t).reduce(bestOf) : rounds[0][1];
  unetReport(
    `wasm, ${N} threads, best of ${unetRounds} rounds`,
    mine,
    theirs,
    `torch_twin.py bench unet, the faster of --threads 1 and 2, best of ${unetRounds} rounds taken ` +
      "in turn with ours",
  );
  if (paired.length === rounds.length && rounds.length > 1) {
    const perRound = (pick: (t: Twin) => number) => {
      const rs = paired.map(([m, t]) => pick(t) / pick(m));
      const sorted = [...rs].sort((a, b) => a - b), h = sorted.length >> 1;
      const median = sorted.length % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
      return `${rs.map((r) => `${r.toFixed(2)}x`).join(" ")} (median ${median.toFixed(2)}x)`;
    };
    console.log(`  ratio by round, train step:       ${perRound((t) => t.stepMs)}`);
    console.log(`  ratio by round, denoising forward: ${perRound((t) => t.forwardMs)}`);
  }
  thousandDigits(await samplerRows((await unetRun(all, 1)).model), theirs);
  await guidanceRows(all);
}
one.dispose();
all.dispose();

/**
 * Benchmark of the wasm backend (not a test): in one invocation, this machine's WebAssembly SIMD
 * multiply-add ceiling, the GEMM kernel's GFLOP/s at the MLP's shapes, and the spiral MLP's
 * training and sampling steps, each beside the PyTorch twin (`../shared/bench/torch_twin.py`,
 * one thread) measured in the same run when it can run, with the ratios.
 *
 *   deno task bench [--quick] [--threads N] [--unet]
 *
 * N: the threaded column, default all cores. `--unet` adds the MNIST UNet (training step at batch
 * 128, denoising forward at batch 64, on all threads) beside `torch_twin.py bench unet --threads N`
 * (about a minute more).
 *
 * @module
 */

import { spiral } from "../src/data/toy.ts";
import { Random } from "../src/random.ts";
import { sample } from "../src/sample.ts";
import { train } from "../src/train.ts";
import { WasmBackend } from "../wasm/backend.ts";
import { instantiate, kernelModule } from "../wasm/kernels.ts";

const quick = Deno.args.includes("--quick");
const unet = Deno.args.includes("--unet");
const threadsAt = Deno.args.indexOf("--threads");
const threads = threadsAt >= 0 ? Number(Deno.args[threadsAt + 1]) : navigator.hardwareConcurrency;

/** Best of `reps` timings of `fn` (after one warm-up), in ms. */
function best(fn: () => void, reps = 5): number {
  fn();
  let b = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}

function fmt(x: number, digits = 1): string {
  return x.toFixed(digits).padStart(8);
}

// ---- the ceiling ------------------------------------------------------------------------------

function ceiling(relaxed: boolean): number {
  const { module } = kernelModule(false, relaxed);
  const memory = new WebAssembly.Memory({ initial: 2 });
  const k = instantiate(module, memory);
  const p = k.heapBase() + 64 & ~63;
  const f = new Float32Array(memory.buffer, p, 64);
  for (let i = 0; i < 64; i++) f[i] = 0.5 + i * 1e-4;
  f.fill(0.999999, 0, 4);
  f.fill(1e-6, 4, 8);
  const n = quick ? 2e6 : 1e7;
  const ms = best(() => k.fmaCeiling(n, p), quick ? 2 : 5);
  // 12 accumulators x 4 lanes x 2 flops per multiply-add.
  return (n * 12 * 4 * 2) / (ms / 1e3) / 1e9;
}

// ---- GEMM -------------------------------------------------------------------------------------

interface GemmCase {
  label: string;
  m: number;
  k: number;
  n: number;
  tA: boolean;
  tB: boolean;
}

function gemmCases(batch: number, label: string): GemmCase[] {
  const h = 256;
  return [
    { label: `${label} fwd ${batch}x3 -> ${h}`, m: batch, k: 3, n: h, tA: false, tB: true },
    { label: `${label} fwd ${batch}x${h} -> ${h}`, m: batch, k: h, n: h, tA: false, tB: true },
    { label: `${label} dX  ${batch}x${h} <- ${h}`, m: batch, k: h, n: h, tA: false, tB: false },
    { label: `${label} dW  ${h}x${h} over ${batch}`, m: h, k: batch, n: h, tA: true, tB: false },
    { label: `${label} fwd ${batch}x${h} -> 2`, m: batch, k: h, n: 2, tA: false, tB: true },
  ];
}

function gemmGflops(be: WasmBackend, c: GemmCase): number {
  const r = new Random(1);
  const a = be.upload(r.uniforms(c.m * c.k)), b = be.upload(r.uniforms(c.k * c.n));
  const flops = 2 * c.m * c.k * c.n;
  const reps = Math.max(1, Math.min(2000, Math.round((quick ? 2e7 : 1e8) / flops)));
  const ms = best(() => {
    for (let i = 0; i < reps; i++) {
      be.beginScope();
      be.matmul(a, b, 1, c.m, c.k, c.n, c.tA, c.tB);
      be.endScope();
    }
  }, quick ? 2 : 4) / reps;
  be.free(a);
  be.free(b);
  return flops / (ms / 1e3) / 1e9;
}

// ---- the MLP ----------------------------------------------------------------------------------

const T = 200;

async function trainMs(be: WasmBackend): Promise<{ stepMs: number; sampleMs: number }> {
  const { data } = spiral(10_000, new Random(3));
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
  const a = await run(few), b = await run(many);
  const stepMs = (b.ms - a.ms) / (many - few);
  const steps = quick ? 2 : 4;
  await sample(b.model, { count: 10_000, steps: 1 });
  const t0 = performance.now();
  await sample(b.model, { count: 10_000, steps });
  const sampleMs = (performance.now() - t0) / steps;
  return { stepMs, sampleMs };
}

// ---- the PyTorch twin -------------------------------------------------------------------------

interface Twin {
  stepMs: number;
  forwardMs: number;
}

async function torchTwinAt(
  twin: string,
  threadCount: number,
  kind: "mlp" | "unet" = "mlp",
): Promise<Twin | string> {
  let out;
  try {
    out = await new Deno.Command("/usr/bin/python3", {
      args: [twin, "bench", kind, "--threads", String(threadCount), "--T", String(T)],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    return `could not run /usr/bin/python3 (${(e as Error).message})`;
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

/** The PyTorch twin's figures: the faster of one and two threads, figure by figure. */
async function torchTwin(): Promise<Twin | string> {
  const twin = new URL("../../shared/bench/torch_twin.py", import.meta.url).pathname;
  try {
    await Deno.stat(twin);
  } catch {
    return `no PyTorch twin at ${twin}`;
  }
  const a = await torchTwinAt(twin, 1);
  if (typeof a === "string") return a;
  const b = await torchTwinAt(twin, 2);
  if (typeof b === "string") return a;
  return { stepMs: Math.min(a.stepMs, b.stepMs), forwardMs: Math.min(a.forwardMs, b.forwardMs) };
}

// ---- the report ------------------------------------------------------------------------------

const one = new WasmBackend({ threads: 1 });
const all = new WasmBackend({ threads });
await all.ready();
const N = all.threads;
console.log(
  `wasm backend: ${one.relaxedSimd ? "relaxed" : "plain"} SIMD; ${navigator.hardwareConcurrency} ` +
    `cores; threaded column: ${N} threads; Deno ${Deno.version.deno}`,
);
console.log("(timings on a shared machine are noisy; each figure is the best of several runs)\n");

const peak = ceiling(one.relaxedSimd);
console.log(`FMA ceiling, 12 independent f32x4 accumulators, one core: ${fmt(peak)} GFLOP/s`);
if (one.relaxedSimd) {
  console.log(
    `  (plain SIMD, multiply + add:                             ${fmt(ceiling(false))} GFLOP/s)`,
  );
}

console.log(
  `\nGEMM through backend.matmul (allocation + kernel), GFLOP/s:\n` +
    `  ${"".padEnd(30)}  1 thread  % ceiling  ${
      String(N).padStart(2)
    } threads  % of ${N} x ceiling`,
);
for (const c of [...gemmCases(64, "train"), ...gemmCases(10_000, "sample")]) {
  if (quick && c.m * c.n * c.k > 1e8) continue;
  const g1 = gemmGflops(one, c), gn = gemmGflops(all, c);
  console.log(
    `  ${c.label.padEnd(30)} ${fmt(g1)} ${fmt((100 * g1) / peak, 0)}%   ${fmt(gn)} ${
      fmt((100 * gn) / (N * peak), 0)
    }%`,
  );
}

console.log(`\nspiral MLP (3 x ${256}, batch 64, T = ${T}), ms:`);
const mine1 = await trainMs(one);
const mineN = N > 1 ? await trainMs(all) : mine1;
all.dispose();
const twin = await torchTwin();
const ratio = (theirs: number, ours: number) => `${(theirs / ours).toFixed(2)}x`;
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
if (tw) {
  console.log(
    "  (PyTorch: torch_twin.py bench mlp, the faster of --threads 1 and 2; its sampling figure is the network's forward\n" +
      "  pass alone; ratio = PyTorch time / wasm time, above 1 the wasm backend is faster)",
  );
}

// ---- the MNIST UNet (--unet) --------------------------------------------------------------------

/** One UNet training step (batch 128) and one denoising forward pass (batch 64), in ms. */
async function unetMs(be: WasmBackend): Promise<{ stepMs: number; forwardMs: number }> {
  const rng = new Random(5);
  const images = new Float32Array(256 * 28 * 28).map(() => rng.uniform() * 2 - 1);
  const run = async (steps: number) => {
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
  };
  const a = await run(1), b = await run(3);
  const stepMs = (b.ms - a.ms) / 2;
  await sample(b.model, { count: 64, steps: 1 });
  const t0 = performance.now();
  await sample(b.model, { count: 64, steps: 3 });
  return { stepMs, forwardMs: (performance.now() - t0) / 3 };
}

if (unet) {
  const be = new WasmBackend({ threads });
  await be.ready();
  const mine = await unetMs(be);
  be.dispose();
  const twinPath = new URL("../../shared/bench/torch_twin.py", import.meta.url).pathname;
  const theirs = await torchTwinAt(twinPath, be.threads, "unet");
  console.log(
    `\nMNIST UNet (32/64/64 channels, T = ${T}), ${be.threads} threads, ms:\n` +
      `  ${"".padEnd(36)} ${"wasm".padStart(8)}` +
      (typeof theirs === "string" ? "" : ` ${"PyTorch".padStart(8)}   ${"ratio".padStart(6)}`),
  );
  const line = (label: string, ours: number, torch: number | null) =>
    console.log(
      `  ${label.padEnd(36)} ${fmt(ours, 1)}` +
        (torch === null ? "" : ` ${fmt(torch, 1)}   ${ratio(torch, ours).padStart(6)}`),
    );
  const tw = typeof theirs === "string" ? null : theirs;
  line("train step, batch 128", mine.stepMs, tw?.stepMs ?? null);
  line("denoising forward, batch 64", mine.forwardMs, tw?.forwardMs ?? null);
  if (typeof theirs === "string") console.log(`  (PyTorch column skipped: ${theirs})`);
  else console.log(`  (PyTorch: torch_twin.py bench unet --threads ${be.threads}; ratio as above)`);
}

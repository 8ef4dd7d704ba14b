/**
 * Benchmark of the wasm backend (not a test): in one invocation, this machine's WebAssembly SIMD
 * multiply-add ceiling, the GEMM kernel's GFLOP/s at the MLP's shapes, and the spiral MLP's
 * training and sampling steps, each beside the PyTorch twin (`../shared/bench/torch_twin.py`,
 * one thread) measured in the same run when it can run, with the ratios.
 *
 *   deno task bench [--quick] [--threads N]
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
const threadsAt = Deno.args.indexOf("--threads");
const threads = threadsAt >= 0 ? Number(Deno.args[threadsAt + 1]) : 1;

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

async function torchTwin(): Promise<Twin | string> {
  const twin = new URL("../../shared/bench/torch_twin.py", import.meta.url).pathname;
  try {
    await Deno.stat(twin);
  } catch {
    return `no PyTorch twin at ${twin}`;
  }
  let out;
  try {
    out = await new Deno.Command("/usr/bin/python3", {
      args: [twin, "bench", "mlp", "--threads", "1", "--T", String(T)],
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

// ---- the report -------------------------------------------------------------------------------

const be = new WasmBackend({ threads });
console.log(
  `wasm backend: ${be.relaxedSimd ? "relaxed" : "plain"} SIMD, ${be.threads} thread(s); ` +
    `${navigator.hardwareConcurrency} cores; Deno ${Deno.version.deno}`,
);
console.log("(timings on a shared machine are noisy; best of several runs is reported)\n");

const peak = ceiling(be.relaxedSimd);
console.log(`FMA ceiling (12 independent f32x4 accumulators, one core): ${fmt(peak)} GFLOP/s`);
if (be.relaxedSimd) {
  console.log(
    `  plain SIMD (multiply + add):                            ${fmt(ceiling(false))} GFLOP/s`,
  );
}

console.log("\nGEMM through backend.matmul (alloc + kernel), one core:");
for (const c of [...gemmCases(64, "train"), ...gemmCases(10_000, "sample")]) {
  if (quick && c.m * c.n * c.k > 1e8) continue;
  const g = gemmGflops(be, c);
  console.log(`  ${c.label.padEnd(34)} ${fmt(g)} GFLOP/s  ${fmt((100 * g) / peak, 0)}% of ceiling`);
}

console.log("\nspiral MLP (3 x 256, batch 64, T = 200):");
const mine = await trainMs(be);
const twin = await torchTwin();
const ratio = (theirs: number, ours: number) => `${(theirs / ours).toFixed(2)}x PyTorch`;
if (typeof twin === "string") {
  console.log(`  train step       ${fmt(mine.stepMs, 3)} ms   (PyTorch column skipped: ${twin})`);
  console.log(`  sampling step    ${fmt(mine.sampleMs, 3)} ms   (10,000 points)`);
} else {
  console.log(
    `  train step       ${fmt(mine.stepMs, 3)} ms   PyTorch ${fmt(twin.stepMs, 3)} ms   ${
      ratio(twin.stepMs, mine.stepMs)
    }`,
  );
  console.log(
    `  sampling step    ${fmt(mine.sampleMs, 3)} ms   PyTorch ${fmt(twin.forwardMs, 3)} ms   ${
      ratio(twin.forwardMs, mine.sampleMs)
    }  (10,000 points; PyTorch: the forward pass alone)`,
  );
  console.log("  (ratio > 1: the wasm backend is faster)");
}

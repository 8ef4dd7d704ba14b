/**
 * `kill -9` at random moments of `scripts/train_mnist.ts`: whatever instant the process dies at
 * (starting up, training, writing a checkpoint, drawing the final grids), the checkpoint it leaves
 * is either absent or loads with finite weights, and resuming from it (or starting afresh when there
 * is none) ends bit for bit where an uninterrupted run ends: every tensor of the final checkpoint
 * (raw and EMA weights, Adam moments, the timestep sampler's statistics) and its metadata.
 *
 * The kill moments come from a seeded generator, spread from before the first checkpoint to the end
 * of the run; some trials kill at the first file write after their moment, so that kills also land
 * while a checkpoint is being written. The test counts how many kills found a checkpoint, so it
 * cannot pass on kills that all came too early. Once a run is completed, its out folder must hold
 * the checkpoint and the final grids only; a run killed after its last step (writing the final
 * checkpoint again, or the grids) has nothing left to train, and the temporary files the kill cut
 * short must be exactly what the folder's next run removes. Runs use a tiny UNet on a 64-image MNIST-layout set written to a temp
 * folder.
 *
 * @module
 */

import assert from "node:assert/strict";
import { loadModel } from "../../mod.ts";
import { decodeSafetensors } from "../../io.ts";
import { removeStaleTemporaryFiles } from "../../src/io/atomic.ts";

const root = new URL("../..", import.meta.url).pathname;

/** Steps of every run. */
const STEPS = 60;
/** Kill trials, and how many run at once. */
const TRIALS = 20;
const POOL = 2;
/** Seed of the kill moments. */
const SEED = 0x5eed_c0de;
/** Share of the trials killed at the first file write after their delay, not at the delay. */
const AT_WRITE_SHARE = 0.3;
/** At least this many trials must be killed with a checkpoint already written. */
const MIN_WITH_CHECKPOINT = 5;
/**
 * Whether the out folder must hold nothing but the final checkpoint and grids once the run has
 * been completed: no temporary file of an atomic write the kill cut short, no write probe. A run
 * removes only temporary files older than a minute when it prepares its folder, so a killed
 * process's temporary files are aged by {@link AGE_KILLED_TEMPS_S} before the run is completed.
 * When false, temporary files the killed process left are tolerated (files the completing run
 * writes itself never are).
 */
const REQUIRE_CLEAN_OUT_DIR = true;
/** How far back (seconds) the modification time of the killed process's leftovers is set. */
const AGE_KILLED_TEMPS_S = 120;

const CHECKPOINT = "checkpoint.safetensors";
const TAG = String(STEPS).padStart(6, "0");
const FINAL_GRIDS = [`samples_${TAG}_raw.png`, `samples_${TAG}_ema.png`];

/** The settings of every run (the kill runs, the completing runs and the reference). */
function flags(data: string): string[] {
  return [
    ...["--batch", "4", "--base", "8", "--mults", "1,2", "--backend", "wasm"],
    ...["--sample-every", "0", "--sample-count", "1", "--sample-steps", "1"],
    ...["--checkpoint-every", "1", "--data", data],
  ];
}

function command(args: string[], piped: boolean): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/train_mnist.ts", ...args],
    cwd: root,
    stdout: piped ? "piped" : "null",
    stderr: piped ? "piped" : "null",
    env: { NO_COLOR: "1" },
  });
}

/** Runs train_mnist.ts to its end; throws with its stderr unless it exits 0. */
async function runToEnd(args: string[]): Promise<void> {
  const out = await command(args, true).output();
  if (out.code !== 0) {
    throw new Error(
      `train_mnist.ts ${args.join(" ")} exited ${out.code}:\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}

// ---- An MNIST-layout data set: 64 train and 16 test images of 28x28 stripes ----

function idxBytes(dims: number[], values: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(4 + 4 * dims.length + values.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0, 0, 0x08, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  bytes.set(values, 4 + 4 * dims.length);
  return bytes;
}

async function writeDataSet(dir: string): Promise<void> {
  const images = (count: number) => {
    const pixels = new Uint8Array(count * 28 * 28);
    for (let k = 0; k < count; k++) {
      for (let r = 0; r < 28; r++) {
        for (let c = 0; c < 28; c++) {
          const on = (r + c * (k % 5 + 1) + k) % 7 < 3;
          pixels[(k * 28 + r) * 28 + c] = on ? 255 : 0;
        }
      }
    }
    return idxBytes([count, 28, 28], pixels);
  };
  const labels = (count: number) =>
    idxBytes([count], Uint8Array.from({ length: count }, (_, k) => k % 10));
  await Deno.writeFile(`${dir}/train-images-idx3-ubyte`, images(64));
  await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, labels(64));
  await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte`, images(16));
  await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte`, labels(16));
}

// ---- Helpers ----

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  if (!exists(dir)) return [];
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** Bit-for-bit equality of two float arrays (NaN and -0 included). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Asserts that two checkpoints hold the same tensors, in the same order, bit for bit, and the same
 * metadata but for the output folder in the training settings.
 */
function assertSameCheckpoint(got: Uint8Array, want: Uint8Array, what: string): void {
  const a = decodeSafetensors(got, what), b = decodeSafetensors(want, "reference");
  assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()], `${what}: tensor names`);
  for (const [name, t] of b.tensors) {
    const u = a.tensors.get(name)!;
    assert.deepEqual(u.shape, t.shape, `${what}: shape of ${name}`);
    assert.ok(sameBits(u.data, t.data), `${what}: ${name} differs from the uninterrupted run`);
  }
  const settings = (m: Record<string, string>) => {
    const { out: _, ...rest } = JSON.parse(m.training);
    return { ...m, training: rest };
  };
  assert.deepEqual(settings(a.metadata), settings(b.metadata), `${what}: metadata`);
}

/** Asserts that the checkpoint at `path` loads and that its raw and EMA weights are finite. */
async function assertLoadable(path: string, what: string): Promise<number> {
  const model = await loadModel(path, "reference");
  for (const which of ["raw", "ema"] as const) {
    for (const [name, w] of await model.weights(which)) {
      assert.ok(w.every(Number.isFinite), `${what}: ${which} ${name} is not finite`);
    }
  }
  return model.stepsTrained;
}

/** What a kill found. */
interface Outcome {
  /** Whether a checkpoint was there after the kill. */
  checkpoint: boolean;
  /** Whether the kill cut an atomic write short (its temporary file was left). */
  midWrite: boolean;
  /** Whether the run had already ended when the kill came. */
  ended: boolean;
}

/**
 * Returns as soon as `dir` holds a temporary file of an atomic write (a checkpoint or a grid being
 * written), or after `limitMs`. It polls without yielding: a write lasts about a millisecond, less
 * than a timer's resolution.
 */
function untilWriting(dir: string, limitMs = 1000): void {
  const start = performance.now();
  while (performance.now() - start < limitMs) {
    if (listDir(dir).some((n) => n.endsWith(".tmp"))) return;
  }
}

/**
 * Runs one trial: a run killed after `delayMs` (with `atWrite`, at the first atomic write after
 * that), checked, completed and compared with the uninterrupted run.
 */
async function trial(
  index: number,
  delayMs: number,
  atWrite: boolean,
  dir: string,
  data: string,
  reference: Uint8Array,
): Promise<Outcome> {
  const what = `trial ${index} (killed after ${delayMs.toFixed(0)} ms${
    atWrite ? ", at the next write" : ""
  })`;
  const out = `${dir}/trial_${index}`;
  const ckpt = `${out}/${CHECKPOINT}`;
  const child = command([...flags(data), "--steps", String(STEPS), "--out", out], false).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  await sleep(delayMs);
  if (atWrite && !exited) untilWriting(out);
  if (!exited) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It exited between the check and the kill.
    }
  }
  const code = await status;
  // A run can end on its own before the kill lands: then it must have succeeded.
  const ended = code.signal === null;
  if (ended) assert.equal(code.code, 0, `${what}: the run ended on its own with exit ${code.code}`);
  else assert.equal(code.signal, "SIGKILL", `${what}: ended by ${code.signal}`);
  const left = listDir(out);
  const leftTemps = left.filter((n) => n.startsWith("."));
  const midWrite = left.some((n) => n.endsWith(".tmp"));
  const checkpoint = exists(ckpt);

  let completed = false;
  if (checkpoint) {
    const step = await assertLoadable(ckpt, what);
    assert.ok(step >= 1 && step <= STEPS, `${what}: checkpoint at step ${step}`);
    if (step < STEPS) {
      await ageFiles(out, leftTemps);
      await runToEnd([...flags(data), "--resume", ckpt, "--steps", String(STEPS)]);
      completed = true;
    } else if (leftTemps.length > 0) {
      // Killed in the writes after the last step (the final checkpoint again, the grids): nothing
      // is left to train, and the next run in this folder removes what the kill cut short. Do what
      // that run does first, and check it takes exactly the killed process's leftovers.
      await ageFiles(out, leftTemps);
      const removed = await removeStaleTemporaryFiles(out);
      assert.deepEqual(removed.sort(), [...leftTemps].sort(), `${what}: leftovers not removed`);
    }
  } else {
    await ageFiles(out, leftTemps);
    await runToEnd([...flags(data), "--steps", String(STEPS), "--out", out]);
    completed = true;
  }
  assertSameCheckpoint(await Deno.readFile(ckpt), reference, what);

  const now = listDir(out);
  const allowed = new Set([CHECKPOINT, ...FINAL_GRIDS]);
  const tolerated = REQUIRE_CLEAN_OUT_DIR ? new Set<string>() : new Set(leftTemps);
  const extra = now.filter((n) => !allowed.has(n) && !tolerated.has(n));
  assert.deepEqual(extra, [], `${what}: files left in the out folder`);
  if (completed || ended) {
    for (const grid of FINAL_GRIDS) assert.ok(now.includes(grid), `${what}: ${grid} missing`);
  }
  return { checkpoint, midWrite, ended };
}

/** Sets the modification time of the named files in `dir` AGE_KILLED_TEMPS_S seconds back. */
async function ageFiles(dir: string, names: string[]): Promise<void> {
  const then = new Date(Date.now() - AGE_KILLED_TEMPS_S * 1000);
  for (const name of names) await Deno.utime(`${dir}/${name}`, then, then);
}

/** Runs `tasks` with at most `size` at once; the results in order. */
async function pool<T>(size: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, tasks.length) }, worker));
  return results;
}

Deno.test("train_mnist: kill -9 at any moment leaves a loadable checkpoint; resuming is bit-exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_kill_" });
  try {
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    await writeDataSet(data);

    // The uninterrupted run, timed: when its first checkpoint appears, and when it ends.
    const refOut = `${dir}/reference`;
    const start = performance.now();
    const child = command([...flags(data), "--steps", String(STEPS), "--out", refOut], true)
      .spawn();
    let firstMs = -1;
    const output = child.output();
    let done = false;
    output.then(() => done = true, () => done = true);
    while (!done) {
      if (firstMs < 0 && exists(`${refOut}/${CHECKPOINT}`)) firstMs = performance.now() - start;
      await sleep(2);
    }
    const endMs = performance.now() - start;
    const result = await output;
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    if (firstMs < 0) firstMs = endMs;
    const reference = await Deno.readFile(`${refOut}/${CHECKPOINT}`);
    assert.equal(await assertLoadable(`${refOut}/${CHECKPOINT}`, "reference"), STEPS);

    // Kill moments from a bit before the first checkpoint to a bit past the uninterrupted run's end
    // (two runs at a time are slower than the one timed).
    const random = mulberry32(SEED);
    const from = 0.6 * firstMs, to = 1.2 * endMs;
    const kills = Array.from({ length: TRIALS }, () => ({
      delay: from + random() * (to - from),
      atWrite: random() < AT_WRITE_SHARE,
    }));
    const outcomes = await pool(
      POOL,
      kills.map((k, i) => () => trial(i, k.delay, k.atWrite, dir, data, reference)),
    );

    const withCheckpoint = outcomes.filter((o) => o.checkpoint).length;
    const counts = {
      withoutCheckpoint: outcomes.filter((o) => !o.checkpoint).length,
      withCheckpoint,
      midWrite: outcomes.filter((o) => o.midWrite).length,
      endedBeforeKill: outcomes.filter((o) => o.ended).length,
    };
    if (Deno.env.get("KILL_TEST_VERBOSE")) {
      console.log({ firstMs: Math.round(firstMs), endMs: Math.round(endMs), ...counts });
    }
    assert.ok(
      withCheckpoint >= MIN_WITH_CHECKPOINT,
      `only ${withCheckpoint} of ${TRIALS} kills found a checkpoint: ${JSON.stringify(counts)}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

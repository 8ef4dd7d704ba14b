/**
 * The conformance harness: {@link conformance} registers one check once per backend under test,
 *
 * - `reference`: the reference backend in float32, judged against the float64 reference backend
 *   (its results rounded to float32) or exact values;
 * - `wasm`: on one thread, and on two threads with every kernel split (`parallelThreshold: 0`);
 * - `webgpu`: on whatever adapter there is (llvmpipe included); ignored where there is none;
 *
 * the last two judged against the float32 reference backend. A check gets a {@link Conformance}
 * context: the backend under test and its oracle, data seeded by the check's name (so every
 * backend sees the same values), {@link Conformance.pair} to put the same values on both (on the
 * backend under test as a view at an odd offset of a larger, NaN-padded storage) and
 * {@link Conformance.same} / {@link Conformance.exact} to compare results.
 *
 * @module
 */

import type { Backend, BackendName, Storage } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { createWasmBackend, openWasmBackend } from "../../../wasm/backend.ts";
import { createWebGpuBackend, type WebGpuBackend } from "../../../gpu/mod.ts";
import {
  assertClose,
  assertSameValues,
  maxRelError,
  normalValues,
  uniformValues,
} from "../../helpers/compare.ts";
import { hasWebGpuAdapter } from "../../helpers/webgpu.ts";

/** The default relative tolerance of {@link Conformance.same}. */
export const TOL = 1e-4;

/** One backend under test. */
export interface Target {
  /** Which backend. */
  readonly kind: BackendName;
  /** As it appears in test names, e.g. "wasm, 2 threads, every kernel split". */
  readonly label: string;
  /** Whether `free` and `endScope` release memory, so that using it afterwards is an error. */
  readonly frees: boolean;
  /**
   * Whether the check's large cases run (false on WebGPU, which runs the sizes of its own former
   * tests: software adapters such as llvmpipe are slow).
   */
  readonly large: boolean;
}

const REFERENCE: Target = {
  kind: "reference",
  label: "reference, float32 against float64",
  frees: false,
  large: true,
};
const WASM_1: Target = { kind: "wasm", label: "wasm, 1 thread", frees: true, large: true };
const WASM_2: Target = {
  kind: "wasm",
  label: "wasm, 2 threads, every kernel split",
  frees: true,
  large: true,
};
const WEBGPU: Target = { kind: "webgpu", label: "webgpu", frees: true, large: false };

/** Every backend under test, in the order their cases are registered. */
export const TARGETS: readonly Target[] = [REFERENCE, WASM_1, WASM_2, WEBGPU];

const ref32 = createReferenceBackend();
const ref64 = createReferenceBackend({ dtype: "float64" });
let refUnderTest: Backend | undefined, wasmSingle: Backend | undefined;
let webgpu: Promise<WebGpuBackend> | undefined;

/** The backend of `t` (shared within a test file, except wasm on two threads) and its cleanup. */
async function open(t: Target): Promise<{ be: Backend; close(): void }> {
  const keep = { close() {} };
  if (t === REFERENCE) return { be: refUnderTest ??= createReferenceBackend(), ...keep };
  if (t === WASM_1) return { be: wasmSingle ??= openWasmBackend({ threads: 1 }), ...keep };
  if (t === WASM_2) {
    const be = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
    return { be, close: () => be.dispose() };
  }
  return { be: await (webgpu ??= createWebGpuBackend({ allowFallbackAdapter: true })), ...keep };
}

/** Seeded test data as float32 values. */
export class Data {
  /** The generator, for draws of one's own. */
  readonly rng: Random;
  /** Data from `seed`. */
  constructor(seed: number) {
    this.rng = new Random(seed, 5);
  }
  /** n uniforms in [lo, hi). */
  uniform(n: number, lo = -1, hi = 1): Float32Array {
    return uniformValues(this.rng, n, lo, hi);
  }
  /** n normals times `scale` plus `shift`. */
  normal(n: number, scale = 1, shift = 0): Float32Array {
    return normalValues(this.rng, n, scale, shift);
  }
  /** n values of magnitude uniform in [lo, hi) and random sign. */
  awayFromZero(n: number, lo = 0.2, hi = 2): Float32Array {
    const v = this.uniform(n, lo, hi), s = this.rng.uniforms(n);
    for (let i = 0; i < n; i++) if (s[i] < 0.5) v[i] = -v[i];
    return v;
  }
  /** n integers uniform in [0, hi), as floats. */
  indices(n: number, hi: number): Float32Array {
    return Float32Array.from(this.rng.uniforms(n), (u) => Math.floor(u * hi));
  }
}

/** What a check gets: the backend under test, its oracle, data, and comparisons. */
export interface Conformance {
  /** The backend under test. */
  readonly be: Backend;
  /** The oracle: the float64 reference backend for `reference`, else the float32 one. */
  readonly ref: Backend;
  /** Which backend is under test. */
  readonly target: Target;
  /** Data seeded by the check's name: the same for every backend. */
  readonly data: Data;
  /**
   * The same values on both backends: on the backend under test as a view at offset `pad` of a
   * storage `pad + 5` elements longer filled with NaN, on the oracle as plain storage.
   */
  pair(values: ArrayLike<number>, pad?: number): [Storage, Storage];
  /** Storage of this backend holding `values` (plain, not a view). */
  upload(values: ArrayLike<number>): Storage;
  /** Reads storage of the backend under test. */
  read(s: Storage): Promise<Float32Array | Float64Array>;
  /** Reads storage of the oracle, rounded to float32 (what the backend under test can hold). */
  expected(r: Storage): Promise<Float32Array>;
  /**
   * Asserts that `s` (backend under test) is within `tol` of `r` (oracle) element-wise, relative
   * to max(1, |expected|, scale) (see {@link assertClose}). Both are read at once; the comparison
   * may finish later (by the end of the check, which then fails if it does).
   */
  same(s: Storage, r: Storage, what: string, tol?: number, scale?: number): Promise<void>;
  /** Asserts that `s` and `r` hold the same values bit for bit (read at once, like `same`). */
  exact(s: Storage, r: Storage, what: string): Promise<void>;
  /** The largest relative error of `s` against `r` (see {@link maxRelError}), after {@link same}. */
  track(s: Storage, r: Storage, what: string, tol?: number): Promise<number>;
}

/** Options of {@link conformance}. */
export interface ConformanceOptions {
  /** Only these backends run the check (default: all). */
  only?: readonly BackendName[];
}

/** A stable seed from a check's name. */
function seedOf(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Registers `check` as one test per backend under test, named `"<name> (<backend>)"`; the webgpu
 * case is ignored where there is no adapter.
 */
export function conformance(
  name: string,
  check: (c: Conformance) => Promise<void>,
  options: ConformanceOptions = {},
): void {
  for (const target of TARGETS) {
    if (options.only && !options.only.includes(target.kind)) continue;
    const gpu = target.kind === "webgpu";
    Deno.test({
      name: `${name} (${target.label})`,
      ignore: gpu && !hasWebGpuAdapter,
      // The WebGPU device lives for the whole file: its ops and resources outlast each test.
      sanitizeOps: !gpu,
      sanitizeResources: !gpu,
      fn: async () => {
        const { be, close } = await open(target);
        const pending = new Pending();
        try {
          await check(context(be, target, new Data(seedOf(name)), pending));
          await pending.drain();
        } finally {
          await pending.drain().catch(() => {}); // after a failure: let the reads finish
          close();
        }
      },
    });
  }
}

/** How many comparisons may wait for their reads at once. */
const DEPTH = 16;

/**
 * Comparisons under way. Their reads are issued at once (so a later kernel or write cannot change
 * what they read, on any backend), and checked when the values arrive: on a GPU, the reads of
 * several comparisons then overlap. The first failure is thrown by the next {@link Pending.drain}.
 */
class Pending {
  #inFlight: Promise<void>[] = [];
  #failure: { error: unknown } | undefined;

  /** Adds a comparison; waits for those under way when there are {@link DEPTH} of them. */
  async add(comparison: Promise<void>): Promise<void> {
    this.#inFlight.push(comparison.catch((error) => void (this.#failure ??= { error })));
    if (this.#inFlight.length >= DEPTH) await this.drain();
  }

  /** Waits for every comparison under way; throws the first failure. */
  async drain(): Promise<void> {
    const all = this.#inFlight;
    this.#inFlight = [];
    await Promise.all(all);
    if (this.#failure) throw this.#failure.error;
  }
}

/** The context of one check on `be`. */
function context(be: Backend, target: Target, data: Data, pending: Pending): Conformance {
  const ref = target.kind === "reference" ? ref64 : ref32;
  const expected = async (r: Storage) => Float32Array.from(await ref.read(r));
  return {
    be,
    ref,
    target,
    data,
    pair(values, pad = 3) {
      const big = new Float32Array(values.length + pad + 5).fill(NaN);
      big.set(values, pad);
      return [be.view(be.upload(big), pad, values.length), ref.upload(values)];
    },
    upload: (values) => be.upload(values),
    read: (s) => be.read(s),
    expected,
    same(s, r, what, tol = TOL, scale = 0) {
      const a = be.read(s), e = expected(r);
      return pending.add((async () => assertClose(await a, await e, what, tol, scale))());
    },
    exact(s, r, what) {
      const a = be.read(s), e = expected(r);
      return pending.add((async () => assertSameValues(await a, await e, what))());
    },
    async track(s, r, what, tol = TOL) {
      const a = await be.read(s), e = await expected(r);
      assertClose(a, e, what, tol);
      return maxRelError(a, e);
    },
  };
}

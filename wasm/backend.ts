/**
 * The `wasm` backend: AssemblyScript kernels compiled to WebAssembly SIMD (relaxed SIMD's fused
 * multiply-add where the engine accepts it), every tensor in one WebAssembly memory managed by a
 * host-side allocator (wasm/heap.ts). Host code only schedules kernels: nothing runs per element
 * in JavaScript.
 *
 * The backend is the sum of its op groups (wasm/ops/, one file each) over one
 * {@link WasmRuntime} (wasm/runtime.ts: the memory, the kernels, the worker threads and the
 * helpers that split a kernel over them). Which algorithm a convolution runs by is the pure
 * function of wasm/conv_policy.ts.
 *
 * The module is embedded (wasm/embedded.ts), so importing this file by path or by URL needs no
 * build step and no permission.
 *
 * @example Adding two vectors
 * ```ts
 * import { createWasmBackend } from "./backend.ts";
 *
 * const be = await createWasmBackend({ threads: 1 });
 * const a = be.upload([1, 2]), b = be.upload([3, 4]);
 * const sum = be.binary("add", a, b, { a: [2], b: [2], out: [2] });
 * console.log(await be.read(sum)); // Float32Array [4, 6]
 * be.dispose();
 * ```
 *
 * @module
 */

import type { Backend, Storage } from "../src/backend.ts";
import type { Heap } from "./heap.ts";
import { convOps } from "./ops/conv.ts";
import { elementwiseOps } from "./ops/elementwise.ts";
import { layoutOps } from "./ops/layout.ts";
import { linalgOps } from "./ops/linalg.ts";
import { lossOps } from "./ops/loss.ts";
import { memoryOps } from "./ops/memory.ts";
import { normOps } from "./ops/norm.ts";
import { optimOps } from "./ops/optim.ts";
import { randomOps } from "./ops/random.ts";
import { reductionOps } from "./ops/reduction.ts";
import { type WasmBackendOptions, WasmRuntime } from "./runtime.ts";

export { type WasmBackendOptions, WasmRuntime, WasmStorage } from "./runtime.ts";

/** The wasm backend: the {@link Backend} kernels and what is particular to it. */
export interface WasmBackend extends Backend {
  /** Always `"wasm"`. */
  readonly name: "wasm";
  /** Always `"float32"`. */
  readonly dtype: "float32";
  /** True when the relaxed-SIMD build runs. */
  readonly relaxedSimd: boolean;
  /** Threads that compute (the calling one included). */
  readonly threads: number;
  /** The allocator (for tests and statistics). */
  readonly heap: Heap;
  /** Starts the worker threads and resolves once they take work (at once with one thread). */
  ready(): Promise<void>;
  /** A copy of the values of `src`. */
  read(src: Storage): Promise<Float32Array>;
}

/**
 * A wasm backend with its own memory. Synchronous: worker threads start in the background and
 * take work once they listen (see {@link createWasmBackend}, which waits for them).
 */
export function openWasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  const rt = new WasmRuntime(options);
  return {
    name: "wasm",
    dtype: "float32",
    relaxedSimd: rt.relaxedSimd,
    threads: rt.threads,
    heap: rt.heap,
    ready: () => rt.ready(),
    ...memoryOps(rt),
    ...elementwiseOps(rt),
    ...reductionOps(rt),
    ...linalgOps(rt),
    ...convOps(rt),
    ...normOps(rt),
    ...layoutOps(rt),
    ...lossOps(rt),
    ...optimOps(rt),
    ...randomOps(rt),
  };
}

/**
 * Creates a wasm backend and waits until its worker threads listen. Call `dispose()` when done
 * with it to stop them at once; otherwise they stop after a moment without work.
 */
export async function createWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackend> {
  const be = openWasmBackend(options);
  await be.ready();
  return be;
}

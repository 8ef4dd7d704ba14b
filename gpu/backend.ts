/**
 * The `webgpu` backend: tensors live in pooled GPU buffers, kernel calls record compute dispatches
 * into one command encoder, and {@link WebGpuBackend.flush} submits it (one submit per training or
 * sampling step). {@link WebGpuBackend.read} is the only call that waits for the GPU.
 *
 * A storage handle is (buffer, element offset, length). Offsets go to kernels in their parameter
 * block, so views at any element offset work; buffers are bound whole (or, past the device's
 * binding limit, as an aligned window around the view).
 *
 * @module
 */

import {
  type AdamBuffers,
  type AdamSettings,
  type Backend,
  BINARY_OPS,
  type BinaryOp,
  type BroadcastShapes,
  checkGroupNormShift,
  type ConcatSpec,
  type Conv2dGeometry,
  fullMatmulSpec,
  type GroupNormGeometry,
  type GroupNormGrads,
  type GroupNormParams,
  type GroupNormResult,
  type GroupNormSaved,
  LOSS_KINDS,
  type LossSpec,
  type MatmulSpec,
  type RandomDraw,
  type SliceSpec,
  type Storage,
  UNARY_OPS,
  type UnaryOp,
  type UpsampleSpec,
} from "../src/backend.ts";
import { seedKey } from "../src/random.ts";
import { BufferPool, type PooledBuffer } from "./buffer_pool.ts";
import { type AdapterReport, findAdapter, openDevice } from "./device.ts";
import { ParamArena } from "./param_arena.ts";
import { KernelProfiler, type KernelTime } from "./profiler.ts";
import { type BoundRange, type CompiledKernel, PipelineCache } from "./pipeline_cache.ts";
import {
  affineKernel,
  axpyKernel,
  binaryBroadcastKernel,
  binarySameKernel,
  clampKernel,
  copyKernel,
  fillKernel,
  hasUnaryGrad,
  unaryGradKernel,
  unaryKernel,
} from "./kernels/elementwise.ts";
import {
  finalSumKernel,
  partialSumKernel,
  type PartialTerm,
  reduceSumGroupKernel,
  reduceSumThreadKernel,
  splitSumKernel,
} from "./kernels/reduce.ts";
import { type GemmTile, matmulKernel, TILES } from "./kernels/gemm.ts";
import {
  chooseTile,
  MAX_DISPATCHES_PER_SUBMIT,
  MAX_WORKGROUPS_PER_DIMENSION,
  partialSumGroups,
  planReduceSum,
  planSplitK,
  specializeShapes,
  SPLIT_FILTER,
  SPLIT_WHEN_FEW,
  type SplitRule,
} from "./policy.ts";
import {
  convDataKernel,
  convFilterKernel,
  convForwardKernel,
  type ConvShape,
} from "./kernels/conv.ts";
import {
  groupNormAffineGradKernel,
  groupNormChannelSumsKernel,
  groupNormDxKernel,
  groupNormKernel,
  groupNormShiftDxKernel,
  softmaxGradKernel,
  softmaxKernel,
} from "./kernels/norm.ts";
import {
  blockCopyKernel,
  gatherKernel,
  gatherRowsKernel,
  permuteKernel,
  upsampleGradKernel,
  upsampleKernel,
} from "./kernels/layout.ts";
import { adamKernel, emaKernel } from "./kernels/optim.ts";
import { lossGradKernel } from "./kernels/loss.ts";
import { LANES, randomKernel, type RandomKind } from "./kernels/random.ts";
import { groupsGrid, type KernelSpec, linearGrid, paramLayout, type ParamValue } from "./wgsl.ts";
import { sizeOf } from "../src/shape.ts";
import { broadcastStrides, rowMajorStrides } from "../src/backends/strides.ts";

/** One pooled allocation; views share it. */
class Allocation {
  readonly buf: PooledBuffer;
  released = false;
  scope: Set<Allocation> | null = null;
  constructor(buf: PooledBuffer) {
    this.buf = buf;
  }
}

/** Storage of the WebGPU backend: `length` floats at element `offset` of a pooled buffer. */
export class GpuStorage implements Storage {
  /** The allocation (shared by views). */
  readonly allocation: Allocation;
  /** First element within the buffer. */
  readonly offset: number;
  /** Number of elements. */
  readonly length: number;
  /** True for views, which `free` ignores. */
  readonly isView: boolean;
  /** Wraps a range of an allocation. */
  constructor(allocation: Allocation, offset: number, length: number, isView: boolean) {
    this.allocation = allocation;
    this.offset = offset;
    this.length = length;
    this.isView = isView;
  }
  /** The GPU buffer holding it. */
  get buffer(): GPUBuffer {
    return this.allocation.buf.buffer;
  }
}

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuOptions {
  /** Accept a software adapter such as llvmpipe (for tests); default false. */
  allowFallbackAdapter?: boolean;
  /**
   * Time every dispatch on the GPU with timestamp queries (read them with
   * {@link WebGpuBackend.profile}); each dispatch then gets a compute pass of its own, a little
   * slower. Needs an adapter with the "timestamp-query" feature; default false.
   */
  profile?: boolean;
  /**
   * Compile each convolution for its shape (the geometry as constants: faster index arithmetic,
   * one pipeline per shape). Default: on for hardware adapters, off for software ones, where
   * compiling is slow.
   */
  specializeShapes?: boolean;
}

/** A convolution's label in a profile. */
function convLabel(pass: string, g: Conv2dGeometry): string {
  return `conv ${pass} ${g.c}->${g.o} ${g.kh}x${g.kw}/${g.stride} @${g.h} n${g.n}`;
}

/** The data as a Float32Array over a plain ArrayBuffer (what writeBuffer accepts). */
function toF32(data: ArrayLike<number>): Float32Array<ArrayBuffer> {
  if (data instanceof Float32Array && data.buffer instanceof ArrayBuffer) {
    return data as Float32Array<ArrayBuffer>;
  }
  return Float32Array.from(data);
}

/** Every kernel the backend can dispatch (without aliasing variants). */
export function allKernels(): KernelSpec[] {
  return [
    fillKernel(),
    copyKernel(),
    ...UNARY_OPS.map((op) => unaryKernel(op)),
    ...UNARY_OPS.filter(hasUnaryGrad).map((op) => unaryGradKernel(op)),
    ...BINARY_OPS.flatMap((op) => [binarySameKernel(op), binaryBroadcastKernel(op)]),
    affineKernel(),
    axpyKernel(),
    clampKernel(),
    reduceSumThreadKernel(),
    reduceSumGroupKernel(),
    ...(["square", ...LOSS_KINDS] as const).map((t) => partialSumKernel(t)),
    finalSumKernel(),
    splitSumKernel(),
    ...TILES.flatMap((t) => [
      matmulKernel(t),
      convForwardKernel(t),
      convDataKernel(t),
      convFilterKernel(t),
    ]),
    ...[false, true].flatMap((silu) => [
      ...[false, true].flatMap((shift) => [
        groupNormKernel(silu, shift),
        groupNormChannelSumsKernel(silu, shift),
      ]),
      groupNormDxKernel(silu),
      groupNormShiftDxKernel(silu),
    ]),
    groupNormAffineGradKernel(),
    softmaxKernel(),
    softmaxGradKernel(),
    permuteKernel(),
    upsampleKernel(),
    upsampleGradKernel(),
    blockCopyKernel(),
    gatherKernel(),
    gatherRowsKernel(),
    ...LOSS_KINDS.map((k) => lossGradKernel(k)),
    adamKernel(false),
    adamKernel(true),
    emaKernel(),
    ...(["uniform", "normal", "int"] as const).map((k) => randomKernel(k)),
  ];
}

/** The WebGPU backend. Create it with {@link createWebGpuBackend}. */
export class WebGpuBackend implements Backend {
  /** Always `"webgpu"`. */
  readonly name = "webgpu" as const;
  /** Always `"float32"`. */
  readonly dtype = "float32" as const;
  /** The adapter in use. */
  readonly adapterInfo: AdapterReport;
  /** The device. */
  readonly device: GPUDevice;
  /** The pipeline cache (exposed for warm-up and tests). */
  readonly pipelines: PipelineCache;

  readonly #pool: BufferPool;
  readonly #staging: BufferPool;
  readonly #arena: ParamArena;
  readonly #maxBinding: number;
  readonly #bindAlign: number;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #lastPipeline: GPUComputePipeline | null = null;
  #scopes: Set<Allocation>[] = [];
  #failure: Error | null = null;
  #disposed = false;
  readonly #checks = new Set<Promise<void>>();
  readonly #lost: Promise<never>;
  #submits = 0;
  #dispatches = 0;
  readonly #profiler: KernelProfiler | null;
  readonly #specialize: boolean;
  /** The label of the next dispatches in a profile (set around products and convolutions). */
  #label: string | null = null;

  /**
   * A backend on an open device (see {@link createWebGpuBackend}); `profile` needs the device
   * opened with the "timestamp-query" feature. Options as in {@link WebGpuOptions}.
   */
  constructor(
    device: GPUDevice,
    adapterInfo: AdapterReport,
    options: { profile?: boolean; specializeShapes?: boolean } = {},
  ) {
    this.device = device;
    this.adapterInfo = adapterInfo;
    this.#profiler = options.profile ? new KernelProfiler(device) : null;
    this.#specialize = specializeShapes(options.specializeShapes, adapterInfo.isFallbackAdapter);
    this.pipelines = new PipelineCache(device, (e) => this.#fail(e));
    this.#maxBinding = device.limits.maxStorageBufferBindingSize;
    this.#bindAlign = device.limits.minStorageBufferOffsetAlignment;
    const maxBuffer = device.limits.maxBufferSize;
    // (The GPU* constants are read here, not at import, so importing this module never fails.)
    const U = GPUBufferUsage;
    this.#pool = new BufferPool(device, U.STORAGE | U.COPY_SRC | U.COPY_DST, "tensor", maxBuffer);
    this.#staging = new BufferPool(device, U.MAP_READ | U.COPY_DST, "read-back", maxBuffer);
    this.#arena = new ParamArena(device);
    this.#lost = device.lost.then((info) => {
      const e = new Error(
        this.#disposed
          ? "webgpu backend: used after dispose()"
          : `WebGPU device lost (${info.reason}): ${
            info.message || "no message"
          }; the webgpu backend cannot continue (restart, or choose the wasm backend)`,
      );
      this.#fail(e);
      throw e;
    });
    this.#lost.catch(() => {});
    device.addEventListener("uncapturederror", (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.#fail(new Error(`WebGPU error: ${err.message}`));
    });
  }

  #fail(e: Error): void {
    if (!this.#failure) this.#failure = e;
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
    if (this.#disposed) throw new Error("webgpu backend: used after dispose()");
  }

  /** Counters: submits, dispatches, pooled buffers and bytes, cached pipelines and bind groups. */
  stats(): {
    submits: number;
    dispatches: number;
    buffers: number;
    bytes: number;
    pipelines: number;
    bindGroups: number;
  } {
    return {
      submits: this.#submits,
      dispatches: this.#dispatches,
      ...this.#pool.stats(),
      ...this.pipelines.stats(),
    };
  }

  // ---- storage ------------------------------------------------------------------------------

  #st(s: Storage): GpuStorage {
    if (!(s instanceof GpuStorage)) {
      throw new TypeError("webgpu backend: got storage from another backend");
    }
    if (s.allocation.released) {
      throw new Error("webgpu backend: storage used after it was freed (or its scope ended)");
    }
    return s;
  }

  /** New storage of `length` elements; zeroed when `zero` (only needed for reused buffers). */
  #new(length: number, zero = false): GpuStorage {
    this.#check();
    // Code that never flushes still submits now and then (here, before the op acquires any
    // scratch buffer, so the submit cannot recycle one its later dispatches use).
    if (this.#arena.used >= MAX_DISPATCHES_PER_SUBMIT || this.#profiler?.nearlyFull) {
      this.#submit();
    }
    const { buf, fresh } = this.#pool.acquire(Math.max(1, length) * 4);
    const a = new Allocation(buf);
    const scope = this.#scopes.at(-1);
    if (scope) {
      scope.add(a);
      a.scope = scope;
    }
    const s = new GpuStorage(a, 0, length, false);
    if (zero && !fresh && length > 0) this.#fillRange(s, 0);
    return s;
  }

  #release(a: Allocation): void {
    if (a.released) return;
    a.released = true;
    // With nothing recorded since the last submit, no pending command can read the buffer.
    if (this.#encoder) this.#pool.release(a.buf);
    else this.#pool.releaseNow(a.buf);
  }

  /** Scratch storage for this step: released at once, reused only after the next submit. */
  #scratch(length: number): GpuStorage {
    const { buf } = this.#pool.acquire(Math.max(1, length) * 4);
    const a = new Allocation(buf);
    this.#pool.release(buf);
    return new GpuStorage(a, 0, length, false);
  }

  alloc(length: number): Storage {
    return this.#new(length, true);
  }

  upload(data: ArrayLike<number>): Storage {
    const s = this.#new(data.length);
    if (data.length > 0) {
      this.device.queue.writeBuffer(s.buffer, 0, toF32(data));
    }
    return s;
  }

  write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
    this.#check();
    const d = this.#st(dst);
    if (offset < 0 || offset + data.length > d.length) {
      throw new RangeError(
        `write of ${data.length} elements at ${offset} is outside storage of ${d.length}`,
      );
    }
    if (data.length === 0) return;
    const f = toF32(data);
    const at = (d.offset + offset) * 4;
    if (!this.#encoder) {
      this.device.queue.writeBuffer(d.buffer, at, f);
      return;
    }
    // Commands already recorded may read or write dst: stage the data and copy it in order.
    const tmp = this.#scratch(data.length);
    this.device.queue.writeBuffer(tmp.buffer, 0, f);
    this.#endPass();
    this.#encoder.copyBufferToBuffer(tmp.buffer, 0, d.buffer, at, f.byteLength);
  }

  async read(src: Storage): Promise<Float32Array> {
    this.#check();
    const s = this.#st(src);
    const bytes = s.length * 4;
    if (bytes === 0) {
      this.flush();
      return new Float32Array(0);
    }
    const { buf } = this.#staging.acquire(bytes);
    this.#ensureEncoder();
    this.#endPass();
    this.#encoder!.copyBufferToBuffer(s.buffer, s.offset * 4, buf.buffer, 0, bytes);
    this.#submit();
    try {
      await Promise.race([buf.buffer.mapAsync(GPUMapMode.READ, 0, bytes), this.#lost]);
    } catch (e) {
      await this.#settle();
      this.#check();
      throw new Error(`webgpu backend: reading back failed: ${(e as Error).message}`);
    }
    const out = new Float32Array(buf.buffer.getMappedRange(0, bytes).slice(0));
    buf.buffer.unmap();
    this.#staging.releaseNow(buf);
    await this.#settle();
    this.#check();
    return out;
  }

  /** Waits for every outstanding error check (compiles, submits). */
  async #settle(): Promise<void> {
    while (this.#checks.size > 0 || this.pipelines.pending.size > 0) {
      await Promise.all([...this.#checks, ...this.pipelines.pending]);
    }
  }

  view(src: Storage, offset: number, length: number): Storage {
    const s = this.#st(src);
    if (offset < 0 || length < 0 || offset + length > s.length) {
      throw new RangeError(
        `view [${offset}, ${offset + length}) is outside storage of ${s.length}`,
      );
    }
    return new GpuStorage(s.allocation, s.offset + offset, length, true);
  }

  free(s: Storage): void {
    if (!(s instanceof GpuStorage)) {
      throw new TypeError("webgpu backend: got storage from another backend");
    }
    if (s.isView || s.allocation.released) return;
    s.allocation.scope?.delete(s.allocation);
    s.allocation.scope = null;
    this.#release(s.allocation);
  }

  beginScope(): void {
    this.#scopes.push(new Set());
  }

  endScope(keep: readonly Storage[] = []): void {
    const top = this.#scopes.pop();
    if (!top) throw new Error("webgpu backend: endScope without a matching beginScope");
    const kept = new Set<Allocation>();
    for (const k of keep) if (k instanceof GpuStorage) kept.add(k.allocation);
    const parent = this.#scopes.at(-1) ?? null;
    for (const a of top) {
      if (kept.has(a)) {
        a.scope = parent;
        parent?.add(a);
      } else {
        a.scope = null;
        this.#release(a);
      }
    }
  }

  fill(dst: Storage, value: number): void {
    this.#fillRange(this.#st(dst), value);
  }

  #fillRange(d: GpuStorage, value: number): void {
    if (d.length === 0) return;
    this.#run(fillKernel(), [d], [d.length, value], linearGrid(d.length));
  }

  copy(dst: Storage, src: Storage): void {
    const d = this.#st(dst), s = this.#st(src);
    if (d.length !== s.length) throw new RangeError(`copy: lengths ${d.length} and ${s.length}`);
    if (d.length === 0) return;
    this.#run(copyKernel(), [s, d], [d.length], linearGrid(d.length));
  }

  // ---- recording ----------------------------------------------------------------------------

  #ensureEncoder(): GPUCommandEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
      this.#lastPipeline = null;
    }
  }

  /** The binding range of a storage: the whole buffer, or an aligned window when it is too big. */
  #range(s: GpuStorage): { range: BoundRange; elementOffset: number } {
    const buf = s.allocation.buf;
    if (buf.size <= this.#maxBinding) {
      return { range: { buf, start: 0, size: buf.size }, elementOffset: s.offset };
    }
    const start = Math.floor((s.offset * 4) / this.#bindAlign) * this.#bindAlign;
    const end = Math.max(start + 4, (s.offset + s.length) * 4);
    if (end - start > this.#maxBinding) {
      throw new RangeError(
        `webgpu backend: a tensor of ${s.length * 4} bytes exceeds this device's ` +
          `maxStorageBufferBindingSize (${this.#maxBinding} bytes)`,
      );
    }
    const size = Math.min(buf.size - start, this.#maxBinding) & ~3;
    return { range: { buf, start, size }, elementOffset: s.offset - start / 4 };
  }

  /**
   * Records one dispatch of `spec` over `args` (its bindings, in order) with parameter values
   * `values` (after the binding offsets, in the spec's order).
   */
  #run(
    spec: KernelSpec,
    args: readonly GpuStorage[],
    values: readonly ParamValue[],
    grid: readonly [number, number, number],
  ): void {
    this.#check();
    if (args.length !== spec.bindings.length || values.length !== spec.params.length) {
      throw new Error(`webgpu backend: ${spec.key} called with the wrong number of arguments`);
    }
    const ranges: BoundRange[] = [], offsets: number[] = [];
    for (const a of args) {
      if (a.allocation.released) {
        throw new Error("webgpu backend: storage used after it was freed (or its scope ended)");
      }
      const r = this.#range(a);
      ranges.push(r.range);
      offsets.push(r.elementOffset);
    }
    // A buffer written through one binding and read through another must be bound read_write
    // twice: WebGPU forbids mixing read-only and writable storage use of a buffer in a dispatch.
    let allRw = false;
    for (let i = 0; i < args.length && !allRw; i++) {
      if (!spec.bindings[i].write) continue;
      for (let j = 0; j < args.length; j++) {
        if (j !== i && !spec.bindings[j].write && ranges[j].buf === ranges[i].buf) {
          allRw = true;
          break;
        }
      }
    }
    const kernel: CompiledKernel = this.pipelines.get(spec, allRw);
    const slot = this.#arena.slot();
    const layout = paramLayout(spec);
    const nb = spec.bindings.length;
    for (let f = 0; f < layout.fields.length; f++) {
      const field = layout.fields[f], w = slot.word + field.word;
      const v = f < nb ? offsets[f] : values[f - nb];
      switch (field.type) {
        case "u32":
          slot.u32[w] = v as number;
          break;
        case "i32":
          slot.i32[w] = v as number;
          break;
        case "f32":
          slot.f32[w] = v as number;
          break;
        default: {
          const arr = v as readonly number[];
          for (let k = 0; k < arr.length; k++) slot.u32[w + k] = arr[k];
        }
      }
    }
    const group = this.pipelines.bindGroup(kernel, slot.chunk, slot.buffer, ranges);
    const enc = this.#ensureEncoder();
    if (this.#profiler) {
      this.#endPass();
      this.#pass = enc.beginComputePass(this.#profiler.nextPass(this.#label ?? spec.key));
    } else if (!this.#pass) this.#pass = enc.beginComputePass();
    if (this.#lastPipeline !== kernel.pipeline) {
      this.#pass.setPipeline(kernel.pipeline);
      this.#lastPipeline = kernel.pipeline;
    }
    this.#pass.setBindGroup(0, group, [slot.offset]);
    this.#pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    this.#dispatches++;
  }

  #submit(): void {
    if (!this.#encoder) {
      this.#pool.recycle();
      return;
    }
    this.#endPass();
    const device = this.device;
    device.pushErrorScope("validation");
    const stamps = this.#profiler?.beforeSubmit(this.#encoder);
    const cb = this.#encoder.finish();
    this.#arena.upload(device.queue);
    device.queue.submit([cb]);
    stamps?.();
    const check: Promise<void> = device.popErrorScope().then((err) => {
      if (err) this.#fail(new Error(`WebGPU: a submitted step failed validation: ${err.message}`));
    }, () => {}).finally(() => this.#checks.delete(check));
    this.#checks.add(check);
    this.#encoder = null;
    this.#arena.reset();
    this.#pool.recycle();
    this.#submits++;
  }

  flush(): void {
    this.#check();
    this.#submit();
  }

  /**
   * Compiles every kernel with `createComputePipelineAsync` ahead of use (otherwise each compiles
   * synchronously on first use); rejects with a clear Error if one does not compile.
   */
  async warmup(): Promise<void> {
    this.#check();
    await Promise.all(allKernels().map((k) => this.pipelines.compile(k)));
    this.#check();
  }

  /**
   * GPU time per kernel since the backend was made (or the last `profile(true)`), largest first;
   * only with the `profile` option. Waits for the stamps of everything submitted (flush first).
   */
  async profile(reset = false): Promise<KernelTime[]> {
    if (!this.#profiler) {
      throw new Error("webgpu backend: profile() needs the backend created with profile: true");
    }
    return await this.#profiler.report(reset);
  }

  /** Runs `record` with its dispatches labelled `label()` in a profile (built only then). */
  #labelled<T>(label: () => string, record: () => T): T {
    if (!this.#profiler) return record();
    this.#label = label();
    try {
      return record();
    } finally {
      this.#label = null;
    }
  }

  /** Waits until the GPU has finished everything submitted (and reports any error). */
  async sync(): Promise<void> {
    this.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.#lost]);
    await this.#settle();
    this.#check();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#encoder = null;
    this.#pass = null;
    this.#pool.destroy();
    this.#staging.destroy();
    this.#arena.destroy();
    this.#profiler?.destroy();
    this.pipelines.clearBindGroups();
    this.device.destroy();
  }

  // ---- element-wise -------------------------------------------------------------------------

  unary(op: UnaryOp, x: Storage): Storage {
    const a = this.#st(x), out = this.#new(a.length);
    if (a.length) this.#run(unaryKernel(op), [a, out], [a.length], linearGrid(a.length));
    return out;
  }

  unaryBackward(op: UnaryOp, x: Storage, dy: Storage): Storage {
    if (!hasUnaryGrad(op)) throw new Error(`unary op ${op} has no gradient`);
    const a = this.#st(x), g = this.#st(dy), out = this.#new(a.length);
    if (a.length) this.#run(unaryGradKernel(op), [a, g, out], [a.length], linearGrid(a.length));
    return out;
  }

  binary(op: BinaryOp, a: Storage, b: Storage, shapes: BroadcastShapes): Storage {
    const { a: aShape, b: bShape, out: outShape } = shapes;
    const A = this.#st(a), B = this.#st(b);
    const n = sizeOf(outShape), out = this.#new(n);
    if (n === 0) return out;
    if (A.length === n && B.length === n) {
      this.#run(binarySameKernel(op), [A, B, out], [n], linearGrid(n));
      return out;
    }
    const rank = outShape.length;
    if (aShape.length !== rank || bShape.length !== rank) {
      throw new RangeError(`binary ${op}: shapes [${aShape}], [${bShape}] and [${outShape}]`);
    }
    const sa = broadcastStrides(aShape, outShape), sb = broadcastStrides(bShape, outShape);
    // Drop unit axes and merge axes that are contiguous for both operands.
    const dims: { s: number; a: number; b: number }[] = [];
    for (let d = 0; d < rank; d++) {
      if (outShape[d] === 1) continue;
      const last = dims.at(-1);
      if (last && last.a === sa[d] * outShape[d] && last.b === sb[d] * outShape[d]) {
        last.s *= outShape[d];
        last.a = sa[d];
        last.b = sb[d];
      } else dims.push({ s: outShape[d], a: sa[d], b: sb[d] });
    }
    if (dims.length > 8) throw new RangeError(`binary ${op}: more than 8 broadcast axes`);
    this.#run(binaryBroadcastKernel(op), [A, B, out], [
      n,
      dims.length,
      dims.map((d) => d.s),
      dims.map((d) => d.a),
      dims.map((d) => d.b),
    ], linearGrid(n));
    return out;
  }

  affine(x: Storage, scale: number, shift: number): Storage {
    const a = this.#st(x), out = this.#new(a.length);
    if (a.length) {
      this.#run(affineKernel(), [a, out], [a.length, scale, shift], linearGrid(a.length));
    }
    return out;
  }

  axpy(y: Storage, x: Storage, alpha: number): void {
    const Y = this.#st(y), X = this.#st(x);
    if (Y.length !== X.length) throw new RangeError(`axpy: lengths ${Y.length} and ${X.length}`);
    if (Y.length) this.#run(axpyKernel(), [X, Y], [Y.length, alpha], linearGrid(Y.length));
  }

  clamp(x: Storage, lo: number, hi: number): Storage {
    const a = this.#st(x), out = this.#new(a.length);
    if (a.length) this.#run(clampKernel(), [a, out], [a.length, lo, hi], linearGrid(a.length));
    return out;
  }

  reduceSum(x: Storage, shape: readonly number[], outShape: readonly number[]): Storage {
    const X = this.#st(x), outN = sizeOf(outShape), out = this.#new(outN);
    if (outN === 0) return out;
    if (sizeOf(shape) === 0) {
      this.#fillRange(out, 0);
      return out;
    }
    const strides = rowMajorStrides(shape);
    const dims: { s: number; st: number; red: boolean }[] = [];
    for (let d = 0; d < shape.length; d++) {
      if (shape[d] === 1) continue;
      const red = outShape[d] === 1;
      const last = dims.at(-1);
      if (last && last.red === red) {
        last.s *= shape[d];
        last.st = strides[d];
      } else dims.push({ s: shape[d], st: strides[d], red });
    }
    const kept = dims.filter((d) => !d.red), reduced = dims.filter((d) => d.red);
    if (reduced.length === 0) {
      this.#run(copyKernel(), [X, out], [outN], linearGrid(outN));
      return out;
    }
    if (kept.length > 4 || reduced.length > 4) {
      throw new RangeError(`reduceSum: [${shape}] -> [${outShape}] alternates too often`);
    }
    const count = sizeOf(reduced.map((d) => d.s));
    const pad = (a: number[]) => [...a, 0, 0, 0, 0].slice(0, 4);
    const ks = pad(kept.map((d) => d.s)), kst = pad(kept.map((d) => d.st));
    const plan = planReduceSum(outN, count);
    if (plan.kind === "group") {
      const { chunks, chunk, splits } = plan;
      const dst = chunks === 1 ? out : this.#scratch(chunks * outN);
      const [gx, gy] = groupsGrid(outN);
      this.#run(reduceSumGroupKernel(), [X, dst], [
        outN,
        count,
        kept.length,
        reduced.length,
        ks,
        kst,
        pad(reduced.map((d) => d.s)),
        pad(reduced.map((d) => d.st)),
        chunk,
      ], [gx, gy, splits]);
      if (chunks > 1) {
        this.#run(splitSumKernel(), [dst, out], [outN, splits], linearGrid(outN));
      }
    } else {
      const inner = reduced.at(-1)!, outer = reduced.slice(0, -1);
      this.#run(reduceSumThreadKernel(), [X, out], [
        outN,
        sizeOf(outer.map((d) => d.s)),
        kept.length,
        outer.length,
        ks,
        kst,
        pad(outer.map((d) => d.s)),
        pad(outer.map((d) => d.st)),
        inner.s,
        inner.st,
      ], linearGrid(outN));
    }
    return out;
  }

  /** Records a two-pass whole-buffer reduction of `term` over each input into `out[0]`. */
  #reduceAll(
    term: PartialTerm,
    inputs: readonly (readonly GpuStorage[])[],
    out: GpuStorage,
    scale: number,
    delta = 0,
  ): void {
    const groups = inputs.map((xs) => partialSumGroups(xs[0].length));
    const total = groups.reduce((a, b) => a + b, 0);
    if (total === 0) {
      this.#fillRange(out, 0);
      return;
    }
    const part = this.#scratch(total);
    let at = 0;
    inputs.forEach((xs, i) => {
      const slot = new GpuStorage(part.allocation, at, groups[i], true);
      this.#run(partialSumKernel(term), [...xs, slot], [xs[0].length, delta], [groups[i], 1, 1]);
      at += groups[i];
    });
    this.#run(finalSumKernel(), [part, out], [total, scale], [1, 1, 1]);
  }

  sumSquares(xs: readonly Storage[]): Storage {
    const out = this.#new(1);
    const list = xs.map((x) => this.#st(x)).filter((x) => x.length > 0).map((x) => [x]);
    if (list.length === 0) this.#fillRange(out, 0);
    else this.#reduceAll("square", list, out, 1);
    return out;
  }

  permute(x: Storage, shape: readonly number[], perm: readonly number[]): Storage {
    const X = this.#st(x), n = X.length, out = this.#new(n);
    if (n === 0) return out;
    const inStrides = rowMajorStrides(shape);
    const dims: { s: number; st: number }[] = [];
    for (const p of perm) {
      const s = shape[p], st = inStrides[p];
      if (s === 1) continue;
      const last = dims.at(-1);
      if (last && last.st === st * s) {
        last.s *= s;
        last.st = st;
      } else dims.push({ s, st });
    }
    if (dims.length > 8) throw new RangeError("permute: more than 8 axes");
    this.#run(permuteKernel(), [X, out], [
      n,
      dims.length,
      dims.map((d) => d.s),
      dims.map((d) => d.st),
    ], linearGrid(n));
    return out;
  }

  // ---- linear algebra -----------------------------------------------------------------------

  matmul(a: Storage, b: Storage, mm: MatmulSpec): Storage {
    const { batch, m, k, n, transA, transB, batchA, batchB } = fullMatmulSpec(mm);
    const A = this.#st(a), B = this.#st(b), out = this.#new(batch * m * n);
    if (batch * m * n === 0) return out;
    if (A.length < (batchA ? batch : 1) * m * k || B.length < (batchB ? batch : 1) * k * n) {
      throw new RangeError(
        `matmul: operands of ${A.length} and ${B.length} elements are too small for ` +
          `batch ${batch}, ${m}x${k} @ ${k}x${n}`,
      );
    }
    if (k === 0) {
      this.#fillRange(out, 0);
      return out;
    }
    const tile = chooseTile(m, n, batch);
    const spec = matmulKernel(tile);
    const gx = Math.ceil(n / tile.bn), gy = Math.ceil(m / tile.bm);
    const label = () =>
      `matmul ${batch}x ${m}x${k} @ ${k}x${n}${transA ? " tA" : ""}${transB ? " tB" : ""}`;
    this.#labelled(label, () => {
      const maxZ = MAX_WORKGROUPS_PER_DIMENSION;
      for (let z0 = 0; z0 < batch; z0 += maxZ) {
        const zs = Math.min(maxZ, batch - z0);
        this.#run(spec, [A, B, out], [
          m,
          n,
          k,
          k,
          z0,
          batchA ? m * k : 0,
          transA ? 1 : k,
          transA ? m : 1,
          batchB ? k * n : 0,
          transB ? 1 : n,
          transB ? k : 1,
          transA ? 0 : 1,
          transB ? 0 : 1,
        ], [gx, gy, zs]);
      }
    });
    return out;
  }

  // ---- convolution --------------------------------------------------------------------------

  /** The shape a convolution kernel is compiled for (null: generic). */
  #convShape(g: Conv2dGeometry): ConvShape | null {
    return this.#specialize ? g : null;
  }

  #convParams(g: Conv2dGeometry): number[] {
    return [g.c, g.h, g.w, g.o, g.kh, g.kw, g.oh, g.ow, g.stride, g.pad];
  }

  conv2d(x: Storage, w: Storage, bias: Storage | null, g: Conv2dGeometry): Storage {
    const X = this.#st(x), W = this.#st(w), Bv = bias ? this.#st(bias) : null;
    const M = g.o, N = g.n * g.oh * g.ow, K = g.c * g.kh * g.kw;
    const out = this.#new(M * N);
    if (M * N === 0) return out;
    this.#convProduct(
      () => convLabel("fwd", g),
      (t) => convForwardKernel(t, this.#convShape(g)),
      [X, W, Bv ?? W],
      out,
      [M, N, K],
      [...this.#convParams(g), Bv ? 1 : 0],
      SPLIT_WHEN_FEW,
    );
    return out;
  }

  conv2dBackwardData(dy: Storage, w: Storage, g: Conv2dGeometry): Storage {
    const D = this.#st(dy), W = this.#st(w);
    const M = g.c, N = g.n * g.h * g.w, K = g.o * g.kh * g.kw;
    const out = this.#new(M * N);
    if (M * N === 0) return out;
    this.#convProduct(
      () => convLabel("dX", g),
      (t) => convDataKernel(t, this.#convShape(g)),
      [D, W],
      out,
      [M, N, K],
      this.#convParams(g),
      SPLIT_WHEN_FEW,
    );
    return out;
  }

  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    const X = this.#st(x), D = this.#st(dy);
    const M = g.o, N = g.c * g.kh * g.kw, K = g.n * g.oh * g.ow;
    const out = this.#new(M * N);
    if (M * N === 0) return out;
    this.#convProduct(
      () => convLabel("dW", g),
      (t) => convFilterKernel(t, this.#convShape(g)),
      [D, X],
      out,
      [M, N, K],
      this.#convParams(g),
      SPLIT_FILTER,
    );
    return out;
  }

  /**
   * Records one convolution product (an M x N output, depth K) on the kernel `make` builds for the
   * tile `planSplitK` picks under `split`; with K split, the splits' partials go to scratch and are
   * summed into `out` after.
   */
  #convProduct(
    label: () => string,
    make: (tile: GemmTile) => KernelSpec,
    inputs: GpuStorage[],
    out: GpuStorage,
    [M, N, K]: [number, number, number],
    params: number[],
    split: SplitRule,
  ): void {
    const { tile, splits, kChunk } = planSplitK(M, N, K, split);
    const dst = splits === 1 ? out : this.#scratch(splits * M * N);
    const grid: [number, number, number] = [Math.ceil(N / tile.bn), Math.ceil(M / tile.bm), splits];
    this.#labelled(
      label,
      () => this.#run(make(tile), [...inputs, dst], [M, N, K, kChunk, 0, ...params], grid),
    );
    if (splits > 1) {
      this.#run(splitSumKernel(), [dst, out], [M * N, splits], linearGrid(M * N));
    }
  }

  // ---- normalisation and softmax ------------------------------------------------------------

  #gnParams(g: GroupNormGeometry, count: number): number[] {
    if (g.c % g.groups !== 0) {
      throw new RangeError(`groupNorm: ${g.groups} groups do not divide ${g.c} channels`);
    }
    return [g.c, g.hw, g.groups, g.c / g.groups, count, g.eps];
  }

  /** The storage of a group norm's optional shift, its length checked. */
  #gnShift(g: GroupNormGeometry, shift?: Storage): GpuStorage | null {
    if (!shift) return null;
    const S = this.#st(shift);
    checkGroupNormShift(g, S.length);
    return S;
  }

  groupNorm(x: Storage, p: GroupNormParams, g: GroupNormGeometry): GroupNormResult {
    const { gamma, beta, shift } = p;
    const X = this.#st(x), G = this.#st(gamma), Bt = this.#st(beta), S = this.#gnShift(g, shift);
    const y = this.#new(X.length),
      mean = this.#new(g.n * g.groups),
      rstd = this.#new(g.n * g.groups);
    const count = g.n * g.groups;
    if (count > 0) {
      this.#run(
        groupNormKernel(g.silu === true, S !== null),
        S ? [X, G, Bt, S, y, mean, rstd] : [X, G, Bt, y, mean, rstd],
        this.#gnParams(g, count),
        groupsGrid(count),
      );
    }
    return { y, mean, rstd };
  }

  groupNormBackward(dy: Storage, saved: GroupNormSaved, g: GroupNormGeometry): GroupNormGrads {
    const { x, gamma, beta, shift, mean, rstd } = saved;
    const D = this.#st(dy), X = this.#st(x), G = this.#st(gamma);
    const M = this.#st(mean), R = this.#st(rstd), S = this.#gnShift(g, shift);
    const silu = g.silu === true;
    if (silu && !beta) throw new TypeError("groupNormBackward: a fused SiLU needs beta");
    const Bt = silu ? this.#st(beta!) : null;
    const dx = this.#new(X.length), dgamma = this.#new(g.c), dbeta = this.#new(g.c);
    const nc = g.n * g.c;
    const dshift = S ? this.#new(nc) : null;
    if (nc === 0) {
      this.#fillRange(dgamma, 0);
      this.#fillRange(dbeta, 0);
      return dshift ? { dx, dgamma, dbeta, dshift } : { dx, dgamma, dbeta };
    }
    // Per (sample, channel): the sums of dz and dz * xhat, and with a shift the channel's centre.
    const part = this.#scratch((S ? 3 : 2) * nc);
    const affine = Bt ? [G, Bt] : [];
    this.#run(
      groupNormChannelSumsKernel(silu, S !== null),
      [D, X, ...affine, ...(S ? [S] : []), M, R, part],
      this.#gnParams(g, nc),
      groupsGrid(nc),
    );
    const ng = g.n * g.groups;
    if (S && dshift) {
      this.#run(
        groupNormShiftDxKernel(silu),
        Bt ? [D, X, G, Bt, R, part, dx, dshift] : [D, X, G, R, part, dx, dshift],
        [...this.#gnParams(g, ng), nc],
        groupsGrid(ng),
      );
    } else {
      this.#run(
        groupNormDxKernel(silu),
        Bt ? [D, X, G, Bt, M, R, part, dx] : [D, X, G, M, R, part, dx],
        [...this.#gnParams(g, ng), nc],
        groupsGrid(ng),
      );
    }
    this.#run(groupNormAffineGradKernel(), [part, dgamma, dbeta], [g.c, g.n], groupsGrid(g.c));
    return dshift ? { dx, dgamma, dbeta, dshift } : { dx, dgamma, dbeta };
  }

  softmax(x: Storage, rows: number, cols: number): Storage {
    const X = this.#st(x), out = this.#new(rows * cols);
    if (rows * cols) this.#run(softmaxKernel(), [X, out], [rows, cols], groupsGrid(rows));
    return out;
  }

  softmaxBackward(y: Storage, dy: Storage, rows: number, cols: number): Storage {
    const Y = this.#st(y), D = this.#st(dy), out = this.#new(rows * cols);
    if (rows * cols) this.#run(softmaxGradKernel(), [Y, D, out], [rows, cols], groupsGrid(rows));
    return out;
  }

  // ---- resampling and layout ----------------------------------------------------------------

  upsampleNearest(x: Storage, u: UpsampleSpec): Storage {
    const { planes, h, w, factor } = u;
    const X = this.#st(x), n = planes * h * w * factor * factor, out = this.#new(n);
    if (n) this.#run(upsampleKernel(), [X, out], [n, h, w, factor], linearGrid(n));
    return out;
  }

  upsampleNearestBackward(dy: Storage, u: UpsampleSpec): Storage {
    const { planes, h, w, factor } = u;
    const D = this.#st(dy), n = planes * h * w, out = this.#new(n);
    if (n) this.#run(upsampleGradKernel(), [D, out], [n, h, w, factor], linearGrid(n));
    return out;
  }

  concat(xs: readonly Storage[], c: ConcatSpec): Storage {
    const { outer, sizes, inner } = c;
    const total = sizes.reduce((a, b) => a + b, 0);
    const out = this.#new(outer * total * inner);
    let off = 0;
    xs.forEach((x, i) => {
      const X = this.#st(x), len = sizes[i] * inner, n = outer * len;
      if (n > 0) {
        this.#run(blockCopyKernel(), [X, out], [n, len, len, 0, total * inner, off], linearGrid(n));
      }
      off += len;
    });
    return out;
  }

  slice(x: Storage, sl: SliceSpec): Storage {
    const { outer, axis, start, len, inner } = sl;
    const X = this.#st(x), n = outer * len * inner, out = this.#new(n);
    if (n) {
      this.#run(blockCopyKernel(), [X, out], [
        n,
        len * inner,
        axis * inner,
        start * inner,
        len * inner,
        0,
      ], linearGrid(n));
    }
    return out;
  }

  gather(table: Storage, index: Storage): Storage {
    const T = this.#st(table), I = this.#st(index), out = this.#new(I.length);
    if (I.length) {
      this.#run(gatherKernel(), [T, I, out], [I.length, T.length], linearGrid(I.length));
    }
    return out;
  }

  gatherRows(src: Storage, index: Storage, rowSize: number): Storage {
    const S = this.#st(src), I = this.#st(index), n = I.length * rowSize, out = this.#new(n);
    if (n) {
      this.#run(
        gatherRowsKernel(),
        [S, I, out],
        [n, rowSize, Math.floor(S.length / rowSize)],
        linearGrid(n),
      );
    }
    return out;
  }

  // ---- losses -------------------------------------------------------------------------------

  loss(spec: LossSpec, pred: Storage, target: Storage): Storage {
    const { kind, delta } = spec;
    const P = this.#st(pred), T = this.#st(target), out = this.#new(1);
    if (P.length !== T.length) throw new RangeError(`loss: lengths ${P.length} and ${T.length}`);
    if (P.length === 0) this.#fillRange(out, NaN);
    else this.#reduceAll(kind, [[P, T]], out, 1 / P.length, delta);
    return out;
  }

  lossBackward(spec: LossSpec, pred: Storage, target: Storage, scale: Storage): Storage {
    const { kind, delta } = spec;
    const P = this.#st(pred), T = this.#st(target), S = this.#st(scale), out = this.#new(P.length);
    if (P.length) {
      this.#run(lossGradKernel(kind), [P, T, S, out], [P.length, delta], linearGrid(P.length));
    }
    return out;
  }

  // ---- optimisation -------------------------------------------------------------------------

  adam(b: AdamBuffers, s: AdamSettings): void {
    const { params, grads, m, v } = b;
    const P = this.#st(params), G = this.#st(grads), M = this.#st(m), V = this.#st(v);
    const n = P.length;
    if (G.length !== n || M.length !== n || V.length !== n) {
      throw new RangeError(`adam: lengths ${n}, ${G.length}, ${M.length}, ${V.length} differ`);
    }
    if (n === 0) return;
    const values = [
      n,
      s.decoupled ? 1 : 0,
      s.lr,
      s.beta1,
      1 - s.beta1,
      s.beta2,
      1 - s.beta2,
      s.eps,
      s.weightDecay,
      s.lr * s.weightDecay,
      1 - s.beta1 ** s.step,
      1 - s.beta2 ** s.step,
      s.clip ? s.clip.maxNorm : 0,
    ];
    const args = [P, G, M, V];
    if (s.clip) args.push(this.#st(s.clip.gradSquaredNorm));
    this.#run(adamKernel(s.clip !== null), args, values, linearGrid(n));
  }

  ema(target: Storage, source: Storage, decay: number): void {
    const T = this.#st(target), S = this.#st(source);
    if (T.length !== S.length) throw new RangeError(`ema: lengths ${T.length} and ${S.length}`);
    if (T.length) {
      this.#run(emaKernel(), [T, S], [T.length, decay, 1 - decay], linearGrid(T.length));
    }
  }

  // ---- random numbers -----------------------------------------------------------------------

  #random(kind: RandomKind, out: Storage, draw: RandomDraw, lo: number, range: number): void {
    const O = this.#st(out);
    const [k0, k1] = seedKey(draw.seed);
    if (!Number.isSafeInteger(draw.counter) || draw.counter < 0) {
      throw new RangeError(`random counter must be a non-negative integer, got ${draw.counter}`);
    }
    if (O.length === 0) return;
    const blocks = Math.ceil(O.length / LANES);
    this.#run(randomKernel(kind), [O], [
      blocks,
      O.length,
      draw.counter >>> 0,
      Math.floor(draw.counter / 4294967296) >>> 0,
      draw.stream >>> 0,
      k0,
      k1,
      lo,
      range,
    ], linearGrid(blocks));
  }

  randomUniform(out: Storage, draw: RandomDraw): void {
    this.#random("uniform", out, draw, 0, 1);
  }

  randomNormal(out: Storage, draw: RandomDraw): void {
    this.#random("normal", out, draw, 0, 1);
  }

  randomInt(out: Storage, draw: RandomDraw, lo: number, hi: number): void {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo || hi - lo > 2 ** 24) {
      throw new RangeError(
        `randomInt: need integers lo < hi with hi - lo <= 2^24, got [${lo}, ${hi})`,
      );
    }
    this.#random("int", out, draw, lo, hi - lo);
  }
}

/**
 * Opens the WebGPU backend on the best adapter. Throws a clear Error when there is no adapter, or
 * when the only one is a software adapter (llvmpipe, SwiftShader) and `allowFallbackAdapter` is
 * not set: such adapters are slower than the WASM backend.
 */
export async function createWebGpuBackend(options: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const found = await findAdapter();
  if (!found.adapter) throw new Error(`WebGPU backend unavailable: ${found.reason}`);
  const { adapter, report } = found;
  if (report.isFallbackAdapter && !options.allowFallbackAdapter) {
    throw new Error(
      `WebGPU backend unavailable: the only adapter is a software one (${report.description}); ` +
        `use the wasm backend, or pass allowFallbackAdapter: true to use it anyway`,
    );
  }
  const profile = options.profile ?? false;
  const device = await openDevice(adapter, report, profile ? ["timestamp-query"] : []);
  return new WebGpuBackend(device, report, {
    profile,
    specializeShapes: options.specializeShapes,
  });
}

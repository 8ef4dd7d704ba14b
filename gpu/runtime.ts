/**
 * The `webgpu` backend's runtime, shared by its op groups (gpu/ops/): the device, the pooled
 * tensor and read-back buffers, the kernel-parameter arena, the pipeline cache, the one command
 * encoder that kernel calls record into (with its open compute pass), submits, reads, scopes,
 * error checks, device loss and the optional profiler.
 *
 * A storage handle is (buffer, element offset, length). Offsets go to kernels in their parameter
 * block, so views at any element offset work; buffers are bound whole (or, past the device's
 * binding limit, as an aligned window around the view).
 *
 * @module
 */

import type { Storage } from "../src/backend.ts";
import { DeviceLostError } from "../src/errors.ts";
import { type Scoped, ScopeStack } from "../src/backends/scopes.ts";
import { BufferPool, type PooledBuffer } from "./buffer_pool.ts";
import type { AdapterReport } from "./device.ts";
import { fillKernel } from "./kernels/elementwise.ts";
import { ParamArena } from "./param_arena.ts";
import { type BoundRange, type CompiledKernel, PipelineCache } from "./pipeline_cache.ts";
import { MAX_DISPATCHES_PER_SUBMIT, specializeShapes } from "./policy.ts";
import { KernelProfiler, type KernelTime } from "./profiler.ts";
import { type KernelSpec, linearGrid, paramLayout, type ParamValue } from "./wgsl.ts";

/** One pooled allocation; views share it. */
export class Allocation implements Scoped {
  /** The pooled buffer. */
  readonly buf: PooledBuffer;
  /** True once the buffer went back to the pool. */
  released = false;
  /** Wraps a pooled buffer. */
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

/** A dispatch's grid of workgroups. */
export type Grid = readonly [number, number, number];

/** How a runtime runs: see the options of the same names in `WebGpuOptions`. */
export interface RuntimeOptions {
  /** Time every dispatch (needs the device opened with "timestamp-query"). */
  profile?: boolean;
  /** Compile each convolution for its shape (default: on hardware adapters only). */
  specializeShapes?: boolean;
}

/** Counters: submits, dispatches, pooled buffers and bytes, cached pipelines and bind groups. */
export interface GpuStats {
  /** Command buffers submitted. */
  submits: number;
  /** Dispatches recorded. */
  dispatches: number;
  /** Pooled tensor buffers. */
  buffers: number;
  /** Bytes of the pooled tensor buffers. */
  bytes: number;
  /** Compiled pipelines. */
  pipelines: number;
  /** Cached bind groups. */
  bindGroups: number;
}

/** The data as a Float32Array over a plain ArrayBuffer (what writeBuffer accepts). */
function toF32(data: ArrayLike<number>): Float32Array<ArrayBuffer> {
  if (data instanceof Float32Array && data.buffer instanceof ArrayBuffer) {
    return data as Float32Array<ArrayBuffer>;
  }
  return Float32Array.from(data);
}

/** What the op groups record through: storage, dispatches, submits, reads. */
export class GpuRuntime {
  /** The device. */
  readonly device: GPUDevice;
  /** The adapter in use. */
  readonly adapterInfo: AdapterReport;
  /** The pipeline cache (exposed for warm-up and tests). */
  readonly pipelines: PipelineCache;
  /** Whether convolutions are compiled for their shape. */
  readonly specializeShapes: boolean;

  readonly #pool: BufferPool;
  readonly #staging: BufferPool;
  readonly #arena: ParamArena;
  readonly #maxBinding: number;
  readonly #bindAlign: number;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #lastPipeline: GPUComputePipeline | null = null;
  readonly #scopes = new ScopeStack<Allocation>("webgpu");
  #failure: Error | null = null;
  #disposed = false;
  readonly #checks = new Set<Promise<void>>();
  readonly #lost: Promise<never>;
  #submits = 0;
  #dispatches = 0;
  readonly #profiler: KernelProfiler | null;
  /** The label of the next dispatches in a profile (set around products and convolutions). */
  #label: string | null = null;

  /**
   * A runtime on an open device; `profile` needs the device opened with the "timestamp-query"
   * feature.
   */
  constructor(device: GPUDevice, adapterInfo: AdapterReport, options: RuntimeOptions = {}) {
    this.device = device;
    this.adapterInfo = adapterInfo;
    this.#profiler = options.profile ? new KernelProfiler(device) : null;
    this.specializeShapes = specializeShapes(
      options.specializeShapes,
      adapterInfo.isFallbackAdapter,
    );
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
      const e = this.#disposed
        ? new Error("webgpu backend: used after dispose()")
        : new DeviceLostError(
          `WebGPU device lost (${info.reason}): ${
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
    // A lost device explains every error after it and may follow errors it caused: it wins.
    if (!this.#failure || e instanceof DeviceLostError) this.#failure = e;
  }

  /** Throws the first failure (a compile, a submit, device loss) or use after dispose. */
  check(): void {
    if (this.#failure) throw this.#failure;
    if (this.#disposed) throw new Error("webgpu backend: used after dispose()");
  }

  /** Counters: submits, dispatches, pooled buffers and bytes, cached pipelines and bind groups. */
  stats(): GpuStats {
    return {
      submits: this.#submits,
      dispatches: this.#dispatches,
      ...this.#pool.stats(),
      ...this.pipelines.stats(),
    };
  }

  // ---- storage ------------------------------------------------------------------------------

  /** `s` as this backend's storage, checked to be live. */
  storage(s: Storage): GpuStorage {
    if (!(s instanceof GpuStorage)) {
      throw new TypeError("webgpu backend: got storage from another backend");
    }
    if (s.allocation.released) {
      throw new Error("webgpu backend: storage used after it was freed (or its scope ended)");
    }
    return s;
  }

  /** New storage of `length` elements; zeroed when `zero` (only needed for reused buffers). */
  alloc(length: number, zero = false): GpuStorage {
    this.check();
    // Code that never flushes still submits now and then (here, before the op acquires any
    // scratch buffer, so the submit cannot recycle one its later dispatches use).
    if (this.#arena.used >= MAX_DISPATCHES_PER_SUBMIT || this.#profiler?.nearlyFull) {
      this.#submit();
    }
    const { buf, fresh } = this.#pool.acquire(Math.max(1, length) * 4);
    const a = new Allocation(buf);
    this.#scopes.track(a);
    const s = new GpuStorage(a, 0, length, false);
    if (zero && !fresh && length > 0) this.fill(s, 0);
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
  scratch(length: number): GpuStorage {
    const { buf } = this.#pool.acquire(Math.max(1, length) * 4);
    const a = new Allocation(buf);
    this.#pool.release(buf);
    return new GpuStorage(a, 0, length, false);
  }

  /** Frees `s` now (views are ignored, and so is storage freed already). */
  free(s: Storage): void {
    if (!(s instanceof GpuStorage)) {
      throw new TypeError("webgpu backend: got storage from another backend");
    }
    if (s.isView || s.allocation.released) return;
    this.#release(s.allocation);
  }

  /** Opens a scope: storage allocated until its end is freed then, unless kept. */
  beginScope(): void {
    this.#scopes.begin();
  }

  /** Closes the innermost scope, freeing its storage except `keep`, which passes to the parent. */
  endScope(keep: readonly Storage[] = []): void {
    const kept = new Set<Allocation>();
    for (const k of keep) if (k instanceof GpuStorage) kept.add(k.allocation);
    this.#scopes.end(kept, (a) => this.#release(a));
  }

  /** New storage holding `data`. */
  upload(data: ArrayLike<number>): GpuStorage {
    const s = this.alloc(data.length);
    if (data.length > 0) {
      this.device.queue.writeBuffer(s.buffer, 0, toF32(data));
    }
    return s;
  }

  /** Writes `data` at element `offset` of `dst`, after every kernel recorded before. */
  write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
    this.check();
    const d = this.storage(dst);
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
    const tmp = this.scratch(data.length);
    this.device.queue.writeBuffer(tmp.buffer, 0, f);
    this.#endPass();
    this.#encoder.copyBufferToBuffer(tmp.buffer, 0, d.buffer, at, f.byteLength);
  }

  /** Submits everything recorded, then copies `src` back: the only call that waits for the GPU. */
  async read(src: Storage): Promise<Float32Array> {
    this.check();
    const s = this.storage(src);
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
      this.check();
      throw new Error(`webgpu backend: reading back failed: ${(e as Error).message}`);
    }
    const out = new Float32Array(buf.buffer.getMappedRange(0, bytes).slice(0));
    buf.buffer.unmap();
    this.#staging.releaseNow(buf);
    await this.#settle();
    this.check();
    return out;
  }

  /** Waits for every outstanding error check (compiles, submits). */
  async #settle(): Promise<void> {
    while (this.#checks.size > 0 || this.pipelines.pending.size > 0) {
      await Promise.all([...this.#checks, ...this.pipelines.pending]);
    }
  }

  /** Records a fill of `d` with `value` (nothing for empty storage). */
  fill(d: GpuStorage, value: number): void {
    if (d.length === 0) return;
    this.run(fillKernel(), [d], [d.length, value], linearGrid(d.length));
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
  run(
    spec: KernelSpec,
    args: readonly GpuStorage[],
    values: readonly ParamValue[],
    grid: Grid,
  ): void {
    this.check();
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

  /** Runs `record` with its dispatches labelled `label()` in a profile (built only then). */
  labelled<T>(label: () => string, record: () => T): T {
    if (!this.#profiler) return record();
    this.#label = label();
    try {
      return record();
    } finally {
      this.#label = null;
    }
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

  /** Submits everything recorded. */
  flush(): void {
    this.check();
    this.#submit();
  }

  /** Compiles `kernels` with `createComputePipelineAsync`; rejects if one does not compile. */
  async warmup(kernels: readonly KernelSpec[]): Promise<void> {
    this.check();
    await Promise.all(kernels.map((k) => this.pipelines.compile(k)));
    this.check();
  }

  /** GPU time per kernel (see `WebGpuBackend.profile`); only with the `profile` option. */
  async profile(reset = false): Promise<KernelTime[]> {
    if (!this.#profiler) {
      throw new Error("webgpu backend: profile() needs the backend created with profile: true");
    }
    return await this.#profiler.report(reset);
  }

  /** Waits until the GPU has finished everything submitted (and reports any error). */
  async sync(): Promise<void> {
    this.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.#lost]);
    await this.#settle();
    this.check();
  }

  /** Releases every buffer and the device; later calls throw. */
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
}

/**
 * Compute pipelines cached by kernel key (every shape specialisation is part of the key), their
 * bind-group layouts cached by signature, and bind groups cached by the buffers they bind, so a
 * step that replays the same kernels on the same pooled buffers creates nothing.
 *
 * Pipeline creation is synchronous (kernel calls record synchronously), inside a validation error
 * scope whose result is reported through `onError`: a kernel that fails to compile surfaces as a
 * clear Error at the next flush or read instead of silently doing nothing.
 *
 * @module
 */

import type { PooledBuffer } from "./buffer_pool.ts";
import { kernelSource, type KernelSpec, PARAM_SLOT_BYTES, paramLayout } from "./wgsl.ts";

/** A compiled kernel. */
export interface CompiledKernel {
  /** The spec it came from. */
  readonly spec: KernelSpec;
  /** The pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** Its bind-group layout. */
  readonly layout: GPUBindGroupLayout;
  /** Cache key of the layout. */
  readonly layoutKey: string;
}

/** A storage binding: a buffer and the byte range bound. */
export interface BoundRange {
  /** The buffer. */
  readonly buf: PooledBuffer;
  /** First byte bound (0, or a window start for buffers larger than a binding may be). */
  readonly start: number;
  /** Bytes bound. */
  readonly size: number;
}

/** Caches pipelines, layouts and bind groups of one device. */
export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #onError: (e: Error) => void;
  readonly #pipelines = new Map<string, CompiledKernel>();
  readonly #layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  readonly #groups = new Map<string, GPUBindGroup>();
  /** Pipeline checks not yet resolved. */
  readonly pending: Set<Promise<void>> = new Set();
  /** Bind groups cached at most: the cache is emptied when it holds this many. */
  static readonly MAX_GROUPS = 50_000;

  /** A cache on `device`; compile errors go to `onError`. */
  constructor(device: GPUDevice, onError: (e: Error) => void) {
    this.#device = device;
    this.#onError = onError;
  }

  /** Number of pipelines and bind groups cached. */
  stats(): { pipelines: number; bindGroups: number } {
    return { pipelines: this.#pipelines.size, bindGroups: this.#groups.size };
  }

  #layout(
    spec: KernelSpec,
    allRw: boolean,
  ): { key: string; bgl: GPUBindGroupLayout; pl: GPUPipelineLayout } {
    const modes = spec.bindings.map((b) => (b.write || allRw ? "w" : "r")).join("");
    const bytes = paramLayout(spec).bytes;
    const key = `${bytes}:${modes}`;
    let l = this.#layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [{
        binding: 0,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: bytes },
      }];
      spec.bindings.forEach((b, i) =>
        entries.push({
          binding: i + 1,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: b.write || allRw ? "storage" : "read-only-storage" },
        })
      );
      const bgl = this.#device.createBindGroupLayout({ entries, label: `layout ${key}` });
      const pl = this.#device.createPipelineLayout({ bindGroupLayouts: [bgl] });
      this.#layouts.set(key, l = { bgl, pl });
    }
    return { key, ...l };
  }

  /** The compiled kernel of `spec`; `allRw` binds every storage buffer read-write (aliasing). */
  get(spec: KernelSpec, allRw: boolean): CompiledKernel {
    const key = allRw ? `${spec.key}#rw` : spec.key;
    let k = this.#pipelines.get(key);
    if (k) return k;
    const { key: layoutKey, bgl, pl } = this.#layout(spec, allRw);
    const device = this.#device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code: kernelSource(spec, allRw), label: key });
    const pipeline = device.createComputePipeline({
      layout: pl,
      compute: { module, entryPoint: "main" },
      label: key,
    });
    const check = device.popErrorScope().then((err) => {
      if (err) {
        this.#onError(new Error(`WebGPU: the ${key} kernel failed to compile: ${err.message}`));
      }
    }, () => {}).finally(() => this.pending.delete(check));
    this.pending.add(check);
    k = { spec, pipeline, layout: bgl, layoutKey };
    this.#pipelines.set(key, k);
    return k;
  }

  /**
   * Compiles `spec` with `createComputePipelineAsync` and caches it; rejects with a clear Error if
   * it does not compile. Used to warm the cache and to test the asynchronous path.
   */
  async compile(spec: KernelSpec, allRw = false): Promise<CompiledKernel> {
    const key = allRw ? `${spec.key}#rw` : spec.key;
    const have = this.#pipelines.get(key);
    if (have) return have;
    const { key: layoutKey, bgl, pl } = this.#layout(spec, allRw);
    this.#device.pushErrorScope("validation");
    const module = this.#device.createShaderModule({ code: kernelSource(spec, allRw), label: key });
    const moduleError = this.#device.popErrorScope();
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await this.#device.createComputePipelineAsync({
        layout: pl,
        compute: { module, entryPoint: "main" },
        label: key,
      });
    } catch (e) {
      await moduleError.catch(() => null);
      const info = await module.getCompilationInfo().catch(() => null);
      const msgs = info?.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ");
      throw new Error(
        `WebGPU: the ${key} kernel failed to compile: ${(e as Error).message}${
          msgs ? ` (${msgs})` : ""
        }`,
      );
    }
    await moduleError.catch(() => null);
    const k = { spec, pipeline, layout: bgl, layoutKey };
    this.#pipelines.set(key, k);
    return k;
  }

  /** The bind group of `kernel` over the parameter arena chunk `params` and `ranges`. */
  bindGroup(
    kernel: CompiledKernel,
    paramsIndex: number,
    params: GPUBuffer,
    ranges: readonly BoundRange[],
  ): GPUBindGroup {
    let key = `${kernel.layoutKey}|${paramsIndex}`;
    for (const r of ranges) {
      key += r.start === 0 && r.size === r.buf.size
        ? `|${r.buf.id}`
        : `|${r.buf.id}@${r.start}+${r.size}`;
    }
    let g = this.#groups.get(key);
    if (g) return g;
    if (this.#groups.size >= PipelineCache.MAX_GROUPS) this.#groups.clear();
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: params, offset: 0, size: PARAM_SLOT_BYTES },
    }];
    ranges.forEach((r, i) =>
      entries.push({
        binding: i + 1,
        resource: { buffer: r.buf.buffer, offset: r.start, size: r.size },
      })
    );
    g = this.#device.createBindGroup({ layout: kernel.layout, entries });
    this.#groups.set(key, g);
    return g;
  }

  /** Drops every cached bind group (buffers were destroyed). */
  clearBindGroups(): void {
    this.#groups.clear();
  }
}

/**
 * The `webgpu` backend's memory kernels: storage in pooled GPU buffers (views share a buffer at an
 * element offset), scopes, writes ordered after the kernels recorded before them, reads (the only
 * call that waits for the GPU), fills and copies as dispatches.
 *
 * @module
 */

import type { MemoryOps, Storage } from "../../src/backend.ts";
import { copyKernel } from "../kernels/elementwise.ts";
import { type GpuRuntime, GpuStorage } from "../runtime.ts";
import { linearGrid } from "../wgsl.ts";

/** The memory kernels, reads typed as float32 (the only element type of the backend). */
export interface GpuMemoryOps extends MemoryOps {
  /** Submits everything recorded, then copies `src` back. */
  read(src: Storage): Promise<Float32Array>;
}

/** The `webgpu` backend's memory kernels on `rt`. */
export function memoryOps(rt: GpuRuntime): GpuMemoryOps {
  return {
    alloc(length: number): Storage {
      return rt.alloc(length, true);
    },

    upload(data: ArrayLike<number>): Storage {
      return rt.upload(data);
    },

    write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
      rt.write(dst, data, offset);
    },

    read(src: Storage): Promise<Float32Array> {
      return rt.read(src);
    },

    view(src: Storage, offset: number, length: number): Storage {
      const s = rt.storage(src);
      if (offset < 0 || length < 0 || offset + length > s.length) {
        throw new RangeError(
          `view [${offset}, ${offset + length}) is outside storage of ${s.length}`,
        );
      }
      return new GpuStorage(s.allocation, s.offset + offset, length, true);
    },

    free(s: Storage): void {
      rt.free(s);
    },

    beginScope(): void {
      rt.beginScope();
    },

    endScope(keep: readonly Storage[] = []): void {
      rt.endScope(keep);
    },

    fill(dst: Storage, value: number): void {
      rt.fill(rt.storage(dst), value);
    },

    copy(dst: Storage, src: Storage): void {
      const d = rt.storage(dst), s = rt.storage(src);
      if (d.length !== s.length) throw new RangeError(`copy: lengths ${d.length} and ${s.length}`);
      if (d.length === 0) return;
      rt.run(copyKernel(), [s, d], [d.length], linearGrid(d.length));
    },

    flush(): void {
      rt.flush();
    },

    dispose(): void {
      rt.dispose();
    },
  };
}

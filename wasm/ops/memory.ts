/**
 * The wasm backend's memory kernels: storage is a range of the one WebAssembly memory, allocated by
 * the runtime's heap, read and written through the runtime's typed-array views; scopes release
 * what was allocated inside them.
 *
 * @module
 */

import type { MemoryOps, Storage } from "../../src/backend.ts";
import type { WasmRuntime } from "../runtime.ts";

/** The wasm backend's memory kernels (`read` gives float32). */
export interface WasmMemoryOps extends MemoryOps {
  /** A copy of the values of `src`. */
  read(src: Storage): Promise<Float32Array>;
}

/** The wasm backend's memory kernels over runtime `rt`. */
export function memoryOps(rt: WasmRuntime): WasmMemoryOps {
  return {
    alloc(length: number): Storage {
      return rt.zeros(length);
    },

    upload(data: ArrayLike<number>): Storage {
      const s = rt.uninit(data.length);
      rt.f32.set(data, s.ptr >> 2);
      return s;
    },

    write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
      const d = rt.s(dst);
      if (offset < 0 || offset + data.length > d.length) {
        throw new RangeError(
          `write of ${data.length} values at ${offset} is outside storage of ${d.length}`,
        );
      }
      rt.f32.set(data, (d.ptr >> 2) + offset);
    },

    read(src: Storage): Promise<Float32Array> {
      const s = rt.s(src);
      return Promise.resolve(rt.f32.slice(s.ptr >> 2, (s.ptr >> 2) + s.length));
    },

    view(src: Storage, offset: number, length: number): Storage {
      const s = rt.s(src);
      if (offset < 0 || length < 0 || offset + length > s.length) {
        throw new RangeError(
          `view [${offset}, ${offset + length}) is outside storage of ${s.length}`,
        );
      }
      return rt.view(s, offset, length);
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
      // A kernel split over the threads (a training step's gradient buffer, written by every
      // thread, is zeroed where each thread's cache holds it rather than all on this one).
      const d = rt.s(dst);
      rt.each("fill", d.length, (b, e) => [d.ptr, value, b, e]);
    },

    copy(dst: Storage, src: Storage): void {
      const d = rt.s(dst), s = rt.s(src);
      if (d.length !== s.length) throw new RangeError(`copy: lengths ${d.length} and ${s.length}`);
      rt.f32.copyWithin(d.ptr >> 2, s.ptr >> 2, (s.ptr >> 2) + s.length);
    },

    flush(): void {},

    dispose(): void {
      rt.dispose();
    },
  };
}

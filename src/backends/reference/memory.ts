/**
 * The reference backend's memory: storage is a typed array (a view of a larger one for views), in
 * float32 or float64. Scopes and flushes have nothing to do: the garbage collector frees storage.
 *
 * @module
 */

import type { DType, MemoryOps, Storage } from "../../backend.ts";

/** The typed arrays the reference backend computes in. */
export type Arr = Float32Array | Float64Array;

/** Storage of the reference backend: a typed array (possibly a view of a larger one). */
export class ReferenceStorage implements Storage {
  /** The elements. */
  readonly data: Arr;
  /** Wraps a typed array. */
  constructor(data: Arr) {
    this.data = data;
  }
  /** Number of elements. */
  get length(): number {
    return this.data.length;
  }
}

/** The typed array behind reference storage, or an error for storage of another backend. */
export function arr(s: Storage): Arr {
  if (!(s instanceof ReferenceStorage)) {
    throw new TypeError("reference backend: got storage from another backend");
  }
  return s.data;
}

/** Makes zero-filled arrays and storage of the backend's element type. */
export class ReferenceMemory {
  /** Element type. */
  readonly dtype: DType;
  /** A zero-filled array of `n` elements. */
  readonly make: (n: number) => Arr;

  /** Memory in `dtype`. */
  constructor(dtype: DType) {
    this.dtype = dtype;
    this.make = dtype === "float64" ? (n) => new Float64Array(n) : (n) => new Float32Array(n);
  }

  /** New zero-filled storage of `n` elements. */
  alloc(n: number): ReferenceStorage {
    return new ReferenceStorage(this.make(n));
  }
}

/** The reference backend's memory kernels. */
export function memoryOps(mem: ReferenceMemory): MemoryOps {
  return {
    alloc(length: number): Storage {
      return mem.alloc(length);
    },

    upload(data: ArrayLike<number>): Storage {
      const s = mem.alloc(data.length);
      s.data.set(data);
      return s;
    },

    write(dst: Storage, data: ArrayLike<number>, offset = 0): void {
      arr(dst).set(data, offset);
    },

    read(src: Storage): Promise<Float32Array | Float64Array> {
      return Promise.resolve(arr(src).slice());
    },

    view(src: Storage, offset: number, length: number): Storage {
      const a = arr(src);
      if (offset < 0 || offset + length > a.length) {
        throw new RangeError(
          `view [${offset}, ${offset + length}) is outside storage of ${a.length}`,
        );
      }
      return new ReferenceStorage(a.subarray(offset, offset + length));
    },

    free(_s: Storage): void {},

    beginScope(): void {},

    endScope(_keep?: readonly Storage[]): void {},

    fill(dst: Storage, value: number): void {
      arr(dst).fill(value);
    },

    copy(dst: Storage, src: Storage): void {
      arr(dst).set(arr(src));
    },

    flush(): void {},

    dispose(): void {},
  };
}

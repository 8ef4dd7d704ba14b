/**
 * The host-side allocator over the wasm backend's one WebAssembly memory: first fit over a sorted
 * list of free ranges, coalescing neighbours on free, every block 64-byte aligned (a cache line;
 * SIMD needs 16). The memory grows when no free range fits; the owner is told so it can rebuild
 * its typed-array views. The last 64 bytes of the memory are never handed out, so a kernel may
 * load a whole vector that starts at any element.
 *
 * @module
 */

/** Alignment and size granularity of every block, in bytes. */
export const ALIGN = 64;
/** Bytes kept unallocated at the end of the memory. */
export const GUARD = 64;
const PAGE = 65536;

/** Thrown when the memory cannot grow to satisfy an allocation. */
export class WasmOutOfMemoryError extends Error {
  /** The size asked for, in bytes. */
  readonly bytes: number;
  /** Creates the error for a request of `bytes`. */
  constructor(bytes: number, message: string) {
    super(message);
    this.name = "WasmOutOfMemoryError";
    this.bytes = bytes;
  }
}

/** First-fit allocator over [base, memory end - GUARD). */
export class Heap {
  /** The memory. */
  readonly memory: WebAssembly.Memory;
  /** The most pages the memory may have. */
  readonly maxPages: number;
  // Free ranges, sorted by start, never adjacent (coalesced).
  #starts: number[] = [];
  #sizes: number[] = [];
  #end: number;
  #used = 0;
  #onGrow: () => void;

  /**
   * Manages the memory from byte `base` on. `onGrow` runs after every growth (the memory's buffer
   * is new then).
   */
  constructor(memory: WebAssembly.Memory, base: number, maxPages: number, onGrow: () => void) {
    this.memory = memory;
    this.maxPages = maxPages;
    this.#onGrow = onGrow;
    this.#end = memory.buffer.byteLength - GUARD;
    base = Math.ceil(base / ALIGN) * ALIGN;
    if (this.#end > base) {
      this.#starts.push(base);
      this.#sizes.push(this.#end - base);
    }
  }

  /** Bytes currently allocated. */
  get used(): number {
    return this.#used;
  }

  /** Bytes of the memory. */
  get capacity(): number {
    return this.memory.buffer.byteLength;
  }

  /** Number of free ranges (for tests of coalescing). */
  get freeRanges(): number {
    return this.#starts.length;
  }

  /** Rounds a request up to the block granularity (at least one block). */
  static blockSize(bytes: number): number {
    return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  /** Allocates `bytes` (rounded up to 64) and returns the block's byte offset. */
  alloc(bytes: number): number {
    const size = Heap.blockSize(bytes);
    let i = this.#find(size);
    if (i < 0) {
      this.#grow(size, bytes);
      i = this.#find(size);
      if (i < 0) throw new Error("wasm backend: allocator failed after growing the memory");
    }
    const start = this.#starts[i];
    if (this.#sizes[i] === size) {
      this.#starts.splice(i, 1);
      this.#sizes.splice(i, 1);
    } else {
      this.#starts[i] += size;
      this.#sizes[i] -= size;
    }
    this.#used += size;
    return start;
  }

  /** Returns the block at `start` of `bytes` (the size it was allocated with) to the free list. */
  free(start: number, bytes: number): void {
    const size = Heap.blockSize(bytes);
    this.#used -= size;
    const s = this.#starts;
    const z = this.#sizes;
    // First free range after the block.
    let lo = 0, hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] < start) lo = mid + 1;
      else hi = mid;
    }
    const i = lo;
    const joinPrev = i > 0 && s[i - 1] + z[i - 1] === start;
    const joinNext = i < s.length && start + size === s[i];
    if (joinPrev && joinNext) {
      z[i - 1] += size + z[i];
      s.splice(i, 1);
      z.splice(i, 1);
    } else if (joinPrev) {
      z[i - 1] += size;
    } else if (joinNext) {
      s[i] = start;
      z[i] += size;
    } else {
      s.splice(i, 0, start);
      z.splice(i, 0, size);
    }
  }

  #find(size: number): number {
    const z = this.#sizes;
    for (let i = 0; i < z.length; i++) if (z[i] >= size) return i;
    return -1;
  }

  #grow(size: number, asked: number): void {
    const pages = this.memory.buffer.byteLength / PAGE;
    // Free space at the end of the memory counts toward the request.
    const n = this.#starts.length;
    const tail = n > 0 && this.#starts[n - 1] + this.#sizes[n - 1] === this.#end
      ? this.#sizes[n - 1]
      : 0;
    const need = Math.ceil((size - tail) / PAGE);
    // Grow by at least a quarter of the memory, to keep growth rare.
    let add = Math.max(need, Math.ceil(pages / 4));
    if (pages + add > this.maxPages) add = need;
    if (pages + add > this.maxPages) {
      throw this.#outOfMemory(asked);
    }
    try {
      this.memory.grow(add);
    } catch {
      throw this.#outOfMemory(asked);
    }
    const oldEnd = this.#end;
    this.#end = this.memory.buffer.byteLength - GUARD;
    // The old guard and the new pages become one free range at the end.
    this.free(oldEnd, this.#end - oldEnd);
    this.#used += this.#end - oldEnd;
    this.#onGrow();
  }

  #outOfMemory(asked: number): WasmOutOfMemoryError {
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    return new WasmOutOfMemoryError(
      asked,
      `wasm backend: out of memory allocating ${asked} bytes (${
        Math.ceil(asked / 4)
      } float32 values): ${mib(this.#used)} MiB are in use of a WebAssembly memory of ${
        mib(this.memory.buffer.byteLength)
      } MiB that cannot grow past ${mib(this.maxPages * PAGE)} MiB; ` +
        "free tensors you no longer need, or use smaller batches",
    );
  }
}

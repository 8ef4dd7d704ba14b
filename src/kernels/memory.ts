/**
 * The memory kernels: storage handles, host transfers, views, scopes and the end of a unit of work.
 *
 * @module
 */

/** An opaque handle to `length` elements of a backend's memory. */
export interface Storage {
  /** Number of elements. */
  readonly length: number;
}

/** Allocation, transfer and lifetime of storage. */
export interface MemoryOps {
  /** New zero-filled storage of `length` elements. */
  alloc(length: number): Storage;
  /** New storage holding a copy of `data`. */
  upload(data: ArrayLike<number>): Storage;
  /** Copies `data` into `dst` starting at element `offset` (synchronous; queued on a GPU). */
  write(dst: Storage, data: ArrayLike<number>, offset?: number): void;
  /** Reads a storage back to the host. The only asynchronous call. */
  read(src: Storage): Promise<Float32Array | Float64Array>;
  /** A handle to elements [offset, offset + length) of `src`, sharing its memory. */
  view(src: Storage, offset: number, length: number): Storage;
  /** Releases storage (views: nothing). Using it afterwards is an error. */
  free(s: Storage): void;
  /**
   * Opens a scope: storage allocated until the matching {@link MemoryOps.endScope} is released
   * there, except the handles it is told to keep, which pass to the enclosing scope. Scopes nest.
   * The training loop wraps each step in one, so a step allocates nothing that outlives it.
   */
  beginScope(): void;
  /** Closes the innermost scope, releasing its storage except `keep`. */
  endScope(keep?: readonly Storage[]): void;
  /** Sets every element of `dst` to `value`, in place. */
  fill(dst: Storage, value: number): void;
  /** Copies `src` into `dst` (equal lengths), in place. */
  copy(dst: Storage, src: Storage): void;
  /**
   * Marks the end of a unit of work (a training step, a sampling step): a GPU backend submits the
   * commands it recorded; backends that run kernels at once do nothing.
   */
  flush(): void;
  /** Releases everything the backend holds. */
  dispose(): void;
}

/**
 * A pool of GPU buffers in size classes (four per octave, at least 256 bytes), so a training step
 * that allocates the same shapes every time reuses the same buffers and creates none.
 *
 * A released buffer may still be read by commands recorded but not yet submitted, so releases wait
 * in a pending list until the next submit ({@link BufferPool.recycle}); queue order then makes the
 * buffer safe to reuse by anything recorded or written afterwards.
 *
 * @module
 */

/** A buffer of the pool, with a stable id (bind groups are cached by it). */
export class PooledBuffer {
  /** Unique id within the process. */
  readonly id: number;
  /** The buffer. */
  readonly buffer: GPUBuffer;
  /** Its size in bytes. */
  readonly size: number;
  /** The size class it is pooled under. */
  readonly sizeClass: number;
  static #next = 1;

  /** Wraps a buffer. */
  constructor(buffer: GPUBuffer, size: number, cls: number) {
    this.id = PooledBuffer.#next++;
    this.buffer = buffer;
    this.size = size;
    this.sizeClass = cls;
  }
}

/** The size class of a request: at least 256 bytes, rounded up to a quarter octave. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

function byIdDescending(a: PooledBuffer, b: PooledBuffer): number {
  return b.id - a.id;
}

/** Buffers of one usage, pooled by size class. */
export class BufferPool {
  readonly #device: GPUDevice;
  readonly #usage: GPUBufferUsageFlags;
  readonly #label: string;
  readonly #maxSize: number;
  readonly #free = new Map<number, PooledBuffer[]>();
  #pending: PooledBuffer[] = [];
  readonly #all = new Set<PooledBuffer>();
  #bytes = 0;

  /** A pool of buffers with `usage`, none larger than `maxSize` bytes. */
  constructor(device: GPUDevice, usage: GPUBufferUsageFlags, label: string, maxSize: number) {
    this.#device = device;
    this.#usage = usage;
    this.#label = label;
    this.#maxSize = maxSize;
  }

  /** A buffer of at least `bytes`; `fresh` is true when it was just created (and so is zeroed). */
  acquire(bytes: number): { buf: PooledBuffer; fresh: boolean } {
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    const reused = list?.pop();
    if (reused) return { buf: reused, fresh: false };
    const actual = Math.min(size, Math.floor(this.#maxSize / 256) * 256);
    if (bytes > actual) {
      throw new RangeError(
        `webgpu: a buffer of ${bytes} bytes exceeds this device's maxBufferSize (${this.#maxSize})`,
      );
    }
    const buffer = this.#device.createBuffer({
      size: actual,
      usage: this.#usage,
      label: `${this.#label} ${actual}`,
    });
    const buf = new PooledBuffer(buffer, actual, size);
    this.#all.add(buf);
    this.#bytes += actual;
    return { buf, fresh: true };
  }

  /** Returns a buffer; it becomes reusable at the next {@link BufferPool.recycle}. */
  release(buf: PooledBuffer): void {
    this.#pending.push(buf);
  }

  /** Returns a buffer no pending command uses; reusable at once. */
  releaseNow(buf: PooledBuffer): void {
    this.#put(buf).sort(byIdDescending);
  }

  /** Makes the pending releases reusable (call right after a submit). */
  recycle(): void {
    if (this.#pending.length === 0) return;
    const touched = new Set<PooledBuffer[]>();
    for (const b of this.#pending) touched.add(this.#put(b));
    this.#pending = [];
    for (const list of touched) list.sort(byIdDescending);
  }

  /**
   * Free lists are kept sorted by id, lowest last, and handed out lowest first: a step that
   * allocates the same sizes in the same order from the same free set then gets the same buffers
   * every time, so its cached bind groups are found again (release order does not matter).
   */
  #put(b: PooledBuffer): PooledBuffer[] {
    let list = this.#free.get(b.sizeClass);
    if (!list) this.#free.set(b.sizeClass, list = []);
    list.push(b);
    return list;
  }

  /** Buffers created and their total size. */
  stats(): { buffers: number; bytes: number } {
    return { buffers: this.#all.size, bytes: this.#bytes };
  }

  /** Destroys every buffer the pool created. */
  destroy(): void {
    for (const b of this.#all) b.buffer.destroy();
    this.#all.clear();
    this.#free.clear();
    this.#pending = [];
    this.#bytes = 0;
  }
}

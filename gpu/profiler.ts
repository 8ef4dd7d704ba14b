/**
 * GPU time per kernel, from timestamp queries: with profiling on, every dispatch gets a compute
 * pass of its own whose start and end the GPU stamps; at each submit the stamps are resolved and
 * read back, and {@link KernelProfiler.report} sums them by label (the kernel and, for products
 * and convolutions, the shape).
 *
 * Profiling changes what it measures a little (a pass per dispatch), so it is for finding where
 * the time goes, not for the benchmark's figures.
 *
 * @module
 */

/** Dispatches one query set holds (two stamps each; wgpu allows 4,096 queries per set). */
export const PROFILE_CAPACITY = 2048;

/** One row of a {@link KernelProfiler.report}. */
export interface KernelTime {
  /** What ran: the kernel's key, and its shape where the backend gives one. */
  label: string;
  /** Dispatches counted. */
  calls: number;
  /** GPU time summed over them, in milliseconds. */
  ms: number;
}

/** Collects timestamp pairs per dispatch; one per backend, used only when profiling is on. */
export class KernelProfiler {
  readonly #device: GPUDevice;
  readonly #queries: GPUQuerySet;
  readonly #resolve: GPUBuffer;
  #labels: string[] = [];
  readonly #pending = new Set<Promise<void>>();
  readonly #totals = new Map<string, KernelTime>();

  /** A profiler on a device opened with the "timestamp-query" feature. */
  constructor(device: GPUDevice) {
    this.#device = device;
    this.#queries = device.createQuerySet({ type: "timestamp", count: 2 * PROFILE_CAPACITY });
    this.#resolve = device.createBuffer({
      size: 16 * PROFILE_CAPACITY,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** True when the query set is nearly full: the backend submits before the next operation. */
  get nearlyFull(): boolean {
    return this.#labels.length >= PROFILE_CAPACITY - 64;
  }

  /** The pass descriptor of the next dispatch, labelled `label` (untimed when the set is full). */
  nextPass(label: string): GPUComputePassDescriptor {
    const i = this.#labels.length;
    if (i >= PROFILE_CAPACITY) return {};
    this.#labels.push(label);
    return {
      timestampWrites: {
        querySet: this.#queries,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    };
  }

  /** Records the resolve and read-back of this submit's stamps; call `afterSubmit` after it. */
  beforeSubmit(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.#labels.length;
    if (n === 0) return null;
    const labels = this.#labels;
    this.#labels = [];
    const read = this.#device.createBuffer({
      size: 16 * n,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#queries, 0, 2 * n, this.#resolve, 0);
    encoder.copyBufferToBuffer(this.#resolve, 0, read, 0, 16 * n);
    return () => {
      const done: Promise<void> = read.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigUint64Array(read.getMappedRange());
        for (let i = 0; i < n; i++) {
          const ns = Number(t[2 * i + 1] - t[2 * i]);
          const row = this.#totals.get(labels[i]) ?? { label: labels[i], calls: 0, ms: 0 };
          row.calls++;
          // A stamp pair out of order (a reset clock) counts as zero rather than a huge figure.
          row.ms += ns > 0 && ns < 1e10 ? ns / 1e6 : 0;
          this.#totals.set(labels[i], row);
        }
        read.unmap();
        read.destroy();
      }, () => read.destroy()).finally(() => this.#pending.delete(done));
      this.#pending.add(done);
    };
  }

  /** The times so far, largest first (waits for submitted stamps); `reset` starts afresh. */
  async report(reset = false): Promise<KernelTime[]> {
    await Promise.all([...this.#pending]);
    const rows = [...this.#totals.values()].sort((a, b) => b.ms - a.ms);
    if (reset) this.#totals.clear();
    return rows;
  }

  /** Frees the query set and buffers. */
  destroy(): void {
    this.#queries.destroy();
    this.#resolve.destroy();
  }
}

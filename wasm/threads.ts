/**
 * Worker threads for the wasm backend: each worker instantiates the shared-memory build of the
 * kernels on the backend's one shared WebAssembly memory and waits on a control block in that
 * memory. A job is one kernel over a range cut into chunks; the main thread publishes it, wakes
 * the workers, and every thread (the main one too) claims chunks with an atomic counter until none
 * are left, so a worker the operating system does not schedule in time costs at most the chunk it
 * holds, never the whole share. Both sides spin on `Atomics.load` for a while before parking in
 * `Atomics.wait`, since a training step runs many small kernels and parking costs tens of
 * microseconds.
 *
 * Deno keeps a process alive while it has workers, so the pool stops its workers after a short
 * time without parallel work and starts them again on demand (kernels run on the main thread
 * meanwhile, with the same results). Stopped workers leave on their own (`self.close()`) at a
 * point where they hold no work, and each start uses a control block that no earlier worker can
 * still be reading, so a late worker never touches a later job.
 *
 * The worker is created from a Blob URL, so no file is read and no permission is needed.
 *
 * @module
 */

/** Most chunks one job is cut into. */
export const MAX_CHUNKS = 64;
/** Chunks a split kernel is cut into per thread (more balance under load, more overhead). */
export const CHUNKS_PER_THREAD = 4;
const MAX_ARGS = 28;
// i32 fields of the control block.
const CLAIM = 0; // (generation << 8) | next unclaimed chunk
const WAKE = 1; // generation; the workers wait on it
const DONE = 2; // chunks finished in the current generation
const FN = 3; // kernel index
const NARGS = 4;
const BEGIN_ARG = 5; // which argument receives a chunk's begin (end is the next one)
const THREAD_ARG = 6; // which argument receives the thread's own value (-1: none)
const CHUNKS = 7;
const ERROR = 8; // 1 when a chunk threw
const STOP = 9; // 1 asks the workers to end
const BOUNDS = 16; // i32[MAX_CHUNKS + 1]: chunk c is [BOUNDS + c, BOUNDS + c + 1)
const ARGS_BYTES = 4 * (BOUNDS + MAX_CHUNKS + 1 + 7 & ~7); // f64[MAX_ARGS]
// Per worker: i32 ready, i32 left (it will not read this block again), f64 own value at +8.
const WORKERS_BYTES = ARGS_BYTES + 8 * MAX_ARGS;
const WORKER_BYTES = 16;

/**
 * Claims and runs chunks of the current job until none are left (the same code runs in the
 * workers, as text); `own[0]` is this thread's value for the job's per-thread argument. Returns
 * the number of chunks it ran.
 */
function runChunks(
  i32: Int32Array,
  f64: Float64Array,
  fns: ((...a: number[]) => void)[],
  args: number[],
  own: ArrayLike<number>,
): number {
  let ran = 0;
  for (;;) {
    const v = Atomics.load(i32, CLAIM);
    const chunk = v & 255;
    // Read the job before claiming; a successful claim proves it was this job's.
    const chunks = i32[CHUNKS];
    if (chunk >= chunks) return ran;
    const fn = i32[FN], n = i32[NARGS], at = i32[BEGIN_ARG], mine = i32[THREAD_ARG];
    if (Atomics.compareExchange(i32, CLAIM, v, v + 1) !== v) continue;
    args.length = n;
    for (let k = 0; k < n; k++) args[k] = f64[k];
    args[at] = i32[BOUNDS + chunk];
    args[at + 1] = i32[BOUNDS + chunk + 1];
    // The thread's own value is read per chunk: it may have joined this job from an older one.
    if (mine >= 0) args[mine] = own[0];
    try {
      fns[fn](...args);
    } catch (e) {
      Atomics.store(i32, ERROR, 1);
      console.error("wasm backend kernel:", e);
    }
    Atomics.add(i32, DONE, 1);
    Atomics.notify(i32, DONE);
    ran++;
  }
}

/** The worker's code (plain JavaScript, run from a Blob URL). */
const WORKER_SOURCE = `
const [CLAIM, WAKE, DONE, FN, NARGS, BEGIN_ARG, THREAD_ARG, CHUNKS, ERROR, STOP, BOUNDS] =
  [${CLAIM}, ${WAKE}, ${DONE}, ${FN}, ${NARGS}, ${BEGIN_ARG}, ${THREAD_ARG}, ${CHUNKS}, ${ERROR},
    ${STOP}, ${BOUNDS}];
${runChunks.toString()}
self.onmessage = (event) => {
  const { module, memory, control, index, names, spin } = event.data;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const fns = names.map((n) => instance.exports[n]);
  const i32 = new Int32Array(memory.buffer, control, ${WORKERS_BYTES / 4});
  const f64 = new Float64Array(memory.buffer, control + ${ARGS_BYTES}, ${MAX_ARGS});
  const mine = new Int32Array(memory.buffer, control + ${WORKERS_BYTES} + index * ${WORKER_BYTES}, 2);
  const own = new Float64Array(memory.buffer, control + ${WORKERS_BYTES} + index * ${WORKER_BYTES} + 8, 1);
  const args = [];
  let seen = Atomics.load(i32, WAKE);
  Atomics.store(mine, 0, 1);
  Atomics.notify(mine, 0);
  for (;;) {
    if (Atomics.load(i32, STOP)) break;
    let w = Atomics.load(i32, WAKE);
    for (let k = 0; w === seen && k < spin; k++) w = Atomics.load(i32, WAKE);
    if (w === seen) {
      Atomics.wait(i32, WAKE, seen);
      continue;
    }
    seen = w;
    if (Atomics.load(i32, STOP)) break;
    runChunks(i32, f64, fns, args, own);
  }
  Atomics.store(mine, 1, 1);
  self.close();
};
`;

/** Options of a {@link ThreadPool}. */
export interface ThreadPoolOptions {
  /** Atomics.load polls before parking (worker side and join). */
  spin?: number;
  /** Milliseconds without parallel work after which the workers stop. */
  idleMs?: number;
}

/** A control block and the views on it. */
interface Block {
  ptr: number;
  i32: Int32Array;
  f64: Float64Array;
  /** Per worker: [ready, left, own (f64 at +8)] every 4 i32. */
  workers: Int32Array;
  own: Float64Array;
  /** True once workers were started on it. */
  used: boolean;
}

/** A pool of `workers` threads on one shared memory. */
export class ThreadPool {
  /** Number of workers (threads besides the main one). */
  readonly workers: number;
  readonly #module: WebAssembly.Module;
  readonly #memory: WebAssembly.Memory;
  readonly #alloc: (bytes: number) => number;
  readonly #names: readonly string[];
  readonly #fns: ((...a: number[]) => void)[];
  readonly #spin: number;
  readonly #idleMs: number;
  #blocks: Block[] = [];
  #block: Block | null = null;
  #threads: Worker[] = [];
  #leaving: Worker[] = [];
  #args: number[] = [];
  #generation = 0;
  #running = false;
  #listening = false;
  #uses = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #starting: Promise<void> | null = null;
  #closed = false;

  /**
   * A pool for `workers` threads. `alloc(bytes)` reserves memory for a control block (64-byte
   * aligned; never released), `exports` is the main thread's kernel instance and `names` the
   * kernels in job-index order. Workers start on the first {@link ThreadPool.start} or
   * {@link ThreadPool.active}.
   */
  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    alloc: (bytes: number) => number,
    workers: number,
    exports: Record<string, unknown>,
    names: readonly string[],
    options: ThreadPoolOptions = {},
  ) {
    this.workers = workers;
    this.#module = module;
    this.#memory = memory;
    this.#alloc = alloc;
    this.#names = names;
    this.#fns = names.map((n) => exports[n] as (...a: number[]) => void);
    this.#spin = options.spin ?? 20000;
    this.#idleMs = options.idleMs ?? 300;
  }

  /** A control block no worker reads any more (a new one if every block still has readers). */
  #freeBlock(): Block {
    for (const b of this.#blocks) {
      let free = true;
      for (let w = 0; w < this.workers && b.used; w++) {
        if (Atomics.load(b.workers, w * 4 + 1) !== 1) free = false;
      }
      if (free) return b;
    }
    const ptr = this.#alloc(WORKERS_BYTES + this.workers * WORKER_BYTES);
    const buffer = this.#memory.buffer;
    const block: Block = {
      ptr,
      i32: new Int32Array(buffer, ptr, WORKERS_BYTES / 4),
      f64: new Float64Array(buffer, ptr + ARGS_BYTES, MAX_ARGS),
      workers: new Int32Array(buffer, ptr + WORKERS_BYTES, (this.workers * WORKER_BYTES) / 4),
      own: new Float64Array(buffer, ptr + WORKERS_BYTES, (this.workers * WORKER_BYTES) / 8),
      used: false,
    };
    this.#blocks.push(block);
    return block;
  }

  /** Starts the workers (if stopped) and resolves once they all listen. */
  start(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#starting) return this.#starting;
    if (this.#running) return Promise.resolve();
    this.#running = true;
    this.#listening = false;
    const block = this.#block = this.#freeBlock();
    block.i32.fill(0);
    block.workers.fill(0);
    block.used = true;
    this.#generation = 0;
    const url = URL.createObjectURL(
      new Blob([WORKER_SOURCE], { type: "application/javascript" }),
    );
    this.#threads = [];
    const waits: Promise<unknown>[] = [];
    for (let w = 0; w < this.workers; w++) {
      const worker = new Worker(url, { type: "module", name: `wasm-backend-${w + 1}` });
      worker.postMessage({
        module: this.#module,
        memory: this.#memory,
        control: block.ptr,
        index: w,
        names: this.#names,
        spin: this.#spin,
      });
      this.#threads.push(worker);
      const wait = Atomics.waitAsync(block.workers, w * 4, 0);
      waits.push(wait.async ? wait.value : Promise.resolve());
    }
    this.#starting = Promise.all(waits).then(() => {
      URL.revokeObjectURL(url);
      this.#starting = null;
      if (this.#running) {
        this.#listening = true;
        this.#armIdleTimer();
      }
    });
    return this.#starting;
  }

  /**
   * True when the workers listen, so work can be split; otherwise starts them (when stopped) and
   * returns false, and the caller computes alone.
   */
  active(): boolean {
    if (this.#listening) {
      this.#uses++;
      return true;
    }
    if (!this.#running && !this.#closed) void this.start();
    return false;
  }

  /**
   * Runs kernel `fn` (an index into the names) with `args` over the chunks `bounds` (chunk c is
   * [bounds[c], bounds[c + 1]), written into arguments `beginArg` and `beginArg + 1`) on every
   * thread; argument `threadArg` (when not -1) receives each thread's own value from `own`
   * (index 0 for this thread). Returns when every chunk is done. Only while {@link active}.
   */
  run(
    fn: number,
    args: readonly number[],
    beginArg: number,
    bounds: readonly number[],
    threadArg: number,
    own: readonly number[],
  ): void {
    const chunks = bounds.length - 1;
    if (chunks > MAX_CHUNKS || args.length > MAX_ARGS) {
      throw new Error(`wasm backend: a job of ${chunks} chunks and ${args.length} arguments`);
    }
    const block = this.#block!, i32 = block.i32;
    const generation = this.#generation = (this.#generation + 1) & 0xffffff;
    // Close the claim word first: a thread still looking at the previous job can no longer
    // claim anything, whatever it reads of the fields written next.
    Atomics.store(i32, CLAIM, (generation << 8) | 255);
    block.f64.set(args);
    i32.set(bounds, BOUNDS);
    i32[FN] = fn;
    i32[NARGS] = args.length;
    i32[BEGIN_ARG] = beginArg;
    i32[THREAD_ARG] = threadArg;
    i32[CHUNKS] = chunks;
    if (threadArg >= 0) {
      for (let w = 0; w < this.workers; w++) block.own[w * 2 + 1] = own[w + 1];
    }
    Atomics.store(i32, DONE, 0);
    Atomics.store(i32, CLAIM, generation << 8);
    Atomics.store(i32, WAKE, generation);
    Atomics.notify(i32, WAKE);
    runChunks(i32, block.f64, this.#fns, this.#args, own);
    // Wait for the chunks other threads hold.
    let d = Atomics.load(i32, DONE);
    for (let k = 0; d < chunks && k < this.#spin; k++) d = Atomics.load(i32, DONE);
    while (d < chunks) {
      Atomics.wait(i32, DONE, d, 1000);
      d = Atomics.load(i32, DONE);
    }
    if (i32[ERROR]) {
      i32[ERROR] = 0;
      throw new Error("wasm backend: a kernel failed on a worker thread");
    }
  }

  #armIdleTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    let seen = this.#uses;
    this.#timer = setInterval(() => {
      if (this.#uses !== seen) {
        seen = this.#uses;
        return;
      }
      this.#stopWorkers();
    }, this.#idleMs);
  }

  /** Asks the workers to leave; they do so between jobs, by themselves. */
  #stopWorkers(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listening = false;
    this.#running = false;
    const block = this.#block;
    if (block) {
      Atomics.store(block.i32, STOP, 1);
      Atomics.add(block.i32, WAKE, 1);
      Atomics.notify(block.i32, WAKE);
    }
    this.#leaving.push(...this.#threads);
    if (this.#leaving.length > 16 * this.workers) this.#leaving.splice(0, this.workers);
    this.#threads = [];
  }

  /** Stops the workers for good (terminating any that have not left yet). */
  close(): void {
    this.#closed = true;
    this.#stopWorkers();
    for (const t of this.#leaving) t.terminate();
    this.#leaving = [];
  }
}

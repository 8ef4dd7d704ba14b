/**
 * Parameters in one flat buffer: a layout of named tensors (PyTorch state_dict names and shapes),
 * their initial values, and a store that hands out parameter tensors viewing the flat values and
 * gradients. The optimizer, EMA, zeroing and checkpointing each act on the whole buffer at once.
 *
 * Each network is described once: a layer's constructor asks a {@link ParamSource} for each of its
 * parameters, `param(name, shape, init)`, as it is built. Built on a {@link ParamRecorder}, a
 * network lists its parameters in the order it asks for them, which is its {@link ParamLayout}
 * ({@link recordParams}); built on a {@link ParamStore} over that layout, it gets tensors viewing
 * the flat buffers.
 *
 * @module
 */

import type { Backend, Storage } from "../backend.ts";
import type { Random } from "../random.ts";
import { formatBytes } from "../errors.ts";
import { MAX_PARAMETERS } from "../limits.ts";
import { sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";

/** How a parameter starts: uniform in [-bound, bound], or a constant. */
export type ParamInit = { kind: "uniform"; bound: number } | { kind: "constant"; value: number };

/** A named parameter tensor. */
export interface ParamSpec {
  /** state_dict name, e.g. "net.0.weight". */
  name: string;
  /** Shape, PyTorch layout. */
  shape: number[];
  /** Initial values. */
  init: ParamInit;
}

/** A parameter's place in the flat buffer. */
export interface ParamEntry extends ParamSpec {
  /** First element in the flat buffer (a multiple of {@link PARAM_ALIGN}). */
  offset: number;
  /** Number of elements. */
  size: number;
}

/** Offsets are aligned to 64 elements (256 bytes: WebGPU's storage binding offset alignment). */
export const PARAM_ALIGN = 64;

/** Where every parameter lives in the flat buffer. */
export class ParamLayout {
  /** The parameters in order. */
  readonly entries: readonly ParamEntry[];
  /** Length of the flat buffer, padding included. */
  readonly length: number;
  /** Number of parameters (no padding). */
  readonly count: number;
  readonly #byName: Map<string, ParamEntry>;

  /** Lays out `specs` in order. */
  constructor(specs: readonly ParamSpec[]) {
    let off = 0, count = 0;
    this.entries = specs.map((s) => {
      const size = sizeOf(s.shape);
      const e = { ...s, offset: off, size };
      off += Math.ceil(size / PARAM_ALIGN) * PARAM_ALIGN;
      count += size;
      return e;
    });
    if (count > MAX_PARAMETERS) {
      throw new RangeError(
        `the network would have ${count.toExponential(2)} parameters (${
          formatBytes(count * 4)
        } of weights, ${formatBytes(count * 20)} to train), above the limit of ${MAX_PARAMETERS} ` +
          `(2^27); make it narrower or shallower`,
      );
    }
    this.length = off;
    this.count = count;
    this.#byName = new Map(this.entries.map((e) => [e.name, e]));
  }

  /** The entry called `name`, or an error naming it. */
  get(name: string): ParamEntry {
    const e = this.#byName.get(name);
    if (!e) throw new Error(`no parameter called ${name}`);
    return e;
  }

  /** Initial values drawn from `random` (padding stays zero). */
  initialValues(random: Random): Float32Array {
    const out = new Float32Array(this.length);
    for (const e of this.entries) {
      if (e.init.kind === "constant") {
        out.fill(e.init.value, e.offset, e.offset + e.size);
      } else {
        const u = random.uniforms(e.size), b = e.init.bound;
        for (let i = 0; i < e.size; i++) out[e.offset + i] = (2 * u[i] - 1) * b;
      }
    }
    return out;
  }
}

/** Where a layer's constructor gets its parameters. */
export interface ParamSource {
  /**
   * The parameter `name` of `shape` (PyTorch layout), which starts as `init`. Each name is asked
   * for once per network, in the order of the layout.
   */
  param(name: string, shape: readonly number[], init: ParamInit): Tensor;
}

/**
 * The backend of recorded parameters, which have a shape and no values: any kernel throws, so a
 * network built to record its parameters cannot compute by mistake.
 */
const NO_VALUES = new Proxy({} as Backend, {
  get(_, key) {
    if (key === "name") return "recording";
    if (key === "then" || typeof key === "symbol") return undefined;
    throw new Error(
      `a network built on a ParamRecorder records its parameters and cannot compute (${key})`,
    );
  },
});

/**
 * A {@link ParamSource} without a backend: records the specs in the order they are asked for and
 * hands out placeholder tensors (the right shape, no values).
 */
export class ParamRecorder implements ParamSource {
  /** The parameters asked for so far, in order. */
  readonly specs: ParamSpec[] = [];
  readonly #names = new Set<string>();

  /** Records `name`; throws when a network asks for the same name twice. */
  param(name: string, shape: readonly number[], init: ParamInit): Tensor {
    if (this.#names.has(name)) throw new Error(`parameter ${name} is declared twice`);
    this.#names.add(name);
    this.specs.push({ name, shape: [...shape], init });
    return new Tensor(NO_VALUES, { length: sizeOf(shape) }, shape);
  }
}

/** The parameters that `build` asks for, in order: build a network on a {@link ParamRecorder}. */
export function recordParams(build: (params: ParamSource) => unknown): ParamSpec[] {
  const recorder = new ParamRecorder();
  build(recorder);
  return recorder.specs;
}

/** Parameter tensors over flat value (and optionally gradient) storage on a backend. */
export class ParamStore implements ParamSource {
  /** The backend. */
  readonly backend: Backend;
  /** The layout. */
  readonly layout: ParamLayout;
  /** Flat values. */
  readonly values: Storage;
  /** Flat gradients, or null for inference-only stores (EMA weights). */
  readonly grads: Storage | null;

  /** A store over existing storage. */
  constructor(backend: Backend, layout: ParamLayout, values: Storage, grads: Storage | null) {
    if (values.length !== layout.length) {
      throw new RangeError(
        `parameter buffer has ${values.length} elements, layout needs ${layout.length}`,
      );
    }
    this.backend = backend;
    this.layout = layout;
    this.values = values;
    this.grads = grads;
  }

  /**
   * The parameter `name` as a tensor viewing the flat values; gradients accumulate into the flat
   * gradient buffer. Throws unless the layout holds `name` with `shape` (the init is the layout's
   * business: the values are already there).
   */
  param(name: string, shape: readonly number[], _init?: ParamInit): Tensor {
    const e = this.layout.get(name);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      throw new RangeError(
        `parameter ${name} has shape [${e.shape}] in the layout, the network asks for [${shape}]`,
      );
    }
    const be = this.backend;
    const v = be.view(this.values, e.offset, e.size);
    if (!this.grads) return new Tensor(be, v, e.shape);
    return new Tensor(be, v, e.shape, {
      requiresGrad: true,
      gradSink: be.view(this.grads, e.offset, e.size),
    });
  }
}

/** PyTorch's default initialisation bound for Linear and Conv layers: 1 / sqrt(fan_in). */
export function fanInBound(fanIn: number): ParamInit {
  return { kind: "uniform", bound: 1 / Math.sqrt(fanIn) };
}

/**
 * Parameters in one flat buffer: a layout of named tensors (PyTorch state_dict names and shapes),
 * their initial values, and a store that hands out parameter tensors viewing the flat values and
 * gradients. The optimizer, EMA, zeroing and checkpointing each act on the whole buffer at once.
 *
 * @module
 */

import type { Backend, Storage } from "../backend.ts";
import type { Random } from "../random.ts";
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

/** Parameter tensors over flat value (and optionally gradient) storage on a backend. */
export class ParamStore {
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

  /** The parameter `name` as a tensor; gradients accumulate into the flat gradient buffer. */
  param(name: string): Tensor {
    const e = this.layout.get(name);
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

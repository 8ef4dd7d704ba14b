/**
 * The tensor: a shape over a backend's storage, and the autograd tape.
 *
 * A tensor that took part in a differentiable op while gradients were enabled remembers a
 * {@link GradNode}: its inputs and a rule turning the gradient of its output into gradients of its
 * inputs with backend kernels. {@link backward} walks those nodes from a scalar loss in reverse
 * topological order (the tape), in the manner of micrograd and tinygrad.
 *
 * @module
 */

import type { Backend, Storage } from "./backend.ts";
import { sizeOf } from "./shape.ts";

/** The rule that turns d(loss)/d(output) into d(loss)/d(input) for each input (null: no gradient). */
export interface GradNode {
  /** Name of the op, for error messages. */
  readonly op: string;
  /** The op's tensor inputs. */
  readonly inputs: readonly Tensor[];
  /** Gradients of the inputs from the gradient of the output (same length as the output). */
  backward(grad: Storage): (Storage | null)[];
}

let gradEnabled = true;

/** Runs `fn` without recording gradients (sampling, evaluation, optimizer bookkeeping). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/**
 * Runs `fn` recording gradients even inside {@link noGrad} (a sampler taking the gradient of a
 * guide with respect to its input).
 */
export function withGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** An n-dimensional array of numbers held by a backend. */
export class Tensor {
  /** The backend holding the storage. */
  readonly backend: Backend;
  /** The elements, row-major. */
  readonly storage: Storage;
  /** The shape. */
  readonly shape: readonly number[];
  /** Whether gradients flow to this tensor. */
  readonly requiresGrad: boolean;
  /** The op that produced this tensor, when it was recorded. */
  readonly node: GradNode | null;
  /**
   * For parameters: the storage their gradient is accumulated into (a view of the flat gradient
   * buffer). For other leaves that require gradients, {@link Tensor.grad} is set instead.
   */
  readonly gradSink: Storage | null;
  /** The gradient of a non-parameter leaf after {@link backward}. */
  grad: Tensor | null = null;

  /** Wraps storage; prefer the op functions and {@link tensor} to build tensors. */
  constructor(
    backend: Backend,
    storage: Storage,
    shape: readonly number[],
    options: { requiresGrad?: boolean; node?: GradNode | null; gradSink?: Storage | null } = {},
  ) {
    if (sizeOf(shape) !== storage.length) {
      throw new RangeError(`shape [${shape}] does not fit storage of ${storage.length} elements`);
    }
    this.backend = backend;
    this.storage = storage;
    this.shape = shape;
    this.node = options.node ?? null;
    this.requiresGrad = options.requiresGrad ?? this.node !== null;
    this.gradSink = options.gradSink ?? null;
  }

  /** Number of elements. */
  get size(): number {
    return this.storage.length;
  }

  /** Reads the elements back to the host. */
  toArray(): Promise<Float32Array | Float64Array> {
    return this.backend.read(this.storage);
  }
}

/** A constant tensor holding `data` with `shape`. */
export function tensor(
  backend: Backend,
  data: ArrayLike<number>,
  shape: readonly number[],
): Tensor {
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(`shape [${shape}] needs ${sizeOf(shape)} values, got ${data.length}`);
  }
  return new Tensor(backend, backend.upload(data), shape);
}

/**
 * The same values with no gradient path: a tensor over `x`'s storage (shared, not copied) that
 * records no node and requires no gradient, so nothing back-propagated through the result reaches
 * `x` (PyTorch's `x.detach()`, JAX's `stop_gradient`). The storage belongs to `x`: freeing either
 * frees both.
 */
export function detach(x: Tensor): Tensor {
  return new Tensor(x.backend, x.storage, x.shape);
}

/** A leaf that collects its gradient in {@link Tensor.grad} (for tests and custom inputs). */
export function variable(
  backend: Backend,
  data: ArrayLike<number>,
  shape: readonly number[],
): Tensor {
  return new Tensor(backend, backend.upload(data), shape, { requiresGrad: true });
}

/**
 * The result of an op: records `backward` on the tape when gradients are enabled and an input
 * needs them.
 */
export function result(
  op: string,
  backend: Backend,
  storage: Storage,
  shape: readonly number[],
  inputs: readonly Tensor[],
  backward: (grad: Storage) => (Storage | null)[],
): Tensor {
  const track = gradEnabled && inputs.some((t) => t.requiresGrad);
  return new Tensor(backend, storage, shape, {
    node: track ? { op, inputs, backward } : null,
  });
}

/**
 * Back-propagates from `loss` (one element): accumulates into every parameter's gradient sink and
 * sets {@link Tensor.grad} of other leaves.
 */
export function backward(loss: Tensor): void {
  if (loss.size !== 1) {
    throw new RangeError(`backward needs a one-element loss, got shape [${loss.shape}]`);
  }
  if (!loss.requiresGrad) throw new Error("backward: the loss does not depend on any parameter");
  const be = loss.backend;
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[loss, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const grads = new Map<Tensor, Storage>();
  grads.set(loss, be.upload([1]));
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    if (t.node) {
      const gs = t.node.backward(g);
      t.node.inputs.forEach((inp, j) => {
        const gi = gs[j];
        if (!gi || !inp.requiresGrad) return;
        if (gi.length !== inp.size) {
          throw new Error(
            `${t.node!.op}: gradient of input ${j} has ${gi.length} elements, expected ${inp.size}`,
          );
        }
        const prev = grads.get(inp);
        grads.set(
          inp,
          prev
            ? be.binary("add", prev, gi, { a: [prev.length], b: [gi.length], out: [gi.length] })
            : gi,
        );
      });
    } else if (t.gradSink) {
      be.axpy(t.gradSink, g, 1);
    } else {
      t.grad = new Tensor(be, g, t.shape);
    }
  }
}

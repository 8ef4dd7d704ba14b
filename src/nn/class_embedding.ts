/**
 * A learned embedding of class labels with a reserved null class (classifier-free guidance, Ho &
 * Salimans 2022): labels 0..classes-1 are the classes, label `classes` is "no class", the label a
 * conditional model is trained with on a `condDropout` share of its batches and sampled with for
 * the unconditional prediction.
 *
 * The lookup is a product with the one-hot matrix, onehot[b, c] = relu(1 - |label_b - c|) (exact for
 * integral labels), so the weight's gradient is the matmul's and every backend runs it with the
 * kernels it already has.
 *
 * @module
 */

import { affine, sub, unary } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { reshape } from "../ops/shape.ts";
import { type Tensor, tensor } from "../tensor.ts";
import type { ParamSource } from "./params.ts";

/** Largest number of classes a conditional network takes. */
export const MAX_CLASSES = 65_536;

/** Checks a class count, throwing a RangeError naming `field`. */
export function checkClasses(field: string, classes: unknown): void {
  if (!Number.isInteger(classes) || (classes as number) < 1 || (classes as number) > MAX_CLASSES) {
    throw new RangeError(`${field} must be an integer in [1, ${MAX_CLASSES}], got ${classes}`);
  }
}

/** A class embedding bound to its parameter. */
export class ClassEmbedding {
  /** Weight [classes + 1, dim]: one row a class, the last row the null class. */
  readonly weight: Tensor;
  /** The number of classes (the null class is this index). */
  readonly classes: number;

  /**
   * Declares `name.weight` [classes + 1, dim], uniform in ±sqrt(3) (unit variance, like PyTorch's
   * nn.Embedding's standard normal).
   */
  constructor(params: ParamSource, name: string, classes: number, dim: number) {
    checkClasses("classes", classes);
    this.classes = classes;
    this.weight = params.param(`${name}.weight`, [classes + 1, dim], {
      kind: "uniform",
      bound: Math.sqrt(3),
    });
  }

  /** labels [B] (integral floats in [0, classes]; `classes` is the null class) -> [B, dim]. */
  forward(labels: Tensor): Tensor {
    const be = labels.backend, n = this.classes + 1;
    const ids = tensor(be, Array.from({ length: n }, (_, i) => i), [1, n]);
    const distance = unary("abs", sub(reshape(labels, [labels.size, 1]), ids));
    const oneHot = unary("relu", affine(distance, -1, 1));
    return matmul(oneHot, this.weight);
  }

  /**
   * The embedding of `labels`, or of the null class for all `batch` samples when `labels` is
   * absent (the unconditional prediction). Throws a RangeError when `labels` has another size.
   */
  embed(labels: Tensor | undefined, batch: number, like: Tensor): Tensor {
    if (labels) {
      if (labels.size !== batch) {
        throw new RangeError(`labels has ${labels.size} entries for a batch of ${batch}`);
      }
      return this.forward(labels);
    }
    return this.forward(tensor(like.backend, new Float32Array(batch).fill(this.classes), [batch]));
  }
}

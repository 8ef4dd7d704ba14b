/**
 * Matrix products (plain and batched, with transposes) and the linear layer's op.
 *
 * @module
 */

import type { LinearActivation, MatmulSpec, Storage } from "../backend.ts";
import { result, type Tensor } from "../tensor.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use the transpose of the last two axes of `a`. */
  transA?: boolean;
  /** Use the transpose of the last two axes of `b`. */
  transB?: boolean;
}

/**
 * op(a) @ op(b). Both 2-D, or 3-D with a common leading batch axis, or one 3-D and one 2-D (the
 * 2-D operand is shared by every batch entry).
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const tA = options.transA ?? false, tB = options.transB ?? false;
  if (a.shape.length < 2 || a.shape.length > 3 || b.shape.length < 2 || b.shape.length > 3) {
    throw new RangeError(`matmul needs 2-D or 3-D operands, got [${a.shape}] and [${b.shape}]`);
  }
  const batchA = a.shape.length === 3, batchB = b.shape.length === 3;
  const batch = batchA ? a.shape[0] : batchB ? b.shape[0] : 1;
  if (batchA && batchB && a.shape[0] !== b.shape[0]) {
    throw new RangeError(`matmul batch sizes differ: [${a.shape}] and [${b.shape}]`);
  }
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const m = tA ? ac : ar, k = tA ? ar : ac, kb = tB ? bc : br, n = tB ? br : bc;
  if (k !== kb) {
    throw new RangeError(
      `matmul inner sizes differ: [${a.shape}]${tA ? "ᵀ" : ""} @ [${b.shape}]${tB ? "ᵀ" : ""}`,
    );
  }
  const be = a.backend;
  // Every product here has the forward's batch; the spec names what differs.
  const mm = (x: Storage, y: Storage, spec: Omit<MatmulSpec, "batch">) =>
    be.matmul(x, y, { batch, ...spec });
  const y = mm(a.storage, b.storage, { m, k, n, transA: tA, transB: tB, batchA, batchB });
  const outShape = batchA || batchB ? [batch, m, n] : [m, n];
  return result("matmul", be, y, outShape, [a, b], (g) => {
    // Gradients of the stored operands, as batched products; shared operands sum over the batch.
    let ga: Storage | null = null, gb: Storage | null = null;
    if (a.requiresGrad) {
      ga = !tA
        ? mm(g, b.storage, { m, k: n, n: k, transB: !tB, batchB })
        : mm(b.storage, g, { m: k, k: n, n: m, transA: tB, transB: true, batchA: batchB });
      if (!batchA && batch > 1) ga = be.reduceSum(ga, [batch, ar * ac], [1, ar * ac]);
    }
    if (b.requiresGrad) {
      gb = !tB
        ? mm(a.storage, g, { m: k, k: m, n, transA: !tA, batchA })
        : mm(g, a.storage, { m: n, k: m, n: k, transA: true, transB: tA, batchB: batchA });
      if (!batchB && batch > 1) gb = be.reduceSum(gb, [batch, br * bc], [1, br * bc]);
    }
    return [ga, gb];
  });
}

/**
 * act(x @ weightᵀ + bias), with weight stored [out, in] as in PyTorch's nn.Linear: one fused
 * kernel ({@link LinalgOps.linear}) forward. Backward: the activation's gradient (ReLU's from the
 * output: y > 0 exactly where the sum was), then the two products and the bias's column sums.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  activation: LinearActivation = "none",
): Tensor {
  if (x.shape.length < 2 || weight.shape.length !== 2) {
    throw new RangeError(
      `linear needs x [..., in] and weight [out, in], got [${x.shape}] and [${weight.shape}]`,
    );
  }
  // Leading axes of x are rows: x is contiguous, so [..., k] is [m, k].
  const k = x.shape[x.shape.length - 1];
  const m = x.shape.slice(0, -1).reduce((a, d) => a * d, 1);
  const [n, kw] = weight.shape;
  if (k !== kw || (bias && (bias.shape.length !== 1 || bias.shape[0] !== n))) {
    throw new RangeError(
      `linear: x [${x.shape}], weight [${weight.shape}] and bias [${bias?.shape ?? ""}] do not fit`,
    );
  }
  const be = x.backend;
  const y = be.linear(x.storage, weight.storage, bias?.storage ?? null, { m, k, n, activation });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return result("linear", be, y, [...x.shape.slice(0, -1), n], inputs, (g) => {
    const gs = activation === "relu" ? be.unaryBackward("relu", y, g) : g;
    const gx = x.requiresGrad
      ? be.matmul(gs, weight.storage, { batch: 1, m, k: n, n: k, transB: false })
      : null;
    const gw = weight.requiresGrad
      ? be.matmul(gs, x.storage, { batch: 1, m: n, k: m, n: k, transA: true, transB: false })
      : null;
    const gb = bias?.requiresGrad ? be.reduceSum(gs, [m, n], [1, n]) : null;
    return [gx, gw, gb];
  });
}

/**
 * The `reference` backend: plain TypeScript loops over typed arrays. Slow and obviously correct; the
 * oracle that every other backend is tested against, and the last fallback. With `dtype: "float64"`
 * it computes in double precision, which the gradient checks use.
 *
 * The backend is the sum of its op groups (one file each) over one {@link ReferenceMemory}.
 *
 * @example Adding two vectors
 * ```ts
 * import { createReferenceBackend } from "./mod.ts";
 *
 * const be = createReferenceBackend();
 * const a = be.upload([1, 2]), b = be.upload([3, 4]);
 * const sum = be.binary("add", a, b, { a: [2], b: [2], out: [2] });
 * console.log(await be.read(sum)); // Float32Array [4, 6]
 * ```
 *
 * @module
 */

import type { Backend, DType } from "../../backend.ts";
import { convOps } from "./conv.ts";
import { elementwiseOps } from "./elementwise.ts";
import { layoutOps } from "./layout.ts";
import { linalgOps } from "./linalg.ts";
import { lossOps } from "./loss.ts";
import { memoryOps, ReferenceMemory } from "./memory.ts";
import { normOps } from "./norm.ts";
import { optimOps } from "./optim.ts";
import { randomOps } from "./random.ts";
import { reductionOps } from "./reduction.ts";

export { ReferenceMemory, ReferenceStorage } from "./memory.ts";

/** Options of {@link createReferenceBackend}. */
export interface ReferenceOptions {
  /** Element type; `float64` for gradient checks. Default `float32`. */
  dtype?: DType;
}

/** The reference backend. */
export interface ReferenceBackend extends Backend {
  /** Always `"reference"`. */
  readonly name: "reference";
}

/** A reference backend computing in `options.dtype` (default float32). */
export function createReferenceBackend(options: ReferenceOptions = {}): ReferenceBackend {
  const mem = new ReferenceMemory(options.dtype ?? "float32");
  return {
    name: "reference",
    dtype: mem.dtype,
    ...memoryOps(mem),
    ...elementwiseOps(mem),
    ...reductionOps(mem),
    ...linalgOps(mem),
    ...convOps(mem),
    ...normOps(mem),
    ...layoutOps(mem),
    ...lossOps(mem),
    ...optimOps(),
    ...randomOps(),
  };
}

/**
 * Gradient checking against central finite differences, in float64 on the reference backend.
 *
 * For a function `fn` of some input tensors, {@link gradCheck} forms the scalar
 * f = sum_k sum(fn(inputs)_k * R_k), where each R_k is a fixed random tensor of the k-th output's
 * shape (so every output element matters), back-propagates with {@link backward}, and compares
 * every element of every differentiable input's `.grad` with
 * (f(x + h e_i) - f(x - h e_i)) / 2h, evaluated under {@link noGrad}.
 *
 * A {@link GradCase} is one row of a table of such checks (function, input shapes and value
 * ranges, options); {@link checkGradCase} draws its inputs and runs the check.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend } from "../../src/backend.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { Random } from "../../src/random.ts";
import { sizeOf } from "../../src/shape.ts";
import { backward, noGrad, type Tensor, tensor, variable } from "../../src/tensor.ts";
import { add, mul } from "../../src/ops/elementwise.ts";
import { sum } from "../../src/ops/reduce.ts";
import type { ParamLayout, ParamStore } from "../../src/nn/params.ts";

/** The default finite-difference step. */
export const H = 1e-6;
/** The default bound on the relative error |a - n| / max(1, |a|, |n|). */
export const TOL = 1e-6;

/** A float64 reference backend, the one gradient checks run on. */
export function float64Backend(): Backend {
  return createReferenceBackend({ dtype: "float64" });
}

/** One input of a gradient check: its values, its shape and whether it is differentiated. */
export interface GradInput {
  /** The values, row-major. */
  data: ArrayLike<number>;
  /** The shape. */
  shape: readonly number[];
  /** False for constant inputs (targets, indices): no gradient is checked. Default true. */
  grad?: boolean;
}

/** Options of {@link gradCheck}. */
export interface GradCheckOptions {
  /** Finite-difference step (default {@link H}). */
  h?: number;
  /** Bound on the maximum relative error (default {@link TOL}). */
  tol?: number;
  /** Seed of the random output weights R (default 1234). */
  seed?: number;
  /** Accept an identically zero analytic gradient for these input indices (default none). */
  allowZeroGrad?: readonly number[];
}

/** What {@link gradCheck} measured, per differentiable input (null for constant inputs). */
export interface GradCheckReport {
  /** Maximum relative error per input. */
  maxRelErr: (number | null)[];
  /** The analytic gradients, per input. */
  analytic: (Float64Array | null)[];
  /** The numeric gradients, per input. */
  numeric: (Float64Array | null)[];
}

/** Relative error of two numbers, |a - n| / max(1, |a|, |n|). */
export function relErr(a: number, n: number): number {
  return Math.abs(a - n) / Math.max(1, Math.abs(a), Math.abs(n));
}

function asList(y: Tensor | readonly Tensor[]): readonly Tensor[] {
  return Array.isArray(y) ? y : [y as Tensor];
}

/**
 * Checks the gradients of `fn` at `inputs` against central finite differences and asserts that the
 * maximum relative error of every differentiable input is below the tolerance, that every
 * differentiable input received a gradient of its shape, and (unless allowed) that the gradient is
 * not identically zero (a vacuous check).
 */
export async function gradCheck(
  be: Backend,
  inputs: readonly GradInput[],
  fn: (xs: Tensor[]) => Tensor | readonly Tensor[],
  options: GradCheckOptions = {},
): Promise<GradCheckReport> {
  const h = options.h ?? H, tol = options.tol ?? TOL;
  assert.equal(be.dtype, "float64", "gradient checks need a float64 backend");
  for (const [i, inp] of inputs.entries()) {
    assert.equal(inp.data.length, sizeOf(inp.shape), `input ${i}: data does not fit its shape`);
  }

  // The analytic gradients.
  const xs = inputs.map((inp) =>
    inp.grad === false ? tensor(be, inp.data, inp.shape) : variable(be, inp.data, inp.shape)
  );
  const ys = asList(fn(xs));
  assert.ok(ys.length > 0, "fn returned no outputs");
  const rng = new Random(options.seed ?? 1234, 7);
  const weights = ys.map((y) => tensor(be, rng.normals(y.size), y.shape));
  const objective = (outs: readonly Tensor[]): Tensor => {
    let f: Tensor | null = null;
    for (const [k, y] of outs.entries()) {
      assert.deepEqual([...y.shape], [...weights[k].shape], `output ${k} changed shape`);
      const term = sum(mul(y, weights[k]));
      f = f === null ? term : add(f, term);
    }
    return f!;
  };
  const f = objective(ys);
  assert.equal(f.size, 1);
  backward(f);

  // The numeric gradients: f at x +- h e_i, without recording.
  const evalAt = async (data: ArrayLike<number>[]): Promise<number> => {
    const out = noGrad(() => {
      const ts = inputs.map((inp, j) => tensor(be, data[j], inp.shape));
      return objective(asList(fn(ts)));
    });
    assert.equal(out.node, null, "noGrad recorded a node");
    return (await out.toArray())[0];
  };

  const report: GradCheckReport = { maxRelErr: [], analytic: [], numeric: [] };
  const base = inputs.map((inp) => Float64Array.from(inp.data));
  for (const [i, inp] of inputs.entries()) {
    if (inp.grad === false) {
      report.maxRelErr.push(null);
      report.analytic.push(null);
      report.numeric.push(null);
      continue;
    }
    const g = xs[i].grad;
    assert.ok(g !== null, `input ${i} [${inp.shape}] received no gradient`);
    assert.deepEqual([...g.shape], [...inp.shape], `input ${i}: gradient shape`);
    const analytic = Float64Array.from(await g.toArray());
    assert.equal(analytic.length, inp.data.length, `input ${i}: gradient length`);
    const numeric = new Float64Array(analytic.length);
    const data: ArrayLike<number>[] = [...base];
    for (let e = 0; e < analytic.length; e++) {
      const plus = Float64Array.from(base[i]), minus = Float64Array.from(base[i]);
      plus[e] += h;
      minus[e] -= h;
      data[i] = plus;
      const fp = await evalAt(data);
      data[i] = minus;
      const fm = await evalAt(data);
      numeric[e] = (fp - fm) / (2 * h);
    }
    let worst = 0, worstAt = 0;
    for (let e = 0; e < analytic.length; e++) {
      const r = relErr(analytic[e], numeric[e]);
      if (!(r <= worst)) {
        worst = r;
        worstAt = e;
      }
    }
    assert.ok(
      worst < tol,
      `input ${i} [${inp.shape}]: max relative error ${worst} at element ${worstAt} ` +
        `(analytic ${analytic[worstAt]}, numeric ${numeric[worstAt]}) exceeds ${tol}`,
    );
    if (!(options.allowZeroGrad ?? []).includes(i)) {
      assert.ok(
        analytic.some((v) => v !== 0),
        `input ${i} [${inp.shape}]: gradient is identically zero, the check is vacuous`,
      );
    }
    report.maxRelErr.push(worst);
    report.analytic.push(analytic);
    report.numeric.push(numeric);
  }
  return report;
}

/** How the values of one input are drawn: `n` numbers from `rng`. */
export type Values = (rng: Random, n: number) => Float64Array;

/** One input of a {@link GradCase}: its shape, how its values are drawn, whether it is differentiated. */
export interface InputSpec {
  /** The shape. */
  shape: readonly number[];
  /** How the values are drawn (default: standard normals). */
  values?: Values;
  /** False for constant inputs (targets, indices): no gradient is checked. Default true. */
  grad?: boolean;
}

/** One row of a table of gradient checks: a function, the inputs it is checked at, and options. */
export interface GradCase {
  /** What the row checks (the name its test reports). */
  name: string;
  /** Seed and stream of the `Random` that draws the inputs. */
  seed: readonly [seed: number, stream?: number];
  /** The inputs, drawn in order from the row's `Random`, or built from it. */
  inputs: readonly InputSpec[] | ((rng: Random) => GradInput[]);
  /** The function whose gradients are checked. */
  fn: (xs: Tensor[]) => Tensor | readonly Tensor[];
  /** The shape `fn`'s single output must have, asserted at every evaluation. */
  out?: readonly number[];
  /** Step, tolerance or allowed zero gradients, where they differ from the defaults. */
  options?: GradCheckOptions;
  /** Further assertions on what {@link gradCheck} measured. */
  verify?: (report: GradCheckReport) => void;
}

/** Draws a {@link GradCase}'s inputs and runs {@link gradCheck} on it. */
export async function checkGradCase(be: Backend, c: GradCase): Promise<GradCheckReport> {
  const rng = new Random(c.seed[0], c.seed[1] ?? 0);
  const inputs = typeof c.inputs === "function" ? c.inputs(rng) : c.inputs.map((spec) => ({
    data: (spec.values ?? normals)(rng, sizeOf(spec.shape)),
    shape: spec.shape,
    grad: spec.grad,
  }));
  const out = c.out;
  const fn = out === undefined ? c.fn : (xs: Tensor[]) => {
    const y = c.fn(xs);
    assert.ok(!Array.isArray(y), "`out` applies to a function of one output");
    assert.deepEqual([...(y as Tensor).shape], [...out], "output shape");
    return y;
  };
  const report = await gradCheck(be, inputs, fn, c.options);
  c.verify?.(report);
  return report;
}

/** `n` standard normals from `rng`. */
export function normals(rng: Random, n: number): Float64Array {
  return rng.normals(n);
}

/** `n` uniforms in [lo, hi) from `rng`. */
export function uniformIn(rng: Random, n: number, lo: number, hi: number): Float64Array {
  const u = rng.uniforms(n);
  for (let i = 0; i < n; i++) u[i] = lo + (hi - lo) * u[i];
  return u;
}

/** `n` values with random sign and magnitude in [lo, hi): away from zero by at least lo. */
export function awayFromZero(rng: Random, n: number, lo: number, hi: number): Float64Array {
  const mag = uniformIn(rng, n, lo, hi), s = rng.uniforms(n);
  for (let i = 0; i < n; i++) if (s[i] < 0.5) mag[i] = -mag[i];
  return mag;
}

/**
 * Values on two interleaved lattices, so that any `a` value and any `b` value differ by at least
 * 0.3 (no ties for maximum/minimum, whatever broadcasting pairs them): a = k + 0.25 + 0.1 u and
 * b = k + 0.75 + 0.1 u with integers k in [-2, 2].
 */
export function untied(rng: Random, n: number, lattice: "a" | "b"): Float64Array {
  const k = rng.uniforms(n), u = rng.uniforms(n), out = new Float64Array(n);
  const off = lattice === "a" ? 0.25 : 0.75;
  for (let i = 0; i < n; i++) out[i] = Math.floor(k[i] * 5) - 2 + off + 0.1 * u[i];
  return out;
}

/** The worst relative error of a network's parameter gradients, and where it was. */
export interface ParamGradReport {
  /** The worst |analytic - numeric| / max(1e-3, |analytic|, |numeric|). */
  worst: number;
  /** The parameter element and both gradients at the worst error. */
  at: string;
}

/**
 * Compares the gradients `grads` of `loss` with respect to a network's flat parameters (`values`
 * in `store`, laid out by `layout`) with central finite differences: at every element of every
 * tensor (`elements: "all"`), or at one element per tensor drawn from `rng`.
 */
export async function paramGradError(
  be: Backend,
  layout: ParamLayout,
  store: ParamStore,
  values: ArrayLike<number>,
  grads: ArrayLike<number>,
  loss: () => Tensor,
  elements: "all" | Random,
): Promise<ParamGradReport> {
  let worst = 0, at = "";
  for (const e of layout.entries) {
    const picks = elements === "all"
      ? Array.from({ length: e.size }, (_, k) => k)
      : [elements.int(0, e.size)];
    for (const k of picks) {
      const i = e.offset + k;
      const lossAt = async (v: number) => {
        be.write(store.values, [v], i);
        return (await noGrad(loss).toArray())[0];
      };
      const fp = await lossAt(values[i] + H), fm = await lossAt(values[i] - H);
      be.write(store.values, [values[i]], i);
      const numeric = (fp - fm) / (2 * H), analytic = grads[i];
      const err = Math.abs(analytic - numeric) /
        Math.max(1e-3, Math.abs(analytic), Math.abs(numeric));
      if (err > worst) {
        worst = err;
        at = `${e.name}[${k}] analytic ${analytic} numeric ${numeric}`;
      }
    }
  }
  return { worst, at };
}

/** A {@link Values} generator: standard normals times `scale`. */
export function scaledNormals(scale = 1): Values {
  return (rng, n) => {
    const d = rng.normals(n);
    for (let i = 0; i < d.length; i++) d[i] *= scale;
    return d;
  };
}

/**
 * Registers one test, `grad: <title>`, with one step per row of the table, each checked by
 * {@link checkGradCase} on `be` (row names must be unique).
 */
export function gradTable(be: Backend, title: string, rows: readonly GradCase[]): void {
  Deno.test(`grad: ${title}`, async (t) => {
    assert.equal(new Set(rows.map((r) => r.name)).size, rows.length, "row names are unique");
    for (const row of rows) {
      await t.step(row.name, async () => {
        await checkGradCase(be, row);
      });
    }
  });
}

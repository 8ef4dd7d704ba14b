/**
 * Gradient checks: every differentiable op's backward rule against central finite differences, in
 * float64 on the reference backend (see tests/helpers/gradcheck.ts for the method).
 *
 * The checks are tables, one per family of ops (binary with broadcasting, unary, matmul and
 * linear, conv2d, normalisation, shape, reductions, losses; composites and the tape are in
 * grad_tape_test.ts): each row names the
 * function, the shapes and value ranges of its inputs and any option that differs from the
 * defaults, and {@link gradTable} turns each table into one test with one step per row. The
 * unary table is derived from the kernels' `UNARY_OPS`, less `NON_DIFFERENTIABLE_UNARY_OPS`, and
 * the binary table covers every kernel of `BINARY_OPS`. Exact checks of particular scenarios (ties,
 * zero gradients, ops without a gradient, accumulation, the tape and its errors, gradCheck itself)
 * are plain tests beside their family.
 */

import assert from "node:assert/strict";
import {
  type BinaryOp,
  NON_DIFFERENTIABLE_UNARY_OPS,
  UNARY_OPS,
  type UnaryOp,
} from "../../src/backend.ts";
import { Random } from "../../src/random.ts";
import { backward, type Tensor, variable } from "../../src/tensor.ts";
import {
  add,
  affine,
  combine,
  div,
  maximum,
  minimum,
  mul,
  relu,
  square,
  sub,
  unary,
} from "../../src/ops/elementwise.ts";
import { linear, matmul } from "../../src/ops/matmul.ts";
import { conv2d } from "../../src/ops/conv.ts";
import { groupNorm, softmax } from "../../src/ops/norm.ts";
import { concat, permute, reshape, slice, split, upsampleNearest } from "../../src/ops/shape.ts";
import { mean, sum } from "../../src/ops/reduce.ts";
import { regressionLoss } from "../../src/ops/loss.ts";
import {
  awayFromZero,
  float64Backend,
  type GradCase,
  gradTable,
  type InputSpec,
  scaledNormals,
  uniformIn,
  untied,
  type Values,
} from "../helpers/gradcheck.ts";

const be = float64Backend();

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function shapeName(s: readonly number[]): string {
  return `[${s.join(",")}]`;
}

// ---- binary ops with broadcasting ----------------------------------------------------------------

const BROADCAST_SHAPES: [number[], number[]][] = [
  [[2, 3], [2, 3]],
  [[3, 4], [4]],
  [[4], [3, 4]],
  [[2, 1, 3], [1, 4, 1]],
  [[3, 4], [1]],
  [[1], [3, 4]],
  [[2, 3, 1], [3, 5]],
];

type BinaryFn = (a: Tensor, b: Tensor) => Tensor;

/** Divisors: magnitudes in [0.5, 1.5). */
const divisor: Values = (rng, n) => awayFromZero(rng, n, 0.5, 1.5);

/** Operands on disjoint lattices: every broadcast pair differs by at least 0.3 (no ties). */
const UNTIED_A: Values = (rng, n) => untied(rng, n, "a");
const UNTIED_B: Values = (rng, n) => untied(rng, n, "b");

/** Each binary kernel's tensor op and how its operands are drawn. */
const BINARY_FAMILY: Record<BinaryOp, { name: string; fn: BinaryFn; a: Values; b: Values }> = {
  add: { name: "add", fn: add, a: scaledNormals(), b: scaledNormals() },
  sub: { name: "sub", fn: sub, a: scaledNormals(), b: scaledNormals() },
  mul: { name: "mul", fn: mul, a: scaledNormals(), b: scaledNormals() },
  div: { name: "div", fn: div, a: scaledNormals(), b: divisor },
  max: { name: "maximum", fn: maximum, a: UNTIED_A, b: UNTIED_B },
  min: { name: "minimum", fn: minimum, a: UNTIED_A, b: UNTIED_B },
};

const BINARY_ROWS: GradCase[] = [
  ...Object.values(BINARY_FAMILY).flatMap(({ name, fn, a, b }) =>
    BROADCAST_SHAPES.map(([sa, sb]): GradCase => ({
      name: `${shapeName(sa)} ${name} ${shapeName(sb)}`,
      seed: [11, size(sa) * 31 + size(sb)],
      inputs: [{ shape: sa, values: a }, { shape: sb, values: b }],
      fn: ([x, y]) => fn(x, y),
    }))
  ),
  {
    name: "[2,3] div constant [3]: the numerator alone gets a gradient",
    seed: [12],
    inputs: [{ shape: [2, 3] }, { shape: [3], values: divisor, grad: false }],
    fn: ([x, y]) => div(x, y),
  },
  {
    name: "constant [2,3] div [3]: the divisor alone gets a gradient",
    seed: [12, 1],
    inputs: [{ shape: [2, 3], grad: false }, { shape: [3], values: divisor }],
    fn: ([x, y]) => div(x, y),
  },
];

gradTable(be, "binary ops with broadcasting", BINARY_ROWS);

Deno.test("grad: maximum/minimum send the gradient to the first input on ties", async () => {
  const a = variable(be, [1, 2, 3], [3]), b = variable(be, [1, 5, 0], [3]);
  backward(sum(maximum(a, b)));
  assert.deepEqual([...await a.grad!.toArray()], [1, 0, 1]);
  assert.deepEqual([...await b.grad!.toArray()], [0, 1, 0]);
  const c = variable(be, [1, 2, 3], [3]), d = variable(be, [1, 5, 0], [3]);
  backward(sum(minimum(c, d)));
  assert.deepEqual([...await c.grad!.toArray()], [1, 1, 0]);
  assert.deepEqual([...await d.grad!.toArray()], [0, 0, 1]);
});

// ---- unary ops ---------------------------------------------------------------------------------

interface Domain {
  label: string;
  values: Values;
}

const WIDE: Domain = { label: "x in [-4, 4)", values: (rng, n) => uniformIn(rng, n, -4, 4) };
const POSITIVE: Domain = { label: "x in [0.2, 3)", values: (rng, n) => uniformIn(rng, n, 0.2, 3) };
const NONZERO: Domain = {
  label: "|x| in [0.1, 2)",
  values: (rng, n) => awayFromZero(rng, n, 0.1, 2),
};
const NORMAL: Domain = { label: "x standard normal", values: scaledNormals() };

/**
 * Where each unary op is checked, when not at standard normals: inside its domain, and away from
 * the kinks of relu and abs at 0.
 */
const UNARY_DOMAIN: { readonly [op in UnaryOp]?: Domain } = {
  relu: NONZERO,
  abs: NONZERO,
  log: POSITIVE,
  sqrt: POSITIVE,
  rsqrt: POSITIVE,
  silu: WIDE,
  gelu: WIDE,
  tanh: WIDE,
  sigmoid: WIDE,
  sin: WIDE,
  cos: WIDE,
};

const DIFFERENTIABLE_UNARY_OPS = UNARY_OPS.filter((op) => !NON_DIFFERENTIABLE_UNARY_OPS.has(op));

/** Scalar affine maps a * x + b, with and without b. */
const AFFINE_MAPS: [string, (x: Tensor) => Tensor][] = [
  ["affine(x, 2.5, -0.3)", (x) => affine(x, 2.5, -0.3)],
  ["affine(x, 1, 0.7)", (x) => affine(x, 1, 0.7)],
  ["affine(x, -0.5)", (x) => affine(x, -0.5)],
];

const unaryRow = (name: string, domain: Domain, fn: (x: Tensor) => Tensor): GradCase => ({
  name: `${name}, ${domain.label}`,
  seed: [21, name.length],
  inputs: [{ shape: [3, 4], values: domain.values }],
  fn: ([x]) => fn(x),
});

const UNARY_ROWS: GradCase[] = [
  ...DIFFERENTIABLE_UNARY_OPS.map((op) =>
    unaryRow(op, UNARY_DOMAIN[op] ?? NORMAL, (x) => unary(op, x))
  ),
  ...AFFINE_MAPS.map(([name, fn]) => unaryRow(name, NORMAL, fn)),
];

gradTable(be, "unary ops on [3,4]", UNARY_ROWS);

/** combine's linear combinations of one to four inputs, with a scale, one input in two terms. */
const COMBINE_CASES: { coef: number[]; scale?: number }[] = [
  { coef: [0.6] },
  { coef: [1, -0.4] },
  { coef: [0.3, 1.7, -2], scale: 0.5 },
  { coef: [-1, 0.25, 0.8, 1.5], scale: -1.25 },
];
const COMBINE_ROWS: GradCase[] = COMBINE_CASES.map(({ coef, scale }, r) => ({
  name: `combine of ${coef.length} term${coef.length > 1 ? "s" : ""}${
    scale === undefined ? "" : `, scale ${scale}`
  }`,
  seed: [23, r],
  inputs: coef.map(() => ({ shape: [3, 4], values: NORMAL.values })),
  fn: (xs: Tensor[]) => combine(xs.map((x, t) => [x, coef[t]] as const), { scale }),
}));
COMBINE_ROWS.push({
  name: "combine with one input in two terms",
  seed: [23, 9],
  inputs: [{ shape: [5], values: NORMAL.values }, { shape: [5], values: NORMAL.values }],
  fn: ([x, y]) => combine([[x, 0.5], [y, -1], [x, 2]]),
});

gradTable(be, "combine on [3,4]", COMBINE_ROWS);

Deno.test("grad: a clipped combine has no gradient", () => {
  const x = variable(be, [0.5, -1.5, 2.25], [3]);
  assert.throws(() => backward(sum(combine([[x, 2]], { clip: 1 }))), /does not depend/);
});

Deno.test("grad: relu passes no gradient where the input is negative", async () => {
  const x = variable(be, [-1, 2, -3, 4], [4]);
  backward(sum(relu(x)));
  assert.deepEqual([...await x.grad!.toArray()], [0, 1, 0, 1]);
});

Deno.test("grad: the non-differentiable unary ops refuse a backward pass", async (t) => {
  for (const op of NON_DIFFERENTIABLE_UNARY_OPS) {
    await t.step(op, () => {
      const x = variable(be, [0.5, -1.5, 2.25], [3]);
      assert.throws(() => backward(sum(unary(op, x))), new RegExp(`${op} has no gradient`));
    });
  }
});

// ---- matmul and linear -------------------------------------------------------------------------

const B = 2, M = 3, K = 4, N = 2;
const MATMUL_MODES: [string, boolean, boolean][] = [
  ["2-D @ 2-D", false, false],
  ["batched 3-D @ 3-D", true, true],
  ["3-D @ shared 2-D", true, false],
  ["shared 2-D @ 3-D", false, true],
];

const MATMUL_ROWS: GradCase[] = [
  ...MATMUL_MODES.flatMap(([mode, batchA, batchB]) =>
    [false, true].flatMap((transA) =>
      [false, true].map((transB): GradCase => ({
        name: `matmul ${mode}, transA=${transA} transB=${transB}`,
        seed: [31, (transA ? 2 : 0) + (transB ? 1 : 0)],
        inputs: [
          { shape: [...(batchA ? [B] : []), ...(transA ? [K, M] : [M, K])] },
          { shape: [...(batchB ? [B] : []), ...(transB ? [N, K] : [K, N])] },
        ],
        fn: ([a, b]) => matmul(a, b, { transA, transB }),
        out: batchA || batchB ? [B, M, N] : [M, N],
      }))
    )
  ),
  {
    name: "matmul of a row by a column, [1,5] @ [5,1]",
    seed: [32],
    inputs: [{ shape: [1, 5] }, { shape: [5, 1] }],
    fn: ([a, b]) => matmul(a, b),
    out: [1, 1],
  },
  {
    name: "matmul of a column by a row, [4,1] @ [1,3]",
    seed: [32, 1],
    inputs: [{ shape: [4, 1] }, { shape: [1, 3] }],
    fn: ([a, b]) => matmul(a, b),
    out: [4, 3],
  },
  {
    name: "linear x [5,3], weight [4,3], bias [4]",
    seed: [33],
    inputs: [{ shape: [5, 3] }, { shape: [4, 3] }, { shape: [4] }],
    fn: ([x, w, b]) => linear(x, w, b),
    out: [5, 4],
  },
  {
    name: "linear x [5,3], weight [4,3], no bias",
    seed: [33, 1],
    inputs: [{ shape: [5, 3] }, { shape: [4, 3] }],
    fn: ([x, w]) => linear(x, w, null),
    out: [5, 4],
  },
  {
    name: "linear x [2,5,3] (batched), weight [4,3], bias [4]",
    seed: [33, 2],
    inputs: [{ shape: [2, 5, 3] }, { shape: [4, 3] }, { shape: [4] }],
    fn: ([x, w, b]) => linear(x, w, b),
    out: [2, 5, 4],
  },
  {
    name: "linear with ReLU fused, x [6,3], weight [4,3], bias [4] (gradient through the output)",
    seed: [33, 3],
    inputs: [{ shape: [6, 3] }, { shape: [4, 3] }, { shape: [4] }],
    fn: ([x, w, b]) => linear(x, w, b, "relu"),
    out: [6, 4],
  },
];

gradTable(be, "matmul (every batching mode and transpose) and linear", MATMUL_ROWS);

// ---- conv2d ------------------------------------------------------------------------------------

interface ConvCase {
  x: number[];
  w: number[];
  stride: number;
  padding: number;
  bias: boolean;
  out: number[];
  /** What else the row checks. */
  note?: string;
}

/** Kernels 3x3, 1x1 and 2x3; strides 1 and 2; padding 0 and 1; batch 1 and 2; with and without bias. */
const CONV_CASES: ConvCase[] = [
  { x: [2, 3, 5, 5], w: [4, 3, 3, 3], stride: 1, padding: 1, bias: true, out: [2, 4, 5, 5] },
  { x: [1, 3, 4, 5], w: [4, 3, 3, 3], stride: 1, padding: 1, bias: false, out: [1, 4, 4, 5] },
  { x: [1, 3, 5, 7], w: [4, 3, 3, 3], stride: 2, padding: 1, bias: true, out: [1, 4, 3, 4] },
  { x: [2, 3, 5, 7], w: [4, 3, 3, 3], stride: 2, padding: 1, bias: false, out: [2, 4, 3, 4] },
  { x: [2, 3, 4, 3], w: [4, 3, 1, 1], stride: 1, padding: 0, bias: true, out: [2, 4, 4, 3] },
  { x: [1, 3, 3, 3], w: [4, 3, 1, 1], stride: 1, padding: 0, bias: false, out: [1, 4, 3, 3] },
  { x: [2, 2, 4, 5], w: [3, 2, 2, 3], stride: 1, padding: 1, bias: true, out: [2, 3, 5, 5] },
  {
    x: [1, 2, 6, 6],
    w: [2, 2, 3, 3],
    stride: 2,
    padding: 0,
    bias: true,
    out: [1, 2, 2, 2],
    note: "rows left over",
  },
];

const CONV_ROWS: GradCase[] = CONV_CASES.map((c) => ({
  name: `${c.w[2]}x${c.w[3]} stride ${c.stride} pad ${c.padding}, x ${shapeName(c.x)}, ` +
    `${c.w[1]} -> ${c.w[0]} channels, ${c.bias ? "bias" : "no bias"}` +
    (c.note ? ` (${c.note})` : ""),
  seed: [41, size(c.x)],
  inputs: [{ shape: c.x }, { shape: c.w }, ...(c.bias ? [{ shape: [c.w[0]] }] : [])],
  fn: ([x, w, b]) => conv2d(x, w, b ?? null, { stride: c.stride, padding: c.padding }),
  out: c.out,
}));

gradTable(be, "conv2d", CONV_ROWS);

// ---- normalisation and softmax -----------------------------------------------------------------

/** [x shape, groups]. */
const GROUP_NORM_CASES: [number[], number][] = [
  [[2, 6, 3, 3], 3],
  [[2, 4], 2],
  [[1, 4, 2, 2], 4],
  [[2, 4, 3], 1],
];

const NORM_ROWS: GradCase[] = [
  ...GROUP_NORM_CASES.map(([shape, groups]): GradCase => ({
    name: `groupNorm (x, gamma and beta), x ${shapeName(shape)}, ${groups} groups`,
    seed: [51, size(shape) + groups],
    inputs: [
      // A non-zero mean and non-unit scale, so that the normalisation does something.
      { shape, values: (rng, n) => scaledNormals(1.7)(rng, n).map((v) => v + 0.5) },
      { shape: [shape[1]], values: (rng, n) => rng.normals(n).map((v) => 1 + 0.3 * v) },
      { shape: [shape[1]] },
    ],
    fn: ([x, g, b]) => groupNorm(x, g, b, groups),
    out: shape,
  })),
  ...[[3, 5], [2, 3, 4], [4, 1]].map((shape): GradCase => {
    // A softmax over one element is constant: its gradient is exactly zero.
    const single = shape[shape.length - 1] === 1;
    return {
      name: `softmax over the last axis of ${shapeName(shape)}` +
        (single ? " (one element: zero gradient)" : ""),
      seed: [61, size(shape)],
      inputs: [{ shape, values: scaledNormals(2) }],
      fn: ([x]) => softmax(x),
      out: shape,
      options: { allowZeroGrad: single ? [0] : [] },
    };
  }),
];

gradTable(be, "groupNorm and softmax", NORM_ROWS);

// ---- layout ------------------------------------------------------------------------------------

/** [x shape, permutation, output shape]. */
const PERMUTE_CASES: [number[], number[], number[]][] = [
  [[2, 3, 4], [2, 0, 1], [4, 2, 3]],
  [[2, 3, 2, 2], [0, 2, 3, 1], [2, 2, 2, 3]],
  [[3, 4], [1, 0], [4, 3]],
];

/** [start, length] of slices of axis 1 of [3,5,2]: start, middle, end, whole axis, one element. */
const SLICE_CASES: [number, number][] = [[0, 2], [1, 3], [3, 2], [0, 5], [2, 1]];

/** [x shape, factor]. */
const UPSAMPLE_CASES: [number[], number][] = [[[1, 2, 3, 2], 2], [[2, 1, 2, 3], 3]];

const SPLIT_X: InputSpec = { shape: [2, 5, 3] };

const SHAPE_ROWS: GradCase[] = [
  {
    name: "reshape [2,3,4] to [4,-1] (an inferred axis), then square",
    seed: [71],
    inputs: [{ shape: [2, 3, 4] }],
    fn: ([x]) => square(reshape(x, [4, -1])),
    out: [4, 6],
  },
  ...PERMUTE_CASES.map(([shape, perm, out]): GradCase => ({
    name: `permute ${shapeName(shape)} by ${shapeName(perm)}`,
    seed: [72, size(shape)],
    inputs: [{ shape }],
    fn: ([x]) => permute(x, perm),
    out,
  })),
  {
    name: "concat [2,1,3], [2,3,3], [2,2,3] (different sizes) along axis 1",
    seed: [73],
    inputs: [{ shape: [2, 1, 3] }, { shape: [2, 3, 3] }, { shape: [2, 2, 3] }],
    fn: (xs) => concat(xs, 1),
    out: [2, 6, 3],
  },
  {
    name: "concat [1,3], [2,3] along axis 0",
    seed: [73, 1],
    inputs: [{ shape: [1, 3] }, { shape: [2, 3] }],
    fn: (xs) => concat(xs, 0),
    out: [3, 3],
  },
  {
    name: "concat [2,2], constant [2,3], [2,1] along axis -1",
    seed: [73, 2],
    inputs: [{ shape: [2, 2] }, { shape: [2, 3], grad: false }, { shape: [2, 1] }],
    fn: (xs) => concat(xs, -1),
    out: [2, 6],
  },
  ...SLICE_CASES.map(([start, length]): GradCase => ({
    name: `slice axis 1 of [3,5,2], [${start}, ${start + length})`,
    seed: [74, start * 10 + length],
    inputs: [{ shape: [3, 5, 2] }],
    fn: ([x]) => slice(x, 1, start, length),
    out: [3, length, 2],
  })),
  {
    name: "slice axis -1 of [2,4], [1, 3)",
    seed: [75],
    inputs: [{ shape: [2, 4] }],
    fn: ([x]) => slice(x, -1, 1, 2),
    out: [2, 2],
  },
  {
    name: "split [2,5,3] into [2,1,2] along axis 1, every piece used",
    seed: [76],
    inputs: [SPLIT_X],
    fn: ([x]) => split(x, 1, [2, 1, 2]),
  },
  {
    name: "split [2,5,3] into [2,1,2] along axis 1, end pieces only: the middle gets zero gradient",
    seed: [76],
    inputs: [SPLIT_X],
    fn: ([x]) => {
      const [p0, , p2] = split(x, 1, [2, 1, 2]);
      return [p0, p2];
    },
    verify: (r) => {
      const g = r.analytic[0]!;
      for (let o = 0; o < 2; o++) {
        for (let i = 0; i < 3; i++) assert.equal(g[(o * 5 + 2) * 3 + i], 0);
      }
    },
  },
  ...UPSAMPLE_CASES.map(([shape, factor]): GradCase => ({
    name: `upsampleNearest ${shapeName(shape)} by ${factor}`,
    seed: [77, factor],
    inputs: [{ shape }],
    fn: ([x]) => upsampleNearest(x, factor),
    out: [shape[0], shape[1], shape[2] * factor, shape[3] * factor],
  })),
];

gradTable(be, "shape ops (reshape, permute, concat, slice, split, upsampleNearest)", SHAPE_ROWS);

// ---- reductions --------------------------------------------------------------------------------

/** [axes (all when undefined), keepDims, output shape] of reductions of [2,3,4]. */
const REDUCE_CASES: [number[] | undefined, boolean, number[]][] = [
  [undefined, false, []],
  [undefined, true, [1, 1, 1]],
  [[1], false, [2, 4]],
  [[1], true, [2, 1, 4]],
  [[0, 2], false, [3]],
  [[0, 2], true, [1, 3, 1]],
  [[-1], false, [2, 3]],
  [[0, 1, 2], true, [1, 1, 1]],
];

const REDUCE_ROWS: GradCase[] = ([["sum", sum], ["mean", mean]] as const).flatMap(([name, op]) =>
  REDUCE_CASES.map(([axes, keepDims, out]): GradCase => ({
    name: `${name} of [2,3,4], axes=${axes ? shapeName(axes) : "all"} keepDims=${keepDims}`,
    seed: [81, out.length + (keepDims ? 10 : 0) + (axes?.[0] ?? 5)],
    inputs: [{ shape: [2, 3, 4] }],
    fn: ([x]) => op(x, axes, keepDims),
    out,
  }))
);

gradTable(be, "sum and mean over all axes and chosen axes", REDUCE_ROWS);

// ---- losses ------------------------------------------------------------------------------------

/**
 * A row checking regressionLoss(kind, pred, target, delta) in pred, with standard-normal
 * predictions [4,3] and a constant target pred - diff.
 */
function lossRow(
  name: string,
  kind: "l2" | "l1" | "huber",
  diff: () => Float64Array,
  delta?: number,
): GradCase {
  const shape = [4, 3];
  return {
    name,
    seed: [91, 12],
    inputs: (rng) => {
      const d = diff(), pred = rng.normals(12);
      return [{ data: pred, shape }, { data: pred.map((p, i) => p - d[i]), shape, grad: false }];
    },
    fn: ([p, q]) => regressionLoss(kind, p, q, delta),
  };
}

const LOSS_ROWS: GradCase[] = [
  lossRow("l2, pred - target standard normal", "l2", () => new Random(92).normals(12)),
  lossRow(
    "l1, |pred - target| in [0.1, 1.5)",
    "l1",
    () => awayFromZero(new Random(93), 12, 0.1, 1.5),
  ),
  lossRow("huber delta 0.5, |pred - target| on both sides of delta", "huber", () => {
    const rng = new Random(94), n = 12;
    // Half the magnitudes in [0.05, 0.45] (quadratic part), half in [0.55, 2] (linear part).
    const small = awayFromZero(rng, n / 2, 0.05, 0.45), large = awayFromZero(rng, n / 2, 0.55, 2);
    const diff = new Float64Array(n);
    for (let i = 0; i < n / 2; i++) {
      diff[2 * i] = small[i];
      diff[2 * i + 1] = large[i];
    }
    assert.ok(diff.every((d) => Math.abs(Math.abs(d) - 0.5) > 1e-3));
    return diff;
  }, 0.5),
  lossRow(
    "huber default delta 1, |pred - target| away from delta",
    "huber",
    () =>
      awayFromZero(new Random(95), 12, 0.05, 2.5).map((d) =>
        Math.abs(Math.abs(d) - 1) < 0.01 ? d * 1.2 : d
      ),
  ),
];

gradTable(be, "regressionLoss in the prediction", LOSS_ROWS);

Deno.test("grad: regressionLoss gives the exact l2 gradient and the target none", async () => {
  const p = variable(be, [1, 2, 3], [3]), q = variable(be, [0, 0, 0], [3]);
  backward(regressionLoss("l2", p, q));
  const g = await p.grad!.toArray();
  [2 / 3, 4 / 3, 2].forEach((v, i) => assert.ok(Math.abs(g[i] - v) < 1e-12, `${g[i]} != ${v}`));
  assert.equal(q.grad, null);
});

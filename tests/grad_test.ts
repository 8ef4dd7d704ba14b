/**
 * Gradient checks: every differentiable op's backward rule against central finite differences, in
 * float64 on the reference backend (see tests/helpers/gradcheck.ts for the method).
 */

import assert from "node:assert/strict";
import { Random } from "../src/random.ts";
import { backward, noGrad, result, Tensor, tensor, variable } from "../src/tensor.ts";
import {
  abs,
  add,
  affine,
  cos,
  div,
  exp,
  gelu,
  log,
  maximum,
  minimum,
  mul,
  neg,
  relu,
  sigmoid,
  silu,
  sin,
  sqrt,
  square,
  sub,
  tanh,
  unary,
} from "../src/ops/elementwise.ts";
import { linear, matmul } from "../src/ops/matmul.ts";
import { conv2d } from "../src/ops/conv.ts";
import { groupNorm, softmax } from "../src/ops/norm.ts";
import { concat, permute, reshape, slice, split, upsampleNearest } from "../src/ops/shape.ts";
import { mean, sum } from "../src/ops/reduce.ts";
import { regressionLoss } from "../src/ops/loss.ts";
import {
  awayFromZero,
  float64Backend,
  gradCheck,
  type GradInput,
  uniformIn,
  untied,
} from "./helpers/gradcheck.ts";

const be = float64Backend();

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A differentiable input of standard normals. */
function randn(rng: Random, shape: readonly number[], scale = 1): GradInput {
  const d = rng.normals(size(shape));
  for (let i = 0; i < d.length; i++) d[i] *= scale;
  return { data: d, shape };
}

function shapeName(s: readonly number[]): string {
  return `[${s.join(",")}]`;
}

// ---- binary ops with broadcasting ----------------------------------------------------------------

const BROADCAST_CASES: [number[], number[]][] = [
  [[2, 3], [2, 3]],
  [[3, 4], [4]],
  [[4], [3, 4]],
  [[2, 1, 3], [1, 4, 1]],
  [[3, 4], [1]],
  [[1], [3, 4]],
  [[2, 3, 1], [3, 5]],
];

type BinaryFn = (a: Tensor, b: Tensor) => Tensor;

const BINARY_OPS: [string, BinaryFn, "any" | "untied" | "nonzero-b"][] = [
  ["add", add, "any"],
  ["sub", sub, "any"],
  ["mul", mul, "any"],
  ["div", div, "nonzero-b"],
  ["maximum", maximum, "untied"],
  ["minimum", minimum, "untied"],
];

for (const [name, op, kind] of BINARY_OPS) {
  Deno.test(`grad: ${name} with broadcasting`, async (t) => {
    for (const [sa, sb] of BROADCAST_CASES) {
      await t.step(`${shapeName(sa)} ${name} ${shapeName(sb)}`, async () => {
        const rng = new Random(11, size(sa) * 31 + size(sb));
        let a: Float64Array, b: Float64Array;
        if (kind === "untied") {
          // a and b on disjoint lattices: every broadcast pair differs by at least 0.3.
          a = untied(rng, size(sa), "a");
          b = untied(rng, size(sb), "b");
        } else if (kind === "nonzero-b") {
          a = rng.normals(size(sa));
          b = awayFromZero(rng, size(sb), 0.5, 1.5);
        } else {
          a = rng.normals(size(sa));
          b = rng.normals(size(sb));
        }
        await gradCheck(be, [{ data: a, shape: sa }, { data: b, shape: sb }], ([x, y]) => op(x, y));
      });
    }
  });
}

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

Deno.test("grad: a binary op with one constant operand gives the variable its gradient", async () => {
  const rng = new Random(12);
  const shape = [2, 3];
  await gradCheck(
    be,
    [randn(rng, shape), { data: awayFromZero(rng, 3, 0.5, 1.5), shape: [3], grad: false }],
    ([x, y]) => div(x, y),
  );
  await gradCheck(
    be,
    [{ data: rng.normals(6), shape, grad: false }, {
      data: awayFromZero(rng, 3, 0.5, 1.5),
      shape: [3],
    }],
    ([x, y]) => div(x, y),
  );
});

// ---- unary ops ---------------------------------------------------------------------------------

type UnaryCase = [string, (x: Tensor) => Tensor, (rng: Random, n: number) => Float64Array];

const wide = (rng: Random, n: number) => uniformIn(rng, n, -4, 4);
const positive = (rng: Random, n: number) => uniformIn(rng, n, 0.2, 3);
const nonzero = (rng: Random, n: number) => awayFromZero(rng, n, 0.1, 2);
const normal = (rng: Random, n: number) => rng.normals(n);

const UNARY_CASES: UnaryCase[] = [
  ["relu", relu, nonzero],
  ["silu", silu, wide],
  ["gelu", gelu, wide],
  ["tanh", tanh, wide],
  ["sigmoid", sigmoid, wide],
  ["exp", exp, normal],
  ["log", log, positive],
  ["sqrt", sqrt, positive],
  ["rsqrt", (x) => unary("rsqrt", x), positive],
  ["square", square, normal],
  ["abs", abs, nonzero],
  ["sin", sin, wide],
  ["cos", cos, wide],
  ["neg", neg, normal],
  ["affine(x, 2.5, -0.3)", (x) => affine(x, 2.5, -0.3), normal],
  ["affine(x, 1, 0.7)", (x) => affine(x, 1, 0.7), normal],
  ["affine(x, -0.5)", (x) => affine(x, -0.5), normal],
];

for (const [name, op, gen] of UNARY_CASES) {
  Deno.test(`grad: ${name}`, async () => {
    const rng = new Random(21, name.length);
    const shape = [3, 4];
    await gradCheck(be, [{ data: gen(rng, 12), shape }], ([x]) => op(x));
  });
}

Deno.test("grad: relu passes no gradient where the input is negative", async () => {
  const x = variable(be, [-1, 2, -3, 4], [4]);
  backward(sum(relu(x)));
  assert.deepEqual([...await x.grad!.toArray()], [0, 1, 0, 1]);
});

// ---- matmul and linear -------------------------------------------------------------------------

const B = 2, M = 3, K = 4, N = 2;
const MATMUL_MODES: [string, boolean, boolean][] = [
  ["2-D @ 2-D", false, false],
  ["batched 3-D @ 3-D", true, true],
  ["3-D @ shared 2-D", true, false],
  ["shared 2-D @ 3-D", false, true],
];

for (const [mode, batchA, batchB] of MATMUL_MODES) {
  Deno.test(`grad: matmul ${mode}, all transposes`, async (t) => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await t.step(`transA=${transA} transB=${transB}`, async () => {
          const rng = new Random(31, (transA ? 2 : 0) + (transB ? 1 : 0));
          const sa = [...(batchA ? [B] : []), ...(transA ? [K, M] : [M, K])];
          const sb = [...(batchB ? [B] : []), ...(transB ? [N, K] : [K, N])];
          await gradCheck(be, [randn(rng, sa), randn(rng, sb)], ([a, b]) => {
            const y = matmul(a, b, { transA, transB });
            assert.deepEqual([...y.shape], batchA || batchB ? [B, M, N] : [M, N]);
            return y;
          });
        });
      }
    }
  });
}

Deno.test("grad: matmul of a row by a column and a column by a row", async () => {
  const rng = new Random(32);
  await gradCheck(be, [randn(rng, [1, 5]), randn(rng, [5, 1])], ([a, b]) => matmul(a, b));
  await gradCheck(be, [randn(rng, [4, 1]), randn(rng, [1, 3])], ([a, b]) => matmul(a, b));
});

Deno.test("grad: linear with and without bias", async (t) => {
  const rng = new Random(33);
  await t.step("x [5,3], weight [4,3], bias [4]", async () => {
    await gradCheck(
      be,
      [randn(rng, [5, 3]), randn(rng, [4, 3]), randn(rng, [4])],
      ([x, w, b]) => linear(x, w, b),
    );
  });
  await t.step("x [5,3], weight [4,3], no bias", async () => {
    await gradCheck(be, [randn(rng, [5, 3]), randn(rng, [4, 3])], ([x, w]) => linear(x, w, null));
  });
  await t.step("x [2,5,3] (batched), weight [4,3], bias [4]", async () => {
    await gradCheck(
      be,
      [randn(rng, [2, 5, 3]), randn(rng, [4, 3]), randn(rng, [4])],
      ([x, w, b]) => linear(x, w, b),
    );
  });
});

// ---- conv2d ------------------------------------------------------------------------------------

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  stride: number;
  padding: number;
  bias: boolean;
  out: number[];
}

const CONV_CASES: ConvCase[] = [
  {
    name: "3x3 stride 1 pad 1, batch 2, 3 -> 4, bias",
    x: [2, 3, 5, 5],
    w: [4, 3, 3, 3],
    stride: 1,
    padding: 1,
    bias: true,
    out: [2, 4, 5, 5],
  },
  {
    name: "3x3 stride 1 pad 1, batch 1, 3 -> 4, no bias",
    x: [1, 3, 4, 5],
    w: [4, 3, 3, 3],
    stride: 1,
    padding: 1,
    bias: false,
    out: [1, 4, 4, 5],
  },
  {
    name: "3x3 stride 2 pad 1 on 5x7, batch 1, 3 -> 4, bias",
    x: [1, 3, 5, 7],
    w: [4, 3, 3, 3],
    stride: 2,
    padding: 1,
    bias: true,
    out: [1, 4, 3, 4],
  },
  {
    name: "3x3 stride 2 pad 1 on 5x7, batch 2, 3 -> 4, no bias",
    x: [2, 3, 5, 7],
    w: [4, 3, 3, 3],
    stride: 2,
    padding: 1,
    bias: false,
    out: [2, 4, 3, 4],
  },
  {
    name: "1x1 stride 1 pad 0, batch 2, 3 -> 4, bias",
    x: [2, 3, 4, 3],
    w: [4, 3, 1, 1],
    stride: 1,
    padding: 0,
    bias: true,
    out: [2, 4, 4, 3],
  },
  {
    name: "1x1 stride 1 pad 0, batch 1, 3 -> 4, no bias",
    x: [1, 3, 3, 3],
    w: [4, 3, 1, 1],
    stride: 1,
    padding: 0,
    bias: false,
    out: [1, 4, 3, 3],
  },
  {
    name: "2x3 kernel stride 1 pad 1, batch 2, 2 -> 3, bias",
    x: [2, 2, 4, 5],
    w: [3, 2, 2, 3],
    stride: 1,
    padding: 1,
    bias: true,
    out: [2, 3, 5, 5],
  },
  {
    name: "3x3 stride 2 pad 0 on 6x6 (rows left over), batch 1, 2 -> 2",
    x: [1, 2, 6, 6],
    w: [2, 2, 3, 3],
    stride: 2,
    padding: 0,
    bias: true,
    out: [1, 2, 2, 2],
  },
];

Deno.test("grad: conv2d", async (t) => {
  for (const c of CONV_CASES) {
    await t.step(c.name, async () => {
      const rng = new Random(41, size(c.x));
      const inputs = [randn(rng, c.x), randn(rng, c.w)];
      if (c.bias) inputs.push(randn(rng, [c.w[0]]));
      await gradCheck(be, inputs, ([x, w, b]) => {
        const y = conv2d(x, w, b ?? null, { stride: c.stride, padding: c.padding });
        assert.deepEqual([...y.shape], c.out);
        return y;
      });
    });
  }
});

// ---- normalisation and softmax -----------------------------------------------------------------

Deno.test("grad: groupNorm (x, gamma and beta)", async (t) => {
  const cases: [number[], number][] = [
    [[2, 6, 3, 3], 3],
    [[2, 4], 2],
    [[1, 4, 2, 2], 4],
    [[2, 4, 3], 1],
  ];
  for (const [shape, groups] of cases) {
    await t.step(`x ${shapeName(shape)}, ${groups} groups`, async () => {
      const rng = new Random(51, size(shape) + groups);
      const c = shape[1];
      const gamma = rng.normals(c).map((v) => 1 + 0.3 * v);
      // A non-zero mean and non-unit scale, so that the normalisation does something.
      const x = randn(rng, shape, 1.7);
      for (let i = 0; i < x.data.length; i++) (x.data as Float64Array)[i] += 0.5;
      await gradCheck(
        be,
        [x, { data: gamma, shape: [c] }, randn(rng, [c])],
        ([x, g, b]) => groupNorm(x, g, b, groups),
      );
    });
  }
});

Deno.test("grad: softmax over the last axis", async (t) => {
  for (const shape of [[3, 5], [2, 3, 4], [4, 1]]) {
    await t.step(shapeName(shape), async () => {
      const rng = new Random(61, size(shape));
      await gradCheck(
        be,
        [randn(rng, shape, 2)],
        ([x]) => softmax(x),
        // A softmax over one element is constant: its gradient is exactly zero.
        { allowZeroGrad: shape[shape.length - 1] === 1 ? [0] : [] },
      );
    });
  }
});

// ---- layout ------------------------------------------------------------------------------------

Deno.test("grad: reshape (with an inferred axis)", async () => {
  const rng = new Random(71);
  await gradCheck(be, [randn(rng, [2, 3, 4])], ([x]) => {
    const y = reshape(x, [4, -1]);
    assert.deepEqual([...y.shape], [4, 6]);
    return square(y);
  });
});

Deno.test("grad: permute", async (t) => {
  const cases: [number[], number[], number[]][] = [
    [[2, 3, 4], [2, 0, 1], [4, 2, 3]],
    [[2, 3, 2, 2], [0, 2, 3, 1], [2, 2, 2, 3]],
    [[3, 4], [1, 0], [4, 3]],
  ];
  for (const [shape, perm, out] of cases) {
    await t.step(`${shapeName(shape)} perm ${shapeName(perm)}`, async () => {
      const rng = new Random(72, size(shape));
      await gradCheck(be, [randn(rng, shape)], ([x]) => {
        const y = permute(x, perm);
        assert.deepEqual([...y.shape], out);
        return y;
      });
    });
  }
});

Deno.test("grad: concat", async (t) => {
  const rng = new Random(73);
  await t.step("three inputs of different sizes along axis 1", async () => {
    await gradCheck(
      be,
      [randn(rng, [2, 1, 3]), randn(rng, [2, 3, 3]), randn(rng, [2, 2, 3])],
      (xs) => {
        const y = concat(xs, 1);
        assert.deepEqual([...y.shape], [2, 6, 3]);
        return y;
      },
    );
  });
  await t.step("along axis 0", async () => {
    await gradCheck(be, [randn(rng, [1, 3]), randn(rng, [2, 3])], (xs) => concat(xs, 0));
  });
  await t.step("along axis -1, one constant input", async () => {
    await gradCheck(
      be,
      [randn(rng, [2, 2]), { ...randn(rng, [2, 3]), grad: false }, randn(rng, [2, 1])],
      (xs) => concat(xs, -1),
    );
  });
});

Deno.test("grad: slice (start, middle, end, whole axis)", async (t) => {
  const cases: [number, number][] = [[0, 2], [1, 3], [3, 2], [0, 5], [2, 1]];
  for (const [start, length] of cases) {
    await t.step(`axis 1 of [3,5,2], [${start}, ${start + length})`, async () => {
      const rng = new Random(74, start * 10 + length);
      await gradCheck(be, [randn(rng, [3, 5, 2])], ([x]) => {
        const y = slice(x, 1, start, length);
        assert.deepEqual([...y.shape], [3, length, 2]);
        return y;
      });
    });
  }
  await t.step("axis -1 of [2,4]", async () => {
    await gradCheck(be, [randn(new Random(75), [2, 4])], ([x]) => slice(x, -1, 1, 2));
  });
});

Deno.test("grad: split, using every piece and only the end pieces", async (t) => {
  const rng = new Random(76);
  const x = randn(rng, [2, 5, 3]);
  await t.step("every piece", async () => {
    await gradCheck(be, [x], ([x]) => split(x, 1, [2, 1, 2]));
  });
  await t.step("end pieces only: the middle gets zero gradient", async () => {
    const r = await gradCheck(be, [x], ([x]) => {
      const [p0, , p2] = split(x, 1, [2, 1, 2]);
      return [p0, p2];
    });
    const g = r.analytic[0]!;
    for (let o = 0; o < 2; o++) {
      for (let i = 0; i < 3; i++) assert.equal(g[(o * 5 + 2) * 3 + i], 0);
    }
  });
});

Deno.test("grad: upsampleNearest", async (t) => {
  const cases: [number[], number][] = [[[1, 2, 3, 2], 2], [[2, 1, 2, 3], 3]];
  for (const [shape, factor] of cases) {
    await t.step(`${shapeName(shape)} by ${factor}`, async () => {
      const rng = new Random(77, factor);
      await gradCheck(be, [randn(rng, shape)], ([x]) => {
        const y = upsampleNearest(x, factor);
        assert.deepEqual([...y.shape], [shape[0], shape[1], shape[2] * factor, shape[3] * factor]);
        return y;
      });
    });
  }
});

// ---- reductions --------------------------------------------------------------------------------

Deno.test("grad: sum and mean over all axes and chosen axes", async (t) => {
  const shape = [2, 3, 4];
  const cases: [number[] | undefined, boolean, number[]][] = [
    [undefined, false, []],
    [undefined, true, [1, 1, 1]],
    [[1], false, [2, 4]],
    [[1], true, [2, 1, 4]],
    [[0, 2], false, [3]],
    [[0, 2], true, [1, 3, 1]],
    [[-1], false, [2, 3]],
    [[0, 1, 2], true, [1, 1, 1]],
  ];
  for (const [name, op] of [["sum", sum], ["mean", mean]] as const) {
    for (const [axes, keepDims, out] of cases) {
      await t.step(
        `${name} axes=${axes ? shapeName(axes) : "all"} keepDims=${keepDims}`,
        async () => {
          const rng = new Random(81, out.length + (keepDims ? 10 : 0) + (axes?.[0] ?? 5));
          await gradCheck(be, [randn(rng, shape)], ([x]) => {
            const y = op(x, axes, keepDims);
            assert.deepEqual([...y.shape], out);
            return y;
          });
        },
      );
    }
  }
});

// ---- losses ------------------------------------------------------------------------------------

Deno.test("grad: regressionLoss", async (t) => {
  const shape = [4, 3], n = 12;
  const check = async (
    kind: "l2" | "l1" | "huber",
    diff: Float64Array,
    delta?: number,
  ) => {
    const rng = new Random(91, n);
    const pred = rng.normals(n), target = pred.map((p, i) => p - diff[i]);
    await gradCheck(
      be,
      [{ data: pred, shape }, { data: target, shape, grad: false }],
      ([p, q]) => regressionLoss(kind, p, q, delta),
    );
  };
  await t.step("l2", async () => {
    await check("l2", new Random(92).normals(n));
  });
  await t.step("l1 (differences away from 0)", async () => {
    await check("l1", awayFromZero(new Random(93), n, 0.1, 1.5));
  });
  await t.step("huber delta 0.5, differences on both sides of delta", async () => {
    const rng = new Random(94);
    // Half the magnitudes in [0.05, 0.45] (quadratic part), half in [0.55, 2] (linear part).
    const small = awayFromZero(rng, n / 2, 0.05, 0.45), large = awayFromZero(rng, n / 2, 0.55, 2);
    const diff = new Float64Array(n);
    for (let i = 0; i < n / 2; i++) {
      diff[2 * i] = small[i];
      diff[2 * i + 1] = large[i];
    }
    assert.ok(diff.every((d) => Math.abs(Math.abs(d) - 0.5) > 1e-3));
    await check("huber", diff, 0.5);
  });
  await t.step("huber default delta 1", async () => {
    const rng = new Random(95);
    const diff = awayFromZero(rng, n, 0.05, 2.5).map((d) =>
      Math.abs(Math.abs(d) - 1) < 0.01 ? d * 1.2 : d
    );
    await check("huber", diff);
  });
  await t.step("the target receives no gradient", async () => {
    const p = variable(be, [1, 2, 3], [3]), q = variable(be, [0, 0, 0], [3]);
    backward(regressionLoss("l2", p, q));
    const g = await p.grad!.toArray();
    [2 / 3, 4 / 3, 2].forEach((v, i) => assert.ok(Math.abs(g[i] - v) < 1e-12, `${g[i]} != ${v}`));
    assert.equal(q.grad, null);
  });
});

// ---- composites and the tape -------------------------------------------------------------------

Deno.test("grad: a 2-layer MLP with a skip branch reusing x (l2 loss)", async () => {
  const rng = new Random(101);
  await gradCheck(
    be,
    [
      randn(rng, [4, 3]), // x
      randn(rng, [5, 3], 0.7), // w1
      randn(rng, [5]), // b1
      randn(rng, [2, 5], 0.7), // w2
      randn(rng, [2]), // b2
      randn(rng, [2, 3], 0.7), // skip weight
      { ...randn(rng, [4, 2]), grad: false }, // target
    ],
    ([x, w1, b1, w2, b2, ws, target]) => {
      const h = silu(linear(x, w1, b1));
      const y = add(linear(h, w2, b2), linear(x, ws, null));
      return regressionLoss("l2", y, target);
    },
  );
});

Deno.test("grad: a tensor used several times accumulates its gradient", async (t) => {
  const rng = new Random(102);
  await t.step("x*x + (x+x) + sin(x)", async () => {
    await gradCheck(be, [randn(rng, [3, 2])], ([x]) => add(add(mul(x, x), add(x, x)), sin(x)));
  });
  await t.step("diamond: y = silu(x); y*y + y", async () => {
    await gradCheck(be, [randn(rng, [2, 3])], ([x]) => {
      const y = silu(x);
      return add(mul(y, y), y);
    });
  });
  await t.step("exact accumulation for sum(x + x + x)", async () => {
    const x = variable(be, [1, 2, 3, 4], [2, 2]);
    backward(sum(add(add(x, x), x)));
    assert.deepEqual([...await x.grad!.toArray()], [3, 3, 3, 3]);
  });
});

Deno.test("grad: parameters accumulate into their gradient sink across backward calls", async () => {
  const sink = be.alloc(3);
  const p = new Tensor(be, be.upload([1, -2, 3]), [3], { requiresGrad: true, gradSink: sink });
  const loss = () => sum(mul(p, p));
  backward(loss());
  assert.deepEqual([...await be.read(sink)], [2, -4, 6]);
  backward(loss());
  assert.deepEqual([...await be.read(sink)], [4, -8, 12]);
  assert.equal(p.grad, null, "a parameter's gradient goes to its sink, not .grad");
});

Deno.test("grad: noGrad records nothing", () => {
  const x = variable(be, [1, 2], [2]);
  const y = noGrad(() => mul(x, x));
  assert.equal(y.node, null);
  assert.equal(y.requiresGrad, false);
  assert.throws(() => backward(sum(y)), /does not depend/);
  const z = mul(x, x);
  assert.notEqual(z.node, null);
});

Deno.test("grad: backward rejects a non-scalar loss with a clear error", () => {
  const x = variable(be, [1, 2, 3, 4], [2, 2]);
  assert.throws(() => backward(mul(x, x)), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /one-element loss/);
    assert.match(e.message, /\[2,2\]/);
    return true;
  });
  assert.throws(() => backward(sum(x, [0])), /one-element loss/);
  assert.equal(x.grad, null);
  // A constant one-element tensor has nothing to differentiate.
  assert.throws(() => backward(tensor(be, [1], [1])), /does not depend on any parameter/);
});

Deno.test("gradCheck itself detects a wrong backward rule", async () => {
  // sin with a gradient 0.1% too large: the check must fail.
  const badSin = (x: Tensor) =>
    result("badSin", be, be.unary("sin", x.storage), x.shape, [x], (g) => [
      be.unaryBackward("sin", x.storage, be.affine(g, 1.001, 0)),
    ]);
  const data = new Random(111).normals(6);
  await gradCheck(be, [{ data, shape: [2, 3] }], ([x]) => sin(x));
  await assert.rejects(
    gradCheck(be, [{ data, shape: [2, 3] }], ([x]) => badSin(x)),
    /max relative error/,
  );
  // A backward rule that drops the gradient is caught as a vacuous (all-zero) gradient.
  const dropped = (x: Tensor) =>
    result("dropped", be, be.affine(x.storage, 0, 0), x.shape, [x], () => [be.alloc(x.size)]);
  await assert.rejects(
    gradCheck(be, [{ data, shape: [2, 3] }], ([x]) => add(dropped(x), tensor(be, data, [2, 3]))),
    /identically zero/,
  );
});

/**
 * Gradient checks of composites (reuse, diamonds, a small network) against central finite
 * differences, and the tape itself: exact accumulation, parameters' gradient sinks across backward
 * calls, `noGrad`, the error for a non-scalar loss, and gradCheck catching a wrong backward rule.
 * In float64 on the reference backend (tests/helpers/gradcheck.ts).
 */

import assert from "node:assert/strict";
import { Random } from "../../src/random.ts";
import { backward, noGrad, result, Tensor, tensor, variable } from "../../src/tensor.ts";
import { add, mul, silu, sin } from "../../src/ops/elementwise.ts";
import { linear } from "../../src/ops/matmul.ts";
import { sum } from "../../src/ops/reduce.ts";
import { regressionLoss } from "../../src/ops/loss.ts";
import {
  float64Backend,
  type GradCase,
  gradCheck,
  gradTable,
  scaledNormals,
} from "../helpers/gradcheck.ts";

const be = float64Backend();

const COMPOSITE_ROWS: GradCase[] = [
  {
    name: "a 2-layer MLP with a skip branch reusing x (l2 loss)",
    seed: [101],
    inputs: [
      { shape: [4, 3] }, // x
      { shape: [5, 3], values: scaledNormals(0.7) }, // w1
      { shape: [5] }, // b1
      { shape: [2, 5], values: scaledNormals(0.7) }, // w2
      { shape: [2] }, // b2
      { shape: [2, 3], values: scaledNormals(0.7) }, // skip weight
      { shape: [4, 2], grad: false }, // target
    ],
    fn: ([x, w1, b1, w2, b2, ws, target]) => {
      const h = silu(linear(x, w1, b1));
      const y = add(linear(h, w2, b2), linear(x, ws, null));
      return regressionLoss("l2", y, target);
    },
  },
  {
    name: "x used several times accumulates its gradient: x*x + (x+x) + sin(x)",
    seed: [102],
    inputs: [{ shape: [3, 2] }],
    fn: ([x]) => add(add(mul(x, x), add(x, x)), sin(x)),
  },
  {
    name: "a diamond accumulates its gradient: y = silu(x); y*y + y",
    seed: [102, 1],
    inputs: [{ shape: [2, 3] }],
    fn: ([x]) => {
      const y = silu(x);
      return add(mul(y, y), y);
    },
  },
];

gradTable(be, "composites (reuse, diamonds, a small network)", COMPOSITE_ROWS);

Deno.test("grad: exact accumulation for sum(x + x + x)", async () => {
  const x = variable(be, [1, 2, 3, 4], [2, 2]);
  backward(sum(add(add(x, x), x)));
  assert.deepEqual([...await x.grad!.toArray()], [3, 3, 3, 3]);
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

/**
 * The blocks the UNet's options add, on the reference backend: dropout (statistics, determinism,
 * gradients through its mask), the depthwise convolution and linear attention against direct
 * loops, and the ConvNeXt block's gradients, all against central finite differences in float64.
 */

import assert from "node:assert/strict";
import type { RandomDraw } from "../../src/backend.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { ConvNextBlock } from "../../src/nn/convnext_block.ts";
import { LinearAttention } from "../../src/nn/linear_attention.ts";
import { ParamLayout, recordParams } from "../../src/nn/params.ts";
import { depthwiseConv2d } from "../../src/ops/depthwise_conv.ts";
import { dropout, dropoutMask } from "../../src/ops/dropout.ts";
import { fillUniform, Random } from "../../src/random.ts";
import { type Tensor, tensor } from "../../src/tensor.ts";
import { float64Backend, gradCheck } from "../helpers/gradcheck.ts";
import { storeOf, uniformArray } from "../helpers/params.ts";

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---- dropout ------------------------------------------------------------------------------------

Deno.test("dropout: p = 0 is the identity; p outside [0, 1) is refused", () => {
  const be = createReferenceBackend();
  const x = tensor(be, [1, 2, 3], [3]), draw = { seed: 1, stream: 0, counter: 0 };
  assert.equal(dropout(x, 0, draw), x);
  for (const p of [-0.1, 1, 1.5, NaN]) assert.throws(() => dropout(x, p, draw), /dropout: p/);
});

Deno.test("dropout: drops a fraction p, scales survivors by 1/(1-p), mask fixed by the draw", async () => {
  const be = createReferenceBackend();
  const n = 40_000, x = tensor(be, new Float32Array(n).fill(1), [200, 200]);
  for (const p of [0.1, 0.3, 0.5, 0.9]) {
    const draw: RandomDraw = { seed: 7, stream: 3, counter: 11 };
    const y = await dropout(x, p, draw).toArray();
    const zeros = y.filter((v) => v === 0).length;
    const scale = Math.fround(1 / (1 - p));
    assert.ok(y.every((v) => v === 0 || v === scale), `p ${p}: values are 0 or 1/(1-p)`);
    // Binomial standard deviation sqrt(p(1-p)/n) <= 0.0025; allow 5 of them.
    assert.ok(Math.abs(zeros / n - p) < 0.0125, `p ${p}: dropped ${zeros / n}`);
    // Exactly the elements whose uniform is below p are dropped.
    const u = new Float32Array(n);
    fillUniform(u, draw);
    for (let i = 0; i < n; i++) {
      assert.equal(y[i] === 0, u[i] < Math.fround(p), `p ${p}, element ${i}: u ${u[i]}`);
    }
    // The same draw gives the same mask; another counter another one.
    assert.deepEqual(await dropout(x, p, draw).toArray(), y);
    const other = await dropout(x, p, { ...draw, counter: draw.counter + n / 4 }).toArray();
    assert.notDeepEqual(other, y);
  }
  // The mean is kept in expectation.
  const y = await dropout(x, 0.5, { seed: 1, stream: 0, counter: 0 }).toArray();
  assert.ok(Math.abs(Array.from(y).reduce((s, v) => s + v, 0) / n - 1) < 0.02);
});

Deno.test("dropout: p on a float32 boundary keeps u == p (u >= p survives)", async () => {
  const be = createReferenceBackend();
  const draw: RandomDraw = { seed: 2, stream: 0, counter: 0 };
  const u = new Float32Array(8);
  fillUniform(u, draw);
  // p equal to one of the drawn uniforms: that element survives, smaller ones are dropped.
  const p = u[3];
  const m = await dropoutMask(be, [8], p, draw).toArray();
  for (let i = 0; i < 8; i++) assert.equal(m[i] !== 0, u[i] >= p, `element ${i}`);
  assert.notEqual(m[3], 0);
});

Deno.test("dropout: gradients through the fixed mask match central finite differences", async () => {
  const be = float64Backend(), rng = new Random(5);
  const draw: RandomDraw = { seed: 3, stream: 1, counter: 0 };
  const rep = await gradCheck(
    be,
    [{ data: rng.normals(60), shape: [3, 20] }],
    ([x]) => dropout(x, 0.4, draw),
  );
  // Some gradients are exactly zero (dropped), the rest 1/(1-p) times the output weight.
  assert.ok(rep.analytic[0]!.some((g) => g === 0));
});

// ---- depthwise convolution ----------------------------------------------------------------------

function depthwiseLoop(
  x: Float64Array,
  [n, c, h, w]: number[],
  wt: Float64Array,
  k: number,
  b: Float64Array,
  pad: number,
): Float64Array {
  const oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1, out = new Float64Array(n * c * oh * ow);
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let v = b[ch];
          for (let ky = 0; ky < k; ky++) {
            for (let kx = 0; kx < k; kx++) {
              const yi = i + ky - pad, xj = j + kx - pad;
              if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue;
              v += wt[(ch * k + ky) * k + kx] * x[((s * c + ch) * h + yi) * w + xj];
            }
          }
          out[((s * c + ch) * oh + i) * ow + j] = v;
        }
      }
    }
  }
  return out;
}

Deno.test("depthwise conv: equals a direct loop (7x7 pad 3, 3x3 pad 0) and has exact gradients", async () => {
  const be = float64Backend(), rng = new Random(8);
  for (const [shape, k, pad] of [[[2, 3, 6, 5], 7, 3], [[1, 4, 5, 4], 3, 0]] as const) {
    const c = shape[1];
    const x = rng.normals(size(shape)), w = rng.normals(c * k * k), b = rng.normals(c);
    const y = await depthwiseConv2d(
      tensor(be, x, shape),
      tensor(be, w, [c, 1, k, k]),
      tensor(be, b, [c]),
      { padding: pad },
    ).toArray();
    const want = depthwiseLoop(x, [...shape], w, k, b, pad);
    assert.equal(y.length, want.length);
    for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - want[i]) < 1e-12, `element ${i}`);
    await gradCheck(
      be,
      [{ data: x, shape }, { data: w, shape: [c, 1, k, k] }, { data: b, shape: [c] }],
      ([xt, wt, bt]) => depthwiseConv2d(xt, wt, bt, { padding: pad }),
    );
  }
  assert.throws(
    () =>
      depthwiseConv2d(
        tensor(be, new Float64Array(2 * 9), [1, 2, 3, 3]),
        tensor(be, new Float64Array(27), [3, 1, 3, 3]),
        null,
      ),
    /2 channels, weight has 3/,
  );
});

// ---- linear attention ---------------------------------------------------------------------------

/** GroupNorm(1) of one sample [c, hw] with per-channel weight and bias. */
function groupNorm1(x: Float64Array, hw: number, g: Float64Array, b: Float64Array) {
  const mu = x.reduce((s, v) => s + v, 0) / x.length;
  const vr = x.reduce((s, v) => s + (v - mu) ** 2, 0) / x.length;
  return x.map((v, i) =>
    ((v - mu) / Math.sqrt(vr + 1e-5)) * g[Math.floor(i / hw)] + b[Math.floor(i / hw)]
  );
}

/** A 1x1 convolution of one sample [ci, hw] to co channels. */
function conv1x1(
  x: Float64Array,
  ci: number,
  co: number,
  hw: number,
  w: Float64Array,
  b: Float64Array,
) {
  const out = new Float64Array(co * hw);
  for (let o = 0; o < co; o++) {
    for (let i = 0; i < hw; i++) {
      let s = b[o];
      for (let k = 0; k < ci; k++) s += w[o * ci + k] * x[k * hw + i];
      out[o * hw + i] = s;
    }
  }
  return out;
}

Deno.test("linear attention: the block equals a direct loop over heads, features and positions", async () => {
  const be = float64Backend();
  const b = 2, c = 6, hh = 3, ww = 2, hw = hh * ww, heads = 3, d = c / heads;
  const layout = new ParamLayout(recordParams((p) => new LinearAttention(p, "a", c, { heads })));
  const rng = new Random(12);
  const values = uniformArray(rng, layout.length, -0.8, 0.8);
  const block = new LinearAttention(storeOf(be, layout, values), "a", c, { heads });
  const xv = rng.normals(b * c * hw);
  const y = await block.forward(tensor(be, xv, [b, c, hh, ww])).toArray();
  const p = (name: string) => {
    const e = layout.get(`a.${name}`);
    return values.subarray(e.offset, e.offset + e.size);
  };
  for (let n = 0; n < b; n++) {
    const x = xv.subarray(n * c * hw, (n + 1) * c * hw);
    const xn = groupNorm1(x, hw, p("n.weight"), p("n.bias"));
    const qkv = conv1x1(xn, c, 3 * c, hw, p("qkv.weight"), p("qkv.bias"));
    const at = (part: number, h: number, dd: number, i: number) =>
      qkv[((part * heads + h) * d + dd) * hw + i];
    const att = new Float64Array(c * hw);
    for (let h = 0; h < heads; h++) {
      // q: softmax over the features of each position; k: softmax over the positions.
      const q = (dd: number, i: number) => {
        let z = 0;
        for (let e = 0; e < d; e++) z += Math.exp(at(0, h, e, i));
        return Math.exp(at(0, h, dd, i)) / z;
      };
      const k = (dd: number, j: number) => {
        let z = 0;
        for (let m = 0; m < hw; m++) z += Math.exp(at(1, h, dd, m));
        return Math.exp(at(1, h, dd, j)) / z;
      };
      for (let e = 0; e < d; e++) {
        for (let i = 0; i < hw; i++) {
          let v = 0;
          for (let dd = 0; dd < d; dd++) {
            let ctx = 0;
            for (let j = 0; j < hw; j++) ctx += k(dd, j) * at(2, h, e, j);
            v += ctx * q(dd, i);
          }
          att[(h * d + e) * hw + i] = v / Math.sqrt(d);
        }
      }
    }
    const o = conv1x1(att, c, c, hw, p("o.weight"), p("o.bias"));
    const on = groupNorm1(o, hw, p("on.weight"), p("on.bias"));
    for (let i = 0; i < c * hw; i++) {
      const got = y[n * c * hw + i], want = x[i] + on[i];
      assert.ok(Math.abs(got - want) < 1e-12, `n ${n} element ${i}: ${got} vs ${want}`);
    }
  }
  // Gradient with respect to the input.
  await gradCheck(be, [{ data: xv, shape: [b, c, hh, ww] }], ([x]) => block.forward(x));
  assert.throws(
    () => new LinearAttention(storeOf(be, layout, values), "a", c, { heads: 4 }),
    /6 channels do not split into 4 heads/,
  );
});

// ---- ConvNeXt block -----------------------------------------------------------------------------

Deno.test("convnext block: gradients of input, time embedding and through dropout match finite differences", async () => {
  const be = float64Backend();
  const ci = 3, co = 4, td = 5, mult = 2;
  const layout = new ParamLayout(recordParams((p) => new ConvNextBlock(p, "b", ci, co, td, mult)));
  const rng = new Random(13);
  const values = uniformArray(rng, layout.length, -0.5, 0.5);
  const block = new ConvNextBlock(storeOf(be, layout, values), "b", ci, co, td, mult);
  const x = { data: rng.normals(2 * ci * 16), shape: [2, ci, 4, 4] };
  const te = { data: rng.normals(2 * td), shape: [2, td] };
  const draw: RandomDraw = { seed: 4, stream: 2, counter: 0 };
  for (const drop of [null, (h: Tensor) => dropout(h, 0.3, draw)]) {
    const rep = await gradCheck(be, [x, te], ([xt, tt]) => {
      const y = block.forward(xt, tt, drop);
      assert.deepEqual([...y.shape], [2, co, 4, 4]);
      return y;
    });
    assert.ok(rep.maxRelErr.every((e) => e !== null && e < 1e-6));
  }
});

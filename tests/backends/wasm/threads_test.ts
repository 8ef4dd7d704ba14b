/**
 * The wasm backend's worker threads: kernels run on the calling thread until the workers listen,
 * with the same results; workers that stop when idle and start again (overlapping) give the same
 * results; and group normalisation (plain, fused with SiLU, and with a shift) gives the same bits
 * on one thread and on two with every kernel split (rows never straddle the threads' ranges).
 */

import assert from "node:assert/strict";
import type { Backend } from "../../../src/backend.ts";
import { Random } from "../../../src/random.ts";
import { createWasmBackend, openWasmBackend } from "../../../wasm/backend.ts";
import { uniformValues } from "../../helpers/compare.ts";

const rng = new Random(20261124);

/** n uniforms in [lo, hi). */
function values(n: number, lo = -1, hi = 1): Float32Array {
  return uniformValues(rng, n, lo, hi);
}

Deno.test("threads: kernels run on the calling thread until the workers listen, same results", async () => {
  const be = openWasmBackend({ threads: 2, parallelThreshold: 0 });
  assert.equal(be.threads, 2);
  const a = values(40 * 50), b = values(50 * 30);
  const spec = { batch: 1, m: 40, k: 50, n: 30, transA: false, transB: false };
  // Before the workers listen, kernels run on the calling thread.
  const c0 = await be.read(be.matmul(be.upload(a), be.upload(b), spec));
  await be.ready();
  const c1 = await be.read(be.matmul(be.upload(a), be.upload(b), spec));
  assert.deepEqual(c1, c0);
  be.dispose();
  const one = openWasmBackend({ threads: 1 });
  assert.equal(one.threads, 1);
});

Deno.test("threads: workers that stop when idle and start again give the same results", async () => {
  const single = openWasmBackend({ threads: 1 });
  const be = openWasmBackend({ threads: 2, parallelThreshold: 0, threadIdleMs: 5 });
  const a = values(70 * 90), b = values(90 * 50), x = values(5000);
  const spec = { batch: 1, m: 70, k: 90, n: 50, transA: false, transB: false };
  const [aw, bw, xw] = [be.upload(a), be.upload(b), be.upload(x)];
  const want = await single.read(single.matmul(single.upload(a), single.upload(b), spec));
  const wantSilu = await single.read(single.unary("silu", single.upload(x)));
  try {
    // Stops and starts overlap: workers of an earlier start may outlive their terminate().
    for (let round = 0; round < 40; round++) {
      if (round % 4 === 0) await be.ready();
      for (let i = 0; i < 30; i++) {
        be.beginScope();
        assert.deepEqual(await be.read(be.matmul(aw, bw, spec)), want);
        assert.deepEqual(await be.read(be.unary("silu", xw)), wantSilu);
        be.endScope();
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 0));
      }
      await new Promise((r) => setTimeout(r, 3 + (round % 4) * 4));
    }
  } finally {
    be.dispose();
  }
});

Deno.test("wasm groupNorm (plain, fused with SiLU, with a shift) gives the same bits on 1 and 2 threads", async () => {
  const single = openWasmBackend({ threads: 1 });
  const threaded = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  try {
    const geos = [
      { n: 1, c: 6, hw: 35, groups: 3, eps: 1e-5 },
      { n: 3, c: 16, hw: 49, groups: 8, eps: 1e-5 },
      { n: 5, c: 4, hw: 3, groups: 2, eps: 1e-5 },
      { n: 2, c: 8, hw: 198, groups: 4, eps: 1e-5 },
      // The shapes of the shift's conformance cases.
      { n: 1, c: 8, hw: 35, groups: 8, eps: 1e-5 },
      { n: 3, c: 6, hw: 35, groups: 3, eps: 1e-5 },
      { n: 2, c: 4, hw: 1, groups: 2, eps: 1e-5 },
      { n: 2, c: 8, hw: 9, groups: 1, eps: 1e-5 },
      { n: 1, c: 4, hw: 5, groups: 4, eps: 1e-5 },
      { n: 2, c: 16, hw: 49, groups: 8, eps: 1e-5 },
      { n: 1, c: 8, hw: 198, groups: 1, eps: 1e-5 },
    ];
    for (const base of geos) {
      for (const silu of [false, true]) {
        for (const shifted of [false, true]) {
          const g = { ...base, silu }, what = `groupNorm ${JSON.stringify(g)} shift ${shifted}`;
          const x = values(g.n * g.c * g.hw, -2, 3), dy = values(x.length);
          const gamma = values(g.c, -1.5, 1.5),
            beta = values(g.c),
            shift = values(g.n * g.c, -2, 2);
          const run = (be: Backend) => {
            const [xs, gs, bs] = [be.upload(x), be.upload(gamma), be.upload(beta)];
            const ss = shifted ? be.upload(shift) : undefined;
            const f = be.groupNorm(xs, { gamma: gs, beta: bs, shift: ss }, g);
            const b = be.groupNormBackward(be.upload(dy), {
              x: xs,
              gamma: gs,
              beta: bs,
              shift: ss,
              mean: f.mean,
              rstd: f.rstd,
            }, g);
            const all = [f.y, f.mean, f.rstd, b.dx, b.dgamma, b.dbeta];
            if (shifted) {
              assert.ok(b.dshift, "the backward with a shift returns dshift");
              all.push(b.dshift);
            }
            return Promise.all(all.map((s) => be.read(s)));
          };
          const one = await run(single), two = await run(threaded);
          for (let i = 0; i < one.length; i++) {
            assert.deepEqual(two[i], one[i], `${what} output ${i}`);
          }
        }
      }
    }
  } finally {
    threaded.dispose();
  }
});

/**
 * The reference backend's optimizer kernels against textbook formulas: Adam (Kingma & Ba 2015),
 * Adam with coupled weight decay, AdamW (Loshchilov & Hutter 2019), gradient clipping, and the
 * exponential moving average.
 */

import assert from "node:assert/strict";
import type { AdamSettings, Storage } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { assertClose } from "../../helpers/compare.ts";

const be = createReferenceBackend({ dtype: "float64" });

async function read(s: Storage): Promise<number[]> {
  return [...await be.read(s)];
}

interface AdamState {
  p: number[];
  m: number[];
  v: number[];
}

/** The textbook Adam / AdamW step (Kingma & Ba 2015; Loshchilov & Hutter 2019). */
function textbookAdam(
  st: AdamState,
  grad: readonly number[],
  o: {
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    wd: number;
    decoupled: boolean;
    t: number;
  },
): void {
  for (let i = 0; i < st.p.length; i++) {
    const g = o.decoupled ? grad[i] : grad[i] + o.wd * st.p[i];
    st.m[i] = o.beta1 * st.m[i] + (1 - o.beta1) * g;
    st.v[i] = o.beta2 * st.v[i] + (1 - o.beta2) * g * g;
    const mHat = st.m[i] / (1 - Math.pow(o.beta1, o.t));
    const vHat = st.v[i] / (1 - Math.pow(o.beta2, o.t));
    const decayed = o.decoupled ? st.p[i] * (1 - o.lr * o.wd) : st.p[i];
    st.p[i] = decayed - o.lr * mHat / (Math.sqrt(vHat) + o.eps);
  }
}

async function runAdam(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  s: Omit<AdamSettings, "step" | "clip">,
  maxNorm: number | null,
): Promise<AdamState> {
  const P = be.upload(p0), M = be.alloc(p0.length), V = be.alloc(p0.length);
  for (const [i, g] of grads.entries()) {
    const G = be.upload(g);
    const clip = maxNorm === null ? null : { maxNorm, gradSquaredNorm: be.sumSquares([G]) };
    be.adam({ params: P, grads: G, m: M, v: V }, { ...s, step: i + 1, clip });
  }
  return { p: await read(P), m: await read(M), v: await read(V) };
}

Deno.test("reference adam: textbook Adam, Adam with coupled decay, AdamW, and clipping", async (t) => {
  const rng = new Random(12);
  const p0 = [...rng.normals(6)];
  const grads = [0, 1, 2].map(() => [...rng.normals(6)]);
  const base = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

  await t.step(
    "step 1 from zero moments moves each weight by about lr against its gradient",
    async () => {
      const r = await runAdam(p0, [grads[0]], { ...base, weightDecay: 0, decoupled: false }, null);
      // m-hat = g and v-hat = g^2 at step 1, so the update is lr * g / (|g| + eps).
      const want = p0.map((p, i) => p - base.lr * grads[0][i] / (Math.abs(grads[0][i]) + base.eps));
      assertClose(r.p, want, "step 1", 1e-14);
      assertClose(r.m, grads[0].map((g) => 0.1 * g), "m", 1e-15);
      assertClose(r.v, grads[0].map((g) => 0.001 * g * g), "v", 1e-15);
    },
  );

  for (
    const [name, wd, decoupled] of [["Adam", 0, false], ["Adam + coupled L2 decay", 0.1, false], [
      "AdamW",
      0.1,
      true,
    ]] as const
  ) {
    await t.step(`${name}: three steps with bias correction`, async () => {
      const r = await runAdam(p0, grads, { ...base, weightDecay: wd, decoupled }, null);
      const st: AdamState = { p: [...p0], m: p0.map(() => 0), v: p0.map(() => 0) };
      grads.forEach((g, i) => textbookAdam(st, g, { ...base, wd, decoupled, t: i + 1 }));
      assertClose(r.p, st.p, `${name} p`, 1e-13);
      assertClose(r.m, st.m, `${name} m`, 1e-14);
      assertClose(r.v, st.v, `${name} v`, 1e-14);
    });
  }

  await t.step("coupled and decoupled decay give different results", async () => {
    const a = await runAdam(p0, grads, { ...base, weightDecay: 0.1, decoupled: false }, null);
    const b = await runAdam(p0, grads, { ...base, weightDecay: 0.1, decoupled: true }, null);
    assert.ok(a.p.some((v, i) => Math.abs(v - b.p[i]) > 1e-6));
  });

  await t.step(
    "clipping scales gradients by maxNorm / norm when the norm exceeds maxNorm",
    async () => {
      for (const decoupled of [false, true]) {
        const s = { ...base, weightDecay: 0.05, decoupled };
        const maxNorm = 0.5;
        const r = await runAdam(p0, grads, s, maxNorm);
        const st: AdamState = { p: [...p0], m: p0.map(() => 0), v: p0.map(() => 0) };
        grads.forEach((g, i) => {
          const norm = Math.hypot(...g);
          assert.ok(norm > maxNorm, "the test gradients must exceed maxNorm");
          textbookAdam(st, g.map((x) => x * maxNorm / norm), { ...s, wd: s.weightDecay, t: i + 1 });
        });
        assertClose(r.p, st.p, `clipped p decoupled=${decoupled}`, 1e-13);
        assertClose(r.m, st.m, `clipped m decoupled=${decoupled}`, 1e-14);
        // And clipping changed something.
        const unclipped = await runAdam(p0, grads, s, null);
        assert.ok(unclipped.m.some((v, i) => Math.abs(v - r.m[i]) > 1e-6));
      }
    },
  );

  await t.step("clipping leaves gradients below maxNorm unchanged", async () => {
    const s = { ...base, weightDecay: 0, decoupled: false };
    const clipped = await runAdam(p0, grads, s, 1e6);
    const plain = await runAdam(p0, grads, s, null);
    assert.deepEqual(clipped, plain);
  });
});

Deno.test("reference ema: target = decay * target + (1 - decay) * source, in place", async () => {
  const t0 = [1, -2, 3], s = [0, 4, 3];
  const T = be.upload(t0);
  be.ema(T, be.upload(s), 0.9);
  assertClose(await read(T), [0.9, -1.4, 3], "one step", 1e-15);
  be.ema(T, be.upload(s), 0);
  assert.deepEqual(await read(T), s, "decay 0 copies the source");
  be.ema(T, be.upload([100, 100, 100]), 1);
  assert.deepEqual(await read(T), s, "decay 1 keeps the target");
});

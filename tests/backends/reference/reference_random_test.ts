/**
 * The reference backend's random fills against the Philox-4x32-10 definition (with the Random123
 * known-answer vectors) and against sample statistics, on float64 and float32 storage.
 */

import assert from "node:assert/strict";
import type { Storage } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { philox4x32, Random } from "../../../src/random.ts";

const be = createReferenceBackend({ dtype: "float64" });
const be32 = createReferenceBackend({ dtype: "float32" });

async function read(s: Storage, b = be): Promise<number[]> {
  return [...await b.read(s)];
}

Deno.test("philox4x32-10: Random123 known-answer vectors", () => {
  const out = new Uint32Array(4);
  const kat: [number[], number[], number[]][] = [
    [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ],
  ];
  for (const [c, k, want] of kat) {
    philox4x32(c[0], c[1], c[2], c[3], k[0], k[1], out);
    assert.deepEqual([...out], want, `counter ${c.map((v) => v.toString(16))}`);
  }
});

/** Uniform i of a fill at (seed, stream, counter), derived here straight from Philox. */
function expectedUniform(seed: number, stream: number, counter: number, i: number): number {
  const block = counter + Math.floor(i / 4), out = new Uint32Array(4);
  philox4x32(
    block % 2 ** 32,
    Math.floor(block / 2 ** 32),
    stream,
    0,
    seed % 2 ** 32,
    Math.floor(seed / 2 ** 32),
    out,
  );
  return Math.floor(out[i % 4] / 256) / 2 ** 24;
}

Deno.test("reference randomUniform: [0, 1), on the 24-bit grid, equal to the Philox definition", async () => {
  for (const b of [be, be32]) {
    for (
      const [seed, stream, counter] of [[0, 0, 0], [42, 3, 17], [2 ** 32 + 5, 1, 2 ** 32 + 3], [
        2 ** 53 - 1,
        0xffffffff,
        9,
      ]]
    ) {
      const n = 13;
      const out = b.alloc(n);
      b.randomUniform(out, { seed, stream, counter });
      const u = await read(out, b);
      for (let i = 0; i < n; i++) {
        assert.ok(u[i] >= 0 && u[i] < 1, `${u[i]} outside [0, 1)`);
        assert.ok(Number.isInteger(u[i] * 2 ** 24), "not on the 2^-24 grid");
        assert.equal(u[i], expectedUniform(seed, stream, counter, i), `seed ${seed} element ${i}`);
      }
    }
  }
});

Deno.test("reference random fills: same position same values; streams, seeds, counters differ", async () => {
  const fill = async (kind: "u" | "n", seed: number, stream: number, counter: number, n = 16) => {
    const s = be.alloc(n);
    if (kind === "u") be.randomUniform(s, { seed, stream, counter });
    else be.randomNormal(s, { seed, stream, counter });
    return await read(s);
  };
  for (const kind of ["u", "n"] as const) {
    const a = await fill(kind, 7, 0, 0);
    assert.deepEqual(await fill(kind, 7, 0, 0), a, "same draw, same values");
    for (
      const other of [
        await fill(kind, 7, 1, 0),
        await fill(kind, 8, 0, 0),
        await fill(kind, 7, 0, 1),
        await fill(kind, 7 + 2 ** 32, 0, 0),
      ]
    ) {
      assert.ok(other.every((v, i) => v !== a[i]), `${kind}: another position repeats values`);
    }
    // Element i comes from block counter + floor(i / 4): a fill starting one block later is a shift by 4.
    const later = await fill(kind, 7, 0, 1, 12);
    assert.deepEqual(later, a.slice(4), `${kind}: block-aligned fills`);
    // A shorter fill is a prefix.
    assert.deepEqual(await fill(kind, 7, 0, 0, 6), a.slice(0, 6), `${kind}: prefix`);
  }
  // The host-side generator draws the same numbers.
  const host = new Random(7, 0);
  assert.deepEqual([...host.uniforms(16)], await fill("u", 7, 0, 0));
  assert.deepEqual([...host.normals(16)], await fill("n", 7, 0, 4));
});

Deno.test("reference randomUniform / randomNormal: sample moments over 100k draws", async () => {
  const n = 100_000;
  const U = be.alloc(n), Z = be.alloc(n);
  be.randomUniform(U, { seed: 2024, stream: 0, counter: 0 });
  be.randomNormal(Z, { seed: 2024, stream: 1, counter: 0 });
  const u = await be.read(U), z = await be.read(Z);
  const moments = (xs: ArrayLike<number>) => {
    let s = 0, ss = 0;
    for (let i = 0; i < xs.length; i++) s += xs[i];
    const m = s / xs.length;
    for (let i = 0; i < xs.length; i++) ss += (xs[i] - m) ** 2;
    return { m, v: ss / (xs.length - 1) };
  };
  const mu = moments(u);
  // Uniform: mean 1/2 (sd 1/sqrt(12 n)), variance 1/12 (sd sqrt(1/180 n)); 5 sigma.
  assert.ok(Math.abs(mu.m - 0.5) < 5 * Math.sqrt(1 / (12 * n)), `uniform mean ${mu.m}`);
  assert.ok(Math.abs(mu.v - 1 / 12) < 5 * Math.sqrt(1 / (180 * n)), `uniform variance ${mu.v}`);
  const mz = moments(z);
  assert.ok(z.every(Number.isFinite));
  // Normal: mean 0 (sd 1/sqrt(n)), variance 1 (sd sqrt(2/n)); 5 sigma.
  assert.ok(Math.abs(mz.m) < 5 / Math.sqrt(n), `normal mean ${mz.m}`);
  assert.ok(Math.abs(mz.v - 1) < 5 * Math.sqrt(2 / n), `normal variance ${mz.v}`);
  // Shape: P(|z| < 1) = 0.682689, P(z > 1.96) = 0.0249979 (binomial standard errors, 5 sigma).
  const within = z.filter((v) => Math.abs(v) < 1).length / n;
  const tail = z.filter((v) => v > 1.959964).length / n;
  assert.ok(
    Math.abs(within - 0.682689) < 5 * Math.sqrt(0.682689 * 0.317311 / n),
    `P(|z|<1) ${within}`,
  );
  assert.ok(Math.abs(tail - 0.0249979) < 5 * Math.sqrt(0.025 * 0.975 / n), `P(z>1.96) ${tail}`);
});

Deno.test("reference randomInt: integers in [lo, hi), roughly uniform (chi-square)", async () => {
  const n = 100_000, lo = -3, hi = 7, k = hi - lo;
  const out = be.alloc(n);
  be.randomInt(out, { seed: 99, stream: 2, counter: 5 }, lo, hi);
  const x = await be.read(out);
  const counts = new Array<number>(k).fill(0);
  for (const v of x) {
    assert.ok(Number.isInteger(v) && v >= lo && v < hi, `${v} outside [${lo}, ${hi})`);
    counts[v - lo]++;
  }
  const e = n / k;
  const chi2 = counts.reduce((a, c) => a + (c - e) ** 2 / e, 0);
  // 9 degrees of freedom: mean 9, sd sqrt(18); the 0.99999 quantile is about 37.
  assert.ok(chi2 < 37, `chi-square ${chi2} for counts ${counts}`);
  assert.ok(counts.every((c) => c > 0));
  // Same draw, same integers; a one-value range always gives lo.
  const again = be.alloc(n);
  be.randomInt(again, { seed: 99, stream: 2, counter: 5 }, lo, hi);
  assert.deepEqual(await be.read(again), x);
  const one = be.alloc(50);
  be.randomInt(one, { seed: 1, stream: 0, counter: 0 }, 4, 5);
  assert.ok((await be.read(one)).every((v) => v === 4));
  // Consistent with the uniforms at the same position: floor(u * k) + lo.
  const u = be.alloc(64), i64 = be.alloc(64);
  be.randomUniform(u, { seed: 5, stream: 0, counter: 0 });
  be.randomInt(i64, { seed: 5, stream: 0, counter: 0 }, 0, 1000);
  const ua = await be.read(u), ia = await be.read(i64);
  for (let i = 0; i < 64; i++) assert.equal(ia[i], Math.floor(ua[i] * 1000));
});

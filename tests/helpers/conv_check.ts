/**
 * The convolution checks the wasm kernel tests share: forward with and without bias, input
 * gradient and filter gradient of a backend against the reference backend at every geometry, and
 * the same bits on one thread and on several.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, Conv2dGeometry, Storage } from "../../src/backend.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import type { Random } from "../../src/random.ts";
import { assertClose, uniformValues } from "./compare.ts";

const ref = createReferenceBackend();

/**
 * Asserts that `be` computes conv2d (with and without bias), conv2dBackwardData and
 * conv2dBackwardFilter like the reference backend at each geometry, on inputs uniform in [-1, 1)
 * from `rng`, within `tol` relative to the size of the sums (see {@linkcode assertClose}).
 */
export async function checkConvsAgainstReference(
  be: Backend,
  geometries: Iterable<Conv2dGeometry>,
  rng: Random,
  tol: number,
): Promise<void> {
  for (const g of geometries) {
    const what = `conv ${g.n}x${g.c}x${g.h}x${g.w} -> ${g.o} k${g.kh}x${g.kw} s${g.stride} ` +
      `p${g.pad}`;
    const kk = g.kh * g.kw;
    const draw = (n: number): [Storage, Storage] => {
      const d = uniformValues(rng, n);
      return [be.upload(d), ref.upload(d)];
    };
    const [xb, xr] = draw(g.n * g.c * g.h * g.w), [wb, wr] = draw(g.o * g.c * kk);
    const [bb, br] = draw(g.o), [db, dr] = draw(g.n * g.o * g.oh * g.ow);
    const same = async (a: Storage, b: Storage, label: string, scale: number) =>
      assertClose(await be.read(a), await ref.read(b), `${what} ${label}`, tol, scale);
    const sc = Math.sqrt(g.c * kk) / 4, so = Math.sqrt(g.o * kk) / 4;
    await same(be.conv2d(xb, wb, bb, g), ref.conv2d(xr, wr, br, g), "with bias", sc);
    await same(be.conv2d(xb, wb, null, g), ref.conv2d(xr, wr, null, g), "no bias", sc);
    await same(be.conv2dBackwardData(db, wb, g), ref.conv2dBackwardData(dr, wr, g), "dx", so);
    await same(
      be.conv2dBackwardFilter(xb, db, g),
      ref.conv2dBackwardFilter(xr, dr, g),
      "dw",
      Math.sqrt(g.n * g.oh * g.ow) / 4,
    );
    for (const s of [xb, wb, bb, db]) be.free(s);
  }
}

/**
 * Asserts that `one` and `two` (one thread and several) give bit-identical conv2d (with bias) and
 * conv2dBackwardData at each geometry, on the same inputs uniform in [-1, 1) from `rng`.
 */
export async function assertSameConvBits(
  one: Backend,
  two: Backend,
  geometries: Iterable<Conv2dGeometry>,
  rng: Random,
): Promise<void> {
  for (const g of geometries) {
    const x = uniformValues(rng, g.n * g.c * g.h * g.w);
    const w = uniformValues(rng, g.o * g.c * g.kh * g.kw), b = uniformValues(rng, g.o);
    const dy = uniformValues(rng, g.n * g.o * g.oh * g.ow);
    const run = async (be: Backend) => [
      ...await be.read(be.conv2d(be.upload(x), be.upload(w), be.upload(b), g)),
      ...await be.read(be.conv2dBackwardData(be.upload(dy), be.upload(w), g)),
    ];
    assert.deepEqual(await run(two), await run(one), `conv ${JSON.stringify(g)}`);
  }
}

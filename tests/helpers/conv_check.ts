/**
 * The convolution check the wasm kernel tests share: forward with and without bias, input
 * gradient and filter gradient of a backend against the reference backend at every geometry.
 *
 * @module
 */

import type { Backend, Conv2dGeometry, Storage } from "../../src/backend.ts";
import { ReferenceBackend } from "../../src/backends/reference.ts";
import type { Random } from "../../src/random.ts";
import { assertClose, uniformValues } from "./compare.ts";

const ref = new ReferenceBackend();

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

/**
 * What only the WebGPU kernels have: convolutions compiled the other way (shape-specialised where
 * the default is generic, as on software adapters, and generic where it is specialised) against the
 * reference backend at stride 2, a filter gradient split over K, a forward product split over K
 * and one on 64 x 128 tiles; and group normalisation refusing groups that do not divide the
 * channels. (Every kernel against the reference is in tests/backends/conformance/.) Runs on any
 * adapter, software ones included (llvmpipe); ignored where there is none.
 */

import assert from "node:assert/strict";
import { conv2dGeometry, type Storage } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { createWebGpuBackend } from "../../../gpu/mod.ts";
import { assertClose } from "../../helpers/compare.ts";
import { webgpuTest } from "../../helpers/webgpu.ts";

webgpuTest("conv2d forward, data and filter gradients, compiled the other way", async (be) => {
  const ref = createReferenceBackend();
  const other = await createWebGpuBackend({
    allowFallbackAdapter: true,
    specializeShapes: be.adapterInfo.isFallbackAdapter,
  });
  // Few shapes (llvmpipe takes seconds to compile each kernel, and every tile's GEMM skeleton is
  // checked by the matmul conformance test): stride 2, a filter gradient split over K, a forward
  // product split over K, and one on 64 x 128 tiles.
  const geos = [
    conv2dGeometry(2, 3, 7, 6, 5, 3, 2, 1),
    conv2dGeometry(4, 2, 16, 16, 3, 3, 1, 1),
    conv2dGeometry(2, 40, 7, 7, 24, 3, 1, 1),
    conv2dGeometry(16, 3, 32, 32, 64, 3, 1, 1),
  ];
  /** Normals from the stream `seed`, times `scale`, on `other` as a view at offset 3. */
  const pair = (n: number, seed: number, scale = 1) => {
    const v = Float32Array.from(new Random(seed, 7).normals(n), (z) => z * scale);
    const big = new Float32Array(n + 8).fill(NaN);
    big.set(v, 3);
    return [other.view(other.upload(big), 3, n), ref.upload(v)] as const;
  };
  try {
    for (const g of geos) {
      const what = JSON.stringify(g);
      const [xg, xr] = pair(g.n * g.c * g.h * g.w, 15),
        [wg, wr] = pair(g.o * g.c * g.kh * g.kw, 16, 0.3);
      const [bg, br] = pair(g.o, 17), [dg, dr] = pair(g.n * g.o * g.oh * g.ow, 18);
      const same = async (got: Storage, want: Storage, label: string) =>
        assertClose(await other.read(got), await ref.read(want), `${label} ${what}`);
      await same(other.conv2d(xg, wg, bg, g), ref.conv2d(xr, wr, br, g), "conv");
      await same(other.conv2d(xg, wg, null, g), ref.conv2d(xr, wr, null, g), "conv nb");
      await same(
        other.conv2dBackwardData(dg, wg, g),
        ref.conv2dBackwardData(dr, wr, g),
        "conv data",
      );
      await same(
        other.conv2dBackwardFilter(xg, dg, g),
        ref.conv2dBackwardFilter(xr, dr, g),
        "conv filter",
      );
    }
  } finally {
    other.dispose();
  }
});

webgpuTest("group norm refuses groups that do not divide the channels", async (be) => {
  assert.throws(
    () =>
      be.groupNorm(be.alloc(6), { gamma: be.alloc(3), beta: be.alloc(3) }, {
        n: 1,
        c: 3,
        hw: 2,
        groups: 2,
        eps: 0,
      }),
    /divide/,
  );
  await Promise.resolve();
});

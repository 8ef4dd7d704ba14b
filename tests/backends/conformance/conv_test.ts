/**
 * Conformance of the convolution kernels on every backend: `conv2d` with and without bias,
 * `conv2dBackwardData` and `conv2dBackwardFilter` at odd sizes, batch 1, strides 1 to 3, padding 0
 * to 2, 1x1, 3x3, 4x4 and rectangular windows, products that split over K on WebGPU, and the MNIST
 * UNet's shapes at a small batch (on the backends that run the large cases, within 1e-4 relative to
 * the size of their long sums), on inputs uniform in [-1, 1).
 */

import { type Conv2dGeometry, conv2dGeometry } from "../../../src/backend.ts";
import { conformance, TOL } from "./harness.ts";

/** Geometries every backend runs. */
const GEOMETRIES: Conv2dGeometry[] = [
  conv2dGeometry(1, 1, 5, 5, 1, 3, 1, 1),
  conv2dGeometry(2, 3, 9, 11, 5, 3, 1, 1),
  conv2dGeometry(1, 4, 14, 14, 8, 3, 1, 1),
  conv2dGeometry(2, 3, 9, 11, 5, 3, 2, 1),
  conv2dGeometry(1, 8, 14, 14, 7, 3, 2, 1),
  conv2dGeometry(2, 6, 7, 5, 9, 1, 1, 0),
  conv2dGeometry(1, 5, 9, 9, 4, 1, 2, 0),
  conv2dGeometry(1, 3, 6, 7, 2, 3, 1, 0),
  conv2dGeometry(2, 16, 12, 12, 16, 3, 1, 1),
  conv2dGeometry(1, 2, 20, 20, 3, 3, 1, 1),
  conv2dGeometry(2, 3, 6, 6, 4, 3, 3, 0),
  // A rectangular window.
  { n: 2, c: 3, h: 8, w: 9, o: 4, kh: 3, kw: 1, stride: 1, pad: 1, oh: 8, ow: 11 },
  conv2dGeometry(2, 3, 7, 6, 5, 3, 1, 1),
  conv2dGeometry(2, 3, 7, 6, 5, 3, 2, 1),
  conv2dGeometry(1, 4, 5, 5, 2, 1, 1, 0),
  conv2dGeometry(2, 2, 9, 8, 3, 4, 2, 0),
  conv2dGeometry(4, 2, 16, 16, 3, 3, 1, 1), // filter gradient split over K on WebGPU
  conv2dGeometry(4, 2, 16, 16, 70, 3, 1, 1), // 64-row tiles in WebGPU's forward product
  conv2dGeometry(2, 40, 7, 7, 24, 3, 1, 1), // forward and data gradient split over K on WebGPU
  // Stride 2 with 43 channels: 387 rows split in two K blocks of 194 and 193, each cut inside a
  // channel's nine taps (wasm packs such window rows tap by tap, whole ones three taps at once).
  conv2dGeometry(2, 43, 10, 30, 5, 3, 2, 1),
];

/** The MNIST UNet's shapes at a small batch (columns of the batched GEMM cross images). */
const LARGE: Conv2dGeometry[] = [
  conv2dGeometry(3, 32, 28, 28, 32, 3, 1, 1),
  conv2dGeometry(3, 32, 28, 28, 32, 3, 2, 1),
  conv2dGeometry(3, 96, 28, 28, 32, 1, 1, 0),
  conv2dGeometry(3, 32, 28, 28, 1, 3, 1, 1),
  conv2dGeometry(3, 64, 14, 14, 64, 3, 2, 1),
  conv2dGeometry(3, 128, 14, 14, 64, 1, 1, 0),
  conv2dGeometry(5, 64, 7, 7, 64, 3, 1, 1),
  conv2dGeometry(5, 128, 7, 7, 64, 3, 1, 1),
];

conformance("conv: conv2d with and without bias, data and filter gradients", async (c) => {
  const { be, ref, data } = c;
  const rows = [
    ...GEOMETRIES.map((g) => ({ g, scaled: false })),
    ...(c.target.large ? LARGE.map((g) => ({ g, scaled: true })) : []),
  ];
  for (const { g, scaled } of rows) {
    const what = `conv ${JSON.stringify(g)}`;
    const kk = g.kh * g.kw;
    const [xb, xr] = c.pair(data.uniform(g.n * g.c * g.h * g.w));
    const [wb, wr] = c.pair(data.uniform(g.o * g.c * kk));
    const [bb, br] = c.pair(data.uniform(g.o));
    const [db, dr] = c.pair(data.uniform(g.n * g.o * g.oh * g.ow));
    // The UNet's long sums (F(4x4, 3x3) Winograd on wasm) within 1e-4 of sqrt(terms) / 4.
    const [fwd, dx, dw] = scaled
      ? [g.c * kk, g.o * kk, g.n * g.oh * g.ow].map((t) => Math.sqrt(t) / 4)
      : [0, 0, 0];
    await c.same(be.conv2d(xb, wb, bb, g), ref.conv2d(xr, wr, br, g), what, TOL, fwd);
    await c.same(
      be.conv2d(xb, wb, null, g),
      ref.conv2d(xr, wr, null, g),
      `${what} no bias`,
      TOL,
      fwd,
    );
    await c.same(
      be.conv2dBackwardData(db, wb, g),
      ref.conv2dBackwardData(dr, wr, g),
      `${what} dx`,
      TOL,
      dx,
    );
    await c.same(
      be.conv2dBackwardFilter(xb, db, g),
      ref.conv2dBackwardFilter(xr, dr, g),
      `${what} dw`,
      TOL,
      dw,
    );
  }
});

/**
 * The wasm backend's convolution shortcuts against the reference backend: the direct kernel for
 * few output channels (cout <= 4) or one input channel (the forward, and the input gradient of a
 * stride-1 convolution with one output channel or few input channels), and the input gradient of
 * a strided convolution image by image (images split over threads; its col2im takes a 3x3 stride-2
 * pad-1 window row's three taps at once; at stride 2 the filter gradient's product packs the
 * image's transposed im2col view itself). Odd sizes,
 * widths that are not multiples of the SIMD width, batch 1 and 3, one thread and two with every
 * kernel split, and the same bits on both.
 */

import { assertClose, uniformValues } from "../../helpers/compare.ts";
import { assertSameConvBits, checkConvsAgainstReference } from "../../helpers/conv_check.ts";
import { type Conv2dGeometry, conv2dGeometry } from "../../../src/backend.ts";
import { Random } from "../../../src/random.ts";
import { createWasmBackend, openWasmBackend, type WasmBackend } from "../../../wasm/backend.ts";

const TOL = 1e-4;
const rng = new Random(20261125);

/** n uniforms in [-1, 1). */
function values(n: number): Float32Array {
  return uniformValues(rng, n);
}

/** [c, o, kh, kw, stride, pad] of the direct and strided shapes. */
const KERNELS: [number, number, number, number, number, number][] = [
  // Direct forward: one input channel, or at most 4 output channels; input gradients with one
  // output channel or at most 4 input channels.
  [1, 1, 3, 3, 1, 1],
  [1, 16, 3, 3, 1, 1],
  [1, 21, 3, 3, 1, 0],
  [16, 1, 3, 3, 1, 1],
  [13, 3, 3, 3, 1, 1],
  [3, 4, 5, 5, 1, 2],
  [2, 5, 5, 5, 1, 1],
  [1, 6, 2, 3, 1, 1],
  [1, 7, 1, 1, 1, 0],
  [5, 2, 1, 1, 1, 0],
  // Strided convolutions.
  [16, 16, 3, 3, 2, 1],
  [5, 7, 3, 3, 2, 1],
  [3, 2, 5, 5, 2, 2],
  [4, 6, 3, 3, 3, 1],
  [3, 5, 2, 2, 2, 0],
  [6, 3, 3, 3, 2, 0],
];

function geometries(): Conv2dGeometry[] {
  const sizes = [[1, 1], [2, 3], [5, 7], [7, 6], [9, 13]];
  const out: Conv2dGeometry[] = [];
  for (const n of [1, 3]) {
    for (const [h, w] of sizes) {
      for (const [c, o, kh, kw, s, p] of KERNELS) {
        if (h + 2 * p < kh || w + 2 * p < kw) continue;
        const g = conv2dGeometry(n, c, h, w, o, kh, s, p);
        if (kh !== kw) {
          g.kw = kw;
          g.ow = Math.floor((w + 2 * p - kw) / s) + 1;
        }
        out.push(g);
      }
    }
  }
  for (const [c, o] of [[1, 16], [16, 1], [16, 16], [32, 32]]) {
    out.push(conv2dGeometry(2, c, 28, 28, o, 3, 1, 1));
    out.push(conv2dGeometry(2, c, 28, 28, o, 3, 2, 1));
    out.push(conv2dGeometry(3, c, 14, 14, o, 3, 2, 1));
  }
  // Stride 2 with rows wide enough for the packer's four-column groups, odd widths, and groups
  // at the left and right padding.
  out.push(conv2dGeometry(3, 5, 17, 21, 6, 3, 2, 1));
  out.push(conv2dGeometry(1, 3, 31, 30, 7, 3, 2, 0));
  out.push(conv2dGeometry(2, 4, 19, 35, 5, 3, 2, 1));
  // The stride-2 input gradient's three-tap col2im: even widths whose output width is a multiple
  // of four (the vector loop runs to the last output column), and an odd one.
  out.push(conv2dGeometry(2, 3, 8, 16, 4, 3, 2, 1));
  out.push(conv2dGeometry(1, 2, 5, 24, 3, 3, 2, 1));
  out.push(conv2dGeometry(1, 2, 4, 23, 3, 3, 2, 1));
  // More rows of the im2col view (c x 3 x 3) than one K block of the micro-kernel (384): 43 x 9 =
  // 387 splits into blocks of 194 rows, so the second block starts inside a channel's taps.
  out.push(conv2dGeometry(2, 43, 9, 10, 5, 3, 2, 1));
  out.push(conv2dGeometry(1, 43, 6, 7, 6, 3, 1, 0));
  // The stride-2 filter gradient's packer (gemm_pack_strided.ts): 529 output pixels, K blocks of
  // 265 (the second starts inside an output row); 64 channels, 576 columns, more than one panel
  // (512), so a window row's three taps straddle it; 5x5 and 2x2 windows (a tap a sliver); no
  // padding.
  out.push(conv2dGeometry(1, 8, 45, 46, 3, 3, 2, 1));
  out.push(conv2dGeometry(2, 64, 7, 9, 5, 3, 2, 1));
  out.push(conv2dGeometry(2, 8, 9, 11, 4, 5, 2, 2));
  out.push(conv2dGeometry(1, 16, 6, 8, 3, 2, 2, 0));
  out.push(conv2dGeometry(2, 8, 10, 13, 3, 3, 2, 0));
  return out;
}

function check(wasm: WasmBackend): Promise<void> {
  return checkConvsAgainstReference(wasm, geometries(), rng, TOL);
}

Deno.test("wasm direct and strided convolutions match the reference (1 thread)", async () => {
  await check(openWasmBackend({ threads: 1 }));
});

Deno.test("wasm direct and strided convolutions match the reference (2 threads)", async () => {
  const be = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  try {
    await check(be as WasmBackend);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm direct and strided convolutions: the same bits on one thread and on two", async () => {
  const one = openWasmBackend({ threads: 1 });
  const two = await createWasmBackend({ threads: 2, parallelThreshold: 0 });
  try {
    const shapes = [[1, 16, 1, 13], [16, 1, 1, 13], [3, 4, 1, 13], [16, 16, 2, 13], [5, 7, 2, 13]];
    shapes.push([5, 7, 2, 29], [8, 9, 2, 28], [64, 3, 2, 11]);
    const geometries = shapes.map(([c, o, s, side]) =>
      conv2dGeometry(5, c, side, side - 2, o, 3, s, 1)
    );
    await assertSameConvBits(one, two, geometries, rng);
  } finally {
    two.dispose();
  }
});

Deno.test("wasm convolution shortcuts agree with the GEMM paths they replace", async () => {
  const on = openWasmBackend({ threads: 1 });
  const off = openWasmBackend({ threads: 1, convShortcuts: false });
  for (const [c, o, s] of [[1, 16, 1], [16, 1, 1], [16, 16, 2]]) {
    const g = conv2dGeometry(3, c, 9, 10, o, 3, s, 1);
    const x = values(g.n * g.c * g.h * g.w), w = values(g.o * g.c * 9), b = values(g.o);
    const dy = values(g.n * g.o * g.oh * g.ow);
    const run = async (be: WasmBackend) => [
      ...await be.read(be.conv2d(be.upload(x), be.upload(w), be.upload(b), g)),
      ...await be.read(be.conv2dBackwardData(be.upload(dy), be.upload(w), g)),
    ];
    assertClose(await run(on), await run(off), `${c}->${o} s${s}`, TOL, 4);
  }
});

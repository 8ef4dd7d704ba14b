/**
 * The wasm backend's choice of convolution algorithm (wasm/conv_policy.ts) at the shapes its
 * measurements cover (docs/wasm_kernel_choice.md): Winograd for 3x3 stride-1 pad-1 convolutions of
 * at least 8 input channels at 7x7 and up, F(4x4, 3x3) from 16 input channels, the direct kernel
 * for few output channels or one input channel, the Winograd filter gradient from enough tiles,
 * the input gradient's GEMM paths, the tile and chunk sizes, and the options that override the
 * choice. Also the skinny GEMM kernels' choice (wasm/ops/linalg.ts).
 */

import assert from "node:assert/strict";
import { conv2dGeometry } from "../../../src/backend.ts";
import {
  chooseConv,
  type ConvPolicyOptions,
  DEFAULT_CONV_POLICY as AUTO,
} from "../../../wasm/conv_policy.ts";
import { skinnyKind } from "../../../wasm/ops/linalg.ts";

/** A 3x3 stride-1 pad-1 convolution of batch n, cin -> cout channels at side x side. */
const same3 = (n: number, cin: number, cout: number, side: number) =>
  conv2dGeometry(n, cin, side, side, cout, 3, 1, 1);

/** The default options with `over` changed. */
const opts = (over: Partial<ConvPolicyOptions>): ConvPolicyOptions => ({ ...AUTO, ...over });

Deno.test("conv policy: Winograd forward for 3x3 stride-1 pad-1 from 8 input channels at 7x7 and up", () => {
  for (const [cin, cout, side] of [[8, 8, 28], [16, 16, 28], [128, 96, 7], [8, 64, 7]]) {
    const c = chooseConv("forward", same3(64, cin, cout, side), 1, AUTO);
    assert.equal(c.kind, "winograd", `${cin}->${cout} @${side}`);
  }
  // Below 8 input channels or 7x7: the implicit GEMM.
  assert.equal(chooseConv("forward", same3(64, 7, 16, 28), 1, AUTO).kind, "gemm");
  assert.equal(chooseConv("forward", same3(64, 16, 16, 6), 1, AUTO).kind, "gemm");
  assert.equal(
    chooseConv("forward", conv2dGeometry(64, 16, 28, 6, 16, 3, 1, 1), 1, AUTO).kind,
    "gemm",
  );
  // Not 3x3 stride-1 pad-1.
  assert.equal(
    chooseConv("forward", conv2dGeometry(64, 16, 28, 28, 16, 3, 2, 1), 1, AUTO).kind,
    "gemm",
  );
  assert.equal(
    chooseConv("forward", conv2dGeometry(64, 16, 28, 28, 16, 3, 1, 0), 1, AUTO).kind,
    "gemm",
  );
  assert.equal(
    chooseConv("forward", conv2dGeometry(64, 16, 28, 28, 16, 5, 1, 2), 1, AUTO).kind,
    "gemm",
  );
  assert.equal(
    chooseConv("forward", conv2dGeometry(64, 16, 28, 28, 16, 1, 1, 0), 1, AUTO).kind,
    "gemm",
  );
});

Deno.test("conv policy: F(4x4, 3x3) from 16 input channels at 7x7 and up, else F(2x2, 3x3)", () => {
  const tile = (cin: number, side: number, o = AUTO) => {
    const c = chooseConv("forward", same3(64, cin, 32, side), 2, o);
    assert.equal(c.kind, "winograd");
    return c.kind === "winograd" ? c.tile : 0;
  };
  assert.equal(tile(16, 7), 4);
  assert.equal(tile(32, 28), 4);
  assert.equal(tile(128, 14), 4);
  assert.equal(tile(15, 28), 2);
  assert.equal(tile(8, 28), 2);
  // The overrides.
  assert.equal(tile(64, 28, opts({ winogradTile: 2 })), 2);
  assert.equal(tile(8, 28, opts({ winogradTile: 4 })), 4);
  // The tile follows the input channels of the convolution computed: the input gradient of a
  // 16 -> 8 convolution is an 8 -> 16 one.
  const d = chooseConv("data", same3(64, 16, 8, 28), 2, AUTO);
  assert.deepEqual(d.kind === "winograd" && d.tile, 2);
  const d2 = chooseConv("data", same3(64, 8, 16, 28), 2, AUTO);
  assert.deepEqual(d2.kind === "winograd" && d2.tile, 4);
});

Deno.test("conv policy: the Winograd chunk of tiles", () => {
  // F(4x4): about 1 MiB of transforms (7282 / (cin + cout), multiples of 8, 16 to 240), at most
  // an even share of 4 chunks a thread: 64->64 at 7x7, batch 64 (256 tiles) on 2 threads: 32
  // tiles, not 56.
  assert.deepEqual(chooseConv("forward", same3(64, 64, 64, 7), 2, AUTO), {
    kind: "winograd",
    tile: 4,
    tiles: 256,
    chunk: 32,
  });
  assert.deepEqual(chooseConv("forward", same3(64, 64, 64, 7), 1, AUTO), {
    kind: "winograd",
    tile: 4,
    tiles: 256,
    chunk: 56,
  });
  assert.deepEqual(chooseConv("forward", same3(64, 16, 16, 28), 1, AUTO), {
    kind: "winograd",
    tile: 4,
    tiles: 64 * 49,
    chunk: 224,
  });
  assert.deepEqual(chooseConv("forward", same3(1, 256, 256, 8), 2, AUTO), {
    kind: "winograd",
    tile: 4,
    tiles: 4,
    chunk: 16,
  });
  // F(2x2): 16384 / (cin + cout), multiples of 12, 48 to 480, whatever the threads.
  for (const threads of [1, 2, 8]) {
    assert.deepEqual(chooseConv("forward", same3(64, 8, 8, 28), threads, AUTO), {
      kind: "winograd",
      tile: 2,
      tiles: 64 * 196,
      chunk: 480,
    });
    assert.deepEqual(
      chooseConv("forward", same3(64, 64, 64, 28), threads, opts({ winogradTile: 2 })),
      {
        kind: "winograd",
        tile: 2,
        tiles: 64 * 196,
        chunk: 120,
      },
    );
    const big = chooseConv("forward", same3(8, 256, 256, 14), threads, opts({ winogradTile: 2 }));
    assert.deepEqual(big.kind === "winograd" && big.chunk, 48);
  }
});

Deno.test("conv policy: the direct kernel for at most 4 output channels or one input channel (at most 64 out)", () => {
  for (const [cin, cout] of [[16, 1], [64, 4], [1, 16], [1, 64], [3, 2]]) {
    assert.deepEqual(chooseConv("forward", same3(64, cin, cout, 28), 1, AUTO), {
      kind: "direct",
      pad: 1,
    }, `${cin}->${cout}`);
  }
  // Before Winograd: 16 -> 1 at 28x28 is a Winograd shape.
  assert.equal(chooseConv("forward", same3(64, 16, 1, 28), 1, AUTO).kind, "direct");
  // Not: 5 output channels of more than one input, one input channel to 65 outputs.
  assert.equal(chooseConv("forward", same3(64, 2, 5, 28), 1, AUTO).kind, "gemm");
  assert.equal(chooseConv("forward", same3(64, 1, 65, 28), 1, AUTO).kind, "gemm");
  assert.equal(chooseConv("forward", same3(64, 16, 5, 28), 1, AUTO).kind, "winograd");
  // Other kernels and paddings, stride 1, padding at most k - 1.
  assert.deepEqual(chooseConv("forward", conv2dGeometry(4, 1, 9, 9, 8, 5, 1, 0), 1, AUTO), {
    kind: "direct",
    pad: 0,
  });
  assert.equal(chooseConv("forward", conv2dGeometry(4, 1, 9, 9, 8, 3, 2, 1), 1, AUTO).kind, "gemm");
  assert.equal(chooseConv("forward", conv2dGeometry(4, 1, 9, 9, 8, 3, 1, 3), 1, AUTO).kind, "gemm");
  // Off without the shortcuts, or with Winograd forced (which then runs).
  const off = opts({ convShortcuts: false });
  assert.equal(chooseConv("forward", same3(64, 1, 16, 28), 1, off).kind, "gemm");
  assert.equal(chooseConv("forward", same3(64, 16, 1, 28), 1, off).kind, "winograd");
  const on = opts({ winograd: true });
  assert.equal(chooseConv("forward", same3(64, 1, 16, 28), 1, on).kind, "winograd");
  // Winograd off leaves the direct kernel.
  assert.equal(
    chooseConv("forward", same3(64, 1, 16, 28), 1, opts({ winograd: false })).kind,
    "direct",
  );
});

Deno.test("conv policy: the input gradient's algorithm", () => {
  // As the forward convolution of dy: 16 -> 1 has a 1 -> 16 input gradient, direct on the
  // flipped filter, padding k - 1 - pad.
  assert.deepEqual(chooseConv("data", same3(64, 16, 1, 28), 1, AUTO), { kind: "direct", pad: 1 });
  assert.deepEqual(chooseConv("data", conv2dGeometry(4, 3, 9, 9, 1, 3, 1, 0), 1, AUTO), {
    kind: "direct",
    pad: 2,
  });
  assert.equal(chooseConv("data", same3(64, 16, 16, 28), 1, AUTO).kind, "winograd");
  // 16 input channels of 7 output channels: 7 -> 16 is neither direct nor Winograd.
  assert.equal(chooseConv("data", same3(64, 16, 7, 28), 1, AUTO).kind, "flippedGemm");
  assert.equal(
    chooseConv("data", conv2dGeometry(8, 16, 12, 12, 16, 5, 1, 2), 1, AUTO).kind,
    "flippedGemm",
  );
  assert.equal(
    chooseConv("data", conv2dGeometry(8, 16, 12, 12, 32, 1, 1, 0), 1, AUTO).kind,
    "pointwise",
  );
  // Strided: image by image, split over threads by images; without the shortcuts, each image's
  // GEMM and col2im split.
  const strided = conv2dGeometry(64, 16, 28, 28, 16, 3, 2, 1);
  assert.equal(chooseConv("data", strided, 2, AUTO).kind, "perImage");
  assert.equal(chooseConv("data", strided, 2, opts({ convShortcuts: false })).kind, "col2im");
  // Padding above k - 1 has no flipped form either.
  assert.equal(
    chooseConv("data", conv2dGeometry(4, 8, 9, 9, 8, 3, 1, 3), 1, AUTO).kind,
    "perImage",
  );
  // Without the shortcuts the direct shapes run by the flipped GEMM (or Winograd where it fits).
  const off = opts({ convShortcuts: false });
  assert.equal(
    chooseConv("data", conv2dGeometry(4, 3, 9, 9, 1, 3, 1, 0), 1, off).kind,
    "flippedGemm",
  );
  assert.equal(chooseConv("data", same3(64, 16, 1, 28), 1, off).kind, "flippedGemm");
  assert.equal(
    chooseConv("data", same3(64, 16, 1, 28), 1, opts({ winograd: true })).kind,
    "winograd",
  );
  assert.equal(
    chooseConv("data", same3(64, 16, 16, 28), 1, opts({ winograd: false })).kind,
    "flippedGemm",
  );
});

Deno.test("conv policy: the Winograd filter gradient from 64 tiles (2048 with one input channel)", () => {
  // 2x2 tiles over the batch: 16 a 7x7 image.
  assert.equal(chooseConv("filter", same3(4, 16, 16, 7), 1, AUTO).kind, "winograd");
  assert.equal(chooseConv("filter", same3(3, 16, 16, 7), 1, AUTO).kind, "gemm");
  assert.equal(chooseConv("filter", same3(4, 256, 256, 7), 1, AUTO).kind, "winograd");
  assert.equal(chooseConv("filter", same3(1, 256, 256, 7), 1, AUTO).kind, "gemm");
  // One input channel: 196 tiles a 28x28 image, Winograd from 11 images (2,156 tiles).
  assert.equal(chooseConv("filter", same3(10, 1, 16, 28), 1, AUTO).kind, "gemm");
  assert.equal(chooseConv("filter", same3(11, 1, 16, 28), 1, AUTO).kind, "winograd");
  assert.equal(chooseConv("filter", same3(128, 1, 16, 28), 1, AUTO).kind, "winograd");
  // Groups of at least 64 tiles (a multiple of 4), at most 16; chunks of 96 to 384 tiles.
  assert.deepEqual(chooseConv("filter", same3(64, 16, 16, 28), 2, AUTO), {
    kind: "winograd",
    tiles: 12544,
    chunk: 384,
    groupSize: 784,
    groups: 16,
  });
  assert.deepEqual(chooseConv("filter", same3(4, 128, 128, 7), 2, AUTO), {
    kind: "winograd",
    tiles: 64,
    chunk: 96,
    groupSize: 64,
    groups: 1,
  });
  assert.deepEqual(chooseConv("filter", same3(8, 64, 64, 7), 1, AUTO), {
    kind: "winograd",
    tiles: 128,
    chunk: 128,
    groupSize: 64,
    groups: 2,
  });
  // The overrides: always (any batch), never.
  assert.equal(
    chooseConv("filter", same3(1, 16, 16, 3), 1, opts({ winograd: true })).kind,
    "winograd",
  );
  assert.equal(
    chooseConv("filter", same3(64, 16, 16, 28), 1, opts({ winograd: false })).kind,
    "gemm",
  );
  // Not a Winograd shape: the GEMM over at most 16 groups of images.
  assert.deepEqual(chooseConv("filter", conv2dGeometry(40, 16, 28, 28, 16, 3, 2, 1), 2, AUTO), {
    kind: "gemm",
    groupSize: 3,
    groups: 14,
  });
  assert.deepEqual(chooseConv("filter", conv2dGeometry(5, 16, 28, 28, 16, 1, 1, 0), 2, AUTO), {
    kind: "gemm",
    groupSize: 1,
    groups: 5,
  });
});

Deno.test("conv policy: the choice depends on the threads only through the F(4x4) chunk", () => {
  const shapes = [
    same3(64, 16, 16, 28),
    same3(64, 1, 16, 28),
    same3(4, 64, 64, 7),
    conv2dGeometry(64, 16, 28, 28, 32, 3, 2, 1),
    conv2dGeometry(64, 32, 14, 14, 16, 1, 1, 0),
  ];
  for (const g of shapes) {
    for (const pass of ["forward", "data", "filter"] as const) {
      const one = chooseConv(pass, g, 1, AUTO), many = chooseConv(pass, g, 8, AUTO);
      assert.equal(many.kind, one.kind);
      if (one.kind !== "winograd" || !("tile" in one) || one.tile !== 4) {
        assert.deepEqual(many, one, `${pass} ${JSON.stringify(g)}`);
      }
    }
  }
});

Deno.test("skinny GEMM: few columns, few rows or a short inner size, else the packed GEMM", () => {
  // The measured shapes (m x k -> n): 64x256 -> 2, 10000x256 -> 2, 64x3 -> 256, 10000x3 -> 256.
  assert.equal(skinnyKind(64, 2, 256, false), 1);
  assert.equal(skinnyKind(10000, 2, 256, false), 1);
  assert.equal(skinnyKind(64, 256, 3, false), 2);
  assert.equal(skinnyKind(10000, 256, 3, false), 2);
  assert.equal(skinnyKind(64, 256, 256, false), 0);
  // Few columns by dot products needs rows of A' contiguous and k >= 4; with A' transposed, few
  // columns go to the outer-product kernel (the MLP's first-layer filter gradient).
  assert.equal(skinnyKind(64, 2, 256, true), 3);
  assert.equal(skinnyKind(256, 3, 64, true), 3);
  assert.equal(skinnyKind(64, 4, 4, false), 1);
  assert.equal(skinnyKind(64, 5, 256, false), 0);
  assert.equal(skinnyKind(64, 5, 256, true), 0);
  // A short inner size needs m >= 4; fewer rows, with rows of B' contiguous, go to the other
  // outer-product kernel (the output layer's filter gradient), not with B' transposed.
  assert.equal(skinnyKind(3, 256, 3, false), 4);
  assert.equal(skinnyKind(2, 256, 64, true), 4);
  assert.equal(skinnyKind(2, 256, 64, true, true), 0);
  assert.equal(skinnyKind(5, 256, 64, true), 0);
});

/**
 * The wasm backend's Winograd convolutions (3x3, stride 1, pad 1), forced on for every such shape,
 * against the reference backend: F(2x2, 3x3) and F(4x4, 3x3) for the forward with and without
 * bias and the input gradient, F(3x3, 2x2) for the filter gradient, on odd sizes (one tile,
 * clipped edge tiles, chunks of tiles that end inside a row), batch 1 and 3, channel counts that
 * are not multiples of the SIMD width or of the kernels' blocks, more input channels than one K
 * block, on one thread and on two with every kernel split.
 */

import assert from "node:assert/strict";
import { assertClose, uniformValues } from "../../helpers/compare.ts";
import { assertSameConvBits, checkConvsAgainstReference } from "../../helpers/conv_check.ts";
import { type Conv2dGeometry, conv2dGeometry } from "../../../src/backend.ts";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { Random } from "../../../src/random.ts";
import { createWasmBackend, openWasmBackend, type WasmBackend } from "../../../wasm/backend.ts";

const TOL = 1e-4;
const ref = createReferenceBackend();
const rng = new Random(20261124);

/** n uniforms in [-1, 1). */
function values(n: number): Float32Array {
  return uniformValues(rng, n);
}

/**
 * The geometries: every size with every channel pair, batch 1 and 3 (among them images two
 * 4x4 tiles wide, whose rows of tiles F(4x4) pairs: 7x7, 6x8 with a clipped lower row, 11x6 with
 * a last row left unpaired); 28x28 at batch 1 and 2.
 */
function geometries(): Conv2dGeometry[] {
  const sizes = [[1, 1], [2, 3], [5, 7], [7, 7], [6, 8], [11, 6]];
  const channels = [[1, 1], [3, 5], [5, 3], [1, 32], [32, 5], [32, 32]];
  const out: Conv2dGeometry[] = [];
  for (const n of [1, 3]) {
    for (const [h, w] of sizes) {
      for (const [c, o] of channels) out.push(conv2dGeometry(n, c, h, w, o, 3, 1, 1));
    }
  }
  out.push(conv2dGeometry(2, 3, 28, 28, 5, 3, 1, 1));
  out.push(conv2dGeometry(2, 32, 28, 28, 32, 3, 1, 1));
  // Many channels: chunks of 60 tiles, which end inside a row of 14 tiles.
  out.push(conv2dGeometry(1, 96, 28, 28, 160, 3, 1, 1));
  out.push(conv2dGeometry(3, 160, 7, 7, 96, 3, 1, 1));
  // More input channels than one K block of the micro-kernel (384): two blocks, accumulated.
  out.push(conv2dGeometry(1, 400, 5, 5, 7, 3, 1, 1));
  return out;
}

function check(wasm: WasmBackend): Promise<void> {
  return checkConvsAgainstReference(wasm, geometries(), rng, TOL);
}

for (const tile of [2, 4] as const) {
  const name = `F(${tile}x${tile}, 3x3)`;

  Deno.test(`wasm Winograd ${name} convolution matches the reference (1 thread)`, async () => {
    await check(openWasmBackend({ threads: 1, winograd: true, winogradTile: tile }));
  });

  Deno.test(`wasm Winograd ${name} convolution matches the reference (2 threads, split)`, async () => {
    const be = await createWasmBackend({
      threads: 2,
      parallelThreshold: 0,
      winograd: true,
      winogradTile: tile,
    });
    try {
      await check(be as WasmBackend);
    } finally {
      be.dispose();
    }
  });

  Deno.test(`wasm Winograd ${name} gives the same bits on one thread and on two`, async () => {
    const one = openWasmBackend({ threads: 1, winograd: true, winogradTile: tile });
    const two = await createWasmBackend({
      threads: 2,
      parallelThreshold: 0,
      winograd: true,
      winogradTile: tile,
    });
    try {
      // 13x11: rows of three tiles; 11x7: pairs of rows of two, split apart between the threads.
      await assertSameConvBits(one, two, [
        conv2dGeometry(3, 32, 13, 11, 24, 3, 1, 1),
        conv2dGeometry(5, 24, 11, 7, 20, 3, 1, 1),
      ], rng);
    } finally {
      two.dispose();
    }
  });
}

Deno.test("wasm backend: a Winograd tile other than 2, 4 or auto is refused by name", () => {
  assert.throws(
    () => openWasmBackend({ threads: 1, winogradTile: 3 as unknown as 2 }),
    /winogradTile must be 2, 4 or "auto", got 3/,
  );
});

/** Filter-gradient geometries: odd sizes, batch 1 and 3, 1 to 70 channels on either side. */
function filterGeometries(): Conv2dGeometry[] {
  // 5 x 5 and 9 x 5: rows of 3 tiles, so the last chunk's last four-tile step reaches past the
  // lanes its transforms write (slots the kernel zeroes).
  const sizes = [[1, 1], [2, 3], [5, 5], [5, 7], [7, 7], [9, 5]];
  const channels = [[1, 1], [1, 16], [16, 1], [3, 5], [8, 8], [13, 70], [70, 13], [64, 33]];
  const out: Conv2dGeometry[] = [];
  for (const n of [1, 3]) {
    for (const [h, w] of sizes) {
      for (const [c, o] of channels) out.push(conv2dGeometry(n, c, h, w, o, 3, 1, 1));
    }
    for (const [c, o] of [[1, 16], [16, 16], [5, 70], [70, 5]]) {
      out.push(conv2dGeometry(n, c, 28, 28, o, 3, 1, 1));
    }
  }
  return out;
}

async function checkFilter(wasm: WasmBackend): Promise<void> {
  for (const g of filterGeometries()) {
    const what = `dw ${g.n}x${g.c}x${g.h}x${g.w} -> ${g.o}`;
    const x = values(g.n * g.c * g.h * g.w), dy = values(g.n * g.o * g.h * g.w);
    const xw = wasm.upload(x), dw = wasm.upload(dy);
    assertClose(
      await wasm.read(wasm.conv2dBackwardFilter(xw, dw, g)),
      await ref.read(ref.conv2dBackwardFilter(ref.upload(x), ref.upload(dy), g)),
      what,
      TOL,
      Math.sqrt(g.n * g.h * g.w) / 4,
    );
    wasm.free(xw);
    wasm.free(dw);
  }
}

Deno.test("wasm Winograd filter gradient matches the reference (1 thread)", async () => {
  await checkFilter(openWasmBackend({ threads: 1, winograd: true }));
});

Deno.test("wasm Winograd filter gradient matches the reference (2 threads, split)", async () => {
  const be = await createWasmBackend({ threads: 2, parallelThreshold: 0, winograd: true });
  try {
    await checkFilter(be as WasmBackend);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm Winograd filter gradient: 16 groups of several chunks, same bits on 1 and 2 threads", async () => {
  // 41 images of 13 x 11: 1,722 tiles in 16 groups of 108 (the last 102), each two chunks of at
  // most 96, the very last ending off the kernels' four-tile step; channels off their blocks.
  const g = conv2dGeometry(41, 99, 13, 11, 77, 3, 1, 1);
  const x = values(g.n * g.c * g.h * g.w), dy = values(g.n * g.o * g.h * g.w);
  const direct = openWasmBackend({ threads: 1, winograd: false });
  const one = openWasmBackend({ threads: 1, winograd: true });
  const two = await createWasmBackend({ threads: 2, parallelThreshold: 0, winograd: true });
  try {
    const run = async (be: WasmBackend | typeof two) =>
      await be.read(be.conv2dBackwardFilter(be.upload(x), be.upload(dy), g));
    const a = await run(one);
    assert.deepEqual(await run(two), a);
    // The direct filter gradient is checked against the reference in
    // tests/backends/conformance/conv_test.ts.
    assertClose(a, await run(direct), "dw 41x99x13x11 -> 77", TOL, Math.sqrt(g.n * g.h * g.w) / 4);
  } finally {
    two.dispose();
  }
});

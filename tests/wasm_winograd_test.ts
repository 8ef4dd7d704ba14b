/**
 * The wasm backend's Winograd F(2x2, 3x3) convolution (3x3, stride 1, pad 1), forced on for every
 * such shape, against the reference backend: forward with and without bias and the input
 * gradient, on odd sizes (one tile, clipped edge tiles, chunks of tiles that end inside a row),
 * batch 1 and 3, channel counts that are not multiples of the SIMD width, on one thread and on two
 * with every kernel split. The filter gradient does not use it; it is checked too, since the same
 * backend computes it.
 */

import assert from "node:assert/strict";
import { type Conv2dGeometry, conv2dGeometry, type Storage } from "../src/backend.ts";
import { ReferenceBackend } from "../src/backends/reference.ts";
import { Random } from "../src/random.ts";
import { createWasmBackend, WasmBackend } from "../wasm/backend.ts";

const TOL = 1e-4;
const ref = new ReferenceBackend();
const rng = new Random(20261124);

/** n uniforms in [-1, 1). */
function values(n: number): Float32Array {
  const u = rng.uniforms(n), out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * u[i] - 1;
  return out;
}

/** |actual - expected| <= tol * max(1, |expected|, scale) element-wise. */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  scale: number,
): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    assert.ok(
      Math.abs(a - e) <= TOL * Math.max(1, Math.abs(e), scale),
      `${what}: element ${i} is ${a}, expected ${e}`,
    );
  }
}

/** The geometries: every size with every channel pair, batch 1 and 3; 28x28 at batch 1 and 2. */
function geometries(): Conv2dGeometry[] {
  const sizes = [[1, 1], [2, 3], [5, 7], [7, 7]];
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
  return out;
}

async function check(wasm: WasmBackend): Promise<void> {
  for (const g of geometries()) {
    const what = `conv ${g.n}x${g.c}x${g.h}x${g.w} -> ${g.o}`;
    const x = values(g.n * g.c * g.h * g.w), w = values(g.o * g.c * 9);
    const bias = values(g.o), dy = values(g.n * g.o * g.h * g.w);
    const up = (d: Float32Array): [Storage, Storage] => [wasm.upload(d), ref.upload(d)];
    const [xw, xr] = up(x), [ww, wr] = up(w), [bw, br] = up(bias), [dw, dr] = up(dy);
    const same = async (a: Storage, b: Storage, label: string, scale: number) =>
      assertClose(await wasm.read(a), await ref.read(b), `${what} ${label}`, scale);
    const sc = Math.sqrt(g.c * 9) / 4, so = Math.sqrt(g.o * 9) / 4;
    await same(wasm.conv2d(xw, ww, bw, g), ref.conv2d(xr, wr, br, g), "with bias", sc);
    await same(wasm.conv2d(xw, ww, null, g), ref.conv2d(xr, wr, null, g), "no bias", sc);
    await same(wasm.conv2dBackwardData(dw, ww, g), ref.conv2dBackwardData(dr, wr, g), "dx", so);
    await same(
      wasm.conv2dBackwardFilter(xw, dw, g),
      ref.conv2dBackwardFilter(xr, dr, g),
      "dw",
      Math.sqrt(g.n * g.h * g.w) / 4,
    );
    for (const s of [xw, ww, bw, dw]) wasm.free(s);
  }
}

Deno.test("wasm Winograd 3x3 convolution matches the reference (1 thread)", async () => {
  await check(new WasmBackend({ threads: 1, winograd: true }));
});

Deno.test("wasm Winograd 3x3 convolution matches the reference (2 threads, split)", async () => {
  const be = await createWasmBackend({ threads: 2, parallelThreshold: 0, winograd: true });
  try {
    await check(be as WasmBackend);
  } finally {
    be.dispose();
  }
});

Deno.test("wasm Winograd gives the same bits on one thread and on two", async () => {
  const one = new WasmBackend({ threads: 1, winograd: true });
  const two = await createWasmBackend({ threads: 2, parallelThreshold: 0, winograd: true });
  try {
    const g = conv2dGeometry(3, 32, 13, 11, 24, 3, 1, 1);
    const x = values(g.n * g.c * g.h * g.w), w = values(g.o * g.c * 9), b = values(g.o);
    const dy = values(g.n * g.o * g.h * g.w);
    const run = async (be: WasmBackend | typeof two) => [
      ...await be.read(be.conv2d(be.upload(x), be.upload(w), be.upload(b), g)),
      ...await be.read(be.conv2dBackwardData(be.upload(dy), be.upload(w), g)),
    ];
    assert.deepEqual(await run(two), await run(one));
  } finally {
    two.dispose();
  }
});

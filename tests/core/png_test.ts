/**
 * PNG encoding (signature, decoding back to the same pixels, bad images) and atomic PNG writes.
 */

import assert from "node:assert/strict";
import { decode } from "npm:fast-png@8.0.0";
import { encodePng, type PixelImage, writePngAtomic } from "../../src/io/png.ts";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function pattern(width: number, height: number, channels: 1 | 2 | 3 | 4): PixelImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 3)) & 255;
  return { width, height, channels, data };
}

Deno.test("encodePng: PNG signature, and decodes back to the same pixels", () => {
  for (const channels of [1, 2, 3, 4] as const) {
    const image = pattern(7, 5, channels);
    const bytes = encodePng(image);
    assert.deepEqual([...bytes.subarray(0, 8)], SIGNATURE);
    const back = decode(bytes);
    assert.equal(back.width, 7);
    assert.equal(back.height, 5);
    assert.equal(back.channels, channels);
    assert.equal(back.depth, 8);
    assert.deepEqual(new Uint8Array(back.data), image.data);
  }
});

Deno.test("encodePng: bad images throw", () => {
  assert.throws(
    () => encodePng({ width: 2, height: 2, channels: 4, data: new Uint8Array(15) }),
    /width \* height \* channels = 16 bytes, got 15/,
  );
  assert.throws(
    () => encodePng({ width: 0, height: 2, channels: 4, data: new Uint8Array(0) }),
    /positive integers/,
  );
  assert.throws(
    () => encodePng({ width: 1, height: 1, channels: 5 as 4, data: new Uint8Array(5) }),
    /channels must be/,
  );
});

Deno.test("writePngAtomic: writes the file and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/image.png`;
    const image = pattern(4, 3, 4);
    await writePngAtomic(path, image);
    await writePngAtomic(path, pattern(2, 2, 1)); // replaces the first
    const back = decode(await Deno.readFile(path));
    assert.equal(back.width, 2);
    assert.equal(back.channels, 1);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["image.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writePngAtomic: a failed rename removes the temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/taken/inner`, { recursive: true });
    // Renaming a file over a non-empty folder fails.
    await assert.rejects(writePngAtomic(`${dir}/taken`, pattern(2, 2, 4)));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["taken"]);
    await assert.rejects(writePngAtomic(`${dir}/`, pattern(2, 2, 4)), /names no file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

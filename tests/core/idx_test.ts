/**
 * The IDX format (MNIST's files): parsing every element type, big-endian dims, views at odd
 * offsets, unsigned dimension sizes, empty and zero-dimension files, and every malformed input;
 * reading raw and gzip files, with errors that name the file.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FileFormatError } from "../../src/errors.ts";
import { IDX_TYPE_CODES, type IdxType, parseIdx, readIdx } from "../../src/data/idx.ts";

const SIZES: Record<IdxType, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  float32: 4,
  float64: 8,
};

/** The bytes of an IDX file, written by hand: magic, big-endian dims, big-endian values. */
function idxBytes(type: IdxType, dims: number[], values: number[]): Uint8Array {
  const size = SIZES[type];
  const bytes = new Uint8Array(4 + 4 * dims.length + size * values.length);
  const view = new DataView(bytes.buffer);
  bytes.set([0, 0, IDX_TYPE_CODES[type], dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const at = 4 + 4 * dims.length;
  values.forEach((v, i) => {
    const o = at + size * i;
    switch (type) {
      case "uint8":
        view.setUint8(o, v);
        break;
      case "int8":
        view.setInt8(o, v);
        break;
      case "int16":
        view.setInt16(o, v, false);
        break;
      case "int32":
        view.setInt32(o, v, false);
        break;
      case "float32":
        view.setFloat32(o, v, false);
        break;
      case "float64":
        view.setFloat64(o, v, false);
        break;
    }
  });
  return bytes;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return await new Response(stream).bytes();
}

/** Asserts that `fn` throws a FileFormatError whose message names `path` and matches `pattern`. */
async function rejects(fn: () => unknown, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(async () => await fn(), (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected a FileFormatError, got ${e}`);
    assert.ok(e.message.startsWith(`${path}: `), `message should name ${path}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const CASES: { type: IdxType; values: number[]; array: new (n: number) => ArrayLike<number> }[] = [
  { type: "uint8", values: [0, 1, 127, 128, 254, 255], array: Uint8Array },
  { type: "int8", values: [-128, -1, 0, 1, 100, 127], array: Int8Array },
  { type: "int16", values: [-32768, -258, 0, 1, 258, 32767], array: Int16Array },
  { type: "int32", values: [-2147483648, -65536, -1, 0, 16909060, 2147483647], array: Int32Array },
  { type: "float32", values: [-1.5, -0, 0.25, 3.140625, 2 ** 100, -Infinity], array: Float32Array },
  {
    type: "float64",
    values: [-Math.PI, 1e-300, 0, 1 / 3, Number.MAX_VALUE, Infinity],
    array: Float64Array,
  },
];

for (const { type, values, array } of CASES) {
  Deno.test(`parseIdx: ${type} values round-trip with their dims`, () => {
    const parsed = parseIdx(idxBytes(type, [2, 3], values), `${type}.idx`);
    assert.equal(parsed.type, type);
    assert.deepEqual(parsed.dims, [2, 3]);
    assert.ok(parsed.data instanceof array, `${type} data is a ${array.name}`);
    assert.deepEqual(Array.from(parsed.data), values);
  });
}

Deno.test("parseIdx: type codes are those of the IDX format", () => {
  assert.deepEqual(IDX_TYPE_CODES, {
    uint8: 0x08,
    int8: 0x09,
    int16: 0x0b,
    int32: 0x0c,
    float32: 0x0d,
    float64: 0x0e,
  });
});

Deno.test("parseIdx: big-endian dims and data, and a sub-view input at an odd offset", () => {
  const bytes = new Uint8Array([
    ...[0, 0, 0x0b, 3],
    ...[0, 0, 0, 1],
    ...[0, 0, 0, 2],
    ...[0, 0, 0, 1],
    ...[0x01, 0x02, 0xff, 0xfe],
  ]);
  const padded = new Uint8Array(bytes.length + 3);
  padded.set(bytes, 3);
  const parsed = parseIdx(padded.subarray(3), "odd.idx");
  assert.equal(parsed.type, "int16");
  assert.deepEqual(parsed.dims, [1, 2, 1]);
  assert.deepEqual(Array.from(parsed.data), [0x0102, -2]);
});

Deno.test("parseIdx: large dimension sizes are read as unsigned 32-bit", () => {
  const bytes = new Uint8Array([0, 0, 0x08, 1, 0x80, 0, 0, 0]);
  // 2^31 elements declared, none present: the message gives the real count, not a negative one.
  assert.throws(() => parseIdx(bytes, "big.idx"), /2147483648 uint8 elements/);
});

Deno.test("parseIdx: zero dimensions hold one element; an empty dimension holds none", () => {
  const scalar = parseIdx(new Uint8Array([0, 0, 0x08, 0, 42]), "scalar.idx");
  assert.deepEqual(scalar.dims, []);
  assert.deepEqual(Array.from(scalar.data), [42]);
  const empty = parseIdx(idxBytes("float32", [0, 28, 28], []), "empty.idx");
  assert.deepEqual(empty.dims, [0, 28, 28]);
  assert.equal(empty.data.length, 0);
});

Deno.test("parseIdx: nonzero first magic bytes are rejected", async () => {
  const bytes = idxBytes("uint8", [2], [1, 2]);
  bytes[0] = 0x01;
  await rejects(() => parseIdx(bytes, "a.idx"), "a.idx", /not an IDX file.*0x01 0x00/);
  const second = idxBytes("uint8", [2], [1, 2]);
  second[1] = 0x08;
  await rejects(() => parseIdx(second, "b.idx"), "b.idx", /two zero bytes.*0x00 0x08/);
  const gz = await gzip(idxBytes("uint8", [2], [1, 2]));
  await rejects(() => parseIdx(gz, "c.idx"), "c.idx", /gzip/);
});

Deno.test("parseIdx: an unknown type code is rejected, naming it", async () => {
  const bytes = idxBytes("uint8", [2], [1, 2]);
  for (const code of [0x00, 0x07, 0x0a, 0x0f, 0xff]) {
    bytes[2] = code;
    const hex = `0x${code.toString(16).padStart(2, "0").toUpperCase()}`;
    await rejects(
      () => parseIdx(bytes, "t.idx"),
      "t.idx",
      new RegExp(`unknown IDX type code ${hex}`),
    );
  }
});

Deno.test("parseIdx: truncated data is rejected with both counts", async () => {
  const bytes = idxBytes("int32", [2, 3], [1, 2, 3, 4, 5, 6]);
  await rejects(
    () => parseIdx(bytes.subarray(0, bytes.length - 1), "trunc.idx"),
    "trunc.idx",
    /truncated: dimensions \[2, 3\] need 6 int32 elements \(24 bytes.*only 23 bytes of data \(5 whole elements\)/,
  );
  await rejects(
    () => parseIdx(bytes.subarray(0, 12), "nodata.idx"),
    "nodata.idx",
    /truncated.*only 0 bytes of data/,
  );
});

Deno.test("parseIdx: bytes after the data are rejected", async () => {
  const bytes = idxBytes("uint8", [3], [1, 2, 3]);
  const longer = new Uint8Array(bytes.length + 2);
  longer.set(bytes);
  await rejects(() => parseIdx(longer, "long.idx"), "long.idx", /2 extra bytes after the data/);
});

Deno.test("parseIdx: fewer bytes than the header are rejected", async () => {
  await rejects(() => parseIdx(new Uint8Array(0), "e.idx"), "e.idx", /0 bytes long, too short/);
  await rejects(() => parseIdx(new Uint8Array([0, 0, 8]), "s.idx"), "s.idx", /3 bytes long/);
  const header = idxBytes("uint8", [60000, 28, 28], []).subarray(0, 10);
  await rejects(
    () => parseIdx(header, "h.idx"),
    "h.idx",
    /truncated: its header declares 3 dimensions and so takes 16 bytes.*only 10 bytes long/,
  );
});

Deno.test("readIdx: reads raw and gzip files, by content rather than by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = idxBytes("float32", [2, 2], [0.5, -2, 4, 8]);
    const gz = await gzip(bytes);
    assert.deepEqual(Array.from(gz.subarray(0, 2)), [0x1f, 0x8b]);
    const paths = {
      raw: join(dir, "x-idx2-float"),
      gz: join(dir, "x-idx2-float.gz"),
      gzNoSuffix: join(dir, "gz-without-suffix"),
      rawWithSuffix: join(dir, "raw-with-suffix.gz"),
    };
    await Deno.writeFile(paths.raw, bytes);
    await Deno.writeFile(paths.gz, gz);
    await Deno.writeFile(paths.gzNoSuffix, gz);
    await Deno.writeFile(paths.rawWithSuffix, bytes);
    for (const path of Object.values(paths)) {
      const parsed = await readIdx(path);
      assert.equal(parsed.type, "float32", path);
      assert.deepEqual(parsed.dims, [2, 2], path);
      assert.deepEqual(Array.from(parsed.data), [0.5, -2, 4, 8], path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIdx: errors inside a gzip file name the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = idxBytes("uint8", [4], [1, 2, 3, 4]);
    const shortPath = join(dir, "short.gz");
    await Deno.writeFile(shortPath, await gzip(bytes.subarray(0, bytes.length - 1)));
    await rejects(() => readIdx(shortPath), shortPath, /truncated.*only 3 bytes of data/);
    const gz = await gzip(bytes);
    const cutPath = join(dir, "cut.gz");
    await Deno.writeFile(cutPath, gz.subarray(0, gz.length - 4));
    await rejects(() => readIdx(cutPath), cutPath, /corrupt or truncated gzip data/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIdx: a missing file and a folder are clear FileFormatErrors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = join(dir, "nope-idx1-ubyte");
    await rejects(() => readIdx(missing), missing, /no such file$/);
    await rejects(() => readIdx(dir), dir, /is a folder, not an IDX file$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

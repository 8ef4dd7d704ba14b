/**
 * The safetensors format: round trips, metadata, byte layout and alignment per the spec, hand-built
 * files, and every malformed file failing with a FileFormatError.
 */

import assert from "node:assert/strict";
import { FileFormatError } from "../../src/errors.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type NamedTensor,
} from "../../src/io/safetensors.ts";
import { assertSameValues } from "../helpers/compare.ts";

const enc = new TextEncoder();

/** A few tensors with awkward values (negative zero, infinities, NaN, subnormals, extremes). */
function sampleTensors(): Map<string, NamedTensor> {
  const weird = Float32Array.from([
    -0,
    0,
    1,
    -1.5,
    Infinity,
    -Infinity,
    NaN,
    1e-45,
    3.4028234663852886e38,
    Math.PI,
    -1e-20,
    12345.678,
  ]);
  const ramp = new Float32Array(3 * 4 * 2);
  for (let i = 0; i < ramp.length; i++) ramp[i] = Math.fround(Math.sin(i) * (i + 1));
  // Insertion order deliberately not alphabetical.
  return new Map<string, NamedTensor>([
    ["zeta.weight", { shape: [3, 4], data: weird }],
    ["alpha", { shape: [3, 4, 2], data: ramp }],
    ["mid.bias", { shape: [1], data: Float32Array.of(-7.25) }],
    ["scalar", { shape: [], data: Float32Array.of(0.125) }],
    ["empty", { shape: [0, 5], data: new Float32Array(0) }],
  ]);
}

/** Builds a file byte by byte: 8-byte little-endian length, header text, raw data bytes. */
function handBuilt(headerText: string, data: number[] | Uint8Array): Uint8Array {
  const head = enc.encode(headerText);
  const out = new Uint8Array(8 + head.length + data.length);
  let len = head.length;
  for (let i = 0; i < 8; i++) {
    out[i] = len % 256;
    len = Math.floor(len / 256);
  }
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

/** Asserts that `fn` throws a FileFormatError whose message names `path` and matches `problem`. */
function assertFileError(fn: () => unknown, path: string, problem: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FileFormatError, `expected a FileFormatError, got ${e}`);
    assert.ok(e.message.includes(path), `message should name ${path}: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

Deno.test("safetensors: round trip keeps names, order, shapes, values and metadata", () => {
  const tensors = sampleTensors();
  const metadata = { format: "pt", note: 'quotes " and unicode é ✓', empty: "" };
  const back = decodeSafetensors(encodeSafetensors(tensors, metadata));
  assert.deepEqual([...back.tensors.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) {
    const b = back.tensors.get(name)!;
    assert.deepEqual(b.shape, t.shape, name);
    assert.ok(b.data instanceof Float32Array, name);
    assertSameValues(b.data, t.data, name);
  }
  assert.deepEqual(back.metadata, metadata);
});

Deno.test("safetensors: default metadata is empty, and no tensors is a valid file", () => {
  const bytes = encodeSafetensors(new Map());
  const back = decodeSafetensors(bytes);
  assert.equal(back.tensors.size, 0);
  assert.deepEqual(back.metadata, {});
  assert.equal(bytes.length % 8, 0);
});

Deno.test("safetensors: decodes from a view into a larger buffer (non-zero byteOffset)", () => {
  const tensors = sampleTensors();
  const bytes = encodeSafetensors(tensors, { k: "v" });
  const big = new Uint8Array(bytes.length + 13);
  big.set(bytes, 5);
  const back = decodeSafetensors(big.subarray(5, 5 + bytes.length));
  for (const [name, t] of tensors) assertSameValues(back.tensors.get(name)!.data, t.data, name);
  assert.deepEqual(back.metadata, { k: "v" });
});

Deno.test("safetensors: encoded bytes follow the format spec", () => {
  const tensors = sampleTensors();
  const metadata = { format: "pt", a: "b" };
  const bytes = encodeSafetensors(tensors, metadata);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  // 8-byte little-endian unsigned header length, read byte by byte.
  let headerLen = 0;
  for (let i = 7; i >= 0; i--) headerLen = headerLen * 256 + bytes[i];
  assert.ok(headerLen > 0 && 8 + headerLen <= bytes.length);
  assert.equal((8 + headerLen) % 8, 0, "the data must start at a multiple of 8 bytes");

  // The header is UTF-8 JSON starting with "{", padded only with spaces.
  const headerBytes = bytes.subarray(8, 8 + headerLen);
  assert.equal(headerBytes[0], "{".charCodeAt(0));
  const text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  assert.match(text, /^\{.*\} *$/s);
  const header = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(header.__metadata__, metadata);

  const dataStart = 8 + headerLen, dataLen = bytes.length - dataStart;
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__") as [
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] },
  ][];
  assert.deepEqual(entries.map(([k]) => k).sort(), [...tensors.keys()].sort());

  // Offsets: contiguous from 0, no holes or overlaps, covering the data exactly; in Map order.
  const byOffset = [...entries].sort((a, b) =>
    a[1].data_offsets[0] - b[1].data_offsets[0] || a[1].data_offsets[1] - b[1].data_offsets[1]
  );
  let expectedBegin = 0;
  for (const [name, info] of byOffset) {
    assert.equal(info.dtype, "F32", name);
    const [b, e] = info.data_offsets;
    assert.equal(b, expectedBegin, `${name} begins where the previous tensor ends`);
    const n = info.shape.reduce((x, y) => x * y, 1);
    assert.equal(e - b, 4 * n, `${name}: 4 bytes per element`);
    expectedBegin = e;
  }
  assert.equal(expectedBegin, dataLen, "the tensors cover the data exactly");
  assert.deepEqual(
    byOffset.filter(([, i]) => i.data_offsets[1] > i.data_offsets[0]).map(([k]) => k),
    [...tensors].filter(([, t]) => t.data.length > 0).map(([k]) => k),
    "data laid out in the order given",
  );

  // Values: little-endian float32 at the stated offsets.
  for (const [name, info] of entries) {
    const t = tensors.get(name)!;
    assert.deepEqual(info.shape, t.shape, name);
    const got = new Float32Array(t.data.length);
    for (let i = 0; i < got.length; i++) {
      got[i] = view.getFloat32(dataStart + info.data_offsets[0] + 4 * i, true);
    }
    assertSameValues(got, t.data, name);
  }
});

Deno.test("safetensors: header padding keeps the data 8-byte aligned for every header length", () => {
  for (let len = 0; len < 12; len++) {
    const name = "t".repeat(len + 1);
    const bytes = encodeSafetensors(new Map([[name, { shape: [1], data: Float32Array.of(2) }]]));
    let headerLen = 0;
    for (let i = 7; i >= 0; i--) headerLen = headerLen * 256 + bytes[i];
    assert.equal((8 + headerLen) % 8, 0, `name of ${len + 1} characters`);
    assert.equal(bytes.length, 8 + headerLen + 4);
    assert.deepEqual([...decodeSafetensors(bytes).tensors.get(name)!.data], [2]);
  }
});

Deno.test("safetensors: the encoder rejects a shape that does not match the data", () => {
  assert.throws(
    () => encodeSafetensors(new Map([["w", { shape: [2, 3], data: new Float32Array(5) }]])),
    /w.*\[2,3\].*6.*5/,
  );
});

Deno.test("safetensors: decodes a hand-built file", () => {
  // Values from the IEEE 754 single-precision bit patterns, written little-endian:
  // 1.0 = 0x3F800000, -2.0 = 0xC0000000, 0.5 = 0x3F000000, 0.0 = 0x00000000, -0.0 = 0x80000000,
  // 3.0 = 0x40400000.
  const data = [
    ...[0x00, 0x00, 0x00, 0x00], // b[0] = 0.0 (tensor "b" first in the data)
    ...[0x00, 0x00, 0x00, 0x80], // b[1] = -0.0
    ...[0x00, 0x00, 0x80, 0x3f], // a[0,0] = 1.0
    ...[0x00, 0x00, 0x00, 0xc0], // a[0,1] = -2.0
    ...[0x00, 0x00, 0x00, 0x3f], // a[1,0] = 0.5
    ...[0x00, 0x00, 0x40, 0x40], // a[1,1] = 3.0
  ];
  // Header not padded (the format does not require it) and keys in a different order than the data.
  const header = '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},' +
    '"__metadata__":{"who":"hand"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const { tensors, metadata } = decodeSafetensors(handBuilt(header, data), "hand.safetensors");
  assert.deepEqual(metadata, { who: "hand" });
  assert.deepEqual([...tensors.keys()].sort(), ["a", "b"]);
  assert.deepEqual(tensors.get("a")!.shape, [2, 2]);
  assert.deepEqual([...tensors.get("a")!.data], [1, -2, 0.5, 3]);
  assert.deepEqual(tensors.get("b")!.shape, [2]);
  assert.ok(Object.is(tensors.get("b")!.data[0], 0));
  assert.ok(Object.is(tensors.get("b")!.data[1], -0));
});

Deno.test("safetensors: a hand-built file without __metadata__ decodes with empty metadata", () => {
  const header = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}   ';
  const { tensors, metadata } = decodeSafetensors(handBuilt(header, [0, 0, 0x80, 0xbf]));
  assert.deepEqual(metadata, {});
  assert.deepEqual([...tensors.get("x")!.data], [-1]);
});

Deno.test("safetensors: fewer than 8 bytes is a FileFormatError naming the file", () => {
  for (const n of [0, 1, 7]) {
    assertFileError(
      () => decodeSafetensors(new Uint8Array(n), "short.safetensors"),
      "short.safetensors",
      /truncated|8-byte/i,
    );
  }
});

Deno.test("safetensors: a header length beyond the file is a FileFormatError (truncated)", () => {
  const good = encodeSafetensors(sampleTensors(), { k: "v" });
  // Cut inside the header.
  assertFileError(
    () => decodeSafetensors(good.subarray(0, 20), "cut.safetensors"),
    "cut.safetensors",
    /truncated/i,
  );
  // A length one byte more than what follows.
  const header = '{"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}';
  const bytes = handBuilt(header, []);
  bytes[0] += 1;
  assertFileError(() => decodeSafetensors(bytes, "long.st"), "long.st", /truncated/i);
  // A length that does not fit in 53 bits.
  const huge = new Uint8Array(64).fill(0xff);
  assertFileError(() => decodeSafetensors(huge, "huge.st"), "huge.st", /truncated|another format/i);
});

Deno.test("safetensors: a header that is not JSON is a FileFormatError", () => {
  assertFileError(
    () => decodeSafetensors(handBuilt("{not json at all}", []), "nojson.st"),
    "nojson.st",
    /JSON/,
  );
  // Invalid UTF-8 in the header.
  assertFileError(
    () => decodeSafetensors(handBuilt("", [0x7b, 0xff, 0xfe, 0x7d]), "utf.st"),
    "utf.st",
    /JSON/,
  );
  // JSON, but not an object.
  assertFileError(
    () => decodeSafetensors(handBuilt("[1,2,3]", []), "array.st"),
    "array.st",
    /object/,
  );
  assertFileError(
    () => decodeSafetensors(handBuilt("null", []), "null.st"),
    "null.st",
    /object/,
  );
});

Deno.test("safetensors: a dtype other than F32 is a FileFormatError naming tensor and dtype", () => {
  for (const dtype of ["F16", "BF16", "F64", "I64"]) {
    const header = `{"w":{"dtype":"${dtype}","shape":[2],"data_offsets":[0,4]}}`;
    assertFileError(
      () => decodeSafetensors(handBuilt(header, [0, 0, 0, 0]), "half.st"),
      "half.st",
      new RegExp(`\\bw\\b.*${dtype}`),
    );
  }
  // No dtype at all.
  const header = '{"w":{"shape":[1],"data_offsets":[0,4]}}';
  assertFileError(
    () => decodeSafetensors(handBuilt(header, [0, 0, 0, 0]), "nod.st"),
    "nod.st",
    /dtype/,
  );
});

Deno.test("safetensors: data_offsets beyond the data is a FileFormatError (truncated data)", () => {
  const header = '{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}';
  assertFileError(
    () => decodeSafetensors(handBuilt(header, new Uint8Array(8)), "short-data.st"),
    "short-data.st",
    /truncated.*\bw\b|\bw\b.*truncated/,
  );
  // An encoded file with its last bytes cut off.
  const good = encodeSafetensors(sampleTensors());
  assertFileError(
    () => decodeSafetensors(good.subarray(0, good.length - 1), "cut-data.st"),
    "cut-data.st",
    /truncated/,
  );
});

Deno.test("safetensors: a shape that does not match the offsets is a FileFormatError", () => {
  // Shape [2, 2] needs 16 bytes; the offsets give 12.
  const header = '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}';
  assertFileError(
    () => decodeSafetensors(handBuilt(header, new Uint8Array(16)), "mismatch.st"),
    "mismatch.st",
    /\bw\b.*\[2,2\].*16.*12/,
  );
  // Offsets reversed (end before begin).
  const reversed = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}';
  assertFileError(
    () => decodeSafetensors(handBuilt(reversed, new Uint8Array(8)), "rev.st"),
    "rev.st",
    /\bw\b/,
  );
});

Deno.test("safetensors: malformed shape, offsets or metadata are FileFormatErrors", () => {
  const cases: [string, RegExp][] = [
    ['{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', /w.*shape/],
    ['{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', /w.*shape/],
    ['{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', /w.*shape/],
    ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', /w.*data_offsets/],
    ['{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}', /w.*data_offsets/],
    ['{"w":{"dtype":"F32","shape":[1]}}', /w.*data_offsets/],
    ['{"__metadata__":{"n":3}}', /metadata n/],
  ];
  for (const [header, problem] of cases) {
    assertFileError(
      () => decodeSafetensors(handBuilt(header, new Uint8Array(8)), "bad.st"),
      "bad.st",
      problem,
    );
  }
});

Deno.test("safetensors: errors name a default when no path is given", () => {
  assert.throws(
    () => decodeSafetensors(new Uint8Array(3)),
    (e: unknown) => e instanceof FileFormatError && e.message.length > 0,
  );
});

/**
 * A reader for the IDX format, the file format of MNIST and of data sets laid out like it
 * (Fashion-MNIST, KMNIST, EMNIST).
 *
 * An IDX file is:
 *
 * - a 4-byte magic number `0x00 0x00 <type code> <ndims>`;
 * - `ndims` dimension sizes, each a big-endian unsigned 32-bit integer;
 * - the data: the product of the dimension sizes, in row-major order, each element big-endian.
 *
 * The type codes are `0x08` unsigned byte (what MNIST uses), `0x09` signed byte, `0x0B` 16-bit
 * integer, `0x0C` 32-bit integer, `0x0D` 32-bit float and `0x0E` 64-bit float.
 *
 * The data must fill the rest of the file exactly: a file that is short of the product of its
 * dimensions (a truncated download) and one with bytes left over after the data (two files glued
 * together, a wrong header) are both rejected with a {@link FileFormatError}.
 *
 * {@link readIdx} also reads gzip-compressed files (the `.gz` files the data sets are published
 * as), recognized by the gzip magic bytes `1f 8b` whatever the file's name.
 *
 * @module
 */

import { dirname } from "node:path";
import { FileFormatError } from "../errors.ts";

/** The element types an IDX file can hold. */
export type IdxType = "uint8" | "int8" | "int16" | "int32" | "float32" | "float64";

/** The typed array that holds each {@link IdxType}. */
export interface IdxArrayTypes {
  /** Type code 0x08. */
  uint8: Uint8Array;
  /** Type code 0x09. */
  int8: Int8Array;
  /** Type code 0x0B. */
  int16: Int16Array;
  /** Type code 0x0C. */
  int32: Int32Array;
  /** Type code 0x0D. */
  float32: Float32Array;
  /** Type code 0x0E. */
  float64: Float64Array;
}

/** The contents of an IDX file of element type `T`. */
export interface IdxTensor<T extends IdxType = IdxType> {
  /** The dimension sizes, outermost first (MNIST images: `[count, rows, cols]`). */
  dims: number[];
  /** The element type, from the type code in the magic number. */
  type: T;
  /** The elements, row-major, in native byte order; `data.length` is the product of `dims`. */
  data: IdxArrayTypes[T];
}

/** Any IDX file's contents: a union over the element types, narrowed by checking `type`. */
export type IdxFile = { [T in IdxType]: IdxTensor<T> }[IdxType];

interface TypeInfo {
  type: IdxType;
  size: number;
}

const TYPES: ReadonlyMap<number, TypeInfo> = new Map([
  [0x08, { type: "uint8", size: 1 }],
  [0x09, { type: "int8", size: 1 }],
  [0x0b, { type: "int16", size: 2 }],
  [0x0c, { type: "int32", size: 4 }],
  [0x0d, { type: "float32", size: 4 }],
  [0x0e, { type: "float64", size: 8 }],
]);

/** The IDX type code of each element type (`uint8` is 0x08, and so on). */
export const IDX_TYPE_CODES: Readonly<Record<IdxType, number>> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0").toUpperCase()}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Parses the bytes of an (uncompressed) IDX file. `path` names the file in error messages only.
 *
 * For the byte types (`uint8`, `int8`) the returned `data` is a view that shares memory with
 * `bytes`; the wider types are copied into a new array in native byte order.
 *
 * @throws {FileFormatError} if the magic number's first two bytes are not zero, the type code is
 * not one of the six above, the header is cut short, or the data is not exactly the product of
 * the dimension sizes (the message gives both counts).
 */
export function parseIdx(bytes: Uint8Array, path: string): IdxFile {
  const bad = (problem: string) => new FileFormatError(path, problem);
  if (bytes.length < 4) {
    throw bad(
      `is ${plural(bytes.length, "byte")} long, too short for an IDX file (its header alone ` +
        `takes at least 4 bytes)`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const gz = bytes[0] === 0x1f && bytes[1] === 0x8b ? " (it looks gzip-compressed)" : "";
    throw bad(
      `is not an IDX file: it must start with two zero bytes, found ${hex(bytes[0])} ` +
        `${hex(bytes[1])}${gz}`,
    );
  }
  const info = TYPES.get(bytes[2]);
  if (info === undefined) {
    throw bad(
      `has unknown IDX type code ${hex(bytes[2])} (known: 0x08 unsigned byte, 0x09 signed byte, ` +
        `0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)`,
    );
  }
  const ndims = bytes[3];
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw bad(
      `is truncated: its header declares ${plural(ndims, "dimension")} and so takes ` +
        `${headerBytes} bytes, but the file is only ${plural(bytes.length, "byte")} long`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const available = bytes.length - headerBytes;
  const needed = count * info.size;
  const shape = `[${dims.join(", ")}]`;
  if (needed > available) {
    const have = Math.floor(available / info.size);
    throw bad(
      `is truncated: dimensions ${shape} need ${count} ${info.type} elements ` +
        `(${needed} bytes after the ${headerBytes}-byte header), but the file holds only ` +
        `${plural(available, "byte")} of data (${plural(have, "whole element")})`,
    );
  }
  if (needed < available) {
    throw bad(
      `has ${plural(available - needed, "extra byte")} after the data: dimensions ${shape} ` +
        `need exactly ${needed} bytes of ${info.type} data after the ${headerBytes}-byte header`,
    );
  }
  const at = headerBytes;
  switch (info.type) {
    case "uint8":
      return { dims, type: "uint8", data: bytes.subarray(at, at + count) };
    case "int8":
      return {
        dims,
        type: "int8",
        data: new Int8Array(bytes.buffer, bytes.byteOffset + at, count),
      };
    case "int16": {
      const data = new Int16Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt16(at + 2 * i, false);
      return { dims, type: "int16", data };
    }
    case "int32": {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getInt32(at + 4 * i, false);
      return { dims, type: "int32", data };
    }
    case "float32": {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(at + 4 * i, false);
      return { dims, type: "float32", data };
    }
    case "float64": {
      const data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat64(at + 8 * i, false);
      return { dims, type: "float64", data };
    }
  }
}

/** Whether `bytes` starts with the gzip magic bytes `1f 8b`. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip `bytes` with the web-standard `DecompressionStream`. `path` names the file in
 * error messages only.
 *
 * @throws {FileFormatError} if the gzip data is corrupt or truncated.
 */
export async function gunzip(bytes: Uint8Array, path: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return await new Response(stream).bytes();
  } catch (e) {
    throw new FileFormatError(
      path,
      `is corrupt or truncated gzip data (${(e as Error).message}); download it again`,
    );
  }
}

/**
 * Reads the file at `path` as raw bytes, turning the errors a user can cause into
 * {@link FileFormatError}s. Needs `--allow-read` on `path`.
 *
 * @throws {FileFormatError} if the file does not exist, is a folder, or cannot be read.
 */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw fileError(e, path);
  }
}

/** The {@link FileFormatError} for an error `e` from reading or inspecting `path`. */
export function fileError(e: unknown, path: string): FileFormatError {
  if (e instanceof FileFormatError) return e;
  if (e instanceof Deno.errors.NotFound) return new FileFormatError(path, "no such file");
  if (e instanceof Deno.errors.IsADirectory) {
    return new FileFormatError(path, "is a folder, not an IDX file");
  }
  if (e instanceof Deno.errors.NotCapable) {
    return new FileFormatError(
      path,
      `cannot be read without permission: run Deno with --allow-read=${dirname(path)} ` +
        `(or plain --allow-read)`,
    );
  }
  return new FileFormatError(path, `cannot be read: ${(e as Error).message}`);
}

/**
 * Reads and parses the IDX file at `path`, uncompressed or gzip-compressed (recognized by its
 * first two bytes `1f 8b`, whatever the file is named). Needs `--allow-read` on `path`.
 *
 * @throws {FileFormatError} if the file does not exist, is a folder, cannot be read, is corrupt
 * gzip data, or is not a well-formed IDX file (see {@link parseIdx}).
 */
export async function readIdx(path: string): Promise<IdxFile> {
  let bytes = await readFileBytes(path);
  if (isGzip(bytes)) bytes = await gunzip(bytes, path);
  return parseIdx(bytes, path);
}

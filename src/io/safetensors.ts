/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header naming
 * each tensor's dtype, shape and byte range, then the raw little-endian data. Only float32 tensors
 * are written and read here. Metadata values are strings, as the format requires.
 *
 * @module
 */

import { FileFormatError } from "../errors.ts";

/** One named float32 tensor. */
export interface NamedTensor {
  /** Its shape. */
  shape: number[];
  /** Its values, row-major. */
  data: Float32Array;
}

/** A decoded file: tensors by name, and the `__metadata__` strings. */
export interface SafetensorsContent {
  /** Tensors in the order of their data in the file. */
  tensors: Map<string, NamedTensor>;
  /** The metadata. */
  metadata: Record<string, string>;
}

/** Encodes tensors (in the given order) and metadata as safetensors bytes. */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === "__metadata__") throw new RangeError(`a tensor cannot be called __metadata__`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new RangeError(`${name}: shape [${t.shape}] needs ${n} values, has ${t.data.length}`);
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  let json = JSON.stringify(header);
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += " ";
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const t of tensors.values()) {
    for (let i = 0; i < t.data.length; i++, pos += 4) view.setFloat32(pos, t.data[i], true);
  }
  return out;
}

/** Decodes safetensors bytes, validating every size and offset; `path` names the file in errors. */
export function decodeSafetensors(
  bytes: Uint8Array,
  path = "safetensors data",
): SafetensorsContent {
  const bad = (problem: string) => new FileFormatError(path, problem);
  if (bytes.length < 8) {
    throw bad(`truncated: ${bytes.length} bytes, not even the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.length - 8) {
    throw bad(
      `not a complete safetensors file: the header claims ${headerLen} bytes but the file has ${bytes.length}` +
        " (truncated, or another format)",
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)),
    );
  } catch {
    throw bad("not a safetensors file: its header is not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw bad("not a safetensors file: its header is not a JSON object");
  }
  const dataStart = 8 + headerLen, dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, NamedTensor>();
  const found: { name: string; begin: number; end: number; tensor: NamedTensor }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (typeof info !== "object" || info === null || Array.isArray(info)) {
        throw bad("__metadata__ is not a JSON object");
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") throw bad(`metadata ${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (t?.dtype !== "F32") {
      throw bad(`tensor ${name} has dtype ${String(t?.dtype)}; only F32 is supported`);
    }
    const shape = t.shape, offs = t.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw bad(`tensor ${name} has an invalid shape`);
    }
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      throw bad(`tensor ${name} has invalid data_offsets`);
    }
    const [b, e] = offs as [number, number];
    const n = (shape as number[]).reduce((a, c) => a * c, 1);
    if (e > dataLen) {
      throw bad(`truncated: tensor ${name} ends at byte ${e} of data, the file holds ${dataLen}`);
    }
    if (e - b !== 4 * n) {
      throw bad(`tensor ${name}: shape [${shape}] needs ${4 * n} bytes, offsets give ${e - b}`);
    }
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(dataStart + b + 4 * i, true);
    found.push({ name, begin: b, end: e, tensor: { shape: shape as number[], data } });
  }
  // The format requires the tensors to cover the data exactly, without holes or overlaps.
  found.sort((x, y) => x.begin - y.begin);
  let at = 0;
  for (const f of found) {
    if (f.begin !== at) {
      throw bad(
        `tensor ${f.name} starts at byte ${f.begin}, expected ${at} (a hole or an overlap)`,
      );
    }
    at = f.end;
  }
  if (at !== dataLen) {
    throw bad(`the tensors cover ${at} bytes of data but the file holds ${dataLen}`);
  }
  for (const f of found) tensors.set(f.name, f.tensor);
  return { tensors, metadata };
}

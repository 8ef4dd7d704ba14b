/**
 * Kernel parameters for one submit, packed into a few large uniform buffers: each dispatch takes a
 * 256-byte slot (bound at a dynamic offset, so bind groups never depend on it), the host fills
 * slots in an ArrayBuffer, and {@link ParamArena.upload} writes the used part of each chunk just
 * before the submit. Queue order makes reusing the chunks for the next submit safe.
 *
 * @module
 */

import { PARAM_SLOT_BYTES } from "./wgsl.ts";

/** Slots per chunk buffer. */
const SLOTS = 1024;

interface Chunk {
  buffer: GPUBuffer;
  data: ArrayBuffer;
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
}

/** A slot handed to one dispatch: word views starting at `word`. */
export interface ParamSlot {
  /** Chunk index (part of the bind-group key). */
  chunk: number;
  /** The chunk's uniform buffer. */
  buffer: GPUBuffer;
  /** Dynamic offset in bytes. */
  offset: number;
  /** First word of the slot in the views. */
  word: number;
  /** The chunk's words. */
  u32: Uint32Array;
  /** The chunk's words, signed. */
  i32: Int32Array;
  /** The chunk's words, as floats. */
  f32: Float32Array;
}

/** The per-submit parameter arena. */
export class ParamArena {
  readonly #device: GPUDevice;
  readonly #chunks: Chunk[] = [];
  #used = 0;

  /** An arena on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** The next free slot, zeroed. */
  slot(): ParamSlot {
    const c = Math.floor(this.#used / SLOTS), s = this.#used % SLOTS;
    this.#used++;
    if (c === this.#chunks.length) {
      const data = new ArrayBuffer(SLOTS * PARAM_SLOT_BYTES);
      this.#chunks.push({
        buffer: this.#device.createBuffer({
          size: SLOTS * PARAM_SLOT_BYTES,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
          label: `kernel parameters ${c}`,
        }),
        data,
        u32: new Uint32Array(data),
        i32: new Int32Array(data),
        f32: new Float32Array(data),
      });
    }
    const ch = this.#chunks[c], word = (s * PARAM_SLOT_BYTES) / 4;
    ch.u32.fill(0, word, word + PARAM_SLOT_BYTES / 4);
    return {
      chunk: c,
      buffer: ch.buffer,
      offset: s * PARAM_SLOT_BYTES,
      word,
      u32: ch.u32,
      i32: ch.i32,
      f32: ch.f32,
    };
  }

  /** Number of slots taken since the last reset. */
  get used(): number {
    return this.#used;
  }

  /** Writes the used slots to their buffers (before the submit that reads them). */
  upload(queue: GPUQueue): void {
    let left = this.#used;
    for (const ch of this.#chunks) {
      if (left <= 0) break;
      const n = Math.min(left, SLOTS);
      queue.writeBuffer(ch.buffer, 0, ch.data, 0, n * PARAM_SLOT_BYTES);
      left -= n;
    }
  }

  /** Starts a new submit. */
  reset(): void {
    this.#used = 0;
  }

  /** Destroys the chunk buffers. */
  destroy(): void {
    for (const c of this.#chunks) c.buffer.destroy();
    this.#chunks.length = 0;
  }
}

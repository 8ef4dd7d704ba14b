/**
 * Counter-based random numbers: Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011), keyed by (seed, stream) and indexed by a block counter.
 *
 * Every backend draws element `i` of a fill from block `counter + floor(i / 4)`, lane `i % 4`, so the
 * same seed gives the same numbers on every backend, and a draw never depends on how work is split.
 *
 * @module
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two unsigned 32-bit integers. */
export function mulhi32(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const lolo = aLo * bLo, lohi = aLo * bHi, hilo = aHi * bLo, hihi = aHi * bHi;
  const cross = (lolo >>> 16) + (lohi & 0xffff) + (hilo & 0xffff);
  return (hihi + (lohi >>> 16) + (hilo >>> 16) + (cross >>> 16)) >>> 0;
}

/**
 * One Philox-4x32-10 block: encrypts the counter (c0..c3) under the key (k0, k1) and writes the
 * four 32-bit outputs into `out[0..3]`.
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0, n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** A uniform float in [0, 1) from 32 random bits: the top 24 bits times 2^-24 (exact in float32). */
export function bitsToUniform(x: number): number {
  return (x >>> 8) * 5.9604644775390625e-8;
}

/** The key words of a seed: its low and high 32 bits (seeds are integers in [0, 2^53)). */
export function seedKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  }
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/** Where a fill draws from: seed, stream and first block. */
export interface RandomPosition {
  /** The seed: an integer in [0, 2^53). */
  seed: number;
  /** An independent stream under the same seed (0 to 2^32 - 1). */
  stream: number;
  /** The first Philox block the fill uses; a fill of n values uses ceil(n / 4) blocks. */
  counter: number;
}

/** Number of Philox blocks a fill of `n` values consumes. */
export function blocksFor(n: number): number {
  return Math.ceil(n / 4);
}

/**
 * Fills `out` with uniform floats in [0, 1): element i from block `counter + floor(i/4)`, lane `i%4`.
 * This is the reference definition every backend reproduces.
 */
export function fillUniform(out: Float32Array | Float64Array, pos: RandomPosition): void {
  const [k0, k1] = seedKey(pos.seed);
  const bits = new Uint32Array(4);
  for (let i = 0; i < out.length; i += 4) {
    const b = pos.counter + i / 4;
    philox4x32(b >>> 0, Math.floor(b / 4294967296) >>> 0, pos.stream >>> 0, 0, k0, k1, bits);
    for (let l = 0; l < 4 && i + l < out.length; l++) out[i + l] = bitsToUniform(bits[l]);
  }
}

/**
 * Fills `out` with standard normal draws by Box–Muller on lane pairs (0,1) and (2,3) of each block:
 * u1 = (top 24 bits + 1) * 2^-24 in (0, 1], u2 = top 24 bits * 2^-24, r = sqrt(-2 ln u1),
 * z0 = r cos(2 pi u2), z1 = r sin(2 pi u2).
 */
export function fillNormal(out: Float32Array | Float64Array, pos: RandomPosition): void {
  const [k0, k1] = seedKey(pos.seed);
  const bits = new Uint32Array(4);
  for (let i = 0; i < out.length; i += 4) {
    const b = pos.counter + i / 4;
    philox4x32(b >>> 0, Math.floor(b / 4294967296) >>> 0, pos.stream >>> 0, 0, k0, k1, bits);
    for (let p = 0; p < 4; p += 2) {
      const u1 = ((bits[p] >>> 8) + 1) * 5.9604644775390625e-8;
      const u2 = (bits[p + 1] >>> 8) * 5.9604644775390625e-8;
      const r = Math.sqrt(-2 * Math.log(u1));
      if (i + p < out.length) out[i + p] = r * Math.cos(2 * Math.PI * u2);
      if (i + p + 1 < out.length) out[i + p + 1] = r * Math.sin(2 * Math.PI * u2);
    }
  }
}

/**
 * Integers in [lo, hi) from uniforms: lo + min(hi - lo - 1, floor(u * (hi - lo))), with u from
 * {@link fillUniform} rounded to float32 as every backend computes it.
 */
export function uniformToInt(u: number, lo: number, hi: number): number {
  return lo + Math.min(hi - lo - 1, Math.floor(Math.fround(u * (hi - lo))));
}

/**
 * A host-side stream of random numbers over the same Philox generator, for data generation and other
 * work done in JavaScript. Its state is (seed, stream, counter) and can be saved and restored.
 */
export class Random {
  /** The seed. */
  readonly seed: number;
  /** The stream under that seed. */
  readonly stream: number;
  /** The next unused Philox block. */
  counter: number;
  #lanes = new Float64Array(4);
  #next = 4;

  /** A generator for `seed` (an integer in [0, 2^53)) and `stream`, starting at block `counter`. */
  constructor(seed: number, stream = 0, counter = 0) {
    seedKey(seed);
    this.seed = seed;
    this.stream = stream;
    this.counter = counter;
  }

  /** Takes `blocks` blocks from this stream and returns where they start. */
  take(blocks: number): RandomPosition {
    const pos = { seed: this.seed, stream: this.stream, counter: this.counter };
    this.counter += blocks;
    this.#next = 4;
    return pos;
  }

  /** One uniform float in [0, 1). */
  uniform(): number {
    if (this.#next >= 4) {
      fillUniform(this.#lanes, this.take(1));
      this.#next = 0;
    }
    return this.#lanes[this.#next++];
  }

  /** One integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return uniformToInt(this.uniform(), lo, hi);
  }

  /** An array of `n` uniform floats in [0, 1). */
  uniforms(n: number): Float64Array {
    const out = new Float64Array(n);
    fillUniform(out, this.take(blocksFor(n)));
    return out;
  }

  /** An array of `n` standard normal draws. */
  normals(n: number): Float64Array {
    const out = new Float64Array(n);
    fillNormal(out, this.take(blocksFor(n)));
    return out;
  }
}

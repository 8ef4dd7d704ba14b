/**
 * The random streams under a seed, one per kind of draw, shared by training, sampling and the
 * classifier: each draw is fixed by (seed, stream, counter) alone (src/random.ts), so the same seed
 * gives the same weights, batches, timesteps and noise on every backend, and a resumed run draws
 * what an uninterrupted one would.
 *
 * @module
 */

/**
 * Random streams under the seed. Dropout site i of the network's forward pass (see
 * `ForwardContext` in src/models/network.ts) draws from stream `dropout + i`, at the step's own
 * counter.
 */
export const STREAMS = {
  /** Initial weights. */
  init: 0,
  /** Batch indices. */
  batch: 1,
  /** Training timesteps. */
  time: 2,
  /** Training noise. */
  noise: 3,
  /** Which samples of a conditional model's batch lose their label (`condDropout`). */
  labelDropout: 5,
  /** Inpainting: the noise the known region is re-noised with after each step. */
  inpaint: 6,
  /**
   * The variational bound (`nll`, src/diffusion/vlb.ts): the noise of x_t for image i at timestep
   * t, D values from block (i T + t - 1) ceil(D / 4).
   */
  vlb: 7,
  /** Sampling noise (the start x_T and each step's first fresh draw). */
  sample: 4,
  /** A sampling step's further draws: draw j > 0 comes from stream `sampleExtra + j`. */
  sampleExtra: 0x20000,
  /** RePaint resampling: pass u > 0 of a step draws from streams `resample + 256 u + k`. */
  resample: 0x30000,
  /** First dropout site. */
  dropout: 0x10000,
} as const;

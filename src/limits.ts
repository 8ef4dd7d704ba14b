/**
 * The library's size limits, in one place. Each is far above what a diffusion model of this
 * library's scale uses and low enough that a mistyped size (`--hidden 1e9`, `T: 1e9`) ends in an
 * error naming it before anything is allocated, never in an engine's allocation failure minutes in.
 *
 * @module
 */

/**
 * The most diffusion steps a schedule may have: 100 times the usual 1,000, far beyond what any
 * sampler gains from, and small enough that the schedule's tables are built at once.
 */
export const MAX_T = 100_000;

/** The widest layer a network may have (features or channels); the parameter count is bounded too. */
export const MAX_WIDTH = 65_536;

/** The most layers (or blocks per level) a network may stack. */
export const MAX_DEPTH = 1_024;

/**
 * The most parameters a network may have: 2^27 (134 million, 512 MiB of float32). Training holds
 * five copies (weights, gradients, EMA, Adam's two moments): 2.5 GiB, within WebAssembly's 4 GiB.
 */
export const MAX_PARAMETERS = 2 ** 27;

/** The most samples one `sample` call draws. */
export const MAX_SAMPLES = 10_000_000;

/** The most values (samples x values per sample) one `sample` call returns: 1 GiB of float32. */
export const MAX_SAMPLE_VALUES = 2 ** 28;

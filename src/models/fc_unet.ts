/**
 * Seed 003's fully connected UNet (../shared/seeds/003_2c6d3e798f3c8613.txt, "Using Diffusion to
 * generate handwritten digits"): an undercomplete autoencoder of dense layers on the flattened
 * sample, which narrows then widens, with residual connections added between the layers of equal
 * width, so the widths draw a U. The time step enters as one element, t / T, appended to the
 * flattened input. Each dense layer but the last is followed by GELU and a LayerNorm; the seed
 * notes the norm can be left out without a noticeable effect (`layerNorm: false`).
 *
 * The seed's sizes: it starts "somewhat" compressing at 2k (1k "trained very slowly") and halves
 * twice, as its published code does (starting, starting/2, starting/4: blbadger/generative-models,
 * small_diffusion.py, `FCEncoder`): widths [2000, 1000, 500]. For 28x28 MNIST (D = 784) that is
 * 8,158,284 parameters.
 *
 * ```text
 *  x [B, C, H, W] or [B, D] ── flatten ──► [B, D] ──┐
 *  t [B] ─────────────────────── t / T ──► [B, 1] ──┴──► concat ──► [B, D + 1]
 *
 *  down.0  Linear(D + 1 → 2000) ──► h0 ──► GELU ──► LN
 *  down.1  Linear(2000 → 1000)  ──► h1 ──► GELU ──► LN
 *  down.2  Linear(1000 → 500)   ──► h2 ──► GELU ──► LN ──► + h2
 *  up.1    Linear(500 → 1000)   ─────────► GELU ──► LN ──► + h1
 *  up.0    Linear(1000 → 2000)  ─────────► GELU ──► LN ──► + h0
 *  out     Linear(2000 → D)     ──► reshaped as x
 *
 *  (top to bottom, each row taking the row above's result; h_i is kept for the skip at its width)
 * ```
 *
 * In general, with widths w_0 .. w_{L-1}: `down.i` maps to w_i and its output h_i (before the
 * activation) is kept; the deepest level adds its own h_{L-1} (the seed's bottleneck), and `up.i`
 * (w_{i+1} → w_i) adds h_i. The skips are additions, as in the seed, so each level keeps its width.
 * A configuration with `classes` appends a learned class embedding (`label_emb`, with a null class)
 * to the input, as the MLP does.
 *
 * Adapted to this library: t arrives as 1..T (the seed's 0..T-1), so the time input is in
 * [1/T, 1]; GELU is the tanh form (PyTorch's nn.GELU default is the erf form); LayerNorm is a
 * GroupNorm of one group (the same normalisation over the features, eps 1e-5, per-feature scale and
 * shift). Parameter names, in layout order: `down.<i>`, `down_norm.<i>`, `up.<i>`, `up_norm.<i>`,
 * `out`, then `label_emb`, as a PyTorch module registering ModuleLists `down`, `down_norm`, `up`,
 * `up_norm` and the Linear `out` would name them.
 *
 * @example Train on MNIST-shaped images
 * ```ts
 * import { train } from "../../mod.ts";
 *
 * const images = new Float32Array(64 * 28 * 28);
 * const model = await train({
 *   data: { values: images, shape: [64, 1, 28, 28] },
 *   network: { kind: "fc-unet", widths: [256, 128, 64] },
 *   steps: 10,
 * });
 * ```
 *
 * @module
 */

import { OptionError } from "../errors.ts";
import { add, affine, gelu } from "../ops/elementwise.ts";
import { concat, reshape } from "../ops/shape.ts";
import { sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { checkClasses, ClassEmbedding } from "../nn/class_embedding.ts";
import { GroupNorm } from "../nn/groupnorm.ts";
import { Linear } from "../nn/linear.ts";
import type { ParamSource } from "../nn/params.ts";
import {
  checkLabels,
  checkLearnSigma,
  type ForwardContext,
  type Network,
  outputFactor,
} from "./network.ts";

/** The widest dense layer of a fully connected UNet (also the largest class embedding). */
export const FC_UNET_MAX_WIDTH = 16_384;

/** The most levels (entries of `widths`) a fully connected UNet may have. */
export const FC_UNET_MAX_LEVELS = 16;

/** The seed's widths: a first layer of 2000, halved twice. */
export const FC_UNET_DEFAULT_WIDTHS: readonly number[] = Object.freeze([2000, 1000, 500]);

/** Configuration of the fully connected UNet denoiser. */
export interface FcUNetConfig {
  /** The kind. */
  kind: "fc-unet";
  /** The shape of one sample, e.g. [1, 28, 28] for images or [2] for points. */
  shape: number[];
  /** The flattened data dimension D: the product of `shape`. */
  dim: number;
  /** Width of each level, top to bottom (the seed: [2000, 1000, 500]). */
  widths: number[];
  /** Number of diffusion steps T: the time input is t / T. */
  T: number;
  /** A LayerNorm after every GELU (the seed: true). */
  layerNorm: boolean;
  /** Size of the class embedding appended to the input when conditional. */
  embeddingDim: number;
  /**
   * Class-conditional: the number of classes, whose learned embedding (`label_emb`, with a null
   * class) joins the input (absent: unconditional).
   */
  classes?: number;
  /**
   * Learned reverse variances (Nichol & Dhariwal 2021, §3.1): `out` maps to 2·dim, the prediction
   * then the variance output v (absent: dim, the prediction alone).
   */
  learnSigma?: true;
}

/** Options of the fully connected UNet (see {@link FcUNetConfig}), for data of any sample shape. */
export interface FcUNetOptions {
  /** The fully connected UNet (required: without a kind the network is an MLP). */
  kind: "fc-unet";
  /** Width of each level, top to bottom: 1 to 16 integers in [1, 16384] (default [2000, 1000, 500]). */
  widths?: number[];
  /** A LayerNorm after every GELU (default true, as in the seed). */
  layerNorm?: boolean;
  /** Size of the class embedding, used when the data has labels (default 32). */
  embeddingDim?: number;
}

/**
 * The full configuration of a fully connected UNet for data of `dataShape` ([count,
 * ...sampleShape]; the network sees each sample flattened) and `T` diffusion steps, from `options`
 * and the seed's defaults. Throws an {@link OptionError} naming the bad option (`network.widths`,
 * `network.widths[1]`, `network.layerNorm`, `network.embeddingDim`).
 */
export function resolveFcUNetConfig(
  options: FcUNetOptions,
  dataShape: readonly number[],
  T: number,
): FcUNetConfig {
  const widths = options.widths ?? FC_UNET_DEFAULT_WIDTHS;
  if (!Array.isArray(widths) || widths.length < 1 || widths.length > FC_UNET_MAX_LEVELS) {
    throw new OptionError(
      `network.widths must list 1 to ${FC_UNET_MAX_LEVELS} widths, got ${JSON.stringify(widths)}`,
    );
  }
  widths.forEach((w, i) => {
    if (!Number.isInteger(w) || w < 1 || w > FC_UNET_MAX_WIDTH) {
      throw new OptionError(
        `network.widths[${i}] must be an integer in [1, ${FC_UNET_MAX_WIDTH}], got ${w}`,
      );
    }
  });
  const layerNorm = options.layerNorm ?? true;
  if (typeof layerNorm !== "boolean") {
    throw new OptionError(
      `network.layerNorm must be true or false, got ${JSON.stringify(layerNorm)}`,
    );
  }
  const embeddingDim = options.embeddingDim ?? 32;
  if (!Number.isInteger(embeddingDim) || embeddingDim < 1 || embeddingDim > FC_UNET_MAX_WIDTH) {
    throw new OptionError(
      `network.embeddingDim must be an integer in [1, ${FC_UNET_MAX_WIDTH}], got ${embeddingDim}`,
    );
  }
  const shape = [...dataShape.slice(1)];
  const c: FcUNetConfig = {
    kind: "fc-unet",
    shape,
    dim: sizeOf(shape),
    widths: [...widths],
    T,
    layerNorm,
    embeddingDim,
  };
  try {
    checkFcUNetConfig(c);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
  return c;
}

function positiveInt(field: string, v: unknown, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? "a positive integer"
      : `an integer in [1, ${max}]`;
    throw new RangeError(`fc-unet: ${field} must be ${range}, got ${v}`);
  }
}

/**
 * Validates a fully connected UNet configuration, naming the bad field: a sample shape of positive
 * integers whose product is `dim`, 1 to {@link FC_UNET_MAX_LEVELS} widths each in [1,
 * {@link FC_UNET_MAX_WIDTH}], T a positive integer, `layerNorm` a boolean, the class count and the
 * embedding size. Throws a RangeError.
 */
export function checkFcUNetConfig(c: FcUNetConfig): void {
  if (!Array.isArray(c.shape) || c.shape.length < 1) {
    throw new RangeError(
      `fc-unet: shape must list the sample's axes, got ${JSON.stringify(c.shape)}`,
    );
  }
  c.shape.forEach((d, i) => positiveInt(`shape[${i}]`, d));
  positiveInt("dim", c.dim);
  if (sizeOf(c.shape) !== c.dim) {
    throw new RangeError(`fc-unet: dim ${c.dim} is not the size of shape [${c.shape}]`);
  }
  if (!Array.isArray(c.widths) || c.widths.length < 1 || c.widths.length > FC_UNET_MAX_LEVELS) {
    throw new RangeError(
      `fc-unet: widths must list 1 to ${FC_UNET_MAX_LEVELS} widths, got ${
        JSON.stringify(c.widths)
      }`,
    );
  }
  c.widths.forEach((w, i) => positiveInt(`widths[${i}]`, w, FC_UNET_MAX_WIDTH));
  positiveInt("T", c.T);
  if (typeof c.layerNorm !== "boolean") {
    throw new RangeError(`fc-unet: layerNorm must be true or false, got ${c.layerNorm}`);
  }
  positiveInt("embeddingDim", c.embeddingDim, FC_UNET_MAX_WIDTH);
  if (c.classes !== undefined) checkClasses("fc-unet: classes", c.classes);
  checkLearnSigma("fc-unet", c.learnSigma);
}

/** The fully connected UNet bound to parameters. */
export class FcUNet implements Network {
  readonly #config: FcUNetConfig;
  readonly #down: Linear[];
  readonly #downNorm: GroupNorm[] | null;
  readonly #up: Linear[];
  readonly #upNorm: GroupNorm[] | null;
  readonly #out: Linear;
  readonly #labels: ClassEmbedding | null;

  /**
   * Validates `config` ({@link checkFcUNetConfig}) and declares the parameters in `params`:
   * `down.0` (D + 1, plus the class embedding size when conditional, to w_0), `down.<i>` (w_{i-1}
   * to w_i), `down_norm.<i>` (w_i, with `layerNorm`), `up.<i>` (w_{i+1} to w_i, i < L - 1),
   * `up_norm.<i>`, `out` (w_0 to D, or 2·D with `learnSigma`), then `label_emb` when conditional.
   */
  constructor(config: FcUNetConfig, params: ParamSource) {
    checkFcUNetConfig(config);
    const c = config, w = c.widths, L = w.length;
    this.#config = c;
    const input = c.dim + 1 + (c.classes ? c.embeddingDim : 0);
    this.#down = w.map((wi, i) => new Linear(params, `down.${i}`, i === 0 ? input : w[i - 1], wi));
    this.#downNorm = c.layerNorm
      ? w.map((wi, i) => new GroupNorm(params, `down_norm.${i}`, wi, 1))
      : null;
    this.#up = w.slice(0, L - 1).map((wi, i) => new Linear(params, `up.${i}`, w[i + 1], wi));
    this.#upNorm = c.layerNorm
      ? w.slice(0, L - 1).map((wi, i) => new GroupNorm(params, `up_norm.${i}`, wi, 1))
      : null;
    this.#out = new Linear(params, "out", w[0], c.dim * outputFactor(c));
    this.#labels = c.classes
      ? new ClassEmbedding(params, "label_emb", c.classes, c.embeddingDim)
      : null;
  }

  /** The configuration. */
  get config(): FcUNetConfig {
    return this.#config;
  }

  /**
   * eps(x, t) for x [B, ...shape] (e.g. [B, C, H, W]) or [B, dim], t [B] (1..T as floats), and
   * class labels [B] when conditional; the output has x's shape, or with `learnSigma` twice its
   * first sample axis ([B, 2·C, H, W] or [B, 2·dim]: the D predicted values, then the D of v).
   */
  forward(x: Tensor, t: Tensor, _ctx?: ForwardContext, labels?: Tensor): Tensor {
    const c = this.#config, L = c.widths.length, B = x.shape[0];
    checkLabels(c.classes, labels);
    const sample = x.shape.slice(1);
    const asShape = sample.length === c.shape.length && sample.every((d, i) => d === c.shape[i]);
    if (!asShape && !(sample.length === 1 && sample[0] === c.dim)) {
      throw new RangeError(
        `fc-unet: x must be [B, ${c.shape}] or [B, ${c.dim}], got [${x.shape}]`,
      );
    }
    if (t.size !== B) {
      throw new RangeError(`fc-unet: t has ${t.size} entries for a batch of ${B}`);
    }
    const inputs = [reshape(x, [B, c.dim]), reshape(affine(t, 1 / c.T), [B, 1])];
    if (this.#labels) inputs.push(this.#labels.embed(labels, B, x));
    // The way down: keep each level's pre-activation h_i for the skip at its width.
    const kept: Tensor[] = [];
    let a = concat(inputs, 1);
    for (let i = 0; i < L; i++) {
      const h = this.#down[i].forward(a);
      kept.push(h);
      a = this.#norm(this.#downNorm, i, gelu(h));
    }
    // The bottleneck adds its own h, then each level on the way up adds the kept h of its width.
    a = add(a, kept[L - 1]);
    for (let i = L - 2; i >= 0; i--) {
      a = add(this.#norm(this.#upNorm, i, gelu(this.#up[i].forward(a))), kept[i]);
    }
    const [first, ...rest] = x.shape.slice(1);
    return reshape(this.#out.forward(a), [B, first * outputFactor(c), ...rest]);
  }

  #norm(norms: GroupNorm[] | null, i: number, x: Tensor): Tensor {
    return norms ? norms[i].forward(x) : x;
  }
}

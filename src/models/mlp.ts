/**
 * The toy seed's MLP denoiser: x concatenated with t scaled to [-0.5, 0.5], `layers` hidden Linear
 * + ReLU layers of width `hidden`, then a Linear back to the data dimension. Parameter names follow
 * the PyTorch twin (`net.0`, `net.2`, ... like an nn.Sequential with ReLUs between).
 *
 * Optionally the scalar time input is replaced by a sinusoidal embedding of t.
 *
 * @module
 */

import { checkChoice, checkInt, OptionError } from "../errors.ts";
import { affine } from "../ops/elementwise.ts";
import { concat, reshape } from "../ops/shape.ts";
import { sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { timestepEmbedding } from "../nn/embedding.ts";
import { Linear } from "../nn/linear.ts";
import type { ParamSource } from "../nn/params.ts";
import { checkClasses, ClassEmbedding } from "../nn/class_embedding.ts";
import { MAX_DEPTH, MAX_T, MAX_WIDTH } from "../limits.ts";
import {
  checkLabels,
  checkLearnSigma,
  type ForwardContext,
  type Network,
  outputFactor,
} from "./network.ts";

/** How the MLP sees the timestep. */
export type TimeInput = "scalar" | "sinusoidal";

/** Configuration of the MLP denoiser. */
export interface MlpConfig {
  /** The kind. */
  kind: "mlp";
  /** Data dimension (1 or 2 for the toys). */
  dim: number;
  /** Hidden width (the seed: 128 for 1D, 256 for 2D). */
  hidden: number;
  /** Number of hidden layers (the seed: 3). */
  layers: number;
  /** Number of diffusion steps T, for scaling t to [-0.5, 0.5]. */
  T: number;
  /** "scalar": t scaled to [-0.5, 0.5] (the seed); "sinusoidal": an embedding of `embeddingDim`. */
  timeInput: TimeInput;
  /** Size of the sinusoidal embedding (used with timeInput "sinusoidal") and of the class embedding. */
  embeddingDim: number;
  /**
   * Class-conditional: the number of classes, whose learned embedding (`label_emb`, with a null
   * class) joins the input (absent: unconditional).
   */
  classes?: number;
  /**
   * Learned reverse variances (Nichol & Dhariwal 2021, §3.1): the last layer outputs 2·dim values,
   * the prediction then the variance output v (absent: dim, the prediction alone).
   */
  learnSigma?: true;
}

/** Options of the MLP denoiser (see {@link MlpConfig}), for vector data. */
export interface MlpOptions {
  /** The MLP (the default for vector data). */
  kind?: "mlp";
  /** Hidden width (default 256 for 2-D data, 128 for 1-D). */
  hidden?: number;
  /** Hidden layers (default 3). */
  layers?: number;
  /** "scalar" (the seed) or "sinusoidal" time input (default "scalar"). */
  timeInput?: TimeInput;
  /** Size of the sinusoidal embedding and of the class embedding (default 32). */
  embeddingDim?: number;
}

/**
 * The full configuration of an MLP for data of `dataShape` ([count, ...sampleShape]; the MLP sees
 * each sample flattened) and `T` diffusion steps, from `options` and their defaults. Throws an
 * {@link OptionError} naming the bad option (`network.hidden`, ...).
 */
export function resolveMlpConfig(
  options: MlpOptions,
  dataShape: readonly number[],
  T: number,
): MlpConfig {
  const dim = sizeOf(dataShape.slice(1));
  const c: MlpConfig = {
    kind: "mlp",
    dim,
    hidden: options.hidden ?? (dim === 1 ? 128 : 256),
    layers: options.layers ?? 3,
    T,
    timeInput: options.timeInput ?? "scalar",
    embeddingDim: options.embeddingDim ?? 32,
  };
  checkInt("network.hidden", c.hidden, 1, MAX_WIDTH);
  checkInt("network.layers", c.layers, 1, MAX_DEPTH);
  checkChoice("network.timeInput", c.timeInput, ["scalar", "sinusoidal"] as const);
  const e = c.embeddingDim;
  if (c.timeInput === "sinusoidal" && !(e >= 4 && e % 2 === 0 && e <= MAX_WIDTH)) {
    throw new OptionError(
      `network.embeddingDim must be even and in [4, ${MAX_WIDTH}], got ${c.embeddingDim}`,
    );
  }
  return c;
}

function inputSize(c: MlpConfig): number {
  return c.dim + (c.timeInput === "scalar" ? 1 : c.embeddingDim) + (c.classes ? c.embeddingDim : 0);
}

/** Validates an MLP configuration, naming the bad field. */
export function checkMlpConfig(c: MlpConfig): void {
  const max = { dim: MAX_WIDTH, hidden: MAX_WIDTH, layers: MAX_DEPTH, T: MAX_T };
  for (const k of ["dim", "hidden", "layers", "T"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1 || c[k] > max[k]) {
      throw new RangeError(`mlp: ${k} must be an integer in [1, ${max[k]}], got ${c[k]}`);
    }
  }
  if (c.timeInput !== "scalar" && c.timeInput !== "sinusoidal") {
    throw new RangeError(`mlp: timeInput must be "scalar" or "sinusoidal", got ${c.timeInput}`);
  }
  if (c.classes !== undefined) checkClasses("mlp: classes", c.classes);
  checkLearnSigma("mlp", c.learnSigma);
  const e = c.embeddingDim;
  const embeds = c.classes !== undefined || c.timeInput === "sinusoidal";
  if (embeds && (!Number.isInteger(e) || e < 1 || e > MAX_WIDTH)) {
    throw new RangeError(
      `mlp: embeddingDim must be an integer in [1, ${MAX_WIDTH}], got ${c.embeddingDim}`,
    );
  }
}

/** The MLP bound to parameters. */
export class Mlp implements Network {
  readonly #config: MlpConfig;
  readonly #layers: Linear[];
  readonly #labels: ClassEmbedding | null;

  /**
   * Validates `config` and declares the MLP's parameters in `params`: the Linear layers `net.0`,
   * `net.2`, ..., `net.<2·layers>` (input size -> hidden -> ... -> dim, or 2·dim with
   * `learnSigma`), then `label_emb` when conditional.
   */
  constructor(config: MlpConfig, params: ParamSource) {
    checkMlpConfig(config);
    this.#config = config;
    const c = config, out = c.dim * outputFactor(c);
    const sizes = [inputSize(c), ...Array(c.layers).fill(c.hidden), out];
    this.#layers = Array.from(
      { length: c.layers + 1 },
      (_, i) => new Linear(params, `net.${2 * i}`, sizes[i], sizes[i + 1]),
    );
    this.#labels = c.classes
      ? new ClassEmbedding(params, "label_emb", c.classes, c.embeddingDim)
      : null;
  }

  /**
   * eps(x, t) for x [B, dim], t [B] (and class labels [B] when conditional); [B, 2·dim] with
   * `learnSigma` (eps, then v).
   */
  forward(x: Tensor, t: Tensor, _ctx?: ForwardContext, labels?: Tensor): Tensor {
    const c = this.#config;
    checkLabels(c.classes, labels);
    const time = c.timeInput === "scalar"
      ? reshape(affine(t, 1 / (c.T - 1), -1 / (c.T - 1) - 0.5), [t.size, 1])
      : timestepEmbedding(t, c.embeddingDim);
    const inputs = [x, time];
    if (this.#labels) inputs.push(this.#labels.embed(labels, x.shape[0], x));
    let h = concat(inputs, 1);
    const last = this.#layers.length - 1;
    for (let i = 0; i <= last; i++) h = this.#layers[i].forward(h, i < last ? "relu" : "none");
    return h;
  }
}

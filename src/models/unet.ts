/**
 * The image denoiser: the PyTorch twin's `UNet` (../shared/bench/torch_twin.py), parameter for
 * parameter and op for op, with the sizes made configurable.
 *
 * With the defaults (1 channel, 28x28, base 32, mults [1, 2, 2]): a sinusoidal embedding of t
 * (size base) through Linear -> SiLU -> Linear to 4·base; a 3x3 input convolution to base channels;
 * per level one ResBlock (GroupNorm -> SiLU -> 3x3 conv, plus a Linear of the time embedding, then
 * GroupNorm -> SiLU -> 3x3 conv, plus a 1x1 skip convolution when the channel count changes) whose
 * output is kept for the way up, then a 3x3 stride-2 convolution down (not after the last level):
 * 28 -> 14 -> 7; in the middle ResBlock -> 4-head attention -> ResBlock; on the way up per level a
 * ResBlock on the concatenation of the features and the kept skip, then (not at the top level)
 * nearest x2 upsampling and a 3x3 convolution; finally GroupNorm -> SiLU -> 3x3 conv back to the
 * image channels. 793,697 parameters.
 *
 * `attentionAt` lists resolutions (side lengths) that get attention. The middle gets the twin's
 * `attn` block when the lowest resolution is listed; a higher level's resolution adds an attention
 * block after that level's last block on the way down (`dattn.<level>`) and on the way up
 * (`uattn.<position in up>`), named as a PyTorch ModuleList registered after `ds` and `us` would
 * name them. The twin itself has attention in the middle only: `attentionAt: [7]`.
 *
 * Options beyond the twin, each off by default (and then absent from the configuration, so the
 * default configuration, its parameters and its checkpoints stay exactly the twin's):
 *
 * - `dropout` p: dropout before the last convolution of every block (down, middle, up), in
 *   training steps only; the masks come from the counter-based generator through the
 *   {@link ForwardContext} that `train` passes, so training stays reproducible and resumable.
 * - `blocksPerLevel` n: n blocks per level on the way down, each output kept as a skip (the last
 *   one after the level's attention); on the way up n blocks per level, each on the concatenation
 *   of the features and one kept skip (last kept, first used). Block j >= 1 of level i on the way
 *   down is `downx.<i>.<j>`, of up position k on the way up `upx.<k>.<j>`; block 0 keeps its name
 *   (`down.<i>`, `up.<k>`). They follow all `down.*` resp. `up.*` blocks in the parameter order.
 * - `block: "convnext"`: every ResBlock (down, middle, up) becomes the seed's ConvNeXt block with
 *   hidden width out·`convnextMult` (src/nn/convnext_block.ts), under the same block names.
 * - `attention: "linear"`: every attention block becomes the seed's linear attention
 *   (src/nn/linear_attention.ts), under the same block names.
 * - `patch` p: the network sees the image as p x p patches stacked into channels (space to
 *   depth: channels·p² at imageSize/p) and returns its output the same way (depth to space), so
 *   every level runs at 1/p² of the positions: with p = 2 a 28x28 image becomes 4 channels at
 *   14x14, and levels 14 -> 7. Only `inc` (channels·p² in) and `outc` (channels·p² out) change
 *   shape; attention resolutions count the patched sides.
 * - `learnSigma`: `outc` has twice the output channels, and the output is [B, 2·channels, S, S]:
 *   the prediction, then the raw variance output v of src/diffusion/learned_variance.ts.
 *
 * @module
 */

import { OptionError } from "../errors.ts";
import { add, silu } from "../ops/elementwise.ts";
import { concat, permute, reshape, upsampleNearest } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import { Attention } from "../nn/attention.ts";
import { Conv2d } from "../nn/conv.ts";
import { ConvNextBlock } from "../nn/convnext_block.ts";
import { type DropoutFn, dropoutSites } from "../nn/dropout.ts";
import { timestepEmbedding } from "../nn/embedding.ts";
import { GroupNorm } from "../nn/groupnorm.ts";
import { Linear } from "../nn/linear.ts";
import { LinearAttention } from "../nn/linear_attention.ts";
import type { ParamSource } from "../nn/params.ts";
import { ResBlock } from "../nn/resnet_block.ts";
import { checkClasses, ClassEmbedding } from "../nn/class_embedding.ts";
import { MAX_DEPTH, MAX_WIDTH } from "../limits.ts";
import {
  checkLabels,
  checkLearnSigma,
  type ForwardContext,
  type Network,
  outputFactor,
} from "./network.ts";

/** The block kinds of a UNet: the twin's ResBlock or the seed's ConvNeXt block. */
export type UNetBlockKind = "resnet" | "convnext";

/** The attention kinds of a UNet: full softmax attention (the twin's) or linear attention. */
export type UNetAttentionKind = "full" | "linear";

/** Every block kind, for validation. */
export const UNET_BLOCK_KINDS: readonly UNetBlockKind[] = ["resnet", "convnext"];

/** Every attention kind, for validation. */
export const UNET_ATTENTION_KINDS: readonly UNetAttentionKind[] = ["full", "linear"];

/** Configuration of the UNet denoiser (square images, NCHW). */
export interface UNetConfig {
  /** The kind. */
  kind: "unet";
  /** Image channels (1 for grey scale, 3 for RGB). */
  channels: number;
  /** Image side length; divisible by 2^(mults.length - 1). */
  imageSize: number;
  /** Base channel count; also the size of the sinusoidal time embedding (even, >= 4). */
  base: number;
  /** Channel multiplier of each level (one level per entry; each level but the last halves the size). */
  mults: number[];
  /** Groups of every GroupNorm of the twin's layers; divides every channel count they normalise. */
  groups: number;
  /** Attention heads; divides the channels of every attention block. */
  heads: number;
  /** Resolutions (side lengths) with attention; the lowest one means the middle block. */
  attentionAt: number[];
  /** Dropout probability in [0, 1) before each block's last convolution, training only (absent: 0). */
  dropout?: number;
  /** Blocks per level on the way down and on the way up, a positive integer (absent: 1). */
  blocksPerLevel?: number;
  /** The kind of every block (absent: "resnet"). */
  block?: UNetBlockKind;
  /** Hidden width multiplier of the ConvNeXt blocks, a positive integer (absent: 2). */
  convnextMult?: number;
  /** The kind of every attention block (absent: "full"). */
  attention?: UNetAttentionKind;
  /** Side of the square patches stacked into channels before the first layer (absent: 1). */
  patch?: number;
  /**
   * Class-conditional: the number of classes, whose learned embedding (`label_emb`, with a null
   * class) is added to the time embedding (absent: unconditional).
   */
  classes?: number;
  /**
   * Learned reverse variances (Nichol & Dhariwal 2021, §3.1): `outc` outputs 2·channels (·patch²)
   * channels, the prediction then the variance output v (absent: channels, the prediction alone).
   */
  learnSigma?: true;
}

/** The options beyond the twin and their defaults, which {@link unetConfig} leaves out. */
export const UNET_OPTION_DEFAULTS: Readonly<
  Required<
    Pick<
      UNetConfig,
      "dropout" | "blocksPerLevel" | "block" | "convnextMult" | "attention" | "patch"
    >
  >
> = Object.freeze({
  dropout: 0,
  blocksPerLevel: 1,
  block: "resnet",
  convnextMult: 2,
  attention: "full",
  patch: 1,
});

/** The twin's configuration: 1x28x28, base 32, mults [1, 2, 2], 8 groups, 4 heads at 7x7. */
export const DEFAULT_UNET_CONFIG: Readonly<UNetConfig> = Object.freeze({
  kind: "unet",
  channels: 1,
  imageSize: 28,
  base: 32,
  mults: [1, 2, 2],
  groups: 8,
  heads: 4,
  attentionAt: [7],
});

/**
 * A full configuration from the twin's defaults and `overrides`; when `attentionAt` is not given,
 * attention sits in the middle at the lowest resolution (7 for 28x28, 8 for 32x32). Options given
 * at their defaults ({@link UNET_OPTION_DEFAULTS}) are left out, so equal models have equal
 * configurations and the default one is exactly the twin's.
 */
export function unetConfig(overrides: Partial<Omit<UNetConfig, "kind">> = {}): UNetConfig {
  const c: UNetConfig = {
    kind: "unet",
    channels: overrides.channels ?? DEFAULT_UNET_CONFIG.channels,
    imageSize: overrides.imageSize ?? DEFAULT_UNET_CONFIG.imageSize,
    base: overrides.base ?? DEFAULT_UNET_CONFIG.base,
    mults: [...(overrides.mults ?? DEFAULT_UNET_CONFIG.mults)],
    groups: overrides.groups ?? DEFAULT_UNET_CONFIG.groups,
    heads: overrides.heads ?? DEFAULT_UNET_CONFIG.heads,
    attentionAt: [],
  };
  const d = UNET_OPTION_DEFAULTS, o = overrides;
  if (o.patch !== undefined && o.patch !== d.patch) c.patch = o.patch;
  c.attentionAt = overrides.attentionAt ? [...overrides.attentionAt] : [
    unetResolutions({ ...c, attentionAt: [] }).at(-1)!,
  ];
  if (o.dropout !== undefined && o.dropout !== d.dropout) c.dropout = o.dropout;
  if (o.blocksPerLevel !== undefined && o.blocksPerLevel !== d.blocksPerLevel) {
    c.blocksPerLevel = o.blocksPerLevel;
  }
  if (o.block !== undefined && o.block !== d.block) c.block = o.block;
  if (o.convnextMult !== undefined && o.convnextMult !== d.convnextMult) {
    c.convnextMult = o.convnextMult;
  }
  if (o.attention !== undefined && o.attention !== d.attention) c.attention = o.attention;
  return c;
}

/** Options of the UNet denoiser (see {@link UNetConfig}), for image data [count, channels, size, size]. */
export type UNetOptions =
  & { kind: "unet" }
  & Partial<Omit<UNetConfig, "kind" | "channels" | "imageSize">>;

/**
 * The full, checked configuration of a UNet for images of `dataShape` ([count, channels, size,
 * size]) from `options` and the defaults ({@link unetConfig}). Throws an {@link OptionError}
 * naming the problem: images that are not square, or a configuration {@link checkUNetConfig}
 * rejects (with its message).
 */
export function resolveUNetConfig(options: UNetOptions, dataShape: readonly number[]): UNetConfig {
  const sample = dataShape.slice(1);
  if (sample.length !== 3 || sample[1] !== sample[2]) {
    throw new OptionError(
      `a UNet needs square images: data.shape [count, channels, size, size], got [${dataShape}]`,
    );
  }
  const { kind: _, ...overrides } = options;
  const config = unetConfig({ ...overrides, channels: sample[0], imageSize: sample[1] });
  try {
    checkUNetConfig(config);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
  return config;
}

/** The side length of each level, top to bottom (28, 14, 7 for the defaults; 14, 7 with patch 2). */
export function unetResolutions(c: UNetConfig): number[] {
  const top = c.imageSize / (c.patch ?? UNET_OPTION_DEFAULTS.patch);
  return c.mults.map((_, i) => top / 2 ** i);
}

/** The size of the time embedding after the MLP (4·base, as in the twin). */
export function unetTimeDim(c: UNetConfig): number {
  return 4 * c.base;
}

function positiveInt(field: string, v: unknown, max = MAX_WIDTH): void {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) {
    throw new RangeError(`unet: ${field} must be an integer in [1, ${max}], got ${v}`);
  }
}

function oneOf<T extends string>(field: string, v: unknown, choices: readonly T[]): void {
  if (!choices.includes(v as T)) {
    throw new RangeError(
      `unet: ${field} must be one of ${choices.map((x) => JSON.stringify(x)).join(", ")}, got ${
        JSON.stringify(v)
      }`,
    );
  }
}

/**
 * Validates a UNet configuration, naming the bad field: sizes, divisibility of the image size by
 * the downsampling, attention resolutions, that `groups` and `heads` divide every channel count
 * they split, and the options (`dropout` in [0, 1), `blocksPerLevel` and `convnextMult` positive
 * integers, `convnextMult` only with `block: "convnext"`, known `block` and `attention` kinds).
 * Throws a RangeError.
 */
export function checkUNetConfig(c: UNetConfig): void {
  plan(c);
}

function checkOptions(c: UNetConfig): void {
  if (c.dropout !== undefined) {
    if (typeof c.dropout !== "number" || !(c.dropout >= 0 && c.dropout < 1)) {
      throw new RangeError(`unet: dropout must be a probability in [0, 1), got ${c.dropout}`);
    }
  }
  if (c.blocksPerLevel !== undefined) positiveInt("blocksPerLevel", c.blocksPerLevel, MAX_DEPTH);
  if (c.block !== undefined) oneOf("block", c.block, UNET_BLOCK_KINDS);
  if (c.convnextMult !== undefined) {
    positiveInt("convnextMult", c.convnextMult);
    if (c.block !== "convnext") {
      throw new RangeError(`unet: convnextMult applies only to block "convnext"`);
    }
  }
  if (c.attention !== undefined) oneOf("attention", c.attention, UNET_ATTENTION_KINDS);
  if (c.patch !== undefined) positiveInt("patch", c.patch);
  if (c.classes !== undefined) checkClasses("unet: classes", c.classes);
  checkLearnSigma("unet", c.learnSigma);
}

function checkFields(c: UNetConfig): void {
  if (c.kind !== "unet") throw new RangeError(`unet: kind must be "unet", got ${c.kind}`);
  for (const k of ["channels", "imageSize", "base", "groups", "heads"] as const) {
    positiveInt(k, c[k]);
  }
  if (c.base % 2 !== 0 || c.base < 4) {
    throw new RangeError(`unet: base is the time embedding size, even and >= 4, got ${c.base}`);
  }
  if (!Array.isArray(c.mults) || c.mults.length < 1 || c.mults.length > 16) {
    throw new RangeError(`unet: mults must list 1 to 16 levels, got ${c.mults}`);
  }
  // Every level's channel count, base times its multiplier, stays within MAX_WIDTH.
  c.mults.forEach((m, i) => positiveInt(`mults[${i}]`, m, Math.floor(MAX_WIDTH / c.base)));
  checkOptions(c);
  const patch = c.patch ?? UNET_OPTION_DEFAULTS.patch;
  const down = 2 ** (c.mults.length - 1) * patch;
  if (c.imageSize % down !== 0) {
    throw new RangeError(
      `unet: imageSize ${c.imageSize} must be divisible by ${down} for ${c.mults.length} levels` +
        (patch > 1 ? ` of ${patch}x${patch} patches` : ""),
    );
  }
  if (!Array.isArray(c.attentionAt)) {
    throw new RangeError(`unet: attentionAt must be an array of resolutions, got ${c.attentionAt}`);
  }
  const res = unetResolutions(c);
  for (const r of c.attentionAt) {
    if (!res.includes(r)) {
      throw new RangeError(
        `unet: attentionAt lists ${r}, not one of the resolutions ${res.join(", ")}`,
      );
    }
  }
}

/** The checked plan of a configuration: channels, blocks and attention of each level. */
interface Plan {
  /** Channels of each level. */
  chans: number[];
  /** Input channels of each level's first down block. */
  downIn: number[];
  /** [in, out] channels of each up position's first block, in the order of `up`. */
  up: [number, number][];
  /** Whether each level below the middle (all but the last) has attention. */
  levelAttn: boolean[];
  /** Whether the middle has attention. */
  midAttn: boolean;
  /** Blocks per level. */
  blocks: number;
  /** The block kind. */
  block: UNetBlockKind;
  /** ConvNeXt hidden multiplier. */
  mult: number;
  /** The attention kind. */
  attention: UNetAttentionKind;
  /** Dropout probability. */
  dropout: number;
}

function plan(c: UNetConfig): Plan {
  checkFields(c);
  const d = UNET_OPTION_DEFAULTS;
  const L = c.mults.length, res = unetResolutions(c);
  const blocks = c.blocksPerLevel ?? d.blocksPerLevel, block = c.block ?? d.block;
  const attention = c.attention ?? d.attention;
  const chans = c.mults.map((m) => c.base * m);
  const downIn: number[] = [];
  let ch = c.base;
  for (const co of chans) {
    downIn.push(ch);
    ch = co;
  }
  const up: [number, number][] = [];
  for (let i = L - 1; i >= 0; i--) {
    up.push([ch + chans[i], chans[i]]);
    ch = chans[i];
  }
  const levelAttn = res.slice(0, L - 1).map((r) => c.attentionAt.includes(r));
  const midAttn = c.attentionAt.includes(res[L - 1]);
  const attnChans = chans.slice(0, L - 1).filter((_, i) => levelAttn[i]);
  if (midAttn) attnChans.push(chans[L - 1]);
  // Channel counts normalised with `groups`: the ResBlocks' (ConvNeXt blocks and linear attention
  // use GroupNorm(1)), the output norm's, full attention's.
  const norms = block === "resnet"
    ? [...downIn, ...chans, ...up.flat(), ...(blocks > 1 ? chans.map((co) => 2 * co) : [])]
    : [chans[0]];
  if (attention === "full") norms.push(...attnChans);
  for (const n of norms) {
    if (n % c.groups !== 0) {
      throw new RangeError(`unet: ${n} channels do not split into ${c.groups} groups`);
    }
  }
  for (const a of attnChans) {
    if (a % c.heads !== 0) {
      throw new RangeError(`unet: ${a} channels do not split into ${c.heads} heads`);
    }
  }
  return {
    chans,
    downIn,
    up,
    levelAttn,
    midAttn,
    blocks,
    block,
    mult: c.convnextMult ?? d.convnextMult,
    attention,
    dropout: c.dropout ?? d.dropout,
  };
}

/** Name, input and output channels of one block. */
type BlockSlot = [name: string, inChannels: number, outChannels: number];

/** The blocks of each level on the way down (block j >= 1 of level i is `downx.<i>.<j>`). */
function downSlots(p: Plan): BlockSlot[][] {
  return p.chans.map((co, i) => [
    [`down.${i}`, p.downIn[i], co],
    ...Array.from({ length: p.blocks - 1 }, (_, j): BlockSlot => [`downx.${i}.${j + 1}`, co, co]),
  ]);
}

/** The blocks of each up position (block j >= 1 of position k is `upx.<k>.<j>`, on 2·out). */
function upSlots(p: Plan): BlockSlot[][] {
  return p.up.map(([ci, co], k) => [
    [`up.${k}`, ci, co],
    ...Array.from({ length: p.blocks - 1 }, (_, j): BlockSlot => [`upx.${k}.${j + 1}`, 2 * co, co]),
  ]);
}

/** Pixels of a patch: 1 without patches. */
function patchArea(c: UNetConfig): number {
  return (c.patch ?? UNET_OPTION_DEFAULTS.patch) ** 2;
}

/** [B, C, S, S] -> [B, C·p², S/p, S/p]: channel c·p² + i·p + j holds pixel (p·y + i, p·x + j). */
function spaceToDepth(x: Tensor, p: number): Tensor {
  const [b, c, s] = x.shape, q = s / p;
  return reshape(permute(reshape(x, [b, c, q, p, q, p]), [0, 1, 3, 5, 2, 4]), [b, c * p * p, q, q]);
}

/** The inverse of {@link spaceToDepth}: [B, C·p², q, q] -> [B, C, q·p, q·p]. */
function depthToSpace(x: Tensor, p: number): Tensor {
  const [b, cp, q] = x.shape, c = cp / (p * p);
  return reshape(permute(reshape(x, [b, c, p, p, q, q]), [0, 1, 4, 2, 5, 3]), [b, c, q * p, q * p]);
}

/** A block of the UNet: ResBlock or ConvNeXt block. */
type Block = ResBlock | ConvNextBlock;

/** An attention block of the UNet: full or linear. */
type AttentionBlock = Attention | LinearAttention;

/** The UNet bound to parameters. */
export class UNet implements Network {
  readonly #config: UNetConfig;
  readonly #dropout: number;
  readonly #tmlp0: Linear;
  readonly #tmlp2: Linear;
  readonly #inc: Conv2d;
  readonly #down: Block[][];
  readonly #ds: Conv2d[];
  readonly #dattn: (AttentionBlock | null)[];
  readonly #mid1: Block;
  readonly #attn: AttentionBlock | null;
  readonly #mid2: Block;
  readonly #up: Block[][];
  readonly #us: Conv2d[];
  readonly #uattn: (AttentionBlock | null)[];
  readonly #outn: GroupNorm;
  readonly #outc: Conv2d;
  readonly #labels: ClassEmbedding | null;

  /**
   * Validates `config` ({@link checkUNetConfig}) and declares the UNet's parameters in `params`:
   * exactly the twin's state_dict names, shapes and order for the defaults. The parameter order
   * (the checkpoints' tensor order, and the order the initial weights are drawn in) is tmlp, inc,
   * down.*, downx.*, ds.*, dattn.*, mid1, attn, mid2, up.*, upx.*, us.*, uattn.*, outn, outc (then
   * label_emb when conditional): the
   * layers are built in that order, which is not the order the forward pass runs them in.
   */
  constructor(config: UNetConfig, params: ParamSource) {
    const c = config, p = plan(c), L = c.mults.length, g = c.groups, td = unetTimeDim(c);
    const attn = (name: string, ch: number): AttentionBlock =>
      p.attention === "linear"
        ? new LinearAttention(params, name, ch, { heads: c.heads })
        : new Attention(params, name, ch, { heads: c.heads, groups: g });
    const block = ([name, ci, co]: BlockSlot): Block =>
      p.block === "convnext"
        ? new ConvNextBlock(params, name, ci, co, td, p.mult)
        : new ResBlock(params, name, ci, co, td, g);
    /** Each level's (position's) first block, then the others: `down.*` before `downx.*`. */
    const blocks = (slots: BlockSlot[][]): Block[][] => {
      const first = slots.map((level) => block(level[0]));
      const rest = slots.map((level) => level.slice(1).map(block));
      return first.map((b, i) => [b, ...rest[i]]);
    };
    const image = c.channels * patchArea(c), top = p.chans[0], mid = p.chans[L - 1];
    this.#config = c;
    this.#dropout = p.dropout;
    this.#tmlp0 = new Linear(params, "tmlp.0", c.base, td);
    this.#tmlp2 = new Linear(params, "tmlp.2", td, td);
    this.#inc = new Conv2d(params, "inc", image, c.base, 3, { padding: 1 });
    this.#down = blocks(downSlots(p));
    this.#ds = p.chans.slice(0, L - 1).map((ch, i) =>
      new Conv2d(params, `ds.${i}`, ch, ch, 3, { stride: 2, padding: 1 })
    );
    this.#dattn = p.levelAttn.map((a, i) => (a ? attn(`dattn.${i}`, p.chans[i]) : null));
    this.#mid1 = block(["mid1", mid, mid]);
    this.#attn = p.midAttn ? attn("attn", mid) : null;
    this.#mid2 = block(["mid2", mid, mid]);
    this.#up = blocks(upSlots(p));
    // us.k follows up.k at level L-1-k, for every level but the top.
    this.#us = p.up.slice(0, L - 1).map(([, co], k) =>
      new Conv2d(params, `us.${k}`, co, co, 3, { padding: 1 })
    );
    // uattn.k follows up.k at level L-1-k, for levels with attention above the middle (k > 0).
    this.#uattn = p.up.map(([, co], k) =>
      k > 0 && p.levelAttn[L - 1 - k] ? attn(`uattn.${k}`, co) : null
    );
    this.#outn = new GroupNorm(params, "outn", top, g);
    this.#outc = new Conv2d(params, "outc", top, image * outputFactor(c), 3, { padding: 1 });
    this.#labels = c.classes ? new ClassEmbedding(params, "label_emb", c.classes, td) : null;
  }

  /** The configuration. */
  get config(): UNetConfig {
    return this.#config;
  }

  /**
   * eps(x, t) for x [B, channels, imageSize, imageSize] and t [B] (1..T as floats), or with
   * `learnSigma` [B, 2·channels, imageSize, imageSize] (eps, then v). Dropout runs
   * only when `ctx.training`, drawing site by site from `ctx.draw`; without a context the pass is
   * deterministic.
   */
  forward(x: Tensor, t: Tensor, ctx?: ForwardContext, labels?: Tensor): Tensor {
    const c = this.#config, L = c.mults.length;
    checkLabels(c.classes, labels);
    const want = [c.channels, c.imageSize, c.imageSize];
    if (x.shape.length !== 4 || x.shape.slice(1).some((d, i) => d !== want[i])) {
      throw new RangeError(`unet: x must be [B, ${want}], got [${x.shape}]`);
    }
    if (t.size !== x.shape[0]) {
      throw new RangeError(`unet: t has ${t.size} entries for a batch of ${x.shape[0]}`);
    }
    const drop: DropoutFn | null = ctx?.training && this.#dropout > 0
      ? dropoutSites(this.#dropout, (site, size) => ctx.draw(site, size))
      : null;
    let te = this.#tmlp2.forward(silu(this.#tmlp0.forward(timestepEmbedding(t, c.base))));
    if (this.#labels) te = add(te, this.#labels.embed(labels, x.shape[0], x));
    const patch = c.patch ?? UNET_OPTION_DEFAULTS.patch;
    let h = this.#inc.forward(patch > 1 ? spaceToDepth(x, patch) : x);
    const hs: Tensor[] = [];
    for (let i = 0; i < L; i++) {
      const blocks = this.#down[i];
      blocks.forEach((b, j) => {
        h = b.forward(h, te, drop);
        if (j < blocks.length - 1) hs.push(h);
      });
      if (i < L - 1) {
        const a = this.#dattn[i];
        if (a) h = a.forward(h);
      }
      hs.push(h);
      if (i < L - 1) h = this.#ds[i].forward(h);
    }
    h = this.#mid1.forward(h, te, drop);
    if (this.#attn) h = this.#attn.forward(h);
    h = this.#mid2.forward(h, te, drop);
    for (let k = 0; k < L; k++) {
      for (const b of this.#up[k]) h = b.forward(concat([h, hs.pop()!], 1), te, drop);
      const a = this.#uattn[k];
      if (a) h = a.forward(h);
      if (k < L - 1) h = this.#us[k].forward(upsampleNearest(h, 2));
    }
    const out = this.#outc.forward(this.#outn.forwardSilu(h));
    return patch > 1 ? depthToSpace(out, patch) : out;
  }
}

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
 * block after that level's ResBlock on the way down (`dattn.<level>`) and on the way up
 * (`uattn.<position in up>`), named as a PyTorch ModuleList registered after `ds` and `us` would
 * name them. The twin itself has attention in the middle only: `attentionAt: [7]`.
 *
 * @module
 */

import { add, silu } from "../ops/elementwise.ts";
import { concat, reshape, upsampleNearest } from "../ops/shape.ts";
import type { Tensor } from "../tensor.ts";
import { Attention, attentionSpecs } from "../nn/attention.ts";
import { Conv2d, conv2dSpecs } from "../nn/conv.ts";
import { timestepEmbedding } from "../nn/embedding.ts";
import { GroupNorm, groupNormSpecs } from "../nn/groupnorm.ts";
import { Linear, linearSpecs } from "../nn/linear.ts";
import type { ParamSpec, ParamStore } from "../nn/params.ts";
import type { Network } from "./network.ts";

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
  /** Groups of every GroupNorm; divides every normalised channel count. */
  groups: number;
  /** Attention heads; divides the channels of every attention block. */
  heads: number;
  /** Resolutions (side lengths) with attention; the lowest one means the middle block. */
  attentionAt: number[];
}

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
 * attention sits in the middle at the lowest resolution (7 for 28x28, 8 for 32x32).
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
  c.attentionAt = overrides.attentionAt ? [...overrides.attentionAt] : [
    unetResolutions({ ...c, attentionAt: [] }).at(-1)!,
  ];
  return c;
}

/** The side length of each level, top to bottom (28, 14, 7 for the defaults). */
export function unetResolutions(c: UNetConfig): number[] {
  return c.mults.map((_, i) => c.imageSize / 2 ** i);
}

/** The size of the time embedding after the MLP (4·base, as in the twin). */
export function unetTimeDim(c: UNetConfig): number {
  return 4 * c.base;
}

function positiveInt(field: string, v: unknown): void {
  if (!Number.isInteger(v) || (v as number) < 1) {
    throw new RangeError(`unet: ${field} must be a positive integer, got ${v}`);
  }
}

/**
 * Validates a UNet configuration, naming the bad field: sizes, divisibility of the image size by
 * the downsampling, attention resolutions, and that `groups` and `heads` divide every channel count
 * they split. Throws a RangeError.
 */
export function checkUNetConfig(c: UNetConfig): void {
  plan(c);
}

function checkFields(c: UNetConfig): void {
  if (c.kind !== "unet") throw new RangeError(`unet: kind must be "unet", got ${c.kind}`);
  for (const k of ["channels", "imageSize", "base", "groups", "heads"] as const) {
    positiveInt(k, c[k]);
  }
  if (c.base % 2 !== 0 || c.base < 4) {
    throw new RangeError(`unet: base is the time embedding size, even and >= 4, got ${c.base}`);
  }
  if (!Array.isArray(c.mults) || c.mults.length < 1) {
    throw new RangeError(`unet: mults must list at least one level, got ${c.mults}`);
  }
  c.mults.forEach((m, i) => positiveInt(`mults[${i}]`, m));
  const down = 2 ** (c.mults.length - 1);
  if (c.imageSize % down !== 0) {
    throw new RangeError(
      `unet: imageSize ${c.imageSize} must be divisible by ${down} for ${c.mults.length} levels`,
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

/** The plan shared by the parameter list and the forward pass. */
interface Plan {
  /** Channels of each level. */
  chans: number[];
  /** Input channels of each down ResBlock. */
  downIn: number[];
  /** [in, out] channels of each up ResBlock, in the order of `up`. */
  up: [number, number][];
  /** Whether each level below the middle (all but the last) has attention. */
  levelAttn: boolean[];
  /** Whether the middle has attention. */
  midAttn: boolean;
}

function plan(c: UNetConfig): Plan {
  checkFields(c);
  const L = c.mults.length, res = unetResolutions(c);
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
  const norms = [...downIn, ...chans, ...up.flat()];
  for (const n of norms) {
    if (n % c.groups !== 0) {
      throw new RangeError(`unet: ${n} channels do not split into ${c.groups} groups`);
    }
  }
  const attnChans = chans.slice(0, L - 1).filter((_, i) => levelAttn[i]);
  if (midAttn) attnChans.push(chans[L - 1]);
  for (const a of attnChans) {
    if (a % c.heads !== 0) {
      throw new RangeError(`unet: ${a} channels do not split into ${c.heads} heads`);
    }
  }
  return { chans, downIn, up, levelAttn, midAttn };
}

/** The parameters of a ResBlock called `name` (the twin's order: n1, c1, t, n2, c2, skip). */
export function resBlockSpecs(
  name: string,
  inChannels: number,
  outChannels: number,
  timeDim: number,
): ParamSpec[] {
  return [
    ...groupNormSpecs(`${name}.n1`, inChannels),
    ...conv2dSpecs(`${name}.c1`, inChannels, outChannels, 3),
    ...linearSpecs(`${name}.t`, timeDim, outChannels),
    ...groupNormSpecs(`${name}.n2`, outChannels),
    ...conv2dSpecs(`${name}.c2`, outChannels, outChannels, 3),
    ...(inChannels !== outChannels ? conv2dSpecs(`${name}.skip`, inChannels, outChannels, 1) : []),
  ];
}

/** The twin's ResBlock: two GroupNorm -> SiLU -> 3x3 conv stages, the time added after the first. */
export class ResBlock {
  readonly #n1: GroupNorm;
  readonly #c1: Conv2d;
  readonly #t: Linear;
  readonly #n2: GroupNorm;
  readonly #c2: Conv2d;
  readonly #skip: Conv2d | null;

  /** Binds the block `name` in `store`; `skip` when the channel count changes. */
  constructor(store: ParamStore, name: string, groups: number, skip: boolean) {
    this.#n1 = new GroupNorm(store, `${name}.n1`, groups);
    this.#c1 = new Conv2d(store, `${name}.c1`, { padding: 1 });
    this.#t = new Linear(store, `${name}.t`);
    this.#n2 = new GroupNorm(store, `${name}.n2`, groups);
    this.#c2 = new Conv2d(store, `${name}.c2`, { padding: 1 });
    this.#skip = skip ? new Conv2d(store, `${name}.skip`) : null;
  }

  /** x [b, in, h, w], time embedding te [b, tdim] -> [b, out, h, w]. */
  forward(x: Tensor, te: Tensor): Tensor {
    const time = this.#t.forward(te);
    let h = this.#c1.forward(silu(this.#n1.forward(x)));
    h = add(h, reshape(time, [time.shape[0], time.shape[1], 1, 1]));
    h = this.#c2.forward(silu(this.#n2.forward(h)));
    return add(h, this.#skip ? this.#skip.forward(x) : x);
  }
}

/** The UNet's parameters: exactly the twin's state_dict names, shapes and order for the defaults. */
export function unetParamSpecs(c: UNetConfig): ParamSpec[] {
  const p = plan(c), L = c.mults.length, td = unetTimeDim(c);
  const specs: ParamSpec[] = [
    ...linearSpecs("tmlp.0", c.base, td),
    ...linearSpecs("tmlp.2", td, td),
    ...conv2dSpecs("inc", c.channels, c.base, 3),
  ];
  p.chans.forEach((co, i) => specs.push(...resBlockSpecs(`down.${i}`, p.downIn[i], co, td)));
  for (let i = 0; i < L - 1; i++) specs.push(...conv2dSpecs(`ds.${i}`, p.chans[i], p.chans[i], 3));
  for (let i = 0; i < L - 1; i++) {
    if (p.levelAttn[i]) specs.push(...attentionSpecs(`dattn.${i}`, p.chans[i]));
  }
  const mid = p.chans[L - 1];
  specs.push(...resBlockSpecs("mid1", mid, mid, td));
  if (p.midAttn) specs.push(...attentionSpecs("attn", mid));
  specs.push(...resBlockSpecs("mid2", mid, mid, td));
  p.up.forEach(([ci, co], k) => specs.push(...resBlockSpecs(`up.${k}`, ci, co, td)));
  // us.k follows up.k at level L-1-k, for every level but the top.
  for (let k = 0; k < L - 1; k++) {
    const co = p.up[k][1];
    specs.push(...conv2dSpecs(`us.${k}`, co, co, 3));
  }
  // uattn.k follows up.k at level L-1-k, for levels with attention above the middle (k > 0).
  for (let k = 1; k < L; k++) {
    if (p.levelAttn[L - 1 - k]) specs.push(...attentionSpecs(`uattn.${k}`, p.up[k][1]));
  }
  specs.push(...groupNormSpecs("outn", p.chans[0]));
  specs.push(...conv2dSpecs("outc", p.chans[0], c.channels, 3));
  return specs;
}

/** The UNet bound to parameters. */
export class UNet implements Network {
  readonly #config: UNetConfig;
  readonly #tmlp0: Linear;
  readonly #tmlp2: Linear;
  readonly #inc: Conv2d;
  readonly #down: ResBlock[];
  readonly #ds: Conv2d[];
  readonly #dattn: (Attention | null)[];
  readonly #mid1: ResBlock;
  readonly #attn: Attention | null;
  readonly #mid2: ResBlock;
  readonly #up: ResBlock[];
  readonly #us: Conv2d[];
  readonly #uattn: (Attention | null)[];
  readonly #outn: GroupNorm;
  readonly #outc: Conv2d;

  /** Binds the UNet's parameters in `store` (laid out by {@link unetParamSpecs}). */
  constructor(config: UNetConfig, store: ParamStore) {
    const p = plan(config), L = config.mults.length, g = config.groups;
    const attn = (name: string) => new Attention(store, name, { heads: config.heads, groups: g });
    this.#config = config;
    this.#tmlp0 = new Linear(store, "tmlp.0");
    this.#tmlp2 = new Linear(store, "tmlp.2");
    this.#inc = new Conv2d(store, "inc", { padding: 1 });
    this.#down = p.chans.map((co, i) => new ResBlock(store, `down.${i}`, g, p.downIn[i] !== co));
    this.#ds = Array.from(
      { length: L - 1 },
      (_, i) => new Conv2d(store, `ds.${i}`, { stride: 2, padding: 1 }),
    );
    this.#dattn = p.levelAttn.map((a, i) => (a ? attn(`dattn.${i}`) : null));
    this.#mid1 = new ResBlock(store, "mid1", g, false);
    this.#attn = p.midAttn ? attn("attn") : null;
    this.#mid2 = new ResBlock(store, "mid2", g, false);
    this.#up = p.up.map(([ci, co], k) => new ResBlock(store, `up.${k}`, g, ci !== co));
    this.#us = Array.from(
      { length: L - 1 },
      (_, k) => new Conv2d(store, `us.${k}`, { padding: 1 }),
    );
    this.#uattn = p.up.map((_, k) => (k > 0 && p.levelAttn[L - 1 - k] ? attn(`uattn.${k}`) : null));
    this.#outn = new GroupNorm(store, "outn", g);
    this.#outc = new Conv2d(store, "outc", { padding: 1 });
  }

  /** The configuration. */
  get config(): UNetConfig {
    return this.#config;
  }

  /** eps(x, t) for x [B, channels, imageSize, imageSize] and t [B] (1..T as floats). */
  forward(x: Tensor, t: Tensor): Tensor {
    const c = this.#config, L = c.mults.length;
    const want = [c.channels, c.imageSize, c.imageSize];
    if (x.shape.length !== 4 || x.shape.slice(1).some((d, i) => d !== want[i])) {
      throw new RangeError(`unet: x must be [B, ${want}], got [${x.shape}]`);
    }
    if (t.size !== x.shape[0]) {
      throw new RangeError(`unet: t has ${t.size} entries for a batch of ${x.shape[0]}`);
    }
    const te = this.#tmlp2.forward(silu(this.#tmlp0.forward(timestepEmbedding(t, c.base))));
    let h = this.#inc.forward(x);
    const hs: Tensor[] = [];
    for (let i = 0; i < L; i++) {
      h = this.#down[i].forward(h, te);
      if (i < L - 1) {
        const a = this.#dattn[i];
        if (a) h = a.forward(h);
      }
      hs.push(h);
      if (i < L - 1) h = this.#ds[i].forward(h);
    }
    h = this.#mid1.forward(h, te);
    if (this.#attn) h = this.#attn.forward(h);
    h = this.#mid2.forward(h, te);
    for (let k = 0; k < L; k++) {
      h = this.#up[k].forward(concat([h, hs.pop()!], 1), te);
      const a = this.#uattn[k];
      if (a) h = a.forward(h);
      if (k < L - 1) h = this.#us[k].forward(upsampleNearest(h, 2));
    }
    return this.#outc.forward(silu(this.#outn.forward(h)));
  }
}

/**
 * A diffusion model: its configuration (network, schedule, prediction), its weights in one flat
 * buffer, and optionally an exponential moving average of them.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { makeSchedule, type Schedule, type ScheduleConfig } from "./diffusion/schedule.ts";
import type { Prediction } from "./diffusion/parameterization.ts";
import { buildNetwork, type NetworkConfig, networkSpecs } from "./models/registry.ts";
import type { Network } from "./models/network.ts";
import { ParamLayout, ParamStore } from "./nn/params.ts";
import type { AdamState } from "./optim/adam.ts";
import type { TimestepStats } from "./diffusion/timestep_sampler.ts";
import { Denoiser } from "./diffusion/denoiser.ts";
import type { ObjectiveKind } from "./diffusion/score_matching.ts";
import { type Tensor, tensor } from "./tensor.ts";

/** Everything that defines a model apart from its weights; saved in every checkpoint. */
export interface DiffusionConfig {
  /** The denoising network. */
  network: NetworkConfig;
  /** The noise schedule. */
  schedule: ScheduleConfig;
  /** What the network predicts. */
  prediction: Prediction;
  /** Shape of one sample, e.g. [2] for 2-D points. */
  sampleShape: number[];
  /**
   * The training objective. Absent (every file written before it, and every DDPM model): "ddpm",
   * the network predicts `prediction`. "dsm": a score model trained by denoising score matching
   * over the geometric levels of its "ve" schedule (src/diffusion/score_matching.ts); its network
   * outputs sigma times the score, `prediction` is "epsilon" and unused, and it samples with
   * annealed Langevin dynamics (or any sampler, through the exact VE -> VP change of coordinates).
   */
  objective?: ObjectiveKind;
}

/** Which weights to use: the trained ones, or their exponential moving average. */
export type WeightsChoice = "raw" | "ema";

/** A diffusion model on a backend. */
export class DiffusionModel {
  /** The configuration. */
  readonly config: DiffusionConfig;
  /** The backend holding the weights. */
  readonly backend: Backend;
  /** The schedule built from the configuration. */
  readonly schedule: Schedule;
  /** Where each named tensor lives in the flat buffers. */
  readonly layout: ParamLayout;
  /** The trained weights (with a gradient buffer). */
  readonly params: ParamStore;
  /** The EMA weights, when kept. */
  readonly ema: ParamStore | null;
  /** Optimizer steps taken so far. */
  stepsTrained = 0;
  /**
   * The optimizer's state (Adam moments and step count, flat in the parameter layout) when the
   * model was trained or loaded from a checkpoint that holds it; `train({ resume })` continues
   * from it. Null for a model without one.
   */
  optimizer: AdamState | null = null;
  /**
   * The per-timestep loss statistics of importance-sampled training (`timestepSampling:
   * "importance"`), saved with the optimizer state so that a resumed run draws the same timesteps.
   * Null when the model was trained with uniform timesteps.
   */
  timestepStats: TimestepStats | null = null;

  /** A model whose weights are `values` (flat, layout order), with EMA weights when given. */
  constructor(
    config: DiffusionConfig,
    backend: Backend,
    values: ArrayLike<number>,
    emaValues: ArrayLike<number> | null,
  ) {
    this.config = config;
    this.backend = backend;
    this.schedule = makeSchedule(config.schedule);
    this.layout = new ParamLayout(networkSpecs(config.network));
    this.params = new ParamStore(
      backend,
      this.layout,
      backend.upload(values),
      backend.alloc(this.layout.length),
    );
    this.ema = emaValues
      ? new ParamStore(backend, this.layout, backend.upload(emaValues), null)
      : null;
  }

  /**
   * True for a model with learned variances (`train({ learnSigma: true })`, recorded as
   * `learnSigma: true` in the network's configuration): its network outputs eps and v.
   */
  get learnSigma(): boolean {
    return this.config.network.learnSigma === true;
  }

  /** The network with the chosen weights ("ema" falls back to raw when no EMA is kept). */
  network(weights: WeightsChoice = "ema"): Network {
    return buildNetwork(
      this.config.network,
      weights === "ema" && this.ema ? this.ema : this.params,
    );
  }

  /**
   * The model as the samplers see it, with the chosen weights: the raw output, the x0 and eps
   * estimates and the score at any model time t in [1, T] (x0 clamped to [-clip, clip] when set).
   * A score model's (objective "dsm") is read in its variance-exploding coordinates; a
   * learned-variance model's output is split into eps and v (an estimate's `v`).
   */
  denoiser(weights: WeightsChoice = "ema", clip: number | null = null): Denoiser {
    const net = this.network(weights), be = this.backend;
    return new Denoiser(
      (x, t) => net.forward(x, tensor(be, new Array<number>(x.shape[0]).fill(t), [x.shape[0]])),
      this.schedule,
      this.config.prediction,
      clip,
      this.config.objective ?? "ddpm",
      this.learnSigma,
    );
  }

  /**
   * The score grad log p_t(x) = -eps(x, t) / sigma_t of the model at model time t in [1, T] (one
   * network call; the EMA weights unless told otherwise). Differentiable in x. For a score model
   * (objective "dsm") it is the network's output / sigma_t at level t, x in the variance-exploding
   * coordinates x0 + sigma_t z.
   */
  score(x: Tensor, t: number, weights: WeightsChoice = "ema"): Tensor {
    return this.denoiser(weights).score(x, t);
  }

  /** The named weights as host arrays (state_dict names and shapes). */
  async weights(which: WeightsChoice = "raw"): Promise<Map<string, Float32Array>> {
    const store = which === "ema" && this.ema ? this.ema : this.params;
    const flat = await this.backend.read(store.values);
    const out = new Map<string, Float32Array>();
    for (const e of this.layout.entries) {
      out.set(e.name, Float32Array.from(flat.subarray(e.offset, e.offset + e.size)));
    }
    return out;
  }
}

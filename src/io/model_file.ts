/**
 * Saving and loading models as safetensors: the weights under their PyTorch state_dict names, the
 * EMA weights under `ema.<name>`, and the configuration in `__metadata__`. Written atomically.
 *
 * @module
 */

import { type BackendChoice, selectBackend } from "../backends/registry.ts";
import { makeBetas } from "../diffusion/schedule.ts";
import { checkChoice, FileFormatError } from "../errors.ts";
import { PREDICTIONS } from "../diffusion/parameterization.ts";
import { OBJECTIVES } from "../diffusion/score_matching.ts";
import { type DiffusionConfig, DiffusionModel } from "../model.ts";
import { networkSampleShape, networkSpecs } from "../models/registry.ts";
import { ParamLayout } from "../nn/params.ts";
import type { Storage } from "../backend.ts";
import { LOSS_RATE, timestepBins } from "../diffusion/timestep_sampler.ts";
import { writeFileAtomic } from "./atomic.ts";
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from "./safetensors.ts";

/** The metadata value that marks a model file of this library. */
export const MODEL_FORMAT = "deno-diffusion/model@1";

/** Prefix of the EMA copies of the weights in a model file. */
export const EMA_PREFIX = "ema.";

/** Prefixes of the optimizer's first and second moments in a model file. */
export const OPTIMIZER_PREFIXES = { m: "optimizer.m.", v: "optimizer.v." } as const;

/** Names of the importance sampler's per-bin statistics in a model file (with the optimizer's). */
export const TIMESTEP_STATS_NAMES = { loss: "timesteps.loss", count: "timesteps.count" } as const;

/** Options of {@link saveModel}. */
export interface SaveOptions {
  /**
   * Also write the optimizer's state (Adam moments and step, and the timestep sampler's statistics
   * when the model has them), so that `train({ resume })` can continue exactly; default true when
   * the model has it. The file is then three times larger.
   */
  optimizer?: boolean;
  /** Extra metadata strings (e.g. the training settings); the library's own keys win. */
  metadata?: Record<string, string>;
  /**
   * Write only these weights, under the plain state_dict names and without optimizer state: a
   * file PyTorch's `load_state_dict` takes as it is (e.g. `only: "ema"` to export the EMA weights).
   */
  only?: "raw" | "ema";
}

/** Named tensors of a flat buffer in the model's layout. */
async function named(model: DiffusionModel, flat: Storage): Promise<Map<string, Float32Array>> {
  const all = await model.backend.read(flat), out = new Map<string, Float32Array>();
  for (const e of model.layout.entries) {
    out.set(e.name, Float32Array.from(all.subarray(e.offset, e.offset + e.size)));
  }
  return out;
}

/** The bytes of a model file. */
export async function encodeModel(
  model: DiffusionModel,
  options: SaveOptions = {},
): Promise<Uint8Array> {
  const tensors = new Map<string, NamedTensor>();
  const shapes = new Map(model.layout.entries.map((e) => [e.name, e.shape]));
  const put = (prefix: string, m: Map<string, Float32Array>) => {
    for (const [name, data] of m) tensors.set(prefix + name, { shape: shapes.get(name)!, data });
  };
  if (options.only) {
    put("", await model.weights(options.only));
    return encodeSafetensors(tensors, {
      ...options.metadata,
      format: MODEL_FORMAT,
      config: JSON.stringify(model.config),
      steps_trained: String(model.stepsTrained),
      weights: options.only === "ema" && model.ema ? "ema" : "raw",
    });
  }
  put("", await model.weights("raw"));
  if (model.ema) put(EMA_PREFIX, await model.weights("ema"));
  const metadata: Record<string, string> = {
    ...options.metadata,
    format: MODEL_FORMAT,
    config: JSON.stringify(model.config),
    steps_trained: String(model.stepsTrained),
  };
  const opt = model.optimizer;
  if (opt && (options.optimizer ?? true)) {
    put(OPTIMIZER_PREFIXES.m, await named(model, opt.m));
    put(OPTIMIZER_PREFIXES.v, await named(model, opt.v));
    metadata.optimizer_step = String(opt.step);
    const stats = model.timestepStats;
    if (stats) {
      const shape = [stats.loss.length];
      tensors.set(TIMESTEP_STATS_NAMES.loss, { shape, data: Float32Array.from(stats.loss) });
      tensors.set(TIMESTEP_STATS_NAMES.count, { shape, data: Float32Array.from(stats.count) });
    }
  }
  return encodeSafetensors(tensors, metadata);
}

/** Saves a model to `path` (a `.safetensors` file), atomically. */
export async function saveModel(
  model: DiffusionModel,
  path: string,
  options: SaveOptions = {},
): Promise<void> {
  await writeFileAtomic(path, await encodeModel(model, options));
}

/** Rebuilds a model from model-file bytes; `path` names the file in errors. */
export async function decodeModel(
  bytes: Uint8Array,
  path: string,
  backend: BackendChoice = "auto",
): Promise<DiffusionModel> {
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  const bad = (problem: string) => new FileFormatError(path, problem);
  if (metadata.format !== MODEL_FORMAT) {
    throw bad(
      `not a model file of this library (metadata format is ${
        JSON.stringify(metadata.format ?? null)
      }, ` +
        `expected "${MODEL_FORMAT}"); save models with saveModel`,
    );
  }
  let config: DiffusionConfig;
  let layout: ParamLayout;
  try {
    config = JSON.parse(metadata.config);
    makeBetas(config.schedule);
    checkChoice("prediction", config.prediction, PREDICTIONS);
    // Absent in files before score models: "ddpm". A score model's levels are a "ve" schedule's,
    // checked by makeBetas (sigmaMin < sigmaMax, both positive and finite, T in [2, MAX_T]).
    if (config.objective !== undefined) {
      checkChoice("objective", config.objective, OBJECTIVES);
      if (config.objective === "dsm" && config.schedule.kind !== "ve") {
        throw new Error(
          `objective "dsm" needs the noise levels of a "ve" schedule, got schedule kind ${
            JSON.stringify(config.schedule.kind)
          }`,
        );
      }
    }
    // learnSigma (checked as true or absent by the network's own checks) learns the variance
    // beside an eps prediction, under the DDPM objective.
    const learnSigma = (config.network as { learnSigma?: unknown })?.learnSigma;
    if (learnSigma !== undefined) {
      if (config.prediction !== "epsilon") {
        throw new Error(
          `network.learnSigma needs prediction "epsilon", got ${JSON.stringify(config.prediction)}`,
        );
      }
      if ((config.objective ?? "ddpm") !== "ddpm") {
        throw new Error(`network.learnSigma needs objective "ddpm", got "${config.objective}"`);
      }
    }
    layout = new ParamLayout(networkSpecs(config.network));
    const want = networkSampleShape(config.network);
    if (config.sampleShape.join() !== want.join()) {
      throw new Error(`sampleShape [${config.sampleShape}] does not match the network's [${want}]`);
    }
  } catch (e) {
    throw bad(`its configuration is unreadable: ${(e as Error).message}`);
  }
  const prefixes = ["", EMA_PREFIX, OPTIMIZER_PREFIXES.m, OPTIMIZER_PREFIXES.v];
  const known = new Set(layout.entries.flatMap((e) => prefixes.map((p) => p + e.name)));
  for (const name of Object.values(TIMESTEP_STATS_NAMES)) known.add(name);
  for (const name of tensors.keys()) {
    if (!known.has(name)) throw bad(`tensor ${name} is not part of the configured network`);
  }
  const has = (prefix: string) => [...tensors.keys()].some((name) => name.startsWith(prefix));
  const flat = (prefix: string): Float32Array | null => {
    if (prefix && !has(prefix)) return null;
    const out = new Float32Array(layout.length);
    for (const e of layout.entries) {
      const t = tensors.get(prefix + e.name);
      if (!t) throw bad(`tensor ${prefix + e.name} is missing`);
      if (t.shape.join() !== e.shape.join()) {
        throw bad(
          `tensor ${prefix + e.name} has shape [${t.shape}], the configuration needs [${e.shape}]`,
        );
      }
      out.set(t.data, e.offset);
    }
    return out;
  };
  const raw = flat("")!, ema = flat(EMA_PREFIX);
  for (const [values, prefix] of [[raw, ""], [ema, EMA_PREFIX]] as const) {
    const i = values ? values.findIndex((v) => !Number.isFinite(v)) : -1;
    if (i >= 0) {
      const e = layout.entries.find((e) => i >= e.offset && i < e.offset + e.size)!;
      throw bad(
        `tensor ${prefix + e.name} holds ${values![i]}: the run that wrote it diverged; resume ` +
          `from an earlier checkpoint with a lower learning rate`,
      );
    }
  }
  const steps = Number(metadata.steps_trained ?? "0");
  if (!Number.isSafeInteger(steps) || steps < 0) {
    throw bad(
      `steps_trained is ${JSON.stringify(metadata.steps_trained)}, not a non-negative integer`,
    );
  }
  const m = flat(OPTIMIZER_PREFIXES.m), v = flat(OPTIMIZER_PREFIXES.v);
  if ((m === null) !== (v === null)) throw bad("it holds only one of the optimizer's two moments");
  const optStep = Number(metadata.optimizer_step ?? "0");
  if (m && (!Number.isSafeInteger(optStep) || optStep < 0)) {
    throw bad(
      `optimizer_step is ${JSON.stringify(metadata.optimizer_step)}, not a non-negative integer`,
    );
  }
  const statsLoss = tensors.get(TIMESTEP_STATS_NAMES.loss);
  const statsCount = tensors.get(TIMESTEP_STATS_NAMES.count);
  if ((statsLoss === undefined) !== (statsCount === undefined)) {
    throw bad("it holds only one of the timestep sampler's two statistics");
  }
  const bins = timestepBins(config.schedule.T);
  for (const name of Object.values(TIMESTEP_STATS_NAMES)) {
    const t = tensors.get(name);
    if (t && t.shape.join() !== String(bins)) {
      throw bad(`tensor ${name} has shape [${t.shape}], the schedule's T needs [${bins}]`);
    }
  }
  if (
    statsLoss && statsCount &&
    (statsLoss.data.some((x) => !(x >= 0 && x < Infinity)) ||
      statsCount.data.some((c) => !Number.isInteger(c) || c < 0 || c > 1 / LOSS_RATE))
  ) {
    throw bad(
      `the timestep sampler's statistics are out of range (losses must be finite and >= 0, ` +
        `counts integers in [0, ${1 / LOSS_RATE}])`,
    );
  }
  const be = (await selectBackend(backend)).backend;
  const model = new DiffusionModel(config, be, raw, ema);
  if (statsLoss && statsCount) {
    model.timestepStats = {
      loss: Float32Array.from(statsLoss.data),
      count: Float32Array.from(statsCount.data),
    };
  }
  model.stepsTrained = steps;
  if (m && v) model.optimizer = { step: optStep, m: be.upload(m), v: be.upload(v) };
  return model;
}

/** The `__metadata__` strings of a model file (its configuration, steps, extra keys). */
export async function readModelMetadata(path: string): Promise<Record<string, string>> {
  return decodeSafetensors(await readModelBytes(path), path).metadata;
}

async function readModelBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FileFormatError(path, "no such file");
    if (e instanceof Deno.errors.IsADirectory) {
      throw new FileFormatError(path, "is a folder, not a model file");
    }
    throw new FileFormatError(path, `cannot be read: ${(e as Error).message}`);
  }
}

/** Loads a model saved by {@link saveModel}. */
export async function loadModel(
  path: string,
  backend: BackendChoice = "auto",
): Promise<DiffusionModel> {
  return decodeModel(await readModelBytes(path), path, backend);
}

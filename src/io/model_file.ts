/**
 * Saving and loading models as safetensors: the weights under their PyTorch state_dict names, the
 * EMA weights under `ema.<name>`, and the configuration in `__metadata__`. Written atomically.
 *
 * @module
 */

import { type BackendChoice, selectBackend } from "../backends/select.ts";
import { makeBetas } from "../diffusion/schedule.ts";
import { checkChoice, FileFormatError } from "../errors.ts";
import { PREDICTIONS } from "../diffusion/parameterization.ts";
import { type DiffusionConfig, DiffusionModel } from "../model.ts";
import { networkSampleShape, networkSpecs } from "../models/registry.ts";
import { ParamLayout } from "../nn/params.ts";
import { writeFileAtomic } from "./atomic.ts";
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from "./safetensors.ts";

/** The metadata value that marks a model file of this library. */
export const MODEL_FORMAT = "deno-diffusion/model@1";

/** Prefix of the EMA copies of the weights in a model file. */
export const EMA_PREFIX = "ema.";

/** The bytes of a model file. */
export async function encodeModel(model: DiffusionModel): Promise<Uint8Array> {
  const tensors = new Map<string, NamedTensor>();
  const shapes = new Map(model.layout.entries.map((e) => [e.name, e.shape]));
  for (const [name, data] of await model.weights("raw")) {
    tensors.set(name, { shape: shapes.get(name)!, data });
  }
  if (model.ema) {
    for (const [name, data] of await model.weights("ema")) {
      tensors.set(EMA_PREFIX + name, { shape: shapes.get(name)!, data });
    }
  }
  return encodeSafetensors(tensors, {
    format: MODEL_FORMAT,
    config: JSON.stringify(model.config),
    steps_trained: String(model.stepsTrained),
  });
}

/** Saves a model to `path` (a `.safetensors` file), atomically. */
export async function saveModel(model: DiffusionModel, path: string): Promise<void> {
  await writeFileAtomic(path, await encodeModel(model));
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
    layout = new ParamLayout(networkSpecs(config.network));
    const want = networkSampleShape(config.network);
    if (config.sampleShape.join() !== want.join()) {
      throw new Error(`sampleShape [${config.sampleShape}] does not match the network's [${want}]`);
    }
  } catch (e) {
    throw bad(`its configuration is unreadable: ${(e as Error).message}`);
  }
  const known = new Set(layout.entries.flatMap((e) => [e.name, EMA_PREFIX + e.name]));
  for (const name of tensors.keys()) {
    if (!known.has(name)) throw bad(`tensor ${name} is not part of the configured network`);
  }
  const hasEma = [...tensors.keys()].some((name) => name.startsWith(EMA_PREFIX));
  const flat = (prefix: string): Float32Array | null => {
    if (prefix && !hasEma) return null;
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
  const steps = Number(metadata.steps_trained ?? "0");
  if (!Number.isSafeInteger(steps) || steps < 0) {
    throw bad(
      `steps_trained is ${JSON.stringify(metadata.steps_trained)}, not a non-negative integer`,
    );
  }
  const model = new DiffusionModel(config, (await selectBackend(backend)).backend, raw, ema);
  model.stepsTrained = steps;
  return model;
}

/** Loads a model saved by {@link saveModel}. */
export async function loadModel(
  path: string,
  backend: BackendChoice = "auto",
): Promise<DiffusionModel> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FileFormatError(path, "no such file");
    if (e instanceof Deno.errors.IsADirectory) {
      throw new FileFormatError(path, "is a folder, not a model file");
    }
    throw new FileFormatError(path, `cannot be read: ${(e as Error).message}`);
  }
  return decodeModel(bytes, path, backend);
}

/**
 * The checks of `sample`'s conditioning and editing options (classes, classifier-free and
 * classifier guidance, SDEdit, inpainting) against the model, before any work is done: each bad
 * option ends in one OptionError naming it.
 *
 * @module
 */

import type { EditInputs } from "./diffusion/editing.ts";
import type { Guidance } from "./diffusion/guidance.ts";
import type { Classifier } from "./eval/classifier.ts";
import { checkInt, checkNumber, OptionError } from "./errors.ts";
import type { DiffusionModel } from "./model.ts";
import type { SampleOptions } from "./sample.ts";
import { sizeOf } from "./shape.ts";

/**
 * The guidance scale `sample` uses with `classes` when none is given: on the conditional MNIST
 * model of `train_mnist.ts --conditional`, w = 2 gives 99.9% of samples as the digit asked for at a
 * Fréchet distance of 51 (w = 1: 95.8%, 22; w = 3: 100%, 94, the variety gone; docs/results.md).
 */
export const DEFAULT_GUIDANCE_SCALE = 2;

/** The classifier guidance scale `sample` uses with `classifier` when none is given. */
export const DEFAULT_CLASSIFIER_SCALE = 3;

/** The class labels, guidance and edit of a sampling run, checked. */
export interface Conditioning {
  /** One label a sample (as floats), or null to sample unconditionally. */
  labels: Float32Array | null;
  /** The guidance, or null for one plain network call a step. */
  guidance: Guidance | null;
  /** Classifier guidance, or null. */
  classifier: { model: Classifier; scale: number } | null;
  /** The edit, or null to sample from noise. */
  edit: (EditInputs & { strength: number }) | null;
}

function checkFiniteIn(name: string, v: Float32Array, lo: number, hi: number): void {
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= lo && v[i] <= hi)) {
      throw new OptionError(`${name}[${i}] is ${v[i]}; values must be finite, in [${lo}, ${hi}]`);
    }
  }
}

/** Checks the conditioning and editing options, throwing an OptionError naming the bad one. */
export function resolveConditioning(
  model: DiffusionModel,
  o: SampleOptions,
  count: number,
): Conditioning {
  const guide = o.classifier ? checkClassifier(model, o) : null;
  const classes = guide ? guide.model.config.classes : model.config.network.classes ?? 0;
  let labels: Float32Array | null = null, guidance: Guidance | null = null;
  if (o.classes === undefined) {
    for (
      const k of ["guidanceScale", "guidanceRescale", "classifier", "classifierScale"] as const
    ) {
      if (o[k] !== undefined) throw new OptionError(`${k} needs classes: say which to sample`);
    }
  } else {
    if (!classes) {
      throw new OptionError(
        "classes: the model is unconditional (trained without data.labels); drop classes and guidance",
      );
    }
    const list = typeof o.classes === "number" ? new Array(count).fill(o.classes) : o.classes;
    if (list.length !== count) {
      throw new OptionError(
        `classes has ${list.length} entries for ${count} samples; give one or count`,
      );
    }
    list.forEach((c, i) => checkInt(`classes[${i}]`, c, 0, classes - 1));
    labels = Float32Array.from(list);
    if (!guide) {
      const scale = o.guidanceScale ?? DEFAULT_GUIDANCE_SCALE, rescale = o.guidanceRescale ?? 0;
      checkNumber("guidanceScale", scale, { ge: 0 });
      checkNumber("guidanceRescale", rescale, { ge: 0, le: 1 });
      guidance = scale === 1 && rescale === 0 ? null : { scale, rescale };
    }
  }
  if (o.init === undefined) {
    for (const k of ["strength", "mask", "resampling"] as const) {
      if (o[k] !== undefined) throw new OptionError(`${k} edits a given sample: pass init too`);
    }
    return { labels, guidance, classifier: guide, edit: null };
  }
  const per = sizeOf(model.config.sampleShape), shape = `[${model.config.sampleShape}]`;
  if (!(o.init instanceof Float32Array) || o.init.length !== count * per) {
    throw new OptionError(
      `init must be a Float32Array of count x ${shape} = ${count * per} values, got ${
        o.init instanceof Float32Array ? o.init.length : typeof o.init
      }`,
    );
  }
  checkFiniteIn("init", o.init, -Infinity, Infinity);
  if (o.strength === undefined && o.mask === undefined) {
    throw new OptionError("init needs strength (SDEdit) or mask (inpainting)");
  }
  const strength = o.strength ?? 1;
  checkNumber("strength", strength, { gt: 0, le: 1 });
  if (o.mask !== undefined) {
    if (
      !(o.mask instanceof Float32Array) || (o.mask.length !== per && o.mask.length !== count * per)
    ) {
      throw new OptionError(
        `mask must be a Float32Array of one sample's ${shape} (${per} values) or one a sample (${
          count * per
        }), got ${o.mask instanceof Float32Array ? o.mask.length : typeof o.mask}`,
      );
    }
    checkFiniteIn("mask", o.mask, 0, 1);
  }
  if (o.resampling !== undefined) {
    if (o.mask === undefined) throw new OptionError("resampling is for inpainting: pass a mask");
    checkInt("resampling", o.resampling, 1, 1000);
  }
  return {
    labels,
    guidance,
    classifier: guide,
    edit: { init: o.init, mask: o.mask, strength, resampling: o.resampling },
  };
}

/** Checks that `o.classifier` can guide `model`, returning it with its scale. */
function checkClassifier(model: DiffusionModel, o: SampleOptions): Conditioning["classifier"] {
  const c = o.classifier!, cfg = c.config;
  for (const k of ["guidanceScale", "guidanceRescale"] as const) {
    if (o[k] !== undefined) {
      throw new OptionError(
        `${k} is classifier-free guidance; with a classifier use classifierScale`,
      );
    }
  }
  if (!cfg.noise) {
    throw new OptionError(
      "classifier: it reads clean images; classifier guidance needs one trained on noisy images " +
        "(trainClassifier({ noise: the model's schedule }), scripts/train_classifier.ts)",
    );
  }
  const want = [cfg.channels, cfg.imageSize, cfg.imageSize].join();
  if (want !== model.config.sampleShape.join()) {
    throw new OptionError(
      `classifier: it reads images [${want}], the model makes [${model.config.sampleShape}]`,
    );
  }
  if (JSON.stringify(cfg.noise) !== JSON.stringify(model.config.schedule)) {
    throw new OptionError(
      `classifier: it was trained on the schedule ${JSON.stringify(cfg.noise)}, the model uses ${
        JSON.stringify(model.config.schedule)
      }; train one on the model's`,
    );
  }
  if (c.backend !== model.backend) {
    throw new OptionError(
      "classifier: it lives on another backend than the model; load it with " +
        "loadClassifier(path, model.backend)",
    );
  }
  const scale = o.classifierScale ?? DEFAULT_CLASSIFIER_SCALE;
  checkNumber("classifierScale", scale, { ge: 0 });
  return { model: c, scale };
}

/**
 * The class and guidance flags of the scripts that sample toward a class: `--class N` (every sample
 * a digit N) or `--class all` (a row of each class); classifier-free guidance of conditional models
 * (`--guidance W`, `--guidance-rescale P`) or classifier guidance of any model (`--guide PATH`, `--guide-scale S`), parsed and checked against the model in one place.
 *
 * @module
 */

import { type DiffusionModel, OptionError, type SampleOptions } from "../mod.ts";
import { loadClassifier } from "../metrics.ts";
import { checkNumber } from "../io.ts";
import { intFlag, numberFlag } from "./cli.ts";

/** The parseArgs specs of the guidance flags. */
export const GUIDANCE_FLAG_SPECS = {
  class: { type: "string" },
  guidance: { type: "string" },
  "guidance-rescale": { type: "string" },
  guide: { type: "string" },
  "guide-scale": { type: "string" },
} as const;

/** The guidance flags' values as parseArgs returns them. */
export type GuidanceFlagValues = { [K in keyof typeof GUIDANCE_FLAG_SPECS]?: string };

/** The help lines of the guidance flags, padded to `width`. */
export function guidanceHelp(width: number): string {
  const line = (flag: string, text: string) => `  ${flag.padEnd(width - 2)}${text}`;
  return [
    line(
      "--class N|all",
      "conditional models: every sample of class N, or all: one row a class (default: each " +
        "class in turn, unguided)",
    ),
    line(
      "--guidance W",
      "classifier-free guidance scale with --class (default 2; 0: off, 1: none)",
    ),
    line("--guidance-rescale P", "guidance rescale in [0, 1] (default 0)"),
    line("--guide PATH", "classifier guidance with --class by a train_classifier.ts classifier"),
    line("--guide-scale S", "classifier guidance scale (default 3)"),
  ].join("\n");
}

/** What the guidance flags ask of `sample`, and the grid's columns for `--class all`. */
export interface GuidanceChoice {
  /** The options for `sample` (empty without --class). */
  options: Pick<
    SampleOptions,
    "classes" | "guidanceScale" | "guidanceRescale" | "classifier" | "classifierScale"
  >;
  /** With --class all: the samples per class (one grid row each); otherwise null. */
  perClass: number | null;
}

/**
 * The sampling options of the guidance flags for `count` samples of `model`: an OptionError for a
 * class flag on an unconditional model, a class outside the model's, `all` with a count that is
 * not a multiple of the classes, or guidance without --class.
 */
export async function guidanceFromFlags(
  f: GuidanceFlagValues,
  model: DiffusionModel,
  count: number,
): Promise<GuidanceChoice> {
  if (f.class === undefined) {
    for (const k of ["guidance", "guidance-rescale", "guide", "guide-scale"] as const) {
      if (f[k] !== undefined) throw new OptionError(`--${k} needs --class (a digit, or all)`);
    }
    // A conditional model without --class: each class in turn, unguided (w = 1), a sample of
    // the whole data distribution with its classes evenly spread.
    const classes = model.config.network.classes ?? 0;
    if (!classes) return { options: {}, perClass: null };
    return {
      options: {
        classes: Array.from({ length: count }, (_, i) => i % classes),
        guidanceScale: 1,
      },
      perClass: null,
    };
  }
  const options: GuidanceChoice["options"] = {};
  if (f.guide !== undefined) {
    for (const k of ["guidance", "guidance-rescale"] as const) {
      if (f[k] !== undefined) {
        throw new OptionError(
          `--${k} is classifier-free guidance; with --guide use --guide-scale`,
        );
      }
    }
    options.classifier = (await loadClassifier(f.guide, model.backend)).model;
    if (f["guide-scale"] !== undefined) {
      options.classifierScale = numberFlag("guide-scale", f["guide-scale"]);
      checkNumber("--guide-scale", options.classifierScale, { ge: 0 });
    }
  } else if (f["guide-scale"] !== undefined) {
    throw new OptionError("--guide-scale needs --guide PATH");
  }
  const classes = options.classifier?.config.classes ?? model.config.network.classes ?? 0;
  if (!classes) {
    throw new OptionError(
      "--class: the model is unconditional; train one with train_mnist.ts --conditional, " +
        "or guide it with --guide",
    );
  }
  if (f.guidance !== undefined) {
    options.guidanceScale = numberFlag("guidance", f.guidance);
    checkNumber("--guidance", options.guidanceScale, { ge: 0 });
  }
  if (f["guidance-rescale"] !== undefined) {
    options.guidanceRescale = numberFlag("guidance-rescale", f["guidance-rescale"]);
    checkNumber("--guidance-rescale", options.guidanceRescale, { ge: 0, le: 1 });
  }
  if (f.class === "all") {
    if (count % classes !== 0) {
      throw new OptionError(
        `--class all draws one row a class: --count must be a multiple of ${classes}, got ${count}`,
      );
    }
    const per = count / classes;
    options.classes = Array.from({ length: count }, (_, i) => Math.floor(i / per));
    return { options, perClass: per };
  }
  options.classes = intFlag("class", f.class, 0, 0, classes - 1);
  return { options, perClass: null };
}

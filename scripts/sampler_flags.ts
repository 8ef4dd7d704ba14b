/**
 * The sampler flags every script that samples shares: `--sampler` and `--steps`, and each sampler's
 * own (`--eta`, `--spacing`, `--variance`, `--predictor`, `--corrector-steps`, `--snr`,
 * `--langevin-steps`, `--step-size`), parsed and checked in one place. A flag the chosen sampler
 * does not read is an error, not silently ignored.
 *
 * @module
 */

import {
  INTEGER_SPACINGS,
  OptionError,
  SAMPLER_VARIANCES,
  type SamplerKind,
  type SamplerOptions,
  SAMPLERS,
  type Spacing,
  SPACINGS,
} from "../mod.ts";
import { checkChoice, checkInt, checkNumber } from "../io.ts";
import { intFlag, numberFlag } from "./cli.ts";

/** The parseArgs specs of the sampler flags (the steps flag is each script's: see below). */
export const SAMPLER_FLAG_SPECS = {
  sampler: { type: "string" },
  variance: { type: "string" },
  eta: { type: "string" },
  spacing: { type: "string" },
  predictor: { type: "string" },
  "corrector-steps": { type: "string" },
  snr: { type: "string" },
  "langevin-steps": { type: "string" },
  "step-size": { type: "string" },
} as const;

/** The sampler flags' values as parseArgs returns them. */
export type SamplerFlagValues = { [K in keyof typeof SAMPLER_FLAG_SPECS]?: string };

/** Which samplers read each sampler-specific flag. */
const READERS: Record<Exclude<keyof SamplerFlagValues, "sampler">, SamplerKind[]> = {
  variance: ["ddpm", "pc"],
  eta: ["ddim"],
  spacing: SAMPLERS.filter((s) => s !== "pc"),
  predictor: ["pc"],
  "corrector-steps": ["pc"],
  snr: ["pc"],
  "langevin-steps": ["langevin"],
  "step-size": ["langevin"],
};

/** Default steps of each sampler in the scripts (network calls in parentheses). */
export const DEFAULT_STEPS: Record<SamplerKind, number> = {
  ddpm: 100,
  ddim: 50,
  heun: 50, // 99 calls
  euler: 50,
  "euler-maruyama": 100,
  pc: 50, // 99 calls with one corrector step
  langevin: 50, // 101 calls with two steps a level
  "dpm++2m": 20,
  "dpm++2m-sde": 20,
};

/**
 * The help lines of the sampler flags, `indent` wide before each description; `stepsFlag` names the
 * script's sampling-steps flag.
 */
export function samplerHelp(defaultSampler: SamplerKind, indent = 21, stepsFlag = "steps"): string {
  const line = (flag: string, text: string) => `  ${flag.padEnd(indent - 2)}${text}`;
  return [
    line("--sampler NAME", `${SAMPLERS.join(", ")} (default ${defaultSampler})`),
    line(
      `--${stepsFlag} N`,
      `sampling steps, at most T (default ${
        SAMPLERS.map((s) => `${s} ${DEFAULT_STEPS[s]}`).join(", ")
      })`,
    ),
    line("--eta X", "ddim's noise: 0 deterministic (default), 1 ancestral"),
    line(
      "--spacing NAME",
      "linspace, leading, trailing, time, logsnr or karras (ddpm and ddim: the first three)",
    ),
    line(
      "--variance NAME",
      "ddpm's step variance: posterior (default), beta, or learned (a --learn-sigma model's own, " +
        "its default)",
    ),
    line("--predictor NAME", "pc's predictor: ddpm (default), euler-maruyama or euler"),
    line("--corrector-steps N", "pc's Langevin corrector steps after each step (default 1)"),
    line("--snr R", "pc's corrector signal-to-noise ratio (default 0.05)"),
    line("--langevin-steps N", "langevin's steps per noise level (default 2)"),
    line("--step-size X", "langevin's step relative to each level's variance (default 1)"),
  ].join("\n");
}

/**
 * The sampler, its steps (the text of the script's steps flag `stepsFlag`, checked against the
 * model's T) and its options from the flags; an OptionError naming the flag for a bad value or for
 * a flag the sampler does not read.
 */
export function samplerFromFlags(
  f: SamplerFlagValues,
  T: number,
  steps: { text: string | undefined; flag?: string },
  defaultSampler: SamplerKind = "ddpm",
): { sampler: SamplerKind; steps: number; options: SamplerOptions } {
  const sampler = (f.sampler ?? defaultSampler) as SamplerKind;
  checkChoice("--sampler", sampler, SAMPLERS);
  for (const [flag, readers] of Object.entries(READERS)) {
    if (f[flag as keyof SamplerFlagValues] !== undefined && !readers.includes(sampler)) {
      const [first, ...rest] = readers;
      throw new OptionError(
        `--${flag} is read only by --sampler ${readers.join(" or ")}; drop it or use ` +
          `--sampler ${first}${rest.length ? ` (or ${rest.join(", ")})` : ""} (now ${sampler})`,
      );
    }
  }
  const flag = steps.flag ?? "steps";
  const n = intFlag(flag, steps.text, Math.min(DEFAULT_STEPS[sampler], T), 1);
  if (n > T) throw new OptionError(`--${flag} must be at most the model's T = ${T}, got ${n}`);
  const options: SamplerOptions = {};
  if (f.variance !== undefined) {
    checkChoice("--variance", f.variance, SAMPLER_VARIANCES);
    options.variance = f.variance as SamplerOptions["variance"];
  }
  if (f.eta !== undefined) {
    options.eta = numberFlag("eta", f.eta);
    checkNumber("--eta", options.eta, { ge: 0 });
  }
  if (f.spacing !== undefined) {
    checkChoice("--spacing", f.spacing, SPACINGS);
    if (
      (sampler === "ddpm" || sampler === "ddim") && !INTEGER_SPACINGS.includes(f.spacing as Spacing)
    ) {
      throw new OptionError(
        `--spacing for --sampler ${sampler} must be one of ${
          INTEGER_SPACINGS.join(", ")
        } (it steps on the schedule's timesteps), got ${f.spacing}`,
      );
    }
    options.spacing = f.spacing as SamplerOptions["spacing"];
  }
  if (f.predictor !== undefined) {
    checkChoice("--predictor", f.predictor, ["ddpm", "euler-maruyama", "euler"] as const);
    options.predictor = f.predictor as SamplerOptions["predictor"];
  }
  if (f["corrector-steps"] !== undefined) {
    options.correctorSteps = numberFlag("corrector-steps", f["corrector-steps"]);
    checkInt("--corrector-steps", options.correctorSteps, 0, 100);
  }
  if (f.snr !== undefined) {
    options.snr = numberFlag("snr", f.snr);
    checkNumber("--snr", options.snr, { gt: 0 });
  }
  if (f["langevin-steps"] !== undefined) {
    options.langevinSteps = numberFlag("langevin-steps", f["langevin-steps"]);
    checkInt("--langevin-steps", options.langevinSteps, 1, 100);
  }
  if (f["step-size"] !== undefined) {
    options.stepSize = numberFlag("step-size", f["step-size"]);
    checkNumber("--step-size", options.stepSize, { gt: 0 });
  }
  return { sampler, steps: n, options };
}

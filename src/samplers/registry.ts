/**
 * The samplers by name. Each sampler is one file exporting a {@link SamplerDefinition}; this list is
 * the only place that names them, so a new sampler is a new file plus one line here, and
 * `sample()`, the scripts' `--sampler` flag and their help texts pick it up.
 *
 * @module
 */

import type { Prediction } from "../diffusion/parameterization.ts";
import type { Schedule } from "../diffusion/schedule.ts";
import type { ObjectiveKind } from "../diffusion/score_matching.ts";
import { ddim } from "./ddim.ts";
import { ddpm } from "./ddpm.ts";
import { dpmSolver, dpmSolverSde } from "./dpm_solver.ts";
import { euler } from "./euler.ts";
import { eulerMaruyama } from "./euler_maruyama.ts";
import { heun } from "./heun.ts";
import { annealedLangevin } from "./langevin.ts";
import { predictorCorrector } from "./predictor_corrector.ts";
import type { Sampler, SamplerDefinition, SamplerOptions } from "./sampler.ts";

/** Every sampler, by name. */
export const SAMPLER_DEFINITIONS = {
  ddpm,
  ddim,
  heun,
  euler,
  "euler-maruyama": eulerMaruyama,
  pc: predictorCorrector,
  langevin: annealedLangevin,
  "dpm++2m": dpmSolver,
  "dpm++2m-sde": dpmSolverSde,
} as const satisfies Record<string, SamplerDefinition>;

/** The samplers' names. */
export type SamplerKind = keyof typeof SAMPLER_DEFINITIONS;

/** Every sampler name, for validation of user options. */
export const SAMPLERS: readonly SamplerKind[] = Object.keys(SAMPLER_DEFINITIONS) as SamplerKind[];

/**
 * The sampler `kind` over `schedule` for a network predicting `prediction`, trained with
 * `objective` (default "ddpm"; "dsm": a score model, which annealed Langevin runs in its
 * variance-exploding coordinates).
 */
export function createSampler(
  kind: SamplerKind,
  schedule: Schedule,
  prediction: Prediction,
  options: SamplerOptions = {},
  objective: ObjectiveKind = "ddpm",
): Sampler {
  return SAMPLER_DEFINITIONS[kind].create(schedule, prediction, options, objective);
}

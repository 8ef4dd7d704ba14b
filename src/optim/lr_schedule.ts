/**
 * Learning-rate schedules: constant, or cosine decay, each after an optional linear warm-up.
 *
 * @module
 */

/** The shape of the learning rate over training. */
export type LrSchedule = "constant" | "cosine";

/** The valid schedules, for validation of user options. */
export const LR_SCHEDULES: readonly LrSchedule[] = ["constant", "cosine"];

/** Options of {@link learningRate}. */
export interface LrOptions {
  /** Peak learning rate. */
  lr: number;
  /** The schedule. */
  schedule: LrSchedule;
  /** Total steps. */
  steps: number;
  /** Linear warm-up steps from 0 to lr. */
  warmupSteps: number;
  /** Cosine floor as a fraction of lr (default 0). */
  minRatio?: number;
}

/** The learning rate at 1-based `step`. */
export function learningRate(step: number, o: LrOptions): number {
  if (o.warmupSteps > 0 && step <= o.warmupSteps) return (o.lr * step) / o.warmupSteps;
  if (o.schedule === "constant") return o.lr;
  const span = Math.max(1, o.steps - o.warmupSteps);
  const p = Math.min(1, (step - o.warmupSteps) / span);
  const floor = o.minRatio ?? 0;
  return o.lr * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * p)));
}

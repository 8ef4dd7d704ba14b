/**
 * The errors a user can cause and fix: a bad option, a bad file, a failed run. Scripts print their
 * message alone (no stack trace) and exit non-zero.
 *
 * @module
 */

/** An option or argument outside what the library accepts; the message names it and the fix. */
export class OptionError extends Error {
  /** An error about option `name`. */
  constructor(message: string) {
    super(message);
    this.name = "OptionError";
  }
}

/** A checkpoint or data file that is missing, truncated or not what it claims to be. */
export class FileFormatError extends Error {
  /** An error about the file at `path`. */
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = "FileFormatError";
  }
}

/** Training went wrong in a way the user must act on (a NaN loss, say). */
export class TrainingError extends Error {
  /** A training failure. */
  constructor(message: string) {
    super(message);
    this.name = "TrainingError";
  }
}

/**
 * The GPU device went away (a driver reset, the GPU removed, the browser reclaiming it): the
 * backend's buffers are gone and it cannot go on. Work resumes from the last checkpoint, on another
 * backend if need be (the scripts do this under `--backend auto`).
 */
export class DeviceLostError extends Error {
  /** A lost device; `message` says what the driver reported. */
  constructor(message: string) {
    super(message);
    this.name = "DeviceLostError";
  }
}

/** Throws an {@link OptionError} unless `value` is an integer in [min, max]. */
export function checkInt(
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `in [${min}, ${max}]`;
    throw new OptionError(`${name} must be an integer ${range}, got ${value}`);
  }
}

/** A byte count in the largest unit that keeps it at least 1 (e.g. "2.5 GiB"). */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let v = bytes, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} bytes` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/**
 * Throws an {@link OptionError} unless `value` is an integer in [min, max]; above `max` the message
 * gives the limit and, with `need`, about how much memory `value` would take (`need(value)` bytes).
 */
export function checkSize(
  name: string,
  value: number,
  min: number,
  max: number,
  need?: (value: number) => number,
): void {
  checkInt(name, value, min, need ? undefined : max);
  if (value > max) {
    const memory = need ? `: that would need about ${formatBytes(need(value))}` : "";
    throw new OptionError(`${name} must be at most ${max}, got ${value}${memory}`);
  }
}

/** Throws an {@link OptionError} unless `value` is a finite number in the open or closed range given. */
export function checkNumber(
  name: string,
  value: number,
  range: { gt?: number; ge?: number; lt?: number; le?: number },
): void {
  const ok = Number.isFinite(value) &&
    (range.gt === undefined || value > range.gt) &&
    (range.ge === undefined || value >= range.ge) &&
    (range.lt === undefined || value < range.lt) &&
    (range.le === undefined || value <= range.le);
  if (!ok) {
    const parts = [
      range.gt !== undefined ? `> ${range.gt}` : "",
      range.ge !== undefined ? `>= ${range.ge}` : "",
      range.lt !== undefined ? `< ${range.lt}` : "",
      range.le !== undefined ? `<= ${range.le}` : "",
    ].filter(Boolean);
    throw new OptionError(`${name} must be a number ${parts.join(" and ")}, got ${value}`);
  }
}

/** Throws an {@link OptionError} unless `value` is one of `choices`. */
export function checkChoice<T extends string>(name: string, value: T, choices: readonly T[]): void {
  if (!choices.includes(value)) {
    throw new OptionError(
      `${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
}

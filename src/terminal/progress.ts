/**
 * Progress reporting for long runs, on standard error.
 *
 * On a terminal it draws one live line, redrawn in place with `\r` (at most 10 times a second):
 * `train [=========>----------] 1200/5000  loss 0.3121  412 steps/s  eta 9s`. Elsewhere (a log
 * file, CI) it prints a plain line every few seconds or every N steps, and at the end:
 * `train  step 1200/5000  loss 0.3121  412 steps/s  eta 9s`.
 *
 * With `format: "jsonl"` every such line is a JSON object instead, for programs to read:
 * `{"event":"progress","label":"train","step":1200,"total":5000,"loss":0.3121,...}` (the last with
 * `"event":"done"`); `format: "none"` writes nothing.
 *
 * The live line is written here rather than with the `cli-progress` package: under Deno that
 * package draws correctly, but its redraw timer re-arms itself forever, so a run that misses
 * `stop()` never exits, and it turns the terminal's line wrapping off (`ESC[?7l`) until `stop()`,
 * so a run that dies mid-bar leaves the shell without wrapping. This bar keeps no timers and
 * changes no terminal modes.
 *
 * @module
 */

/** Values shown with a step. */
export interface ProgressValues {
  /** The latest loss. */
  loss?: number;
  /** Steps per second; measured from the updates when left out. */
  stepsPerSecond?: number;
}

/** What one progress line shows; see {@link formatProgressLine}. */
export interface ProgressLine {
  /** A name for the run, shown first (optional). */
  label?: string;
  /** Steps done. */
  step: number;
  /** Steps in all. */
  total: number;
  /** The latest loss (optional). */
  loss?: number;
  /** Steps per second (optional). */
  stepsPerSecond?: number;
  /** Seconds left (optional). */
  etaSeconds?: number;
  /** Training samples per second (optional; shown after the step rate). */
  samplesPerSecond?: number;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Steps in all: a positive integer. */
  total: number;
  /** A name for the run, shown first (optional). */
  label?: string;
  /** Plain mode: print a line at least this often, in seconds (default 5). */
  plainEverySeconds?: number;
  /** Plain mode: also print a line every this many steps (default: only by time). */
  plainEverySteps?: number;
  /** Draw the live line (true) or print plain lines (false); default: whether stderr is a terminal. */
  interactive?: boolean;
  /** Where text goes (default: written to stderr synchronously). */
  write?: (text: string) => void;
  /** The clock in milliseconds (default `performance.now`). */
  now?: () => number;
  /** Terminal width for the live line (default: the console's width, or 80). */
  columns?: number;
  /** Samples per step (the batch size): when given, lines also show samples/s. */
  samplesPerStep?: number;
  /** "text" (default: a live line or plain lines), "jsonl" (a JSON object a line) or "none". */
  format?: ProgressFormat;
}

/** How progress is written: for people, for programs, or not at all. */
export type ProgressFormat = "text" | "jsonl" | "none";

/** The formats of {@link ProgressOptions.format}. */
export const PROGRESS_FORMATS: readonly ProgressFormat[] = ["text", "jsonl", "none"];

/** A running progress report: feed it steps, then stop it. */
export interface Progress {
  /** Reports that `step` of the total steps are done, with the latest values. */
  update(step: number, values?: ProgressValues): void;
  /** Finishes the report: prints the last state and ends the live line. Safe to call twice. */
  stop(): void;
}

/** A duration for people: `9s`, `2m05s`, `1h02m`; `?` when unknown or not finite. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** A loss value: 4 decimals between 0.001 and 100,000 (and for 0), scientific otherwise. */
export function formatLoss(loss: number): string {
  const a = Math.abs(loss);
  if (!Number.isFinite(loss)) return String(loss);
  if (a === 0 || (a >= 1e-3 && a < 1e5)) return loss.toFixed(4);
  return loss.toExponential(3);
}

/** A rate with about three significant digits: `412`, `41.2`, `4.12`. */
export function formatRate(stepsPerSecond: number): string {
  if (!Number.isFinite(stepsPerSecond)) return "?";
  if (stepsPerSecond >= 100) return stepsPerSecond.toFixed(0);
  if (stepsPerSecond >= 10) return stepsPerSecond.toFixed(1);
  return stepsPerSecond.toFixed(2);
}

/** The parts after the step count: loss, rate, ETA, each only when known. */
function valueParts(line: ProgressLine): string[] {
  const parts: string[] = [];
  if (line.loss !== undefined) parts.push(`loss ${formatLoss(line.loss)}`);
  if (line.stepsPerSecond !== undefined) parts.push(`${formatRate(line.stepsPerSecond)} steps/s`);
  if (line.samplesPerSecond !== undefined) {
    parts.push(`${formatRate(line.samplesPerSecond)} samples/s`);
  }
  if (line.etaSeconds !== undefined) parts.push(`eta ${formatDuration(line.etaSeconds)}`);
  return parts;
}

/**
 * The plain progress line, e.g. `train  step 1200/5000  loss 0.3121  412 steps/s  eta 9s`: the
 * label (when given), the step, then loss, rate and ETA when known, two spaces apart.
 */
export function formatProgressLine(line: ProgressLine): string {
  const parts = line.label ? [line.label] : [];
  parts.push(`step ${line.step}/${line.total}`, ...valueParts(line));
  return parts.join("  ");
}

/**
 * The live progress line, fitted to `columns` characters, e.g.
 * `train [=========>----------] 1200/5000  loss 0.3121  412 steps/s  eta 9s`. The bar is up to 30
 * characters wide, shrinks to fit, and is left out when fewer than 5 would fit.
 */
export function formatProgressBar(line: ProgressLine, columns: number): string {
  const head = line.label ? `${line.label} ` : "";
  const tail = [`${line.step}/${line.total}`, ...valueParts(line)].join("  ");
  const room = columns - 1 - head.length - tail.length - 3; // "[" + bar + "] "
  let text = head + tail;
  if (room >= 5) {
    const width = Math.min(30, room);
    const fraction = line.total > 0 ? Math.min(1, Math.max(0, line.step / line.total)) : 0;
    const done = Math.floor(fraction * width);
    const bar = done >= width
      ? "=".repeat(width)
      : "=".repeat(done) + ">" + "-".repeat(width - done - 1);
    text = `${head}[${bar}] ${tail}`;
  }
  return text.length > columns - 1 ? text.slice(0, Math.max(0, columns - 1)) : text;
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

function consoleColumns(): number {
  try {
    const { columns } = Deno.consoleSize();
    return columns >= 20 ? columns : 80; // some pseudo-terminals report 0
  } catch {
    return 80;
  }
}

function checkPositive(what: string, value: number | undefined, integer: boolean): void {
  if (value === undefined) return;
  const ok = integer
    ? Number.isSafeInteger(value) && value > 0
    : Number.isFinite(value) && value > 0;
  if (!ok) {
    throw new RangeError(
      `createProgress: ${what} must be a positive ${integer ? "integer" : "number"}, got ${value}`,
    );
  }
}

/**
 * Starts a progress report of `total` steps on standard error: a live line on a terminal, plain
 * lines elsewhere (see the module notes). Steps per second are measured from the first update
 * unless given; the ETA follows from them.
 */
export function createProgress(options: ProgressOptions): Progress {
  const { total, label } = options;
  checkPositive("total", total, true);
  checkPositive("plainEverySeconds", options.plainEverySeconds, false);
  checkPositive("plainEverySteps", options.plainEverySteps, true);
  const everyMs = (options.plainEverySeconds ?? 5) * 1000;
  const everySteps = options.plainEverySteps;
  const now = options.now ?? (() => performance.now());
  const format = options.format ?? "text";
  if (!PROGRESS_FORMATS.includes(format)) {
    throw new RangeError(`createProgress: format must be one of ${PROGRESS_FORMATS.join(", ")}`);
  }
  const write = format === "none" ? () => {} : options.write ?? writeStderr;
  const interactive = format === "text" && (options.interactive ?? Deno.stderr.isTerminal());
  const columns = options.columns ?? (interactive ? consoleColumns() : 80);

  let first: { step: number; time: number } | undefined;
  let last: ProgressLine | undefined;
  let lastDrawn = -Infinity;
  let printedStep = -1;
  let lastPrintTime = now();
  let live = false; // a live line is on screen without its newline
  let stopped = false;

  // If the run dies with the live line on screen, end the line first so the error starts clean.
  const onFatal = () => {
    if (live) write("\n");
    live = false;
  };
  const listening = interactive && options.write === undefined;
  if (listening) {
    globalThis.addEventListener("error", onFatal);
    globalThis.addEventListener("unhandledrejection", onFatal);
  }

  const draw = () => {
    if (!last) return;
    write(`\r${formatProgressBar(last, columns)}\x1b[K`);
    live = true;
  };

  const print = (event = "progress") => {
    if (!last || printedStep === last.step) return;
    write(
      format === "jsonl"
        ? JSON.stringify({ event, ...last }) + "\n"
        : formatProgressLine(last) + "\n",
    );
    printedStep = last.step;
    lastPrintTime = now();
  };

  return {
    update(step: number, values: ProgressValues = {}): void {
      if (stopped) return;
      if (!Number.isFinite(step) || step < 0) {
        throw new RangeError(`progress.update: step must be a number >= 0, got ${step}`);
      }
      const t = now();
      if (!first) first = { step, time: t };
      let rate = values.stepsPerSecond;
      if (rate === undefined && t > first.time && step > first.step) {
        rate = ((step - first.step) * 1000) / (t - first.time);
      }
      const etaSeconds = rate !== undefined && rate > 0
        ? Math.max(0, total - step) / rate
        : undefined;
      last = { label, step, total, loss: values.loss, stepsPerSecond: rate, etaSeconds };
      if (options.samplesPerStep !== undefined && rate !== undefined) {
        last.samplesPerSecond = rate * options.samplesPerStep;
      }
      if (interactive) {
        if (t - lastDrawn >= 100 || step >= total) {
          draw();
          lastDrawn = t;
        }
      } else if (
        step >= total || t - lastPrintTime >= everyMs ||
        (everySteps !== undefined && step - Math.max(0, printedStep) >= everySteps)
      ) {
        print();
      }
    },
    stop(): void {
      if (stopped) return;
      stopped = true;
      if (listening) {
        globalThis.removeEventListener("error", onFatal);
        globalThis.removeEventListener("unhandledrejection", onFatal);
      }
      if (interactive) {
        draw();
        if (live) write("\n");
        live = false;
      } else {
        // The last line always comes (a jsonl reader sees "done" even when the step was printed).
        if (format === "jsonl" && last) printedStep = -1;
        print("done");
      }
    },
  };
}

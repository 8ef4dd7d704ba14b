/**
 * What every script shares: turning a thrown error into one clear line and a non-zero exit.
 *
 * @module
 */

import { BACKEND_CHOICES, type BackendChoice, OptionError, PACKAGE_NAME, VERSION } from "../mod.ts";
import {
  checkChoice,
  checkSize,
  createProgress,
  type Progress,
  type ProgressOptions,
  removeStaleTemporaryFiles,
} from "../io.ts";

/** The number a flag's text holds, or an {@link OptionError} naming the flag. */
export function numberFlag(flag: string, text: string): number {
  // Decimal only: Number() would also read "0x10" as 16 and "" as 0.
  const v = Number(text);
  if (!DECIMAL.test(text.trim()) || !Number.isFinite(v)) {
    throw new OptionError(`--${flag} needs a decimal number, got "${text}"`);
  }
  return v;
}

/** A decimal number: digits with an optional sign, point and exponent. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * An integer flag of at least `min` (and at most `max` when given), or `fallback` when the flag was
 * not given. Above `max` the error says about how much memory the value would take, `need(value)`
 * bytes, when `need` is given.
 */
export function intFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  need?: (value: number) => number,
): number {
  if (text === undefined) return fallback;
  const v = numberFlag(flag, text);
  checkSize(`--${flag}`, v, min, max, need);
  return v;
}

/** Error codes of `node:util` parseArgs that mean the user typed a bad flag. */
const PARSE_ARGS_CODES = new Set([
  "ERR_PARSE_ARGS_UNKNOWN_OPTION",
  "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
  "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL",
]);

/** The one line printed for an error: its message, with the fix for flag errors. */
export function errorLine(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as Error & { code?: string }).code;
    if (code && PARSE_ARGS_CODES.has(code)) {
      return `error: ${
        e.message.split("\n").map((l) => l.trim()).filter(Boolean).join(" ")
      } (see --help)`;
    }
    if (e instanceof Deno.errors.NotCapable || e.message.includes("run again with the --allow")) {
      // Deno's own line names the permission and the flag; the tasks grant only what their
      // defaults need (writing under out/).
      return `error: ${e.message} (deno task grants only what the defaults need: write under ` +
        `out/; for other paths run the script with deno run and that flag, or -A)`;
    }
    return `error: ${e.message}`;
  }
  return `error: ${String(e)}`;
}

/** How a script reports as it runs: set by the flags every script takes (see {@link runMain}). */
export const output: { quiet: boolean; format: "text" | "jsonl" } = {
  quiet: false,
  format: "text",
};

/** What --help adds under every script's own flags. */
export const COMMON_HELP = `
Every script also takes:
  -q, --quiet          no progress and no informational lines (results and errors still print)
  --log-format FORMAT  text (default) or jsonl: progress as one JSON object a line on stderr
  --version            the library's name and version
Exit codes: 0 done, 1 an error (one line on stderr; DEBUG=1 adds the stack trace), 130 stopped
by Ctrl-C (what was done is kept).`;

/**
 * Takes the flags every script shares out of `args` (setting {@link output}) and returns the rest;
 * null after --version, which prints the version and ends the run.
 */
export function takeCommonFlags(args: readonly string[]): string[] | null {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (a === "--version") {
      console.log(`${PACKAGE_NAME} ${VERSION}`);
      return null;
    }
    if (a === "-q" || a === "--quiet") {
      output.quiet = true;
    } else if (a === "--log-format" || a.startsWith("--log-format=")) {
      const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      if (value !== "text" && value !== "jsonl") {
        throw new OptionError(
          `--log-format must be text or jsonl, got ${JSON.stringify(value ?? "")}`,
        );
      }
      output.format = value;
    } else {
      rest.push(a);
    }
  }
  return rest;
}

/**
 * Runs a script's main function on `args` (default: the command line) after taking the flags every
 * script shares (--quiet, --log-format, --version): any error ends in one line on stderr and exit
 * code 1 (set DEBUG=1 to see the stack trace). --help gets the shared flags and exit codes added.
 */
export async function runMain(
  main: (args: string[]) => Promise<void>,
  args: readonly string[] = Deno.args,
): Promise<void> {
  try {
    const rest = takeCommonFlags(args);
    if (rest === null) return;
    await main(rest);
    if (rest.includes("--help") || rest.includes("-h")) console.log(COMMON_HELP);
  } catch (e) {
    if (debugging()) console.error(e);
    console.error(errorLine(e));
    Deno.exit(1);
  }
}

/** Prints an informational line (what runs where), unless --quiet. */
export function info(...parts: unknown[]): void {
  if (!output.quiet) console.log(...parts);
}

/** A progress report in the run's format: nothing under --quiet, JSON lines under jsonl. */
export function progressBar(options: ProgressOptions): Progress {
  return createProgress({ ...options, format: output.quiet ? "none" : output.format });
}

/** Whether DEBUG is set; false without permission to read it (the handler must never throw). */
function debugging(): boolean {
  try {
    return Boolean(Deno.env.get("DEBUG"));
  } catch {
    return false;
  }
}

/**
 * Makes sure `out` is a folder this process can write, before any work: creates it (and its
 * parents) when missing and writes and removes a probe file. An OptionError names the flag and the
 * problem (a file in the way, no permission, a read-only disk).
 */
export async function prepareOutDir(out: string, flag = "--out"): Promise<void> {
  const why = (e: unknown) => (e instanceof Error ? e.message : String(e));
  try {
    if (!(await Deno.stat(out)).isDirectory) {
      throw new OptionError(`${flag} ${out} is a file, not a folder`);
    }
  } catch (e) {
    if (e instanceof OptionError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) throw new OptionError(`${flag} ${out}: ${why(e)}`);
    try {
      await Deno.mkdir(out, { recursive: true });
    } catch (e) {
      throw new OptionError(`${flag} ${out} cannot be created: ${why(e)}`);
    }
  }
  // Named like a temporary file of writeFileAtomic, so a probe a kill left behind is cleaned up too.
  const probe = `${out}/.write-probe.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeFile(probe, new Uint8Array(0));
    await Deno.remove(probe);
  } catch (e) {
    throw new OptionError(`${flag} ${out} is not writable: ${why(e)}`);
  }
  // What a killed run left half-written is of no use to anyone.
  await removeStaleTemporaryFiles(out).catch(() => []);
}

/**
 * The output folder of --out, or `fallback` when the flag was not given; an empty path (an unset
 * shell variable, say) is an error, never the current or root folder.
 */
export function outFlag(text: string | undefined, fallback: string): string {
  if (text === undefined) return fallback;
  if (text.trim() === "") {
    throw new OptionError(`--out must name a folder, got an empty path (an unset variable?)`);
  }
  return text;
}

/** The --weights flag, checked (default ema). */
export function weightsFlag(text: string | undefined): "ema" | "raw" {
  const weights = (text ?? "ema") as "ema" | "raw";
  checkChoice("--weights", weights, ["ema", "raw"] as const);
  return weights;
}

/** The parseArgs specs every script that computes and writes shares: --backend, --out, --help. */
export const COMMON_FLAG_SPECS = {
  backend: { type: "string" },
  out: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The --backend flag, checked (default auto). */
export function backendFlag(text: string | undefined): BackendChoice {
  const backend = (text ?? "auto") as BackendChoice & string;
  checkChoice("--backend", backend, BACKEND_CHOICES);
  return backend;
}

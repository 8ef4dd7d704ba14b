/**
 * Running Deno in a child process, as a user would from a shell: the exit code, stdout, the
 * stderr lines (Mesa's XDG_RUNTIME_DIR notice left out) and the wall time.
 */

/** What a child `deno` process did. */
export interface DenoRun {
  /** Exit code. */
  code: number;
  /** Everything it printed on stdout. */
  stdout: string;
  /** Its non-blank stderr lines. */
  stderr: string[];
  /** Wall time in milliseconds. */
  ms: number;
}

const root = new URL("../..", import.meta.url).pathname;

/**
 * Runs `deno ARGS` in `cwd` (default: the repository root), without colour or DEBUG unless `env`
 * says otherwise.
 */
export async function runDeno(
  args: string[],
  cwd = root,
  env: Record<string, string> = { NO_COLOR: "1", DEBUG: "" },
): Promise<DenoRun> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    env,
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).split("\n")
    .filter((l) => l.trim() && !l.includes("XDG_RUNTIME_DIR"));
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr,
    ms: performance.now() - started,
  };
}

/** Runs `deno run -A scripts/SCRIPT ARGS` from the repository root. */
export function runScript(script: string, args: string[]): Promise<DenoRun> {
  return runDeno(["run", "-A", `scripts/${script}`, ...args]);
}

/**
 * scripts/spiral.ts from the command line: every bad flag ends in one error line naming it with exit
 * code 1, --help, and tiny spiral and gmm1d runs writing their CSV, PNGs and a loadable model.
 */

import assert from "node:assert/strict";
import { loadModel } from "../../src/io/model_file.ts";
import type { DiffusionModel } from "../../src/model.ts";
import { SAMPLERS } from "../../src/samplers/registry.ts";

const ROOT = new URL("../../", import.meta.url);
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const TINY = ["--steps", "30", "--batch", "16", "--hidden", "16", "--T", "20", "--samples", "200"];

interface Run {
  code: number;
  stdout: string;
  /** stderr lines, without empty ones and the harmless XDG_RUNTIME_DIR warning. */
  errLines: string[];
  stderr: string;
}

async function spiral(args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/spiral.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    // DEBUG would add a stack trace; NO_COLOR keeps the output plain.
    env: { DEBUG: "", NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  const stderr = dec.decode(out.stderr);
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr,
    errLines: stderr.split(/\r?\n/).filter((l) =>
      l.trim() !== "" && !l.includes("XDG_RUNTIME_DIR")
    ),
  };
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spiral_cli_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Bad input: exit code 1, one `error:` line naming the flag, no stack trace, nothing written. */
const BAD: [string[], string][] = [
  [["--bogus"], "--bogus"],
  [["--T", "1"], "--T"],
  [["--schedule", "linear", "--beta-end", "1.5"], "--beta-end"],
  [["--schedule", "linear", "--beta-start", "0"], "--beta-start"],
  [["--steps", "-5"], "--steps"],
  [["--steps=-5"], "--steps"],
  [["--steps", "0"], "--steps"],
  [["--batch", "0"], "--batch"],
  [["--batch", "2.5"], "--batch"],
  [["--lr", "abc"], "--lr"],
  [["--lr", "0"], "--lr"],
  [["--dist", "moon"], "--dist"],
  [["--backend", "gpu9"], "--backend"],
  [["--T", "20", "--sample-steps", "21"], "--sample-steps"],
  [["--ema", "1"], "--ema"],
  [["--sampler", "dpm-solver"], "--sampler"],
  [["--sampler", "ddpm", "--eta", "0.5"], "--eta"],
  [["--sampler", "ddim", "--eta", "-1"], "--eta"],
  [["--sampler", "pc", "--snr", "0"], "--snr"],
  [["--sampler", "pc", "--predictor", "heun"], "--predictor"],
  [["--sampler", "euler-maruyama", "--corrector-steps", "2"], "--corrector-steps"],
  [["--sampler", "dpm++2m", "--spacing", "cosine"], "--spacing"],
  [["--sampler", "ddim", "--spacing", "karras"], "--spacing"],
  [["--sampler", "langevin", "--langevin-steps", "0"], "--langevin-steps"],
  [["--sampler", "langevin", "--step-size", "0"], "--step-size"],
  [["--objective", "sm"], "--objective"],
  [["--objective", "dsm", "--schedule", "linear"], "--schedule"],
  [["--objective", "dsm", "--beta-end", "0.1"], "--beta-end"],
  [["--objective", "dsm", "--seed-recipe"], "--seed-recipe"],
  [["--sigma-max", "5"], "--sigma-max"],
  [["--objective", "dsm", "--sigma-min", "0"], "--sigma-min"],
  [["--objective", "dsm", "--sigma-min", "2", "--sigma-max", "1"], "--sigma-max"],
];

for (const [args, flag] of BAD) {
  Deno.test(`spiral.ts ${args.join(" ")}: exit 1, one error line naming ${flag}`, async () => {
    await withTempDir(async (dir) => {
      // The out folder does not exist yet: a bad run must not create it either.
      const r = await spiral([...TINY, ...args, "--out", `${dir}/run`]);
      assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
      assert.equal(r.errLines.length, 1, `exactly one stderr line, got:\n${r.stderr}`);
      const line = r.errLines[0];
      assert.ok(line.startsWith("error:"), line);
      assert.ok(line.length > "error:".length + 5, `a message after error: ${line}`);
      assert.ok(line.includes(flag), `the line names ${flag}: ${line}`);
      assert.ok(!r.stderr.includes("    at "), `no stack trace:\n${r.stderr}`);
      assert.deepEqual(await listDir(dir), [], "nothing written");
    });
  });
}

Deno.test("spiral.ts --help: exit 0, usage mentioning --dist", async () => {
  await withTempDir(async (dir) => {
    const r = await spiral(["--help", "--out", `${dir}/run`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage/);
    assert.match(r.stdout, /--dist/);
    assert.match(r.stdout, /--steps/);
    assert.deepEqual(r.errLines, []);
    assert.deepEqual(await listDir(dir), []);
  });
  const short = await spiral(["-h"]);
  assert.equal(short.code, 0);
  assert.match(short.stdout, /--dist/);
});

/** Parses a samples CSV: the header's columns and the rows as numbers. */
function parseCsv(text: string): { header: string[]; rows: number[][] } {
  assert.ok(text.endsWith("\n"), "the CSV ends with a newline");
  const lines = text.slice(0, -1).split("\n");
  return {
    header: lines[0].split(","),
    rows: lines.slice(1).map((l) => l.split(",").map((x) => (x.trim() === "" ? NaN : Number(x)))),
  };
}

async function checkRun(
  dist: "spiral" | "gmm1d",
  extra: string[],
  columns: string[],
  check?: (model: DiffusionModel, stdout: string) => void,
) {
  await withTempDir(async (dir) => {
    const out = `${dir}/run`;
    const r = await spiral([...TINY, "--dist", dist, ...extra, "--out", out]);
    assert.equal(r.code, 0, `exit code; stderr:\n${r.stderr}`);
    assert.ok(!r.stderr.includes("error:"), r.stderr);
    assert.match(r.stdout, /wall time \d+(\.\d+)? s/);
    assert.deepEqual(await listDir(out), [
      "density.png",
      "forward.png",
      "model.safetensors",
      "samples.csv",
    ]);

    const { header, rows } = parseCsv(await Deno.readTextFile(`${out}/samples.csv`));
    assert.deepEqual(header, columns);
    assert.equal(rows.length, 200);
    for (const [i, row] of rows.entries()) {
      assert.equal(row.length, columns.length, `row ${i + 1}`);
      for (const v of row) assert.ok(Number.isFinite(v), `row ${i + 1}: ${row}`);
    }
    // Not all the same point.
    assert.ok(new Set(rows.map((r) => r.join())).size > 100);

    for (const png of ["density.png", "forward.png"]) {
      const bytes = await Deno.readFile(`${out}/${png}`);
      assert.ok(bytes.length > 100, png);
      assert.deepEqual([...bytes.subarray(0, 8)], PNG_SIGNATURE, png);
    }

    const model = await loadModel(`${out}/model.safetensors`, "reference");
    assert.equal(model.stepsTrained, 30);
    assert.equal(model.config.schedule.T, 20);
    const network = model.config.network;
    assert.equal(network.kind, "mlp");
    if (network.kind === "mlp") assert.equal(network.hidden, 16);
    assert.deepEqual(model.config.sampleShape, [columns.length]);
    assert.ok(model.ema !== null, "the default EMA is saved");
    if (!extra.includes("--no-eval")) assert.match(r.stdout, /quality ratio \d/);
    check?.(model, r.stdout);
  });
}

Deno.test("spiral.ts tiny spiral run: CSV, PNGs, loadable model, wall time", async () => {
  await checkRun("spiral", [], ["x", "y"]);
});

Deno.test("spiral.ts runs every sampler and prints the off-support share", async () => {
  for (const sampler of SAMPLERS) {
    await withTempDir(async (dir) => {
      const r = await spiral([...TINY, "--sampler", sampler, "--sample-steps", "5", "--out", dir]);
      assert.equal(r.code, 0, `${sampler}: ${r.stderr}`);
      assert.match(r.stdout, /off the support: \d+\.\d+% of generated points/, sampler);
      const { rows } = parseCsv(await Deno.readTextFile(`${dir}/samples.csv`));
      assert.equal(rows.length, 200, sampler);
      assert.ok(rows.every((row) => row.every(Number.isFinite)), sampler);
    });
  }
});

Deno.test("spiral.ts tiny --objective dsm run: a score model, sampled with langevin, figures printed", async () => {
  await checkRun("spiral", ["--objective", "dsm"], ["x", "y"], (model, stdout) => {
    assert.equal(model.config.objective, "dsm");
    assert.deepEqual(model.config.schedule, { kind: "ve", T: 20, sigmaMin: 0.01, sigmaMax: 5 });
    assert.match(stdout, /dsm over 20 noise levels 0\.01\.\.5/);
    assert.match(stdout, /off the support: \d+\.\d+% of generated points/);
  });
});

Deno.test("spiral.ts tiny gmm1d run: one-column CSV", async () => {
  await checkRun("gmm1d", ["--no-eval"], ["x"]);
});

/**
 * What every script does as a command-line tool: --version, --quiet, --log-format jsonl, the exit
 * codes and shared flags in --help, and no colour codes in its output.
 */

import assert from "node:assert/strict";
import { runDeno, runScript } from "../helpers/run_deno.ts";

const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
const SCRIPTS = [
  "spiral.ts",
  "train_mnist.ts",
  "sample.ts",
  "eval_mnist.ts",
  "explain.ts",
  "train_classifier.ts",
  "compare_samplers.ts",
  "guidance_sweep.ts",
];
const SPIRAL = ["--steps", "60", "--samples", "300", "--no-eval", "--backend", "wasm"];

Deno.test("the version the library reports is deno.json's", async () => {
  const { PACKAGE_NAME, VERSION } = await import("../../mod.ts");
  assert.equal(PACKAGE_NAME, config.name);
  assert.equal(VERSION, config.version);
});

Deno.test("every script: --version, and --help with the shared flags and exit codes", async () => {
  for (const script of SCRIPTS) {
    const v = await runScript(script, ["--version"]);
    assert.equal(v.code, 0, script);
    assert.equal(v.stdout, `${config.name} ${config.version}\n`, script);
    const h = await runScript(script, ["--help"]);
    assert.equal(h.code, 0, script);
    assert.match(h.stdout, /--quiet/, script);
    assert.match(h.stdout, /--log-format FORMAT/, script);
    assert.match(h.stdout, /Exit codes: 0 done, 1 an error .* 130 stopped\s+by Ctrl-C/, script);
  }
  const bad = await runScript("spiral.ts", ["--log-format", "xml"]);
  assert.equal(bad.code, 1);
  assert.deepEqual(bad.stderr, ['error: --log-format must be text or jsonl, got "xml"']);
});

Deno.test("--quiet and --log-format reach train_mnist.ts and eval_mnist.ts too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quiet_mnist_" });
  try {
    const r = await runScript("train_mnist.ts", [
      ...["--steps", "2", "--batch", "2", "--base", "8", "--mults", "1,2", "--backend", "wasm"],
      ...["--sample-every", "0", "--sample-count", "1", "--sample-steps", "1", "-q"],
      ...["--out", dir],
    ]);
    assert.equal(r.code, 0, r.stderr.join("\n"));
    assert.deepEqual(r.stderr, []);
    assert.equal(r.stdout, `done: ${dir}/checkpoint.safetensors and ${dir}/samples_*.png\n`);
    const e = await runScript("eval_mnist.ts", ["--log-format", "jsonl", "--real", "1"]);
    assert.equal(e.code, 1, "--real 1 is below the floor's minimum");
    assert.match(e.stderr[0], /--real must be/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--quiet: no progress and no informational lines; the results still print", async () => {
  const dir = await Deno.makeTempDir({ prefix: "quiet_" });
  try {
    const loud = await runScript("spiral.ts", [...SPIRAL, "--out", `${dir}/a`]);
    assert.equal(loud.code, 0, loud.stderr.join("\n"));
    assert.match(loud.stdout, /wasm backend/);
    assert.ok(loud.stderr.some((l) => /^train {2}step/.test(l)), loud.stderr.join("\n"));
    const quiet = await runScript("spiral.ts", [...SPIRAL, "-q", "--out", `${dir}/b`]);
    assert.equal(quiet.code, 0, quiet.stderr.join("\n"));
    assert.deepEqual(quiet.stderr, []);
    assert.doesNotMatch(quiet.stdout, /backend|training points/);
    assert.match(quiet.stdout, /^wrote .*model\.safetensors$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--log-format jsonl: progress as one JSON object a line, ending with done", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jsonl_" });
  try {
    const r = await runScript("spiral.ts", [...SPIRAL, "--log-format=jsonl", "--out", dir]);
    assert.equal(r.code, 0, r.stderr.join("\n"));
    const events = r.stderr.map((l) => JSON.parse(l));
    const train = events.filter((e) => e.label === "train");
    assert.ok(train.length >= 1);
    assert.deepEqual(Object.keys(train.at(-1)).slice(0, 4), ["event", "label", "step", "total"]);
    assert.equal(train.at(-1).event, "done");
    assert.equal(train.at(-1).step, 60);
    assert.equal(train.at(-1).total, 60);
    assert.ok(Number.isFinite(train.at(-1).loss));
    assert.ok(events.some((e) => e.label === "sample" && e.event === "done"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("no colour codes, with or without NO_COLOR", async () => {
  const dir = await Deno.makeTempDir({ prefix: "colour_" });
  try {
    for (const env of [{ NO_COLOR: "1" }, { TERM: "xterm-256color" }] as Record<string, string>[]) {
      const r = await runDeno(
        ["run", "-A", "scripts/spiral.ts", ...SPIRAL, "--out", dir],
        undefined,
        env,
      );
      assert.equal(r.code, 0, r.stderr.join("\n"));
      // No SGR sequence (ESC [ ... m) anywhere.
      assert.doesNotMatch(r.stdout + r.stderr.join("\n"), new RegExp("\u001b\\[[0-9;]*m"));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

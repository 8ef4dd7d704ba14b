/**
 * Every script that writes refuses an empty --out (an unset shell variable) before doing anything,
 * and writes nothing into the folder it runs in; an error under narrow permissions (no env access)
 * is still one line, not a permission trace.
 */

import assert from "node:assert/strict";
import { runDeno } from "../helpers/run_deno.ts";

const scripts = new URL("../../scripts/", import.meta.url).pathname;

const run = runDeno;

Deno.test("an empty --out is refused by every script that writes, and nothing is written", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "out_flag_" });
  try {
    const cases = [
      ["spiral.ts"],
      ["train_mnist.ts"],
      ["sample.ts", "missing.safetensors"],
      ["compare_samplers.ts", "missing.safetensors"],
      ["guidance_sweep.ts", "missing.safetensors"],
      ["explain.ts", "missing.safetensors"],
      ["train_classifier.ts", "--model", "missing.safetensors"],
    ];
    for (const [script, ...rest] of cases) {
      for (const out of ["", "  "]) {
        const r = await run(["run", "-A", `${scripts}${script}`, ...rest, "--out", out], cwd);
        assert.equal(r.code, 1, `${script} --out "${out}"`);
        assert.deepEqual(r.stderr.length, 1, r.stderr.join(" | "));
        assert.match(r.stderr[0], /^error: --out must name a folder, got an empty path/);
      }
    }
    assert.deepEqual([...Deno.readDirSync(cwd)], []);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("without env access a bad flag is still one error line", async () => {
  const r = await run(
    ["run", "--no-prompt", "--allow-read", `${scripts}spiral.ts`, "--steps", "0"],
    Deno.cwd(),
  );
  assert.equal(r.code, 1);
  assert.equal(r.stderr.length, 1, r.stderr.join(" | "));
  assert.match(r.stderr[0], /^error: .*--steps/);
});

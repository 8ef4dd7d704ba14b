/**
 * scripts/eval_mnist.ts from the command line: a bad option is one error line and exit code 1.
 */

import assert from "node:assert/strict";

Deno.test("eval_mnist.ts: a bad option is one error line and exit code 1", async () => {
  for (
    const args of [
      ["--count", "0"],
      ["--sampler", "nope"],
      ["a.safetensors", "b"],
      ["--nll", "0"],
      ["--nll"], // no checkpoint
      ["--nll-timesteps", "3"], // without --nll
      ["--nll=2", "--variance", "large"],
    ]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../scripts/eval_mnist.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 1, err);
    assert.equal(err.split("\n").length, 1, err);
    assert.match(err, /^error: /);
  }
});

/**
 * A GPU lost in the middle of `train_mnist.ts --backend auto` costs no work: the run goes on with
 * the wasm backend from its last checkpoint and ends where an uninterrupted run ends, bit for bit.
 * Named explicitly (`--backend webgpu`), the loss ends the run with one line instead.
 */

import assert from "node:assert/strict";
import { decodeSafetensors } from "../../io.ts";
import { runDeno } from "../helpers/run_deno.ts";

const TINY = [
  ...["--batch", "4", "--base", "8", "--mults", "1,2", "--sample-every", "0"],
  ...["--sample-count", "1", "--sample-steps", "1", "--steps", "30", "--checkpoint-every", "5"],
];

function run(args: string[]) {
  return runDeno(["run", "-A", ...args]);
}

async function tensors(path: string) {
  return decodeSafetensors(await Deno.readFile(path), path).tensors;
}

Deno.test("a lost GPU under auto: the run goes on with wasm from its checkpoint, bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_lost_" });
  try {
    const reference = await run([
      "scripts/train_mnist.ts",
      ...TINY,
      "--backend",
      "wasm",
      "--out",
      `${dir}/ref`,
    ]);
    assert.equal(reference.code, 0, reference.stderr.join("\n"));
    const lost = await run([
      "tests/robust/fixtures/lost_device.ts",
      "40",
      ...TINY,
      ...["--backend", "auto", "--out", `${dir}/lost`],
    ]);
    assert.equal(lost.code, 0, lost.stderr.join("\n"));
    assert.match(lost.stdout, /webgpu backend: a GPU that will be lost/);
    const m = lost.stdout.match(
      /WebGPU device lost \(unknown\): the driver reset; going on with the wasm backend from .*checkpoint\.safetensors at step (\d+)/,
    );
    assert.ok(m, lost.stdout);
    const at = Number(m[1]);
    assert.ok(at >= 5 && at < 30 && at % 5 === 0, `resumed at step ${at}`);
    const want = await tensors(`${dir}/ref/checkpoint.safetensors`);
    const got = await tensors(`${dir}/lost/checkpoint.safetensors`);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [name, t] of want) {
      assert.deepEqual(got.get(name)!.data, t.data, `${name} differs from the uninterrupted run`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lost GPU named explicitly: one line naming the loss, no retry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_lost_named_" });
  try {
    const r = await run([
      "tests/robust/fixtures/lost_device.ts",
      "40",
      ...TINY,
      ...["--backend", "webgpu", "--out", dir],
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr.at(-1)!, /^error: WebGPU device lost \(unknown\)/);
    assert.doesNotMatch(r.stdout, /going on with the wasm backend/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Sizes without limits: every size flag and option is bounded up front with an error naming it,
 * the limit and the memory it would take (never an engine's "Invalid typed array length" minutes
 * in), and a checkpoint whose configuration is hostile (huge, unknown, not JSON) is refused naming
 * the file before anything is allocated.
 */

import assert from "node:assert/strict";
import { decodeModel, encodeModel, MAX_PARAMETERS, MAX_T, OptionError, train } from "../../mod.ts";
import { decodeSafetensors, encodeSafetensors } from "../../io.ts";
import { TINY_TRAINING } from "../helpers/tiny_training.ts";
import { runScript } from "../helpers/run_deno.ts";

const run = runScript;

Deno.test("size flags: one line naming the flag, the limit and the memory, before any work", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_limits_" });
  const cases: [string, string[], RegExp][] = [
    [
      "spiral.ts",
      ["--hidden", "1e9"],
      /^error: --hidden must be at most 65536, got 1000000000: that would need about \d+ EiB$/,
    ],
    [
      "spiral.ts",
      ["--layers", "1e6"],
      /^error: --layers must be at most 1024, got 1000000: that would need about \d+ GiB$/,
    ],
    [
      "spiral.ts",
      ["--samples", "1e12"],
      /^error: --samples must be at most 1000000, got 1000000000000: that would need about/,
    ],
    [
      "spiral.ts",
      ["--T", "1e9"],
      /^error: --T must be at most 100000, got 1000000000: that would need about \d+ GiB$/,
    ],
    ["spiral.ts", ["--batch", "1e9"], /^error: --batch must be at most 65536/],
    ["spiral.ts", ["--train-size", "1e10"], /^error: --train-size must be at most 10000000/],
    [
      "spiral.ts",
      ["--hidden", "60000", "--layers", "100"],
      /^error: network: the network would have 3\.56e\+11 parameters \(1\.3 TiB of weights, 6\.5 TiB to train\), above the limit/,
    ],
    ["train_mnist.ts", ["--base", "1e9"], /^error: --base must be at most 1024/],
    ["train_mnist.ts", ["--T", "1e9"], /^error: --T must be at most 100000/],
    [
      "train_mnist.ts",
      ["--batch", "1e8"],
      /^error: --batch must be at most 4096, got 100000000: that would need about \d+ TiB$/,
    ],
    ["train_mnist.ts", ["--sample-count", "1e9"], /^error: --sample-count must be at most 1024/],
    [
      "train_mnist.ts",
      ["--blocks", "1e5"],
      /^error: --blocks must be an integer in \[1, 64\], got 100000$/,
    ],
    [
      "train_mnist.ts",
      ["--network", "fc-unet", "--widths", "1e9"],
      /^error: --widths must list 1 to 16 integers in \[1, 16384\]/,
    ],
    ["sample.ts", ["x.safetensors", "--count", "1e12"], /^error: --count must be at most 10000/],
    [
      "sample.ts",
      ["x.safetensors", "--forward", "20000"],
      /^error: --forward must be an integer in \[0, 100\], got 20000$/,
    ],
    [
      "sample.ts",
      ["x.safetensors", "--trajectory", "1e6"],
      /^error: --trajectory must be an integer in \[0, 100\]/,
    ],
    ["eval_mnist.ts", ["--count", "1e12"], /^error: --count must be at most 100000/],
    ["eval_mnist.ts", ["--real", "20000"], /^error: --real must be an integer in \[2, 10000\]/],
    [
      "eval_mnist.ts",
      ["--sampler", "langevin", "--langevin-steps", "1e6"],
      /^error: --langevin-steps must be an integer in \[1, 100\]/,
    ],
    [
      "compare_samplers.ts",
      ["x.safetensors", "--count", "1e9"],
      /^error: --count must be an integer in \[2, 100000\]/,
    ],
    [
      "train_classifier.ts",
      ["--model", "x.safetensors", "--batch", "1e9"],
      /^error: --batch must be an integer in \[1, 4096\]/,
    ],
  ];
  try {
    for (const [script, args, re] of cases) {
      const out = script === "eval_mnist.ts" ? ["--classifier", `${dir}/out/c.safetensors`] : [
        "--out",
        `${dir}/out`,
      ];
      const r = await run(script, [...args, ...out]);
      const what = `${script} ${args.join(" ")}`;
      assert.equal(r.code, 1, what);
      assert.equal(r.stderr.length, 1, `${what}: ${r.stderr.join(" | ")}`);
      assert.match(r.stderr[0], re, what);
      // Refused up front: no training, no sampling, nothing written.
      assert.ok(r.ms < 10_000, `${what} took ${r.ms.toFixed(0)} ms`);
      assert.ok(!(await Deno.stat(`${dir}/out/model.safetensors`).then(() => true, () => false)));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train_mnist: --T 2 is taken (the grid samples 2 steps), not blamed on --sample-steps", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_t2_" });
  try {
    const r = await run("train_mnist.ts", [
      ...["--T", "2", "--steps", "1", "--batch", "2", "--base", "8", "--mults", "1,2"],
      ...["--sample-every", "0", "--sample-count", "1", "--backend", "wasm", "--out", dir],
    ]);
    assert.equal(r.code, 0, r.stderr.join("\n"));
    const explicit = await run("train_mnist.ts", ["--T", "2", "--sample-steps", "5", "--out", dir]);
    assert.match(
      explicit.stderr[0],
      /^error: --sample-steps must be an integer in \[1, 2\], got 5$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("API: sizes past the limits are OptionErrors naming the option", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { network: { hidden: 1e9 } },
      /network\.hidden must be an integer in \[1, 65536\], got 1000000000/,
    ],
    [{ network: { layers: 1e6 } }, /network\.layers must be an integer in \[1, 1024\]/],
    [
      { network: { hidden: 60_000, layers: 100 } },
      new RegExp(`above the limit of ${MAX_PARAMETERS}`),
    ],
    [
      { schedule: { kind: "cosine", T: 1e9 } },
      new RegExp(`T must be an integer in \\[2, ${MAX_T}\\]`),
    ],
  ];
  for (const [o, re] of cases) {
    await assert.rejects(() => train({ ...TINY_TRAINING, ...o }), (e: Error) => {
      assert.ok(e instanceof OptionError, `${JSON.stringify(o)}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("hostile checkpoint configurations are refused naming the file, before any allocation", async () => {
  const model = await train({ ...TINY_TRAINING, steps: 1 });
  const good = decodeSafetensors(await encodeModel(model), "good");
  const config = JSON.parse(good.metadata.config);
  const forged = (metadata: Record<string, string>) =>
    encodeSafetensors(good.tensors, { ...good.metadata, ...metadata });
  const cases: [Record<string, string>, RegExp][] = [
    [
      { config: JSON.stringify({ ...config, network: { ...config.network, hidden: 1e9 } }) },
      /^evil\.safetensors: its configuration is unreadable: mlp: hidden must be an integer in \[1, 65536\]/,
    ],
    [
      { config: JSON.stringify({ ...config, network: { ...config.network, layers: 1e9 } }) },
      /^evil\.safetensors: its configuration is unreadable: mlp: layers must be an integer in \[1, 1024\]/,
    ],
    [
      {
        config: JSON.stringify({
          ...config,
          network: {
            kind: "unet",
            channels: 1,
            imageSize: 8,
            base: 1e9,
            mults: [1],
            groups: 1,
            heads: 1,
          },
        }),
      },
      /^evil\.safetensors: its configuration is unreadable: unet: base must be an integer in \[1, 65536\]/,
    ],
    [
      {
        config: JSON.stringify({
          ...config,
          network: { ...config.network, hidden: 60_000, layers: 100 },
        }),
      },
      /^evil\.safetensors: its configuration is unreadable: the network would have .* above the limit/,
    ],
    [
      { config: JSON.stringify({ ...config, network: { kind: "transformer" } }) },
      /^evil\.safetensors: its configuration is unreadable: network kind must be .*got "transformer"/,
    ],
    [
      { config: JSON.stringify({ ...config, schedule: { ...config.schedule, T: 1e9 } }) },
      /^evil\.safetensors: its configuration is unreadable: schedule: T must be an integer in \[2, 100000\]/,
    ],
    [{ config: "{not json" }, /^evil\.safetensors: its configuration is unreadable: /],
  ];
  for (const [metadata, re] of cases) {
    await assert.rejects(
      () => decodeModel(forged(metadata), "evil.safetensors", "reference"),
      (e: Error) => {
        assert.equal(e.name, "FileFormatError", String(e));
        assert.match(e.message, re);
        return true;
      },
    );
  }
});

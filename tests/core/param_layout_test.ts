/**
 * Every network's parameter layout (names, shapes, initialisation and order) equals the recorded
 * one in tests/fixtures/param_layouts.json, for a broad set of configurations: MLPs, UNets with
 * each option, the classifier. The order fixes the checkpoints' tensor order and the initial
 * weights (drawn from one random stream in layout order), so a change here changes every model.
 *
 * The fixture was recorded (tests/fixtures/record_param_layouts.ts) from the code before each
 * network was described once, when the parameter lists were written apart from the constructors
 * (`unetParamSpecs`, `mlpParamSpecs`, `classifierSpecs` beside `UNet`, `Mlp`, `Classifier`).
 */

import assert from "node:assert/strict";
import { type ClassifierConfig, classifierSpecs } from "../../src/eval/classifier.ts";
import { OptionError } from "../../src/errors.ts";
import type { MlpConfig } from "../../src/models/mlp.ts";
import {
  type NetworkConfig,
  type NetworkOptions,
  networkSpecs,
  resolveNetworkConfig,
} from "../../src/models/registry.ts";
import { unetConfig } from "../../src/models/unet.ts";
import { createReferenceBackend } from "../../src/backends/reference/mod.ts";
import { Linear } from "../../src/nn/linear.ts";
import {
  ParamLayout,
  ParamRecorder,
  type ParamSpec,
  ParamStore,
  recordParams,
} from "../../src/nn/params.ts";
import { Random } from "../../src/random.ts";

interface RecordedCase {
  name: string;
  network?: NetworkConfig;
  classifier?: ClassifierConfig;
  specs: ParamSpec[];
}

const CASES: RecordedCase[] = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/param_layouts.json", import.meta.url)),
);

const plain = (specs: readonly ParamSpec[]) =>
  specs.map((s) => ({ name: s.name, shape: [...s.shape], init: s.init }));

Deno.test("param layouts: the fixture covers MLPs, UNets and classifiers", () => {
  const kinds: string[] = CASES.map((c) => c.network?.kind ?? "classifier");
  for (const k of ["mlp", "unet", "classifier"]) assert.ok(kinds.includes(k), k);
  assert.equal(CASES.length, 27);
});

for (const c of CASES) {
  Deno.test(`param layouts: ${c.name} lays out the recorded tensors in the recorded order`, () => {
    const specs = c.network ? networkSpecs(c.network) : classifierSpecs(c.classifier!);
    assert.deepEqual(plain(specs), c.specs);
    // Hence the same flat buffer and the same initial weights.
    const a = new ParamLayout(specs), b = new ParamLayout(c.specs);
    assert.deepEqual(a.entries.map((e) => e.offset), b.entries.map((e) => e.offset));
    assert.equal(a.length, b.length);
    if (a.length < 200_000) {
      assert.deepEqual(a.initialValues(new Random(5)), b.initialValues(new Random(5)));
    }
  });
}

Deno.test("param sources: a recorder lists the declarations in order; a store checks them against its layout", () => {
  const rec = new ParamRecorder();
  const lin = new Linear(rec, "fc", 3, 2);
  assert.deepEqual(rec.specs, [
    { name: "fc.weight", shape: [2, 3], init: { kind: "uniform", bound: 1 / Math.sqrt(3) } },
    { name: "fc.bias", shape: [2], init: { kind: "uniform", bound: 1 / Math.sqrt(3) } },
  ]);
  // Recorded parameters have a shape and no values.
  assert.deepEqual([...lin.weight.shape], [2, 3]);
  assert.throws(() => lin.forward(lin.weight), /records its parameters and cannot compute/);
  assert.throws(() => new Linear(rec, "fc", 3, 2), /fc.weight is declared twice/);

  const be = createReferenceBackend();
  const layout = new ParamLayout(recordParams((p) => new Linear(p, "fc", 3, 2)));
  const store = new ParamStore(be, layout, be.alloc(layout.length), be.alloc(layout.length));
  const bound = new Linear(store, "fc", 3, 2);
  assert.equal(bound.weight.size, 6);
  assert.ok(bound.weight.requiresGrad);
  assert.throws(
    () => new Linear(store, "fc", 4, 2),
    /parameter fc.weight has shape \[2,3\] in the layout, the network asks for \[2,4\]/,
  );
  assert.throws(() => new Linear(store, "head", 3, 2), /no parameter called head.weight/);
});

Deno.test("resolveNetworkConfig: each network fills in its defaults and rejects bad options with an OptionError", () => {
  assert.deepEqual(resolveNetworkConfig(undefined, [100, 2], 50), {
    kind: "mlp",
    dim: 2,
    hidden: 256,
    layers: 3,
    T: 50,
    timeInput: "scalar",
    embeddingDim: 32,
  });
  assert.equal((resolveNetworkConfig({ kind: "mlp" }, [100, 1], 50) as MlpConfig).hidden, 128);
  assert.deepEqual(resolveNetworkConfig({ kind: "unet" }, [10, 1, 28, 28], 1000), unetConfig());
  assert.deepEqual(
    resolveNetworkConfig({ kind: "unet", base: 16 }, [10, 3, 32, 32], 1000),
    unetConfig({ channels: 3, imageSize: 32, base: 16 }),
  );
  const bad: [NetworkOptions, number[], RegExp][] = [
    [
      { kind: "cnn" as "mlp" },
      [10, 2],
      /network.kind must be "mlp", "unet" or "fc-unet", got "cnn"/,
    ],
    [{ hidden: 0 }, [10, 2], /network.hidden must be an integer in \[1, 65536\], got 0/],
    [{ layers: 1.5 }, [10, 2], /network.layers/],
    [{ timeInput: "learned" as "scalar" }, [10, 2], /network.timeInput must be one of/],
    [
      { timeInput: "sinusoidal", embeddingDim: 5 },
      [10, 2],
      /network.embeddingDim must be even and in \[4, 65536\], got 5/,
    ],
    [
      { kind: "unet" },
      [10, 1, 28, 27],
      /a UNet needs square images: data.shape \[count, channels, size, size\], got \[10,1,28,27\]/,
    ],
    [{ kind: "unet", heads: 3 }, [10, 1, 28, 28], /unet: 64 channels do not split into 3 heads/],
  ];
  for (const [options, shape, re] of bad) {
    assert.throws(
      () => resolveNetworkConfig(options, shape, 1000),
      (e: Error) => e instanceof OptionError && re.test(e.message),
      JSON.stringify(options),
    );
  }
});

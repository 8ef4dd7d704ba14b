/**
 * The wasm backend's own memory: its heap (blocks that scopes and frees give back coalesce, growth
 * past the initial size, running out with an error naming the size asked for), and handles that
 * it refuses at once: freed storage, and storage of another wasm backend or of the reference
 * backend. (What every backend's memory does is in tests/backends/conformance/memory_test.ts.)
 */

import assert from "node:assert/strict";
import { createReferenceBackend } from "../../../src/backends/reference/mod.ts";
import { openWasmBackend } from "../../../wasm/backend.ts";
import { WasmOutOfMemoryError } from "../../../wasm/heap.ts";
import { sample, train } from "../../../mod.ts";

Deno.test("wasm memory: freed storage, and storage of another backend, are refused at once", () => {
  const be = openWasmBackend({ initialMiB: 1 }), other = openWasmBackend({ initialMiB: 1 });
  const a = be.upload([1, 2, 3]), v = be.view(a, 1, 2);
  be.free(a);
  assert.throws(() => be.read(a), /freed/);
  assert.throws(() => be.read(v), /freed/);
  assert.throws(() => be.read(createReferenceBackend().alloc(2)), /another backend/);
  assert.throws(() => be.read(other.alloc(2)), /another backend/);
  assert.throws(() => other.read(be.alloc(2)), /another backend/);
});

Deno.test("wasm memory: scopes release all but the kept handles; blocks coalesce", async () => {
  const be = openWasmBackend({ initialMiB: 1 });
  const before = be.heap.used, ranges = be.heap.freeRanges;
  const outer = be.upload([1, 2, 3]);
  be.beginScope();
  const t1 = be.alloc(1000);
  const kept = be.upload([4, 5]);
  be.beginScope();
  const inner = be.alloc(50);
  const innerKept = be.affine(kept, 2, 0);
  be.endScope([innerKept]);
  assert.throws(() => be.read(inner), /freed/);
  assert.deepEqual([...await be.read(innerKept)], [8, 10]);
  be.free(t1); // freed by hand inside a scope: the scope skips it
  const keptView = be.view(kept, 1, 1);
  be.endScope([keptView]); // keeping a view keeps its storage
  assert.deepEqual([...await be.read(kept)], [4, 5]);
  assert.throws(() => be.read(innerKept), /freed/);
  be.free(kept);
  be.free(outer);
  assert.equal(be.heap.used, before);
  assert.equal(be.heap.freeRanges, ranges);
  assert.throws(() => be.endScope(), /without beginScope/);
});

Deno.test("wasm memory: grows past its initial size and keeps the data", async () => {
  const be = openWasmBackend({ initialMiB: 1 });
  const small = be.upload([1, 2, 3]);
  const cap = be.heap.capacity;
  const big = be.alloc(3 << 20); // 12 MiB
  assert.ok(be.heap.capacity > cap);
  be.fill(big, 2);
  const v = be.view(big, (3 << 20) - 3, 3);
  assert.deepEqual([...await be.read(v)], [2, 2, 2]);
  assert.deepEqual([...await be.read(small)], [1, 2, 3]);
  const y = be.affine(small, 1, 1);
  assert.deepEqual([...await be.read(y)], [2, 3, 4]);
});

Deno.test("wasm memory: running out ends in an error naming the size asked for", () => {
  const be = openWasmBackend({ initialMiB: 1, maxMiB: 8 });
  be.alloc(1000);
  assert.throws(
    () => be.alloc(4 << 20),
    (e: unknown) =>
      e instanceof WasmOutOfMemoryError && e.bytes === 16 << 20 &&
      /out of memory allocating 16777216 bytes \(4194304 float32 values\)/.test(e.message),
  );
  be.alloc(1000); // still usable
});

Deno.test("wasm memory: sampling keeps no activations across steps (the heap is as large after 40 steps as after 2)", async () => {
  const be = openWasmBackend({ threads: 1 });
  const data = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i));
  const model = await train({
    data: { values: data, shape: [1000, 2] },
    steps: 2,
    batchSize: 64,
    network: { hidden: 64 },
    schedule: { kind: "linear", T: 40, betaStart: 1e-4, betaEnd: 0.02 },
    backend: be,
  });
  const used = be.heap.used;
  await sample(model, { count: 3000, steps: 2 });
  const capacity = be.heap.capacity;
  assert.equal(be.heap.used, used, "two steps leave nothing allocated");
  await sample(model, { count: 3000, steps: 40 });
  assert.equal(be.heap.used, used, "forty steps leave nothing allocated");
  assert.equal(be.heap.capacity, capacity, "forty steps need no more memory than two");
  be.dispose();
});

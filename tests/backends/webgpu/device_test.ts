/**
 * The WebGPU backend as a device: the probe and adapter report, warming up every kernel, the
 * buffer pool's size classes, steady state (scoped steps and training steps create no buffers, bind
 * groups or pipelines after the first, and a training step submits twice), clear errors for a
 * kernel that fails to compile, a lost device and use after dispose, and the per-kernel profile.
 * Runs on any adapter, software ones included (llvmpipe); ignored where there is none.
 */

import assert from "node:assert/strict";
import { conv2dGeometry } from "../../../src/backend.ts";
import { DeviceLostError } from "../../../src/errors.ts";
import { Random } from "../../../src/random.ts";
import { type Dataset, train } from "../../../src/train.ts";
import { createWebGpuBackend, type WebGpuBackend } from "../../../gpu/mod.ts";
import { allKernels } from "../../../gpu/backend.ts";
import { sizeClass } from "../../../gpu/buffer_pool.ts";
import { ro, rw } from "../../../gpu/wgsl.ts";
import { probe, webgpuTest } from "../../helpers/webgpu.ts";

/** Float32 normals, deterministic. */
function normals(n: number, seed: number): Float32Array {
  return Float32Array.from(new Random(seed, 7).normals(n));
}

webgpuTest("probe and adapter report", async (be) => {
  assert.equal(typeof probe.usable, "boolean");
  assert.ok(probe.reason.length > 0);
  assert.equal(be.name, "webgpu");
  assert.ok(be.adapterInfo.description.length > 0);
  if (be.adapterInfo.isFallbackAdapter) {
    assert.equal(probe.usable, false, "a software adapter is not reported usable");
    await assert.rejects(() => createWebGpuBackend(), /software/);
  }
  await Promise.resolve();
});

webgpuTest("warmup compiles every kernel with createComputePipelineAsync", async (be) => {
  await be.warmup();
  assert.ok(be.stats().pipelines >= allKernels().length);
});

webgpuTest(
  "the buffer pool: size classes; scoped steps create no buffers after the first",
  async (be) => {
    assert.ok(sizeClass(1) === 256 && sizeClass(1000) === 1024 && sizeClass(1025) === 1280);
    const x = be.upload([1, 2, 3, 4]);
    const step = () => {
      be.beginScope();
      const a = be.unary("exp", x);
      be.binary("add", a, x, { a: [4], b: [4], out: [4] });
      be.flush();
      be.endScope();
    };
    step();
    step();
    const before = be.stats().buffers;
    for (let i = 0; i < 5; i++) step();
    assert.equal(be.stats().buffers, before);
    await be.read(x);
  },
);

/** n points of a Gaussian at (1, -1) with spread 0.3. */
function gaussianData(n: number, seed: number): Dataset {
  const r = new Random(seed), z = r.normals(2 * n), v = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    v[2 * i] = 0.3 * z[2 * i] + 1;
    v[2 * i + 1] = 0.3 * z[2 * i + 1] - 1;
  }
  return { values: v, shape: [n, 2] };
}

webgpuTest("a training step submits twice and creates nothing in steady state", async (be) => {
  const stats: ReturnType<WebGpuBackend["stats"]>[] = [];
  await train({
    data: gaussianData(200, 1),
    steps: 10,
    batchSize: 16,
    network: { hidden: 32 },
    schedule: { kind: "cosine", T: 20 },
    progressEvery: 1,
    seed: 3,
    backend: be,
    onProgress: () => stats.push(be.stats()),
  });
  assert.equal(stats.length, 10);
  // Steady state: one submit per step plus the loss read, and no new buffers or bind groups.
  const [s4, s9] = [stats[4], stats[9]];
  assert.equal(s9.submits - s4.submits, 10, "two submits per step (flush, read)");
  assert.equal(s9.buffers, s4.buffers, "no buffers created in steady state");
  assert.equal(s9.bindGroups, s4.bindGroups, "no bind groups created in steady state");
  assert.equal(s9.pipelines, s4.pipelines);
});

webgpuTest(
  "a kernel that fails to compile, a lost device, and use after dispose end in clear errors",
  async () => {
    const bad = {
      key: "broken_for_test",
      bindings: [ro("x"), rw("out")],
      params: [["n", "u32"]] as const,
      workgroup: [64] as const,
      body: "  out[0] = undefined_name;",
    };
    const a = await createWebGpuBackend({ allowFallbackAdapter: true });
    await assert.rejects(
      () => a.pipelines.compile(bad),
      /broken_for_test kernel failed to compile/,
    );
    a.pipelines.get(bad, false); // the synchronous path records the failure...
    await assert.rejects(() => a.read(a.upload([1])), /failed to compile/); // ...and read reports it
    assert.throws(() => a.flush(), /failed to compile/);
    a.dispose();

    const b = await createWebGpuBackend({ allowFallbackAdapter: true });
    const x = b.upload([1, 2]);
    b.device.destroy(); // as if the device were lost
    await new Promise((r) => setTimeout(r, 50));
    const reading = b.read(x).then(() => "resolved", (e: Error) => e);
    const result = await Promise.race([
      reading,
      new Promise((r) => setTimeout(() => r("hang"), 5000)),
    ]);
    assert.match(String(result), /lost|dispose|destroy/i);
    // A lost device is a DeviceLostError: `--backend auto` goes on with wasm from a checkpoint.
    assert.ok(result instanceof DeviceLostError, String(result));
    assert.throws(() => b.unary("neg", x), DeviceLostError);
    b.dispose();
    assert.throws(() => b.alloc(1), /dispose|lost/);
  },
);

webgpuTest("profile: GPU time per kernel, labelled by shape, only when asked for", async (be) => {
  await assert.rejects(be.profile(), /profile: true/);
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter?.features.has("timestamp-query")) {
    console.log("skipped (the adapter has no timestamp-query feature)");
    return;
  }
  const prof = await createWebGpuBackend({ allowFallbackAdapter: true, profile: true });
  try {
    const a = prof.upload(normals(40 * 30, 31)), b = prof.upload(normals(30 * 20, 32));
    for (let i = 0; i < 3; i++) {
      prof.matmul(a, b, { batch: 1, m: 40, k: 30, n: 20, transA: false, transB: false });
    }
    const g = conv2dGeometry(2, 3, 9, 9, 4, 3, 1, 1);
    prof.conv2d(prof.upload(normals(2 * 3 * 81, 33)), prof.upload(normals(4 * 27, 34)), null, g);
    prof.flush();
    const rows = await prof.profile(true);
    const mm = rows.find((r) => r.label === "matmul 1x 40x30 @ 30x20");
    assert.ok(mm, `a matmul row among ${rows.map((r) => r.label)}`);
    assert.equal(mm.calls, 3);
    const conv = rows.find((r) => r.label === "conv fwd 3->4 3x3/1 @9 n2");
    assert.ok(conv, `a conv row among ${rows.map((r) => r.label)}`);
    for (const r of rows) assert.ok(r.ms >= 0 && r.ms < 1e4, `${r.label}: ${r.ms} ms`);
    assert.ok(rows.some((r) => r.ms > 0), "some kernel took measurable time");
    assert.ok(rows.every((r, i) => i === 0 || rows[i - 1].ms >= r.ms), "largest first");
    assert.deepEqual(await prof.profile(), [], "profile(true) started afresh");
  } finally {
    prof.dispose();
  }
});

/**
 * The WebGPU backend's kernel-choice policy (gpu/policy.ts), without a GPU: the GEMM tile of a
 * product, when and how far a convolution product splits K, how `reduceSum` lays out its sums, the
 * workgroups of a whole-buffer reduction, and when convolutions are compiled for their shape.
 */

import assert from "node:assert/strict";
import {
  TILE_LARGE,
  TILE_MEDIUM,
  TILE_SMALL,
  TILE_WIDE,
  TILE_XL,
  TILES,
} from "../../../gpu/kernels/gemm.ts";
import {
  chooseTile,
  MIN_WORKGROUPS,
  partialSumGroups,
  planReduceSum,
  planSplitK,
  specializeShapes,
  SPLIT_FILTER,
  SPLIT_WHEN_FEW,
  type SplitRule,
  workgroups,
} from "../../../gpu/policy.ts";
import { REDUCE_WG } from "../../../gpu/kernels/reduce.ts";

/** Products that pick each tile: [batch, m, k, n, the tile chooseTile must pick]. */
const TILE_CASES = [
  [1, 64, 19, 16384, TILE_XL],
  [1, 30, 11, 16384, TILE_WIDE],
  [1, 64, 7, 8192, TILE_LARGE],
  [1, 30, 9, 8192, TILE_MEDIUM],
  [1, 70, 5, 100, TILE_SMALL],
] as const;

Deno.test("chooseTile: large tiles where there is work, no tile taller than needed", () => {
  for (const [batch, m, , n, tile] of TILE_CASES) {
    assert.deepEqual(chooseTile(m, n, batch), tile, `${m}x${n}`);
  }
  assert.equal(new Set(TILE_CASES.map((c) => c[4])).size, TILES.length, "every tile is covered");
  for (const m of [1, 17, 32]) assert.ok(chooseTile(m, 1 << 20, 1).bm === 32, `m ${m}`);
});

Deno.test("workgroups: tiles over the output, times the batch", () => {
  assert.equal(workgroups(TILE_XL, 64, 128, 1), 1);
  assert.equal(workgroups(TILE_XL, 65, 129, 3), 2 * 2 * 3);
  assert.equal(workgroups(TILE_SMALL, 70, 100, 1), 3 * 4);
  // Batches fill the GPU too: a small product repeated picks a large tile.
  assert.equal(chooseTile(64, 128, MIN_WORKGROUPS), TILE_XL);
});

/** The invariants of every split plan: chunks cover K, none is empty, and the rule's bounds. */
function checkPlan(M: number, N: number, K: number, rule: SplitRule): void {
  const what = `${M}x${N} depth ${K}`;
  const { tile, splits, kChunk } = planSplitK(M, N, K, rule);
  assert.ok(splits >= 1 && Number.isInteger(splits), `${what}: ${splits} splits`);
  assert.ok(splits * kChunk >= K, `${what}: chunks cover K`);
  assert.ok((splits - 1) * kChunk < K, `${what}: no empty chunk`);
  if (splits > 1) {
    assert.equal(kChunk % tile.bk, 0, `${what}: chunks are whole slabs`);
    assert.ok(kChunk >= rule.minDepth, `${what}: chunks at least ${rule.minDepth} deep`);
    const tiles = workgroups(tile, M, N, 1);
    assert.ok(tiles < rule.below, `${what}: split only below ${rule.below} workgroups`);
    assert.ok(tiles * splits < rule.target + tiles, `${what}: about ${rule.target} workgroups`);
  }
}

Deno.test("planSplitK: forward and data gradient split only small outputs", () => {
  // The UNet's 28x28 level, batch 128: enough workgroups, chooseTile's pick, K whole.
  assert.deepEqual(planSplitK(64, 128 * 28 * 28, 288, SPLIT_WHEN_FEW), {
    tile: chooseTile(64, 128 * 28 * 28, 1),
    splits: 1,
    kChunk: 288,
  });
  // Its 7x7 level: 49 workgroups on the 64 x 128 tile, so K splits 6 ways (294 workgroups).
  assert.deepEqual(planSplitK(64, 128 * 49, 576, SPLIT_WHEN_FEW), {
    tile: TILE_XL,
    splits: 6,
    kChunk: 96,
  });
  // Too shallow to split (under two chunks of 64): one chunk, rounded up to whole slabs.
  assert.deepEqual(planSplitK(64, 128 * 49, 100, SPLIT_WHEN_FEW), {
    tile: TILE_XL,
    splits: 1,
    kChunk: 104,
  });
  for (const [M, N, K] of [[64, 6272, 576], [64, 6272, 100], [3, 50, 7], [256, 100, 5000]]) {
    checkPlan(M, N, K, SPLIT_WHEN_FEW);
  }
});

Deno.test("planSplitK: filter gradients always split their long K", () => {
  // 32 filters of 32 x 3 x 3 over batch 128 at 28x28: 3 workgroups, K in 170 chunks of 592.
  assert.deepEqual(planSplitK(32, 288, 128 * 28 * 28, SPLIT_FILTER), {
    tile: TILE_WIDE,
    splits: 170,
    kChunk: 592,
  });
  // 64 filters of 64 x 3 x 3 at 7x7: 5 workgroups on the 64 x 128 tile, 24 chunks.
  assert.deepEqual(planSplitK(64, 576, 128 * 49, SPLIT_FILTER), {
    tile: TILE_XL,
    splits: 24,
    kChunk: 264,
  });
  // Shallower than one chunk of 256: no split.
  assert.equal(planSplitK(128, 576, 200, SPLIT_FILTER).splits, 1);
  for (const [M, N, K] of [[32, 288, 100352], [64, 576, 6272], [128, 576, 200], [4, 27, 1e6]]) {
    checkPlan(M, N, K, SPLIT_FILTER);
  }
});

Deno.test("planReduceSum: a workgroup per long sum, split into chunks; else a thread each", () => {
  // A bias gradient: 32 channels over batch 128 at 28x28, 16 chunks of 6,272.
  assert.deepEqual(planReduceSum(32, 128 * 28 * 28), {
    kind: "group",
    chunks: 16,
    chunk: 6272,
    splits: 16,
  });
  assert.deepEqual(planReduceSum(10, 1000), { kind: "group", chunks: 1, chunk: 1000, splits: 1 });
  assert.deepEqual(planReduceSum(4096, 1e6), { kind: "thread" }, "many outputs");
  assert.deepEqual(planReduceSum(100, 63), { kind: "thread" }, "short sums");
  for (const [outputs, count] of [[1, 5e6], [7, 70000], [4095, 64], [300, 12345]]) {
    const p = planReduceSum(outputs, count);
    assert.equal(p.kind, "group");
    if (p.kind !== "group") continue;
    assert.equal(p.splits, p.chunks, `${outputs} x ${count}: every chunk has work`);
    assert.ok(p.chunk * p.splits >= count && (p.splits - 1) * p.chunk < count);
    assert.ok(p.chunks === 1 || p.chunk >= 4096, "chunks of at least 4,096");
    assert.ok(p.chunks <= Math.max(1, Math.ceil(512 / outputs)), "about 512 workgroups");
  }
});

Deno.test("partialSumGroups: a workgroup per 4 x REDUCE_WG elements, 1 to 256", () => {
  const per = REDUCE_WG * 4;
  assert.equal(partialSumGroups(0), 1);
  assert.equal(partialSumGroups(1), 1);
  assert.equal(partialSumGroups(per), 1);
  assert.equal(partialSumGroups(per + 1), 2);
  assert.equal(partialSumGroups(256 * per), 256);
  assert.equal(partialSumGroups(1e9), 256);
});

Deno.test("specializeShapes: as asked, else on hardware adapters only", () => {
  assert.equal(specializeShapes(undefined, false), true);
  assert.equal(specializeShapes(undefined, true), false);
  assert.equal(specializeShapes(true, true), true);
  assert.equal(specializeShapes(false, false), false);
});

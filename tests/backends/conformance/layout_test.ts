/**
 * Conformance of the layout kernels on every backend: nearest upsampling by factors 2 and 3 (exact)
 * and its backward (block sums), concat of parts (an empty one included) and slices of the result,
 * gather and gatherRows (repeated indices, the first and last rows, rows of 1 to 9): every copy
 * exact.
 */

import { conformance } from "./harness.ts";

conformance("layout: upsampleNearest and its backward", async (c) => {
  const { be, ref, data } = c;
  const shapes = [[1, 1, 1, 2], [3, 5, 7, 2], [2, 4, 9, 3], [2, 7, 7, 2], [3, 3, 8, 2], [
    5,
    2,
    14,
    2,
  ]];
  shapes.push([3, 5, 4, 2], [3, 5, 4, 3]);
  for (const [planes, h, w, factor] of shapes) {
    const spec = { planes, h, w, factor }, what = `upsample ${planes}x${h}x${w} by ${factor}`;
    const [xb, xr] = c.pair(data.normal(planes * h * w));
    await c.exact(be.upsampleNearest(xb, spec), ref.upsampleNearest(xr, spec), what);
    const [db, dr] = c.pair(data.normal(planes * h * w * factor * factor));
    await c.same(
      be.upsampleNearestBackward(db, spec),
      ref.upsampleNearestBackward(dr, spec),
      `${what}'`,
    );
  }
});

conformance("layout: concat, and every slice of the result", async (c) => {
  const { be, ref, data } = c;
  const rows: [number, number[], number][] = [[1, [2, 3], 1], [4, [1, 5, 2], 3], [6, [3, 1], 7], [
    4,
    [2, 0, 3],
    5,
  ]];
  for (const [outer, sizes, inner] of rows) {
    const what = `concat ${outer} [${sizes}] ${inner}`;
    const parts = sizes.map((s) => c.pair(data.normal(outer * s * inner)));
    const cb = be.concat(parts.map((p) => p[0]), { outer, sizes, inner });
    const cr = ref.concat(parts.map((p) => p[1]), { outer, sizes, inner });
    await c.exact(cb, cr, what);
    const axis = sizes.reduce((a, b) => a + b, 0);
    // Slices of two (the last may be one), and one of three from 1.
    const slices: [number, number][] = [];
    for (let start = 0; start < axis; start += 2) slices.push([start, Math.min(2, axis - start)]);
    if (axis >= 4) slices.push([1, 3]);
    for (const [start, len] of slices) {
      const spec = { outer, axis, start, len, inner };
      await c.exact(
        be.slice(cb, spec),
        ref.slice(cr, spec),
        `${what}: slice ${start}:${start + len}`,
      );
    }
  }
});

conformance("layout: gather and gatherRows", async (c) => {
  const { be, ref, data } = c;
  // A table of 50 with 77 random indices; one of 40 with its ends and a repeat.
  for (const [n, index] of [[50, data.indices(77, 50)], [40, [3, 0, 39, 17, 17, 5]]] as const) {
    const [tb, tr] = c.pair(data.normal(n)), [ib, ir] = c.pair(index);
    await c.exact(be.gather(tb, ib), ref.gather(tr, ir), `gather from ${n}`);
  }
  // 10 rows of 3 with 16 random indices; 10 rows of 4 with the ends and a repeat; rows of 1, 8
  // (copied word by word on wasm) and 9 (by memory.copy) with 21 random indices.
  const cases = [
    [3, data.indices(16, 10)],
    [4, [3, 0, 9, 7, 7]],
    [1, data.indices(21, 10)],
    [8, data.indices(21, 10)],
    [9, data.indices(21, 10)],
  ] as const;
  for (const [cols, index] of cases) {
    const [tb, tr] = c.pair(data.normal(10 * cols)), [ib, ir] = c.pair(index);
    await c.exact(
      be.gatherRows(tb, ib, cols),
      ref.gatherRows(tr, ir, cols),
      `gatherRows of ${cols}`,
    );
  }
});

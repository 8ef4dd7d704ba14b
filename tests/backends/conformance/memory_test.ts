/**
 * Conformance of the memory kernels on every backend: alloc (zero-filled, empty included), upload
 * and read (copies both ways), write at an offset, views (of views too) sharing memory both ways at
 * odd offsets, fill, copy (between aliased views of one storage too) and axpy into views; range
 * errors; scopes that release all but the kept handles (a kept view keeps its storage) and memory
 * handed out again zero-filled; writes ordered after the kernels recorded before them; and storage
 * that was freed, or belongs to another backend, refused by name (freeing holds on the backends
 * that release memory: wasm and webgpu).
 */

import assert from "node:assert/strict";
import type { Storage } from "../../../src/backend.ts";
import { conformance } from "./harness.ts";

conformance(
  "memory: alloc, upload, write, read, views, fill, copy, axpy, range errors",
  async (c) => {
    const { be } = c;
    const values = async (s: Storage) => [...await c.read(s)];
    const z = be.alloc(13);
    assert.equal(z.length, 13);
    assert.deepEqual(await values(z), new Array(13).fill(0));
    assert.equal((await c.read(be.alloc(0))).length, 0);

    // upload copies its argument; read returns a copy.
    const src = [1, 2, 3, 4, 5, 6, 7];
    const a = be.upload(src);
    src[0] = 99;
    const r1 = await c.read(a);
    r1[1] = 99;
    assert.deepEqual(await values(a), [1, 2, 3, 4, 5, 6, 7]);

    // write at an offset, into storage and into a view.
    be.write(a, [9, 8], 3);
    assert.deepEqual(await values(a), [1, 2, 3, 9, 8, 6, 7]);
    const v = be.view(a, 2, 4);
    assert.equal(v.length, 4);
    assert.deepEqual(await values(v), [3, 9, 8, 6]);
    be.write(v, [40, 50], 1);
    assert.deepEqual(await values(a), [1, 2, 3, 40, 50, 6, 7]);

    // A view of a view shares memory both ways and touches only its range; freeing it does nothing.
    const vv = be.view(v, 1, 2);
    be.fill(vv, -1);
    assert.deepEqual(await values(a), [1, 2, 3, -1, -1, 6, 7]);
    be.write(a, [42], 4);
    assert.deepEqual(await values(vv), [-1, 42]);
    be.free(vv);
    assert.deepEqual(await values(a), [1, 2, 3, -1, 42, 6, 7]);

    // copy is a copy, not an alias; copy and axpy into views; copy between views of one storage.
    const b = be.alloc(4);
    be.copy(b, v);
    assert.deepEqual(await values(b), [3, -1, 42, 6]);
    be.fill(v, 0);
    assert.deepEqual(await values(b), [3, -1, 42, 6], "copy is a copy, not an alias");
    be.copy(v, be.upload([9, 8, 7, 6]));
    be.axpy(be.view(a, 3, 3), be.upload([1, 2, 3]), 2);
    assert.deepEqual(await values(a), [1, 2, 9, 10, 11, 12, 7]);
    be.copy(be.view(a, 5, 2), be.view(a, 0, 2)); // one storage: an aliased copy
    assert.deepEqual(await values(a), [1, 2, 9, 10, 11, 1, 2]);
    const y = be.upload([1, 1, 1]);
    be.axpy(y, be.upload([1, 2, 3]), -0.5);
    assert.deepEqual(await values(y), [0.5, 0, -0.5]);
    be.fill(y, 3);
    assert.deepEqual(await values(y), [3, 3, 3]);
    // A long fill (split over the threads where the backend splits) touches only its view.
    const long = be.upload(Array.from({ length: 1003 }, (_, i) => i));
    be.fill(be.view(long, 3, 997), 2.5);
    const lv = await values(long);
    assert.deepEqual(lv.slice(0, 3), [0, 1, 2]);
    assert.deepEqual(lv.slice(1000), [1000, 1001, 1002]);
    assert.ok(lv.slice(3, 1000).every((x) => x === 2.5), "the view filled");

    // Ranges outside the storage.
    assert.throws(() => be.view(a, 5, 3), RangeError);
    assert.throws(() => be.view(a, -1, 2), RangeError);
    assert.throws(() => be.write(a, [1, 2], 6), RangeError);
    assert.throws(() => be.copy(b, a), RangeError);
    assert.throws(() => be.axpy(y, be.upload([1, 2]), 1), RangeError);
  },
);

conformance("memory: freed storage and storage of another backend are refused", async (c) => {
  const { be, ref } = c;
  if (c.target.frees) {
    const a = be.upload([1, 2, 3, 4, 5]), v = be.view(a, 1, 3);
    be.free(a);
    await assert.rejects(async () => await be.read(a), /freed/);
    assert.throws(() => be.fill(v, 0), /freed/);
    assert.throws(() => be.unary("neg", a), /freed/);
  }
  // A handle that is no storage of this kind of backend.
  const foreign: Storage[] = [{ length: 2 }];
  if (c.target.kind !== "reference") foreign.push(ref.alloc(2));
  for (const f of foreign) {
    assert.throws(() => be.unary("neg", f), TypeError);
    await assert.rejects(async () => await be.read(f), /another backend/);
  }
});

conformance(
  "memory: scopes release all but the kept handles; freed memory comes back zeroed",
  async (c) => {
    const { be } = c;
    const values = async (s: Storage) => [...await c.read(s)];
    const x = be.upload([1, 2, 3, 4]);
    be.beginScope();
    const t = be.affine(x, 2, 0);
    const kept = be.affine(t, 1, 1);
    const held = be.upload([4, 5]);
    be.beginScope();
    const inner = be.affine(kept, 1, 0);
    const innerKept = be.affine(held, 2, 0);
    be.endScope([innerKept]);
    const byHand = be.alloc(1000);
    be.free(byHand); // freed by hand inside a scope: the scope skips it
    be.endScope([kept, be.view(held, 1, 1)]); // keeping a view keeps its storage
    // t was released before any submit that computes kept from it: the allocation below must not
    // take (and overwrite) its memory before that.
    const clobber = be.upload([100, 100, 100, 100]);
    assert.deepEqual(await values(kept), [3, 5, 7, 9]);
    assert.deepEqual(await values(held), [4, 5]);
    assert.deepEqual(await values(clobber), [100, 100, 100, 100]);
    if (c.target.frees) {
      for (const s of [t, inner, innerKept]) {
        await assert.rejects(
          async () => await be.read(s),
          /freed/,
        );
      }
      assert.throws(() => be.endScope(), /without beginScope/);
    } else {
      assert.deepEqual(await values(innerKept), [8, 10]);
    }
    // Memory freed (after a flush, and again after one) is handed out again zero-filled.
    const sevens = be.upload(new Array(100).fill(7));
    be.flush();
    be.free(sevens);
    be.flush();
    assert.deepEqual(await values(be.alloc(100)), new Array(100).fill(0));
  },
);

conformance("memory: writes run after the kernels recorded before them", async (c) => {
  const { be } = c;
  const x = be.upload([1, 2, 3]);
  const y = be.affine(x, 2, 0); // on a GPU: recorded, not yet submitted
  be.write(x, [10, 20, 30]); // must not overtake the affine
  const z = be.affine(x, 1, 1);
  assert.deepEqual([...await c.read(y)], [2, 4, 6]);
  assert.deepEqual([...await c.read(z)], [11, 21, 31]);
});

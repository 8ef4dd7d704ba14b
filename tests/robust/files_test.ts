/**
 * Files under faults: a failed write names the file the user asked for (never the hidden
 * temporary file) and leaves nothing behind; the temporary files of a killed run are removed by
 * the next run in that folder (and only those: a fresh one may be another run's write in progress).
 */

import assert from "node:assert/strict";
import { removeStaleTemporaryFiles, writeFileAtomic } from "../../io.ts";
import { prepareOutDir } from "../../scripts/cli.ts";

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("a failed atomic write names the target, not its temporary file, and leaves no file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_write_" });
  try {
    // The target is a folder: the rename fails after the temporary file was written.
    await Deno.mkdir(`${dir}/model.safetensors`);
    await assert.rejects(
      () => writeFileAtomic(`${dir}/model.safetensors`, new Uint8Array(100)),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^cannot write ${dir}/model\\.safetensors: `));
        assert.doesNotMatch(e.message, /\.tmp/);
        return true;
      },
    );
    assert.deepEqual(names(dir), ["model.safetensors"]);
    // A missing folder.
    await assert.rejects(
      () => writeFileAtomic(`${dir}/missing/a.png`, new Uint8Array(1)),
      new RegExp(`^Error: cannot write ${dir}/missing/a\\.png: .*No such file`),
    );
    await writeFileAtomic(`${dir}/ok.bin`, new Uint8Array([1, 2, 3]));
    assert.deepEqual(await Deno.readFile(`${dir}/ok.bin`), new Uint8Array([1, 2, 3]));
    assert.deepEqual(names(dir), ["model.safetensors", "ok.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a killed run's temporary files are removed by the next run; fresh ones and others stay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "robust_stale_" });
  try {
    const old = new Date(Date.now() - 10 * 60_000);
    const stale = [".checkpoint.safetensors.0123abcd.tmp", ".samples_000500_ema.png.deadbeef.tmp"];
    for (const name of stale) {
      await Deno.writeFile(`${dir}/${name}`, new Uint8Array(10));
      await Deno.utime(`${dir}/${name}`, old, old);
    }
    // A write in progress (fresh), a user's own file with a similar name, and the checkpoint.
    const kept = [".checkpoint.safetensors.89abcdef.tmp", "notes.tmp", "checkpoint.safetensors"];
    for (const name of kept) await Deno.writeFile(`${dir}/${name}`, new Uint8Array(1));
    await Deno.utime(`${dir}/notes.tmp`, old, old);
    await prepareOutDir(dir);
    assert.deepEqual(names(dir), [...kept].sort());
    assert.deepEqual(await removeStaleTemporaryFiles(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

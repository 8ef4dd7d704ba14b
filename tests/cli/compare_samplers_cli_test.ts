/**
 * scripts/compare_samplers.ts on a tiny spiral model: every requested sampler at every budget within
 * it (the steps that fit), the table, the JSON and a PNG per figure; bad flags end in one line.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

async function run(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("compare_samplers.ts: each sampler within each budget, a table, JSON and plots", async () => {
  const dir = await Deno.makeTempDir({ prefix: "compare_samplers_" });
  try {
    const tiny = [
      "--steps",
      "40",
      "--batch",
      "32",
      "--hidden",
      "16",
      "--T",
      "20",
      "--samples",
      "50",
    ];
    const trained = await run("scripts/spiral.ts", [...tiny, "--no-eval", "--out", dir]);
    assert.equal(trained.code, 0, trained.stderr);
    const out = `${dir}/cmp`;
    const r = await run("scripts/compare_samplers.ts", [
      `${dir}/model.safetensors`,
      "--samplers",
      "ddpm,heun,dpm++2m",
      "--evaluations",
      "3,6",
      "--count",
      "200",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    type Row = {
      sampler: string;
      steps: number;
      evaluations: number;
      values: Record<string, number>;
    };
    const report = JSON.parse(await Deno.readTextFile(`${out}/samplers.json`)) as {
      count: number;
      seed: number;
      rows: Row[];
    };
    assert.equal(report.count, 200);
    assert.equal(report.seed, 0);
    const rows = report.rows;
    // ddpm and dpm++2m at 3 and 6 calls; heun (2 steps - 1 calls) at 3 and 5; the reference last.
    assert.deepEqual(rows.map((x) => [x.sampler, x.evaluations]), [
      ["ddpm", 3],
      ["ddpm", 6],
      ["heun", 3],
      ["heun", 5],
      ["dpm++2m", 3],
      ["dpm++2m", 6],
      ["ddpm", 20],
    ]);
    for (const x of rows) {
      assert.ok(x.values["off-support"] >= 0 && x.values["off-support"] <= 100, x.sampler);
      assert.ok(x.values["sw-ratio"] > 0, x.sampler);
    }
    const md = await Deno.readTextFile(`${out}/samplers.md`);
    assert.match(md, /\| sampler \| steps \| evaluations \| off-support \| sw-ratio \| seconds \|/);
    for (const png of ["off-support.png", "sw-ratio.png"]) {
      const bytes = await Deno.readFile(`${out}/${png}`);
      assert.deepEqual([...bytes.subarray(1, 4)], [80, 78, 71], png); // "PNG"
    }

    // --reuse: heun again at another seed is refused; at the same seed only heun is sampled, the
    // other rows (the reference included, with --no-reference) are the earlier run's.
    const again = [
      "--samplers",
      "heun",
      "--evaluations",
      "3,6",
      "--count",
      "200",
      "--no-reference",
    ];
    const reuse = ["--reuse", `${out}/samplers.json`, "--out", `${dir}/cmp2`];
    const wrongSeed = await run("scripts/compare_samplers.ts", [
      `${dir}/model.safetensors`,
      ...again,
      "--seed",
      "1",
      ...reuse,
    ]);
    assert.equal(wrongSeed.code, 1);
    assert.match(wrongSeed.stderr, /--reuse .*200 samples at seed 0, this run 200 at seed 1/);
    const r2 = await run("scripts/compare_samplers.ts", [
      `${dir}/model.safetensors`,
      ...again,
      ...reuse,
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const rows2 = (JSON.parse(await Deno.readTextFile(`${dir}/cmp2/samplers.json`)) as {
      rows: Row[];
    }).rows;
    assert.deepEqual(
      rows2.map((x) => [x.sampler, x.evaluations]),
      rows.map((x) => [x.sampler, x.evaluations]),
    );
    for (const [i, x] of rows2.entries()) assert.deepEqual(x.values, rows[i].values, x.sampler);
    assert.match(r2.stdout, /5 rows from/);
    // --samplers "": nothing sampled, the table and plots redrawn from the earlier rows.
    const r3 = await run("scripts/compare_samplers.ts", [
      `${dir}/model.safetensors`,
      ...["--samplers", "", "--evaluations", "3,6", "--count", "200", "--no-reference"],
      ...["--reuse", `${out}/samplers.json`, "--out", `${dir}/cmp3`],
    ]);
    assert.equal(r3.code, 0, r3.stderr);
    const rows3 = (JSON.parse(await Deno.readTextFile(`${dir}/cmp3/samplers.json`)) as {
      rows: Row[];
    }).rows;
    assert.deepEqual(rows3, rows);
    assert.match(r3.stdout, /7 rows from/);

    const bad = await run("scripts/compare_samplers.ts", [
      `${dir}/model.safetensors`,
      "--samplers",
      "ddpm,bogus",
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--samplers must be one of/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

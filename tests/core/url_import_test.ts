/**
 * The library imported by URL, over HTTP, from a project with an empty module cache and no
 * permission but `--allow-import` for that one host: a program that trains and reads back a model on
 * the `reference` backend never fetches the WebAssembly module or a WGSL kernel (the backends load
 * with a dynamic `import()` only when chosen), and one that asks for `wasm` fetches it and trains on
 * two threads.
 */

import assert from "node:assert/strict";
import { serveFiles } from "../helpers/file_server.ts";

const ROOT = new URL("../../", import.meta.url);

/**
 * Runs `program` (importing `${origin}/mod.ts`) with only --allow-import for the server, or
 * type-checks it (`command` "check": Deno's strict defaults, no configuration file).
 */
async function runConsumer(program: (origin: string) => string, command = "run") {
  const server = serveFiles(ROOT);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/main.ts`, program(server.origin));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        command,
        ...(command === "run" ? ["--no-prompt"] : []),
        "--no-config",
        "--no-lock",
        `--allow-import=${server.host}`,
        "main.ts",
      ],
      cwd: dir,
      env: { DENO_DIR: `${dir}/deno_dir`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      requested: [...server.requested],
    };
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const spiral = (origin: string, backend: string) =>
  `import { decodeModel, encodeModel, sample, train } from "${origin}/mod.ts";
import { Random, sampleToy, standardize } from "${origin}/data.ts";
const { data } = standardize(sampleToy("spiral", 256, new Random(1)).data, 2);
const model = await train({ data: { values: data, shape: [256, 2] }, steps: 20, batchSize: 32,
  network: { hidden: 16 }, schedule: { kind: "cosine", T: 20 }, backend: "${backend}" });
const copy = await decodeModel(await encodeModel(model), "model.safetensors", "${backend}");
const s = await sample(copy, { count: 8 });
const threads = (copy.backend as { threads?: number }).threads ?? 1;
console.log("samples", s.shape.join("x"), copy.backend.name, "threads", threads,
  s.values.every(Number.isFinite));
`;

Deno.test("by URL: a reference-only program fetches no backend code, and needs only --allow-import", async () => {
  const r = await runConsumer((origin) => spiral(origin, "reference"));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /samples 8x2 reference threads 1 true/);
  assert.ok(r.requested.includes("/mod.ts"), `mod.ts was not fetched: ${r.requested}`);
  const backendCode = r.requested.filter((p) => /^\/(wasm|gpu)\//.test(p));
  assert.deepEqual(backendCode, [], "a reference-only run fetched backend code");
});

Deno.test("by URL: backend wasm is fetched when chosen, and trains on two threads", async () => {
  const r = await runConsumer((origin) => spiral(origin, "wasm"));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /samples 8x2 wasm threads \d+ true/);
  const threads = Number(/threads (\d+)/.exec(r.stdout)![1]);
  assert.ok(threads >= 2, `the wasm backend ran on ${threads} thread(s)`);
  assert.ok(r.requested.includes("/wasm/embedded.ts"), "the WebAssembly module was not fetched");
  assert.ok(!r.requested.some((p) => p.startsWith("/gpu/") && p !== "/gpu/device.ts"));
});

Deno.test("by URL: a strict consumer type-checks against the served module", async () => {
  const typed = (origin: string) =>
    spiral(origin, "wasm") +
    `import type { SampleOptions, TrainOptions } from "${origin}/mod.ts";
const options: SampleOptions = { count: 4, sampler: "dpm++2m", steps: 10 };
const bad: Partial<TrainOptions> = { steps: 10 };
console.log(options.count, bad.steps);
`;
  const r = await runConsumer(typed, "check");
  assert.equal(r.code, 0, r.stderr);
  // And a wrong option is a type error there, not a runtime surprise.
  const wrong = await runConsumer(
    (origin) =>
      `import type { SampleOptions } from "${origin}/mod.ts";
const o: SampleOptions = { count: 4, sampler: "fastest" };
console.log(o);
`,
    "check",
  );
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /"fastest"/);
});

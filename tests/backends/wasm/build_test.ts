/**
 * The wasm backend's build: the modules embedded in wasm/embedded.ts are exactly what a fresh
 * build of wasm/assembly/ gives (run `deno task build:wasm` after changing the kernels), the
 * relaxed-SIMD build is chosen where the engine validates it, the plain-SIMD build agrees with the
 * relaxed one, and importing the backend needs no permission.
 */

import assert from "node:assert/strict";
import * as embedded from "../../../wasm/embedded.ts";
import { buildAll, embeddedModuleText, type Variant, VARIANTS } from "../../../wasm/build.ts";
import { openWasmBackend } from "../../../wasm/backend.ts";
import { Random } from "../../../src/random.ts";
import { assertClose, uniformValues } from "../../helpers/compare.ts";

function decode(b64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

Deno.test("the embedded kernel modules are those a fresh build gives", async () => {
  const fresh = await buildAll();
  const dir = await Deno.makeTempDir();
  try {
    for (const v of Object.keys(VARIANTS) as Variant[]) {
      // Build into a temporary directory and compare bytes, as a reader would.
      const path = `${dir}/${v}.wasm`;
      await Deno.writeFile(path, fresh[v]);
      const built = await Deno.readFile(path);
      const committed = decode(embedded[v]);
      assert.ok(
        built.length === committed.length && built.every((b, i) => b === committed[i]),
        `wasm/embedded.ts ${v} differs from a fresh build of wasm/assembly/: run deno task build:wasm`,
      );
      assert.ok(WebAssembly.validate(committed), `${v} does not validate`);
    }
    const text = await Deno.readTextFile(new URL("../../../wasm/embedded.ts", import.meta.url));
    assert.equal(text, embeddedModuleText(fresh), "wasm/embedded.ts is not as the build writes it");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the relaxed-SIMD build runs where WebAssembly.validate accepts it", () => {
  const relaxedValid = WebAssembly.validate(decode(embedded.RELAXED_SIMD));
  assert.equal(openWasmBackend().relaxedSimd, relaxedValid);
  assert.equal(openWasmBackend({ relaxedSimd: false }).relaxedSimd, false);
});

Deno.test("the plain-SIMD build agrees with the relaxed one", async () => {
  const rng = new Random(20261124);
  const relaxed = openWasmBackend({ threads: 1 }), plain = openWasmBackend({ relaxedSimd: false });
  assert.equal(plain.relaxedSimd, false);
  const a = uniformValues(rng, 37 * 50), b = uniformValues(rng, 50 * 29);
  const x = uniformValues(rng, 101, -5, 5);
  const spec = { batch: 1, m: 37, k: 50, n: 29, transA: false, transB: false };
  const mr = relaxed.matmul(relaxed.upload(a), relaxed.upload(b), spec);
  const mp = plain.matmul(plain.upload(a), plain.upload(b), spec);
  assertClose(await plain.read(mp), await relaxed.read(mr), "plain matmul");
  for (const op of ["silu", "gelu", "tanh", "exp"] as const) {
    const yr = relaxed.unary(op, relaxed.upload(x)), yp = plain.unary(op, plain.upload(x));
    assertClose(await plain.read(yp), await relaxed.read(yr), `plain ${op}`);
  }
});

Deno.test("importing the wasm backend needs no permission; a threaded run exits by itself", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/main.ts`;
    const backend = new URL("../../../wasm/backend.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { createWasmBackend } from "${backend}";
const be = await createWasmBackend({ threads: 2 });
const c = be.matmul(be.upload([1, 2, 3, 4]), be.upload([5, 6, 7, 8]), { batch: 1, m: 2, k: 2, n: 2, transA: false, transB: false });
const big = be.alloc(300 * 300);
be.matmul(big, big, { batch: 1, m: 300, k: 300, n: 300, transA: false, transB: false }); // large enough to use both threads
console.log(JSON.stringify([...await be.read(c)]));
// No dispose(): the workers must stop by themselves when idle, or this process never ends.
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-lock", "--no-config", script],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill(), 30_000);
    const out = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "[19,22,43,50]");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

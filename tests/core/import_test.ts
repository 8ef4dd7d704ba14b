/**
 * mod.ts imported by file URL from another project trains and samples with no permissions.
 */

import assert from "node:assert/strict";

Deno.test("mod.ts works imported by URL from another project, with no permissions", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const modUrl = new URL("../../mod.ts", import.meta.url).href;
    const dataUrl = new URL("../../data.ts", import.meta.url).href;
    const main = `${dir}/main.ts`;
    await Deno.writeTextFile(
      main,
      `import { sample, train } from ${JSON.stringify(modUrl)};
import { Random, sampleToy, standardize } from ${JSON.stringify(dataUrl)};
const { data } = standardize(sampleToy("spiral", 200, new Random(1)).data, 2);
const model = await train({ data: { values: data, shape: [200, 2] }, steps: 5, batchSize: 8,
  network: { hidden: 8 }, schedule: { kind: "cosine", T: 10 } });
const s = await sample(model, { count: 4 });
console.log("samples", s.shape.join("x"));
`,
    );
    // No -A and --no-prompt: any file read, env access or other permission at import or run fails.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-config", "--no-lock", main],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout),
      stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stdout, /samples 4x2/);
    assert.doesNotMatch(stderr, /PermissionDenied|Requires .* access/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

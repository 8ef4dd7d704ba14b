/**
 * The layering rules of docs/architecture.md, checked on every file's imports:
 * - src/ (the core) imports nothing outside src/: no backend code, no entry point, no script;
 * - wasm/ and gpu/ (the fast backends) import the core's interface and helpers, never each other
 *   nor an entry point;
 * - scripts/ import only the entry points (mod.ts, data.ts, metrics.ts, io.ts, engine.ts,
 *   backends.ts, wasm/mod.ts, gpu/mod.ts) and each other, so they show how the library is used;
 * - the entry points import src/ (and backends.ts), and only backends.ts names the backends' code.
 */

import assert from "node:assert/strict";
import { type ImportEdge, importsOf, tsFiles } from "../helpers/imports.ts";

const ROOT = new URL("../../", import.meta.url);
const ENTRIES = ["mod.ts", "backends.ts", "data.ts", "metrics.ts", "io.ts", "engine.ts"];
const BACKEND_ENTRIES = ["wasm/mod.ts", "gpu/mod.ts"];

/** The rule an import breaks, or null when it is allowed. */
function broken(e: ImportEdge): string | null {
  const top = e.from.split("/")[0];
  if (e.to === null) {
    const external = /^(node|npm):/.test(e.specifier);
    return external ? null : `imports ${e.specifier}, neither relative nor node:/npm:`;
  }
  const target = e.to.split("/")[0];
  if (top === "src" && target !== "src") return "src/ imports only src/";
  if ((top === "wasm" || top === "gpu") && !(target === top || target === "src")) {
    return `${top}/ imports only ${top}/ and src/`;
  }
  if (
    top === "scripts" && target !== "scripts" && ![...ENTRIES, ...BACKEND_ENTRIES].includes(e.to)
  ) {
    return "scripts import only the entry points";
  }
  if (e.from === "backends.ts" && [...BACKEND_ENTRIES, "gpu/device.ts"].includes(e.to)) return null;
  if (ENTRIES.includes(e.from) && !(target === "src" || ENTRIES.includes(e.to))) {
    return "the entry points import only src/ and each other";
  }
  return null;
}

async function repositoryImports(): Promise<ImportEdge[]> {
  const files = [
    ...ENTRIES,
    ...(await tsFiles(ROOT, "src")),
    ...(await tsFiles(ROOT, "scripts")),
    ...(await tsFiles(ROOT, "wasm")).filter((p) => !p.startsWith("wasm/assembly/")),
    ...(await tsFiles(ROOT, "gpu")),
  ];
  const edges: ImportEdge[] = [];
  for (const f of files) edges.push(...importsOf(f, await Deno.readTextFile(new URL(f, ROOT))));
  return edges;
}

Deno.test("layering: the rules catch a core file importing a backend, a script importing src/", () => {
  const bad = [
    ...importsOf("src/train.ts", `import { createWasmBackend } from "../wasm/mod.ts";`),
    ...importsOf("src/x.ts", `const m = await import("../gpu/mod.ts");`),
    ...importsOf("scripts/spiral.ts", `import { train } from "../src/train.ts";`),
    ...importsOf("wasm/ops/conv.ts", `export { x } from "../../gpu/policy.ts";`),
    ...importsOf("mod.ts", `import "./wasm/mod.ts";`),
    ...importsOf("engine.ts", `export * from "./gpu/mod.ts";`),
  ];
  assert.equal(bad.length, 6);
  for (const e of bad) assert.notEqual(broken(e), null, `${e.from} -> ${e.specifier} was allowed`);
  const fine = [
    ...importsOf("src/train.ts", `import type { Backend } from "./backend.ts";`),
    ...importsOf("scripts/spiral.ts", `import { train } from "../mod.ts";`),
    ...importsOf("wasm/backend.ts", `import { ScopeStack } from "../src/backends/scopes.ts";`),
    ...importsOf("src/io/png.ts", `import { encode } from "npm:fast-png@8.0.0";`),
    ...importsOf("src/a.ts", `/** import { x } from "../wasm/mod.ts"; */`),
  ];
  assert.equal(fine.length, 4);
  for (const e of fine) assert.equal(broken(e), null, `${e.from} -> ${e.specifier}`);
});

Deno.test("layering: every import in src/, wasm/, gpu/, scripts/ and the entry points follows the rules", async () => {
  const edges = await repositoryImports();
  assert.ok(edges.length > 300, `only ${edges.length} imports found: the reader is broken`);
  const problems = edges
    .map((e) => [e, broken(e)] as const)
    .filter(([, why]) => why !== null)
    .map(([e, why]) => `${e.from} imports ${e.specifier}: ${why}`);
  assert.deepEqual(problems, []);
});

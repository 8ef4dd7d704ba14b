/**
 * The tiled GEMM every matrix product and convolution runs on: a workgroup computes a BM x BN tile
 * of C = A B, staging BK-deep slabs of A and B in workgroup memory, each thread accumulating a
 * TM x TN register block (rows and columns strided by the thread grid, so reads of the staged
 * tiles are conflict-free and stores coalesce).
 *
 * What A and B are is left to loader functions, so the same kernel serves batched matmul with
 * either transpose and the three convolution products as implicit GEMM (im2col computed on the fly
 * in the loader, never stored).
 *
 * @module
 */

import type { BindingSpec, KernelSpec, ParamType } from "../wgsl.ts";

/** Tile shape of a GEMM kernel. */
export interface GemmTile {
  /** Rows of C per workgroup. */
  bm: number;
  /** Columns of C per workgroup. */
  bn: number;
  /** Depth of a staged slab. */
  bk: number;
  /** Rows per thread. */
  tm: number;
  /** Columns per thread. */
  tn: number;
}

/** 64 x 128 tiles, 8 x 4 per thread, 256 threads: for large products (32 sums per thread). */
export const TILE_XL: GemmTile = { bm: 64, bn: 128, bk: 8, tm: 8, tn: 4 };
/** 32 x 128 tiles, 4 x 4 per thread, 256 threads: for products of 32 or fewer rows. */
export const TILE_WIDE: GemmTile = { bm: 32, bn: 128, bk: 8, tm: 4, tn: 4 };
/**
 * 64 x 64 tiles, 4 x 4 per thread, 256 threads, slabs 8 deep. (A 16-deep slab takes llvmpipe
 * over three times as long to compile, about 17 s, for little gain.)
 */
export const TILE_LARGE: GemmTile = { bm: 64, bn: 64, bk: 8, tm: 4, tn: 4 };
/** 32 x 64 tiles, 2 x 4 per thread, 256 threads. */
export const TILE_MEDIUM: GemmTile = { bm: 32, bn: 64, bk: 8, tm: 2, tn: 4 };
/** 32 x 32 tiles, 2 x 2 per thread, 256 threads: for small products, more workgroups. */
export const TILE_SMALL: GemmTile = { bm: 32, bn: 32, bk: 8, tm: 2, tn: 2 };

/** Every tile, largest first (the order gpu/policy.ts's `chooseTile` tries them in). */
export const TILES: readonly GemmTile[] = [TILE_XL, TILE_LARGE, TILE_WIDE, TILE_MEDIUM, TILE_SMALL];

/** How a GEMM kernel is specialised. */
export interface GemmSpec {
  /** Cache key prefix. */
  key: string;
  /** Tile. */
  tile: GemmTile;
  /** Storage bindings. */
  bindings: readonly BindingSpec[];
  /** Extra parameters (M, N, K, kChunk, z0 are always present). */
  params: readonly (readonly [string, ParamType])[];
  /**
   * `batch`: the grid's z is a batch index (z = wid.z + p.z0) and every z sums all of K;
   * `split`: z is a split of K, summing [z kChunk, min(K, (z+1) kChunk)).
   */
  zMode: "batch" | "split";
  /** WGSL of `fn loadA(z: u32, r: u32, k: u32) -> f32`, called only with r < M and k < K. */
  loadA: string;
  /** WGSL of `fn loadB(z: u32, k: u32, c: u32) -> f32`, called only with k < K and c < N. */
  loadB: string;
  /** WGSL of `fn store(z: u32, r: u32, c: u32, v: f32)`, called only with r < M and c < N. */
  store: string;
  /**
   * True when consecutive k are adjacent in memory for A (else consecutive rows are), so tile loads
   * walk that way; "runtime" reads the choice from `p.aFastK` (a uniform branch).
   */
  aFastK: boolean | "runtime";
  /** True when consecutive columns are adjacent in memory for B; "runtime" reads `p.bFastN`. */
  bFastN: boolean | "runtime";
  /** Extra module-scope WGSL. */
  decls?: string;
}

/** Builds the kernel of a {@link GemmSpec}. Dispatch with grid (ceil(N/bn), ceil(M/bm), z). */
export function gemmKernel(g: GemmSpec): KernelSpec {
  const { bm, bn, bk, tm, tn } = g.tile;
  const tx = bn / tn, ty = bm / tm, threads = tx * ty;
  const aLoads = (bm * bk) / threads, bLoads = (bk * bn) / threads;
  if (!Number.isInteger(aLoads) || !Number.isInteger(bLoads)) {
    throw new Error(`gemm tile ${JSON.stringify(g.tile)} does not divide its loads evenly`);
  }
  const aK = `let mm = e / ${bk}u; let kk = e % ${bk}u;`;
  const aM = `let mm = e % ${bm}u; let kk = e / ${bm}u;`;
  const bN = `let nn = e % ${bn}u; let kk = e / ${bn}u;`;
  const bK = `let nn = e / ${bk}u; let kk = e % ${bk}u;`;
  const aIdx = g.aFastK === "runtime"
    ? `let mm = select(e % ${bm}u, e / ${bk}u, p.aFastK != 0u);
      let kk = select(e / ${bm}u, e % ${bk}u, p.aFastK != 0u);`
    : g.aFastK
    ? aK
    : aM;
  const bIdx = g.bFastN === "runtime"
    ? `let nn = select(e / ${bk}u, e % ${bn}u, p.bFastN != 0u);
      let kk = select(e % ${bk}u, e / ${bn}u, p.bFastN != 0u);`
    : g.bFastN
    ? bN
    : bK;
  const lines: string[] = [];
  for (let i = 0; i < tm; i++) lines.push(`    let a${i} = As[kk * ${bm}u + lid.y + ${i * ty}u];`);
  for (let j = 0; j < tn; j++) lines.push(`    let b${j} = Bs[kk * ${bn}u + lid.x + ${j * tx}u];`);
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) lines.push(`    acc${i}_${j} = acc${i}_${j} + a${i} * b${j};`);
  }
  const accDecl: string[] = [], stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      accDecl.push(`  var acc${i}_${j} = 0.0;`);
      stores.push(`  {
    let r = row0 + lid.y + ${i * ty}u;
    let c = col0 + lid.x + ${j * tx}u;
    if (r < p.M && c < p.N) { store(z, r, c, acc${i}_${j}); }
  }`);
    }
  }
  // Each thread stages the same elements of every slab: their coordinates are fixed before the
  // loop. The next slab's values are loaded into registers while this one is multiplied
  // (prefetching hides the global loads' latency behind the arithmetic).
  const coords: string[] = [], stage: string[] = [];
  const slab: ((kb: string) => string)[] = [];
  /** Staging code of one operand: `pos` is its row (A) or column (B) within the tile. */
  const operand = (
    x: "a" | "b",
    loads: number,
    idx: string,
    pos: "mm" | "nn",
    origin: string,
    bound: string,
    load: (i: string) => string,
    tile: string,
    width: number,
  ) => {
    for (let l = 0; l < loads; l++) {
      const at = `${x}p${l}`, kk = `${x}k${l}`, v = `p${x}${l}`;
      coords.push(`  var ${at} = 0u;
  var ${kk} = 0u;
  { let e = tid + ${l * threads}u; ${idx} ${at} = ${pos}; ${kk} = kk; }
  var ${v} = 0.0;`);
      slab.push((kb) =>
        `    { let i = ${origin} + ${at}; let k = ${kb} + ${kk}; ${v} = 0.0;
      if (i < ${bound} && k < kEnd) { ${v} = ${load("i")}; } }`
      );
      stage.push(`    ${tile}[${kk} * ${width}u + ${at}] = ${v};`);
    }
  };
  operand("a", aLoads, aIdx, "mm", "row0", "p.M", (i) => `loadA(z, ${i}, k)`, "As", bm);
  operand("b", bLoads, bIdx, "nn", "col0", "p.N", (i) => `loadB(z, k, ${i})`, "Bs", bn);
  const loadSlab = (kb: string) => slab.map((f) => f(kb)).join("\n");
  const zLine = g.zMode === "batch"
    ? "  let z = wid.z + p.z0;\n  let kStart = 0u;\n  let kEnd = p.K;"
    : "  let z = wid.z;\n  let kStart = z * p.kChunk;\n  let kEnd = min(p.K, kStart + p.kChunk);";
  return {
    key: `${g.key}_${bm}x${bn}x${bk}_${tm}x${tn}`,
    bindings: g.bindings,
    params: [
      ["M", "u32"],
      ["N", "u32"],
      ["K", "u32"],
      ["kChunk", "u32"],
      ["z0", "u32"],
      ...g.params,
    ],
    workgroup: [tx, ty],
    decls: `
var<workgroup> As: array<f32, ${bm * bk}>;
var<workgroup> Bs: array<f32, ${bk * bn}>;
${g.decls ?? ""}
${g.loadA}
${g.loadB}
${g.store}
`,
    body: `
  let tid = lid.y * ${tx}u + lid.x;
  let row0 = wid.y * ${bm}u;
  let col0 = wid.x * ${bn}u;
${zLine}
${accDecl.join("\n")}
${coords.join("\n")}
${loadSlab("kStart")}
  for (var k0 = kStart; k0 < kEnd; k0 = k0 + ${bk}u) {
${stage.join("\n")}
    workgroupBarrier();
    let kn = k0 + ${bk}u;
    if (kn < kEnd) {
${loadSlab("kn")}
    }
    for (var kk = 0u; kk < ${bk}u; kk = kk + 1u) {
${lines.join("\n")}
    }
    workgroupBarrier();
  }
${stores.join("\n")}`,
  };
}

const matmulCache = new Map<string, KernelSpec>();

/**
 * Batched C[z] = op(A[z]) op(B[z]). One kernel per tile serves every transpose: element (r, k) of
 * op(A) is at `z sA + r rsA + k ksA` (and likewise for B), with operand batch strides `sA`, `sB`
 * 0 when the operand is shared.
 */
export function matmulKernel(tile: GemmTile): KernelSpec {
  const key = `${tile.bm}x${tile.bn}`;
  let k = matmulCache.get(key);
  if (k) return k;
  k = gemmKernel({
    key: "matmul",
    tile,
    bindings: [{ name: "ma", write: false }, { name: "mb", write: false }, {
      name: "mc",
      write: true,
    }],
    params: [
      ["sA", "u32"],
      ["rsA", "u32"],
      ["ksA", "u32"],
      ["sB", "u32"],
      ["ksB", "u32"],
      ["csB", "u32"],
      ["aFastK", "u32"],
      ["bFastN", "u32"],
    ],
    zMode: "batch",
    loadA:
      "fn loadA(z: u32, r: u32, k: u32) -> f32 { return ma[p.ma_o + z * p.sA + r * p.rsA + k * p.ksA]; }",
    loadB:
      "fn loadB(z: u32, k: u32, c: u32) -> f32 { return mb[p.mb_o + z * p.sB + k * p.ksB + c * p.csB]; }",
    store: "fn store(z: u32, r: u32, c: u32, v: f32) { mc[p.mc_o + (z * p.M + r) * p.N + c] = v; }",
    aFastK: "runtime",
    bFastN: "runtime",
  });
  matmulCache.set(key, k);
  return k;
}

const linearCache = new Map<string, KernelSpec>();

/**
 * The linear layer y = act(x Wᵀ + bias) (x [M, K], W [N, K], bias [N]) on the tiled GEMM, the bias
 * and the activation (`p.act`: 0 none, 1 ReLU, x > 0 ? x : 0) applied in the store.
 */
export function linearKernel(tile: GemmTile): KernelSpec {
  const key = `${tile.bm}x${tile.bn}`;
  let k = linearCache.get(key);
  if (k) return k;
  k = gemmKernel({
    key: "linear",
    tile,
    bindings: [
      { name: "lx", write: false },
      { name: "lw", write: false },
      { name: "lb", write: false },
      { name: "ly", write: true },
    ],
    params: [["act", "u32"]],
    zMode: "batch",
    loadA: "fn loadA(z: u32, r: u32, k: u32) -> f32 { return lx[p.lx_o + r * p.K + k]; }",
    loadB: "fn loadB(z: u32, k: u32, c: u32) -> f32 { return lw[p.lw_o + c * p.K + k]; }",
    store: `fn store(z: u32, r: u32, c: u32, v: f32) {
  let y = v + lb[p.lb_o + c];
  ly[p.ly_o + r * p.N + c] = select(y, select(0.0, y, y > 0.0), p.act == 1u);
}`,
    aFastK: true,
    bFastN: false,
  });
  linearCache.set(key, k);
  return k;
}

// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript entry point of the wasm backend's kernels: everything exported here is an export
// of the built module. Built by wasm/build.ts (`deno task build:wasm`) into wasm/embedded.ts.

export { fmaCeiling } from "./ceiling";
export { directConv, directConvScratchBytes } from "./conv";
export { convDataPerImage, convFilterGrad } from "./conv_grad";
export { gemm, gemmBatch, gemmForget, gemmWorkspaceBytes } from "./gemm";
export { packAAll } from "./gemm_pack";
export { gemmSkinnyK, gemmSkinnyN } from "./gemm_skinny";
export { gemmOuterM, gemmOuterN } from "./gemm_outer";
export { col2im, flipFilter, im2col } from "./im2col";
export { affine, axpy, binary, clamp, combine, unary, unaryBackward } from "./elementwise";
export {
  copyRows,
  fill,
  fillRows,
  gather,
  gatherRows,
  permute,
  reduceSum,
  sumSquares,
  upsampleNearest,
  upsampleNearestBackward,
} from "./layout";
export { groupNorm, groupNormBackward, softmax, softmaxBackward } from "./norm";
export { upsample2Backward } from "./resample";
export { adam, ema, loss, lossBackward } from "./optim";
export { randomInt, randomNormal, randomUniform } from "./random";
export { winogradFilterGrad, winogradFilterGradScratchBytes } from "./winograd_filter_grad";
export {
  winogradConv,
  winogradFilter,
  winogradFilterBytes,
  winogradScratchBytes,
} from "./winograd_conv";

/** The first byte after the module's static data (math tables): the host allocates above it. */
export function heapBase(): usize {
  return __heap_base;
}

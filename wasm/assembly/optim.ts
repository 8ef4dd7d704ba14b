// deno-fmt-ignore-file (deno fmt would drop the AssemblyScript @inline decorators)
// AssemblyScript: the regression losses and the fused optimizer kernels over flat buffers.

import { storePartial } from "./simd.ts";

const L2 = 0;
const L1 = 1;

/** out[0] = mean over n elements of the loss between pred and target (summed in double). */
export function loss(kind: i32, pred: usize, target: usize, n: i32, delta: f64, out: usize): void {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const d = f64(load<f32>(pred + (<usize>i << 2))) - f64(load<f32>(target + (<usize>i << 2)));
    const a = Math.abs(d);
    if (kind == L2) s += d * d;
    else if (kind == L1) s += a;
    else s += a <= delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
  }
  store<f32>(out, f32(s / f64(n)));
}

/** d(scale * mean loss)/d(pred) over [begin, end); scale is one element at `scale`. */
export function lossBackward(
  kind: i32,
  pred: usize,
  target: usize,
  n: i32,
  delta: f64,
  scale: usize,
  out: usize,
  begin: i32,
  end: i32,
): void {
  const k = f64(load<f32>(scale)) / f64(n);
  for (let i = begin; i < end; i++) {
    const d = f64(load<f32>(pred + (<usize>i << 2))) - f64(load<f32>(target + (<usize>i << 2)));
    let g: f64;
    if (kind == L2) g = 2 * d;
    else if (kind == L1) g = d > 0 ? 1 : d < 0 ? -1 : d;
    else g = Math.abs(d) <= delta ? d : d > 0 ? delta : -delta;
    store<f32>(out + (<usize>i << 2), f32(k * g));
  }
}

/**
 * One fused Adam/AdamW update of elements [begin, end), in place. `clip` points at the squared
 * gradient norm (one f32) or is 0 for no clipping; bc1/bc2 are the bias corrections.
 */
export function adam(
  params: usize,
  grads: usize,
  m: usize,
  v: usize,
  lr: f64,
  beta1: f64,
  beta2: f64,
  eps: f64,
  weightDecay: f64,
  decoupled: i32,
  bc1: f64,
  bc2: f64,
  clip: usize,
  maxNorm: f64,
  begin: i32,
  end: i32,
): void {
  let gs: f64 = 1;
  if (clip != 0) {
    const norm = Math.sqrt(f64(load<f32>(clip)));
    if (norm > maxNorm) gs = maxNorm / norm;
  }
  const vgs = f32x4.splat(f32(gs));
  const vb1 = f32x4.splat(f32(beta1));
  const vc1 = f32x4.splat(f32(1 - beta1));
  const vb2 = f32x4.splat(f32(beta2));
  const vc2 = f32x4.splat(f32(1 - beta2));
  const vwd = f32x4.splat(f32(decoupled ? 0 : weightDecay));
  const vdecay = f32x4.splat(f32(decoupled ? 1 - lr * weightDecay : 1));
  const vlr = f32x4.splat(f32(lr));
  const vibc1 = f32x4.splat(f32(1 / bc1));
  const vibc2 = f32x4.splat(f32(1 / bc2));
  const veps = f32x4.splat(f32(eps));
  for (let i = begin; i < end; i += 4) {
    const o = <usize>i << 2;
    const p = v128.load(params + o);
    const g = f32x4.add(f32x4.mul(v128.load(grads + o), vgs), f32x4.mul(vwd, p));
    const mm = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(vc1, g));
    const vv = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(vc2, f32x4.mul(g, g)));
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(vv, vibc2)), veps);
    const np = f32x4.sub(
      f32x4.mul(p, vdecay),
      f32x4.div(f32x4.mul(vlr, f32x4.mul(mm, vibc1)), den),
    );
    if (i + 4 <= end) {
      v128.store(m + o, mm);
      v128.store(v + o, vv);
      v128.store(params + o, np);
    } else {
      storePartial(m + o, mm, end - i);
      storePartial(v + o, vv, end - i);
      storePartial(params + o, np, end - i);
    }
  }
}

/** target = decay * target + (1 - decay) * source over [begin, end), in place. */
export function ema(target: usize, source: usize, decay: f64, begin: i32, end: i32): void {
  const vd = f32x4.splat(f32(decay));
  const vc = f32x4.splat(f32(1 - decay));
  for (let i = begin; i < end; i += 4) {
    const o = <usize>i << 2;
    const r = f32x4.add(f32x4.mul(vd, v128.load(target + o)), f32x4.mul(vc, v128.load(source + o)));
    if (i + 4 <= end) v128.store(target + o, r);
    else storePartial(target + o, r, end - i);
  }
}

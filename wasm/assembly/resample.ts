// AssemblyScript: the gradient of 2x nearest-neighbour upsampling, vectorised (the general
// factor is upsampleNearestBackward in layout.ts; this one gives the same bits for factor 2).

/**
 * Planes [begin, end) of dx (h x w) get the sums of their 2 x 2 blocks of dy (2h x 2w), added in
 * the order of upsampleNearestBackward: ((0 + top left + top right) + bottom left) + bottom right.
 */
export function upsample2Backward(
  dy: usize,
  dx: usize,
  h: i32,
  w: i32,
  begin: i32,
  end: i32,
): void {
  const W = <usize> (w * 2) << 2;
  const zero = f32x4.splat(0);
  for (let p = begin; p < end; p++) {
    let src = dy + (<usize> p * <usize> (h * w * 4) << 2);
    let dst = dx + (<usize> p * <usize> (h * w) << 2);
    for (let iy = 0; iy < h; iy++) {
      const s1 = src + W;
      let ix = 0;
      for (; ix + 4 <= w; ix += 4) {
        const o = <usize> ix << 3;
        const a = v128.load(src + o);
        const b = v128.load(src + o, 16);
        const c = v128.load(s1 + o);
        const d = v128.load(s1 + o, 16);
        let s = f32x4.add(zero, v128.shuffle<f32>(a, b, 0, 2, 4, 6));
        s = f32x4.add(s, v128.shuffle<f32>(a, b, 1, 3, 5, 7));
        s = f32x4.add(s, v128.shuffle<f32>(c, d, 0, 2, 4, 6));
        s = f32x4.add(s, v128.shuffle<f32>(c, d, 1, 3, 5, 7));
        v128.store(dst + (<usize> ix << 2), s);
      }
      for (; ix < w; ix++) {
        const o = <usize> ix << 3;
        let s: f32 = 0;
        s += load<f32>(src + o);
        s += load<f32>(src + o, 4);
        s += load<f32>(s1 + o);
        s += load<f32>(s1 + o, 4);
        store<f32>(dst + (<usize> ix << 2), s);
      }
      src += W << 1;
      dst += <usize> w << 2;
    }
  }
}

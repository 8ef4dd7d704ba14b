/**
 * Signed difference maps for image edits: where an edit adds ink the map is red, where it removes
 * ink blue, white where nothing changed; the colour's depth is the size of the change.
 *
 * @module
 */

/**
 * The signed difference `after - before` of grey images (values in [-1, 1], one channel, the same
 * length) as RGB images in [-1, 1] for `imageGrid`: a change of +2 (no ink to full ink) is
 * pure red, -2 pure blue, 0 white; `per` values an image, channel planes in order R, G, B.
 */
export function differenceMap(
  before: Float32Array,
  after: Float32Array,
  per: number,
): Float32Array {
  if (before.length !== after.length || before.length % per !== 0) {
    throw new RangeError(
      `differenceMap: ${before.length} and ${after.length} values do not make images of ${per}`,
    );
  }
  const n = before.length / per, out = new Float32Array(3 * before.length);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < per; p++) {
      const d = after[i * per + p] - before[i * per + p];
      const k = 1 - 2 * Math.min(1, Math.abs(d) / 2); // 1 (white) .. -1 (full colour)
      const o = 3 * i * per + p;
      out[o] = d < 0 ? k : 1; // red: full unless ink was removed
      out[o + per] = k; // green: fades with any change
      out[o + 2 * per] = d > 0 ? k : 1; // blue: full unless ink was added
    }
  }
  return out;
}

/** Grey images [n, 1, h, w] as RGB [n, 3, h, w] (the grey value in all three channels). */
export function greyToRgb(grey: Float32Array, per: number): Float32Array {
  const n = grey.length / per, out = new Float32Array(3 * grey.length);
  for (let i = 0; i < n; i++) {
    const src = grey.subarray(i * per, (i + 1) * per);
    for (let c = 0; c < 3; c++) out.set(src, (3 * i + c) * per);
  }
  return out;
}

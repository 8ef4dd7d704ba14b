/**
 * A 5 x 7 pixel bitmap font for the labels of the library's charts (digits, capital letters,
 * some punctuation; lower case is drawn as capitals), drawn into RGBA images at an integer scale.
 *
 * @module
 */

import type { Rgb, RgbaImage } from "./histogram.ts";

/** Glyph width and height in font pixels; one column of space follows each glyph. */
export const GLYPH = { width: 5, height: 7 } as const;

const ROWS: Record<string, string> = {
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "####. ....# ....# .###. ....# ....# ####.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": ".###. #.... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ....# .###.",
  A: ".###. #...# #...# ##### #...# #...# #...#",
  B: "####. #...# #...# ####. #...# #...# ####.",
  C: ".###. #...# #.... #.... #.... #...# .###.",
  D: "####. #...# #...# #...# #...# #...# ####.",
  E: "##### #.... #.... ####. #.... #.... #####",
  F: "##### #.... #.... ####. #.... #.... #....",
  G: ".###. #...# #.... #.### #...# #...# .####",
  H: "#...# #...# #...# ##### #...# #...# #...#",
  I: ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  J: "..### ...#. ...#. ...#. ...#. #..#. .##..",
  K: "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  L: "#.... #.... #.... #.... #.... #.... #####",
  M: "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  N: "#...# #...# ##..# #.#.# #..## #...# #...#",
  O: ".###. #...# #...# #...# #...# #...# .###.",
  P: "####. #...# #...# ####. #.... #.... #....",
  Q: ".###. #...# #...# #...# #.#.# #..#. .##.#",
  R: "####. #...# #...# ####. #.#.. #..#. #...#",
  S: ".#### #.... #.... .###. ....# ....# ####.",
  T: "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  U: "#...# #...# #...# #...# #...# #...# .###.",
  V: "#...# #...# #...# #...# #...# .#.#. ..#..",
  W: "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  X: "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  Y: "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  Z: "##### ....# ...#. ..#.. .#... #.... #####",
  " ": "..... ..... ..... ..... ..... ..... .....",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  ",": "..... ..... ..... ..... .##.. ..#.. .#...",
  ":": "..... .##.. .##.. ..... .##.. .##.. .....",
  "-": "..... ..... ..... .###. ..... ..... .....",
  "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  "=": "..... ..... ##### ..... ##### ..... .....",
  "%": "##..# ##..# ...#. ..#.. .#... #..## #..##",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "/": "....# ....# ...#. ..#.. .#... #.... #....",
  "_": "..... ..... ..... ..... ..... ..... #####",
  "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
};

const GLYPHS = new Map<string, boolean[]>(
  Object.entries(ROWS).map(([c, rows]) => [c, [...rows.replaceAll(" ", "")].map((p) => p === "#")]),
);

/** Width in image pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH.width + 1) - 1) * scale;
}

/**
 * Draws `text` with its top-left corner at (x, y) in `color`, each font pixel `scale` image pixels
 * wide; pixels outside the image are skipped, unknown characters drawn as "?".
 */
export function drawText(
  image: RgbaImage,
  text: string,
  x: number,
  y: number,
  color: Rgb,
  scale = 1,
): void {
  let cx = x;
  for (const ch of text) {
    const glyph = GLYPHS.get(ch) ?? GLYPHS.get(ch.toUpperCase()) ?? GLYPHS.get("?")!;
    for (let r = 0; r < GLYPH.height; r++) {
      for (let c = 0; c < GLYPH.width; c++) {
        if (!glyph[r * GLYPH.width + c]) continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = cx + c * scale + dx, py = y + r * scale + dy;
            if (px < 0 || py < 0 || px >= image.width || py >= image.height) continue;
            const o = (py * image.width + px) * 4;
            image.data[o] = color[0];
            image.data[o + 1] = color[1];
            image.data[o + 2] = color[2];
            image.data[o + 3] = 255;
          }
        }
      }
    }
    cx += (GLYPH.width + 1) * scale;
  }
}

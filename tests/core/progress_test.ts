/**
 * The terminal progress display: line, duration, loss and rate formatting, the bar, plain and live
 * progress reporters, and bad options.
 */

import assert from "node:assert/strict";
import {
  createProgress,
  formatDuration,
  formatLoss,
  formatProgressBar,
  formatProgressLine,
  formatRate,
} from "../../src/terminal/progress.ts";

Deno.test("formatProgressLine: the plain line", () => {
  assert.equal(
    formatProgressLine({
      step: 1200,
      total: 5000,
      loss: 0.31214,
      stepsPerSecond: 412.3,
      etaSeconds: 9.2,
    }),
    "step 1200/5000  loss 0.3121  412 steps/s  eta 9s",
  );
  assert.equal(
    formatProgressLine({ label: "train", step: 3, total: 10 }),
    "train  step 3/10",
  );
  assert.equal(
    formatProgressLine({ step: 5, total: 10, stepsPerSecond: 2.5, etaSeconds: 2 }),
    "step 5/10  2.50 steps/s  eta 2s",
  );
});

Deno.test("formatDuration, formatLoss, formatRate", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(59.4), "59s");
  assert.equal(formatDuration(125), "2m05s");
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(Infinity), "?");
  assert.equal(formatDuration(-1), "?");
  assert.equal(formatLoss(0.31214), "0.3121");
  assert.equal(formatLoss(0), "0.0000");
  assert.equal(formatLoss(0.000123), "1.230e-4");
  assert.equal(formatLoss(NaN), "NaN");
  assert.equal(formatRate(412.3), "412");
  assert.equal(formatRate(41.23), "41.2");
  assert.equal(formatRate(4.123), "4.12");
});

Deno.test("formatProgressBar: fits the width, bar shrinks and then goes", () => {
  const line = {
    label: "train",
    step: 50,
    total: 100,
    loss: 0.5,
    stepsPerSecond: 10,
    etaSeconds: 5,
  };
  const wide = formatProgressBar(line, 120);
  assert.equal(
    wide,
    "train [===============>--------------] 50/100  loss 0.5000  10.0 steps/s  eta 5s",
  );
  const narrow = formatProgressBar(line, 60);
  assert.ok(narrow.length <= 59);
  assert.match(narrow, /^train \[=+>-+\] 50\/100/);
  const tiny = formatProgressBar(line, 30);
  assert.equal(tiny.length, 29);
  assert.ok(!tiny.includes("["));
  assert.equal(formatProgressBar({ step: 7, total: 7 }, 80), `[${"=".repeat(30)}] 7/7`);
});

Deno.test("createProgress (plain): a line every N seconds or steps, and one at the end", () => {
  let clock = 0;
  const out: string[] = [];
  const p = createProgress({
    total: 100,
    label: "fit",
    interactive: false,
    plainEverySeconds: 2,
    write: (s) => out.push(s),
    now: () => clock,
  });
  for (let step = 1; step <= 100; step++) {
    clock += 100; // 10 steps per second
    p.update(step, { loss: 1 / step });
  }
  p.stop();
  p.stop();
  // After 2 s (step 20), 4 s (step 40), ... and at step 100: no duplicate for stop.
  assert.deepEqual(out.map((l) => l.split("  ")[1]), [
    "step 20/100",
    "step 40/100",
    "step 60/100",
    "step 80/100",
    "step 100/100",
  ]);
  // Rate measured from the first update: 19 steps in 1.9 s.
  assert.equal(out[0], "fit  step 20/100  loss 0.0500  10.0 steps/s  eta 8s\n");
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")));

  const byStep: string[] = [];
  const q = createProgress({
    total: 10,
    interactive: false,
    plainEverySteps: 4,
    write: (s) => byStep.push(s),
    now: () => 0,
  });
  for (let step = 1; step <= 6; step++) q.update(step, { stepsPerSecond: 2 });
  q.stop();
  assert.deepEqual(byStep, [
    "step 4/10  2.00 steps/s  eta 3s\n",
    "step 6/10  2.00 steps/s  eta 2s\n",
  ]);
});

Deno.test("createProgress (live): redraws one line in place and ends it on stop", () => {
  let clock = 0;
  const out: string[] = [];
  const p = createProgress({
    total: 4,
    interactive: true,
    columns: 80,
    write: (s) => out.push(s),
    now: () => clock,
  });
  for (let step = 1; step <= 4; step++) {
    clock += 200;
    p.update(step, { loss: 0.25 });
  }
  p.stop();
  assert.equal(out.at(-1), "\n");
  const lines = out.slice(0, -1);
  assert.ok(lines.length >= 4);
  assert.ok(lines.every((l) => l.startsWith("\r") && l.endsWith("\x1b[K")));
  assert.ok(lines.at(-1)!.includes(`[${"=".repeat(30)}] 4/4  loss 0.2500  5.00 steps/s  eta 0s`));
  p.update(5); // ignored after stop
  assert.equal(out.at(-1), "\n");
});

Deno.test("createProgress: bad options throw", () => {
  assert.throws(() => createProgress({ total: 0 }), /total must be a positive integer/);
  assert.throws(
    () => createProgress({ total: 5, plainEverySeconds: -1, interactive: false }),
    /plainEverySeconds/,
  );
  const p = createProgress({ total: 5, interactive: false, write: () => {} });
  assert.throws(() => p.update(-1), /step must be a number >= 0/);
});

Deno.test("progress lines show samples/s when the batch size is known", () => {
  const lines: string[] = [];
  let now = 0;
  const p = createProgress({
    total: 10,
    label: "train",
    interactive: false,
    plainEverySteps: 5,
    samplesPerStep: 32,
    write: (t) => lines.push(t),
    now: () => now,
  });
  p.update(0);
  now = 1000;
  p.update(5, { loss: 0.5, stepsPerSecond: 5 });
  p.stop();
  assert.ok(
    lines.some((l) => l.includes("5.00 steps/s") && l.includes("160 samples/s")),
    lines.join("|"),
  );
});

/**
 * The demo page: starts the training worker (web/worker.js), shows its progress and draws the
 * samples it sends on a canvas. Query parameters: `steps`, `seed`, `backend`, and `autostart=1`
 * to start at once (the end-to-end test does). When the run ends, `#figure` holds the share of
 * generated points off the spiral in `data-value` (and the steps trained in `data-steps`), and
 * `body` gets `data-state="done"`.
 *
 * @module
 */

const query = new URLSearchParams(location.search);
/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const canvas = /** @type {HTMLCanvasElement} */ ($("plot"));
const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
const stepsInput = /** @type {HTMLInputElement} */ ($("steps"));
const startButton = /** @type {HTMLButtonElement} */ ($("start"));
const stopButton = /** @type {HTMLButtonElement} */ ($("stop"));

/** Half the width of the square drawn, in standardized units. */
const EXTENT = 2.6;
/** @type {Worker | null} */
let worker = null;
/** @type {Float32Array | null} */
let trainingPoints = null;
let started = 0;

if (query.has("steps")) stepsInput.value = query.get("steps") ?? "";

/**
 * Sets a field's text.
 * @param {string} id
 * @param {string} text
 */
function show(id, text) {
  $(id).textContent = text;
}

/**
 * Draws training points in grey and `samples` (x, y pairs) in red.
 * @param {Float32Array | null} samples
 */
function draw(samples) {
  const size = canvas.width, scale = size / (2 * EXTENT);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  /**
   * @param {Float32Array} points
   * @param {string} color
   * @param {number} r
   */
  const dots = (points, color, r) => {
    ctx.fillStyle = color;
    for (let i = 0; i + 1 < points.length; i += 2) {
      const x = (points[i] + EXTENT) * scale, y = (EXTENT - points[i + 1]) * scale;
      if (x >= 0 && x < size && y >= 0 && y < size) ctx.fillRect(x - r / 2, y - r / 2, r, r);
    }
  };
  if (trainingPoints) dots(trainingPoints, "#bbb", 2);
  if (samples) dots(samples, "rgba(192, 57, 43, 0.75)", 2.5);
}

/**
 * Shows one message of the worker.
 * @param {Record<string, any>} m
 */
function onEvent(m) {
  switch (m.type) {
    case "isolation":
      show("isolation", m.reason);
      if (!m.isolated) $("note").textContent = `Threads: ${m.reason}.`;
      break;
    case "backend":
      if (m.reason) show("backend", m.reason);
      if (m.name) {
        const simd = m.relaxedSimd === true
          ? ", relaxed SIMD"
          : m.relaxedSimd === false
          ? ", SIMD"
          : "";
        show("threads", m.threads === null ? "– (GPU)" : `${m.threads}${simd}`);
        document.body.dataset.backend = m.name;
        document.body.dataset.threads = String(m.threads);
      }
      break;
    case "data":
      trainingPoints = m.points;
      draw(null);
      break;
    case "progress":
      show("step", `${m.step} / ${m.steps}`);
      show("loss", m.loss.toFixed(4));
      show(
        "rate",
        `${m.stepsPerSecond.toFixed(0)} (mean ${(m.step / m.elapsedMs * 1000).toFixed(0)})`,
      );
      show("time", `${((performance.now() - started) / 1000).toFixed(1)} s`);
      break;
    case "samples":
      draw(m.points);
      show("shown", `${m.points.length / 2} at step ${m.step}${m.final ? " (final)" : ""}`);
      document.body.dataset.previews = String(Number(document.body.dataset.previews ?? 0) + 1);
      if (m.final) show("state", "sampling done, measuring");
      break;
    case "done": {
      const figure = /** @type {HTMLOutputElement} */ ($("figure"));
      figure.textContent = `${(100 * m.offSupport).toFixed(2)}% after ${m.steps} steps`;
      figure.dataset.value = String(m.offSupport);
      figure.dataset.steps = String(m.steps);
      show("time", `${m.seconds.toFixed(1)} s (training ${m.trainSeconds.toFixed(1)} s)`);
      finish("done");
      break;
    }
    case "error":
      console.error(`training failed: ${m.message}`);
      $("note").textContent = `Training failed: ${m.message}`;
      finish("failed");
      break;
  }
}

/**
 * Ends a run: the buttons and the page's state.
 * @param {string} state
 */
function finish(state) {
  show("state", state);
  document.body.dataset.state = state;
  startButton.disabled = false;
  stopButton.disabled = true;
}

/** Starts a run in a new worker (ending the previous one). */
function start() {
  worker?.terminate();
  const steps = Math.round(Number(stepsInput.value));
  if (!(steps >= 1 && steps <= 1_000_000)) {
    $("note").textContent = "steps must be a whole number from 1 to 1,000,000";
    return;
  }
  /** @type {Record<string, number | string>} */
  const params = { steps, previewEvery: Math.max(100, Math.min(500, Math.round(steps / 8))) };
  const seed = query.get("seed");
  if (seed !== null) params.seed = Number(seed);
  const backend = query.get("backend");
  if (backend !== null) params.backend = backend;
  for (const id of ["backend", "threads", "step", "loss", "rate", "shown", "figure", "time"]) {
    show(id, "–");
  }
  delete $("figure").dataset.value;
  delete $("figure").dataset.steps;
  document.body.dataset.state = "running";
  $("note").textContent = "";
  show("state", "running");
  startButton.disabled = true;
  stopButton.disabled = false;
  started = performance.now();
  worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (e) => onEvent(e.data);
  worker.onerror = (e) => {
    console.error(`worker error: ${e.message}`);
    $("note").textContent = `The worker failed: ${e.message}`;
    finish("failed");
  };
  worker.postMessage({ type: "start", params });
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", () => {
  worker?.postMessage({ type: "stop" });
  show("state", "stopping: final sample");
  stopButton.disabled = true;
});
draw(null);
if (query.get("autostart") === "1") start();

/**
 * The demo's training thread: a module worker that runs web/demo.js on the bundled library and
 * posts every event to the page. Training runs here, not on the page's main thread, because the
 * wasm backend's threads join with `Atomics.wait`, which browsers forbid on the main thread.
 *
 * Messages in: `{ type: "start", params }`, `{ type: "stop" }`. Messages out: web/demo.js's events,
 * then `isolation` first and `error` on failure.
 *
 * @module
 */

import * as lib from "./dist/diffusion.js";
import { runDemo } from "./demo.js";

/** @type {AbortController | null} */
let abort = null;

/** Why the wasm backend can or cannot use threads here, in one sentence. */
function isolation() {
  const cores = navigator.hardwareConcurrency || 1;
  if (!self.crossOriginIsolated) {
    return {
      isolated: false,
      cores,
      reason: "not cross-origin isolated (the page needs the headers COOP same-origin and " +
        "COEP require-corp): no SharedArrayBuffer, so wasm runs on one thread",
    };
  }
  return {
    isolated: true,
    cores,
    reason: `cross-origin isolated: wasm may use up to ${Math.min(8, cores)} threads ` +
      `(${cores} logical cores)`,
  };
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "stop") {
    abort?.abort();
    return;
  }
  if (message.type !== "start" || abort) return;
  abort = new AbortController();
  self.postMessage({ type: "isolation", ...isolation() });
  try {
    await runDemo(lib, message.params ?? {}, (e) => self.postMessage(e), abort.signal);
  } catch (e) {
    self.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
  }
};

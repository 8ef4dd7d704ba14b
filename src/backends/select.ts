/**
 * Choosing a backend: `auto` takes the fastest usable one and says which and why.
 *
 * `auto` takes WebGPU only on a hardware adapter: a software adapter (Mesa llvmpipe, SwiftShader,
 * anything WebGPU reports as a fallback adapter) is far slower than running on the CPU directly.
 *
 * @module
 */

import type { Backend, BackendName } from "../backend.ts";
import { OptionError } from "../errors.ts";
import { createWebGpuBackend, probeWebGpu } from "../../gpu/mod.ts";
import { createWasmBackend } from "../../wasm/backend.ts";
import { ReferenceBackend } from "./reference.ts";

/** A backend by name, `auto`, or a backend instance the caller built. */
export type BackendChoice = "auto" | BackendName | Backend;

/** The valid names, for validation of user options. */
export const BACKEND_CHOICES: readonly ("auto" | BackendName)[] = [
  "auto",
  "reference",
  "wasm",
  "webgpu",
];

/** A chosen backend and the reason it was chosen. */
export interface BackendSelection {
  /** The backend. */
  backend: Backend;
  /** One plain sentence: which backend and why. */
  reason: string;
}

function threadsOf(backend: Backend): string {
  const n = (backend as Backend & { threads?: number }).threads ?? 1;
  return n === 1 ? "1 thread" : `${n} threads`;
}

/** Resolves a {@link BackendChoice}, opening the backend. */
export async function selectBackend(choice: BackendChoice = "auto"): Promise<BackendSelection> {
  if (typeof choice === "object") {
    return { backend: choice, reason: `using the given ${choice.name} backend` };
  }
  switch (choice) {
    case "auto": {
      const probe = await probeWebGpu();
      let gpuFailure = "";
      if (probe.usable) {
        try {
          return {
            backend: await createWebGpuBackend(),
            reason: `webgpu backend: ${probe.reason}`,
          };
        } catch (e) {
          // A device that fails to open is no reason to fail: fall back to the CPU and say why.
          gpuFailure = `; opening ${probe.reason} failed: ${(e as Error).message}`;
        }
      }
      const backend = await createWasmBackend();
      return {
        backend,
        reason: gpuFailure
          ? `wasm backend (${threadsOf(backend)}): falling back from WebGPU${gpuFailure}`
          : `wasm backend (${threadsOf(backend)}): no hardware GPU (${probe.reason})`,
      };
    }
    case "reference":
      return { backend: new ReferenceBackend(), reason: "reference backend, as asked" };
    case "webgpu": {
      const probe = await probeWebGpu();
      if (!probe.usable && !probe.adapterInfo) {
        throw new OptionError(
          `backend "webgpu" is not available: ${probe.reason}; use "auto" or "reference"`,
        );
      }
      // Forced: a software adapter is allowed (slow, but what was asked for).
      const backend = await createWebGpuBackend({ allowFallbackAdapter: true });
      return { backend, reason: `webgpu backend, as asked: ${probe.reason}` };
    }
    case "wasm": {
      const backend = await createWasmBackend();
      return { backend, reason: `wasm backend (${threadsOf(backend)}), as asked` };
    }
    default:
      throw new OptionError(
        `backend must be one of ${BACKEND_CHOICES.join(", ")}, got ${JSON.stringify(choice)}`,
      );
  }
}

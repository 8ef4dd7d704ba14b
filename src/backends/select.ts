/**
 * Choosing a backend: `auto` takes the fastest usable one and says which and why.
 *
 * @module
 */

import type { Backend, BackendName } from "../backend.ts";
import { OptionError } from "../errors.ts";
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

/** Resolves a {@link BackendChoice}. */
export function selectBackend(choice: BackendChoice = "auto"): BackendSelection {
  if (typeof choice === "object") {
    return { backend: choice, reason: `using the given ${choice.name} backend` };
  }
  switch (choice) {
    case "auto":
      return {
        backend: new ReferenceBackend(),
        reason: "reference backend: this version has no WASM SIMD or WebGPU backend yet",
      };
    case "reference":
      return { backend: new ReferenceBackend(), reason: "reference backend, as asked" };
    case "wasm":
    case "webgpu":
      throw new OptionError(
        `backend "${choice}" is not available in this version; use "auto" or "reference"`,
      );
    default:
      throw new OptionError(
        `backend must be one of ${BACKEND_CHOICES.join(", ")}, got ${JSON.stringify(choice)}`,
      );
  }
}

/**
 * Backends by name: a registry of loaders and the `auto` policy. The core (everything in src/)
 * resolves a {@link BackendChoice} here and never imports a backend's code: `reference` is built
 * in, while `wasm` and `webgpu` are registered by the composition root (backends.ts beside
 * mod.ts), whose loaders import wasm/ or gpu/ with a dynamic `import()` only when chosen.
 *
 * `auto` takes WebGPU only on a hardware adapter: a software adapter (Mesa llvmpipe, SwiftShader,
 * anything WebGPU reports as a fallback adapter) is far slower than running on the CPU directly;
 * otherwise it takes `wasm`.
 *
 * @module
 */

import { type Backend, BACKEND_NAMES, type BackendName } from "../backend.ts";
import { OptionError } from "../errors.ts";
import { createReferenceBackend } from "./reference/mod.ts";

/** A backend by name, `auto`, or a backend instance the caller built. */
export type BackendChoice = "auto" | BackendName | Backend;

/** The valid names, for validation of user options. */
export const BACKEND_CHOICES: readonly ("auto" | BackendName)[] = ["auto", ...BACKEND_NAMES];

/** A chosen backend and the reason it was chosen. */
export interface BackendSelection {
  /** The backend. */
  backend: Backend;
  /** One plain sentence: which backend and why. */
  reason: string;
}

/** What probing a device backend found. */
export interface DeviceProbe {
  /** True when the device is worth using (a hardware GPU): `auto` takes it. */
  usable: boolean;
  /** True when the device exists at all (a software adapter counts): naming it opens it. */
  available: boolean;
  /** One plain sentence saying what was found. */
  reason: string;
}

/** How the registry opens one backend. */
export interface BackendLoader {
  /** Whether the backend's device exists and is worth using; absent for CPU backends. */
  probe?(): Promise<DeviceProbe>;
  /**
   * Opens the backend; `asked` is true when the user named it (a software GPU adapter is then
   * accepted: slow, but what was asked for).
   */
  open(asked: boolean): Promise<Backend>;
}

const loaders = new Map<BackendName, BackendLoader>([
  ["reference", { open: () => Promise.resolve(createReferenceBackend()) }],
]);

/** Registers (or replaces) the loader of backend `name`. */
export function registerBackend(name: BackendName, loader: BackendLoader): void {
  loaders.set(name, loader);
}

function loader(name: BackendName): BackendLoader {
  const l = loaders.get(name);
  if (!l) {
    throw new OptionError(
      `backend "${name}" is not registered: import the library through mod.ts (or backends.ts), ` +
        `which registers the wasm and webgpu backends`,
    );
  }
  return l;
}

/** Runs a loader's step for backend `name`, turning a missing permission into one clear error. */
async function loading<T>(name: BackendName, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (!isPermissionError(e)) throw e;
    throw new OptionError(
      `backend "${name}" could not be loaded: ${loadFailure(e)}; run with --allow-read (or -A)`,
    );
  }
}

function threadsOf(backend: Backend): string {
  const n = (backend as Backend & { threads?: number }).threads ?? 1;
  return n === 1 ? "1 thread" : `${n} threads`;
}

/** Why a backend's code could not be loaded, for a reason sentence. */
function loadFailure(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

async function probeGpu(gpu: BackendLoader | undefined): Promise<DeviceProbe> {
  if (!gpu?.probe) {
    return { usable: false, available: false, reason: "no WebGPU backend is registered" };
  }
  try {
    return await gpu.probe();
  } catch (e) {
    return {
      usable: false,
      available: false,
      reason: `WebGPU could not be probed: ${loadFailure(e)}`,
    };
  }
}

async function auto(): Promise<BackendSelection> {
  const gpu = loaders.get("webgpu");
  const probe = await probeGpu(gpu);
  let gpuFailure = "";
  if (gpu && probe.usable) {
    try {
      return { backend: await gpu.open(false), reason: `webgpu backend: ${probe.reason}` };
    } catch (e) {
      // A device that fails to open is no reason to fail: fall back to the CPU and say why.
      gpuFailure = `; opening ${probe.reason} failed: ${(e as Error).message}`;
    }
  }
  let backend: Backend;
  try {
    backend = await loader("wasm").open(false);
  } catch (e) {
    if (!isPermissionError(e)) throw e;
    // Imported from disk without --allow-read: the wasm code cannot be loaded; say so and go on.
    return {
      backend: await loader("reference").open(false),
      reason: `reference backend: the wasm backend could not be loaded (${
        loadFailure(e)
      }); run with --allow-read (or -A) for it`,
    };
  }
  return {
    backend,
    reason: gpuFailure
      ? `wasm backend (${threadsOf(backend)}): falling back from WebGPU${gpuFailure}`
      : `wasm backend (${threadsOf(backend)}): no hardware GPU (${probe.reason})`,
  };
}

/** True for Deno's missing-permission errors (NotCapable, or PermissionDenied before Deno 2). */
function isPermissionError(e: unknown): boolean {
  const errors = (globalThis as { Deno?: { errors?: Record<string, unknown> } }).Deno?.errors;
  const classes = [errors?.NotCapable, errors?.PermissionDenied].filter(
    (c): c is new () => Error => typeof c === "function",
  );
  return classes.some((c) => e instanceof c) || /Requires \w+ access/.test(loadFailure(e));
}

/** Resolves a {@link BackendChoice}, opening the backend, and says which and why. */
export async function selectBackend(choice: BackendChoice = "auto"): Promise<BackendSelection> {
  if (typeof choice === "object") {
    return { backend: choice, reason: `using the given ${choice.name} backend` };
  }
  switch (choice) {
    case "auto":
      return await auto();
    case "reference":
      return {
        backend: await loader("reference").open(true),
        reason: "reference backend, as asked",
      };
    case "webgpu": {
      const l = loader("webgpu");
      const probe = await loading("webgpu", () => l.probe!());
      if (!probe.usable && !probe.available) {
        throw new OptionError(
          `backend "webgpu" is not available: ${probe.reason}; use "auto" or "reference"`,
        );
      }
      const backend = await loading("webgpu", () => l.open(true));
      return { backend, reason: `webgpu backend, as asked: ${probe.reason}` };
    }
    case "wasm": {
      const backend = await loading("wasm", () => loader("wasm").open(true));
      return { backend, reason: `wasm backend (${threadsOf(backend)}), as asked` };
    }
    default:
      throw new OptionError(
        `backend must be one of ${BACKEND_CHOICES.join(", ")}, got ${JSON.stringify(choice)}`,
      );
  }
}

/**
 * From a network configuration to its parameters and its forward pass, and from the user's network
 * options to a full configuration.
 *
 * Each network is described once, by its constructor: built on a recording parameter source it
 * lists its parameters ({@link networkSpecs}), built on a `ParamStore` it computes
 * ({@link buildNetwork}).
 *
 * @module
 */

import { OptionError } from "../errors.ts";
import { checkClasses } from "../nn/class_embedding.ts";
import { type ParamSource, type ParamSpec, recordParams } from "../nn/params.ts";
import { Mlp, type MlpConfig, type MlpOptions, resolveMlpConfig } from "./mlp.ts";
import type { Network } from "./network.ts";
import { resolveUNetConfig, UNet, type UNetConfig, type UNetOptions } from "./unet.ts";

/** Every network configuration the library builds. */
export type NetworkConfig = MlpConfig | UNetConfig;

/** The user's options of any network: its `kind` ("mlp" when absent) and that network's options. */
export type NetworkOptions = MlpOptions | UNetOptions;

/**
 * The full, checked configuration of the network `options` ask for (an MLP when absent), for
 * training data of `dataShape` ([count, ...sampleShape]) with `T` diffusion steps, conditioned on
 * `classes` classes when given. Throws an {@link OptionError} naming the bad option.
 */
export function resolveNetworkConfig(
  options: NetworkOptions | undefined,
  dataShape: readonly number[],
  T: number,
  classes?: number,
): NetworkConfig {
  if (options?.kind !== undefined && options.kind !== "mlp" && options.kind !== "unet") {
    throw new OptionError(
      `network.kind must be "mlp" or "unet", got ${JSON.stringify(options.kind)}`,
    );
  }
  const config = options?.kind === "unet"
    ? resolveUNetConfig(options, dataShape)
    : resolveMlpConfig((options ?? {}) as MlpOptions, dataShape, T);
  if (classes === undefined) return config;
  try {
    checkClasses("data.classes", classes);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
  return { ...config, classes };
}

/** The number of classes of a conditional network's configuration, or 0 when unconditional. */
export function networkClasses(config: NetworkConfig): number {
  return config.classes ?? 0;
}

/**
 * The parameters of a network, in layout order: the network built on a recording source. Throws a
 * RangeError naming the problem when the configuration is invalid.
 */
export function networkSpecs(config: NetworkConfig): ParamSpec[] {
  return recordParams((params) => buildNetwork(config, params));
}

/**
 * The network declaring its parameters in `params`: on a `ParamStore` over the layout of
 * {@link networkSpecs}, the network bound to those weights.
 */
export function buildNetwork(config: NetworkConfig, params: ParamSource): Network {
  switch (config?.kind) {
    case "mlp":
      return new Mlp(config, params);
    case "unet":
      return new UNet(config, params);
  }
  throw new RangeError(
    `network kind must be "mlp" or "unet", got ${
      JSON.stringify((config as { kind?: unknown })?.kind)
    }`,
  );
}

/** The shape of one sample the network takes, e.g. [2] or [1, 28, 28]. */
export function networkSampleShape(config: NetworkConfig): number[] {
  switch (config.kind) {
    case "mlp":
      return [config.dim];
    case "unet":
      return [config.channels, config.imageSize, config.imageSize];
  }
}

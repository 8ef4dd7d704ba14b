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
import { ParamLayout, type ParamSource, type ParamSpec, recordParams } from "../nn/params.ts";
import { Mlp, type MlpConfig, type MlpOptions, resolveMlpConfig } from "./mlp.ts";
import type { Network } from "./network.ts";
import { resolveUNetConfig, UNet, type UNetConfig, type UNetOptions } from "./unet.ts";
import { FcUNet, type FcUNetConfig, type FcUNetOptions, resolveFcUNetConfig } from "./fc_unet.ts";

/** Every network configuration the library builds. */
export type NetworkConfig = MlpConfig | UNetConfig | FcUNetConfig;

/** The user's options of any network: its `kind` ("mlp" when absent) and that network's options. */
export type NetworkOptions = MlpOptions | UNetOptions | FcUNetOptions;

/**
 * The full, checked configuration of the network `options` ask for (an MLP when absent), for
 * training data of `dataShape` ([count, ...sampleShape]) with `T` diffusion steps, conditioned on
 * `classes` classes when given, with the doubled output of learned variances when `learnSigma`
 * (recorded as `learnSigma: true`, absent otherwise). Throws an {@link OptionError} naming the bad
 * option.
 */
export function resolveNetworkConfig(
  options: NetworkOptions | undefined,
  dataShape: readonly number[],
  T: number,
  classes?: number,
  learnSigma = false,
): NetworkConfig {
  if (
    options?.kind !== undefined && options.kind !== "mlp" && options.kind !== "unet" &&
    options.kind !== "fc-unet"
  ) {
    throw new OptionError(
      `network.kind must be "mlp", "unet" or "fc-unet", got ${JSON.stringify(options.kind)}`,
    );
  }
  let config = options?.kind === "unet"
    ? resolveUNetConfig(options, dataShape)
    : options?.kind === "fc-unet"
    ? resolveFcUNetConfig(options, dataShape, T)
    : resolveMlpConfig((options ?? {}) as MlpOptions, dataShape, T);
  if (classes !== undefined) {
    try {
      checkClasses("data.classes", classes);
    } catch (e) {
      throw new OptionError((e as Error).message);
    }
    config = { ...config, classes };
  }
  if (learnSigma) config = { ...config, learnSigma: true };
  try {
    // The size limit, before anything is allocated.
    new ParamLayout(networkSpecs(config));
  } catch (e) {
    throw new OptionError(`network: ${(e as Error).message}`);
  }
  return config;
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
    case "fc-unet":
      return new FcUNet(config, params);
  }
  throw new RangeError(
    `network kind must be "mlp", "unet" or "fc-unet", got ${
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
    case "fc-unet":
      return [...config.shape];
  }
}

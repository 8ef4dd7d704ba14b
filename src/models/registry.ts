/**
 * From a network configuration to its parameters and its forward pass.
 *
 * @module
 */

import type { ParamSpec, ParamStore } from "../nn/params.ts";
import { Mlp, type MlpConfig, mlpParamSpecs } from "./mlp.ts";
import type { Network } from "./network.ts";
import { UNet, type UNetConfig, unetParamSpecs } from "./unet.ts";

/** Every network configuration the library builds. */
export type NetworkConfig = MlpConfig | UNetConfig;

/** The parameters of a network. */
export function networkSpecs(config: NetworkConfig): ParamSpec[] {
  switch (config.kind) {
    case "mlp":
      return mlpParamSpecs(config);
    case "unet":
      return unetParamSpecs(config);
  }
}

/** The network bound to parameters. */
export function buildNetwork(config: NetworkConfig, store: ParamStore): Network {
  switch (config.kind) {
    case "mlp":
      return new Mlp(config, store);
    case "unet":
      return new UNet(config, store);
  }
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

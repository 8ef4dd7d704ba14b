/**
 * From a network configuration to its parameters and its forward pass.
 *
 * @module
 */

import type { ParamSpec, ParamStore } from "../nn/params.ts";
import { Mlp, type MlpConfig, mlpParamSpecs } from "./mlp.ts";
import type { Network } from "./network.ts";

/** Every network configuration the library builds. */
export type NetworkConfig = MlpConfig;

/** The parameters of a network. */
export function networkSpecs(config: NetworkConfig): ParamSpec[] {
  switch (config.kind) {
    case "mlp":
      return mlpParamSpecs(config);
  }
}

/** The network bound to parameters. */
export function buildNetwork(config: NetworkConfig, store: ParamStore): Network {
  switch (config.kind) {
    case "mlp":
      return new Mlp(config, store);
  }
}

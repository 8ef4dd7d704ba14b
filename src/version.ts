/**
 * The package's name and version, as deno.json gives them (a test keeps the two equal).
 *
 * @module
 */

/** The package's name on the registry. */
export const PACKAGE_NAME = "@diffusion/deno";

/** The package's version (semantic versioning). */
export const VERSION = "0.1.0";

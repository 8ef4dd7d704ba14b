/**
 * How a WGSL kernel is described and turned into source: its storage bindings, its parameter block
 * (a uniform struct at a dynamic offset in the per-submit parameter arena) and its body.
 *
 * Every storage binding is a whole `array<f32>` buffer (or a 256-byte aligned window of one); the
 * element offset of the handle inside it is passed in the parameter block as `p.<name>_o`, so views
 * at any element offset work without binding offsets.
 *
 * @module
 */

/** A storage binding of a kernel. */
export interface BindingSpec {
  /** WGSL name of the `array<f32>`. */
  readonly name: string;
  /** True when the kernel writes it (bound `read_write`). */
  readonly write: boolean;
}

/** Types a parameter can have: scalars, one `vec4<u32>`, or two of them (eight u32 entries). */
export type ParamType = "u32" | "i32" | "f32" | "vec4u" | "vec4u2";

/** A value for a parameter: a number for scalars, up to 4 or 8 numbers for vectors. */
export type ParamValue = number | readonly number[];

/** A compute kernel: bindings, parameters, workgroup size and WGSL text. */
export interface KernelSpec {
  /** Unique cache key (includes every specialisation). */
  readonly key: string;
  /** Storage bindings, in binding order (after the parameter block at binding 0). */
  readonly bindings: readonly BindingSpec[];
  /** Parameters after the binding offsets, in struct order. */
  readonly params: readonly (readonly [string, ParamType])[];
  /** Workgroup size. */
  readonly workgroup: readonly [number, number?, number?];
  /** Module-scope WGSL: helper functions, workgroup variables. */
  readonly decls?: string;
  /** The body of `main`; `gid`, `lid`, `wid`, `nwg`, `li` are in scope, and `p` is the parameters. */
  readonly body: string;
}

/** Bytes reserved for one kernel's parameter block (the largest uniform offset alignment). */
export const PARAM_SLOT_BYTES = 256;

/** Word offsets of every field of a kernel's parameter struct, following WGSL's uniform layout. */
export interface ParamLayoutInfo {
  /** Field name -> [word offset, type]. */
  readonly fields: readonly { name: string; type: ParamType; word: number }[];
  /** Struct size in bytes (a multiple of 16). */
  readonly bytes: number;
}

const layoutCache = new WeakMap<KernelSpec, ParamLayoutInfo>();

/** The uniform layout of a kernel's parameter block: binding offsets first, then its parameters. */
export function paramLayout(spec: KernelSpec): ParamLayoutInfo {
  let info = layoutCache.get(spec);
  if (info) return info;
  const all: [string, ParamType][] = [
    ...spec.bindings.map((b) => [`${b.name}_o`, "u32"] as [string, ParamType]),
    ...spec.params.map(([n, t]) => [n, t] as [string, ParamType]),
  ];
  let word = 0;
  const fields = all.map(([name, type]) => {
    if (type === "vec4u" || type === "vec4u2") word = Math.ceil(word / 4) * 4;
    const f = { name, type, word };
    word += type === "vec4u" ? 4 : type === "vec4u2" ? 8 : 1;
    return f;
  });
  const bytes = Math.max(16, Math.ceil(word / 4) * 16);
  if (bytes > PARAM_SLOT_BYTES) {
    throw new Error(`kernel ${spec.key}: parameter block of ${bytes} bytes is too large`);
  }
  info = { fields, bytes };
  layoutCache.set(spec, info);
  return info;
}

function wgslType(t: ParamType): string {
  return t === "vec4u" ? "vec4<u32>" : t === "vec4u2" ? "array<vec4<u32>, 2>" : t;
}

/** The complete WGSL source of a kernel; `allReadWrite` binds every storage buffer read_write. */
export function kernelSource(spec: KernelSpec, allReadWrite: boolean): string {
  const { fields } = paramLayout(spec);
  const struct = fields.map((f) => `  ${f.name}: ${wgslType(f.type)},`).join("\n");
  const binds = spec.bindings.map((b, i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${
      b.write || allReadWrite ? "read_write" : "read"
    }> ${b.name}: array<f32>;`
  ).join("\n");
  const [x, y = 1, z = 1] = spec.workgroup;
  return `struct Params {
${struct}
}
@group(0) @binding(0) var<uniform> p: Params;
${binds}

${COMMON}
${spec.decls ?? ""}

@compute @workgroup_size(${x}, ${y}, ${z})
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
${spec.body}
}
`;
}

/** Helpers every kernel may use. */
const COMMON = `
/** Entry i of eight u32 packed as two vec4. */
fn at8(a: array<vec4<u32>, 2>, i: u32) -> u32 {
  return a[i / 4u][i % 4u];
}
`;

/** Threads per workgroup of the one-element-per-thread kernels. */
export const LINEAR_WG = 256;

/**
 * Body prologue of a one-element-per-thread kernel over `p.n` elements dispatched with
 * {@link linearGrid}: defines `i` and returns past the end.
 */
export const LINEAR_INDEX =
  `  let i = (wid.y * nwg.x + wid.x) * ${LINEAR_WG}u + lid.x;\n  if (i >= p.n) { return; }\n`;

/** The flat index of a workgroup in a 2-D grid from {@link groupsGrid}. */
export const GROUP_INDEX = `(wid.y * nwg.x + wid.x)`;

const MAX_DIM = 65535;

/** A grid of `groups` workgroups, folded into two dimensions when it exceeds the per-axis limit. */
export function groupsGrid(groups: number): [number, number, number] {
  if (groups <= MAX_DIM) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / MAX_DIM);
  if (y > MAX_DIM) {
    throw new RangeError(`webgpu: ${groups} workgroups is too many for one dispatch`);
  }
  return [Math.ceil(groups / y), y, 1];
}

/** The grid of a one-element-per-thread kernel over `n` elements. */
export function linearGrid(n: number): [number, number, number] {
  return groupsGrid(Math.ceil(n / LINEAR_WG));
}

/**
 * A workgroup-wide sum and max over `size` threads, for kernels that declare `decls` with it.
 * Must be called from uniform control flow by every thread of the workgroup.
 */
export function workgroupReduce(size: number): string {
  return `
var<workgroup> red: array<f32, ${size}>;
fn wgSum(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = ${size / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { red[t] = red[t] + red[t + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgMax(v: f32, t: u32) -> f32 {
  red[t] = v;
  workgroupBarrier();
  for (var s = ${size / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { red[t] = max(red[t], red[t + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;
}

/** Memoises kernel specs by key, so each is built (and its WGSL generated) once. */
export function memo<A extends unknown[]>(
  make: (...args: A) => KernelSpec,
): (...args: A) => KernelSpec {
  const cache = new Map<string, KernelSpec>();
  return (...args: A) => {
    const k = JSON.stringify(args);
    let s = cache.get(k);
    if (!s) {
      s = make(...args);
      cache.set(k, s);
    }
    return s;
  };
}

/** Shorthand for a read-only binding. */
export function ro(name: string): BindingSpec {
  return { name, write: false };
}

/** Shorthand for a written binding. */
export function rw(name: string): BindingSpec {
  return { name, write: true };
}

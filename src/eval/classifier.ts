/**
 * A small CNN digit classifier, for judging generated images: its class probabilities say whether a
 * sample looks like a confident digit, and its 128-d penultimate features feed the Fréchet distance
 * (src/metrics/frechet.ts), an FID-like score.
 *
 * Architecture (PyTorch names): conv1 C->16 3x3 p1, ReLU; conv2 16->32 3x3 s2 p1, ReLU; conv3
 * 32->64 3x3 s2 p1, ReLU; flatten; fc1 64·s'²->128, ReLU (the features); fc2 128->classes. The
 * parameters live in one flat {@link ParamStore}, as the diffusion models' do, and are saved as
 * safetensors with {@link CLASSIFIER_FORMAT} in the metadata.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { type BackendChoice, selectBackend } from "../backends/registry.ts";
import { checkInt, checkNumber, FileFormatError, OptionError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from "../io/safetensors.ts";
import { Conv2d } from "../nn/conv.ts";
import { Linear } from "../nn/linear.ts";
import {
  ParamLayout,
  type ParamSource,
  type ParamSpec,
  ParamStore,
  recordParams,
} from "../nn/params.ts";
import { DeviceSchedule, qSample } from "../diffusion/forward.ts";
import { makeBetas, makeSchedule, type ScheduleConfig } from "../diffusion/schedule.ts";
import { timestepEmbedding } from "../nn/embedding.ts";
import { add, relu } from "../ops/elementwise.ts";
import { softmax } from "../ops/norm.ts";
import { gatherRows, reshape } from "../ops/shape.ts";
import { Adam } from "../optim/adam.ts";
import { learningRate } from "../optim/lr_schedule.ts";
import { blocksFor, Random } from "../random.ts";
import { STREAMS } from "../random_streams.ts";
import { backward, noGrad, Tensor } from "../tensor.ts";
import { crossEntropy } from "./cross_entropy.ts";

/** The metadata value that marks a classifier file of this library. */
export const CLASSIFIER_FORMAT = "deno-diffusion/classifier@1";

/** The shape of the network. */
export interface ClassifierConfig {
  /** Image channels (1 for MNIST). */
  channels: number;
  /** Side of the square images (28 for MNIST). */
  imageSize: number;
  /** Number of classes (10 for digits). */
  classes: number;
  /** Channels of the three convolutions (default [16, 32, 64]). */
  widths: [number, number, number];
  /** Size of the penultimate features (default 128). */
  features: number;
  /**
   * A noise-conditional classifier p(y | x_t, t) for classifier guidance (Dhariwal & Nichol 2021):
   * the diffusion schedule whose noisy images it was trained on. It then takes the timestep too,
   * as a sinusoidal embedding added to the first convolution's channels (absent: clean images).
   */
  noise?: ScheduleConfig;
}

/** Size of a noise-conditional classifier's sinusoidal time embedding. */
const TIME_EMBEDDING = 32;

/** The default configuration for images of `channels` x `imageSize` x `imageSize`. */
export function classifierConfig(
  channels = 1,
  imageSize = 28,
  classes = 10,
): ClassifierConfig {
  return { channels, imageSize, classes, widths: [16, 32, 64], features: 128 };
}

/** Side of the last feature map: two stride-2 convolutions with padding 1. */
function finalSide(size: number): number {
  const down = (s: number) => Math.floor((s - 1) / 2) + 1;
  return down(down(size));
}

function checkConfig(c: ClassifierConfig): void {
  checkInt("channels", c.channels, 1);
  checkInt("imageSize", c.imageSize, 1);
  checkInt("classes", c.classes, 2);
  checkInt("features", c.features, 1);
  if (!Array.isArray(c.widths) || c.widths.length !== 3) {
    throw new OptionError(`widths must list three channel counts, got ${JSON.stringify(c.widths)}`);
  }
  c.widths.forEach((w, i) => checkInt(`widths[${i}]`, w, 1));
  if (c.noise !== undefined) makeBetas(c.noise);
}

/** The layers, declaring their parameters (PyTorch state_dict names) in this order. */
class Layers {
  readonly conv: [Conv2d, Conv2d, Conv2d];
  readonly fc: [Linear, Linear];
  readonly time: Linear | null;

  constructor(c: ClassifierConfig, params: ParamSource) {
    const [w1, w2, w3] = c.widths, s = finalSide(c.imageSize);
    this.conv = [
      new Conv2d(params, "conv1", c.channels, w1, 3, { padding: 1 }),
      new Conv2d(params, "conv2", w1, w2, 3, { stride: 2, padding: 1 }),
      new Conv2d(params, "conv3", w2, w3, 3, { stride: 2, padding: 1 }),
    ];
    this.fc = [
      new Linear(params, "fc1", w3 * s * s, c.features),
      new Linear(params, "fc2", c.features, c.classes),
    ];
    this.time = c.noise ? new Linear(params, "temb", TIME_EMBEDDING, w1) : null;
  }
}

/** The parameters, in PyTorch state_dict names: the layers built on a recording source. */
export function classifierSpecs(c: ClassifierConfig): ParamSpec[] {
  return recordParams((params) => new Layers(c, params));
}

/** What the network computes for a batch. */
export interface ClassifierOutput {
  /** [B, classes]. */
  logits: Tensor;
  /** [B, features], after the ReLU. */
  features: Tensor;
}

/** The classifier: configuration, backend and flat parameters. */
export class Classifier {
  /** The configuration. */
  readonly config: ClassifierConfig;
  /** The backend holding the parameters. */
  readonly backend: Backend;
  /** Where each parameter lives. */
  readonly layout: ParamLayout;
  /** The parameters (with gradients). */
  readonly params: ParamStore;
  /** Optimizer steps taken. */
  stepsTrained = 0;
  readonly #layers: Layers;
  /** The same layers over the same values without gradients (for gradients to the input only). */
  readonly #fixed: Layers;

  /** A classifier with the given flat initial values (length of its layout). */
  constructor(config: ClassifierConfig, backend: Backend, values: ArrayLike<number>) {
    checkConfig(config);
    this.config = config;
    this.backend = backend;
    this.layout = new ParamLayout(classifierSpecs(config));
    if (values.length !== this.layout.length) {
      throw new RangeError(
        `classifier needs ${this.layout.length} parameter values, got ${values.length}`,
      );
    }
    this.params = new ParamStore(
      backend,
      this.layout,
      backend.upload(values),
      backend.alloc(this.layout.length),
    );
    this.#layers = new Layers(config, this.params);
    this.#fixed = new Layers(
      config,
      new ParamStore(backend, this.layout, this.params.values, null),
    );
  }

  /** Values per image. */
  get imageValues(): number {
    const c = this.config;
    return c.channels * c.imageSize * c.imageSize;
  }

  /** Whether the classifier reads noisy images at a timestep (see {@link ClassifierConfig.noise}). */
  get noiseConditional(): boolean {
    return this.config.noise !== undefined;
  }

  /**
   * x [B, C, H, W] -> logits and features; a noise-conditional classifier also takes the
   * timesteps t [B] (1..T as floats) of x.
   */
  forward(x: Tensor, t?: Tensor): ClassifierOutput {
    return this.#run(this.#layers, x, t);
  }

  /**
   * {@link Classifier.forward} with the weights held constant: a backward pass from its output
   * reaches only x (classifier guidance), computing no weight gradients.
   */
  forwardFixed(x: Tensor, t?: Tensor): ClassifierOutput {
    return this.#run(this.#fixed, x, t);
  }

  #run(layers: Layers, x: Tensor, t?: Tensor): ClassifierOutput {
    const { conv, fc, time } = layers;
    if ((time !== null) !== (t !== undefined)) {
      throw new RangeError(
        time
          ? "this classifier reads noisy images: pass their timesteps"
          : "this classifier takes no timesteps",
      );
    }
    let h = conv[0].forward(x);
    if (time) {
      const shift = time.forward(timestepEmbedding(t!, TIME_EMBEDDING));
      h = add(h, reshape(shift, [x.shape[0], shift.shape[1], 1, 1]));
    }
    h = relu(h);
    for (const c of conv.slice(1)) h = relu(c.forward(h));
    h = reshape(h, [x.shape[0], -1]);
    const features = relu(fc[0].forward(h));
    return { logits: fc[1].forward(features), features };
  }

  /** The weights by name, read back to the host. */
  async weights(): Promise<Map<string, Float32Array>> {
    const all = await this.backend.read(this.params.values), out = new Map<string, Float32Array>();
    for (const e of this.layout.entries) {
      out.set(e.name, Float32Array.from(all.subarray(e.offset, e.offset + e.size)));
    }
    return out;
  }

  /** Releases the parameters' storage. */
  dispose(): void {
    this.backend.free(this.params.values);
    if (this.params.grads) this.backend.free(this.params.grads);
  }
}

/** Progress of {@link trainClassifier}. */
export interface ClassifierProgress {
  /** Steps done. */
  step: number;
  /** Total steps. */
  steps: number;
  /** Cross-entropy of the latest batch. */
  loss: number;
  /** Accuracy on the latest batch. */
  batchAccuracy: number;
  /** Milliseconds since training began. */
  elapsedMs: number;
}

/** Options of {@link trainClassifier}. */
export interface TrainClassifierOptions {
  /** Images, N x C x S x S values, row-major. */
  images: Float32Array;
  /** One class index per image. */
  labels: ArrayLike<number>;
  /** [N, C, S, S]. */
  shape: readonly number[];
  /** Number of classes (default 10). */
  classes?: number;
  /** Optimizer steps (default 2,000). */
  steps?: number;
  /** Batch size (default 64). */
  batchSize?: number;
  /** Peak learning rate, cosine-decayed (default 2e-3). */
  lr?: number;
  /** Seed of the initialisation and the batches (default 0). */
  seed?: number;
  /** Which backend computes (default "auto"). */
  backend?: BackendChoice;
  /** Overrides of the architecture (widths, features). */
  config?: Partial<Pick<ClassifierConfig, "widths" | "features">>;
  /**
   * Train a noise-conditional classifier for classifier guidance: each batch noised to uniform
   * timesteps of this diffusion schedule (images in [-1, 1], as the diffusion model sees them).
   */
  noise?: ScheduleConfig;
  /** Called every `progressEvery` steps and at the end. */
  onProgress?: (p: ClassifierProgress) => void;
  /** How often to read the loss back (default 100). */
  progressEvery?: number;
}

/** Random streams under the seed. */

/** Trains a classifier from scratch on labelled images (Adam, cosine learning rate). */
export async function trainClassifier(o: TrainClassifierOptions): Promise<Classifier> {
  const steps = o.steps ?? 2000, B = o.batchSize ?? 64, lr = o.lr ?? 2e-3, seed = o.seed ?? 0;
  const every = o.progressEvery ?? 100;
  checkInt("steps", steps, 0);
  checkInt("batchSize", B, 1);
  checkNumber("lr", lr, { gt: 0 });
  checkInt("seed", seed, 0);
  checkInt("progressEvery", every, 1);
  const shape = o.shape;
  if (shape.length !== 4 || shape[2] !== shape[3]) {
    throw new OptionError(`shape must be [count, channels, size, size], got [${shape}]`);
  }
  const [N, C, S] = shape;
  if (o.images.length !== N * C * S * S) {
    throw new OptionError(`shape [${shape}] needs ${N * C * S * S} values, got ${o.images.length}`);
  }
  if (o.labels.length !== N) {
    throw new OptionError(`${N} images but ${o.labels.length} labels`);
  }
  const classes = o.classes ?? 10;
  for (let i = 0; i < N; i++) {
    const y = o.labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new OptionError(`label ${i} is ${y}; labels must be integers in [0, ${classes})`);
    }
  }
  const config: ClassifierConfig = { ...classifierConfig(C, S, classes), ...o.config };
  if (o.noise) config.noise = o.noise;
  try {
    checkConfig(config);
  } catch (e) {
    throw e instanceof OptionError ? e : new OptionError((e as Error).message);
  }
  const { backend: be } = await selectBackend(o.backend ?? "auto");
  const layout = new ParamLayout(classifierSpecs(config));
  const model = new Classifier(config, be, layout.initialValues(new Random(seed, STREAMS.init)));
  const opt = new Adam(model.params);
  const data = new Tensor(be, be.upload(o.images), shape);
  const labels = new Tensor(be, be.upload(Float32Array.from(o.labels)), [N]);
  const idx = new Tensor(be, be.alloc(B), [B]);
  // Noise-conditional: t uniform in 1..T and x_t = alpha_t x + sigma_t eps, drawn on the device.
  const noisy = config.noise ? new DeviceSchedule(be, makeSchedule(config.noise)) : null;
  const T = config.noise?.T ?? 0;
  const t = new Tensor(be, be.alloc(B), [B]);
  const eps = new Tensor(be, be.alloc(B * C * S * S), [B, C, S, S]);
  const start = performance.now();
  for (let step = 1; step <= steps; step++) {
    be.beginScope();
    be.randomInt(
      idx.storage,
      { seed, stream: STREAMS.batch, counter: (step - 1) * blocksFor(B) },
      0,
      N,
    );
    let x = gatherRows(data, idx);
    const y = gatherRows(labels, idx);
    if (noisy) {
      const counter = (step - 1) * blocksFor(B);
      be.randomInt(t.storage, { seed, stream: STREAMS.time, counter }, 1, T + 1);
      be.randomNormal(eps.storage, {
        seed,
        stream: STREAMS.noise,
        counter: (step - 1) * blocksFor(eps.size),
      });
      x = qSample(x, eps, noisy.level(t, 4));
    }
    const { logits } = model.forward(x, noisy ? t : undefined);
    const loss = crossEntropy(logits, y);
    be.fill(model.params.grads!, 0);
    backward(loss);
    opt.step(learningRate(step, { lr, schedule: "cosine", steps, warmupSteps: 0 }));
    be.flush();
    model.stepsTrained = step;
    const report = step % every === 0 || step === steps;
    if (report) {
      const [l, lg, yy] = await Promise.all([
        be.read(loss.storage),
        be.read(logits.storage),
        be.read(y.storage),
      ]);
      be.endScope();
      if (!Number.isFinite(l[0])) {
        throw new OptionError(`classifier training diverged at step ${step}; lower lr`);
      }
      const pred = argmaxRows(lg, classes);
      let right = 0;
      for (let i = 0; i < B; i++) if (pred[i] === yy[i]) right++;
      o.onProgress?.({
        step,
        steps,
        loss: l[0],
        batchAccuracy: right / B,
        elapsedMs: performance.now() - start,
      });
      await new Promise((r) => setTimeout(r, 0));
    } else {
      be.endScope();
    }
  }
  for (const s of [data.storage, labels.storage, idx.storage, t.storage, eps.storage]) be.free(s);
  return model;
}

/** The index of the largest value of each row of a rows x cols matrix. */
export function argmaxRows(values: ArrayLike<number>, cols: number): Int32Array {
  const rows = values.length / cols, out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let k = 1; k < cols; k++) if (values[r * cols + k] > values[r * cols + best]) best = k;
    out[r] = best;
  }
  return out;
}

/** What {@link classify} returns. */
export interface Classification {
  /** N x classes softmax probabilities. */
  probabilities: Float32Array;
  /** N x features penultimate features. */
  features: Float32Array;
}

/** Runs the classifier on N images (N x C x S x S values) in batches of `batchSize` (default 250). */
export async function classify(
  model: Classifier,
  images: Float32Array,
  batchSize = 250,
): Promise<Classification> {
  checkInt("batchSize", batchSize, 1);
  const per = model.imageValues, c = model.config;
  if (images.length % per !== 0) {
    throw new OptionError(
      `images hold ${images.length} values, not a whole number of ${c.channels}x${c.imageSize}x${c.imageSize} images`,
    );
  }
  const N = images.length / per, be = model.backend;
  const probabilities = new Float32Array(N * c.classes);
  const features = new Float32Array(N * c.features);
  for (let start = 0; start < N; start += batchSize) {
    const n = Math.min(batchSize, N - start);
    be.beginScope();
    const x = new Tensor(
      be,
      be.upload(images.subarray(start * per, (start + n) * per)),
      [n, c.channels, c.imageSize, c.imageSize],
    );
    const out = noGrad(() => {
      const o = model.forward(x);
      return { p: softmax(o.logits), f: o.features };
    });
    be.flush();
    const [p, f] = await Promise.all([be.read(out.p.storage), be.read(out.f.storage)]);
    be.endScope();
    probabilities.set(p, start * c.classes);
    features.set(f, start * c.features);
  }
  return { probabilities, features };
}

/** The fraction of rows whose most probable class is the label. */
export function accuracy(probabilities: ArrayLike<number>, labels: ArrayLike<number>): number {
  const classes = probabilities.length / labels.length;
  const pred = argmaxRows(probabilities, classes);
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) right++;
  return right / labels.length;
}

/** The bytes of a classifier file: weights by name, the configuration and `metadata`. */
export async function encodeClassifier(
  model: Classifier,
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const tensors = new Map<string, NamedTensor>();
  const w = await model.weights();
  for (const e of model.layout.entries) {
    tensors.set(e.name, { shape: e.shape, data: w.get(e.name)! });
  }
  return encodeSafetensors(tensors, {
    ...metadata,
    format: CLASSIFIER_FORMAT,
    config: JSON.stringify(model.config),
    steps: String(model.stepsTrained),
  });
}

/** Saves a classifier atomically as safetensors. */
export async function saveClassifier(
  model: Classifier,
  path: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, await encodeClassifier(model, metadata));
}

/** A classifier and the metadata of its file. */
export interface LoadedClassifier {
  /** The classifier. */
  model: Classifier;
  /** Every `__metadata__` string of the file. */
  metadata: Record<string, string>;
}

/** Decodes a classifier file; `path` names it in errors ({@link FileFormatError}). */
export async function decodeClassifier(
  bytes: Uint8Array,
  path = "classifier data",
  backend: BackendChoice | Backend = "auto",
): Promise<LoadedClassifier> {
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  const bad = (problem: string) => new FileFormatError(path, problem);
  if (metadata.format !== CLASSIFIER_FORMAT) {
    throw bad(
      `not a classifier file: its format is ${
        JSON.stringify(metadata.format ?? null)
      }, expected ${CLASSIFIER_FORMAT}` +
        (metadata.format?.includes("model") ? " (this looks like a diffusion model)" : ""),
    );
  }
  let config: ClassifierConfig;
  try {
    config = JSON.parse(metadata.config);
    checkConfig(config);
  } catch (e) {
    throw bad(`invalid classifier configuration: ${(e as Error).message}`);
  }
  const layout = new ParamLayout(classifierSpecs(config));
  const values = new Float32Array(layout.length);
  for (const e of layout.entries) {
    const t = tensors.get(e.name);
    if (!t) throw bad(`missing tensor ${e.name}`);
    if (t.shape.join() !== e.shape.join()) {
      throw bad(`tensor ${e.name} has shape [${t.shape}], the configuration needs [${e.shape}]`);
    }
    values.set(t.data, e.offset);
  }
  for (const name of tensors.keys()) {
    if (!layout.entries.some((e) => e.name === name)) throw bad(`unexpected tensor ${name}`);
  }
  // A backend object: the one a diffusion model it guides runs on (tensors cannot cross backends).
  const be = typeof backend === "string" ? (await selectBackend(backend)).backend : backend;
  const model = new Classifier(config, be, values);
  const steps = Number(metadata.steps ?? "0");
  model.stepsTrained = Number.isInteger(steps) && steps >= 0 ? steps : 0;
  return { model, metadata };
}

/** Loads a classifier saved by {@link saveClassifier}. */
export async function loadClassifier(
  path: string,
  backend: BackendChoice | Backend = "auto",
): Promise<LoadedClassifier> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FileFormatError(path, "no such file");
    if (e instanceof Deno.errors.IsADirectory) {
      throw new FileFormatError(path, "is a folder, not a classifier file");
    }
    throw new FileFormatError(path, `cannot be read: ${(e as Error).message}`);
  }
  return decodeClassifier(bytes, path, backend);
}

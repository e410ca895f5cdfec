// skillsets in the browser: a transformers.js-style API over the wasm32 build of the
// skillsets runtime (web/pkg, made by scripts/build-web.sh).
//
//   import { pipeline } from "./skillsets.js";
//   const fill = await pipeline("fill-mask", "/fixtures/bert-tiny-mlm/", {
//     progress_callback: (p) => console.log(p.status, p.file, p.progress),
//   });
//   const out = await fill("Paris is the [MASK] of France.");
//   // out: [{score, token, token_str, sequence}, ...], as `skillset run --json` prints
//
// A model is a base URL (files are fetched from it: config.json, tokenizer.json,
// model.safetensors or its shards (else PyTorch's pytorch_model.bin or its shards, read
// weights only), and the optional files the runtime reads), or an
// object mapping file names to URLs. Files are kept in the browser's Cache API
// (cache "skillsets-models-v1"), so a second load does not download them again.
// Inference runs on the page's thread, on the CPU, with WebAssembly SIMD128.

import init, {
  Files,
  WebPipeline,
  checkReference,
  simd128,
  version as wasmVersion,
} from "./pkg/skillset_web.js";

export const CACHE_NAME = "skillsets-models-v1";

// tokenizer.json is required for text tasks; image and audio models may have none
// (ViT, Wav2Vec2 with vocab.json), and the runtime names whatever is missing.
const REQUIRED = ["config.json"];
const TEXT_REQUIRED = ["tokenizer.json"];
const MEDIA_TASKS = new Set([
  "image-classification",
  "image-feature-extraction",
  "zero-shot-image-classification",
  "automatic-speech-recognition",
  "audio-classification",
  "image-text-to-text",
]);
// Read when present (a 404 is fine): tokenizer and generation settings, and the
// sentence-transformers layout (pooling, normalization, max length, prompts).
const OPTIONAL = [
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
  "modules.json",
  "preprocessor_config.json",
  "vocab.json",
  "sentence_bert_config.json",
  "config_sentence_transformers.json",
  "chat_template.jinja",
];

let ready = null;

/** Load and instantiate the wasm module once. */
export function initialize() {
  if (!ready) {
    ready = init({ module_or_path: new URL("./pkg/skillset_web_bg.wasm", import.meta.url) });
  }
  return ready;
}

/** The skillsets version and whether the module uses SIMD128. */
export async function info() {
  await initialize();
  return { version: wasmVersion(), simd128: simd128(), backend: "wasm" };
}

export class ModelFileError extends Error {
  constructor(message, { url, status } = {}) {
    super(message);
    this.name = "ModelFileError";
    this.url = url;
    this.status = status;
  }
}

async function openCache(useCache) {
  if (!useCache || typeof caches === "undefined") return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null; // not a secure context, or storage disabled: download every time
  }
}

/**
 * Fetch one file, from the cache when there, reporting progress. Returns the bytes,
 * or null for a missing optional file.
 */
async function fetchFile(name, url, { cache, required, progress }) {
  progress({ status: "initiate", file: name, url });
  let response = cache ? await cache.match(url) : undefined;
  const fromCache = Boolean(response);
  if (!response) {
    try {
      response = await fetch(url);
    } catch (e) {
      throw new ModelFileError(`${url}: cannot fetch ${name}: ${e.message}`, { url });
    }
    if (!response.ok) {
      if (!required && response.status === 404) {
        progress({ status: "done", file: name, url, missing: true });
        return null;
      }
      const what = response.status === 404 ? "not found" : response.statusText || "failed";
      throw new ModelFileError(
        `${url}: ${name} ${what} (HTTP ${response.status}); ` +
          "a checkpoint needs config.json, tokenizer.json and model.safetensors",
        { url, status: response.status },
      );
    }
  }
  const total = Number(response.headers.get("content-length")) || 0;
  let bytes;
  if (response.body && !fromCache) {
    const reader = response.clone().body.getReader();
    const chunks = [];
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      progress({
        status: "progress",
        file: name,
        url,
        loaded,
        total,
        progress: total ? (100 * loaded) / total : undefined,
      });
    }
    bytes = new Uint8Array(loaded);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    if (cache) {
      try {
        await cache.put(url, response);
      } catch {
        // quota exceeded: the file is used, just not kept
      }
    }
  } else {
    bytes = new Uint8Array(await response.arrayBuffer());
  }
  progress({ status: "done", file: name, url, loaded: bytes.length, total: bytes.length, from_cache: fromCache });
  return bytes;
}

function resolveFiles(model) {
  if (typeof model === "string") {
    const base = new URL(model.endsWith("/") ? model : model + "/", globalThis.location?.href);
    return { label: base.href.replace(/\/$/, ""), url: (name) => new URL(name, base).href, listed: null };
  }
  if (model && typeof model === "object") {
    const listed = Object.fromEntries(
      Object.entries(model).map(([k, v]) => [k, new URL(v, globalThis.location?.href).href]),
    );
    return { label: "model", url: (name) => listed[name], listed };
  }
  throw new TypeError("model must be a base URL or an object of file name -> URL");
}

/** Fetch every file the runtime reads of a checkpoint into a `Files`. */
async function fetchCheckpoint(model, { task, progress, useCache }) {
  const { label, url, listed } = resolveFiles(model);
  const cache = await openCache(useCache);
  const files = new Files(label);
  const get = async (name, required) => {
    const u = url(name);
    if (!u) {
      if (required) throw new ModelFileError(`${name} is not among the model's files`, {});
      return null;
    }
    const bytes = await fetchFile(name, u, { cache, required, progress });
    if (bytes) files.add(name, bytes);
    return bytes;
  };
  const json = (bytes) => {
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null; // the runtime reports it, naming the file
    }
  };
  for (const name of REQUIRED) await get(name, true);
  for (const name of TEXT_REQUIRED) await get(name, !MEDIA_TASKS.has(task));
  const optional = listed ? OPTIONAL.filter((n) => n in listed) : OPTIONAL;
  const found = {};
  await Promise.all(optional.map(async (n) => (found[n] = await get(n, false))));
  // Weights: one file, or the shards an index names; safetensors, else PyTorch pickles.
  let loaded = false;
  for (const [single, indexName] of [
    ["model.safetensors", "model.safetensors.index.json"],
    ["pytorch_model.bin", "pytorch_model.bin.index.json"],
  ]) {
    if (await get(single, false)) {
      loaded = true;
      break;
    }
    const index = await get(indexName, false);
    if (index) {
      const map = json(index)?.weight_map ?? {};
      for (const shard of new Set(Object.values(map))) await get(shard, true);
      loaded = true;
      break;
    }
  }
  if (!loaded) {
    const where = url("model.safetensors") ?? label;
    throw new ModelFileError(
      `${where}: model.safetensors not found, nor model.safetensors.index.json, ` +
        "pytorch_model.bin or pytorch_model.bin.index.json",
      { url: where, status: 404 },
    );
  }
  // sentence-transformers: the pooling config a module names.
  const modules = found["modules.json"] ? json(found["modules.json"]) : null;
  if (Array.isArray(modules)) {
    for (const m of modules) {
      if (String(m.type ?? "").endsWith("Pooling") && m.path) {
        await get(`${String(m.path).replace(/\/$/, "")}/config.json`, true);
      }
    }
  }
  return files;
}

/** The bytes of an image or audio input given as a URL, Blob, ArrayBuffer or bytes. */
async function mediaBytes(x) {
  if (typeof x === "string") {
    const r = await fetch(x);
    if (!r.ok) throw new Error(`${x}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  }
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (typeof Blob !== "undefined" && x instanceof Blob) return new Uint8Array(await x.arrayBuffer());
  throw new TypeError("an image or audio input must be a URL, Blob, ArrayBuffer or Uint8Array");
}

/**
 * Load a model for a task, as transformers.js' `pipeline(task, model, options)`.
 * Options: `progress_callback(event)` (events `initiate`, `progress`, `done`,
 * `ready`, each naming `file`), `cache` (default true).
 * Returns an async function `(inputs, runOptions) => outputs`: a string gives one
 * output, an array gives one per input. Image and audio tasks take URLs (or Blobs,
 * ArrayBuffers, Uint8Arrays) of PNG/JPEG or WAV files. `runOptions` are `skillset
 * run`'s: top_k, pooling ("mean", "cls", "max", "none"), normalize, max_new_tokens,
 * do_sample, temperature, top_p, seed, repetition_penalty, candidate_labels,
 * hypothesis_template, language, task (Whisper), text (image-text-to-text).
 */
export async function pipeline(task, model, options = {}) {
  const progress = options.progress_callback ?? (() => {});
  await initialize();
  const files = await fetchCheckpoint(model, { task, progress, useCache: options.cache !== false });
  let inner;
  try {
    inner = WebPipeline.load(task, files);
  } catch (e) {
    throw new Error(String(e?.message ?? e));
  }
  progress({ status: "ready", task, model: inner.modelType });
  const kind = inner.inputKind;
  const run = async (inputs, runOptions = {}) => {
    const many = Array.isArray(inputs);
    const list = many ? inputs : [inputs];
    let text;
    if (kind === "text") {
      if (list.some((x) => typeof x !== "string")) {
        throw new TypeError("inputs must be a string or an array of strings");
      }
      try {
        text = inner.run(JSON.stringify(list), JSON.stringify(runOptions));
      } catch (e) {
        throw new Error(String(e?.message ?? e));
      }
    } else {
      // Images (PNG, JPEG) or audio (WAV): URLs, Blobs, ArrayBuffers or byte arrays.
      const media = new Files(`${task} inputs`);
      const names = [];
      for (const [i, x] of list.entries()) {
        const name = typeof x === "string" ? x : `input ${i}`;
        names.push(name);
        media.add(name, await mediaBytes(x));
      }
      try {
        text = inner.runMedia(media, JSON.stringify(names), JSON.stringify(runOptions));
      } catch (e) {
        throw new Error(String(e?.message ?? e));
      }
    }
    const outputs = JSON.parse(text);
    return many ? outputs : outputs[0];
  };
  run.task = inner.task;
  run.modelType = inner.modelType;
  run.family = inner.family;
  run.device = inner.device;
  run.dispose = () => inner.free();
  return run;
}

/**
 * Compare outputs with a fixture's transformers reference by the native
 * conformance rule. `check` is one entry of reference.json's `checks`.
 */
export async function compareWithReference(check, outputs) {
  await initialize();
  return JSON.parse(checkReference(JSON.stringify(check), JSON.stringify(outputs)));
}

/** Forget every cached model file. */
export async function clearCache() {
  if (typeof caches !== "undefined") await caches.delete(CACHE_NAME);
}

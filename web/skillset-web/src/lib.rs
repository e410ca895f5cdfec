//! skillsets in the browser: the same runtime as the native `skillset` command,
//! compiled to `wasm32-unknown-unknown` (CPU, SIMD128), with checkpoints passed in as
//! bytes instead of paths.
//!
//! JavaScript uses it through `web/skillsets.js` (a transformers.js-style
//! `pipeline(task, model)`); this crate is the thin wasm-bindgen layer under it:
//!
//! ```js
//! const files = new Files("https://example.org/models/bert");
//! files.add("config.json", bytes1); files.add("tokenizer.json", bytes2);
//! files.add("model.safetensors", bytes3);
//! const p = WebPipeline.load("fill-mask", files);
//! const json = p.run(JSON.stringify(["Paris is the [MASK] of France."]), "{}");
//! ```
//!
//! Outputs are `skillset run --json`'s `outputs`, one per input, as a JSON string.

use std::collections::BTreeMap;

use skillset_runtime::media::{Audio, RgbImage};
use skillset_runtime::pipeline::RunOptions;
use skillset_runtime::{
    Checkpoint, DType, DeviceSpec, InputKind, LoadOptions, Pipeline, Scope, Task,
};
use wasm_bindgen::prelude::*;

/// The files of one checkpoint, by name, as the page fetched them.
#[wasm_bindgen]
pub struct Files {
    label: String,
    files: BTreeMap<String, Vec<u8>>,
}

#[wasm_bindgen]
impl Files {
    /// `label` names the checkpoint in error messages (its base URL, say).
    #[wasm_bindgen(constructor)]
    pub fn new(label: &str) -> Files {
        Files {
            label: label.to_string(),
            files: BTreeMap::new(),
        }
    }

    /// Add a file (`config.json`, `tokenizer.json`, `model.safetensors`, ...).
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.insert(name.to_string(), bytes);
    }

    /// The names added so far, comma-separated.
    pub fn names(&self) -> String {
        self.files.keys().cloned().collect::<Vec<_>>().join(",")
    }
}

/// A checkpoint loaded for one task, on the CPU of the page's wasm instance.
#[wasm_bindgen]
pub struct WebPipeline {
    inner: Pipeline,
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl WebPipeline {
    /// Load `files` for `task`: the model type comes from config.json and runs on the
    /// family `skillset run` would use, or this is an error that says why not.
    pub fn load(task: &str, files: Files) -> Result<WebPipeline, JsError> {
        let task: Task = task.parse().map_err(js_error)?;
        let ckpt = Checkpoint::from_files(&files.label, files.files).map_err(js_error)?;
        let info = skillsets::lookup(&ckpt.model_type).ok_or_else(|| {
            js_error(format!(
                "{}: model type `{}` is not one of the {} model types of transformers {}",
                ckpt.config_path().display(),
                ckpt.model_type,
                skillsets::MODEL_TYPES.len(),
                skillsets::TRANSFORMERS_VERSION
            ))
        })?;
        let options = LoadOptions::new(DeviceSpec::Cpu, DType::F32);
        let inner = Pipeline::load_checkpoint(Scope::ModelType(info), ckpt, task, &options)
            .map_err(js_error)?;
        Ok(WebPipeline { inner })
    }

    /// Run on `inputs_json` (a JSON array of strings) with `options_json` (a JSON
    /// object of `skillset run`'s options: top_k, pooling, normalize,
    /// max_new_tokens, do_sample, temperature, top_p, seed, repetition_penalty).
    /// Returns the JSON array of outputs, one per input.
    pub fn run(&self, inputs_json: &str, options_json: &str) -> Result<String, JsError> {
        let inputs: Vec<String> = serde_json::from_str(inputs_json)
            .map_err(|e| js_error(format!("inputs must be a JSON array of strings: {e}")))?;
        if inputs.is_empty() {
            return Err(js_error("no input: pass a string or an array of strings"));
        }
        if self.inner.task().input_kind() != InputKind::Text {
            return Err(js_error(format!(
                "`{}` takes images or audio: use runMedia",
                self.inner.task()
            )));
        }
        let outputs = self
            .inner
            .run_json(&inputs, &run_options(options_json)?)
            .map_err(js_error)?;
        serde_json::to_string(&outputs).map_err(js_error)
    }

    /// Run an image or audio task on encoded files (PNG/JPEG, WAV), in the order of
    /// `order` (a JSON array of the names given to `media.add`). Returns the JSON
    /// array of outputs, one per file.
    #[wasm_bindgen(js_name = runMedia)]
    pub fn run_media(
        &self,
        media: Files,
        order_json: &str,
        options_json: &str,
    ) -> Result<String, JsError> {
        let order: Vec<String> = serde_json::from_str(order_json)
            .map_err(|e| js_error(format!("order must be a JSON array of names: {e}")))?;
        if order.is_empty() {
            return Err(js_error(
                "no input: pass an image or audio file (or several)",
            ));
        }
        let bytes = |name: &String| {
            media
                .files
                .get(name)
                .ok_or_else(|| js_error(format!("no file named {name:?} was added")))
        };
        let options = run_options(options_json)?;
        let outputs = match self.inner.task().input_kind() {
            InputKind::Image => {
                let images = order
                    .iter()
                    .map(|n| RgbImage::decode(bytes(n)?, n).map_err(js_error))
                    .collect::<Result<Vec<_>, _>>()?;
                self.inner.run_images_json(&images, &options)
            }
            InputKind::Audio => {
                let audio = order
                    .iter()
                    .map(|n| Audio::decode_wav(bytes(n)?, n).map_err(js_error))
                    .collect::<Result<Vec<_>, _>>()?;
                self.inner.run_audio_json(&audio, &options)
            }
            InputKind::Text => {
                return Err(js_error(format!(
                    "`{}` takes text: use run",
                    self.inner.task()
                )))
            }
        }
        .map_err(js_error)?;
        serde_json::to_string(&outputs).map_err(js_error)
    }

    /// `text`, `image` or `audio`: what the task's inputs are.
    #[wasm_bindgen(getter, js_name = inputKind)]
    pub fn input_kind(&self) -> String {
        match self.inner.task().input_kind() {
            InputKind::Text => "text",
            InputKind::Image => "image",
            InputKind::Audio => "audio",
        }
        .to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn task(&self) -> String {
        self.inner.task().to_string()
    }

    #[wasm_bindgen(getter, js_name = modelType)]
    pub fn model_type(&self) -> String {
        self.inner.model_type().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn family(&self) -> String {
        self.inner.family().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        format!("{} (wasm32)", self.inner.device_name())
    }
}

fn run_options(options_json: &str) -> Result<RunOptions, JsError> {
    if options_json.trim().is_empty() {
        return Ok(RunOptions::default());
    }
    let options: serde_json::Value =
        serde_json::from_str(options_json).map_err(|e| js_error(format!("options: {e}")))?;
    RunOptions::from_json(&options).map_err(js_error)
}

/// The skillsets version compiled in.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Whether the module was compiled with WebAssembly SIMD128.
#[wasm_bindgen]
pub fn simd128() -> bool {
    cfg!(target_feature = "simd128")
}

/// Compare a check's outputs with transformers' by the same rule as the native
/// conformance tests (`skillset --run-tests`): `check_json` is one check of a fixture's
/// `reference.json`, `outputs_json` what [`WebPipeline::run`] returned for its inputs.
/// Returns `{"passed": bool, "max_abs_diff": number|null, "detail": string|null}`.
#[wasm_bindgen(js_name = checkReference)]
pub fn check_reference(check_json: &str, outputs_json: &str) -> Result<String, JsError> {
    let check: skillset_conformance::ReferenceCheck =
        serde_json::from_str(check_json).map_err(|e| js_error(format!("check: {e}")))?;
    let ours: serde_json::Value =
        serde_json::from_str(outputs_json).map_err(|e| js_error(format!("outputs: {e}")))?;
    let result = skillset_conformance::check_outputs(&check, &ours, DType::F32);
    let doc = match result {
        Ok(d) => serde_json::json!({"passed": true, "max_abs_diff": d, "detail": null}),
        Err(e) => serde_json::json!({"passed": false, "max_abs_diff": null, "detail": e}),
    };
    Ok(doc.to_string())
}

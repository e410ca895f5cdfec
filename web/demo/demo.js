// The demo page: pick a task and a checkpoint URL, run it in the browser.
// URL parameters fill the form (task, model, input (repeatable), options) and
// `run=1` runs it at once; the browser tests drive the page that way.

import { info, pipeline } from "../skillsets.js";

const $ = (id) => document.getElementById(id);

const EXAMPLES = {
  "feature-extraction": { model: "/fixtures/bert-tiny-mlm/", inputs: ["The cat sits on the mat.", "A dog plays in the park."], options: { pooling: "mean", normalize: true } },
  "fill-mask": { model: "/fixtures/bert-tiny-mlm/", inputs: ["Paris is the [MASK] of France."], options: { top_k: 5 } },
  "text-classification": { model: "/fixtures/bert-tiny-cls/", inputs: ["I love this movie, it was fantastic!"], options: { top_k: "all" } },
  "token-classification": { model: "/fixtures/bert-tiny-ner/", inputs: ["Angela Merkel visited Paris in May."], options: {} },
  "text-generation": { model: "/fixtures/llama-tiny/", inputs: ["Once upon a time"], options: { max_new_tokens: 12 } },
  "text2text-generation": { model: "/fixtures/t5-tiny/", inputs: ["translate English to German: The house is wonderful."], options: { max_new_tokens: 12 } },
};

const timings = (window.__skillsets = { started: performance.now() });
const loaded = new Map(); // task + model -> pipeline

function fillExample(task) {
  const ex = EXAMPLES[task];
  $("model").value = ex.model;
  $("inputs").value = ex.inputs.join("\n");
  $("options").value = JSON.stringify(ex.options);
}

function setStatus(state, text) {
  const s = $("status");
  s.dataset.state = state;
  s.textContent = text;
}

function onProgress(p) {
  if (p.status === "progress" && p.total) {
    $("progress").hidden = false;
    $("bar").value = p.progress;
    $("progress-text").textContent = `${p.file}: ${(p.loaded / 1024).toFixed(0)} of ${(p.total / 1024).toFixed(0)} KiB`;
  } else if (p.status === "done") {
    $("progress-text").textContent = `${p.file}${p.from_cache ? " (from cache)" : p.missing ? " (absent)" : ""}`;
  } else if (p.status === "ready") {
    $("progress").hidden = true;
  }
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function scoreTable(rows, label) {
  const body = rows
    .map((r) => `<tr><td>${esc(r[label])}</td><td>${r.score.toFixed(4)}</td><td><span class="bar" style="width:${Math.round(r.score * 160)}px"></span></td></tr>`)
    .join("");
  return `<table><tr><th>${label}</th><th>score</th><th></th></tr>${body}</table>`;
}

function render(task, inputs, outputs) {
  const parts = inputs.map((input, i) => {
    const out = outputs[i];
    let body;
    if (task === "fill-mask") body = scoreTable(out, "token_str");
    else if (task === "text-classification") body = scoreTable(out, "label");
    else if (task === "token-classification")
      body = `<table><tr><th>word</th><th>entity</th><th>score</th></tr>${out
        .map((e) => `<tr><td>${esc(e.word)}</td><td>${esc(e.entity)}</td><td>${e.score.toFixed(4)}</td></tr>`)
        .join("")}</table>`;
    else if (task === "text-generation" || task === "text2text-generation")
      body = `<pre>${esc(out.generated_text ?? out.translation_text ?? JSON.stringify(out))}</pre>`;
    else {
      const v = Array.isArray(out[0]) ? out[0] : out;
      const dims = Array.isArray(out[0]) ? `${out.length} tokens × ${out[0].length}` : `${out.length}`;
      body = `<pre>[${v.slice(0, 8).map((x) => x.toFixed(5)).join(", ")}, …] (${dims} values)</pre>`;
    }
    return `<h3>${esc(input || "(empty)")}</h3>${body}`;
  });
  $("view").innerHTML = parts.join("");
}

async function run() {
  const task = $("task").value;
  const model = $("model").value.trim();
  const inputs = $("inputs").value.split("\n").filter((l, i, all) => l.length || all.length === 1);
  $("run").disabled = true;
  $("view").innerHTML = "";
  $("output").textContent = "";
  try {
    const options = JSON.parse($("options").value || "{}");
    const key = `${task} ${model}`;
    let p = loaded.get(key);
    if (!p) {
      setStatus("loading", `loading ${model} for ${task}…`);
      const t0 = performance.now();
      p = await pipeline(task, model, { progress_callback: onProgress });
      timings.loadMs = performance.now() - t0;
      loaded.set(key, p);
    }
    setStatus("running", "running…");
    await new Promise((r) => setTimeout(r, 0)); // let the status paint
    const t0 = performance.now();
    const outputs = await p(inputs, options);
    timings.runMs = performance.now() - t0;
    timings.firstResultMs ??= performance.now();
    $("output").textContent = JSON.stringify(outputs, null, 1);
    render(task, inputs, outputs);
    setStatus("done", `${p.modelType} (${p.family} family) on ${p.device}: ${inputs.length} input(s) in ${timings.runMs.toFixed(1)} ms`);
  } catch (e) {
    $("progress").hidden = true;
    setStatus("error", String(e?.message ?? e));
  } finally {
    $("run").disabled = false;
  }
}

async function main() {
  const models = ["/fixtures/bert-tiny-mlm/", "/fixtures/bert-tiny-cls/", "/fixtures/bert-tiny-ner/", "/fixtures/llama-tiny/", "/fixtures/gpt2-tiny/", "/fixtures/t5-tiny/"];
  if ((await fetch("/minilm/config.json", { method: "HEAD" }).catch(() => null))?.ok) {
    models.unshift("/minilm/");
    EXAMPLES["feature-extraction"].model = "/minilm/";
  }
  $("models").innerHTML = models.map((m) => `<option value="${m}">`).join("");
  const q = new URLSearchParams(location.search);
  $("task").value = q.get("task") ?? "fill-mask";
  fillExample($("task").value);
  if (q.has("model")) $("model").value = q.get("model");
  if (q.has("input")) $("inputs").value = q.getAll("input").join("\n");
  if (q.has("options")) $("options").value = q.get("options");
  $("task").addEventListener("change", () => fillExample($("task").value));
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    run();
  });
  try {
    const i = await info();
    $("about").textContent = `skillsets ${i.version}, backend ${i.backend}${i.simd128 ? " with SIMD128" : ""}`;
  } catch (e) {
    setStatus("error", `cannot load the WebAssembly module: ${e.message}; run scripts/build-web.sh`);
    return;
  }
  if (q.get("run") === "1") await run();
}

main();

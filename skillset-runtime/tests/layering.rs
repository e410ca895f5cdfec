//! The runtime's modules in layers: a module may use only the layers below its own
//! (and the modules of its own unit). An import that goes up, or sideways within a
//! layer, fails this test with the file and the path it names, so the import cycles
//! the crate once had (generation ↔ pipeline ↔ speech ↔ the families) cannot come
//! back. The README's "Architecture" section lists the same layers.
//!
//! References are read from the source: `use crate::…` trees, inline `crate::…`
//! paths and `super::…` paths, with comments stripped; a name the crate root
//! re-exports (`crate::Limits`) counts as a use of the module that defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A unit is a module with all its submodules, unless a
/// submodule has an entry of its own (`families::nn` below `families`).
const LAYERS: &[&[&str]] = &[
    // Plain data and errors.
    &["error", "info", "outputs"],
    // Leaf helpers: numeric rows, budgets, the device, PyTorch archives.
    &["ops", "limits", "device", "pytorch"],
    // A checkpoint directory and its files.
    &["checkpoint"],
    // What is read from a checkpoint besides the weights.
    &["tokenize", "chat", "pooling", "media"],
    // The layer library.
    &["families::kernels"],
    &["families::nn"],
    // The interfaces and shared blocks the model families build on.
    &["families::config", "families::heads", "families::stepper"],
    &["families::encoder", "families::causal"],
    // The one decoder-only transformer, driven by a layout.
    &["families::decoder"],
    // The model families.
    &[
        "families::bert",
        "families::gpt",
        "families::llama",
        "families::t5",
        "families::vit",
        "families::clip",
        "families::wav2vec2",
        "families::whisper",
    ],
    // Model types stated as deltas over a family's base member (and Phi, a GPT-style
    // decoder on the layer library alone).
    &[
        "families::gpt_neo",
        "families::gptj",
        "families::gpt_neox",
        "families::gpt_bigcode",
        "families::opt",
        "families::mistral",
        "families::qwen2",
        "families::phi3",
        "families::gemma",
        "families::granite",
        "families::olmo",
        "families::olmo2",
        "families::phi",
        "families::cwm",
        "families::smollm3",
        "families::helium",
        "families::arcee",
        "families::seed_oss",
        "families::cohere",
        "families::nemotron",
        "families::hunyuan_v1_dense",
        "families::stablelm",
        "families::persimmon",
        "families::bloom",
        "families::mpt",
        "families::falcon",
        "families::xglm",
        "families::openai_gpt",
        "families::exaone4",
        "families::ministral3",
        "families::jais2",
        "families::nanochat",
        "families::apertus",
        "families::mla",
        "families::diffllama",
    ],
    // Deltas over a delta (Qwen3 over Qwen2, Ministral over Mistral, OLMo-3 over
    // OLMo-2, GLM over Phi-3's MLP, Gemma 2 over Gemma, Cohere 2 over Cohere, CodeGen
    // over GPT-J).
    &[
        "families::qwen3",
        "families::ministral",
        "families::starcoder2",
        "families::olmo3",
        "families::glm",
        "families::gemma2",
        "families::cohere2",
        "families::codegen",
        "families::granite_swa",
        "families::hyperclovax",
        "families::dbrx",
        "families::minicpm3",
        "families::youtu",
    ],
    // Deltas over those (Gemma 3 and VaultGemma over Gemma 2, GLM-4 and ERNIE 4.5 over
    // GLM).
    &[
        "families::gemma3",
        "families::vaultgemma",
        "families::glm4",
        "families::ernie4_5",
    ],
    // Mixtures of experts: over the members above (OLMo-2, Granite, Granite-SWA,
    // HunYuan-Dense, ERNIE 4.5, the Qwens).
    &["families::moe"],
    // Families built from other families.
    &["families::llava"],
    // Loading a family: the dispatch.
    &["families"],
    // Decoding.
    &["beam"],
    &["generation"],
    // The audio front ends and decoding rules.
    &["speech"],
    // A checkpoint loaded for a task: its options, the handler interface, one handler
    // type per task (the image-text writer reuses the text writer's generation setup),
    // building the task's handler, then the pipeline and its task methods.
    &["pipeline::options"],
    &["pipeline::handler"],
    &["pipeline::text", "pipeline::generate"],
    &["pipeline::vision", "pipeline::audio"],
    &["pipeline::build"],
    &["pipeline"],
    // The typed API.
    &["skillset"],
    &["endpoints"],
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file with its module path (`families::nn`; the crate root is "").
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if name != "mod" && name != "lib" {
                    p.push(name);
                }
                out.insert(p.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src_dir(), &[], &mut out);
    out
}

/// Source without comments (doc links name paths that are not imports).
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_block = 0usize;
    for line in src.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block > 0 {
                match rest.find("*/") {
                    Some(i) => {
                        in_block -= 1;
                        rest = &rest[i + 2..];
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), b) if b.is_none_or(|b| l < b) => {
                        kept.push_str(&rest[..l]);
                        break;
                    }
                    (_, Some(b)) => {
                        kept.push_str(&rest[..b]);
                        in_block += 1;
                        rest = &rest[b + 2..];
                    }
                    _ => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The full paths of a `use` tree starting at `s` (after `crate::` or `super::`),
/// prefixed with `base`.
fn use_tree(s: &str, base: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut i = 0;
    let bytes: Vec<char> = s.chars().collect();
    let mut path = base.to_vec();
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == '{' {
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_whitespace() || bytes[i] == ',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == '}' {
                    return i + 1;
                }
                let rest: String = bytes[i..].iter().collect();
                i += use_tree(&rest, &path, out);
            }
        }
        let start = i;
        while i < bytes.len() && (is_ident(bytes[i]) || bytes[i] == '*') {
            i += 1;
        }
        let seg: String = bytes[start..i].iter().collect();
        if !seg.is_empty() && seg != "self" && seg != "*" {
            path.push(seg);
        }
        if bytes[i..].starts_with(&[':', ':']) {
            i += 2;
            continue;
        }
        // `as name`, then the end of this branch.
        while i < bytes.len() && !matches!(bytes[i], ',' | '}' | ';') {
            i += 1;
        }
        out.push(path);
        return i;
    }
}

/// The paths (from the crate root) a module's source names.
fn referenced_paths(module: &str, src: &str) -> Vec<Vec<String>> {
    let src = strip_comments(src);
    let segments: Vec<String> = if module.is_empty() {
        vec![]
    } else {
        module.split("::").map(String::from).collect()
    };
    let parent = &segments[..segments.len().saturating_sub(1)];
    let inline = inline_modules(&src);
    // Unit tests may use anything.
    let tests: Vec<_> = inline
        .iter()
        .filter(|r| {
            let before = src[..r.start].trim_end();
            let decl = before.rfind("mod ").unwrap_or(0);
            src[..decl].trim_end().ends_with("#[cfg(test)]")
        })
        .cloned()
        .collect();
    let mut out = Vec::new();
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = src[from..].find(anchor) {
            let at = from + pos;
            from = at + anchor.len();
            if at > 0 && src[..at].ends_with(|c: char| is_ident(c) || c == ':') {
                continue;
            }
            if tests.iter().any(|r| r.contains(&at)) {
                continue;
            }
            let base: Vec<String> = if anchor == "crate::" {
                vec![]
            } else if inline.iter().any(|r| r.contains(&at)) {
                // `super` inside an inline `mod x { ... }` is the file's module.
                segments.clone()
            } else {
                parent.to_vec()
            };
            use_tree(&src[from..], &base, &mut out);
        }
    }
    out
}

/// The byte ranges of the inline `mod name { ... }` blocks of a source.
fn inline_modules(src: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = src[from..].find("mod ") {
        let at = from + pos;
        from = at + 4;
        if at > 0 && src[..at].ends_with(is_ident) {
            continue;
        }
        let name_end = src[from..]
            .find(|c: char| !is_ident(c))
            .map_or(src.len(), |n| from + n);
        let after = src[name_end..].trim_start();
        if !after.starts_with('{') {
            continue;
        }
        let open = src.len() - after.len();
        let mut depth = 0usize;
        for (i, c) in src[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(open..open + i);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Names the crate root re-exports, and the module each comes from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lib = strip_comments(lib);
    for stmt in lib.split(';') {
        let stmt = stmt.trim();
        let Some(tree) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let mut paths = Vec::new();
        use_tree(tree, &[], &mut paths);
        for p in paths {
            if let (Some(first), Some(last)) = (p.first(), p.last()) {
                out.insert(last.clone(), first.clone());
            }
        }
    }
    out
}

/// The layer entry a module belongs to: the longest entry that is it or contains it.
fn unit_of(module: &str) -> Option<(&'static str, usize)> {
    let mut best: Option<(&'static str, usize)> = None;
    for (rank, layer) in LAYERS.iter().enumerate() {
        for &entry in *layer {
            let inside = module == entry || module.starts_with(&format!("{entry}::"));
            if inside && best.is_none_or(|(b, _)| entry.len() > b.len()) {
                best = Some((entry, rank));
            }
        }
    }
    best
}

/// The module a path names: its longest prefix that is a module of the crate.
fn module_of(path: &[String], modules: &BTreeMap<String, String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

#[test]
fn every_module_has_a_layer() {
    let missing: Vec<String> = modules()
        .keys()
        .filter(|m| !m.is_empty() && unit_of(m).is_none())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in tests/layering.rs (and the README's architecture section): {missing:?}"
    );
}

#[test]
fn no_import_goes_up_a_layer() {
    let modules = modules();
    let reexports = root_reexports(&modules[""]);
    let mut violations = BTreeSet::new();
    let mut edges = 0;
    for (module, src) in &modules {
        if module.is_empty() {
            continue;
        }
        let Some((unit, rank)) = unit_of(module) else {
            continue;
        };
        for path in referenced_paths(module, src) {
            let target = match module_of(&path, &modules) {
                Some(m) if !m.is_empty() => m,
                _ => match path.first().and_then(|n| reexports.get(n)) {
                    Some(m) => m.clone(),
                    None => continue, // another crate's item re-exported at the root
                },
            };
            let Some((target_unit, target_rank)) = unit_of(&target) else {
                continue;
            };
            if target_unit == unit {
                continue;
            }
            edges += 1;
            if target_rank >= rank {
                violations.insert(format!(
                    "{module} (layer {rank}, `{unit}`) uses {} (layer {target_rank}, `{target_unit}`)",
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        edges > 50,
        "the reader found only {edges} imports: it is broken"
    );
    assert!(
        violations.is_empty(),
        "imports that go up or sideways (move the item down, or the module up):\n{}",
        violations.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_reader_sees_imports() {
    let mut paths = Vec::new();
    use_tree(
        "{a::{b, c::D}, e as f, g::*};",
        &["x".to_string()],
        &mut paths,
    );
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(joined, ["x::a::b", "x::a::c::D", "x::e", "x::g"]);
    let refs = referenced_paths(
        "families::t5",
        "// crate::pipeline\nuse super::nn::{self, Linear};\nlet x = crate::ops::softmax(r);\nmod avx { fn f() { super::g() } }",
    );
    let joined: Vec<String> = refs.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "ops::softmax",
            "families::nn",
            "families::nn::Linear",
            "families::t5::g"
        ]
    );
}

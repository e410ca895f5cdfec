//! Listing, selection, generation of skillset files and their validation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::json;
use skillset_codegen::names::{did_you_mean, file_stem};
use skillset_codegen::{
    generate as gen, suggest, Backend, BackendResults, BackendStatus, Family, Metadata,
    ModelTypeEntry, Task,
};

use super::{Failure, GeneratorArgs};

/// The results file in use.
pub fn results_path(args: &GeneratorArgs) -> PathBuf {
    args.results
        .clone()
        .unwrap_or_else(|| args.output_dir.join("backend_results.json"))
}

/// Read the results file; a missing file is an empty one.
pub fn read_results(path: &Path) -> Result<BackendResults, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => skillset_codegen::parse_results(&text, &path.display().to_string())
            .map_err(|e| Failure::failed(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BackendResults::new()),
        Err(e) => Err(Failure::failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Write the results file (its folder made first) through a temporary file and a
/// rename, so that an interrupted run never leaves half a results file behind.
pub fn write_results(path: &Path, results: &BackendResults) -> Result<(), Failure> {
    // Through a link to the file, not over it: the repository's backend_results.json
    // links to skillset-codegen's copy, the one the build embeds.
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path).map_err(|e| {
                Failure::failed(format!("cannot follow the link {}: {e}", path.display()))
            })?;
            resolved.as_path()
        }
        _ => path,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", parent.display())))?;
    }
    let text = serde_json::to_string_pretty(results).expect("results serialize") + "\n";
    let tmp = unique_temp(path);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Failure::failed(format!("cannot write {}: {e}", path.display()))
        })
}

fn unknown(kind: &str, name: &str, candidates: Vec<&str>, list_flag: &str) -> Failure {
    let near = suggest(name, candidates);
    Failure::usage(format!(
        "unknown {kind} `{name}`{}\n  (`skillset {list_flag}` lists them)",
        did_you_mean(&near)
    ))
}

pub fn parse_family(name: &str) -> Result<Family, Failure> {
    name.parse::<Family>()
        .map_err(|_| unknown("family", name, Family::names().collect(), "--list-families"))
}

pub fn parse_task(name: &str) -> Result<Task, Failure> {
    name.parse::<Task>()
        .map_err(|_| unknown("task", name, Task::names().collect(), "--list-tasks"))
}

pub fn find_model<'m>(meta: &'m Metadata, name: &str) -> Result<&'m ModelTypeEntry, Failure> {
    meta.model_type(name).ok_or_else(|| {
        unknown(
            "model type",
            name,
            meta.model_types
                .iter()
                .map(|e| e.model_type.as_str())
                .collect(),
            "--list-families",
        )
    })
}

/// The model types `--model`, `--family`, `--task` and `--all` select, in file order.
pub fn select<'m>(
    meta: &'m Metadata,
    args: &GeneratorArgs,
) -> Result<Vec<&'m ModelTypeEntry>, Failure> {
    let mut wanted = vec![false; meta.model_types.len()];
    let mut mark = |e: &ModelTypeEntry| {
        let i = meta
            .model_types
            .iter()
            .position(|x| x.model_type == e.model_type)
            .expect("entry from this metadata");
        wanted[i] = true;
    };
    // Report every unknown name at once.
    let mut problems = Vec::new();
    for m in &args.model {
        match find_model(meta, m) {
            Ok(e) => mark(e),
            Err(f) => problems.push(f.message),
        }
    }
    for f in &args.family {
        match parse_family(f) {
            Ok(f) => meta.family_members(f).for_each(&mut mark),
            Err(e) => problems.push(e.message),
        }
    }
    for t in &args.task {
        match parse_task(t) {
            Ok(t) => meta.with_task(t).for_each(&mut mark),
            Err(e) => problems.push(e.message),
        }
    }
    if args.all {
        meta.model_types.iter().for_each(&mut mark);
    }
    if !problems.is_empty() {
        return Err(Failure::usage(problems.join("\n")));
    }
    Ok(meta
        .model_types
        .iter()
        .zip(wanted)
        .filter(|(_, w)| *w)
        .map(|(e, _)| e)
        .collect())
}

/// `--list-families`.
pub fn list_families(meta: &Metadata, args: &GeneratorArgs) -> Result<(), Failure> {
    // Verified: a committed fixture passed on some backend, as recorded in the
    // backend_results.json this binary was built with, or as measured since into the
    // results file of the output directory.
    let results = read_results(&results_path(args))?;
    let verified = |e: &ModelTypeEntry| {
        let built_in = crate::lookup(&e.model_type).is_some_and(|i| {
            i.backends
                .iter()
                .any(|(_, s)| *s == BackendStatus::Verified)
        });
        built_in
            || results
                .statuses(e)
                .iter()
                .any(|(_, s)| *s == BackendStatus::Verified)
    };
    let verified_on = |e: &ModelTypeEntry, backend: Backend| {
        let built_in = crate::lookup(&e.model_type).is_some_and(|i| {
            i.backends
                .iter()
                .any(|(b, s)| *b == backend && *s == BackendStatus::Verified)
        });
        built_in || results.status(e, backend) == BackendStatus::Verified
    };
    let without = meta
        .model_types
        .iter()
        .filter(|e| e.family.is_none())
        .count();
    if args.json {
        let families: Vec<_> = meta
            .families
            .iter()
            .map(|f| {
                let members: Vec<&ModelTypeEntry> = meta.family_members(f.name).collect();
                let verified: Vec<&String> = members
                    .iter()
                    .filter(|e| verified(e))
                    .map(|e| &e.model_type)
                    .collect();
                json!({
                    "family": f.name,
                    "description": f.description,
                    "modality": f.modality,
                    "tasks": f.task_names().collect::<Vec<_>>(),
                    "model_types": members.iter().map(|e| &e.model_type).collect::<Vec<_>>(),
                    "verified": verified,
                    "model_type_count": members.len(),
                    "verified_count": verified.len(),
                    // Per backend, the model types a fixture passed on (the wasm
                    // results come from the headless-Chromium tests); WebGPU and WebNN
                    // list none until something runs on them.
                    "verified_by_backend": Backend::ALL
                        .iter()
                        .map(|&b| {
                            let names: Vec<&String> = members
                                .iter()
                                .filter(|e| verified_on(e, b))
                                .map(|e| &e.model_type)
                                .collect();
                            (b.as_str().to_string(), json!(names))
                        })
                        .collect::<serde_json::Map<_, _>>(),
                    "unsupported_backends": Backend::ALL
                        .iter()
                        .filter(|b| !b.implemented())
                        .map(|b| b.as_str())
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        let _ = without;
        outln!("{}", serde_json::to_string_pretty(&families).expect("json"));
        return Ok(());
    }
    outln!(
        "{} families run {} of the {} model types of transformers {} ({} have no family yet):\n",
        meta.families.len(),
        meta.model_types.len() - without,
        meta.model_types.len(),
        meta.transformers_version,
        without
    );
    for f in &meta.families {
        let members: Vec<&ModelTypeEntry> = meta.family_members(f.name).collect();
        let nverified = members.iter().filter(|e| verified(e)).count();
        let nweb = members
            .iter()
            .filter(|e| verified_on(e, Backend::Wasm))
            .count();
        outln!(
            "{:<10} {:>3} model types ({nverified} verified, {nweb} in the browser)  {}",
            f.name.as_str(),
            members.len(),
            f.description
        );
        outln!(
            "           tasks: {}",
            f.task_names()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        outln!(
            "           model types: {}\n",
            members
                .iter()
                .map(|e| e.model_type.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// `--list-tasks`.
pub fn list_tasks(meta: &Metadata, args: &GeneratorArgs) -> Result<(), Failure> {
    let rows: Vec<(Task, bool, usize, usize)> = meta
        .tasks
        .iter()
        .map(|t| {
            let served = meta.with_task(t.name).count();
            let runs = meta
                .model_types
                .iter()
                .filter(|e| e.skillset_tasks.contains(&t.name))
                .count();
            (t.name, t.pipeline, served, runs)
        })
        .collect();
    if args.json {
        let tasks: Vec<_> = rows
            .iter()
            .map(|(t, pipeline, served, runs)| {
                json!({"task": t, "pipeline": pipeline, "model_types": served, "skillset_model_types": runs})
            })
            .collect();
        let doc = json!({"transformers_version": meta.transformers_version, "tasks": tasks});
        outln!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    outln!(
        "{:<32} {:>11} {:>9}   (transformers {})",
        "task",
        "model types",
        "skillsets",
        meta.transformers_version
    );
    for (t, pipeline, served, runs) in rows {
        let note = if pipeline {
            ""
        } else {
            "  (no pipeline in transformers 5)"
        };
        outln!("{:<32} {served:>11} {runs:>9}{note}", t.as_str());
    }
    Ok(())
}

/// A small progress interface so that generation does not depend on a UI crate.
trait Progress: Sync {
    fn advance(&self, message: &str);
    fn finish(&self);
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn advance(&self, message: &str) {
        self.0.set_message(message.to_string());
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Created,
    Overwritten,
    Unchanged,
    Kept,
}

/// Generate one file per selected model type, in parallel.
pub fn generate(
    meta: &Metadata,
    selected: &[&ModelTypeEntry],
    args: &GeneratorArgs,
) -> Result<(), Failure> {
    let started = Instant::now();
    let dir = &args.output_dir;
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::failed(format!(
            "cannot create output directory {}: {e}",
            dir.display()
        ))
    })?;
    let results = read_results(&results_path(args))?;
    let workers = args
        .max_workers
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, 256)
        .min(selected.len().max(1));

    let bar = indicatif::ProgressBar::with_draw_target(
        Some(selected.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let progress: &dyn Progress = &Bar(bar);
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(usize, Result<Written, String>)>> =
        Mutex::new(Vec::with_capacity(selected.len()));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = selected.get(i) else { break };
                let r = write_one(meta, entry, &results, dir, args.force || args.run_tests);
                progress.advance(&entry.model_type);
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, r));
            });
        }
    });
    progress.finish();
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|(i, _)| *i);
    let index = write_index(dir, args.force)?;

    let mut counts = [0usize; 4];
    let mut errors = Vec::new();
    for (i, r) in &outcomes {
        let entry = selected[*i];
        let path = dir.join(format!("{}.rs", file_stem(&entry.model_type)));
        match r {
            Ok(w) => {
                counts[*w as usize] += 1;
                if !args.json && selected.len() <= 20 {
                    match w {
                        Written::Created => outln!("wrote {}", path.display()),
                        Written::Overwritten => outln!("overwrote {}", path.display()),
                        Written::Unchanged => outln!("{} is up to date", path.display()),
                        Written::Kept => outln!(
                            "kept existing {} (use --force to regenerate)",
                            path.display()
                        ),
                    }
                }
            }
            Err(e) => errors.push(format!("{}: {e}", entry.model_type)),
        }
    }
    if index.is_none() {
        // A hand-written mod.rs: kept, and counted with the kept files.
        counts[Written::Kept as usize] += 1;
        if !args.json {
            outln!(
                "kept {} (not written by skillset: no `{GENERATED}` header; --force replaces it)",
                dir.join("mod.rs").display()
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let doc = json!({
            "output_dir": dir,
            "model_types": selected.len(),
            "created": counts[0], "overwritten": counts[1], "unchanged": counts[2], "kept": counts[3],
            "errors": errors,
            "index": index,
            "workers": workers,
            "seconds": elapsed,
        });
        outln!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        outln!(
            "{} model types -> {}: {} created, {} overwritten, {} up to date, {} kept ({} workers, {:.2} s)",
            selected.len(),
            dir.display(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            workers,
            elapsed
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(errors.join("\n")))
    }
}

fn write_one(
    meta: &Metadata,
    entry: &ModelTypeEntry,
    results: &BackendResults,
    dir: &Path,
    force: bool,
) -> Result<Written, String> {
    let path = dir.join(format!("{}.rs", file_stem(&entry.model_type)));
    let exists = path.exists();
    if exists && !force {
        return Ok(Written::Kept);
    }
    let text = gen::model_type_file(meta, entry, results);
    if exists && std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(Written::Unchanged);
    }
    // Write to a temporary file of this run's own and rename, so that an interrupted
    // run never leaves a half-written skillset behind and concurrent runs into one
    // directory do not take each other's temporary files.
    write_via_temp(&path, &text)?;
    Ok(if exists {
        Written::Overwritten
    } else {
        Written::Created
    })
}

/// A temporary file name beside `path` that no other write (of this process or another)
/// uses: process id, a counter and the time.
fn unique_temp(path: &Path) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.{nanos}.tmp", std::process::id()))
}

/// Write `text` to `path` through a unique temporary file and a rename.
fn write_via_temp(path: &Path, text: &str) -> Result<(), String> {
    let tmp = unique_temp(path);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}

/// The first line of every file the generator writes.
const GENERATED: &str = "// @generated";

/// Whether the file at `path` is one the generator wrote (its `@generated` header).
fn is_generated(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; GENERATED.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == *GENERATED.as_bytes())
}

/// `mod.rs` declaring every generated file of the directory, so that the directory can
/// be dropped into a crate as a module. A `mod.rs` the generator did not write is kept
/// unless `force` (`Ok(None)`).
fn write_index(dir: &Path, force: bool) -> Result<Option<String>, Failure> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", dir.display())))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".rs")?.to_string();
            (stem != "mod" && !stem.starts_with('.')).then_some(stem)
        })
        .collect();
    stems.sort();
    let mut text = String::from(
        "// @generated by `skillset`: one module per generated skillset file. Do not edit.\n\n",
    );
    for s in &stems {
        text.push_str(&format!("pub mod {s};\npub use {s}::*;\n"));
    }
    let path = dir.join("mod.rs");
    if path.exists() && !force && !is_generated(&path) {
        return Ok(None);
    }
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        write_via_temp(&path, &text).map_err(Failure::failed)?;
    }
    Ok(Some(path.display().to_string()))
}

/// `--validate M`: check generated files' structure.
pub fn validate(meta: &Metadata, args: &GeneratorArgs) -> Result<ExitCode, Failure> {
    let mut failed = 0;
    let mut report = Vec::new();
    for name in &args.validate {
        let entry = find_model(meta, name)?;
        let path = args
            .output_dir
            .join(format!("{}.rs", file_stem(&entry.model_type)));
        let outcome = match std::fs::read_to_string(&path) {
            Err(e) => Err(format!(
                "cannot read {}: {e} (generate it with `skillset --model {name}`)",
                path.display()
            )),
            Ok(text) => {
                skillset_codegen::check::check_file(&text, entry).map_err(|e| e.to_string())
            }
        };
        match &outcome {
            Ok(()) => {
                if !args.json {
                    outln!("{}: valid skillset for `{name}`", path.display());
                }
            }
            Err(e) => {
                failed += 1;
                if !args.json {
                    errln!("error: {}: {e}", path.display());
                }
            }
        }
        report.push(json!({"model_type": name, "file": path, "valid": outcome.is_ok(), "problems": outcome.err()}));
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report).expect("json"));
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

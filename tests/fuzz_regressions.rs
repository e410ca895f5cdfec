//! The fuzz targets' committed corpora (`fuzz/regression/<target>/`: seeds from the
//! fixtures, the inputs fuzzing found that add coverage, and every crash it found, once
//! fixed) replayed through the targets' code (`fuzz/support/fuzzing.rs`, shared with
//! the fuzz targets): none may panic.

use std::path::Path;

#[path = "../fuzz/support/fuzzing.rs"]
mod fuzzing;

fn replay(target: &str, run: fn(&[u8]) -> usize) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regression")
        .join(target);
    let (mut n, mut ran) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        match std::panic::catch_unwind(|| run(&data)) {
            Ok(r) => ran += r,
            Err(_) => panic!("{name} panics in the {target} target"),
        }
        n += 1;
    }
    assert!(n >= 8, "only {n} inputs in {}", dir.display());
    ran
}

#[test]
fn checkpoint_corpus() {
    // The seeds (the fixtures' files with zero weights) load and run their tasks: the
    // target reaches the models, not only the parsers.
    let ran = replay("checkpoint", fuzzing::checkpoint);
    assert!(ran >= 12, "only {ran} tasks ran");
}

#[test]
fn media_corpus() {
    replay("media", |d| {
        fuzzing::media(d);
        1
    });
}

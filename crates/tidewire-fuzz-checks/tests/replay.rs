//! Replays every reproducer under `fuzz/regressions/<target>/` and every seed
//! under `fuzz/corpus/<target>/` through the target's check, so that a bug
//! once found by fuzzing stays fixed in the ordinary test suite.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use tidewire_fuzz_checks::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs each file through its target's check; returns the files that failed.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let mut replayed = 0;
    let mut failures = Vec::new();
    for (target, check) in TARGETS {
        for file in files(&fuzz_dir().join(kind).join(target)) {
            let bytes = std::fs::read(&file).expect("readable input");
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&bytes))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    (replayed, failures)
}

#[test]
fn every_regression_passes_its_check() {
    let (replayed, failures) = replay("regressions");
    assert!(replayed > 0, "no reproducers found under fuzz/regressions/");
    assert!(failures.is_empty(), "failing reproducers: {failures:#?}");
}

#[test]
fn every_seed_passes_its_check() {
    let (_, failures) = replay("corpus");
    assert!(failures.is_empty(), "failing seeds: {failures:#?}");
    for (target, _) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ has no seeds");
    }
}

#[test]
fn every_input_directory_names_a_target() {
    for kind in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("readable directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/{kind}/{name} is not a fuzz target; its inputs would never be replayed"
            );
        }
    }
}

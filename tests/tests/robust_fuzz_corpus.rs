//! Replays every stored fuzz input (`fuzz/corpus/<target>/*`, and crash
//! reproducers kept in `fuzz/regressions/<target>/*`) through the function
//! its cargo-fuzz target calls, on stable Rust and without fuzzing. A panic
//! (with panic=abort in release, an abort) fails the test. Needs no root.

use std::fs;
use std::path::Path;

/// The entry point of a fuzz target.
type Target = fn(&[u8]);

/// Every fuzz target: its corpus directory name and its entry point. A
/// new target adds a line here (see libcontainer/src/fuzzing.rs).
const TARGETS: &[(&str, Target)] = &[
    ("config", libcontainer::fuzzing::config),
    ("mount_options", libcontainer::fuzzing::mount_options),
    ("seccomp", libcontainer::fuzzing::seccomp),
    ("state_file", libcontainer::fuzzing::state_file),
];

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fuzz_corpus_replays_without_panics() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, run) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(target));
        assert!(
            corpus.len() >= 5,
            "fuzz/corpus/{target} holds only {} inputs",
            corpus.len()
        );
        let mut n = 0;
        for p in corpus
            .iter()
            .chain(&inputs(&fuzz.join("regressions").join(target)))
        {
            let data = fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            eprintln!("{target}: {}", p.display());
            run(&data);
            n += 1;
        }
        println!("{target}: replayed {n} inputs");
    }
}

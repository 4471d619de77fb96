//! The bad-input corpus: every `tests/data/bad-configs/NN-name.json` is a
//! malformed or hostile config.json, and `NN-name.expect` holds a substring
//! its error must contain (the field it names). `create` and `run` of each
//! must fail with exactly one line, never panic, and leave nothing behind.
//! Two inputs too big to keep as files are generated here: a 10 MB config
//! and deeply nested JSON.

use skiff_conformance::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bad-configs")
}

/// `(name, config text, expected substring)` of every corpus entry, sorted.
fn corpus() -> Vec<(String, Vec<u8>, String)> {
    let mut entries: Vec<_> = fs::read_dir(corpus_dir())
        .expect("read tests/data/bad-configs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let expect = fs::read_to_string(p.with_extension("expect"))
                .unwrap_or_else(|e| panic!("{name}: missing .expect file: {e}"));
            let expect = expect.trim().to_owned();
            assert!(!expect.is_empty(), "{name}: empty .expect file");
            (name, fs::read(&p).unwrap(), expect)
        })
        .collect()
}

/// Why `out` is not a clean one-line failure mentioning `needle` (None if it is).
fn problem(out: &Output, needle: &str) -> Option<String> {
    let err = stderr(out);
    if err.contains("panicked") || exit_code(out) == 128 + libc::SIGABRT {
        return Some(format!("PANIC: {}", describe(out)));
    }
    if out.status.success() {
        return Some(format!("succeeded: {}", describe(out)));
    }
    let lines: Vec<&str> = err.lines().collect();
    if lines.len() != 1 || !err.ends_with('\n') {
        return Some(format!("not exactly one error line: {}", describe(out)));
    }
    if !lines[0].to_lowercase().contains(&needle.to_lowercase()) {
        return Some(format!("error does not mention {needle:?}: {}", lines[0]));
    }
    None
}

/// Runs `create` and `run` of `config` in `bundle`; returns the problems found.
fn check_config(
    rt: &Runtime,
    bundle: &Bundle,
    name: &str,
    config: &[u8],
    needle: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let b = bundle.path().to_string_lossy().into_owned();
    for cmd in ["create", "run"] {
        fs::write(bundle.config_path(), config).unwrap();
        let id = unique_id("badcfg");
        rt.track(&id);
        let out = rt.skiff(&[cmd, "--bundle", &b, &id]);
        if let Some(p) = problem(&out, needle) {
            problems.push(format!("{name} ({cmd}): {p}"));
            // A config taken by mistake leaves a container: remove it, so
            // that the next entries' leftover checks (same bundle, same
            // marker) do not each wait for it.
            if out.status.success() {
                let _ = rt.skiff(&["delete", "--force", &id]);
            }
        }
        let mut left = Vec::new();
        if !poll_until(std::time::Duration::from_secs(5), || {
            left = leftovers(rt, &id, bundle);
            left.is_empty()
        }) {
            problems.push(format!("{name} ({cmd}): left behind: {}", left.join("; ")));
        }
    }
    problems
}

#[test]
fn bad_config_corpus() {
    if !preflight("bad_config_corpus") {
        return;
    }
    let entries = corpus();
    assert!(entries.len() >= 60, "only {} corpus entries", entries.len());
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["true"]);
    let mut problems = Vec::new();
    for (name, config, expect) in &entries {
        problems.extend(check_config(&rt, &bundle, name, config, expect));
    }
    assert!(
        fs::read_dir(rt.root()).map(|d| d.count()).unwrap_or(0) == 0,
        "state left under {}",
        rt.root().display()
    );
    assert!(
        problems.is_empty(),
        "{} of {} bad configs misbehaved:\n{}",
        problems.len(),
        entries.len(),
        problems.join("\n")
    );
}

#[test]
fn ten_megabyte_config() {
    if !preflight("ten_megabyte_config") {
        return;
    }
    let mut cfg = default_config();
    // 10 MB of valid environment, then one entry that is not KEY=VALUE.
    let mut env: Vec<String> = (0..170_000)
        .map(|i| format!("K{i:07}={:0>52}", i))
        .collect();
    env.push("NOT_A_PAIR".into());
    let bad = env.len() - 1;
    cfg["process"]["env"] = serde_json::json!(env);
    cfg["process"]["args"] = serde_json::json!(["true"]);
    let text = serde_json::to_vec(&cfg).unwrap();
    assert!(
        text.len() >= 10 << 20,
        "config is only {} bytes",
        text.len()
    );
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let needle = format!("process.env[{bad}]");
    let problems = check_config(&rt, &bundle, "10MB", &text, &needle);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn deeply_nested_json() {
    if !preflight("deeply_nested_json") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let depth = 100_000;
    // Ignored (unknown) field: must not overflow the stack; then the
    // missing root is reported. A known field: its type error is.
    let unknown = format!(
        "{{\"ociVersion\":\"1.2.0\",\"deep\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let known = format!(
        "{{\"ociVersion\":\"1.2.0\",\"annotations\":{{\"x\":{}1{}}}}}",
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    for (name, text, needle) in [
        ("unknown", unknown, "root"),
        ("known", known, "annotations.x"),
    ] {
        let problems = check_config(&rt, &bundle, name, text.as_bytes(), needle);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// Annotations of 120 KB (the state JSON the hooks get carries them to
/// init, once) run; 300 KB of them fail at once with one line naming
/// `annotations` and leave nothing behind. Before, a state over 64 KiB
/// made `run` wait for ever: the send failed and skiff waited for init's
/// reply while init waited for the message.
#[test]
fn large_annotations() {
    if !preflight("large_annotations") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let b = bundle.path().to_string_lossy().into_owned();
    let with = |each: usize| {
        let mut cfg = default_config();
        cfg["process"]["args"] = serde_json::json!(["true"]);
        cfg["annotations"] = serde_json::json!({"a": "a".repeat(each), "b": "b".repeat(each)});
        serde_json::to_vec(&cfg).unwrap()
    };
    fs::write(bundle.config_path(), with(60_000)).unwrap();
    let id = unique_id("bigann");
    rt.track(&id);
    let out = rt.skiff(&["run", "--bundle", &b, &id]);
    assert!(
        out.status.success(),
        "120 KB of annotations: {}",
        describe(&out)
    );
    let problems = check_config(&rt, &bundle, "300KB", &with(150_000), "annotations");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

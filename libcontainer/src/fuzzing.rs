//! Entry points of the fuzz targets (`fuzz/`, run with `make fuzz`). The
//! conformance suite replays the stored corpus through these same
//! functions on stable Rust, so CI checks every input ever found.
//!
//! Each function takes arbitrary bytes, must never panic, and asserts the
//! invariants of what it parses. To add a target: a function here, a
//! `fuzz/fuzz_targets/<name>.rs` calling it, a `[[bin]]` in
//! `fuzz/Cargo.toml`, seeds in `fuzz/corpus/<name>/`, and a line in the
//! replay test's table (`tests/tests/robust_fuzz_corpus.rs`).

use std::path::Path;

use crate::config::{self, Bundle, MountOptions};
use crate::container::{state, state_value, Status};

/// config.json parsing and validation: any input either fails with an
/// error naming something, or gives a spec that survives a JSON round trip.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-bundle/config.json");
    let spec = match config::parse(text, path) {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let again = serde_json::to_string(&spec).map(|t| config::parse(&t, path));
    assert!(
        matches!(again, Ok(Ok(_))),
        "a parsed spec does not parse again"
    );
    let bundle = Bundle {
        path: "/nonexistent-bundle".into(),
        rootfs: "/nonexistent-bundle/rootfs".into(),
        spec,
    };
    if let Err(e) = bundle.validate() {
        assert!(!e.to_string().is_empty());
    }
}

/// Mount option parsing: the input is a comma-separated options list.
pub fn mount_options(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let opts: Vec<String> = text.split(',').map(str::to_owned).collect();
    let o = MountOptions::parse(&opts);
    assert_eq!(
        o.rec_set & o.rec_clr,
        0,
        "an attribute both set and cleared"
    );
    assert!(o.propagation.len() <= opts.len());
    assert!(o.data.split(',').count() <= opts.len());
    // Bind attributes come only from the flags.
    let _ = o.attrs();
    assert!(o.recursive_bind <= o.bind, "rbind without bind");
}

/// State file parsing: any input is an error or a state that prints as
/// the runtime-spec state JSON.
pub fn state_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-root/x/state.json");
    match state::parse(text, "x", path) {
        Ok(s) => {
            for status in [Status::Created, Status::Stopped] {
                let v = state_value(&s, status);
                assert_eq!(v["status"], status.as_str());
            }
            let _ = s.cgroup();
            let text = serde_json::to_string(&s).expect("a parsed state serialises");
            assert!(state::parse(&text, "x", path).is_ok(), "state round trip");
        }
        Err(e) => assert!(e.to_string().contains("state")),
    }
}

/// The seccomp profile translation: any `linux.seccomp` object either
/// compiles into a filter or fails with an error naming a field.
pub fn seccomp(data: &[u8]) {
    let Ok(profile) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    if let Err(e) = crate::security::seccomp::compile(&profile) {
        let msg = e.to_string();
        assert!(
            msg.starts_with("linux.seccomp"),
            "error does not name the field: {msg}"
        );
    }
}

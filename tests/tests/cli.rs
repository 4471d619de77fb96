//! The command line itself: global flags, list/ps output, spec, features,
//! errors for unknown and malformed ids.

use serde_json::Value;
use skiff_conformance::*;
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn version_prints_version_commit_and_spec() {
    if !preflight("version_prints_version_commit_and_spec") {
        return;
    }
    let out = output_with_timeout(Command::new(skiff_bin()).arg("--version"), DEFAULT_TIMEOUT);
    assert_success(&out, "--version");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("skiff version ")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.starts_with("commit:")), "{text}");
    assert!(lines.iter().any(|l| l.trim() == "spec: 1.2.0"), "{text}");
}

#[test]
fn unknown_container_errors_are_one_line() {
    if !preflight("unknown_container_errors_are_one_line") {
        return;
    }
    let rt = Runtime::new();
    let id = unique_id("nosuch");
    for args in [
        vec!["state", id.as_str()],
        vec!["start", id.as_str()],
        vec!["kill", id.as_str(), "KILL"],
        vec!["delete", id.as_str()],
        vec!["ps", id.as_str()],
        vec!["exec", id.as_str(), "true"],
    ] {
        let out = rt.skiff(&args);
        // runc's exec exits 255 on any failure of its own ("exec failed: ...").
        let want = if args[0] == "exec" { 255 } else { 1 };
        assert_eq!(exit_code(&out), want, "{args:?}: {}", describe(&out));
        let line = assert_error_line(&out, "does not exist");
        assert!(
            line.starts_with("time=\"") && line.contains("level=error msg=\""),
            "{args:?}: error is not in logrus text format: {line}"
        );
    }
    assert!(
        fs::read_dir(rt.root()).map(|d| d.count()).unwrap_or(0) == 0,
        "commands on an unknown id created something under --root"
    );
}

#[test]
fn malformed_ids_are_rejected() {
    if !preflight("malformed_ids_are_rejected") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::with_args(&["true"]);
    let escape = format!("escape-{}", bundle.marker());
    let dotdot = format!("../{escape}");
    let slash = format!("a/{escape}");
    for id in [dotdot.as_str(), slash.as_str(), "..", "."] {
        let out = rt.create(&bundle, id, &[]);
        assert_eq!(exit_code(&out), 1, "create {id:?}: {}", describe(&out));
        assert_error_line(&out, "");
        for cmd in ["state", "delete", "start"] {
            let out = rt.skiff(&[cmd, id]);
            assert_eq!(exit_code(&out), 1, "{cmd} {id:?}: {}", describe(&out));
            assert_error_line(&out, "");
        }
    }
    let parent = rt.root().parent().unwrap().join(&escape);
    assert!(!parent.exists(), "{} was created", parent.display());
    assert!(!rt.root().join("a").exists(), "a state dir a/ was created");
    assert_no_leftovers(&rt, &escape, &bundle);
}

#[test]
fn list_formats() {
    if !preflight("list_formats") {
        return;
    }
    let rt = Runtime::new();
    let empty = rt.skiff(&["list", "-q"]);
    assert_success(&empty, "list -q on an empty root");
    assert_eq!(stdout(&empty).trim(), "");

    let b1 = Bundle::with_args(&["sleep", "1000"]);
    let b2 = Bundle::with_args(&["sleep", "1000"]);
    let id1 = unique_id("list1");
    let id2 = unique_id("list2");
    let pid1 = rt.create_ok(&b1, &id1);
    let pid2 = rt.start_container(&b2, &id2);

    let out = rt.skiff(&["list", "-q"]);
    assert_success(&out, "list -q");
    let mut ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    ids.sort();
    let mut want = vec![id1.clone(), id2.clone()];
    want.sort();
    assert_eq!(ids, want);

    let out = rt.skiff(&["list"]);
    assert_success(&out, "list");
    let text = stdout(&out);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.contains(&col), "list header lacks {col}: {text}");
    }
    for (id, pid, status) in [(&id1, pid1, "created"), (&id2, pid2, "running")] {
        let row = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no row for {id}: {text}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(cols.contains(&pid.to_string().as_str()), "{row}");
        assert!(cols.contains(&status), "{row}");
    }

    let out = rt.skiff(&["list", "--format", "json"]);
    assert_success(&out, "list --format json");
    let v: Value = serde_json::from_slice(&out.stdout).expect("list json");
    let arr = v.as_array().expect("list json is an array");
    assert_eq!(arr.len(), 2, "{v}");
    for (id, pid, status) in [(&id1, pid1, "created"), (&id2, pid2, "running")] {
        let c = arr
            .iter()
            .find(|c| c["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no {id} in {v}"));
        assert_eq!(c["pid"].as_i64(), Some(pid), "{c}");
        assert_eq!(c["status"], status, "{c}");
        assert!(c["bundle"].is_string() && c["created"].is_string(), "{c}");
        assert!(c["owner"].is_string(), "{c}");
    }
}

#[test]
fn ps_formats() {
    if !preflight("ps_formats") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::sh("sleep 1000 & exec sleep 999");
    let id = unique_id("ps");
    let pid = rt.start_container(&bundle, &id);

    let out = rt.skiff(&["ps", "--format", "json", &id]);
    assert_success(&out, "ps --format json");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ps json");
    let pids: Vec<i64> = v
        .as_array()
        .expect("ps json is an array")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(pids.contains(&pid), "ps json lacks init {pid}: {v}");
    assert!(pids.len() >= 2, "ps json lacks the background sleep: {v}");
    assert!(!pids.contains(&(std::process::id() as i64)));

    let out = rt.skiff(&["ps", &id]);
    assert_success(&out, "ps");
    let text = stdout(&out);
    let header = text.lines().next().unwrap_or("");
    assert!(
        header.split_whitespace().any(|c| c == "PID"),
        "ps header: {text}"
    );
    let pid_s = pid.to_string();
    assert!(
        text.lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|c| c == pid_s)),
        "ps table lacks {pid}: {text}"
    );
}

#[test]
fn global_log_json_format() {
    if !preflight("global_log_json_format") {
        return;
    }
    let rt = Runtime::new();
    let log_dir = TempDir::new("skiff-log");
    let log = log_dir.path().join("skiff.log");
    let id = unique_id("nolog");
    let log_s = log.to_string_lossy().into_owned();
    let out = rt.skiff(&["--log", &log_s, "--log-format", "json", "state", &id]);
    assert_eq!(exit_code(&out), 1, "{}", describe(&out));
    let text = fs::read_to_string(&log).expect("--log file was not written");
    let entries: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let err = entries
        .iter()
        .find(|e| e["level"] == "error")
        .unwrap_or_else(|| panic!("no error entry in {text}"));
    assert!(
        err["msg"].as_str().unwrap_or("").contains("does not exist"),
        "msg lacks the id: {err}"
    );
    assert!(err["time"].is_string(), "no time: {err}");
}

#[test]
fn global_log_text_and_debug() {
    if !preflight("global_log_text_and_debug") {
        return;
    }
    let rt = Runtime::new();
    let log_dir = TempDir::new("skiff-log");
    let log = log_dir.path().join("skiff.log");
    let log_s = log.to_string_lossy().into_owned();
    let bundle = Bundle::sh("echo hi-from-run");
    let id = unique_id("debug");
    let mut cmd = rt.command(&["--debug", "--log", &log_s, "--log-format", "text", "run"]);
    cmd.arg("--bundle").arg(bundle.path()).arg(&id);
    bundle.save();
    rt.track(&id);
    let out = rt.output(&mut cmd);
    assert_success(&out, "--debug run");
    assert!(stdout(&out).contains("hi-from-run"), "{}", describe(&out));
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.contains("level=debug")),
        "--debug wrote no debug lines to --log:\n{text}"
    );
    assert!(
        text.lines().all(|l| l.starts_with("time=\"")),
        "text log lines must start with time=\"...\":\n{text}"
    );
}

#[test]
fn spec_writes_default_config() {
    if !preflight("spec_writes_default_config") {
        return;
    }
    let rt = Runtime::new();
    let dir = TempDir::new("skiff-spec");
    let d = dir.path().to_string_lossy().into_owned();
    assert_success(&rt.skiff(&["spec", "--bundle", &d]), "spec");
    let cfg: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap())
            .expect("spec wrote invalid JSON");
    assert!(
        cfg["ociVersion"].as_str().unwrap_or("").starts_with("1.2"),
        "{cfg}"
    );
    assert_eq!(cfg["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(cfg["root"]["path"], "rootfs");
    let ns: Vec<&str> = cfg["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for t in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&t), "spec namespaces lack {t}: {ns:?}");
    }
    assert!(!ns.contains(&"user"));
    // A second spec must not overwrite it.
    let out = rt.skiff(&["spec", "--bundle", &d]);
    assert_error_line(&out, "config.json");

    // spec in the current directory, rootless flavour.
    let dir2 = TempDir::new("skiff-spec");
    let mut cmd = rt.command(&["spec", "--rootless"]);
    cmd.current_dir(dir2.path());
    assert_success(&rt.output(&mut cmd), "spec --rootless");
    let cfg: Value =
        serde_json::from_str(&fs::read_to_string(dir2.path().join("config.json")).unwrap())
            .expect("spec --rootless wrote invalid JSON");
    let has_user = cfg["linux"]["namespaces"]
        .as_array()
        .map(|a| a.iter().any(|n| n["type"] == "user"))
        .unwrap_or(false);
    assert!(has_user, "rootless spec has no user namespace: {cfg}");
    assert!(cfg["linux"]["uidMappings"].is_array(), "{cfg}");
    assert!(cfg["linux"]["gidMappings"].is_array(), "{cfg}");
}

#[test]
fn spec_then_run_works() {
    if !preflight("spec_then_run_works") {
        return;
    }
    let rt = Runtime::new();
    let bundle = Bundle::new();
    let d = bundle.path().to_string_lossy().into_owned();
    let _ = fs::remove_file(bundle.config_path());
    assert_success(&rt.skiff(&["spec", "--bundle", &d]), "spec");
    // Make the generated config non-interactive and print something.
    let mut cfg: Value =
        serde_json::from_str(&fs::read_to_string(bundle.config_path()).unwrap()).unwrap();
    cfg["process"]["terminal"] = Value::Bool(false);
    cfg["process"]["args"] = serde_json::json!(["sh", "-c", "echo spec-ok"]);
    if let Some(l) = cfg["linux"].as_object_mut() {
        l.remove("resources");
    }
    fs::write(bundle.config_path(), cfg.to_string()).unwrap();
    let id = unique_id("specrun");
    rt.track(&id);
    let out = rt.skiff(&["run", "--bundle", &d, &id]);
    assert_success(&out, "run of a spec-generated bundle");
    assert!(stdout(&out).contains("spec-ok"), "{}", describe(&out));
}

#[test]
fn features_json() {
    if !preflight("features_json") {
        return;
    }
    let rt = Runtime::new();
    let out = rt.skiff(&["features"]);
    assert_success(&out, "features");
    let v: Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    assert!(v["ociVersionMin"].is_string(), "{v}");
    assert!(
        v["ociVersionMax"].as_str().unwrap_or("").starts_with("1.2"),
        "{v}"
    );
    let hooks: Vec<&str> = v["hooks"]
        .as_array()
        .expect("hooks")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.contains(&h), "features hooks lack {h}: {v}");
    }
    let opts: Vec<&str> = v["mountOptions"]
        .as_array()
        .expect("mountOptions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for o in ["ro", "rbind", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&o), "mountOptions lacks {o}");
    }
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for n in ["pid", "network", "ipc", "uts", "mount", "cgroup"] {
        assert!(ns.contains(&n), "features namespaces lack {n}");
    }
    let caps: Vec<&str> = v["linux"]["capabilities"]
        .as_array()
        .expect("linux.capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(caps.contains(&"CAP_SYS_ADMIN") && caps.contains(&"CAP_CHOWN"));
}

#[test]
fn default_root_is_run_skiff() {
    if !preflight("default_root_is_run_skiff") {
        return;
    }
    let bundle = Bundle::with_args(&["sleep", "1000"]);
    bundle.save();
    let id = unique_id("defroot");
    let run =
        |args: &[&str]| output_with_timeout(Command::new(skiff_bin()).args(args), DEFAULT_TIMEOUT);
    let b = bundle.path().to_string_lossy().into_owned();
    let out = run(&["create", "--bundle", &b, &id]);
    let state_file = Path::new("/run/skiff").join(&id).join("state.json");
    let existed = state_file.is_file();
    let state = run(&["state", &id]);
    let _ = run(&["delete", "--force", &id]);
    assert_success(&out, "create without --root");
    assert!(existed, "{} was not created", state_file.display());
    assert_success(&state, "state without --root");
    assert!(!Path::new("/run/skiff").join(&id).exists());
}

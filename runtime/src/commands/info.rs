//! `list`, `ps`, `features` and `check`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use libcontainer::container::{self, StateRoot};

use super::OutFormat;

/// `skiff list`.
pub fn list(root: &Path, quiet: bool, format: OutFormat) -> Result<()> {
    let items = if root.exists() {
        container::list(&StateRoot::open(root)?)?
    } else {
        Vec::new()
    };
    if quiet {
        for (s, _) in &items {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        OutFormat::Json => {
            let v: Vec<String> = items
                .iter()
                .map(|(s, st)| runc_state_json(&container::state_value(s, *st), false))
                .collect();
            println!("[{}]", v.join(","));
        }
        OutFormat::Table => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (s, st) in &items {
                let pid = if *st == container::Status::Stopped {
                    0
                } else {
                    s.pid
                };
                rows.push(vec![
                    s.id.clone(),
                    pid.to_string(),
                    st.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print_table(&rows);
        }
    }
    Ok(())
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

/// `skiff ps`: JSON pids, or ps(1) output filtered to the container's pids (as runc does).
pub fn ps(root: &Path, id: &str, format: OutFormat, ps_args: &[String]) -> Result<()> {
    let pids = container::pids(&StateRoot::open(root)?, id)?;
    if format == OutFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            println!("{l}");
        }
    }
    Ok(())
}

/// `skiff features`.
pub fn features() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&libcontainer::features::features())?
    );
    Ok(())
}

/// The keys of runc's container state, in the order runc prints them
/// (`annotations` is left out when empty, as runc's omitempty).
const RUNC_STATE_ORDER: [&str; 9] = [
    "ociVersion",
    "id",
    "pid",
    "status",
    "bundle",
    "rootfs",
    "created",
    "annotations",
    "owner",
];

/// A container's state as runc prints it: its keys in runc's order,
/// compact (`list --format json`) or indented by two spaces (`state`).
pub fn runc_state_json(v: &serde_json::Value, pretty: bool) -> String {
    let fields: Vec<String> = RUNC_STATE_ORDER
        .iter()
        .filter_map(|k| v.get(*k).map(|x| (*k, x)))
        .filter(|(k, x)| *k != "annotations" || x.as_object().is_some_and(|o| !o.is_empty()))
        .map(|(k, x)| {
            let key = serde_json::Value::from(k);
            if pretty {
                let val = serde_json::to_string_pretty(x).unwrap_or_default();
                format!("  {key}: {}", val.replace('\n', "\n  "))
            } else {
                format!("{key}:{x}")
            }
        })
        .collect();
    if pretty {
        format!("{{\n{}\n}}", fields.join(",\n"))
    } else {
        format!("{{{}}}", fields.join(","))
    }
}

/// `skiff check`: the host report as a table or JSON; exit 1 when a
/// default container cannot run here.
pub fn check(format: OutFormat) -> Result<u8> {
    let rootless = !nix::unistd::geteuid().is_root();
    let checks = libcontainer::host_report::run(rootless);
    let ok = libcontainer::host_report::can_run(&checks);
    let mut out = std::io::stdout().lock();
    match format {
        OutFormat::Json => {
            let doc = serde_json::json!({ "ok": ok, "checks": checks });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        OutFormat::Table => {
            let w = checks
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(5)
                .max(5);
            writeln!(out, "{:w$}  {:8}DETAIL", "CHECK", "STATUS")?;
            for c in &checks {
                writeln!(out, "{:w$}  {:8}{}", c.name, c.status.to_string(), c.detail)?;
                if let Some(fix) = &c.fix {
                    writeln!(out, "{:w$}  {:8}fix: {fix}", "", "")?;
                }
            }
            let verdict = if ok {
                "this host can run containers"
            } else {
                "this host cannot run a default container: see FAIL above"
            };
            writeln!(out, "\n{verdict}")?;
        }
    }
    Ok(if ok { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_in_runc_order() {
        let v = serde_json::json!({"owner": "", "status": "running", "id": "a", "pid": 7,
            "ociVersion": "1.2.0", "bundle": "/b", "rootfs": "/b/r", "created": "t",
            "annotations": {}});
        let compact = runc_state_json(&v, false);
        assert_eq!(
            compact,
            r#"{"ociVersion":"1.2.0","id":"a","pid":7,"status":"running","bundle":"/b","rootfs":"/b/r","created":"t","owner":""}"#
        );
        let pretty = runc_state_json(&v, true);
        assert!(
            pretty.starts_with("{\n  \"ociVersion\": \"1.2.0\",\n  \"id\": \"a\","),
            "{pretty}"
        );
        let back: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(back["pid"], 7);
        let mut with = v.clone();
        with["annotations"] = serde_json::json!({"k": "v"});
        let back: serde_json::Value = serde_json::from_str(&runc_state_json(&with, true)).unwrap();
        assert_eq!(back["annotations"]["k"], "v");
    }
}

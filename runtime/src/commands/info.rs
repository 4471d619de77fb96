//! `list`, `ps` and `features`.

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
            let v: Vec<serde_json::Value> = items
                .iter()
                .map(|(s, st)| container::state_value(s, *st))
                .collect();
            println!("{}", serde_json::to_string(&v)?);
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

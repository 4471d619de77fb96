//! `start`, `state`, `kill` and `delete`.

use std::path::Path;

use anyhow::Result;
use libcontainer::container::{self, StateRoot};

/// `skiff start`.
pub fn start(root: &Path, id: &str) -> Result<()> {
    Ok(container::start(&StateRoot::open(root)?, id)?)
}

/// `skiff state`: the state JSON, indented as runc prints it.
pub fn state(root: &Path, id: &str) -> Result<()> {
    let (s, status) = container::load(&StateRoot::open(root)?, id)?;
    println!(
        "{}",
        super::info::runc_state_json(&container::state_value(&s, status), true)
    );
    Ok(())
}

/// `skiff kill`.
pub fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = libcontainer::signal::parse(signal)?;
    Ok(container::kill(&StateRoot::open(root)?, id, sig, all)?)
}

/// `skiff delete`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    Ok(container::delete(&StateRoot::open(root)?, id, force)?)
}

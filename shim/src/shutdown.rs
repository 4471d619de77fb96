//! The shim's exit signal: set by Shutdown (the last task gone), awaited by
//! the main thread before it exits.

use std::sync::{Condvar, Mutex};

/// Set when the shim should exit.
#[derive(Debug, Default)]
pub struct Shutdown {
    done: Mutex<bool>,
    cond: Condvar,
}

impl Shutdown {
    /// Ask the shim to exit.
    pub fn signal(&self) {
        if let Ok(mut d) = self.done.lock() {
            *d = true;
            self.cond.notify_all();
        }
    }

    /// Block until [`Shutdown::signal`].
    pub fn wait(&self) {
        let Ok(mut d) = self.done.lock() else { return };
        while !*d {
            match self.cond.wait(d) {
                Ok(g) => d = g,
                Err(_) => return,
            }
        }
    }
}

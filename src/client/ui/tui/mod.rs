//! The full-screen client (placeholder while it is written).

use crossbeam_channel::{Receiver, Sender};

use crate::client::session::{Input, Out};
use crate::client::Config;

/// The full-screen interface.
pub struct Tui;

impl Tui {
    /// Takes the terminal.
    ///
    /// # Errors
    /// The terminal can't be set up.
    pub fn open(_config: &Config) -> anyhow::Result<Tui> {
        anyhow::bail!("not yet")
    }

    /// Runs until the session ends.
    pub fn run(&mut self, _inbox: &Sender<Input>, _outs: &Receiver<Out>) -> i32 {
        0
    }
}

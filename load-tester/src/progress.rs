//! The progress line on standard error: a spinner with what is going on, and lines
//! printed above it as phases end.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress line on standard error (hidden when asked or when not a terminal).
pub(crate) struct Progress(ProgressBar);

impl Progress {
    /// A spinner with a message, or nothing if `hidden`.
    pub(crate) fn new(hidden: bool) -> Self {
        let pb = if hidden {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb
        };
        Progress(pb)
    }

    /// Shows `msg`.
    pub(crate) fn set(&self, msg: String) {
        self.0.set_message(msg);
        self.0.tick();
    }

    /// Prints `line` above the progress line.
    pub(crate) fn println(&self, line: String) {
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.println(line);
        }
    }

    /// Removes the line.
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

//! Progress on stderr: a line for every change, with the time since certwait started.
//! On a terminal each certificate also gets a live spinner line with its current state
//! ([`kpipe_core::progress`], as `kapply --wait` shows its objects).

use crate::target::CertKey;
use std::time::{Duration, Instant};

pub struct Progress {
    quiet: bool,
    shown: kpipe_core::progress::Progress,
}

impl Progress {
    /// Spinners only when stderr is a terminal; `quiet` silences progress (not errors).
    pub fn new(quiet: bool, started: Instant) -> Progress {
        Progress {
            quiet,
            shown: kpipe_core::progress::Progress::new("certwait", started, !quiet),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.shown.elapsed()
    }

    /// A change in a certificate's state: a lasting line, and the spinner's new text.
    pub fn change(&mut self, key: &CertKey, state: &str) {
        if self.quiet {
            return;
        }
        let text = format!("{key}: {state}");
        self.shown.spin(&key.to_string(), &text);
        self.shown.line(&text);
    }

    /// Whether progress is a live display on a terminal.
    pub fn is_live(&self) -> bool {
        self.shown.is_live()
    }

    /// The same state again, said anew: on a terminal the spinner's text (no lasting
    /// line), otherwise a line.
    pub fn remind(&mut self, key: &CertKey, state: &str) {
        if self.quiet {
            return;
        }
        let text = format!("{key}: {state}");
        if self.shown.spinning(&key.to_string()) {
            self.shown.spin(&key.to_string(), &text);
        } else {
            self.shown.line(&text);
        }
    }

    /// A certificate is done (ready): its spinner stops with a final message.
    pub fn finish(&mut self, key: &CertKey, state: &str) {
        self.change(key, state);
        self.shown.stop(&key.to_string());
    }

    /// A line that is not about one certificate (retries, re-lists).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            self.shown.line(text);
        }
    }

    /// Diagnostics and warnings: shown even with `-q`.
    pub fn always(&self, text: &str) {
        self.shown.print(text.trim_end_matches('\n'));
    }

    /// Stops every spinner so that what follows is printed on a clean terminal.
    pub fn clear(&mut self) {
        self.shown.clear();
    }
}

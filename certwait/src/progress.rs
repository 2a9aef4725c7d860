//! Progress on stderr: a line for every change, with the time since certwait started.
//! On a terminal each certificate also gets a live spinner line with its current state.

use crate::target::CertKey;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpipe_core::redact::for_terminal;
use kpipe_core::time::format_elapsed;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    quiet: bool,
    started: Instant,
    live: Option<Live>,
}

struct Live {
    bars: MultiProgress,
    spinners: BTreeMap<CertKey, ProgressBar>,
}

impl Progress {
    /// Spinners only when stderr is a terminal; `quiet` silences progress (not errors).
    pub fn new(quiet: bool, started: Instant) -> Progress {
        let live = (!quiet && std::io::stderr().is_terminal()).then(|| Live {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            spinners: BTreeMap::new(),
        });
        Progress {
            quiet,
            started,
            live,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A change in a certificate's state: a lasting line, and the spinner's new text.
    pub fn change(&mut self, key: &CertKey, state: &str) {
        if self.quiet {
            return;
        }
        let line = format!(
            "certwait: {} {key}: {state}",
            format_elapsed(self.elapsed())
        );
        match &mut self.live {
            None => eprint_line(&line),
            Some(live) => {
                let spinner = live.spinners.entry(key.clone()).or_insert_with(|| {
                    let bar = live.bars.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar
                });
                spinner.set_message(for_terminal(&format!("{key}: {state}")).into_owned());
                let _ = live.bars.println(for_terminal(&line));
            }
        }
    }

    /// Whether progress is a live display on a terminal.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The same state again, said anew: on a terminal the spinner's text (no lasting
    /// line), otherwise a line.
    pub fn remind(&mut self, key: &CertKey, state: &str) {
        if self.quiet {
            return;
        }
        match self.live.as_ref().and_then(|l| l.spinners.get(key)) {
            Some(spinner) => {
                spinner.set_message(for_terminal(&format!("{key}: {state}")).into_owned())
            }
            None => self.note(&format!("{key}: {state}")),
        }
    }

    /// A certificate is done (ready): its spinner stops with a final message.
    pub fn finish(&mut self, key: &CertKey, state: &str) {
        self.change(key, state);
        if let Some(spinner) = self.live.as_mut().and_then(|l| l.spinners.remove(key)) {
            spinner.finish_and_clear();
        }
    }

    /// A line that is not about one certificate (retries, re-lists).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            self.print(&format!(
                "certwait: {} {text}",
                format_elapsed(self.elapsed())
            ));
        }
    }

    /// Diagnostics and warnings: shown even with `-q`.
    pub fn always(&self, text: &str) {
        self.print(text.trim_end_matches('\n'));
    }

    /// Stops every spinner so that what follows is printed on a clean terminal.
    pub fn clear(&mut self) {
        if let Some(live) = self.live.take() {
            for spinner in live.spinners.values() {
                spinner.finish_and_clear();
            }
            let _ = live.bars.clear();
        }
    }

    fn print(&self, text: &str) {
        match &self.live {
            Some(live) => {
                let _ = live.bars.println(for_terminal(text));
            }
            None => eprint_line(text),
        }
    }
}

/// Plain lines go through the redaction choke point.
fn eprint_line(text: &str) {
    kpipe_core::redact::eprint(&format!("{text}\n"));
}

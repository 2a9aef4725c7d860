//! Progress on stderr while a tool waits (`kapply --wait`, `certwait`): a lasting line
//! for every change, with the time since the wait began, and on a terminal a live
//! spinner for each thing still waited for. Every line and spinner text goes through
//! the redaction choke point ([`crate::redact`]).

use crate::redact::for_terminal;
use crate::time::format_elapsed;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    tool: &'static str,
    started: Instant,
    live: Option<Live>,
}

struct Live {
    bars: MultiProgress,
    spinners: BTreeMap<String, ProgressBar>,
}

impl Progress {
    /// Lines as `TOOL: ELAPSED TEXT`; spinners only if `spinners` and stderr is a
    /// terminal (a log file or a pipe gets the lines alone).
    pub fn new(tool: &'static str, started: Instant, spinners: bool) -> Progress {
        let live = (spinners && std::io::stderr().is_terminal()).then(|| Live {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            spinners: BTreeMap::new(),
        });
        Progress {
            tool,
            started,
            live,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether progress is a live display on a terminal.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// A lasting line: `TOOL: 1.2s TEXT`.
    pub fn line(&self, text: &str) {
        self.print(&format!(
            "{}: {} {text}",
            self.tool,
            format_elapsed(self.elapsed())
        ));
    }

    /// The spinner of `key` says `text` from now on, started if it was not.
    pub fn spin(&mut self, key: &str, text: &str) {
        let Some(live) = &mut self.live else { return };
        let spinner = live.spinners.entry(key.to_string()).or_insert_with(|| {
            let bar = live.bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        spinner.set_message(for_terminal(text).into_owned());
    }

    /// Whether `key` has a spinner.
    pub fn spinning(&self, key: &str) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.spinners.contains_key(key))
    }

    /// `key` is done: its spinner goes away.
    pub fn stop(&mut self, key: &str) {
        if let Some(spinner) = self.live.as_mut().and_then(|l| l.spinners.remove(key)) {
            spinner.finish_and_clear();
        }
    }

    /// Stops every spinner, so that what follows is printed on a clean terminal.
    pub fn clear(&mut self) {
        if let Some(live) = self.live.take() {
            for spinner in live.spinners.values() {
                spinner.finish_and_clear();
            }
            let _ = live.bars.clear();
        }
    }

    /// `text` as it is, on a line of its own above the spinners.
    pub fn print(&self, text: &str) {
        match &self.live {
            Some(live) => {
                let _ = live.bars.println(for_terminal(text));
            }
            None => crate::redact::eprint(&format!("{text}\n")),
        }
    }
}

//! Where everything kapply prints goes: results on stdout (or on stderr, when stdout
//! carries something else), diagnostics on stderr, and on a terminal a progress bar,
//! every line printed above it. One reporter per run, made in `lib.rs` and handed to
//! whatever prints; stderr passes the redaction choke point ([`kpipe_core::redact`]),
//! stdout [`kpipe_core::write_stdout`]. What the lines say is [`crate::report`]'s.

use crate::cli::Output;
use crate::failure::Failure;
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use kpipe_core::Result;
use kpipe_core::time::format_elapsed;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// From this many objects a terminal gets a progress bar on stderr.
const PROGRESS_FROM: usize = 20;

/// Where each object's result goes, from -o, --diff and whether stdout is the apply's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Results {
    /// `configmap/x created` on stdout, as kubectl prints it.
    Lines,
    /// --diff: each object's diff on stdout instead of its line.
    Diffs,
    /// stdout carries the objects (-o yaml|json), or belongs to another apply (an
    /// --atomic rollback's to the failed release): the lines are diagnostics on stderr.
    OnStderr,
    /// `-o name`: the names on stdout are the result, as kubectl prints it; no lines
    /// besides.
    Names,
}

impl Results {
    pub fn of(output: Option<Output>, diff: bool, stdout: bool) -> Results {
        match output {
            _ if diff => Results::Diffs,
            None if stdout => Results::Lines,
            Some(Output::Name) => Results::Names,
            _ => Results::OnStderr,
        }
    }
}

/// The run's reporter. Its clones are the same reporter (the API client keeps one for
/// its notices).
#[derive(Clone)]
pub struct Reporter {
    /// Hidden unless an apply of many objects runs on a terminal; shared with the
    /// outage lines of [`kpipe_core::transport`], which any request may bring.
    progress: Arc<Mutex<ProgressBar>>,
}

impl Reporter {
    /// The run's reporter; the outage lines of [`kpipe_core::transport`] go through it.
    pub fn install() -> Reporter {
        let progress = Arc::new(Mutex::new(ProgressBar::hidden()));
        let bar = Arc::clone(&progress);
        kpipe_core::transport::report_with(move |line| {
            say_above(&bar, &format!("kapply: {line}\n"));
        });
        Reporter { progress }
    }

    /// Diagnostic lines on stderr (each starting `kapply: `), above the progress bar.
    pub fn say(&self, text: &str) {
        say_above(&self.progress, text);
    }

    /// Output on stdout, written whole, above the progress bar.
    pub fn write(&self, text: &str) -> Result<()> {
        bar(&self.progress).suspend(|| kpipe_core::write_stdout(text))
    }

    /// One object's result, where `to` sends it: its `line`, or with --diff its `diff`.
    pub fn result(&self, to: Results, line: &str, diff: &str) -> Result<()> {
        match to {
            Results::Lines => self.write(line),
            Results::Diffs => self.write(diff),
            // stdout carries the objects: what changed is a diagnostic.
            Results::OnStderr => {
                self.say(&format!("kapply: {line}"));
                Ok(())
            }
            Results::Names => Ok(()),
        }
    }

    /// The text of a server's `Warning` header, as kubectl prints it.
    pub fn warning(&self, text: &str) {
        self.say(&format!("Warning: {text}\n"));
    }

    /// The notice before retry number `retry` of a request (`what`) after `failure`,
    /// `wait` from now. A broken connection is an outage, which kpipe_core::transport
    /// tells once for every request that waits it out.
    pub fn retrying(&self, what: &str, failure: &Failure, retry: u32, wait: Duration) {
        if matches!(failure, Failure::Transport { .. }) {
            return;
        }
        self.say(&format!(
            "kapply: {what}: {}; retry {retry} in {}\n",
            short(failure),
            format_elapsed(wait)
        ));
    }

    /// A progress bar over `objects` on a terminal; elsewhere none, so that logs get
    /// plain lines only.
    pub fn start_progress(&self, objects: usize) {
        if objects < PROGRESS_FROM || !std::io::stderr().is_terminal() {
            return;
        }
        let style =
            ProgressStyle::with_template("{spinner} {pos}/{len} objects {wide_bar} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        // Cleared however the run ends, so that an error message stands alone.
        let started = ProgressBar::new(objects as u64)
            .with_style(style)
            .with_finish(ProgressFinish::AndClear);
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = started;
    }

    /// The progress bar moves by itself from now on, while requests wait.
    pub fn tick_progress(&self) {
        let bar = bar(&self.progress);
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
    }

    /// One more object done.
    pub fn advance_progress(&self) {
        bar(&self.progress).inc(1);
    }

    /// The progress bar goes away; lines from now on are plain.
    pub fn end_progress(&self) {
        let ended = std::mem::replace(
            &mut *self.progress.lock().unwrap_or_else(PoisonError::into_inner),
            ProgressBar::hidden(),
        );
        ended.finish_and_clear();
    }
}

/// The progress bar as it is now (a handle: the bar itself is shared).
fn bar(progress: &Mutex<ProgressBar>) -> ProgressBar {
    progress
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// `text` on stderr, above the progress bar if one is shown; through the redaction
/// choke point, as all of stderr.
fn say_above(progress: &Mutex<ProgressBar>, text: &str) {
    bar(progress).suspend(|| kpipe_core::redact::eprint(text));
}

/// One line for retry notices: `503 Service Unavailable: message`.
fn short(failure: &Failure) -> String {
    match failure {
        Failure::Api { status, .. } => kpipe_core::api::status_line(status),
        other => other.message(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    #[test]
    fn retry_notices_are_one_line_with_code_and_reason() {
        let f = Failure::api(
            Status::failure("too many\nrequests", "").with_code(429),
            None,
        );
        assert_eq!(short(&f), "429 Too Many Requests: too many");
        let f = Failure::api(Status::failure("", "").with_code(503), None);
        assert_eq!(short(&f), "503 Service Unavailable");
    }

    #[test]
    fn results_go_where_the_flags_say() {
        assert_eq!(Results::of(None, false, true), Results::Lines);
        assert_eq!(Results::of(None, true, true), Results::Diffs);
        assert_eq!(Results::of(None, false, false), Results::OnStderr);
        assert_eq!(
            Results::of(Some(Output::Yaml), false, true),
            Results::OnStderr
        );
        assert_eq!(Results::of(Some(Output::Name), false, true), Results::Names);
        assert_eq!(
            Results::of(Some(Output::Name), false, false),
            Results::Names
        );
    }
}

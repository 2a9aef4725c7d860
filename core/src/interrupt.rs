//! SIGINT and SIGTERM as values. A tool that writes to a cluster catches them so that it
//! can stop starting work, let what is in flight finish, and say what was done and what
//! was not; it then exits 130 or 143, as the shell reports a process the signal killed.

use crate::error::{Error, Result, Signal};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Caught SIGINT/SIGTERM; cheap to clone and to ask.
#[derive(Clone)]
pub struct Interrupt {
    received: watch::Receiver<Option<Signal>>,
}

impl Interrupt {
    /// Catches both signals from now on (in the current tokio runtime).
    pub fn install() -> Result<Interrupt> {
        let fail = |e: std::io::Error| Error::runtime(format!("cannot handle signals: {e}"));
        let mut int = signal(SignalKind::interrupt()).map_err(fail)?;
        let mut term = signal(SignalKind::terminate()).map_err(fail)?;
        let (tx, received) = watch::channel(None);
        tokio::spawn(async move {
            let caught = tokio::select! {
                _ = int.recv() => Signal::Interrupt,
                _ = term.recv() => Signal::Terminate,
            };
            let _ = tx.send(Some(caught));
        });
        Ok(Interrupt { received })
    }

    /// The signal, once one came.
    pub fn received(&self) -> Option<Signal> {
        *self.received.borrow()
    }

    /// Waits for a signal (forever, if none comes).
    pub async fn wait(&self) -> Signal {
        let mut received = self.received.clone();
        match received.wait_for(Option::is_some).await {
            Ok(signal) => signal.expect("waited for Some"),
            // The listener never ends before sending; should it, no signal is coming.
            Err(_) => std::future::pending().await,
        }
    }
}

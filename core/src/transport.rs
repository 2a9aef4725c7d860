//! What passes between a tool and the API server, watched in one place: every request
//! of the run's client goes through [`Watchdog`], which
//! - bounds each request and each answer's body by the run's deadline (plus
//!   [`REPORT_GRACE`] for the report of what was not done), so that no request,
//!   discovery, list or watch outlives `--timeout`, whatever the server does;
//! - fails a refused connection at once while the server has never answered, as
//!   kubectl does: no server listens there, and retrying will not make one;
//! - tells an outage once when it begins and once when it ends, however many requests
//!   retry through it.
//!
//! A tool talks to one server per run, so what it has learnt of that server is the
//! process's.

use crate::error::Error;
use crate::time::format_elapsed;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use kube::client::DynBody;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn StdError + Send + Sync>;
/// Prints one line about the server (without the tool's name).
type Reporter = Box<dyn Fn(&str) + Send + Sync>;

/// How long past the deadline a tool may still ask the server, for its report of what
/// was not done (a diagnosis): the run ends within half a second of `--timeout`.
pub const REPORT_GRACE: Duration = Duration::from_millis(350);

/// What this run has seen of its API server.
struct Seen {
    /// Some answer came back (any status): the server is there.
    answered: AtomicBool,
    /// When the current outage began; `None` while the server answers.
    outage: Mutex<Option<Instant>>,
    /// kubectl's words for a refusal before any answer.
    refused: OnceLock<String>,
    /// The run's `--timeout`.
    deadline: OnceLock<Instant>,
    /// Where outage lines go (default: stderr with the tool's name).
    reporter: OnceLock<Reporter>,
}

static SEEN: Seen = Seen {
    answered: AtomicBool::new(false),
    outage: Mutex::new(None),
    refused: OnceLock::new(),
    deadline: OnceLock::new(),
    reporter: OnceLock::new(),
};

/// Sends the outage lines to `print` (given `tool: line`-less text) instead of plain
/// stderr: a tool that draws a progress bar prints above it.
pub fn report_with(print: impl Fn(&str) + Send + Sync + 'static) {
    let _ = SEEN.reporter.set(Box::new(print));
}

fn report(line: &str) {
    match SEEN.reporter.get() {
        Some(print) => print(line),
        None => crate::error::warn(line),
    }
}

/// No answer in the time the run had: a request or an answer cut at the deadline.
#[derive(Debug, thiserror::Error)]
#[error("no answer before --timeout ran out")]
pub struct OutOfTime;

/// A connection refused before the server ever answered, in kubectl's words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

fn refusal_message(server: &str) -> String {
    format!(
        "The connection to the server {server} was refused - did you specify the right host or port?"
    )
}

/// The run's client for `config`: every request passes the [`Watchdog`], bounded by
/// `deadline` (and [`REPORT_GRACE`]) when the run has one.
pub fn client(config: kube::Config, deadline: Option<Instant>) -> kube::Result<kube::Client> {
    if let Some(deadline) = deadline {
        let _ = SEEN.deadline.set(deadline);
    }
    let url = &config.cluster_url;
    let server: Arc<str> = url
        .authority()
        .map_or_else(|| url.to_string(), ToString::to_string)
        .into();
    let until = deadline.map(|d| d + REPORT_GRACE);
    let layer = tower_layer::layer_fn(move |inner| Watchdog {
        inner,
        server: server.clone(),
        until,
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build())
}

/// A failed run as the user should read it: kubectl's one line when no server ever
/// answered a refused connection (whatever step met it), a timeout (exit 124) when the
/// failure came once the deadline had passed.
pub fn explain(e: Error) -> Error {
    match e {
        Error::Runtime(_) if SEEN.refused.get().is_some() && !has_answered() => {
            Error::Runtime(SEEN.refused.get().cloned().unwrap_or_default())
        }
        Error::Runtime(message) if SEEN.deadline.get().is_some_and(|d| Instant::now() >= *d) => {
            Error::Timeout(message)
        }
        other => other,
    }
}

/// Whether the server has answered anything in this run.
pub fn has_answered() -> bool {
    SEEN.answered.load(Ordering::Relaxed)
}

/// An answer to a request sent at `sent`. Only a request sent after the outage began
/// ends it: one in flight when the server went down can still be answered just after
/// another failed, and that does not mean the server is back.
fn answered(server: &str, sent: Instant) {
    SEEN.answered.store(true, Ordering::Relaxed);
    let ended = SEEN
        .outage
        .lock()
        .map(|mut o| o.take_if(|since| *since <= sent))
        .unwrap_or(None);
    if let Some(since) = ended {
        report(&format!(
            "the server {server} answers again (no answer for {})",
            format_elapsed(since.elapsed())
        ));
    }
}

fn no_answer(server: &str, why: &(dyn StdError + 'static)) {
    let began = SEEN.outage.lock().is_ok_and(|mut outage| {
        let first = outage.is_none();
        outage.get_or_insert_with(Instant::now);
        first
    });
    if began {
        report(&format!(
            "no answer from the server {server} ({}); retrying until it answers",
            crate::api::transport_message(why)
        ));
    }
}

/// A failed request: a refusal before any answer becomes [`Refused`] (which is not
/// retried); any other broken connection is an outage, told once.
fn judge(server: &str, e: BoxError) -> BoxError {
    if !has_answered() && has_kind(&*e, std::io::ErrorKind::ConnectionRefused) {
        let message = SEEN.refused.get_or_init(|| refusal_message(server));
        return Box::new(Refused(message.clone()));
    }
    if crate::api::is_transient_transport(&*e) {
        no_answer(server, &*e);
    }
    e
}

fn has_kind(e: &(dyn StdError + 'static), kind: std::io::ErrorKind) -> bool {
    crate::api::causes(e).any(|err| {
        err.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
    })
}

/// The layer every request of the run's client passes (see the module's comment).
pub struct Watchdog<S> {
    inner: S,
    /// `host:port`, as kubectl names the server.
    server: Arc<str>,
    /// The deadline and its grace: nothing is waited for beyond it.
    until: Option<Instant>,
}

type Answer = http::Response<Box<DynBody>>;

impl<S> tower_service::Service<http::Request<kube::client::Body>> for Watchdog<S>
where
    S: tower_service::Service<
            http::Request<kube::client::Body>,
            Response = Answer,
            Error = BoxError,
        >,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let sent = Instant::now();
        let answer = self.inner.call(request);
        let server = self.server.clone();
        let until = self.until;
        Box::pin(async move {
            let answer = match until {
                Some(until) => tokio::time::timeout_at(until, answer)
                    .await
                    .map_err(|_| Box::new(OutOfTime) as BoxError)?,
                None => answer.await,
            };
            match answer {
                Ok(response) => {
                    answered(&server, sent);
                    Ok(response.map(|body| {
                        Box::new(Bounded {
                            inner: body,
                            stop: until.map(|u| Box::pin(tokio::time::sleep_until(u))),
                            server,
                        }) as Box<DynBody>
                    }))
                }
                Err(e) => Err(judge(&server, e)),
            }
        })
    }
}

/// An answer's body (a watch's included), cut at the deadline; a connection that
/// breaks while it is read is an outage.
struct Bounded {
    inner: Box<DynBody>,
    stop: Option<Pin<Box<Sleep>>>,
    server: Arc<str>,
}

impl Body for Bounded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(stop) = self.stop.as_mut()
            && stop.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Box::new(OutOfTime))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(e))) = &polled
            && crate::api::is_transient_transport(&**e)
        {
            no_answer(&self.server, &**e);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_kubectl_says_it() {
        assert_eq!(
            refusal_message("127.0.0.1:6443"),
            "The connection to the server 127.0.0.1:6443 was refused - did you specify the \
             right host or port?"
        );
        // Not retried, and its text is what a retry notice or failure shows.
        let refused = Refused(refusal_message("h:1"));
        assert!(!crate::api::is_transient_transport(&refused));
        assert_eq!(
            crate::api::transport_message(&refused),
            refusal_message("h:1")
        );
        // The deadline's cut is retried (by a policy that then finds no time left).
        assert!(crate::api::is_transient_transport(&OutOfTime));
    }

    #[test]
    fn refusals_are_found_wherever_they_sit_in_the_chain() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let wrapped = kube::Error::Service(Box::new(refused));
        assert!(has_kind(&wrapped, std::io::ErrorKind::ConnectionRefused));
        let reset = kube::Error::Service(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(!has_kind(&reset, std::io::ErrorKind::ConnectionRefused));
    }
}

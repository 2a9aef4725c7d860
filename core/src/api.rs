//! API server failures: which ones trying again can fix, how long to wait before it, and
//! how to say what went wrong; and the one retry policy of every tool ([`retry`]), bounded
//! by the run's deadline. What a failure means and how it is retried is decided here,
//! once; a tool only says what it prints while it waits.

use kube::core::Status;
use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// 500s that are not the server being unwell but its verdict on the object: a value of
/// the wrong type (`DEBUG: on` read as a bool) or undecodable data (bad base64). The
/// same request fails the same way every time.
const DETERMINISTIC_500_PREFIXES: &[&str] = &[
    "failed to create typed patch object",
    "failed to convert new object",
];

/// Throttling (429), an overloaded or restarting server (502, 503, 504) and 500s other
/// than the server's verdict on the object. Anything else (400, 403, 404, 409, 410,
/// 422...) will not get better by itself.
pub fn is_transient_status(status: &Status) -> bool {
    match status.code {
        429 | 502 | 503 | 504 => true,
        500 => !DETERMINISTIC_500_PREFIXES
            .iter()
            .any(|p| status.message.starts_with(p)),
        _ => false,
    }
}

/// A kube-rs error worth trying again: a transient answer or a broken connection.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => is_transient_status(status),
        other => is_transient_transport(other),
    }
}

/// An error and its causes, outermost first. An `io::Error` that wraps another error
/// (`io::Error::other(e)`, as hyper-rustls wraps a TLS handshake's failure) is followed
/// into it: its own `source()` skips the wrapped error and goes to that one's source,
/// which would lose a reset during the handshake.
pub fn causes<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&err: &&'a (dyn StdError + 'static)| {
        match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => err.source(),
        }
    })
}

/// Connection refused or reset, a connection closed mid-answer, a request timeout: the
/// next attempt may well succeed. TLS and configuration errors will not get better.
pub fn is_transient_transport(e: &(dyn StdError + 'static)) -> bool {
    for err in causes(e) {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | BrokenPipe
                    | UnexpectedEof
                    | TimedOut
            ) {
                return true;
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled() || h.is_timeout())
        {
            return true;
        }
        if err.downcast_ref::<tokio::time::error::Elapsed>().is_some()
            || err.downcast_ref::<crate::transport::OutOfTime>().is_some()
        {
            return true;
        }
    }
    false
}

/// How long the server asked us to wait, from the `Retry-After` header (which only a
/// raw response still has) or the Status' `details.retryAfterSeconds`.
pub fn retry_after(header: Option<Duration>, status: &Status) -> Option<Duration> {
    header.or_else(|| {
        let secs = status.details.as_ref()?.retry_after_seconds;
        (secs > 0).then(|| Duration::from_secs(secs.into()))
    })
}

/// The Status of an error answer: the body when it is one, else its text; the HTTP
/// code is the truth even when a body says otherwise or nothing. Values a server
/// echoes about a Secret are masked here, before anything can print them.
pub fn status_from_body(code: u16, body: &[u8]) -> Status {
    let status = serde_json::from_slice::<Status>(body)
        .ok()
        .filter(|s| s.code != 0 || !s.message.is_empty())
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            Status::failure(&text, "")
        })
        .with_code(code);
    mask_secret_values(status)
}

/// A Status with every value it echoes masked when it is about a Secret: its message
/// and the messages of its causes keep the server's words, the values become
/// `<redacted>`.
pub fn mask_secret_values(mut status: Status) -> Status {
    let about_secret = crate::redact::about_secret(&status.message)
        || status
            .details
            .as_ref()
            .is_some_and(|d| d.kind == "secrets" || d.kind == "Secret");
    if !about_secret {
        return status;
    }
    status.message = crate::redact::mask_echoed(&status.message);
    if let Some(details) = status.details.as_mut() {
        for cause in &mut details.causes {
            cause.message = crate::redact::mask_echoed(&cause.message);
        }
    }
    status
}

/// The server's words, or its code when it said nothing (not yet scrubbed of secrets).
pub fn status_message(status: &Status) -> String {
    if status.message.is_empty() {
        format!("the server answered {}", status.code)
    } else {
        status.message.clone()
    }
}

/// The innermost cause says what happened ("Connection refused"); the wrappers around
/// it (service error, client error) only say where. A connection that ends without an
/// answer gets plain words: TLS libraries describe it in their own terms.
pub fn transport_message(e: &(dyn StdError + 'static)) -> String {
    let mut deepest = e;
    for err in causes(e) {
        deepest = err;
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    return "the connection closed without an answer".into();
                }
                std::io::ErrorKind::ConnectionReset => return "the connection was reset".into(),
                std::io::ErrorKind::ConnectionRefused => {
                    return "the connection was refused".into();
                }
                _ => {}
            }
        }
    }
    deepest.to_string()
}

/// `503 Service Unavailable: the first line of the message`: one line, for notices.
pub fn status_line(status: &Status) -> String {
    let reason = http::StatusCode::from_u16(status.code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("");
    let first_line = status.message.lines().next().unwrap_or("");
    format!("{} {reason}: {first_line}", status.code)
        .trim_end_matches([' ', ':'])
        .to_owned()
}

/// A kube-rs error in one line as a person reads it: the server's code and words, or
/// what broke on the way, rather than kube-rs' debug form.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status_line(status),
        other => transport_message(other),
    }
}

/// Capped exponential backoff: `base`, doubling per retry, never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait before retry number `retry` (0-based). `jitter` in [0, 1) spreads the
    /// waits of parallel requests between half and all of the step, so they do not come
    /// back at the server together; 1.0 is the full step.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.cap);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A failure the retry policy can judge: worth another try, and after how long.
pub trait Retryable {
    fn is_transient(&self) -> bool;
    /// The wait the server asked for (`Retry-After`), if any.
    fn retry_after(&self) -> Option<Duration>;
}

impl Retryable for kube::Error {
    fn is_transient(&self) -> bool {
        is_transient(self)
    }

    /// kube-rs keeps the Status of an answer, not its headers.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            kube::Error::Api(status) => retry_after(None, status),
            _ => None,
        }
    }
}

/// Every kpipe tool's retry policy. Budgeted by time rather than by count, so that a
/// restarting API server (down for 10 s and more) is ridden out; steps capped at 1 s, so
/// that its return is noticed within a second; the server's `Retry-After` honoured, with
/// jitter on top so that the requests it throttled together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long after its first failure a request is still tried again.
    pub budget: Duration,
    pub steps: Backoff,
}

impl RetryPolicy {
    pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

    /// 100 ms doubling to 1 s: requests and watchers alike ([`watch_backoff`]).
    pub const STEPS: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
    };

    pub fn new(budget: Duration) -> Self {
        RetryPolicy {
            budget,
            steps: RetryPolicy::STEPS,
        }
    }

    /// The wait before retry `retry` (0-based) after `failure`; `jitter` in [0, 1).
    /// What the server asked for and up to half as much again, else a backoff step.
    pub fn wait(&self, failure: &impl Retryable, retry: u32, jitter: f64) -> Duration {
        match failure.retry_after() {
            Some(asked) => asked.mul_f64(1.0 + 0.5 * jitter.clamp(0.0, 1.0)),
            None => self.steps.delay(retry, jitter),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(RetryPolicy::DEFAULT_BUDGET)
    }
}

/// The retry policy's steps for a kube-runtime watcher
/// (`watcher(..).backoff(watch_backoff())`), instead of kube-runtime's own 800 ms to
/// 30 s: a restarted API server is noticed within a second by a watch as by a request.
/// No budget: a watch waits as long as its tool's deadline, and what will not get
/// better ends it at once ([`fatal_watch_failure`]). Reset by the watcher on success.
pub fn watch_backoff() -> WatchBackoff {
    WatchBackoff { retry: 0 }
}

/// See [`watch_backoff`].
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    retry: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = RetryPolicy::STEPS.delay(self.retry, rand::random());
        self.retry = self.retry.saturating_add(1);
        Some(wait)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.retry = 0;
    }
}

/// A watcher failure that waiting will not cure, with the verb that failed (`list` or
/// `watch`): not allowed (401, 403), the resource type not served (404), a request the
/// server refuses (400, 422...). Transient failures and 410 Gone (the watcher lists
/// again by itself) are retried; so is a failure that is no API answer (a broken
/// connection, an undecodable event).
pub fn fatal_watch_failure(
    e: &kube::runtime::watcher::Error,
) -> Option<(&'static str, &kube::Error)> {
    use kube::runtime::watcher::Error as W;
    let (verb, e) = match e {
        W::InitialListFailed(e) => ("list", e),
        W::WatchStartFailed(e) | W::WatchFailed(e) => ("watch", e),
        W::WatchError(_) | W::NoResourceVersion => return None,
    };
    match e {
        kube::Error::Api(status) if status.code != 410 && !is_transient_status(status) => {
            Some((verb, e))
        }
        _ => None,
    }
}

/// `cannot watch deployments.apps in namespace default: forbidden (403): MESSAGE`: a
/// fatal watch failure ([`fatal_watch_failure`]) as every tool says it. `resource` is
/// the plural with its group (`deployments.apps`); `namespace` None for all of them.
pub fn cannot(verb: &str, resource: &str, namespace: Option<&str>, e: &kube::Error) -> String {
    let place = namespace.map_or_else(String::new, |ns| format!(" in namespace {ns}"));
    let why = match e {
        kube::Error::Api(status) => {
            let reason = http::StatusCode::from_u16(status.code)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("failed")
                .to_lowercase();
            let first_line = status.message.lines().next().unwrap_or("");
            format!("{reason} ({}): {first_line}", status.code)
                .trim_end_matches([' ', ':'])
                .to_owned()
        }
        other => describe(other),
    };
    format!("cannot {verb} {resource}{place}: {why}")
}

/// Why [`retry`] stopped without a result.
#[derive(Debug)]
pub enum Stopped<E> {
    /// A failure that will not get better, or the last one when the budget ran out.
    Failed(E),
    /// The run's deadline came first (during an attempt or before the next one).
    OutOfTime,
}

/// A notice before each retry: the failure, the retry's number (from 1), the wait.
pub type Notice<'a, E> = &'a (dyn Fn(&E, u32, Duration) + Send + Sync);

/// Runs `attempt` until it succeeds, fails for good, or the policy's budget or the
/// `deadline` runs out. Every attempt and every wait is bounded by the deadline, so a
/// server that accepts and never answers costs no more than the time left.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    notice: Notice<'_, E>,
    mut attempt: F,
) -> Result<T, Stopped<E>>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retry = 0;
    let mut first_failure: Option<Instant> = None;
    loop {
        let failure = match bounded(deadline, attempt()).await {
            None => return Err(Stopped::OutOfTime),
            Some(Ok(value)) => return Ok(value),
            Some(Err(e)) if !e.is_transient() => return Err(Stopped::Failed(e)),
            Some(Err(e)) => e,
        };
        let since = *first_failure.get_or_insert_with(Instant::now);
        let wait = policy.wait(&failure, retry, rand::random());
        let next = Instant::now() + wait;
        if deadline.is_some_and(|d| next >= d) {
            return Err(Stopped::OutOfTime);
        }
        if next > since + policy.budget {
            return Err(Stopped::Failed(failure));
        }
        retry += 1;
        notice(&failure, retry, wait);
        tokio::time::sleep_until(next).await;
    }
}

/// `work`, unless the deadline comes first (`None` then). No deadline: `work`.
pub async fn bounded<T>(deadline: Option<Instant>, work: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;

    fn status(code: u16, message: &str) -> Status {
        Status::failure(message, "").with_code(code)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_inside_the_step() {
        let b = Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        };
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(1600));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(5));
        assert_eq!(b.delay(40, 0.0), Duration::from_millis(2500));
        for retry in 0..8 {
            assert!(b.delay(retry, 0.3) <= b.delay(retry, 0.9));
        }
    }

    #[test]
    fn watchers_back_off_in_the_retry_policys_steps_and_start_again_on_success() {
        use kube::runtime::utils::Backoff as _;
        let mut b = watch_backoff();
        let waits: Vec<Duration> = b.by_ref().take(8).collect();
        assert!(waits[0] <= Duration::from_millis(100), "{waits:?}");
        assert!(
            waits.iter().all(|w| *w <= Duration::from_secs(1)),
            "{waits:?}"
        );
        assert!(waits[7] >= Duration::from_millis(500), "{waits:?}");
        b.reset();
        assert!(b.next() <= Some(Duration::from_millis(100)));
    }

    #[test]
    fn permission_and_missing_types_end_a_watch_and_outages_do_not() {
        use kube::runtime::watcher::Error as W;
        let forbidden = W::WatchFailed(api_error(403));
        let (verb, e) = fatal_watch_failure(&forbidden).unwrap();
        assert_eq!(
            cannot(verb, "deployments.apps", Some("default"), e),
            "cannot watch deployments.apps in namespace default: forbidden (403): nope"
        );
        let unauthorized = W::InitialListFailed(api_error(401));
        let (verb, e) = fatal_watch_failure(&unauthorized).unwrap();
        assert_eq!(
            cannot(verb, "certificates.cert-manager.io", None, e),
            "cannot list certificates.cert-manager.io: unauthorized (401): nope"
        );
        assert!(fatal_watch_failure(&W::WatchStartFailed(api_error(404))).is_some());
        for code in [410, 429, 500, 503] {
            assert!(
                fatal_watch_failure(&W::WatchFailed(api_error(code))).is_none(),
                "{code}"
            );
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let refused = W::InitialListFailed(kube::Error::Service(Box::new(refused)));
        assert!(fatal_watch_failure(&refused).is_none());
    }

    #[test]
    fn retry_after_header_beats_status_details() {
        let mut s = status(429, "slow down");
        assert_eq!(retry_after(None, &s), None);
        s.details = Some(StatusDetails {
            retry_after_seconds: 2,
            ..serde_json::from_value(serde_json::json!({})).unwrap()
        });
        assert_eq!(retry_after(None, &s), Some(Duration::from_secs(2)));
        let header = Some(Duration::from_secs(3));
        assert_eq!(retry_after(header, &s), Some(Duration::from_secs(3)));
    }

    #[test]
    fn transient_codes_are_retried_and_verdicts_are_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(
                is_transient_status(&status(code, "etcdserver: request timed out")),
                "{code}"
            );
        }
        for code in [400, 403, 404, 409, 410, 422] {
            assert!(!is_transient_status(&status(code, "no")), "{code}");
        }
        let bad_type = "failed to create typed patch object (/v1, Kind=ConfigMap): \
                        .data.DEBUG: expected string, got &value.valueUnstructured{Value:true}";
        assert!(!is_transient_status(&status(500, bad_type)));
        let api = kube::Error::Api(status(503, "busy").boxed());
        assert!(is_transient(&api));
    }

    #[test]
    fn connection_failures_are_transient_and_tls_ones_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&kube::Error::Service(Box::new(refused))));
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let tls = kube::Error::Service(Box::new(tls));
        assert!(!is_transient(&tls));
        assert_eq!(describe(&tls), "invalid peer certificate: UnknownIssuer");
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            describe(&kube::Error::Service(Box::new(reset))),
            "the connection was reset"
        );
    }

    #[test]
    fn a_reset_during_the_tls_handshake_is_transient() {
        // hyper-rustls wraps the handshake's io::Error in another (io::Error::other), and
        // hyper-util's connect error wraps that: a server killed mid-handshake.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let handshake = std::io::Error::other(reset);
        let e = kube::Error::Service(Box::new(handshake));
        assert!(is_transient(&e));
        assert_eq!(describe(&e), "the connection was reset");
        let eof = std::io::Error::other(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(is_transient(&kube::Error::ReadEvents(eof)));
    }

    #[test]
    fn messages_are_the_servers_words_or_its_code() {
        assert_eq!(
            describe(&kube::Error::Api(status(429, "too many\nrequests").boxed())),
            "429 Too Many Requests: too many"
        );
        assert_eq!(
            describe(&kube::Error::Api(status(503, "").boxed())),
            "503 Service Unavailable"
        );
        assert_eq!(status_message(&status(503, "")), "the server answered 503");
        assert_eq!(status_message(&status(403, "nope")), "nope");
    }

    #[test]
    fn error_bodies_become_a_status_with_the_http_code() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"quota","reason":"Forbidden","code":403}"#;
        let s = status_from_body(403, body);
        assert_eq!((s.code, s.message.as_str()), (403, "quota"));
        let s = status_from_body(502, b"  upstream connect error\n");
        assert_eq!(
            (s.code, s.message.as_str()),
            (502, "upstream connect error")
        );
        assert_eq!(status_from_body(503, b"").message, "");
        // A body that claims another code does not win over the answer's own.
        let s = status_from_body(500, br#"{"kind":"Status","code":200,"message":"ok?"}"#);
        assert_eq!(s.code, 500);
    }

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(status(code, "nope").boxed())
    }

    #[test]
    fn retry_after_is_honoured_with_jitter_on_top() {
        let policy = RetryPolicy::default();
        let mut throttled = status(429, "slow down");
        throttled.details = Some(StatusDetails {
            retry_after_seconds: 1,
            ..serde_json::from_value(serde_json::json!({})).unwrap()
        });
        let throttled = kube::Error::Api(throttled.boxed());
        assert_eq!(policy.wait(&throttled, 0, 0.0), Duration::from_secs(1));
        assert_eq!(policy.wait(&throttled, 7, 0.5), Duration::from_millis(1250));
        assert!(policy.wait(&throttled, 0, 0.99) < Duration::from_millis(1500));
        // No Retry-After: the steps, at most a second, so a returning server is seen soon.
        let busy = api_error(503);
        assert_eq!(policy.wait(&busy, 0, 1.0), Duration::from_millis(100));
        assert_eq!(policy.wait(&busy, 30, 1.0), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_ride_out_a_ten_second_outage_within_the_budget() {
        let started = Instant::now();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = retry(&RetryPolicy::default(), None, &|_, _, _| {}, || {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async {
                if started.elapsed() < Duration::from_secs(10) {
                    Err(api_error(503))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(result.is_ok());
        assert!(
            started.elapsed() < Duration::from_secs(11),
            "{:?}",
            started.elapsed()
        );
        assert!(calls.into_inner() > 10);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_budget_the_deadline_or_a_permanent_failure() {
        let policy = RetryPolicy::new(Duration::from_secs(3));
        let started = Instant::now();
        let r: Result<(), _> = retry(&policy, None, &|_, _, _| {}, || async {
            Err(api_error(503))
        })
        .await;
        assert!(matches!(r, Err(Stopped::Failed(kube::Error::Api(s))) if s.code == 503));
        assert!(started.elapsed() <= Duration::from_secs(3));

        let deadline = Some(Instant::now() + Duration::from_secs(2));
        let r = retry(&policy, deadline, &|_, _, _| {}, || {
            std::future::pending::<Result<(), kube::Error>>()
        })
        .await;
        assert!(matches!(r, Err(Stopped::OutOfTime)));

        let notices = std::sync::atomic::AtomicU32::new(0);
        let r: Result<(), _> = retry(
            &policy,
            None,
            &|_, _, _| {
                notices.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
            || async { Err(api_error(403)) },
        )
        .await;
        assert!(matches!(r, Err(Stopped::Failed(_))));
        assert_eq!(notices.into_inner(), 0);
    }
}

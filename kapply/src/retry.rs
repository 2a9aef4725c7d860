//! What failed, whether trying again can help, and how long to wait before it does.

use kube::core::Status;
use std::time::Duration;

/// Why one request did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The API server answered with an error.
    Api {
        status: Box<Status>,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// No usable answer: connection refused or reset, TLS, a request timeout.
    Transport { message: String, transient: bool },
    /// `--timeout` ran out.
    OutOfTime,
}

/// 500s that are not the server being unwell but its verdict on the object: a value of
/// the wrong type (`DEBUG: on` read as a bool) or undecodable data (bad base64). The
/// same request fails the same way every time.
const DETERMINISTIC_500_PREFIXES: &[&str] = &[
    "failed to create typed patch object",
    "failed to convert new object",
];

impl Failure {
    pub fn api(status: Status, retry_after: Option<Duration>) -> Self {
        Failure::Api {
            status: Box::new(status),
            retry_after,
        }
    }

    /// The HTTP status code of an API answer.
    pub fn code(&self) -> Option<u16> {
        match self {
            Failure::Api { status, .. } => Some(status.code),
            _ => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Api { status, .. } => match status.code {
                429 | 502 | 503 | 504 => true,
                500 => !DETERMINISTIC_500_PREFIXES
                    .iter()
                    .any(|p| status.message.starts_with(p)),
                _ => false,
            },
            Failure::Transport { transient, .. } => *transient,
            Failure::OutOfTime => false,
        }
    }

    /// How long the server asked us to wait, from the header or the Status details.
    pub fn retry_after(&self) -> Option<Duration> {
        let Failure::Api {
            status,
            retry_after,
        } = self
        else {
            return None;
        };
        retry_after.or_else(|| {
            let secs = status.details.as_ref()?.retry_after_seconds;
            (secs > 0).then(|| Duration::from_secs(secs.into()))
        })
    }

    /// The message for a person (not yet scrubbed of secret values).
    pub fn message(&self) -> String {
        match self {
            Failure::Api { status, .. } if status.message.is_empty() => {
                format!("the server answered {}", status.code)
            }
            Failure::Api { status, .. } => status.message.clone(),
            Failure::Transport { message, .. } => message.clone(),
            Failure::OutOfTime => "not done when --timeout ran out".into(),
        }
    }
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Failure::Api {
                status,
                retry_after: None,
            },
            other => {
                let transient = is_transient_transport(&other);
                Failure::Transport {
                    message: describe_chain(&other),
                    transient,
                }
            }
        }
    }
}

/// Connection refused or reset, a connection closed mid-answer, a request timeout: the
/// next attempt may well succeed. TLS and configuration errors will not get better.
fn is_transient_transport(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
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
        if err.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            return true;
        }
        current = err.source();
    }
    false
}

/// The innermost cause says what happened ("Connection refused"); the wrappers around
/// it (service error, client error) only say where. A connection that ends without an
/// answer gets plain words: TLS libraries describe it in their own terms.
fn describe_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = e;
    loop {
        if let Some(io) = deepest.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    return "the connection closed without an answer".into();
                }
                std::io::ErrorKind::ConnectionReset => return "the connection was reset".into(),
                _ => {}
            }
        }
        match deepest.source() {
            Some(source) => deepest = source,
            None => return deepest.to_string(),
        }
    }
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub fn new(retries: u32) -> Self {
        Backoff {
            retries,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }

    /// The wait before retry number `retry` (0-based); `jitter` in [0, 1) spreads the
    /// waits of parallel requests between half and all of the exponential step, so they
    /// do not come back at the server together.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.cap);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// The wait before retry `retry` after `failure`: what the server asked for, else backoff.
    pub fn wait_after(&self, failure: &Failure, retry: u32, jitter: f64) -> Duration {
        failure
            .retry_after()
            .unwrap_or_else(|| self.delay(retry, jitter))
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
        let b = Backoff::new(5);
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
    fn retry_after_header_beats_backoff_then_status_details() {
        let b = Backoff::new(5);
        let header = Failure::api(status(429, "slow down"), Some(Duration::from_secs(3)));
        assert_eq!(b.wait_after(&header, 0, 0.0), Duration::from_secs(3));
        let mut s = status(429, "slow down");
        s.details = Some(StatusDetails {
            retry_after_seconds: 2,
            ..details()
        });
        assert_eq!(
            b.wait_after(&Failure::api(s, None), 0, 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.wait_after(&Failure::api(status(503, ""), None), 1, 1.0),
            Duration::from_millis(400)
        );
    }

    fn details() -> StatusDetails {
        serde_json::from_value(serde_json::json!({})).unwrap()
    }

    #[test]
    fn transient_codes_are_retried_and_verdicts_are_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(
                Failure::api(status(code, "etcdserver: request timed out"), None).is_transient(),
                "{code}"
            );
        }
        for code in [400, 403, 404, 409, 422] {
            assert!(
                !Failure::api(status(code, "no"), None).is_transient(),
                "{code}"
            );
        }
        assert!(!Failure::OutOfTime.is_transient());
    }

    #[test]
    fn the_servers_deterministic_500s_are_permanent() {
        for fixture in ["22-configmap-bool-value.json", "26-secret-bad-base64.json"] {
            let failure = Failure::api(crate::fixtures::status(fixture), None);
            assert_eq!(failure.code(), Some(500));
            assert!(!failure.is_transient(), "{fixture}");
        }
    }

    #[test]
    fn connection_failures_are_transient_and_tls_ones_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let failure = Failure::from(kube::Error::Service(Box::new(refused)));
        assert!(failure.is_transient());
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let failure = Failure::from(kube::Error::Service(Box::new(tls)));
        assert!(!failure.is_transient());
        assert!(
            failure.message().contains("UnknownIssuer"),
            "{}",
            failure.message()
        );
    }
}

//! What failed, whether trying again can help, and how long to wait before it does.
//! What a failure means is kpipe_core::api's; kapply adds its deadline and retry count.

use kpipe_core::api;
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
            Failure::Api { status, .. } => api::is_transient_status(status),
            Failure::Transport { transient, .. } => *transient,
            Failure::OutOfTime => false,
        }
    }

    /// How long the server asked us to wait, from the header or the Status details.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Api {
                status,
                retry_after,
            } => api::retry_after(*retry_after, status),
            _ => None,
        }
    }

    /// The message for a person (known secret values are masked where it is printed).
    pub fn message(&self) -> String {
        match self {
            Failure::Api { status, .. } => api::status_message(status),
            Failure::Transport { message, .. } => message.clone(),
            Failure::OutOfTime => "not done when --timeout ran out".into(),
        }
    }
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Failure::Api {
                status: Box::new(api::mask_secret_values(*status)),
                retry_after: None,
            },
            other => Failure::Transport {
                message: api::transport_message(&other),
                transient: api::is_transient_transport(&other),
            },
        }
    }
}

/// kapply's retry policy: `--retries` retries, 200ms doubling up to 5s, with jitter
/// because up to `--concurrency` requests may fail together.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub retries: u32,
    pub steps: api::Backoff,
}

impl Backoff {
    pub fn new(retries: u32) -> Self {
        Backoff {
            retries,
            steps: api::Backoff {
                base: Duration::from_millis(200),
                cap: Duration::from_secs(5),
            },
        }
    }

    /// The wait before retry `retry` after `failure`: what the server asked for, else backoff.
    pub fn wait_after(&self, failure: &Failure, retry: u32, jitter: f64) -> Duration {
        failure
            .retry_after()
            .unwrap_or_else(|| self.steps.delay(retry, jitter))
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
        // kapply's steps: 200ms doubling, at most 5s, jitter down to half a step.
        let busy = Failure::api(status(503, ""), None);
        assert_eq!(b.wait_after(&busy, 0, 0.0), Duration::from_millis(100));
        assert_eq!(b.wait_after(&busy, 1, 1.0), Duration::from_millis(400));
        assert_eq!(b.wait_after(&busy, 10, 1.0), Duration::from_secs(5));
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

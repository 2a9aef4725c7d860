//! Why a request failed ([`Failure`]), in the terms the retry policy judges: whether
//! trying again can help, and how long to wait first. Which answers are transient, and
//! the retry loop itself, are kpipe_core::api's.

use kpipe_core::api;
use kube::core::Status;
use kube::runtime::watcher;
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
    /// Not sent: what it needs failed first (its Namespace, its CRD, the changes a
    /// change rule makes it wait for). Says why, starting `not applied: `.
    NotApplied(String),
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
            Failure::OutOfTime | Failure::NotApplied(_) => false,
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
            Failure::NotApplied(why) => why.clone(),
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

/// A kube-runtime wait (a watch of one object) that failed, as a failure the retry
/// policy can judge.
impl From<kube::runtime::wait::Error> for Failure {
    fn from(e: kube::runtime::wait::Error) -> Self {
        let kube::runtime::wait::Error::ProbeFailed(e) = e;
        match e {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => Failure::from(e),
            watcher::Error::WatchError(status) => Failure::api(*status, None),
            other => Failure::Transport {
                message: other.to_string(),
                transient: true,
            },
        }
    }
}

impl api::Retryable for Failure {
    fn is_transient(&self) -> bool {
        Failure::is_transient(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        Failure::retry_after(self)
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
    fn retry_after_header_beats_status_details() {
        let header = Failure::api(status(429, "slow down"), Some(Duration::from_secs(3)));
        assert_eq!(header.retry_after(), Some(Duration::from_secs(3)));
        let mut s = status(429, "slow down");
        s.details = Some(StatusDetails {
            retry_after_seconds: 2,
            ..details()
        });
        assert_eq!(
            Failure::api(s, None).retry_after(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(Failure::api(status(503, ""), None).retry_after(), None);
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

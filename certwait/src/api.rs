//! How API errors are classified, and one-off requests retried.

use kpipe_core::api::{RetryPolicy, Stopped};
use std::future::Future;

/// The HTTP status of an API error answer, if the server answered.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

pub use kpipe_core::api::{describe, is_transient};

/// Runs a one-off request under kpipe's retry policy (transient failures retried with
/// backoff or after the wait a throttling server asks for, within a time budget). The
/// run's deadline bounds the callers (see `wait`).
pub async fn retry<T, F, Fut>(request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    match kpipe_core::api::retry(&RetryPolicy::default(), None, &|_, _, _| {}, request).await {
        Ok(value) => Ok(value),
        Err(Stopped::Failed(e)) => Err(e),
        Err(Stopped::OutOfTime) => unreachable!("no deadline was given"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("nope", "Reason")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn only_transient_errors_are_retried() {
        for code in [429, 500, 503, 504] {
            assert!(is_transient(&api_error(code)), "{code}");
        }
        for code in [400, 403, 404, 409, 410, 422] {
            assert!(!is_transient(&api_error(code)), "{code}");
        }
        assert_eq!(describe(&api_error(403)), "403 Forbidden: nope");
    }

    #[tokio::test]
    async fn retry_gives_up_on_permanent_errors_at_once() {
        let mut calls = 0;
        let result: Result<(), _> = retry(|| {
            calls += 1;
            async { Err(api_error(403)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn retry_retries_transient_errors_until_success() {
        let mut calls = 0;
        let result = retry(|| {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api_error(503)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }
}

//! The cert-manager resources certwait reads, and how API errors are classified and retried.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};
use std::future::Future;
use std::time::Duration;

pub const CERT_MANAGER_V1: &str = "cert-manager.io/v1";

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

pub fn certificates(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = resource("cert-manager.io", "Certificate", "certificates");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

pub fn certificate_requests(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = resource(
        "cert-manager.io",
        "CertificateRequest",
        "certificaterequests",
    );
    Api::namespaced_with(client.clone(), namespace, &ar)
}

pub fn orders(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = resource("acme.cert-manager.io", "Order", "orders");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

pub fn challenges(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = resource("acme.cert-manager.io", "Challenge", "challenges");
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// `Issuer` in `namespace` or `ClusterIssuer`.
pub fn issuers(client: &Client, kind: &str, namespace: &str) -> Api<DynamicObject> {
    if kind == "ClusterIssuer" {
        Api::all_with(
            client.clone(),
            &resource("cert-manager.io", kind, "clusterissuers"),
        )
    } else {
        Api::namespaced_with(
            client.clone(),
            namespace,
            &resource("cert-manager.io", kind, "issuers"),
        )
    }
}

/// The HTTP status of an API error answer, if the server answered.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

pub use kpipe_core::api::{describe, is_transient};

/// certwait's backoff: 100ms doubling up to 5s, in full steps (one watch per namespace,
/// no crowd of parallel requests to spread out), restarted after each success.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: u32,
}

const STEPS: kpipe_core::api::Backoff = kpipe_core::api::Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(5),
};

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let delay = STEPS.delay(self.attempts, 1.0);
        self.attempts += 1;
        delay
    }

    pub fn reset(&mut self) {
        self.attempts = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// Runs a one-off request, retrying transient errors a few times with backoff, or
/// after the wait a throttling server asks for.
pub async fn retry<T, F, Fut>(mut request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    const ATTEMPTS: u32 = 6;
    let mut backoff = Backoff::default();
    loop {
        match request().await {
            Err(e) if is_transient(&e) && backoff.attempts() + 1 < ATTEMPTS => {
                tokio::time::sleep(wait_before_retry(&e, &mut backoff)).await;
            }
            other => return other,
        }
    }
}

/// What a throttling server asked for (kube-rs keeps its Status, not the header), else
/// the next backoff step.
fn wait_before_retry(e: &kube::Error, backoff: &mut Backoff) -> Duration {
    let delay = backoff.next_delay();
    match e {
        kube::Error::Api(status) => kpipe_core::api::retry_after(None, status).unwrap_or(delay),
        _ => delay,
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

    #[test]
    fn a_throttling_servers_retry_after_beats_the_backoff() {
        let mut status = kube::core::Status::failure("slow down", "TooManyRequests").with_code(429);
        status.details =
            Some(serde_json::from_value(serde_json::json!({"retryAfterSeconds": 7})).unwrap());
        let mut backoff = Backoff::default();
        let throttled = kube::Error::Api(status.boxed());
        assert_eq!(
            wait_before_retry(&throttled, &mut backoff),
            Duration::from_secs(7)
        );
        assert_eq!(
            wait_before_retry(&api_error(503), &mut backoff),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
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

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

/// Errors worth trying again: throttling, an overloaded or restarting server, a broken
/// connection. Anything else (403, 404, 422...) will not get better by itself.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// An error as a person reads it: the server's message rather than kube-rs' debug form.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({})", status.message, status.code)
        }
        kube::Error::Api(status) => format!("HTTP {}", status.code),
        // "ServiceError: client error (Connect)" alone hides the cause (refused, DNS,
        // certificate): add the chain of sources.
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text.push_str(": ");
                    text.push_str(&cause_text);
                }
                source = cause.source();
            }
            text
        }
    }
}

/// Exponential backoff for retries: 100ms doubling up to 5s.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: u32,
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let delay = Duration::from_millis(100 << self.attempts.min(6)).min(Duration::from_secs(5));
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

/// Runs a one-off request, retrying transient errors a few times with backoff.
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
                tokio::time::sleep(backoff.next_delay()).await;
            }
            other => return other,
        }
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
        assert_eq!(describe(&api_error(403)), "nope (403)");
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

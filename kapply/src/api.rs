//! Requests to the API server, each retried on transient failures.
//!
//! Requests are built by kube-rs (`kube::core::Request`, `PatchParams`, `Patch::Apply`)
//! and sent with `Client::send`, because `Api::patch` keeps neither the status code nor
//! the `Retry-After` header a 429 carries, and retrying on the server's terms needs it.

use crate::failure::Failure;
use crate::reporter::Reporter;
use http_body_util::BodyExt;
use kpipe_core::api::{RetryPolicy, Stopped};
use kube::core::params::{DeleteParams, GetParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, Request, Resource};
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Objects per LIST page, as kubectl pages.
const LIST_PAGE: u32 = 500;

/// Where one object lives on the server.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    fn request(&self) -> Request {
        Request::new(DynamicObject::url_path(
            &self.resource,
            self.namespace.as_deref(),
        ))
    }
}

/// A client that retries and knows the overall deadline; what it has to tell while it
/// does (retry notices, the server's warnings) it hands to the run's reporter.
pub struct Caller {
    client: kube::Client,
    policy: RetryPolicy,
    deadline: Option<Instant>,
    reporter: Reporter,
    /// Server warnings already handed on: as kubectl, each is shown once.
    warned: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Caller {
    pub fn new(
        client: kube::Client,
        policy: RetryPolicy,
        deadline: Option<Instant>,
        reporter: Reporter,
    ) -> Self {
        Caller {
            client,
            policy,
            deadline,
            reporter,
            warned: Default::default(),
        }
    }

    /// Hands the `Warning` headers of an answer to the reporter, each text once.
    fn warn(&self, headers: &http::HeaderMap) {
        for value in headers.get_all("warning") {
            let Some(text) = value.to_str().ok().and_then(warning_text) else {
                continue;
            };
            let new = self
                .warned
                .lock()
                .map(|mut seen| seen.insert(text.clone()))
                .unwrap_or(true);
            if new {
                self.reporter.warning(&text);
            }
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long a failing request is retried.
    pub fn retry_budget(&self) -> Duration {
        self.policy.budget
    }

    /// The live object, `None` when there is none.
    pub async fn get(&self, target: &Target, what: &str) -> Result<Option<Value>, Failure> {
        let result = self
            .retrying(what, || async {
                let req = target
                    .request()
                    .get(&target.name, &GetParams::default())
                    .map_err(build_error)?;
                self.send(req).await
            })
            .await;
        match result {
            Ok(object) => Ok(Some(object)),
            Err(Failure::Api { status, .. }) if status.code == 404 => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Every object of a resource (in a namespace), page after page as kubectl pages;
    /// only those a label selector matches when given.
    pub async fn list_selected(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        labels: Option<&str>,
        what: &str,
    ) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut page = self
                .retrying(what, || async {
                    let mut params = ListParams::default().limit(LIST_PAGE);
                    if let Some(token) = &token {
                        params = params.continue_token(token);
                    }
                    if let Some(labels) = labels {
                        params = params.labels(labels);
                    }
                    let req = Request::new(DynamicObject::url_path(resource, namespace))
                        .list(&params)
                        .map_err(build_error)?;
                    self.send(req).await
                })
                .await?;
            if let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) {
                items.extend(page_items);
            }
            token = page["metadata"]["continue"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// Server-side apply of `body`; the object as the server now has it (or, with
    /// `dryRun`, would have it).
    pub async fn apply(
        &self,
        target: &Target,
        body: &Value,
        params: &PatchParams,
        what: &str,
    ) -> Result<Value, Failure> {
        self.retrying(what, || async {
            let req = target
                .request()
                .patch(&target.name, params, &Patch::Apply(body))
                .map_err(build_error)?;
            self.send(req).await
        })
        .await
    }

    /// POST of a new object (409 when one of its name exists); the object as stored.
    pub async fn create(
        &self,
        target: &Target,
        body: &Value,
        what: &str,
    ) -> Result<Value, Failure> {
        let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
        self.retrying(what, || async {
            let req = target
                .request()
                .create(&PostParams::default(), bytes.clone())
                .map_err(build_error)?;
            self.send(req).await
        })
        .await
    }

    /// DELETE of one object; the server's answer (a Status, or the object while its
    /// deletion is pending), `None` when it was already gone.
    pub async fn delete(
        &self,
        target: &Target,
        params: &DeleteParams,
        what: &str,
    ) -> Result<Option<Value>, Failure> {
        let result = self
            .retrying(what, || async {
                let req = target
                    .request()
                    .delete(&target.name, params)
                    .map_err(build_error)?;
                self.send(req).await
            })
            .await;
        match result {
            Ok(answer) => Ok(Some(answer)),
            Err(Failure::Api { status, .. }) if status.code == 404 => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Runs `attempt` under kpipe's retry policy and the run's deadline, with a notice
    /// to the reporter before each retry.
    pub async fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let notice = |failure: &Failure, retry: u32, wait: Duration| {
            self.reporter.retrying(what, failure, retry, wait);
        };
        kpipe_core::api::retry(&self.policy, self.deadline, &notice, attempt)
            .await
            .map_err(|stopped| match stopped {
                Stopped::Failed(failure) => failure,
                Stopped::OutOfTime => Failure::OutOfTime,
            })
    }

    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<Value, Failure> {
        let response = self.client.send(req.map(kube::client::Body::from)).await?;
        let code = response.status();
        self.warn(response.headers());
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.into_body().collect().await?.to_bytes();
        if code.is_success() {
            let answer: Value = serde_json::from_slice(&bytes).map_err(|e| Failure::Transport {
                message: format!("the server's answer is not a JSON object: {e}"),
                transient: false,
            })?;
            // Live Secrets hold values the input may not (data set by others, old
            // values in last-applied-configuration): known before anything prints.
            kpipe_core::redact::learn_objects_in(&answer);
            return Ok(answer);
        }
        let status = kpipe_core::api::status_from_body(code.as_u16(), &bytes);
        Err(Failure::api(status, retry_after))
    }
}

/// The text of an RFC 7234 warning value, `299 - "text"` (an optional date may follow).
fn warning_text(value: &str) -> Option<String> {
    let quoted = value.splitn(3, ' ').nth(2)?.strip_prefix('"')?;
    let mut text = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

fn build_error(e: kube::core::request::Error) -> Failure {
    Failure::Transport {
        message: format!("cannot build the request: {e}"),
        transient: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_give_their_text() {
        assert_eq!(
            warning_text(r#"299 - "policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+""#)
                .as_deref(),
            Some("policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+")
        );
        assert_eq!(
            warning_text(r#"299 - "would violate PodSecurity \"restricted:latest\": x" "Sat, 01 Jan 2000 00:00:00 GMT""#).as_deref(),
            Some("would violate PodSecurity \"restricted:latest\": x")
        );
        assert_eq!(warning_text("299 -"), None);
    }
}

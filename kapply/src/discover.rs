//! Kind -> resource through discovery, asking only for the group-versions the input uses.

use crate::api::Caller;
use crate::failure::Failure;
use crate::graph::is_built_in_group;
use crate::reporter::Reporter;
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kpipe_core::api::{RetryPolicy, Stopped};
use kpipe_core::{Document, Error, Result};
use kube::core::{ApiResource, GroupVersion};
use kube::discovery::{self, ApiGroup, Scope};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// A kind the input's own CustomResourceDefinitions define.
#[derive(Debug, Clone)]
pub struct InputCrd {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub plural: String,
    pub scope: Scope,
    pub versions: Vec<String>,
}

impl InputCrd {
    /// The CRDs of a stream, read from their spec.
    pub fn of(docs: &[Document]) -> Vec<InputCrd> {
        docs.iter()
            .filter(|d| {
                d.kind() == "CustomResourceDefinition"
                    && d.api_version().starts_with("apiextensions.k8s.io/")
            })
            .filter_map(|d| {
                let spec = &d.value["spec"];
                let text = |v: &Value| v.as_str().map(str::to_owned);
                Some(InputCrd {
                    name: text(&d.value["metadata"]["name"])?,
                    group: text(&spec["group"])?,
                    kind: text(&spec["names"]["kind"])?,
                    plural: text(&spec["names"]["plural"])?,
                    scope: if spec["scope"] == "Cluster" {
                        Scope::Cluster
                    } else {
                        Scope::Namespaced
                    },
                    versions: spec["versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|v| v["served"].as_bool() != Some(false))
                        .filter_map(|v| text(&v["name"]))
                        .collect(),
                })
            })
            .collect()
    }

    fn defines(&self, gv: &GroupVersion, kind: &str) -> bool {
        self.group == gv.group && self.kind == kind && self.versions.contains(&gv.version)
    }
}

/// How an object's kind maps to a resource on this server.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub scope: Scope,
    /// The name of the CRD of this input that defines the kind, while the server does
    /// not serve it yet: the resource is known from the CRD itself, to be confirmed by
    /// discovery once the CRD is Established.
    pub pending_crd: Option<String>,
}

impl Resolved {
    /// The resource, if the server serves it already.
    pub fn served(&self) -> Option<&ApiResource> {
        self.pending_crd.is_none().then_some(&self.resource)
    }
}

/// Resolves every document's kind, fetching each group-version the input needs once,
/// in parallel. A kind the server does not serve and the input does not define stops
/// the run before any write: applying half a stack whose other half cannot exist helps
/// nobody, and kubectl refuses such input the same way.
pub async fn resolve(
    caller: &Caller,
    docs: &[Document],
    crds: &[InputCrd],
    server: &str,
) -> Result<Vec<Resolved>> {
    let wanted: BTreeSet<String> = docs.iter().map(|d| d.api_version().to_owned()).collect();
    let found: HashMap<String, Result<ApiGroup, Failure>> = futures::stream::iter(wanted)
        .map(|api_version| async move {
            let gv = group_version_of(&api_version);
            let result = fetch(caller, &gv).await;
            (api_version, result)
        })
        .buffer_unordered(8)
        .collect()
        .await;

    let mut resolved = Vec::new();
    // (api version, kind) -> (first needed at, what is wrong, where, how often).
    let mut missing: HashMap<(String, String), (usize, String, String, usize)> = HashMap::new();
    let mut note_missing = |doc: &Document, why: String| {
        let key = (doc.api_version().to_owned(), doc.kind().to_owned());
        let first = missing.len();
        missing
            .entry(key)
            .or_insert_with(|| (first, why, doc.place(), 0))
            .3 += 1;
    };
    for doc in docs {
        let gv = group_version_of(doc.api_version());
        let kind = doc.kind();
        let defined = crds.iter().find(|c| c.defines(&gv, kind));
        let pending = |crd: &InputCrd| Resolved {
            resource: ApiResource::from_gvk_with_plural(&gv.clone().with_kind(kind), &crd.plural),
            scope: crd.scope.clone(),
            pending_crd: Some(crd.name.clone()),
        };
        match &found[doc.api_version()] {
            Ok(group) => match group.recommended_kind(kind) {
                Some((resource, caps)) => resolved.push(Resolved {
                    resource,
                    scope: caps.scope,
                    pending_crd: None,
                }),
                None => match defined {
                    Some(crd) => resolved.push(pending(crd)),
                    None => note_missing(
                        doc,
                        format!(
                            "{kind} is not a kind of {}: {}",
                            doc.api_version(),
                            missing_kind_hint(&gv.group, kind)
                        ),
                    ),
                },
            },
            Err(Failure::Api { status, .. }) if status.code == 404 => match defined {
                Some(crd) => resolved.push(pending(crd)),
                None => note_missing(
                    doc,
                    format!(
                        "{kind}: {} is not served by {server}: {}",
                        doc.api_version(),
                        missing_api_hint(&gv.group, kind)
                    ),
                ),
            },
            Err(Failure::OutOfTime) => {
                return Err(Error::Timeout(format!(
                    "discovery of {} at {server}: {}; nothing was applied",
                    doc.api_version(),
                    Failure::OutOfTime.message()
                )));
            }
            Err(failure) => {
                let retried = if failure.is_transient() {
                    format!(
                        " (gave up after retrying for {})",
                        kpipe_core::time::format_elapsed(caller.retry_budget())
                    )
                } else {
                    String::new()
                };
                return Err(Error::runtime(format!(
                    "discovery of {} at {server} failed: {}{retried}",
                    doc.api_version(),
                    failure.message()
                )));
            }
        }
    }
    if missing.is_empty() {
        return Ok(resolved);
    }
    let mut missing: Vec<_> = missing.into_values().collect();
    missing.sort();
    let lines: Vec<String> = missing
        .into_iter()
        .map(|(_, why, place, count)| match count {
            1 => format!("{place}: {why}"),
            n => format!("{place} (and {} more): {why}", n - 1),
        })
        .collect();
    Err(Error::runtime(format!(
        "{}\nkapply: nothing was applied",
        lines.join("\nkapply: ")
    )))
}

fn group_version_of(api_version: &str) -> GroupVersion {
    match api_version.split_once('/') {
        Some((group, version)) => GroupVersion::gv(group, version),
        None => GroupVersion::gv("", api_version),
    }
}

async fn fetch(caller: &Caller, gv: &GroupVersion) -> Result<ApiGroup, Failure> {
    let what = format!("discovery of {}", gv.api_version());
    caller
        .retrying(&what, || async {
            discovery::pinned_group(caller.client(), gv)
                .await
                .map_err(Failure::from)
        })
        .await
}

/// Groups people install rather than get with Kubernetes, and what to install.
fn missing_api_hint(group: &str, kind: &str) -> String {
    if group == "cert-manager.io" || group.ends_with(".cert-manager.io") {
        "is cert-manager installed?".into()
    } else if is_built_in_group(group) {
        "this Kubernetes version does not serve it (`kubectl api-versions` lists what it does)"
            .into()
    } else {
        format!("is the CustomResourceDefinition for {kind} installed?")
    }
}

fn missing_kind_hint(group: &str, kind: &str) -> String {
    if is_built_in_group(group) {
        "misspelt, or from another API version? (`kubectl api-resources` lists the kinds)".into()
    } else {
        format!("is the CustomResourceDefinition for {kind} installed, at this version?")
    }
}

/// A CRD established within this long is not worth a notice.
const ANNOUNCE_AFTER: Duration = Duration::from_millis(500);
/// How long to wait for a CRD when no --timeout bounds the run.
const CRD_WAIT: Duration = Duration::from_secs(120);

/// Waits until the CRD is Established and its kind is discoverable, then returns the
/// resource as discovery gives it.
pub async fn wait_for_crd(
    caller: &Caller,
    reporter: &Reporter,
    crd: &InputCrd,
    version: &str,
) -> Result<ApiResource, Failure> {
    let until = caller
        .deadline()
        .unwrap_or_else(|| Instant::now() + CRD_WAIT);
    let what = format!("CustomResourceDefinition/{}", crd.name);
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(caller.client().clone());
    let established = caller.retrying(&what, || async {
        let wait = await_condition(crds.clone(), &crd.name, conditions::is_crd_established());
        tokio::pin!(wait);
        let done = tokio::select! {
            done = &mut wait => done,
            () = tokio::time::sleep(ANNOUNCE_AFTER) => {
                reporter.say(&format!("kapply: waiting for {what} to be Established\n"));
                wait.await
            }
        };
        done.map(drop).map_err(Failure::from)
    });
    kpipe_core::api::bounded(Some(until), established)
        .await
        .unwrap_or(Err(Failure::OutOfTime))?;
    // The API server updates discovery a moment after it marks the CRD Established:
    // until then the group is missing (404) or lacks the kind, which the retry policy
    // treats like a server that is not ready yet. Quietly: that moment is expected.
    let gv = GroupVersion::gv(&crd.group, version);
    let not_yet = || Failure::Transport {
        message: format!("{what} is Established but not in discovery yet"),
        transient: true,
    };
    let policy = RetryPolicy::new(until.saturating_duration_since(Instant::now()));
    let discovered = kpipe_core::api::retry(&policy, Some(until), &|_, _, _| {}, || async {
        match discovery::pinned_group(caller.client(), &gv).await {
            Ok(group) => group
                .recommended_kind(&crd.kind)
                .map(|(resource, _)| resource)
                .ok_or_else(not_yet),
            Err(kube::Error::Api(status)) if status.code == 404 => Err(not_yet()),
            Err(e) => Err(Failure::from(e)),
        }
    });
    discovered.await.map_err(|stopped| match stopped {
        Stopped::Failed(failure) => failure,
        Stopped::OutOfTime => Failure::OutOfTime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_input_crds() {
        let text = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                    metadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Cluster\n\
                    \x20 names: {kind: Widget, plural: widgets}\n  versions:\n  - {name: v1, served: true}\n\
                    \x20 - {name: v0, served: false}\n";
        let crds = InputCrd::of(&kpipe_core::stream::parse("in", text).unwrap());
        assert_eq!(crds.len(), 1);
        assert_eq!(
            (crds[0].name.as_str(), crds[0].plural.as_str()),
            ("widgets.example.com", "widgets")
        );
        assert_eq!(crds[0].scope, Scope::Cluster);
        assert!(crds[0].defines(&GroupVersion::gv("example.com", "v1"), "Widget"));
        assert!(!crds[0].defines(&GroupVersion::gv("example.com", "v0"), "Widget"));
    }

    #[test]
    fn missing_apis_say_what_to_install() {
        assert_eq!(
            missing_api_hint("cert-manager.io", "Certificate"),
            "is cert-manager installed?"
        );
        assert_eq!(
            missing_api_hint("acme.cert-manager.io", "Order"),
            "is cert-manager installed?"
        );
        assert!(
            missing_api_hint("example.com", "Widget")
                .contains("CustomResourceDefinition for Widget")
        );
        assert!(missing_api_hint("extensions", "Deployment").contains("does not serve"));
    }
}

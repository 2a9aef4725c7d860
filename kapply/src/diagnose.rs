//! Why an object is not ready, in one screen: what `kubectl get pod`, `kubectl
//! describe` and `kubectl logs` would have shown, for the pods of the workload's
//! current template only. Log lines pass through the scrubber, which first learns the
//! values of the Secrets those pods read.

use crate::ready::{State, condition};
use crate::wait::{Watched, list, pod_selector, pods_resource};
use kpipe_core::api::describe;
use kpipe_core::redact::Scrubber;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt::Write as _;

/// Pods shown per workload; the rest are counted.
const PODS_SHOWN: usize = 3;
/// Log lines shown of a crashing container, as the issue of a crash loop is usually
/// in its last lines.
const LOG_LINES: usize = 20;
/// Recent Warning events shown per workload.
const EVENTS_SHOWN: usize = 6;

fn replica_sets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "ReplicaSet"),
        "replicasets",
    )
}

fn events() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Event"), "events")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The diagnosis of one object not ready; `scrubber` masks the input's secrets and
/// learns those the pods read.
pub async fn explain(client: &kube::Client, object: &Watched, scrubber: &Scrubber) -> String {
    let mut out = String::new();
    let verdict = match &object.state {
        State::Failed(why) => format!("failed: {why}"),
        State::Waiting(why) => format!("not ready: {why}"),
        State::Ready(why) => format!("ready: {why}"),
    };
    let _ = writeln!(out, "{}: {verdict}", object.name());
    let live = &object.live;
    for kind in [
        "Progressing",
        "Available",
        "ReplicaFailure",
        "Failed",
        "Ready",
    ] {
        if let Some(c) = condition(live, kind)
            && (c["status"] != "True" || matches!(kind, "ReplicaFailure" | "Failed"))
        {
            let _ = writeln!(
                out,
                "  {kind}={} {}: {}",
                text(&c["status"]),
                text(&c["reason"]),
                text(&c["message"])
            );
        }
    }
    let Some(namespace) = object.id.namespace.as_deref() else {
        return out;
    };
    let mut scrubber = scrubber.clone();
    let mut uids: HashSet<String> = HashSet::new();
    uids.extend(live["metadata"]["uid"].as_str().map(String::from));
    let mut body = String::new();
    if let Some(selector) = pod_selector(live) {
        let selector = match current_hash(client, live, namespace, &selector, &mut uids).await {
            Some(hash) => format!("{selector},pod-template-hash={hash}"),
            None => selector,
        };
        let params = ListParams::default().labels(&selector);
        match list(client, &pods_resource(), namespace, &params).await {
            Ok(mut pods) => {
                let owner = text(&live["metadata"]["uid"]).to_string();
                // The Deployment's pods belong to its ReplicaSet, the others' to them.
                pods.retain(|p| {
                    live["kind"] == "Deployment"
                        || p["metadata"]["ownerReferences"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|r| r["uid"] == owner.as_str())
                });
                // The newest first: a Job's last attempt, a rollout's latest pods.
                pods.sort_by_key(|p| {
                    std::cmp::Reverse((
                        text(&p["metadata"]["creationTimestamp"]).to_string(),
                        text(&p["metadata"]["name"]).to_string(),
                    ))
                });
                if pods.is_empty() {
                    let _ = writeln!(body, "  no pods of the current template yet");
                }
                for pod in &pods {
                    uids.extend(pod["metadata"]["uid"].as_str().map(String::from));
                }
                // One log tail is enough: the pods of one template crash alike.
                let mut log_shown = false;
                for pod in pods.iter().take(PODS_SHOWN) {
                    learn_secrets(client, namespace, pod, &mut scrubber).await;
                    body.push_str(&explain_pod(client, namespace, pod, &mut log_shown).await);
                }
                if pods.len() > PODS_SHOWN {
                    let _ = writeln!(body, "  ... and {} more pods", pods.len() - PODS_SHOWN);
                }
            }
            Err(e) => {
                let _ = writeln!(body, "  (its pods could not be listed: {})", describe(&e));
            }
        }
    }
    body.push_str(&warnings(client, namespace, &uids).await);
    out.push_str(&scrubber.scrub(&body));
    out
}

/// The pod-template-hash of the Deployment's current ReplicaSet: the one whose
/// template is the Deployment's own (the hash label aside).
async fn current_hash(
    client: &kube::Client,
    deployment: &Value,
    namespace: &str,
    selector: &str,
    uids: &mut HashSet<String>,
) -> Option<String> {
    if deployment["kind"] != "Deployment" {
        return None;
    }
    let params = ListParams::default().labels(selector);
    let sets = list(client, &replica_sets(), namespace, &params)
        .await
        .ok()?;
    sets.into_iter().find_map(|rs| {
        let mut template = rs["spec"]["template"].clone();
        let hash = template["metadata"]["labels"]
            .as_object_mut()?
            .remove("pod-template-hash")?;
        if template["metadata"]["labels"]
            .as_object()
            .is_some_and(|l| l.is_empty())
        {
            template["metadata"].as_object_mut()?.remove("labels");
        }
        let mut wanted = deployment["spec"]["template"].clone();
        if wanted["metadata"]["labels"]
            .as_object()
            .is_some_and(|l| l.is_empty())
        {
            wanted["metadata"].as_object_mut()?.remove("labels");
        }
        (template == wanted).then(|| {
            uids.extend(rs["metadata"]["uid"].as_str().map(String::from));
            text(&hash).to_string()
        })
    })
}

/// One pod: phase, scheduling, and per container the kubelet's reason and message.
async fn explain_pod(
    client: &kube::Client,
    namespace: &str,
    pod: &Value,
    log_shown: &mut bool,
) -> String {
    let mut out = String::new();
    let name = text(&pod["metadata"]["name"]);
    let status = &pod["status"];
    let phase = status["phase"].as_str().unwrap_or("Pending");
    let _ = writeln!(out, "  pod/{name}: {phase}");
    if let Some(c) = condition(pod, "PodScheduled").filter(|c| c["status"] == "False") {
        let _ = writeln!(
            out,
            "    not scheduled: {}: {}",
            text(&c["reason"]),
            text(&c["message"])
        );
    }
    let specs = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for s in status["containerStatuses"].as_array().into_iter().flatten() {
        let cname = text(&s["name"]);
        let image = specs
            .iter()
            .find(|c| c["name"] == s["name"])
            .map_or("", |c| text(&c["image"]));
        let state = &s["state"];
        let restarts = s["restartCount"].as_i64().unwrap_or(0);
        if let Some(waiting) = state.get("waiting") {
            let reason = text(&waiting["reason"]);
            let _ = write!(out, "    container {cname}: {reason}");
            match reason {
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" => {
                    mark_public(image);
                    let _ = writeln!(out, " (image {image})");
                    let _ = writeln!(out, "      {}", text(&waiting["message"]));
                }
                "CreateContainerConfigError" => {
                    let _ = writeln!(out, ": {}", text(&waiting["message"]));
                }
                "CrashLoopBackOff" => {
                    let last = &s["lastState"]["terminated"];
                    let _ = writeln!(
                        out,
                        ", restarted {restarts} times, last exit code {} ({})",
                        last["exitCode"].as_i64().unwrap_or(0),
                        text(&last["reason"])
                    );
                    if !std::mem::replace(log_shown, true) {
                        out.push_str(&log_tail(client, namespace, name, cname).await);
                    }
                }
                _ => {
                    let message = text(&waiting["message"]);
                    if message.is_empty() {
                        let _ = writeln!(out);
                    } else {
                        let _ = writeln!(out, ": {message}");
                    }
                }
            }
        } else if let Some(done) = state.get("terminated") {
            let code = done["exitCode"].as_i64().unwrap_or(0);
            let _ = writeln!(
                out,
                "    container {cname}: exited with code {code} ({})",
                text(&done["reason"])
            );
            if code != 0 && !std::mem::replace(log_shown, true) {
                out.push_str(&log_tail(client, namespace, name, cname).await);
            }
        } else if s["ready"] != true {
            let _ = writeln!(out, "    container {cname}: running, not ready");
        }
    }
    out
}

/// An image is in the pod spec anyone who can read the workload sees: printed whole,
/// even when a secret value (a registry user that is also the database user) is part of
/// it. Taught as a public string, as names are (see `kpipe_core::redact`).
fn mark_public(image: &str) {
    kpipe_core::redact::learn_objects([&serde_json::json!({"metadata": {"name": image}})]);
}

/// The last lines a container wrote (for a crash loop: the instance that crashed).
async fn log_tail(client: &kube::Client, namespace: &str, pod: &str, container: &str) -> String {
    let path = format!(
        "/api/v1/namespaces/{namespace}/pods/{pod}/log?container={container}&tailLines={LOG_LINES}"
    );
    let Ok(request) = http::Request::get(path).body(Vec::new()) else {
        return String::new();
    };
    match client.request_text(request).await {
        Ok(log) if log.trim().is_empty() => "      (its log is empty)\n".into(),
        Ok(log) => {
            let mut out = format!("      last {LOG_LINES} log lines:\n");
            for line in log.lines() {
                let _ = writeln!(out, "      | {line}");
            }
            out
        }
        Err(e) => format!("      (its log could not be read: {})\n", describe(&e)),
    }
}

/// Learns the values of the Secrets a pod's containers read, so that a log line
/// echoing one is scrubbed even when the Secret was not in the input.
async fn learn_secrets(
    client: &kube::Client,
    namespace: &str,
    pod: &Value,
    scrubber: &mut Scrubber,
) {
    let mut names: Vec<&str> = Vec::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for source in c["envFrom"].as_array().into_iter().flatten() {
            names.extend(source["secretRef"]["name"].as_str());
        }
        for var in c["env"].as_array().into_iter().flatten() {
            names.extend(var["valueFrom"]["secretKeyRef"]["name"].as_str());
        }
    }
    names.sort_unstable();
    names.dedup();
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Secret"), "secrets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    for name in names {
        if let Ok(Some(secret)) = api.get_opt(name).await {
            let mut value = serde_json::to_value(&secret).unwrap_or(Value::Null);
            value["apiVersion"] = "v1".into();
            value["kind"] = "Secret".into();
            scrubber.learn([&value]);
        }
    }
}

/// The most recent Warning events about the workload, its ReplicaSet and its pods.
async fn warnings(client: &kube::Client, namespace: &str, uids: &HashSet<String>) -> String {
    let params = ListParams::default().fields("type=Warning");
    let Ok(mut found) = list(client, &events(), namespace, &params).await else {
        return String::new();
    };
    found.retain(|e| {
        e["involvedObject"]["uid"]
            .as_str()
            .is_some_and(|u| uids.contains(u))
    });
    let when = |e: &Value| {
        e["lastTimestamp"]
            .as_str()
            .or(e["eventTime"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    found.sort_by_key(when);
    let mut seen = HashSet::new();
    let mut lines: Vec<String> = found
        .iter()
        .rev()
        .filter_map(|e| {
            let about = format!(
                "{}/{}",
                text(&e["involvedObject"]["kind"]).to_lowercase(),
                text(&e["involvedObject"]["name"])
            );
            let line = format!(
                "    {} {about}: {}",
                text(&e["reason"]),
                text(&e["message"])
            );
            seen.insert(line.clone()).then_some(line)
        })
        .take(EVENTS_SHOWN)
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    lines.reverse();
    format!("  recent warnings:\n{}\n", lines.join("\n"))
}

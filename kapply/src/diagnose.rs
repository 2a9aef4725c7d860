//! Why an object is not ready, in one screen: what `kubectl get pod`, `kubectl
//! describe` and `kubectl logs` would have shown, for the pods of the workload's
//! current template only. Before anything of a pod is shown, the values of every Secret
//! it reads are learned (read with the user's own client), so that the redaction choke
//! point masks them in its log lines and events; a pod that reads a Secret which cannot
//! be read shows no log lines, and says which Secret and why.

use crate::ready::{State, condition};
use crate::references::{self, Referent};
use crate::wait::{Watched, list, pod_selector, pods_resource};
use kpipe_core::api::describe;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
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

/// The diagnosis of one object not ready, every known secret masked (those the pods
/// read are learned first).
pub async fn explain(client: &kube::Client, object: &Watched) -> String {
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
    // What the workload's own pod template reads, for events about it and its ReplicaSet.
    let mut unread = learn_secrets(client, namespace, &live["spec"]["template"]).await;
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
                    // Every pod, those counted only too: their events are shown.
                    let more = learn_secrets(client, namespace, pod).await;
                    unread.extend(more);
                }
                // One log tail is enough: the pods of one template crash alike.
                let mut log_shown = false;
                for pod in pods.iter().take(PODS_SHOWN) {
                    let log = match unreadable(pod, &unread) {
                        Some(why) => Log::Hidden(why),
                        None => Log::Tail(&mut log_shown),
                    };
                    body.push_str(&explain_pod(client, namespace, pod, log).await);
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
    out.push_str(&kpipe_core::redact::scrub(&body));
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

/// Whether a pod's log may be shown: a tail (once per workload), or not at all.
enum Log<'a> {
    /// Shown unless this is already true; set once shown.
    Tail(&'a mut bool),
    /// Why not: a Secret it reads could not be read, so its values cannot be masked.
    Hidden(String),
}

/// One pod: phase, scheduling, and per container the kubelet's reason and message.
async fn explain_pod(
    client: &kube::Client,
    namespace: &str,
    pod: &Value,
    mut log: Log<'_>,
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
                    // An image is in the pod spec anyone who can read the workload sees: printed
                    // whole even when a secret value (a registry user that is also the
                    // database user) is part of it.
                    kpipe_core::redact::learn_printed_whole(image);
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
                    out.push_str(&log_tail(client, namespace, name, cname, &mut log).await);
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
            if code != 0 {
                out.push_str(&log_tail(client, namespace, name, cname, &mut log).await);
            }
        } else if s["ready"] != true {
            let _ = writeln!(out, "    container {cname}: running, not ready");
        }
    }
    out
}

/// The last lines a container wrote (for a crash loop: the instance that crashed), or
/// why they are not shown.
async fn log_tail(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    log: &mut Log<'_>,
) -> String {
    match log {
        Log::Hidden(why) => return format!("      (its log is not shown: {why})\n"),
        Log::Tail(shown) if **shown => return String::new(),
        Log::Tail(shown) => **shown = true,
    }
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

/// The names of the Secrets a pod reads, by every path [`references::uses`] knows (env,
/// envFrom and volumes of every kind of container and volume, imagePullSecrets): the
/// same reading a prune keeps Secrets by.
fn secrets_read(pod: &Value) -> BTreeSet<String> {
    references::uses("", "Pod", pod)
        .into_iter()
        .filter(|used| used.what == Referent::Secret)
        .map(|used| used.name)
        .collect()
}

/// Learns the values of every Secret `pod` reads, each read with the user's own client,
/// so that its log lines and events are masked even when the Secret was not in the
/// input; returns those that could not be read (not found, forbidden, an error), each
/// with why.
async fn learn_secrets(
    client: &kube::Client,
    namespace: &str,
    pod: &Value,
) -> BTreeMap<String, String> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Secret"), "secrets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let mut unread = BTreeMap::new();
    for name in secrets_read(pod) {
        match api.get_opt(&name).await {
            Ok(Some(secret)) => {
                let mut value = serde_json::to_value(&secret).unwrap_or(Value::Null);
                value["apiVersion"] = "v1".into();
                value["kind"] = "Secret".into();
                kpipe_core::redact::learn_objects([&value]);
            }
            Ok(None) => {
                unread.insert(name, "not found".to_string());
            }
            Err(e) => {
                unread.insert(name, kpipe_core::api::describe(&e));
            }
        }
    }
    unread
}

/// Why a pod's log cannot be shown: the first Secret it reads that could not be read.
fn unreadable(pod: &Value, unread: &BTreeMap<String, String>) -> Option<String> {
    secrets_read(pod).into_iter().find_map(|name| {
        unread.get(&name).map(|why| {
            format!("it reads Secret {name}, which could not be read ({why}), so its values could not be masked")
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_path_a_pod_reads_a_secret_by_is_found() {
        let env = |name: &str| {
            json!({"name": name, "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": name, "key": "k"}}},
                           {"name": "B", "value": "plain"}]})
        };
        let pod = json!({"spec": {
            "containers": [{"name": "app", "envFrom": [{"secretRef": {"name": "env-from"}},
                                                     {"configMapRef": {"name": "a-config-map"}}]},
                           env("env-key")],
            "initContainers": [env("init")],
            "ephemeralContainers": [{"name": "debug", "envFrom": [{"secretRef": {"name": "ephemeral"}}]}],
            "volumes": [
                {"name": "v1", "secret": {"secretName": "volume"}},
                {"name": "v2", "projected": {"sources": [{"secret": {"name": "projected"}},
                                                         {"configMap": {"name": "a-config-map"}}]}},
                {"name": "v3", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi"}}},
                {"name": "v4", "cephfs": {"monitors": [], "secretRef": {"name": "cephfs"}}},
                {"name": "v5", "configMap": {"name": "a-config-map"}}],
            "imagePullSecrets": [{"name": "registry"}]}});
        let found: Vec<String> = secrets_read(&pod).into_iter().collect();
        assert_eq!(
            found,
            [
                "cephfs",
                "csi",
                "env-from",
                "env-key",
                "ephemeral",
                "init",
                "projected",
                "registry",
                "volume"
            ]
        );
        let unread = BTreeMap::from([("projected".to_string(), "403 Forbidden".to_string())]);
        let why = unreadable(&pod, &unread).unwrap();
        assert!(
            why.contains("Secret projected") && why.contains("403 Forbidden"),
            "{why}"
        );
        assert_eq!(unreadable(&pod, &BTreeMap::new()), None);
    }
}

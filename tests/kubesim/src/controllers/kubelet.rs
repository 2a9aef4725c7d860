//! The scheduler and a kubelet on one node, `kubesim-node`, without containers: a new
//! Pod is scheduled at once and its containers "start" after `--deploy-delay`, unless
//! `--pods-fail` says their image fails, or the kubelet cannot build their environment
//! (a Secret or ConfigMap, or one of its keys, that `env`/`envFrom` names is missing:
//! CreateContainerConfigError, retried until it appears). Status, conditions and
//! Events carry the reasons and messages a real kubelet (containerd) writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::options::{ControllerOptions, FailState};
use super::support::{Recorder, now, object_ref, retry};
use super::workloads::write_status;

pub(crate) const NODE: &str = "kubesim-node";
const NODE_IP: &str = "10.244.0.1";

struct Ctx {
    client: Client,
    opts: ControllerOptions,
    scheduler: Recorder,
    kubelet: Recorder,
    /// When each pod (by uid) was first seen: its containers start `deploy_delay` later.
    seen: Mutex<HashMap<String, Instant>>,
}

pub(crate) fn spawn(client: &Client, opts: &ControllerOptions) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        opts: opts.clone(),
        scheduler: Recorder::new(client.clone(), "default-scheduler"),
        kubelet: Recorder::new(client.clone(), "kubelet"),
        seen: Mutex::default(),
    });
    let pods = Controller::new(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(300)),
            ctx,
        )
        .for_each(|_| async {});
    tokio::spawn(pods);
}

/// What the kubelet makes of one container once its start delay is over.
enum Outcome {
    Started,
    ConfigError(String),
    PullFailed,
    Crashed(i32),
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> kube::Result<Action> {
    let value = serde_json::to_value(pod.as_ref()).map_err(kube::Error::SerdeError)?;
    let status = &value["status"];
    let phase = status["phase"].as_str().unwrap_or("Pending");
    let uid = pod.uid().unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        ctx.seen.lock().expect("seen lock").remove(&uid);
        return Ok(Action::await_change());
    }
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let me = object_ref("v1", "Pod", &pod.metadata);
    let containers: Vec<Value> = value["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let image = |c: &Value| c["image"].as_str().unwrap_or_default().to_string();
    let failures: Vec<Option<FailState>> = containers
        .iter()
        .map(|c| ctx.opts.failure_of(&image(c)))
        .collect();
    let conditions = |ready: bool, waiting: &[String]| {
        let at = now().to_string();
        let keep = |kind: &str, wanted: &str| {
            status["conditions"]
                .as_array()
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c["type"] == kind && c["status"] == wanted)
                })
                .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
                .unwrap_or_else(|| at.clone())
        };
        let ready_text = if ready { "True" } else { "False" };
        let condition = |kind: &str, state: &str| {
            let mut c = json!({"type": kind, "status": state, "lastProbeTime": null,
                               "lastTransitionTime": keep(kind, state)});
            if state == "False" && matches!(kind, "Ready" | "ContainersReady") {
                c["reason"] = json!("ContainersNotReady");
                c["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    waiting.join(" ")
                ));
            }
            c
        };
        json!([
            condition("PodReadyToStartContainers", "True"),
            condition("Initialized", "True"),
            condition("Ready", ready_text),
            condition("ContainersReady", ready_text),
            condition("PodScheduled", "True"),
        ])
    };
    let names: Vec<String> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();

    // The scheduler.
    if value["spec"]["nodeName"].as_str().is_none() {
        if failures.contains(&Some(FailState::Unschedulable)) {
            if status["conditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
            {
                return Ok(Action::await_change());
            }
            let message = "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
            let unschedulable = json!({
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                    "lastTransitionTime": now().to_string(), "reason": "Unschedulable", "message": message}],
            });
            write_status(&api, &name, unschedulable).await?;
            ctx.scheduler.warning(&me, "FailedScheduling", message);
            return Ok(Action::await_change());
        }
        let bind = json!({"spec": {"nodeName": NODE}});
        let params = PatchParams::default();
        retry(|| async { api.patch(&name, &params, &Patch::Merge(&bind)).await }).await?;
        let creating: Vec<Value> = containers
            .iter()
            .map(|c| {
                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                       "restartCount": 0, "started": false,
                       "state": {"waiting": {"reason": "ContainerCreating"}}})
            })
            .collect();
        let scheduled = json!({
            "phase": "Pending",
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "conditions": conditions(false, &names),
            "containerStatuses": creating,
        });
        write_status(&api, &name, scheduled).await?;
        ctx.scheduler.normal(
            &me,
            "Scheduled",
            &format!("Successfully assigned {namespace}/{name} to {NODE}"),
        );
        ctx.seen
            .lock()
            .expect("seen lock")
            .insert(uid.clone(), Instant::now());
        return Ok(Action::requeue(ctx.opts.deploy_delay));
    }

    // The kubelet, once the containers' start delay is over.
    let first = *ctx
        .seen
        .lock()
        .expect("seen lock")
        .entry(uid.clone())
        .or_insert_with(Instant::now);
    let waited = first.elapsed();
    if waited < ctx.opts.deploy_delay {
        return Ok(Action::requeue(ctx.opts.deploy_delay - waited));
    }
    let job_pod = value["spec"]["restartPolicy"] != "Always";
    let mut outcomes = Vec::new();
    for (container, failure) in containers.iter().zip(&failures) {
        let outcome = match failure {
            Some(FailState::ImagePullBackOff) => Outcome::PullFailed,
            Some(FailState::CrashLoopBackOff { exit_code }) => Outcome::Crashed(*exit_code),
            _ => match missing_config(&ctx.client, &namespace, container).await? {
                Some(message) => Outcome::ConfigError(message),
                None => Outcome::Started,
            },
        };
        outcomes.push(outcome);
    }
    let previous: Vec<Value> = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let before = |c: &str| previous.iter().find(|s| s["name"] == c).cloned();
    let at = now().to_string();
    let mut statuses = Vec::new();
    let mut retry_later = false;
    let mut events: Vec<(bool, Option<String>, String, String)> = Vec::new();
    for (container, outcome) in containers.iter().zip(&outcomes) {
        let cname = container["name"].as_str().unwrap_or_default();
        let field = Some(format!("spec.containers{{{cname}}}"));
        let img = image(container);
        let old = before(cname).unwrap_or(Value::Null);
        let was = old["state"]["waiting"]["reason"].as_str().unwrap_or("");
        let mut s = json!({"name": cname, "image": img, "imageID": "", "restartCount": 0,
                           "ready": false, "started": false});
        match outcome {
            Outcome::Started => {
                if old["state"]["running"].is_object() || old["state"]["terminated"].is_object() {
                    statuses.push(old);
                    continue;
                }
                s["imageID"] = json!(format!(
                    "{}@sha256:{}",
                    img.split(':').next().unwrap_or(&img),
                    "0".repeat(64)
                ));
                s["containerID"] = json!(format!("containerd://{}", "c".repeat(64)));
                if job_pod {
                    s["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                        "startedAt": at, "finishedAt": at, "containerID": s["containerID"]}});
                } else {
                    s["state"] = json!({"running": {"startedAt": at}});
                    s["ready"] = json!(true);
                    s["started"] = json!(true);
                }
                events.push((
                    false,
                    field.clone(),
                    "Pulling".into(),
                    format!("Pulling image {img:?}"),
                ));
                events.push((false, field.clone(), "Pulled".into(), format!("Successfully pulled image {img:?} in 1.024s (1.024s including waiting). Image size: 52428800 bytes.")));
                events.push((
                    false,
                    field.clone(),
                    "Created".into(),
                    format!("Created container: {cname}"),
                ));
                events.push((
                    false,
                    field,
                    "Started".into(),
                    format!("Started container {cname}"),
                ));
            }
            Outcome::ConfigError(message) => {
                s["state"] = json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}});
                if was != "CreateContainerConfigError" {
                    events.push((true, field, "Failed".into(), format!("Error: {message}")));
                }
                retry_later = true;
            }
            Outcome::PullFailed => {
                let reference = qualified(&img);
                if was == "ErrImagePull" || was == "ImagePullBackOff" {
                    s["state"] = json!({"waiting": {"reason": "ImagePullBackOff",
                        "message": format!("Back-off pulling image {img:?}: ErrImagePull: {}", pull_error(&reference))}});
                    if was == "ErrImagePull" {
                        events.push((
                            false,
                            field.clone(),
                            "BackOff".into(),
                            format!("Back-off pulling image {img:?}"),
                        ));
                        events.push((
                            true,
                            field,
                            "Failed".into(),
                            "Error: ImagePullBackOff".into(),
                        ));
                    }
                } else {
                    s["state"] = json!({"waiting": {"reason": "ErrImagePull", "message": pull_error(&reference)}});
                    events.push((
                        false,
                        field.clone(),
                        "Pulling".into(),
                        format!("Pulling image {img:?}"),
                    ));
                    events.push((
                        true,
                        field.clone(),
                        "Failed".into(),
                        format!("Failed to pull image {img:?}: {}", pull_error(&reference)),
                    ));
                    events.push((true, field, "Failed".into(), "Error: ErrImagePull".into()));
                    retry_later = true;
                }
            }
            Outcome::Crashed(code) => {
                let terminated = json!({"exitCode": code, "reason": "Error", "startedAt": at,
                    "finishedAt": at, "containerID": format!("containerd://{}", "d".repeat(64))});
                s["imageID"] = json!(format!(
                    "{}@sha256:{}",
                    img.split(':').next().unwrap_or(&img),
                    "0".repeat(64)
                ));
                s["containerID"] = terminated["containerID"].clone();
                if old["lastState"]["terminated"].is_object()
                    || old["state"]["terminated"].is_object()
                {
                    statuses.push(old);
                    continue;
                }
                events.push((
                    false,
                    field.clone(),
                    "Pulled".into(),
                    format!("Container image {img:?} already present on machine"),
                ));
                events.push((
                    false,
                    field.clone(),
                    "Created".into(),
                    format!("Created container: {cname}"),
                ));
                events.push((
                    false,
                    field.clone(),
                    "Started".into(),
                    format!("Started container {cname}"),
                ));
                if job_pod {
                    s["state"] = json!({"terminated": terminated});
                } else {
                    s["restartCount"] = json!(1);
                    s["lastState"] = json!({"terminated": terminated});
                    s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                        "message": format!("back-off 10s restarting failed container={cname} pod={name}_{namespace}({uid})")}});
                    events.push((true, field, "BackOff".into(), format!("Back-off restarting failed container {cname} in pod {name}_{namespace}({uid})")));
                }
            }
        }
        statuses.push(s);
    }
    let all_ready = statuses.iter().all(|s| s["ready"] == true);
    let terminated: Vec<&Value> = statuses
        .iter()
        .filter_map(|s| s["state"].get("terminated"))
        .collect();
    let phase = if job_pod && terminated.len() == statuses.len() {
        if terminated.iter().all(|t| t["exitCode"] == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if statuses.iter().any(|s| {
        s["state"]
            .get("waiting")
            .is_some_and(|w| w["reason"] != "CrashLoopBackOff")
    }) {
        "Pending"
    } else {
        "Running"
    };
    let unready: Vec<String> = statuses
        .iter()
        .filter(|s| s["ready"] != true)
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect();
    let mut next = json!({
        "phase": phase,
        "hostIP": NODE_IP,
        "hostIPs": [{"ip": NODE_IP}],
        "podIP": pod_ip(&uid),
        "podIPs": [{"ip": pod_ip(&uid)}],
        "startTime": status["startTime"].as_str().map(String::from).unwrap_or_else(|| at.clone()),
        "conditions": conditions(all_ready && !job_pod, &unready),
        "containerStatuses": statuses,
    });
    if matches!(phase, "Succeeded" | "Failed") {
        next["conditions"] = conditions(false, &[]);
        for c in next["conditions"].as_array_mut().into_iter().flatten() {
            if matches!(c["type"].as_str(), Some("Ready" | "ContainersReady")) {
                c["reason"] = json!("PodCompleted");
                c.as_object_mut().map(|m| m.remove("message"));
            }
        }
    }
    let same = ["phase", "containerStatuses"]
        .iter()
        .all(|f| strip_times(&status[*f]) == strip_times(&next[*f]));
    if !same {
        write_status(&api, &name, next).await?;
        for (warning, field, reason, message) in events {
            let mut about = me.clone();
            about.field_path = field;
            if warning {
                ctx.kubelet.warning(&about, &reason, &message);
            } else {
                ctx.kubelet.normal(&about, &reason, &message);
            }
        }
    }
    Ok(if retry_later {
        Action::requeue(ctx.opts.deploy_delay.max(Duration::from_millis(200)))
    } else {
        Action::await_change()
    })
}

fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "startedAt" | "finishedAt" | "lastTransitionTime"
                    )
                })
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

/// A pod IP in the node's pod range, stable per pod.
fn pod_ip(uid: &str) -> String {
    let n = uid
        .bytes()
        .fold(0u32, |n, b| n.wrapping_mul(31).wrapping_add(b.into()));
    format!("10.244.{}.{}", (n >> 8) % 250 + 1, n % 250 + 2)
}

/// The image reference as containerd resolves it (docker.io/library/ for short names).
fn qualified(image: &str) -> String {
    let with_tag = if image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':') || last.contains('@'))
    {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    let first = with_tag.split('/').next().unwrap_or_default();
    if !with_tag.contains('/') {
        format!("docker.io/library/{with_tag}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        with_tag
    } else {
        format!("docker.io/{with_tag}")
    }
}

/// containerd's message for an image the registry will not give out.
fn pull_error(reference: &str) -> String {
    format!(
        "failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": \
         pull access denied, repository does not exist or may require authorization: \
         server message: insufficient_scope: authorization failed"
    )
}

/// The kubelet's message for the first Secret/ConfigMap (or key) a container's
/// environment needs and the namespace lacks.
async fn missing_config(
    client: &Client,
    namespace: &str,
    container: &Value,
) -> kube::Result<Option<String>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let keys_of = |data: Option<Vec<String>>| data;
    for source in container["envFrom"].as_array().into_iter().flatten() {
        if source["secretRef"]["optional"] != true
            && let Some(name) = source["secretRef"]["name"].as_str()
            && retry(|| async { secrets.get_opt(name).await })
                .await?
                .is_none()
        {
            return Ok(Some(format!("secret {name:?} not found")));
        }
        if source["configMapRef"]["optional"] != true
            && let Some(name) = source["configMapRef"]["name"].as_str()
            && retry(|| async { config_maps.get_opt(name).await })
                .await?
                .is_none()
        {
            return Ok(Some(format!("configmap {name:?} not found")));
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let from = &var["valueFrom"];
        for (field, kind) in [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")] {
            let reference = &from[field];
            let (Some(name), Some(key)) = (reference["name"].as_str(), reference["key"].as_str())
            else {
                continue;
            };
            if reference["optional"] == true {
                continue;
            }
            let keys = if kind == "Secret" {
                keys_of(
                    retry(|| async { secrets.get_opt(name).await })
                        .await?
                        .map(|s| s.data.unwrap_or_default().into_keys().collect()),
                )
            } else {
                keys_of(
                    retry(|| async { config_maps.get_opt(name).await })
                        .await?
                        .map(|c| c.data.unwrap_or_default().into_keys().collect()),
                )
            };
            match keys {
                None => {
                    return Ok(Some(format!("{} {name:?} not found", kind.to_lowercase())));
                }
                Some(keys) if !keys.iter().any(|k| k == key) => {
                    return Ok(Some(format!(
                        "couldn't find key {key} in {kind} {namespace}/{name}"
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_resolve_as_containerd_resolves_them() {
        assert_eq!(qualified("polls"), "docker.io/library/polls:latest");
        assert_eq!(qualified("sammy/polls:v2"), "docker.io/sammy/polls:v2");
        assert_eq!(qualified("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
        assert_eq!(qualified("localhost:5000/b"), "localhost:5000/b:latest");
    }
}

//! The deployment and replicaset controllers of kube-controller-manager, as far as
//! rollouts go: a Deployment gets a ReplicaSet per pod template (named after the
//! template's `pod-template-hash`), scaled in a rolling update that honours
//! `maxSurge`/`maxUnavailable` (or Recreate), and status with the conditions
//! `kubectl rollout status` reads, including `ProgressDeadlineExceeded` after
//! `progressDeadlineSeconds` without progress. A ReplicaSet keeps its Pods' count.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::support::{
    Conditions, Recorder, controller_ref, find_condition, is_controlled_by, key, now, object_ref,
    report, retry,
};

const MANAGER: &str = "kube-controller-manager";

/// How soon a failed reconcile is tried again.
const RETRY: Duration = Duration::from_millis(300);

struct Ctx {
    client: Client,
    deployments: Recorder,
    replica_sets: Recorder,
}

pub(crate) fn spawn(client: &Client) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        deployments: Recorder::new(client.clone(), "deployment-controller"),
        replica_sets: Recorder::new(client.clone(), "replicaset-controller"),
    });
    let config = watcher::Config::default;
    let deployments = Controller::new(Api::<Deployment>::all(client.clone()), config())
        .owns(Api::<ReplicaSet>::all(client.clone()), config())
        .run(
            reconcile_deployment,
            |_, _, _| Action::requeue(RETRY),
            ctx.clone(),
        )
        .for_each(|_| async {});
    tokio::spawn(deployments);
    let replica_sets = Controller::new(Api::<ReplicaSet>::all(client.clone()), config())
        .owns(Api::<Pod>::all(client.clone()), config())
        .run(reconcile_replica_set, |_, _, _| Action::requeue(RETRY), ctx)
        .for_each(|_| async {});
    tokio::spawn(replica_sets);
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Writes `status` through the /status subresource (a merge patch).
pub(crate) async fn write_status<K>(api: &Api<K>, name: &str, status: Value) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({ "status": status });
    retry(|| async {
        api.patch_status(name, &params(), &Patch::Merge(&patch))
            .await
    })
    .await?;
    Ok(())
}

/// kubectl's and the controllers' pod-template-hash alphabet (no vowels, no 0/1/3).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The pod-template-hash of a template: stable across runs (FNV-1a of its JSON).
fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut n: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        n = (n ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Five random characters, as the generateName of a controller's pods gets.
pub(crate) fn random_suffix() -> String {
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates a pod from `template` (a PodTemplateSpec) controlled by `owner`.
pub(crate) async fn create_pod(
    client: &Client,
    namespace: &str,
    prefix: &str,
    template: &Value,
    owner: &Value,
) -> kube::Result<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = format!("{prefix}-{}", random_suffix());
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template["metadata"].clone(),
        "spec": template["spec"].clone(),
    });
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["generateName"] = json!(format!("{prefix}-"));
    pod["metadata"]["namespace"] = json!(namespace);
    pod["metadata"]["ownerReferences"] = json!([owner]);
    let pod: Pod = serde_json::from_value(pod).map_err(kube::Error::SerdeError)?;
    retry(|| async { api.create(&PostParams::default(), &pod).await }).await?;
    Ok(name)
}

/// Pods that count for a controller: not finished, controlled by `uid`.
pub(crate) async fn owned_pods(
    client: &Client,
    namespace: &str,
    selector: &str,
    uid: &str,
) -> kube::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = retry(|| async { api.list(&ListParams::default().labels(selector)).await }).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, uid))
        .collect())
}

pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `matchLabels` as a label selector string.
fn selector_of(spec: &Value) -> String {
    spec["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

async fn reconcile_replica_set(rs: Arc<ReplicaSet>, ctx: Arc<Ctx>) -> kube::Result<Action> {
    let namespace = rs.namespace().unwrap_or_default();
    let name = rs.name_any();
    let uid = rs.uid().unwrap_or_default();
    let value = serde_json::to_value(rs.as_ref()).map_err(kube::Error::SerdeError)?;
    let spec = &value["spec"];
    let want = spec["replicas"].as_i64().unwrap_or(1) as usize;
    let mut pods: Vec<Pod> = owned_pods(&ctx.client, &namespace, &selector_of(spec), &uid)
        .await?
        .into_iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    let me = object_ref("apps/v1", "ReplicaSet", &rs.metadata);
    let mut failure = None;
    if pods.len() < want {
        let owner = controller_ref(&me);
        for _ in pods.len()..want {
            match create_pod(&ctx.client, &namespace, &name, &spec["template"], &owner).await {
                Ok(pod) => {
                    ctx.replica_sets
                        .normal(&me, "SuccessfulCreate", &format!("Created pod: {pod}"))
                }
                Err(e) => {
                    let message = format!("{e}");
                    ctx.replica_sets.warning(&me, "FailedCreate", &message);
                    failure = Some(message);
                    break;
                }
            }
        }
        pods = owned_pods(&ctx.client, &namespace, &selector_of(spec), &uid)
            .await?
            .into_iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
            .collect();
    } else if pods.len() > want {
        // Not ready first, then the newest, as the controller picks its victims.
        pods.sort_by_key(|p| (is_ready(p), std::cmp::Reverse(p.creation_timestamp())));
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        for pod in pods.drain(..pods.len() - want) {
            let pod_name = pod.name_any();
            match retry(|| async { api.delete(&pod_name, &DeleteParams::default()).await }).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
            ctx.replica_sets
                .normal(&me, "SuccessfulDelete", &format!("Deleted pod: {pod_name}"));
        }
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let previous = serde_json::to_value(&rs.status).unwrap_or(Value::Null);
    let mut conditions = Conditions::of(&previous);
    match &failure {
        Some(message) => {
            conditions.set("ReplicaFailure", "True", "FailedCreate", message, json!({}))
        }
        None => conditions.remove("ReplicaFailure"),
    }
    let status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs.metadata.generation,
        "conditions": conditions.to_json(),
    });
    if !same_fields(&previous, &status) {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
        write_status(&api, &name, status).await?;
    }
    Ok(if failure.is_some() {
        Action::requeue(Duration::from_secs(1))
    } else {
        Action::await_change()
    })
}

/// Whether every field of `new` is already so in `old` (status writes that change
/// nothing are left out, so that watchers see changes only). Zero counts equal absent.
fn same_fields(old: &Value, new: &Value) -> bool {
    let zero = |v: &Value| v.is_null() || *v == json!(0) || *v == json!([]);
    new.as_object().is_some_and(|fields| {
        fields.iter().all(|(k, v)| {
            let before = old.get(k).unwrap_or(&Value::Null);
            before == v || (zero(before) && zero(v))
        })
    })
}

/// `25%` or `1` of `total`, rounded up (surge) or down (unavailable).
fn scaled(value: &Value, total: i64, round_up: bool) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(percent) if round_up => (percent * total + 99) / 100,
            Some(percent) => percent * total / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// One ReplicaSet of a Deployment, as the rollout sees it.
struct Set {
    name: String,
    spec: i64,
    replicas: i64,
    ready: i64,
    available: i64,
    revision: i64,
    failure: Option<Value>,
}

impl Set {
    fn of(rs: &ReplicaSet) -> Set {
        let v = serde_json::to_value(rs).unwrap_or(Value::Null);
        let int = |v: &Value| v.as_i64().unwrap_or(0);
        Set {
            name: rs.name_any(),
            spec: int(&v["spec"]["replicas"]),
            replicas: int(&v["status"]["replicas"]),
            ready: int(&v["status"]["readyReplicas"]),
            available: int(&v["status"]["availableReplicas"]),
            revision: v["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            failure: find_condition(&v["status"], "ReplicaFailure")
                .filter(|c| c["status"] == "True")
                .cloned(),
        }
    }
}

async fn reconcile_deployment(deployment: Arc<Deployment>, ctx: Arc<Ctx>) -> kube::Result<Action> {
    let namespace = deployment.namespace().unwrap_or_default();
    let name = deployment.name_any();
    let uid = deployment.uid().unwrap_or_default();
    let value = serde_json::to_value(deployment.as_ref()).map_err(kube::Error::SerdeError)?;
    let spec = &value["spec"];
    let me = object_ref("apps/v1", "Deployment", &deployment.metadata);
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = retry(|| async {
        rs_api
            .list(&ListParams::default().labels(&selector_of(spec)))
            .await
    })
    .await?;
    let owned: Vec<ReplicaSet> = listed
        .items
        .into_iter()
        .filter(|rs| is_controlled_by(&rs.metadata, &uid))
        .collect();
    let template = &spec["template"];
    let hash = template_hash(template);
    let new_name = format!("{name}-{hash}");
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let mut sets: Vec<Set> = owned.iter().map(Set::of).collect();
    let mut created = false;
    if !sets.iter().any(|s| s.name == new_name) {
        let revision = sets.iter().map(|s| s.revision).max().unwrap_or(0) + 1;
        let mut rs_template = template.clone();
        rs_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = spec["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let body = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": new_name,
                "namespace": namespace,
                "labels": rs_template["metadata"]["labels"],
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                    "deployment.kubernetes.io/max-replicas": replicas.to_string(),
                    "deployment.kubernetes.io/revision": revision.to_string(),
                },
                "ownerReferences": [controller_ref(&me)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": rs_template},
        });
        let rs: ReplicaSet = serde_json::from_value(body).map_err(kube::Error::SerdeError)?;
        match retry(|| async { rs_api.create(&PostParams::default(), &rs).await }).await {
            Ok(made) => sets.push(Set::of(&made)),
            Err(e) if super::support::already_exists(&e) => return Ok(Action::requeue(RETRY)),
            Err(e) => return Err(e),
        }
        created = true;
    }
    let new_index = sets
        .iter()
        .position(|s| s.name == new_name)
        .expect("the new ReplicaSet exists now");

    // Scale as the strategy says.
    let strategy = &spec["strategy"];
    let mut targets: Vec<i64> = sets.iter().map(|s| s.spec).collect();
    let new = new_index;
    if strategy["type"] == "Recreate" {
        for (i, t) in targets.iter_mut().enumerate() {
            if i != new {
                *t = 0;
            }
        }
        let old_running: i64 = (0..sets.len())
            .filter(|i| *i != new)
            .map(|i| sets[i].replicas)
            .sum();
        if old_running == 0 {
            targets[new] = replicas;
        }
    } else {
        let rolling = &strategy["rollingUpdate"];
        let surge = scaled(&rolling["maxSurge"], replicas, true);
        let mut unavailable = scaled(&rolling["maxUnavailable"], replicas, false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        if targets[new] > replicas {
            targets[new] = replicas;
        } else if targets[new] < replicas {
            let current: i64 = targets.iter().sum();
            let room = replicas + surge - current;
            if room > 0 {
                targets[new] += room.min(replicas - targets[new]);
            }
        }
        let all: i64 = targets.iter().sum();
        let min_available = replicas - unavailable;
        let new_unavailable = targets[new] - sets[new].available;
        let mut budget = all - min_available - new_unavailable;
        // Old replicas that are not available go first, then available ones as far as
        // the minimum availability allows.
        for i in (0..sets.len()).filter(|i| *i != new) {
            let unhealthy = (targets[i] - sets[i].available).max(0);
            let down = unhealthy.min(budget.max(0));
            targets[i] -= down;
            budget -= down;
        }
        let available: i64 = sets.iter().map(|s| s.available).sum();
        let mut can_remove = (available - min_available).max(0).min(budget.max(0));
        for i in (0..sets.len()).filter(|i| *i != new) {
            let down = targets[i].min(can_remove);
            targets[i] -= down;
            can_remove -= down;
        }
    }
    let mut progressed = created;
    for (set, target) in sets.iter_mut().zip(&targets) {
        if set.spec == *target {
            continue;
        }
        let patch = json!({
            "metadata": {"annotations": {
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
            }},
            "spec": {"replicas": target},
        });
        retry(|| async {
            rs_api
                .patch(&set.name, &params(), &Patch::Merge(&patch))
                .await
        })
        .await?;
        let verb = if *target > set.spec { "up" } else { "down" };
        ctx.deployments.normal(
            &me,
            "ScalingReplicaSet",
            &format!(
                "Scaled {verb} replica set {} from {} to {target}",
                set.name, set.spec
            ),
        );
        set.spec = *target;
        progressed = true;
    }

    // Status, as calculateStatus and the progress/availability conditions have it.
    let sum = |f: fn(&Set) -> i64| sets.iter().map(f).sum::<i64>();
    let total_spec = sum(|s| s.spec);
    let available = sum(|s| s.available);
    let new_set = &sets[new];
    let previous = serde_json::to_value(&deployment.status).unwrap_or(Value::Null);
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let counts_moved = int(&previous["updatedReplicas"]) != new_set.replicas
        || int(&previous["availableReplicas"]) != available
        || int(&previous["readyReplicas"]) != sum(|s| s.ready)
        || int(&previous["replicas"]) != sum(|s| s.replicas);
    let rolling = &spec["strategy"]["rollingUpdate"];
    let max_unavailable = if spec["strategy"]["type"] == "Recreate" {
        0
    } else {
        scaled(&rolling["maxUnavailable"], replicas, false)
    };
    let mut conditions = Conditions::of(&previous);
    let stamp = || json!({"lastUpdateTime": now().to_string()});
    if available >= replicas - max_unavailable {
        conditions.set(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            stamp(),
        );
    } else {
        conditions.set(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            stamp(),
        );
    }
    let complete = new_set.replicas == replicas
        && new_set.available == replicas
        && sum(|s| s.replicas) == replicas;
    let progressing = find_condition(&previous, "Progressing").cloned();
    let deadline = spec["progressDeadlineSeconds"].as_i64().unwrap_or(600);
    let mut requeue = None;
    if complete {
        let message = format!("ReplicaSet {new_name:?} has successfully progressed.");
        let keep = progressing
            .as_ref()
            .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable" && c["message"] == message);
        if !keep {
            conditions.set(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &message,
                stamp(),
            );
        }
    } else if created {
        let message = format!("Created new replica set {new_name:?}");
        conditions.set(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            &message,
            stamp(),
        );
        requeue = Some(Duration::from_secs(deadline as u64));
    } else if progressed || counts_moved || progressing.is_none() {
        let message = format!("ReplicaSet {new_name:?} is progressing.");
        conditions.set(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &message,
            stamp(),
        );
        requeue = Some(Duration::from_secs(deadline as u64));
    } else if let Some(condition) = &progressing
        && condition["reason"] != "ProgressDeadlineExceeded"
    {
        let last: Option<Timestamp> = condition["lastUpdateTime"]
            .as_str()
            .and_then(|t| t.parse().ok());
        let waited = last.map_or(0, |t| now().as_second() - t.as_second());
        if waited >= deadline {
            let message = format!("ReplicaSet {new_name:?} has timed out progressing.");
            conditions.set(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &message,
                stamp(),
            );
            ctx.deployments.warning(
                &me,
                "ProgressDeadlineExceeded",
                &format!("Deployment {name:?} has timed out progressing."),
            );
        } else {
            requeue =
                Some(Duration::from_secs((deadline - waited) as u64) + Duration::from_millis(50));
        }
    }
    match sets.iter().find_map(|s| s.failure.clone()) {
        Some(failure) => conditions.set(
            "ReplicaFailure",
            "True",
            failure["reason"].as_str().unwrap_or("FailedCreate"),
            failure["message"].as_str().unwrap_or_default(),
            stamp(),
        ),
        None => conditions.remove("ReplicaFailure"),
    }
    let mut status = json!({
        "observedGeneration": deployment.metadata.generation,
        "replicas": sum(|s| s.replicas),
        "updatedReplicas": new_set.replicas,
        "readyReplicas": sum(|s| s.ready),
        "availableReplicas": available,
        "unavailableReplicas": (total_spec - available).max(0),
        "conditions": conditions.to_json(),
    });
    for field in [
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "updatedReplicas",
    ] {
        if status[field] == 0 {
            status[field] = Value::Null;
        }
    }
    if !same_status(&previous, &status) {
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &namespace);
        if let Err(e) = write_status(&api, &name, status).await {
            report(
                MANAGER,
                &key(deployment.as_ref()),
                "writing Deployment status",
                &e,
            );
            return Err(e);
        }
    }
    Ok(match requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Whether a Deployment status write would change anything but timestamps.
fn same_status(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        for c in v["conditions"].as_array_mut().into_iter().flatten() {
            if let Some(c) = c.as_object_mut() {
                c.remove("lastUpdateTime");
                c.remove("lastTransitionTime");
            }
        }
        v
    };
    let (old, new) = (strip(old), strip(new));
    same_fields(&old, &new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_look_like_replica_set_suffixes() {
        let template = json!({"spec": {"containers": [{"name": "polls", "image": "polls:1"}]}});
        let a = template_hash(&template);
        assert_eq!(a.len(), 10);
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(a, template_hash(&template.clone()));
        let other = json!({"spec": {"containers": [{"name": "polls", "image": "polls:2"}]}});
        assert_ne!(a, template_hash(&other));
    }

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        assert_eq!(scaled(&json!("25%"), 2, true), 1);
        assert_eq!(scaled(&json!("25%"), 2, false), 0);
        assert_eq!(scaled(&json!("50%"), 4, false), 2);
        assert_eq!(scaled(&json!(3), 4, false), 3);
    }

    #[test]
    fn zero_counts_are_absent_ones() {
        let old = json!({"replicas": 2, "readyReplicas": null});
        assert!(same_fields(
            &old,
            &json!({"replicas": 2, "readyReplicas": 0})
        ));
        assert!(!same_fields(&old, &json!({"replicas": 3})));
    }
}

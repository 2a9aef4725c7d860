//! The parts of kube-controller-manager that tools wait on, without running any pod:
//! a Deployment's rollout (progressing at once, available after `--deploy-delay`, as
//! `kubectl rollout status` reads it) and a Job's completion after the same delay.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use super::support::{Change, Conditions, change, key, now, report, retry, spawn_watch};

const MANAGER: &str = "kube-controller-manager";

pub(crate) fn spawn(client: &Client, delay: Duration) {
    let deployments = Arc::new(Delayed::default());
    let api = Api::<Deployment>::all(client.clone());
    let client_for_deployments = client.clone();
    spawn_watch(api, move |event| {
        let (work, client) = (deployments.clone(), client_for_deployments.clone());
        async move {
            match change(event) {
                Some(Change::Applied(deployment)) if !rolled_out(&deployment) => {
                    work.start(&deployment, move |d| roll_out(client, d, delay));
                }
                Some(Change::Applied(deployment)) => work.finished(&deployment),
                Some(Change::Deleted(deployment)) => work.forget(&deployment),
                None => {}
            }
        }
    });

    let jobs = Arc::new(Delayed::default());
    let client = client.clone();
    spawn_watch(Api::<Job>::all(client.clone()), move |event| {
        let (work, client) = (jobs.clone(), client.clone());
        async move {
            match change(event) {
                Some(Change::Applied(job)) if !finished(&job) && !suspended(&job) => {
                    work.start(&job, move |j| complete(client, j, delay));
                }
                Some(Change::Applied(job)) => work.finished(&job),
                Some(Change::Deleted(job)) => work.forget(&job),
                None => {}
            }
        }
    });
}

/// Delayed work per object generation: one task for the newest generation of each
/// object, so our own status writes (same generation) start nothing new.
#[derive(Default)]
struct Delayed {
    tasks: Mutex<HashMap<String, (String, i64, AbortHandle)>>,
}

impl Delayed {
    fn start<K, F, Fut>(&self, obj: &K, work: F)
    where
        K: Resource + Clone + Send + 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let uid = obj.uid().unwrap_or_default();
        let generation = obj.meta().generation.unwrap_or(1);
        let mut tasks = self.tasks.lock().expect("tasks lock");
        let key = key(obj);
        if let Some((old_uid, old_generation, task)) = tasks.get(&key) {
            if *old_uid == uid && *old_generation == generation {
                return;
            }
            task.abort();
        }
        let task = tokio::spawn(work(obj.clone())).abort_handle();
        tasks.insert(key, (uid, generation, task));
    }

    fn finished<K: Resource>(&self, obj: &K) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        if tasks
            .get(&key(obj))
            .is_some_and(|(_, _, task)| task.is_finished())
        {
            tasks.remove(&key(obj));
        }
    }

    fn forget<K: Resource>(&self, obj: &K) {
        if let Some((_, _, task)) = self.tasks.lock().expect("tasks lock").remove(&key(obj)) {
            task.abort();
        }
    }
}

fn desired_replicas(deployment: &Deployment) -> i32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

/// Whether the status already reports this generation fully available.
fn rolled_out(deployment: &Deployment) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    let replicas = desired_replicas(deployment);
    status.observed_generation == deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) == replicas
        && status.available_replicas.unwrap_or(0) == replicas
}

/// The pod-template-hash the ReplicaSet of this template would get (same alphabet).
fn template_hash(deployment: &Deployment) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let template =
        serde_json::to_string(&deployment.spec.as_ref().map(|s| &s.template)).unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    template.hash(&mut hasher);
    let mut n = hasher.finish();
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Status as the deployment controller writes it while the new ReplicaSet's pods start,
/// then once they are all available.
async fn roll_out(client: Client, deployment: Deployment, delay: Duration) {
    let api: Api<Deployment> = Api::namespaced(client, &deployment.namespace().unwrap_or_default());
    let name = deployment.name_any();
    let replicas = desired_replicas(&deployment);
    let replica_set = format!("{name}-{}", template_hash(&deployment));
    let previous = serde_json::to_value(&deployment.status).unwrap_or(Value::Null);
    // A rollout of a Deployment already up keeps the old pods available meanwhile.
    let was_available = previous["availableReplicas"].as_i64().unwrap_or(0) > 0;
    let generation = deployment.metadata.generation;
    let mut conditions = Conditions::of(&previous);
    let updated = || json!({ "lastUpdateTime": now().to_string() });

    if replicas > 0 {
        let mut status = json!({ "observedGeneration": generation, "replicas": replicas });
        if was_available {
            status["updatedReplicas"] = json!(0);
        } else {
            let message = "Deployment does not have minimum availability.";
            conditions.set(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                message,
                updated(),
            );
            status["updatedReplicas"] = json!(replicas);
            status["unavailableReplicas"] = json!(replicas);
        }
        let message = format!("ReplicaSet {replica_set:?} is progressing.");
        conditions.set(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &message,
            updated(),
        );
        status["conditions"] = conditions.to_json();
        if let Err(e) = write_status(&api, &name, status).await {
            return report(MANAGER, &key(&deployment), "writing Deployment status", &e);
        }
        tokio::time::sleep(delay).await;
    }

    let available = "Deployment has minimum availability.";
    conditions.set(
        "Available",
        "True",
        "MinimumReplicasAvailable",
        available,
        updated(),
    );
    let progressed = format!("ReplicaSet {replica_set:?} has successfully progressed.");
    conditions.set(
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        &progressed,
        updated(),
    );
    let status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "unavailableReplicas": null,
        "conditions": conditions.to_json(),
    });
    if let Err(e) = write_status(&api, &name, status).await {
        report(MANAGER, &key(&deployment), "writing Deployment status", &e);
    }
}

fn finished(job: &Job) -> bool {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

fn suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false)
}

/// Status as the job controller (1.31+) writes it: started with one active pod, then
/// succeeded with SuccessCriteriaMet and Complete.
async fn complete(client: Client, job: Job, delay: Duration) {
    let api: Api<Job> = Api::namespaced(client, &job.namespace().unwrap_or_default());
    let name = job.name_any();
    let started = job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.to_string());
    let start_time = started.unwrap_or_else(|| now().to_string());
    let running = json!({
        "startTime": start_time,
        "active": 1,
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    });
    if let Err(e) = write_status(&api, &name, running).await {
        return report(MANAGER, &key(&job), "writing Job status", &e);
    }
    tokio::time::sleep(delay).await;

    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(1);
    let message = "Reached expected number of succeeded pods";
    let probe = || json!({"lastProbeTime": now().to_string()});
    let mut conditions = Conditions::default();
    conditions.set(
        "SuccessCriteriaMet",
        "True",
        "CompletionsReached",
        message,
        probe(),
    );
    conditions.set("Complete", "True", "CompletionsReached", message, probe());
    let done = json!({
        "startTime": start_time,
        "completionTime": now().to_string(),
        "active": null,
        "ready": 0,
        "terminating": 0,
        "succeeded": completions,
        "uncountedTerminatedPods": {},
        "conditions": conditions.to_json(),
    });
    if let Err(e) = write_status(&api, &name, done).await {
        report(MANAGER, &key(&job), "writing Job status", &e);
    }
}

async fn write_status<K>(api: &Api<K>, name: &str, status: Value) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patch = json!({"status": status});
    retry(|| async { api.patch_status(name, &params, &Patch::Merge(&patch)).await }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, replicas: Option<i32>, status: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "polls", "namespace": "default", "generation": generation},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "polls"}},
                "template": {"metadata": {"labels": {"app": "polls"}}, "spec": {"containers": [{"name": "polls", "image": "polls:1"}]}},
            },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn rolled_out_needs_the_current_generation_available() {
        let done = json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert!(rolled_out(&deployment(2, Some(2), done.clone())));
        assert!(!rolled_out(&deployment(3, Some(2), done.clone())));
        assert!(!rolled_out(&deployment(2, Some(3), done)));
        assert!(!rolled_out(&deployment(1, None, Value::Null)));
    }

    #[test]
    fn template_hashes_look_like_replica_set_suffixes() {
        let a = template_hash(&deployment(1, None, Value::Null));
        assert_eq!(a.len(), 10);
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(a, template_hash(&deployment(5, Some(3), Value::Null)));
    }

    #[test]
    fn jobs_finish_once() {
        let job = |status: Value| -> Job {
            serde_json::from_value(json!({"metadata": {"name": "migrate"}, "status": status}))
                .unwrap()
        };
        assert!(!finished(&job(json!({"active": 1}))));
        assert!(finished(&job(
            json!({"conditions": [{"type": "Complete", "status": "True"}]})
        )));
        assert!(finished(&job(
            json!({"conditions": [{"type": "Failed", "status": "True"}]})
        )));
    }
}

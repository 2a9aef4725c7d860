//! The job controller: a Job runs a pod at a time until `completions` succeeded
//! (`SuccessCriteriaMet` + `Complete`), or until more than `backoffLimit` failed
//! (`FailureTarget` + `Failed`, reason `BackoffLimitExceeded`), as 1.31+ records it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::support::{Conditions, Recorder, controller_ref, now, object_ref, retry};
use super::workloads::{create_pod, is_ready, owned_pods, phase, write_status};

struct Ctx {
    client: Client,
    recorder: Recorder,
}

pub(crate) fn spawn(client: &Client) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), "job-controller"),
    });
    let jobs = Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(300)),
            ctx,
        )
        .for_each(|_| async {});
    tokio::spawn(jobs);
}

fn finished(status: &Value) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> kube::Result<Action> {
    // The cache can be behind our own last status write: decide on the stored Job,
    // so that a completion is written (and recorded) once.
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let Some(job) = retry(|| async { jobs.get_opt(&job.name_any()).await }).await? else {
        return Ok(Action::await_change());
    };
    let value = serde_json::to_value(&job).map_err(kube::Error::SerdeError)?;
    let (spec, previous) = (&value["spec"], &value["status"]);
    if finished(previous) || spec["suspend"] == true {
        return Ok(Action::await_change());
    }
    let namespace = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let selector = format!("batch.kubernetes.io/controller-uid={uid}");
    let me = object_ref("batch/v1", "Job", &job.metadata);
    let mut pods = owned_pods(&ctx.client, &namespace, &selector, &uid).await?;
    let count = |pods: &[Pod], p: &str| pods.iter().filter(|pod| phase(pod) == p).count() as i64;
    let int = |v: &Value, default: i64| v.as_i64().unwrap_or(default);
    let completions = int(&spec["completions"], 1);
    let backoff_limit = int(&spec["backoffLimit"], 6);
    let parallelism = int(&spec["parallelism"], 1);
    let (succeeded, failed) = (count(&pods, "Succeeded"), count(&pods, "Failed"));
    let start_time = previous["startTime"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| now().to_string());
    let mut conditions = Conditions::of(previous);
    let mut status = json!({
        "startTime": start_time,
        "succeeded": succeeded,
        "failed": failed,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    });
    let probe = || json!({"lastProbeTime": now().to_string()});
    if succeeded >= completions {
        let message = "Reached expected number of succeeded pods";
        conditions.set(
            "SuccessCriteriaMet",
            "True",
            "CompletionsReached",
            message,
            probe(),
        );
        conditions.set("Complete", "True", "CompletionsReached", message, probe());
        status["completionTime"] = json!(now().to_string());
        ctx.recorder.normal(&me, "Completed", "Job completed");
    } else if failed > backoff_limit {
        let message = "Job has reached the specified backoff limit";
        conditions.set(
            "FailureTarget",
            "True",
            "BackoffLimitExceeded",
            message,
            probe(),
        );
        conditions.set("Failed", "True", "BackoffLimitExceeded", message, probe());
        ctx.recorder.warning(&me, "BackoffLimitExceeded", message);
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        for pod in pods
            .iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
        {
            let pod_name = pod.name_any();
            let _ = retry(|| async { api.delete(&pod_name, &DeleteParams::default()).await }).await;
        }
        pods.retain(|p| matches!(phase(p), "Succeeded" | "Failed"));
    } else {
        let active = pods.len() as i64 - succeeded - failed;
        let want = parallelism.min(completions - succeeded);
        let owner = controller_ref(&me);
        for _ in active..want {
            let pod = create_pod(&ctx.client, &namespace, &name, &spec["template"], &owner).await?;
            ctx.recorder
                .normal(&me, "SuccessfulCreate", &format!("Created pod: {pod}"));
        }
        if active < want {
            pods = owned_pods(&ctx.client, &namespace, &selector, &uid).await?;
        }
    }
    let active: Vec<&Pod> = pods
        .iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    status["active"] = json!(active.len());
    status["ready"] = json!(active.iter().filter(|p| is_ready(p)).count());
    status["conditions"] = conditions.to_json();
    for field in ["active", "succeeded", "failed"] {
        if status[field] == 0 {
            status[field] = Value::Null;
        }
    }
    if status["conditions"] == json!([]) {
        status["conditions"] = Value::Null;
    }
    let unchanged = status.as_object().is_some_and(|fields| {
        fields
            .iter()
            .all(|(k, v)| previous.get(k).unwrap_or(&Value::Null) == v)
    });
    if !unchanged {
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
        write_status(&api, &name, status).await?;
    }
    Ok(Action::await_change())
}

//! `--wait`: after applying, watch every applied object until it is ready
//! ([`crate::ready`]), has failed, or the deadline passes. One watch per object (a
//! field selector on its name) and, for workloads, one on their pods, whose containers
//! tell a rollout that cannot succeed (an image that cannot be pulled, a crash loop, a
//! missing Secret) long before its progress deadline does.

use crate::ready::{self, State};
use crate::report::kubectl_name;
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use kpipe_core::ObjectId;
use kpipe_core::api;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use serde_json::Value;
use std::collections::HashMap;
use tokio::time::Instant;

/// An applied object to wait for.
pub struct Watched {
    pub id: ObjectId,
    pub resource: ApiResource,
    /// The object as the apply returned it, then as last seen.
    pub live: Value,
    pub state: State,
}

impl Watched {
    pub fn new(id: ObjectId, resource: ApiResource, mut live: Value) -> Watched {
        live["apiVersion"] = resource.api_version.clone().into();
        live["kind"] = resource.kind.clone().into();
        let state = ready::assess(&live);
        Watched {
            id,
            resource,
            live,
            state,
        }
    }

    pub fn name(&self) -> String {
        kubectl_name(&self.id)
    }
}

/// Container states a kubelet stays in until something changes: waiting longer
/// fails nothing but time.
const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

pub fn pods_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods")
}

/// `matchLabels` of a workload's selector as a label selector, for its pods.
pub fn pod_selector(workload: &Value) -> Option<String> {
    if !matches!(
        workload["kind"].as_str(),
        Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job")
    ) {
        return None;
    }
    let labels = workload["spec"]["selector"]["matchLabels"].as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// What makes a pod one of the current template's: its containers run what the
/// template says (image and environment; old pods of a rollout differ there).
/// Containers that admission added (sidecars) are not compared.
fn of_template(template: &Value, pod: &Value) -> bool {
    let wanted = template["spec"]["containers"].as_array();
    let running = pod["spec"]["containers"].as_array();
    let (Some(wanted), Some(running)) = (wanted, running) else {
        return false;
    };
    wanted.iter().all(|w| {
        running.iter().any(|r| {
            ["name", "image", "env", "envFrom"]
                .iter()
                .all(|f| w.get(*f) == r.get(*f))
        })
    })
}

/// The first stuck container of a pod of the workload's current template, as
/// `pod/NAME: container C: REASON`.
fn stuck(workload: &Value, pods: &HashMap<String, Value>) -> Option<String> {
    let template = &workload["spec"]["template"];
    let mut names: Vec<&String> = pods.keys().collect();
    names.sort();
    for name in names {
        let pod = &pods[name];
        if !of_template(template, pod) {
            continue;
        }
        for status in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let reason = status["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or_default();
            if STUCK.contains(&reason) {
                return Some(format!(
                    "pod/{name}: container {}: {reason}",
                    status["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    None
}

/// Which watch an event came from.
#[derive(Clone, Copy)]
enum Source {
    Object(usize),
    Pods(usize),
}

type Events = BoxStream<'static, (Source, watcher::Result<Event<DynamicObject>>)>;

/// How the wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    AllReady,
    SomeFailed,
    TimedOut,
    /// SIGINT/SIGTERM stopped the wait.
    Interrupted,
}

/// Waits until every object is ready or failed, or until `deadline`; reports each
/// change of state on stderr. The objects keep their last state and live object.
pub async fn wait(
    client: &kube::Client,
    objects: &mut [Watched],
    deadline: Option<Instant>,
    progress: &mut Progress,
) -> End {
    let mut streams: SelectAll<Events> = SelectAll::new();
    let mut pods: Vec<HashMap<String, Value>> = vec![HashMap::new(); objects.len()];
    for (index, object) in objects.iter().enumerate() {
        progress.show(&object.name(), &object.state);
        if object.state.is_done() {
            continue;
        }
        let namespace = object.id.namespace.as_deref();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &object.resource),
            None => Api::all_with(client.clone(), &object.resource),
        };
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", object.id.name));
        streams.push(
            watcher(api, config)
                .backoff(api::watch_backoff())
                .map(move |e| (Source::Object(index), e))
                .boxed(),
        );
        if let (Some(selector), Some(ns)) = (pod_selector(&object.live), namespace) {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &pods_resource());
            let config = watcher::Config::default().labels(&selector);
            streams.push(
                watcher(api, config)
                    .backoff(api::watch_backoff())
                    .map(move |e| (Source::Pods(index), e))
                    .boxed(),
            );
        }
    }
    let all_done = |objects: &[Watched]| objects.iter().all(|o| o.state.is_done());
    while !all_done(objects) {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, streams.next()).await {
                Ok(next) => next,
                Err(_) => return End::TimedOut,
            },
            None => streams.next().await,
        };
        let Some((source, event)) = next else { break };
        let index = match source {
            Source::Object(i) | Source::Pods(i) => i,
        };
        // Failures that time will not cure (not allowed to watch, a type not served)
        // end the wait now rather than at the deadline; the others are retried by the
        // watcher itself, with the backoff of every request.
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                if let Some((verb, e)) = api::fatal_watch_failure(&e) {
                    let resource = match source {
                        Source::Object(_) => &objects[index].resource,
                        Source::Pods(_) => &pods_resource(),
                    };
                    let namespace = objects[index].id.namespace.clone();
                    let why = api::cannot(verb, &plural(resource), namespace.as_deref(), e);
                    let state = State::Failed(why);
                    progress.show(&objects[index].name(), &state);
                    objects[index].state = state;
                    return End::SomeFailed;
                }
                continue;
            }
        };
        if objects[index].state.is_done() {
            continue;
        }
        let pods_of = &mut pods[index];
        match (source, event) {
            (Source::Object(_), Event::Apply(obj) | Event::InitApply(obj)) => {
                let mut live = serde_json::to_value(&obj).unwrap_or(Value::Null);
                live["apiVersion"] = objects[index].resource.api_version.clone().into();
                live["kind"] = objects[index].resource.kind.clone().into();
                objects[index].live = live;
            }
            (Source::Object(_), Event::Delete(_)) => {
                let state = State::Failed("deleted while waiting".into());
                progress.show(&objects[index].name(), &state);
                objects[index].state = state;
                continue;
            }
            (Source::Pods(_), Event::Init) => pods_of.clear(),
            (Source::Pods(_), Event::Apply(pod) | Event::InitApply(pod)) => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                pods_of.insert(name, serde_json::to_value(&pod).unwrap_or(Value::Null));
            }
            (Source::Pods(_), Event::Delete(pod)) => {
                pods_of.remove(pod.metadata.name.as_deref().unwrap_or_default());
            }
            _ => continue,
        }
        let object = &mut objects[index];
        let mut state = ready::assess(&object.live);
        if let State::Waiting(_) = state
            && let Some(why) = stuck(&object.live, pods_of)
        {
            state = State::Failed(why);
        }
        if state != object.state {
            progress.show(&object.name(), &state);
            object.state = state;
        }
    }
    if objects.iter().all(|o| matches!(o.state, State::Ready(_))) {
        End::AllReady
    } else {
        End::SomeFailed
    }
}

/// `deployments.apps`, `pods`: a resource as RBAC and kubectl name it.
fn plural(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// Progress on stderr: a line per change of an object's state, with the time since
/// the wait began; on a terminal also a spinner per object still waited for.
pub struct Progress(kpipe_core::progress::Progress);

impl Progress {
    pub fn new() -> Progress {
        Progress(kpipe_core::progress::Progress::new(
            "kapply",
            std::time::Instant::now(),
            true,
        ))
    }

    fn show(&mut self, name: &str, state: &State) {
        let word = match state {
            State::Waiting(_) => "waiting",
            State::Ready(_) => "ready",
            State::Failed(_) => "failed",
        };
        self.0.line(&format!("{name}: {word}: {}", state.text()));
        if state.is_done() {
            self.0.stop(name);
        } else {
            self.0.spin(name, &format!("{name}: {}", state.text()));
        }
    }

    /// Stops the spinners, so that a diagnosis is printed on a clean terminal.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Lists with a label selector, for the diagnosis.
pub async fn list(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: &str,
    params: &kube::api::ListParams,
) -> kube::Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    let list = api.list(params).await?;
    Ok(list
        .items
        .into_iter()
        .map(|o| {
            let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
            v["apiVersion"] = resource.api_version.clone().into();
            v["kind"] = resource.kind.clone().into();
            v
        })
        .collect())
}

//! What every simulated controller needs, done the way client-go controllers do it:
//! a watch that re-lists on its own, writes retried on transient errors, status
//! conditions that keep their lastTransitionTime, and Events for `kubectl describe`.

use kpipe_core::api::{RetryPolicy, Stopped};
use std::fmt::Debug;
use std::future::Future;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Now, to the second: Kubernetes timestamps carry no fraction.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).expect("the clock is within jiff's range")
}

/// Watches every object of `api`'s kind and hands each change to `handle`, one at a
/// time. The watch re-lists after a 410 and backs off on errors, so this never ends.
pub(crate) fn spawn_watch<K, F, Fut>(api: Api<K>, mut handle: F)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: FnMut(watcher::Event<K>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let events = watcher(api, watcher::Config::default()).default_backoff();
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if let Ok(event) = event {
                handle(event).await;
            }
        }
    });
}

/// `namespace/name`, how controllers key their work and name objects in messages.
pub(crate) fn key<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// The object a watch event is about, when it is about one that exists.
pub(crate) enum Change<K> {
    Applied(K),
    Deleted(K),
}

pub(crate) fn change<K>(event: watcher::Event<K>) -> Option<Change<K>> {
    match event {
        watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => Some(Change::Applied(obj)),
        watcher::Event::Delete(obj) => Some(Change::Deleted(obj)),
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// Runs `op` until it succeeds or fails for good, under kpipe's one retry policy (the
/// tools' own: throttling, server errors and broken connections are tried again).
pub(crate) async fn retry<T, F, Fut>(op: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
{
    match kpipe_core::api::retry(&RetryPolicy::default(), None, &|_, _, _| {}, op).await {
        Ok(value) => Ok(value),
        Err(Stopped::Failed(e)) => Err(e),
        Err(Stopped::OutOfTime) => unreachable!("no deadline was given"),
    }
}

/// A 409 AlreadyExists: someone (an earlier run of this controller) made it already.
pub(crate) fn already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// An object's status conditions, kept the way the API conventions say:
/// `lastTransitionTime` moves only when a condition's `status` does. Every condition
/// set also gets `extra`, the kind-specific fields (observedGeneration, lastUpdateTime).
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    list: Vec<Value>,
}

impl Conditions {
    /// The conditions already in `status`, to be updated and written back whole.
    pub(crate) fn of(status: &Value) -> Self {
        Conditions {
            list: status["conditions"].as_array().cloned().unwrap_or_default(),
        }
    }

    pub(crate) fn set(
        &mut self,
        kind: &str,
        status: &str,
        reason: &str,
        message: &str,
        extra: Value,
    ) {
        self.set_at(now(), kind, status, reason, message, extra);
    }

    fn set_at(
        &mut self,
        at: Timestamp,
        kind: &str,
        status: &str,
        reason: &str,
        message: &str,
        extra: Value,
    ) {
        let previous = self.list.iter().position(|c| c["type"] == kind);
        let transition = previous
            .map(|i| &self.list[i])
            .filter(|c| c["status"] == status)
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(at.to_string()));
        let mut condition = json!({
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": transition,
        });
        if let (Value::Object(fields), Value::Object(more)) = (&mut condition, extra) {
            fields.extend(more);
        }
        match previous {
            Some(i) => self.list[i] = condition,
            None => self.list.push(condition),
        }
    }

    pub(crate) fn remove(&mut self, kind: &str) {
        self.list.retain(|c| c["type"] != kind);
    }

    pub(crate) fn to_json(&self) -> Value {
        Value::Array(self.list.clone())
    }
}

pub(crate) fn find_condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// The reference an Event or an ownerReference needs, from an object's metadata.
pub(crate) fn object_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// `ownerReferences` entry making `owner` the controller of the object it is put on.
pub(crate) fn controller_ref(owner: &ObjectReference) -> Value {
    json!({
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `meta`'s controller is the object with `uid`.
pub(crate) fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// Deletes the objects of `api` controlled by any of `owners`, except those named in
/// `keep`, and returns the uids of those deleted: the garbage collector's work, which
/// no one else does in this simulation.
pub(crate) async fn delete_controlled<K>(
    api: &Api<K>,
    owners: &[String],
    keep: &[&str],
) -> kube::Result<Vec<String>>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut deleted = Vec::new();
    let objects = retry(|| async { api.list(&ListParams::default()).await }).await?;
    for object in objects.items {
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        if !owners.iter().any(|uid| is_controlled_by(meta, uid)) || keep.contains(&name.as_str()) {
            continue;
        }
        match retry(|| async { api.delete(&name, &DeleteParams::background()).await }).await {
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            result => {
                result?;
            }
        }
        deleted.extend(meta.uid.clone());
    }
    Ok(deleted)
}

/// Records Events as one controller, like client-go's EventRecorder: in the background,
/// so that the work being reported on is never slowed down by it.
#[derive(Clone)]
pub(crate) struct Recorder {
    client: Client,
    component: &'static str,
}

impl Recorder {
    pub(crate) fn new(client: Client, component: &'static str) -> Self {
        Recorder { client, component }
    }

    pub(crate) fn normal(&self, about: &ObjectReference, reason: &str, message: &str) {
        self.record(about, "Normal", reason, message);
    }

    pub(crate) fn warning(&self, about: &ObjectReference, reason: &str, message: &str) {
        self.record(about, "Warning", reason, message);
    }

    fn record(&self, about: &ObjectReference, kind: &str, reason: &str, message: &str) {
        let namespace = about
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let at = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                // client-go's naming: the object's name and the time in hex nanoseconds.
                name: Some(format!(
                    "{}.{:x}",
                    about.name.as_deref().unwrap_or_default(),
                    at.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: about.clone(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(kind.to_owned()),
            source: Some(EventSource {
                component: Some(self.component.to_owned()),
                host: None,
            }),
            first_timestamp: Some(Time(now())),
            last_timestamp: Some(Time(now())),
            count: Some(1),
            reporting_component: Some(self.component.to_owned()),
            reporting_instance: Some(format!("{}-kubesim", self.component)),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let params = PostParams {
            field_manager: Some(self.component.to_owned()),
            ..PostParams::default()
        };
        tokio::spawn(async move {
            // An Event lost is a line missing from `kubectl describe`, nothing more.
            let _ = retry(|| async { events.create(&params, &event).await }).await;
        });
    }
}

/// A line on kubesim's stderr about a controller's failed step.
pub(crate) fn report(component: &str, object: &str, what: &str, error: &dyn std::fmt::Display) {
    eprintln!("kubesim: {component}: {object}: {what}: {error}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let mut conditions = Conditions::default();
        let t1 = at("2026-11-24T17:49:10Z");
        let t2 = at("2026-11-24T17:49:12Z");
        let gen1 = json!({"observedGeneration": 1});
        conditions.set_at(t1, "Ready", "False", "DoesNotExist", "a", gen1.clone());
        conditions.set_at(t2, "Ready", "False", "Pending", "b", gen1.clone());
        let list = conditions.to_json();
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["lastTransitionTime"], "2026-11-24T17:49:10Z");
        assert_eq!(list[0]["reason"], "Pending");
        assert_eq!(list[0]["observedGeneration"], 1);

        conditions.set_at(t2, "Ready", "True", "Ready", "c", gen1);
        conditions.set_at(t2, "Issuing", "True", "x", "y", json!({}));
        let list = conditions.to_json();
        assert_eq!(list[0]["lastTransitionTime"], "2026-11-24T17:49:12Z");
        assert_eq!(list[1]["type"], "Issuing");
        assert!(list[1].get("observedGeneration").is_none());
        conditions.remove("Ready");
        assert_eq!(conditions.to_json()[0]["type"], "Issuing");
    }

    #[test]
    fn finds_conditions_by_type() {
        let status = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        assert_eq!(find_condition(&status, "Ready").unwrap()["status"], "True");
        assert!(find_condition(&status, "Issuing").is_none());
        assert!(find_condition(&Value::Null, "Ready").is_none());
        assert_eq!(Conditions::of(&status).to_json(), status["conditions"]);
    }

    #[test]
    fn controller_ownership_is_by_uid() {
        let owner = ObjectReference {
            api_version: Some("networking.k8s.io/v1".into()),
            kind: Some("Ingress".into()),
            name: Some("polls-ingress".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        };
        let reference = controller_ref(&owner);
        let meta: ObjectMeta =
            serde_json::from_value(json!({"ownerReferences": [reference]})).unwrap();
        assert!(is_controlled_by(&meta, "u-1"));
        assert!(!is_controlled_by(&meta, "u-2"));
        assert!(!is_controlled_by(&ObjectMeta::default(), "u-1"));
    }
}

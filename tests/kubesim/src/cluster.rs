//! The API semantics: verbs on resources, server-side apply with managedFields,
//! status subresources, resourceVersion and generation rules. HTTP lives in
//! [`crate::server`]; this module is what the server does with a request.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::fields::{self, FieldSet};
use crate::kinds::{self, ResourceType};
use crate::rules;
use crate::select::Selector;
use crate::status::{self, ApiError};
use crate::store::{Event, Key, Store, WatchStart};

/// `limit` and `continue` of a list request.
#[derive(Debug, Default)]
pub struct Page {
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// The key a continue token (base64 of `[namespace, name]`) says to start after.
fn continue_key(t: &Target, token: &str) -> Result<Key, ApiError> {
    let invalid = || ApiError::bad_request("continue key is not valid");
    let bytes = STANDARD.decode(token).map_err(|_| invalid())?;
    let [namespace, name]: [String; 2] = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(Key {
        group: t.rt.group.clone(),
        plural: t.rt.plural.clone(),
        namespace,
        name,
    })
}

/// What a request addresses: a resource type, maybe a namespace, name and subresource.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    fn status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }

    fn key(&self, name: &str) -> Key {
        Key {
            group: self.rt.group.clone(),
            plural: self.rt.plural.clone(),
            namespace: if self.rt.namespaced {
                self.namespace.clone().unwrap_or_default()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

/// Who writes and how (query parameters of a write).
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `?fieldManager=`; None when the client sent none.
    pub field_manager: Option<String>,
    /// The manager recorded when none is given: from the User-Agent, as the server does.
    pub default_manager: String,
    pub force: bool,
    pub dry_run: bool,
}

impl WriteOptions {
    fn manager(&self) -> String {
        self.field_manager
            .clone()
            .unwrap_or_else(|| self.default_manager.clone())
    }
}

/// How a deletion treats the objects whose ownerReferences name the deleted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    /// `propagationPolicy` as DeleteOptions spell it.
    pub fn parse(text: &str) -> Result<Propagation, ApiError> {
        match text {
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            "Orphan" => Ok(Propagation::Orphan),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }

    /// What the server does without a policy: batch/v1 Jobs (and ReplicationControllers)
    /// keep the old orphaning default, which is why kubectl always sends Background.
    fn default_for(rt: &ResourceType) -> Propagation {
        let legacy = !rt.custom
            && ((rt.group == "batch" && rt.plural == "jobs")
                || (rt.group.is_empty() && rt.plural == "replicationcontrollers"));
        if legacy {
            Propagation::Orphan
        } else {
            Propagation::Background
        }
    }

    fn finalizer(self) -> Option<&'static str> {
        match self {
            Propagation::Background => None,
            Propagation::Foreground => Some("foregroundDeletion"),
            Propagation::Orphan => Some("orphan"),
        }
    }
}

/// Work a deletion leaves to the garbage collector.
#[derive(Debug, Clone)]
pub struct Garbage {
    /// The deleted owner (still stored, with a finalizer, unless Background).
    key: Key,
    uid: String,
    policy: Propagation,
}

impl std::fmt::Display for Garbage {
    /// `PLURAL[.GROUP] NAMESPACE/NAME (POLICY)`: the owner whose deletion left the work.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Key {
            group,
            plural,
            namespace,
            name,
        } = &self.key;
        let resource = if group.is_empty() {
            plural.clone()
        } else {
            format!("{plural}.{group}")
        };
        let at = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        write!(f, "{resource} {at} ({:?})", self.policy)
    }
}

/// The body of a PATCH, by content type.
pub enum Patch {
    Apply(Value),
    Merge(Value),
    Json(json_patch::Patch),
    Strategic(Value),
}

/// The simulated cluster state: the store behind one lock.
pub struct Cluster {
    store: Mutex<Store>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj["metadata"][field].as_str()
}

impl Cluster {
    /// A cluster with the namespaces every cluster has.
    pub fn new() -> Cluster {
        let cluster = Cluster {
            store: Mutex::new(Store::new()),
        };
        let namespaces = kinds::builtins()
            .into_iter()
            .find(|t| t.plural == "namespaces")
            .expect("built in");
        for ns in ["default", "kube-system", "kube-public"] {
            let target = Target {
                rt: namespaces.clone(),
                namespace: None,
                name: None,
                subresource: None,
            };
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let opts = WriteOptions {
                default_manager: "kube-apiserver".into(),
                ..Default::default()
            };
            cluster
                .create(&target, body, &opts)
                .expect("bootstrap namespaces are valid");
        }
        cluster.lock().compact();
        cluster
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Built-in types plus those of every stored CustomResourceDefinition.
    pub fn types(&self) -> Vec<ResourceType> {
        let store = self.lock();
        let mut types = kinds::builtins();
        for crd in store.list("apiextensions.k8s.io", "customresourcedefinitions", None) {
            types.extend(kinds::from_crd(crd));
        }
        types
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types()
            .into_iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The CustomResourceDefinition that serves a custom resource type.
    pub fn definition(&self, rt: &ResourceType) -> Option<Value> {
        if !rt.custom {
            return None;
        }
        let key = Key {
            group: "apiextensions.k8s.io".into(),
            plural: "customresourcedefinitions".into(),
            namespace: String::new(),
            name: format!("{}.{}", rt.plural, rt.group),
        };
        self.lock().get(&key).cloned()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version()
    }

    /// The labels of a namespace (null when it has none or does not exist).
    pub fn namespace_labels(&self, ns: &str) -> Value {
        let key = Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.into(),
        };
        self.lock()
            .get(&key)
            .map(|n| n["metadata"]["labels"].clone())
            .unwrap_or_default()
    }

    pub fn get(&self, t: &Target) -> Result<Value, ApiError> {
        let name = t.name.as_deref().unwrap_or_default();
        let store = self.lock();
        store
            .get(&t.key(name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&t.rt, name))
    }

    /// GET .../scale: the autoscaling/v1 Scale view of a Deployment.
    pub fn get_scale(&self, t: &Target) -> Result<Value, ApiError> {
        Ok(scale_of(&self.get(t)?))
    }

    /// PUT or PATCH .../scale: `change` turns the current Scale into the wanted one;
    /// its spec.replicas goes to the Deployment.
    pub fn set_scale(
        &self,
        t: &Target,
        change: impl FnOnce(Value) -> Result<Value, ApiError>,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let name = t.name.clone().unwrap_or_default();
        let mut store = self.lock();
        let key = t.key(&name);
        let Some(old) = store.get(&key).cloned() else {
            return Err(ApiError::not_found(&t.rt, &name));
        };
        let wanted = change(scale_of(&old))?;
        let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
            return Err(ApiError::bad_request(
                "spec.replicas of the Scale must be an integer",
            ));
        };
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        let (code, stored) = self.write_update(&mut store, t, &key, old, new, opts)?;
        Ok((code, scale_of(&stored)))
    }

    /// A list, or with `page.limit` one page of it whose `metadata.continue` names
    /// where the next one starts, as the real server pages.
    pub fn list(&self, t: &Target, selector: &Selector, page: &Page) -> Result<Value, ApiError> {
        let store = self.lock();
        let ns = if t.rt.namespaced {
            t.namespace.as_deref()
        } else {
            None
        };
        let after = page
            .continue_token
            .as_deref()
            .map(|token| continue_key(t, token))
            .transpose()?;
        let mut matching = store
            .entries(&t.rt.group, &t.rt.plural, ns, after.as_ref())
            .filter(|(_, o)| selector.matches(o));
        let mut items = Vec::new();
        let mut last = None;
        for (key, object) in matching.by_ref().take(page.limit.unwrap_or(usize::MAX)) {
            items.push(object.clone());
            last = Some(key);
        }
        let more = matching.next().is_some();
        // Items moved in as they are: json! would copy every one of them again.
        let mut list = json!({
            "kind": t.rt.list_kind,
            "apiVersion": t.rt.api_version(),
            "metadata": {"resourceVersion": store.resource_version().to_string()},
        });
        if let Some(key) = last.filter(|_| more) {
            let token =
                serde_json::to_vec(&[&key.namespace, &key.name]).expect("strings serialize");
            list["metadata"]["continue"] = json!(STANDARD.encode(token));
        }
        list["items"] = Value::Array(items);
        Ok(list)
    }

    /// The current resourceVersion and a watch's start: the changes after `rv` (or,
    /// without one, every object of the target's resource as ADDED) and a receiver
    /// for what follows. Err(oldest known resourceVersion) when `rv` is too old.
    pub fn watch(&self, t: &Target, rv: Option<u64>) -> Result<(u64, WatchStart), u64> {
        let store = self.lock();
        let current = store.resource_version();
        match rv {
            Some(rv) => store.watch_from(rv).map(|start| (current, start)),
            None => {
                let ns = if t.rt.namespaced {
                    t.namespace.as_deref()
                } else {
                    None
                };
                let existing = store
                    .entries(&t.rt.group, &t.rt.plural, ns, None)
                    .map(|(key, object)| (key.clone(), object.clone()))
                    .map(|(key, object)| {
                        let rv = object["metadata"]["resourceVersion"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        Arc::new(Event {
                            rv,
                            kind: "ADDED",
                            key,
                            object,
                            previous: None,
                        })
                    })
                    .collect();
                Ok((current, (existing, store.subscribe())))
            }
        }
    }

    pub fn create(
        &self,
        t: &Target,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        check_kind(&t.rt, &body)?;
        rules::check_string_values(&t.rt, &body, false)?;
        let name = match meta_str(&body, "name") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta_str(&body, "generateName") {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &t.rt,
                        "",
                        vec![status::Cause {
                            reason: "FieldValueRequired",
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            },
        };
        body["metadata"]["name"] = json!(name);
        let mut store = self.lock();
        self.check_namespace(&store, t, &body)?;
        let key = t.key(&name);
        if store.get(&key).is_some() {
            return Err(ApiError::already_exists(&t.rt, &name));
        }
        let mut object = prepare_main(&t.rt, None, body);
        let tracked = tracked(&t.rt, &object, false);
        let managed = update_managers(
            &[],
            &Value::Null,
            &tracked,
            &Value::Null,
            &opts.manager(),
            &t.rt.api_version(),
            None,
        );
        set_managed(&mut object, managed);
        commit(&mut store, t, &key, None, object, opts.dry_run)
    }

    pub fn update(
        &self,
        t: &Target,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        check_kind(&t.rt, &body)?;
        rules::check_string_values(&t.rt, &body, false)?;
        let name = t.name.clone().unwrap_or_default();
        check_name(&body, &name)?;
        let mut store = self.lock();
        let key = t.key(&name);
        let Some(old) = store.get(&key).cloned() else {
            return Err(ApiError::not_found(&t.rt, &name));
        };
        if let Some(rv) = meta_str(&body, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(&t.rt, &name));
        }
        self.write_update(&mut store, t, &key, old, body, opts)
    }

    pub fn patch(
        &self,
        t: &Target,
        patch: Patch,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let name = t.name.clone().unwrap_or_default();
        let mut store = self.lock();
        let key = t.key(&name);
        let old = store.get(&key).cloned();
        match patch {
            Patch::Apply(applied) => {
                let Some(manager) = opts.field_manager.clone().filter(|m| !m.is_empty()) else {
                    return Err(ApiError::field_manager_required());
                };
                check_kind(&t.rt, &applied)?;
                check_name(&applied, &name)?;
                rules::check_string_values(&t.rt, &applied, true)?;
                if old.is_none() {
                    self.check_namespace(&store, t, &applied)?;
                }
                self.apply(&mut store, t, &key, old, applied, &manager, opts)
            }
            other => {
                let Some(old) = old else {
                    return Err(ApiError::not_found(&t.rt, &name));
                };
                let mut new = old.clone();
                match other {
                    Patch::Merge(p) => json_patch::merge(&mut new, &p),
                    Patch::Strategic(p) => fields::strategic_merge(&mut new, &p),
                    Patch::Json(p) => {
                        json_patch::patch(&mut new, &p).map_err(ApiError::json_patch_failed)?
                    }
                    Patch::Apply(_) => unreachable!("handled above"),
                }
                rules::check_string_values(&t.rt, &new, false)?;
                self.write_update(&mut store, t, &key, old, new, opts)
            }
        }
    }

    /// DELETE on a collection: every object the selector matches, answered as a list,
    /// with the garbage collection each deletion leaves to do.
    pub fn delete_collection(
        &self,
        t: &Target,
        selector: &Selector,
        opts: &WriteOptions,
        policy: Option<Propagation>,
    ) -> Result<(Value, Vec<Garbage>), ApiError> {
        let names: Vec<String> = self.list(t, selector, &Page::default())?["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut deleted = Vec::new();
        let mut garbage = Vec::new();
        for name in names {
            let one = Target {
                name: Some(name),
                ..t.clone()
            };
            let object = self.get(&one)?;
            let (_, work) = self.delete(&one, opts, policy)?;
            garbage.extend(work);
            deleted.push(object);
        }
        let list = json!({
            "kind": t.rt.list_kind,
            "apiVersion": t.rt.api_version(),
            "metadata": {"resourceVersion": self.resource_version().to_string()},
            "items": deleted,
        });
        Ok((list, garbage))
    }

    /// DELETE of one object, as the real server answers it: removed at once (a
    /// Status) with Background propagation, or marked with a deletionTimestamp and the
    /// `foregroundDeletion` or `orphan` finalizer (the object) for the garbage
    /// collector to finish. The collector's work comes back as [`Garbage`] for
    /// [`Cluster::collect`], which the server runs a moment later, as the
    /// controller-manager would.
    pub fn delete(
        &self,
        t: &Target,
        opts: &WriteOptions,
        policy: Option<Propagation>,
    ) -> Result<(Value, Option<Garbage>), ApiError> {
        let name = t.name.clone().unwrap_or_default();
        let mut store = self.lock();
        let key = t.key(&name);
        let Some(old) = store.get(&key).cloned() else {
            return Err(ApiError::not_found(&t.rt, &name));
        };
        if old["metadata"].get("deletionTimestamp").is_some() {
            // Already being deleted: the same answer again, nothing new to do.
            return Ok((old, None));
        }
        let uid = old["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let is_crd = t.rt.group == "apiextensions.k8s.io" && !t.rt.custom;
        let is_namespace = t.rt.plural == "namespaces" && t.rt.group.is_empty();
        let policy = policy.unwrap_or_else(|| Propagation::default_for(&t.rt));
        let held = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !is_crd && !is_namespace && policy == Propagation::Background && held {
            // Finalizers hold it: marked now, removed when the last one is taken off.
            let mut marked = old.clone();
            marked["metadata"]["deletionTimestamp"] = json!(now());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            if opts.dry_run {
                return Ok((marked, None));
            }
            return Ok((store.put(key, marked), None));
        }
        if !is_crd && !is_namespace && policy != Propagation::Background {
            let mut marked = old.clone();
            marked["metadata"]["deletionTimestamp"] = json!(now());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let finalizer = policy.finalizer().expect("not background");
            let finalizers = marked["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                let mut finalizers = finalizers;
                finalizers.push(json!(finalizer));
                marked["metadata"]["finalizers"] = Value::Array(finalizers);
            }
            if opts.dry_run {
                return Ok((marked, None));
            }
            let stored = store.put(key.clone(), marked);
            return Ok((stored, Some(Garbage { key, uid, policy })));
        }
        if opts.dry_run {
            return Ok((status::deleted(&t.rt, &name, &old["metadata"]["uid"]), None));
        }
        if is_crd || is_namespace {
            // What the namespace and CRD finalizers do, at once: their objects go first.
            let group = old["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let plural = old["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let doomed: Vec<Key> = store
                .keys()
                .filter(|k| {
                    if is_crd {
                        k.group == group && k.plural == plural
                    } else {
                        k.namespace == name
                    }
                })
                .cloned()
                .collect();
            for k in doomed {
                store.remove(&k);
            }
        }
        let removed = store.remove(&key).expect("checked above");
        if is_namespace {
            let mut terminating = removed;
            terminating["metadata"]["deletionTimestamp"] = json!(now());
            terminating["status"]["phase"] = json!("Terminating");
            return Ok((terminating, None));
        }
        let garbage =
            (!store.dependents_of(&uid).is_empty()).then_some(Garbage { key, uid, policy });
        Ok((
            status::deleted(&t.rt, &name, &removed["metadata"]["uid"]),
            garbage,
        ))
    }

    /// The garbage collector's part of a deletion: dependents of a deleted owner are
    /// deleted (Background, Foreground: depth first, before the owner goes) unless
    /// another owner of theirs still exists, or freed of the reference (Orphan); then
    /// an owner waiting on its finalizer is removed.
    pub fn collect(&self, garbage: &Garbage) {
        let mut store = self.lock();
        collect(&mut store, garbage);
    }
    /// Writes every object of a saved state (used by `--state`).
    pub fn restore(&self, objects: Vec<(Key, Value)>) {
        self.lock().restore(objects)
    }

    pub fn snapshot(&self) -> Vec<(Key, Value)> {
        self.lock().snapshot()
    }

    fn check_namespace(&self, store: &Store, t: &Target, body: &Value) -> Result<(), ApiError> {
        if !t.rt.namespaced {
            return Ok(());
        }
        let ns = t.namespace.clone().unwrap_or_default();
        if let Some(body_ns) = meta_str(body, "namespace")
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let ns_key = Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.clone(),
        };
        match store.get(&ns_key) {
            Some(_) => Ok(()),
            None => Err(ApiError::namespace_not_found(&ns)),
        }
    }

    /// PUT and the non-apply patches: the new object replaces the old; the manager
    /// takes over the fields it changed (an Update operation in managedFields).
    fn write_update(
        &self,
        store: &mut Store,
        t: &Target,
        key: &Key,
        old: Value,
        new: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let mut object = if t.status() {
            prepare_status(&old, new)
        } else {
            prepare_main(&t.rt, Some(&old), new)
        };
        let before = tracked(&t.rt, &old, t.status());
        let after = tracked(&t.rt, &object, t.status());
        let entries = managed_entries(&old);
        let whole = tracked_whole(&t.rt, &object);
        let managed = update_managers(
            &entries,
            &before,
            &after,
            &whole,
            &opts.manager(),
            &t.rt.api_version(),
            t.subresource.as_deref(),
        );
        set_managed(&mut object, managed);
        commit(store, t, key, Some(&old), object, opts.dry_run)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        store: &mut Store,
        t: &Target,
        key: &Key,
        old: Option<Value>,
        applied: Value,
        manager: &str,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let sub = t.subresource.as_deref();
        let applied_tracked = tracked(&t.rt, &applied, t.status());
        let applied_set = fields::field_set(&applied_tracked, false);
        let mut live = old.clone().unwrap_or_else(|| {
            json!({"apiVersion": t.rt.api_version(), "kind": t.rt.kind, "metadata": {"name": key.name}})
        });
        let live_tracked = tracked(&t.rt, &live, t.status());
        let mut entries = managed_entries(&live);
        let me = |e: &ManagedEntry| {
            e.manager == manager && e.operation == "Apply" && e.subresource.as_deref() == sub
        };

        let mut conflicts = Vec::new();
        for entry in entries.iter_mut().filter(|e| !me(e)) {
            let contested: Vec<fields::Path> = entry
                .fields
                .intersection(&applied_set)
                .filter(|p| p.last().is_some_and(|l| l != "."))
                .filter(|p| fields::get_at(&live_tracked, p) != fields::get_at(&applied_tracked, p))
                .cloned()
                .collect();
            if opts.force {
                for p in &contested {
                    entry.fields.remove(p);
                }
            } else {
                conflicts.extend(
                    contested
                        .iter()
                        .map(|p| (entry.label(), fields::display_path(p))),
                );
            }
        }
        if !conflicts.is_empty() {
            return Err(ApiError::apply_conflicts(&conflicts));
        }

        // Fields this manager applied before and no longer does, that nobody else
        // owns, are removed from the object.
        let previous: FieldSet = entries
            .iter()
            .find(|e| me(e))
            .map(|e| e.fields.clone())
            .unwrap_or_default();
        let others: FieldSet = entries
            .iter()
            .filter(|e| !me(e))
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        let mut dropped: Vec<&fields::Path> = previous
            .iter()
            .filter(|p| !applied_set.contains(*p) && !others.contains(*p))
            .collect();
        // Deepest first, so that removing an item does not hide its fields' paths.
        dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in dropped {
            fields::remove_at(&mut live, p);
        }

        let mut applied_part = applied.clone();
        restrict(&t.rt, &mut applied_part, t.status());
        fields::merge_applied(&mut live, &applied_part);

        let now = now();
        entries.retain(|e| !me(e));
        let old_entry = old
            .as_ref()
            .and_then(|o| managed_entries(o).into_iter().find(|e| me(e)));
        if !applied_set.is_empty() {
            let time = match old_entry {
                Some(e) if e.fields == applied_set => e.time,
                _ => now.clone(),
            };
            let entry = ManagedEntry {
                manager: manager.into(),
                operation: "Apply".into(),
                api_version: t.rt.api_version(),
                time,
                fields: applied_set,
                subresource: sub.map(String::from),
            };
            // The applier's entry keeps its place; a new one goes last.
            let position = managed_entries(old.as_ref().unwrap_or(&Value::Null))
                .iter()
                .position(me);
            match position {
                Some(i) if i <= entries.len() => entries.insert(i, entry),
                _ => entries.push(entry),
            }
        }
        entries.retain(|e| !e.fields.is_empty());

        let mut object = match &old {
            Some(old) if t.status() => prepare_status(old, live),
            _ => prepare_main(&t.rt, old.as_ref(), live),
        };
        set_managed(&mut object, entries);
        commit(store, t, key, old.as_ref(), object, opts.dry_run)
    }
}

fn collect(store: &mut Store, garbage: &Garbage) {
    for dependent in store.dependents_of(&garbage.uid) {
        let Some(mut object) = store.get(&dependent).cloned() else {
            continue;
        };
        let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() else {
            continue;
        };
        let other_owner_lives = refs
            .iter()
            .filter(|r| r["uid"] != garbage.uid.as_str())
            .filter_map(|r| r["uid"].as_str())
            .any(|uid| store.key_of_uid(uid).is_some());
        if garbage.policy == Propagation::Orphan || other_owner_lives {
            refs.retain(|r| r["uid"] != garbage.uid.as_str());
            if refs.is_empty() {
                object["metadata"]
                    .as_object_mut()
                    .expect("metadata is a map")
                    .remove("ownerReferences");
            }
            store.put(dependent, object);
            continue;
        }
        let held = object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if held {
            // Its own finalizers keep it (and a Foreground owner) until they are done.
            if object["metadata"].get("deletionTimestamp").is_none() {
                object["metadata"]["deletionTimestamp"] = json!(now());
                store.put(dependent, object);
            }
            continue;
        }
        let uid = object["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // A dependent with dependents of its own goes the same way, depth first.
        collect(
            store,
            &Garbage {
                key: dependent.clone(),
                uid,
                policy: Propagation::Background,
            },
        );
        store.remove(&dependent);
    }
    if garbage.policy == Propagation::Foreground && !store.dependents_of(&garbage.uid).is_empty() {
        // Waits for a dependent's finalizers; see [`finish_foreground`].
        return;
    }
    release(store, &garbage.key, &garbage.uid, garbage.policy);
}

/// Drops the owner's deletion finalizer; the owner goes when none is left.
fn release(store: &mut Store, key: &Key, uid: &str, policy: Propagation) {
    let Some(finalizer) = policy.finalizer() else {
        return;
    };
    let Some(mut owner) = store.get(key).cloned() else {
        return;
    };
    if owner["metadata"]["uid"] != uid {
        return;
    }
    let Some(finalizers) = owner["metadata"]["finalizers"].as_array_mut() else {
        store.remove(key);
        return;
    };
    finalizers.retain(|f| f != finalizer);
    if finalizers.is_empty() {
        store.remove(key);
    } else {
        // Someone else's finalizer still holds it.
        store.put(key.clone(), owner);
    }
}

/// After `removed` went: an owner deleted in the foreground that was waiting for it
/// and has no dependents left goes too.
fn finish_foreground(store: &mut Store, removed: &Value) {
    let owners: Vec<String> = removed["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
        .collect();
    for uid in owners {
        let Some(key) = store.key_of_uid(&uid).cloned() else {
            continue;
        };
        let waiting = store.get(&key).is_some_and(|o| {
            o["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion"))
        });
        if waiting && store.dependents_of(&uid).is_empty() {
            release(store, &key, &uid, Propagation::Foreground);
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn check_kind(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON or YAML object",
        ));
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    if (!kind.is_empty() && kind != rt.kind)
        || (!api_version.is_empty() && api_version != rt.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    Ok(())
}

fn check_name(body: &Value, url_name: &str) -> Result<(), ApiError> {
    match meta_str(body, "name") {
        Some(n) if !n.is_empty() && n != url_name => Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({url_name})"
        ))),
        _ => Ok(()),
    }
}

/// The parts of an object managedFields track: labels, annotations, finalizers and
/// owners of metadata, and the body (spec or status, by subresource).
fn tracked(rt: &ResourceType, obj: &Value, status: bool) -> Value {
    let mut out = Map::new();
    let Some(map) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let meta: Map<String, Value> = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| {
                                matches!(
                                    k.as_str(),
                                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                                )
                            })
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                if !meta.is_empty() && !status {
                    out.insert(k.clone(), Value::Object(meta));
                }
            }
            "status" if rt.status_subresource && !status => {}
            _ if status && k != "status" => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Every tracked field of an object, main resource and status together.
fn tracked_whole(rt: &ResourceType, obj: &Value) -> Value {
    let mut whole = tracked(rt, obj, false);
    if let Some(status) = obj.get("status") {
        whole["status"] = status.clone();
    }
    whole
}

/// What a write may change: the main resource leaves status to /status and back.
fn restrict(rt: &ResourceType, obj: &mut Value, status: bool) {
    if let Some(m) = obj.as_object_mut() {
        if status {
            m.retain(|k, _| k == "status" || k == "metadata");
        } else if rt.status_subresource {
            m.remove("status");
        }
    }
}

/// A main-resource write: status and system metadata come from the old object.
fn prepare_main(rt: &ResourceType, old: Option<&Value>, mut new: Value) -> Value {
    restrict(rt, &mut new, false);
    rules::admit(rt, &mut new);
    if rt.status_subresource {
        let status = match old {
            Some(old) => old.get("status").cloned(),
            None => rules::initial_status(rt),
        };
        if let (Some(status), Some(m)) = (status, new.as_object_mut()) {
            m.insert("status".into(), status);
        }
    }
    new
}

/// A /status write: everything but status comes from the old object.
fn prepare_status(old: &Value, new: Value) -> Value {
    let mut object = old.clone();
    let m = object.as_object_mut().expect("stored objects are maps");
    match new.get("status") {
        Some(status) => m.insert("status".into(), status.clone()),
        None => m.remove("status"),
    };
    object
}

/// Final checks and bookkeeping shared by every write, then the store (unless dry run).
fn commit(
    store: &mut Store,
    t: &Target,
    key: &Key,
    old: Option<&Value>,
    mut object: Value,
    dry_run: bool,
) -> Result<(u16, Value), ApiError> {
    let rt = &t.rt;
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
    object["metadata"]["name"] = json!(key.name);
    let meta = object["metadata"]
        .as_object_mut()
        .expect("metadata is a map");
    if rt.namespaced {
        meta.insert("namespace".into(), json!(key.namespace));
    } else {
        meta.remove("namespace");
    }
    for system in [
        "uid",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "deletionTimestamp",
        "selfLink",
    ] {
        meta.remove(system);
    }
    let uid = old
        .map(|o| o["metadata"]["uid"].clone())
        .unwrap_or_else(|| json!(uuid()));
    object["metadata"]["uid"] = uid;
    // Being deleted stays being deleted, whatever a write says.
    if let Some(since) = old.and_then(|o| o["metadata"].get("deletionTimestamp")) {
        object["metadata"]["deletionTimestamp"] = since.clone();
    }
    rules::fold_secret_string_data(rt, &mut object)?;
    rules::apply_defaults(rt, &mut object);
    if rt.group == "apiextensions.k8s.io" && !rt.custom {
        let status = match old.and_then(|o| o.get("status")) {
            Some(s) if s["acceptedNames"] == object["spec"]["names"] => s.clone(),
            _ => rules::crd_status(&object, &now()),
        };
        object["status"] = status;
    }
    rules::validate(rt, &object, old)?;

    let (created, generation) = match old {
        Some(old) => {
            let mut generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            if spec_of(rt, old) != spec_of(rt, &object) {
                generation += 1;
            }
            (old["metadata"]["creationTimestamp"].clone(), generation)
        }
        None => (json!(now()), 1),
    };
    let meta = object["metadata"]
        .as_object_mut()
        .expect("metadata is a map");
    meta.insert("creationTimestamp".into(), created);
    if rt.has_generation() {
        meta.insert("generation".into(), json!(generation));
    }
    if let Some(rv) = old.and_then(|o| o["metadata"].get("resourceVersion")) {
        meta.insert("resourceVersion".into(), rv.clone());
    }
    let size = serde_json::to_vec(&object)
        .map(|v| v.len())
        .unwrap_or_default();
    if size > 3 * crate::rules::MAX_OBJECT_BYTES {
        return Err(ApiError::too_large(3 * crate::rules::MAX_OBJECT_BYTES));
    }
    if old == Some(&object) {
        return Ok((200, object.clone()));
    }
    let code = if old.is_some() { 200 } else { 201 };
    if dry_run {
        return Ok((code, object.clone()));
    }
    let finalized = object["metadata"].get("deletionTimestamp").is_some()
        && object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if finalized {
        // The last finalizer is gone: the deletion completes.
        if let Some(removed) = store.remove(key) {
            finish_foreground(store, &removed);
            // Its own dependents are garbage now (none are left after a Foreground
            // or Orphan deletion).
            let uid = removed["metadata"]["uid"].as_str().unwrap_or_default();
            collect(
                store,
                &Garbage {
                    key: key.clone(),
                    uid: uid.to_string(),
                    policy: Propagation::Background,
                },
            );
        }
        return Ok((code, object));
    }
    let dangling = old.is_none() && owners_all_gone(store, &object);
    let stored = store.put(key.clone(), object).clone();
    if dangling {
        // Created for an owner that is already gone (a controller's write racing the
        // owner's deletion): the garbage collector deletes such an object at once.
        store.remove(key);
    }
    Ok((code, stored))
}

/// Whether `object` names owners and none of them exists any more.
fn owners_all_gone(store: &Store, object: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| {
            !refs.is_empty()
                && refs
                    .iter()
                    .filter_map(|r| r["uid"].as_str())
                    .all(|uid| store.key_of_uid(uid).is_none())
        })
}

fn scale_of(deployment: &Value) -> Value {
    let meta = &deployment["metadata"];
    let selector: Vec<String> = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {"replicas": deployment["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")},
    })
}

/// The parts whose change bumps metadata.generation.
fn spec_of(rt: &ResourceType, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        if rt.status_subresource {
            m.remove("status");
        }
    }
    v
}

fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-4{}-a{}-{}",
        h(0..4),
        h(4..6),
        &h(6..8)[1..],
        &h(8..10)[1..],
        h(10..16)
    )
}

/// One managedFields entry.
#[derive(Debug, Clone)]
struct ManagedEntry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    fields: FieldSet,
    subresource: Option<String>,
}

impl ManagedEntry {
    /// How conflicts name the owner: `"kapply"`, or `"kubectl-edit" using v1`.
    fn label(&self) -> String {
        let mut label = format!("{:?}", self.manager);
        if self.operation == "Update" {
            label.push_str(&format!(" using {}", self.api_version));
        }
        if let Some(sub) = &self.subresource {
            label.push_str(&format!(" with subresource {sub:?}"));
        }
        label
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        m.insert("time".into(), json!(self.time));
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), fields::to_fields_v1(&self.fields));
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), json!(sub));
        }
        Value::Object(m)
    }
}

fn managed_entries(obj: &Value) -> Vec<ManagedEntry> {
    let text = |e: &Value, f: &str| e[f].as_str().unwrap_or_default().to_string();
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| ManagedEntry {
                    manager: text(e, "manager"),
                    operation: text(e, "operation"),
                    api_version: text(e, "apiVersion"),
                    time: text(e, "time"),
                    fields: fields::from_fields_v1(&e["fieldsV1"]),
                    subresource: e["subresource"].as_str().map(String::from),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_managed(obj: &mut Value, entries: Vec<ManagedEntry>) {
    let meta = obj["metadata"].as_object_mut().expect("metadata is a map");
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedEntry::to_json).collect()),
        );
    }
}

/// managedFields after an Update operation: `manager` owns what it changed; other
/// managers lose those fields and any field that no longer exists.
fn update_managers(
    entries: &[ManagedEntry],
    before: &Value,
    after: &Value,
    whole: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) -> Vec<ManagedEntry> {
    let present = fields::field_set(whole, true);
    let changed: FieldSet = fields::field_set(after, true)
        .iter()
        .filter(|p| fields::get_at(before, p) != fields::get_at(after, p))
        .cloned()
        .collect();
    let mut out: Vec<ManagedEntry> = Vec::new();
    let mut mine_seen = false;
    for e in entries {
        let mine = e.manager == manager
            && e.operation == "Update"
            && e.subresource.as_deref() == subresource;
        let mut entry = e.clone();
        let kept: FieldSet = e.fields.intersection(&present).cloned().collect();
        entry.fields = if mine {
            mine_seen = true;
            kept.union(&changed).cloned().collect()
        } else {
            kept.difference(&changed).cloned().collect()
        };
        if entry.fields != e.fields {
            entry.time = now();
        }
        out.push(entry);
    }
    if !mine_seen && !changed.is_empty() {
        out.push(ManagedEntry {
            manager: manager.into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: now(),
            fields: changed,
            subresource: subresource.map(String::from),
        });
    }
    out.retain(|e| !e.fields.is_empty());
    out
}

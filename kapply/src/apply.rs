//! Applying one wave of the change graph ([`crate::graph`]): its objects in parallel,
//! with the live objects fetched up front and CRDs of the input waited for.

use crate::api::{Caller, Target};
use crate::discover::{self, InputCrd};
use crate::failure::Failure;
use crate::outcome::{Change, Outcome};
use crate::plan::Item;
use crate::report;
use crate::reporter::{Reporter, Results};
use crate::{diff, unchanged};
use futures::StreamExt;
use kpipe_core::Result;
use kpipe_core::interrupt::Interrupt;
use kube::core::ApiResource;
use kube::core::params::PatchParams;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// How long reading an object back after a lost answer may take.
const READ_BACK: Duration = Duration::from_secs(5);

/// How long requests in flight may still finish after SIGINT/SIGTERM.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);

/// From this many objects of one resource in one namespace, one LIST replaces their GETs.
const LIST_FROM: usize = 8;

/// From this many, when they share a label, one LIST of that label replaces their GETs:
/// an install's objects share one (`app.kubernetes.io/part-of`), and a namespace full of
/// other objects does not make the LIST larger. Every request costs the API server more
/// than the bytes it returns: on the argo-cd install (59 objects in groups of 3 to 7) a
/// no-op re-apply cost the server a quarter less with LISTs than with a GET per object.
const LIST_SELECTED_FROM: usize = 2;

pub(crate) struct Run<'a> {
    pub caller: Caller,
    pub reporter: &'a Reporter,
    pub params: PatchParams,
    pub dry_run: bool,
    /// Where each object's result goes (with --diff, a diff is made of each).
    pub results: Results,
    pub concurrency: usize,
    /// Namespaces this input creates, which a dry run cannot find yet.
    pub input_namespaces: HashSet<String>,
    /// Namespaces --create-namespace would create, which a dry run cannot find either.
    pub would_create: HashSet<String>,
    /// SIGINT/SIGTERM: no write starts after one; those in flight get [`IN_FLIGHT_GRACE`].
    pub interrupt: Interrupt,
    /// Live objects read before the first write (for the conflict check), by input
    /// position: each is used once, instead of reading it again.
    pub prefetched: std::sync::Mutex<crate::conflicts::Live>,
}

/// What the waves of one run pass on to the next.
#[derive(Default)]
pub(crate) struct Memory {
    /// The live objects read before applying, by input position (taken when applied).
    pub live: HashMap<usize, std::result::Result<Option<Value>, Failure>>,
    /// CRDs of this input that were applied, by name: their kinds can be resolved.
    applied_crds: HashSet<String>,
    /// Namespaces of this input that could not be created: their objects are doomed.
    failed_namespaces: HashSet<String>,
    /// Kinds of this input's CRDs, resolved once they were established (or why not).
    discovered: HashMap<String, std::result::Result<ApiResource, String>>,
}

impl Run<'_> {
    /// Applies one wave of the change graph, its objects in parallel, reporting each
    /// result as soon as its object and those before it in the wave are done; the
    /// outcomes come back in input order.
    /// Objects in a namespace this input failed to create are not sent, custom resources
    /// of this input's CRDs only once those are established. After SIGINT/SIGTERM
    /// nothing more is started.
    pub async fn apply_wave(
        &self,
        mut items: Vec<Item>,
        crds: &[InputCrd],
        memory: &mut Memory,
    ) -> Result<Vec<Outcome>> {
        items.sort_by_key(|i| i.position);
        if !self.dry_run && self.interrupt.received().is_none() {
            self.confirm_pending(&mut items, crds, memory).await;
        }
        for item in &mut items {
            if let Some(ns) = &item.id.namespace
                && memory.failed_namespaces.contains(ns)
            {
                item.blocked = Some(format!(
                    "not applied: its Namespace/{ns} of this input could not be created"
                ));
            }
        }
        let befores: Vec<_> = items
            .iter()
            .map(|i| memory.live.remove(&i.position))
            .collect();
        // Unordered, so that one object waiting out a backoff does not hold the others
        // back; the lines are printed in input order as far as done.
        let mut results = futures::stream::iter(items.iter().zip(befores).enumerate())
            .map(|(index, (item, before))| async move {
                let outcome = self.apply_interruptibly(item, before).await;
                self.reporter.advance_progress();
                (index, outcome)
            })
            .buffer_unordered(self.concurrency);
        let mut outcomes = Vec::with_capacity(items.len());
        let mut done: Vec<Option<Outcome>> = items.iter().map(|_| None).collect();
        let mut printed = 0;
        while let Some((index, outcome)) = results.next().await {
            done[index] = Some(outcome);
            while let Some(outcome) = done.get_mut(printed).and_then(Option::take) {
                let item = &items[printed];
                match &outcome {
                    Outcome::Done { .. }
                        if item.id.kind == "CustomResourceDefinition"
                            && item.id.group() == "apiextensions.k8s.io" =>
                    {
                        memory.applied_crds.insert(item.id.name.clone());
                    }
                    Outcome::Failed(_)
                        if item.id.kind == "Namespace" && item.id.group().is_empty() =>
                    {
                        memory.failed_namespaces.insert(item.id.name.clone());
                    }
                    _ => {}
                }
                self.report(item, &outcome)?;
                outcomes.push(outcome);
                printed += 1;
            }
        }
        Ok(outcomes)
    }

    /// Reads the live objects of `items` before they are applied (those the conflict
    /// check read are taken from it), into `memory`.
    pub async fn read_before(&self, items: &[&Item], memory: &mut Memory) {
        let mut unread = Vec::new();
        {
            let mut prefetched = self.prefetched.lock().expect("not poisoned");
            for item in items {
                match prefetched.remove(&item.position) {
                    Some(before) => {
                        memory.live.insert(item.position, before);
                    }
                    None => unread.push(*item),
                }
            }
        }
        memory.live.extend(self.prefetch(&unread).await);
    }

    /// One object's result: its line (or diff) where the flags send it, a failure's
    /// report on stderr.
    fn report(&self, item: &Item, outcome: &Outcome) -> Result<()> {
        match outcome {
            Outcome::Done { change, diff, .. } => {
                let line = report::result_line(&item.id, *change, self.dry_run);
                self.reporter.result(self.results, &line, diff)?;
            }
            Outcome::Skipped(why) => {
                self.reporter.say(&format!("kapply: {}: {why}\n", item.id));
            }
            Outcome::Failed(failure) => {
                self.reporter.say(&report::failure(
                    &item.id,
                    failure,
                    self.caller.retry_budget(),
                ));
            }
            // Summed up once at the end.
            Outcome::Interrupted { .. } => {}
        }
        Ok(())
    }

    /// [`Run::apply_one`], unless SIGINT/SIGTERM came before it started, or came and
    /// [`IN_FLIGHT_GRACE`] passed while it was still going.
    async fn apply_interruptibly(
        &self,
        item: &Item,
        before: Option<Result<Option<Value>, Failure>>,
    ) -> Outcome {
        if self.interrupt.received().is_some() {
            return Outcome::Interrupted { in_flight: false };
        }
        let grace = async {
            self.interrupt.wait().await;
            tokio::time::sleep(IN_FLIGHT_GRACE).await;
        };
        tokio::select! {
            outcome = self.apply_one(item, before) => outcome,
            () = grace => Outcome::Interrupted { in_flight: true },
        }
    }

    /// Waits for the input's CRDs to be Established and resolves their kinds through
    /// discovery; an object whose CRD failed is failed with a reason.
    async fn confirm_pending(&self, items: &mut [Item], crds: &[InputCrd], memory: &mut Memory) {
        let (applied, discovered) = (&memory.applied_crds, &mut memory.discovered);
        for item in items.iter_mut() {
            let Some(crd) = &item.resolved.pending_crd else {
                continue;
            };
            let resource = &item.resolved.resource;
            let key = format!("{}/{}", resource.api_version, resource.kind);
            if !discovered.contains_key(&key) {
                let result = if !applied.contains(crd) {
                    Err(format!(
                        "not applied: its CustomResourceDefinition/{crd} failed"
                    ))
                } else {
                    let definition = crds
                        .iter()
                        .find(|c| &c.name == crd)
                        .expect("pending kinds come from input CRDs");
                    discover::wait_for_crd(
                        &self.caller,
                        self.reporter,
                        definition,
                        &resource.version,
                    )
                    .await
                    .map_err(|f| {
                        format!(
                            "CustomResourceDefinition/{crd} did not become usable: {}",
                            f.message()
                        )
                    })
                };
                discovered.insert(key.clone(), result);
            }
            match &discovered[&key] {
                Ok(found) => {
                    item.resolved.resource = found.clone();
                    item.resolved.pending_crd = None;
                }
                Err(why) => item.blocked = Some(why.clone()),
            }
        }
    }

    /// The live objects before anything is written, fetched all at once: one LIST per
    /// larger group (same resource and namespace, or a smaller one sharing a label)
    /// instead of a GET per object, GETs in parallel for the rest. By input position;
    /// kinds not served yet are left out.
    pub async fn prefetch(
        &self,
        items: &[&Item],
    ) -> HashMap<usize, Result<Option<Value>, Failure>> {
        type Group<'a> = Vec<(&'a Item, &'a ApiResource)>;
        let mut groups: BTreeMap<(String, String, Option<String>), Group> = BTreeMap::new();
        for item in items {
            if let Some(resource) = item.resolved.served() {
                let key = (
                    resource.api_version.clone(),
                    resource.plural.clone(),
                    item.id.namespace.clone(),
                );
                groups.entry(key).or_default().push((item, resource));
            }
        }
        let mut known = HashMap::new();
        let mut singles = Vec::new();
        // The LISTs at once, as the GETs below: each costs a round trip.
        let listed: Vec<(Group, _)> = futures::stream::iter(groups.into_values())
            .map(|members| async move {
                let listed = self.list_group(&members).await;
                (members, listed)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (members, listed) in listed {
            match listed {
                Some((mut by_name, complete)) => {
                    for (member, resource) in members {
                        match by_name.remove(&member.id.name) {
                            Some(live) => {
                                known.insert(member.position, Ok(Some(live)));
                            }
                            None if complete => {
                                known.insert(member.position, Ok(None));
                            }
                            // The live object may not carry the label yet: a GET tells.
                            None => singles.push((member, resource)),
                        }
                    }
                }
                None => singles.extend(members),
            }
        }
        let fetched: Vec<(usize, Result<Option<Value>, Failure>)> = futures::stream::iter(singles)
            .map(|(item, resource)| async move {
                let before = self
                    .caller
                    .get(&item.target(resource), &item.id.to_string())
                    .await;
                (item.position, before)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        known.extend(fetched);
        known
    }

    /// The live objects of a group by name, from one LIST, and whether that LIST holds
    /// every object of the group's resource and namespace (not only a label's); `None`
    /// when the group is too small for that to pay or the LIST failed (GETs then tell).
    async fn list_group(
        &self,
        members: &[(&Item, &ApiResource)],
    ) -> Option<(HashMap<String, Value>, bool)> {
        let (first, resource) = members.first()?;
        let complete = members.len() >= LIST_FROM;
        let selector = if complete {
            None
        } else if members.len() >= LIST_SELECTED_FROM {
            Some(shared_label(members.iter().map(|(item, _)| &item.body))?)
        } else {
            return None;
        };
        let namespace = first.id.namespace.as_deref();
        let what = match namespace {
            Some(ns) => format!("list of {} in namespace {ns}", resource.plural),
            None => format!("list of {}", resource.plural),
        };
        let objects = self
            .caller
            .list_selected(resource, namespace, selector.as_deref(), &what)
            .await
            .ok()?;
        let by_name = objects
            .into_iter()
            .filter_map(|mut object| {
                let name = object["metadata"]["name"].as_str()?.to_owned();
                // List items may leave out what the list itself says.
                object["apiVersion"] = resource.api_version.clone().into();
                object["kind"] = resource.kind.clone().into();
                Some((name, object))
            })
            .collect();
        Some((by_name, complete))
    }

    async fn apply_one(
        &self,
        item: &Item,
        live: Option<Result<Option<Value>, Failure>>,
    ) -> Outcome {
        if let Some(why) = &item.blocked {
            return Outcome::Failed(Failure::NotApplied(why.clone()));
        }
        let resource = &item.resolved.resource;
        if let Some(crd) = &item.resolved.pending_crd {
            return if self.dry_run {
                Outcome::Skipped(format!(
                    "not checked: {} is served only once CustomResourceDefinition/{crd} of this input is applied",
                    resource.api_version
                ))
            } else {
                Outcome::Failed(Failure::NotApplied(format!(
                    "not applied: {} is not served",
                    resource.api_version
                )))
            };
        }
        let target = item.target(resource);
        let what = item.id.to_string();
        let before = match live {
            Some(fetched) => fetched,
            None => self.caller.get(&target, &what).await,
        };
        let before = match before {
            Ok(before) => before,
            Err(failure) => return Outcome::Failed(failure),
        };
        // A dry run is the server's check: it is always asked.
        let manager = self.params.field_manager.as_deref().unwrap_or_default();
        if !self.dry_run
            && let Some(live) = &before
            && unchanged::proven(&item.body, live, manager)
        {
            return Outcome::Done {
                change: Change::Unchanged,
                object: live.clone(),
                diff: String::new(),
            };
        }
        if let Some(replicas) = self.replicas_to_hand_over(item, before.as_ref()) {
            let name = report::kubectl_name(&item.id);
            if self.dry_run {
                self.reporter.say(&format!(
                    "kapply: {name}: spec.replicas left the input: its live value {replicas} \
                     would be kept for an autoscaler (field manager {HANDOVER_MANAGER})\n"
                ));
            } else {
                let keep = handover_body(item, replicas);
                let params = PatchParams::apply(HANDOVER_MANAGER);
                if let Err(failure) = self.caller.apply(&target, &keep, &params, &what).await {
                    return Outcome::Failed(failure);
                }
                self.reporter.say(&format!(
                    "kapply: {name}: spec.replicas left the input: its live value {replicas} \
                     is kept for an autoscaler to take over (field manager {HANDOVER_MANAGER})\n"
                ));
            }
        }
        let after = match self
            .caller
            .apply(&target, &item.body, &self.params, &what)
            .await
        {
            Ok(after) => after,
            // The write may have arrived with only its answer lost: the server decides.
            Err(failure) if failure.is_transient() && !self.dry_run => {
                match self.read_back(&target, item).await {
                    Some(after) => {
                        self.reporter.say(&format!(
                            "kapply: {what}: the answer to the write was lost ({}), but the \
                             server has the object as applied\n",
                            failure.message()
                        ));
                        after
                    }
                    None => return Outcome::Failed(failure),
                }
            }
            Err(mut failure) => {
                report::note_operations(&mut failure, before.as_ref());
                return self.dry_run_gap(item, failure);
            }
        };
        let change = classify(before.as_ref(), &after);
        let diff = if self.results == Results::Diffs {
            diff::unified(&item.id, before.as_ref(), &after)
        } else {
            String::new()
        };
        Outcome::Done {
            change,
            object: after,
            diff,
        }
    }

    /// The live spec.replicas to keep when a Deployment or StatefulSet of the input no
    /// longer sets it (an autoscaler takes over) while our field manager applied it so
    /// far: applied without it, the field would lose its last owner and the server would
    /// reset it to 1, killing pods until the autoscaler scales up again.
    fn replicas_to_hand_over(&self, item: &Item, live: Option<&Value>) -> Option<i64> {
        let workload = matches!(item.id.kind.as_str(), "Deployment" | "StatefulSet");
        if !workload || item.id.group() != "apps" || !item.body["spec"]["replicas"].is_null() {
            return None;
        }
        let live = live?;
        let manager = self.params.field_manager.as_deref().unwrap_or_default();
        let ours = live["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .any(|f| {
                f["manager"] == manager
                    && f["operation"] == "Apply"
                    && f["subresource"].is_null()
                    && f["fieldsV1"]["f:spec"]["f:replicas"].is_object()
            });
        ours.then(|| live["spec"]["replicas"].as_i64()).flatten()
    }

    /// The live object after a write whose answer never came, when it holds what was
    /// applied under our field manager; `None` when it does not or cannot be read in time.
    async fn read_back(&self, target: &Target, item: &Item) -> Option<Value> {
        let what = item.id.to_string();
        let read = self.caller.get(target, &what);
        let live = kpipe_core::api::bounded(Some(Instant::now() + READ_BACK), read)
            .await?
            .ok()??;
        let manager = self.params.field_manager.as_deref().unwrap_or_default();
        let ours = live["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["manager"] == manager && f["operation"] == "Apply");
        let body = item.body.as_object()?;
        let holds_all = body
            .iter()
            // Written as `data` (base64), never read back as sent.
            .filter(|(key, _)| key.as_str() != "stringData")
            .all(|(key, value)| live.get(key).is_some_and(|l| unchanged::holds(value, l)));
        (ours && holds_all).then_some(live)
    }

    /// In a dry run, an object in a namespace this same input creates cannot be found
    /// by the server yet; that is a gap in what can be checked, not a failure.
    fn dry_run_gap(&self, item: &Item, failure: Failure) -> Outcome {
        if let Failure::Api { status, .. } = &failure
            && self.dry_run
            && status.code == 404
            && let Some(ns) = &item.id.namespace
            && status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces")
        {
            if self.input_namespaces.contains(ns) {
                return Outcome::Skipped(format!(
                    "not checked: namespace \"{ns}\" is created by this input"
                ));
            }
            if self.would_create.contains(ns) {
                return Outcome::Skipped(format!(
                    "not checked: namespace \"{ns}\" would be created first (--create-namespace)"
                ));
            }
        }
        Outcome::Failed(failure)
    }
}

/// The field manager that keeps spec.replicas at its live value while an autoscaler
/// takes it over: the Server-Side Apply documentation's "transferring ownership".
const HANDOVER_MANAGER: &str = "handover-to-hpa";

/// An apply of only spec.replicas at its live value: shared ownership, no conflict.
fn handover_body(item: &Item, replicas: i64) -> Value {
    let mut metadata = serde_json::json!({"name": item.id.name});
    if let Some(namespace) = &item.id.namespace {
        metadata["namespace"] = namespace.clone().into();
    }
    serde_json::json!({
        "apiVersion": item.body["apiVersion"],
        "kind": item.body["kind"],
        "metadata": metadata,
        "spec": {"replicas": replicas},
    })
}

/// A label (`key=value`) that every object has, to LIST just them; the first in key
/// order. Only values a selector can carry as they are (letters, digits, `-_.`).
fn shared_label<'a>(objects: impl Iterator<Item = &'a Value>) -> Option<String> {
    let mut shared: Option<BTreeMap<&str, &str>> = None;
    for object in objects {
        let labels: BTreeMap<&str, &str> = object["metadata"]["labels"]
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
            .filter(|(_, v)| {
                !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            })
            .collect();
        shared = Some(match shared {
            None => labels,
            Some(mut so_far) => {
                so_far.retain(|k, v| labels.get(k) == Some(v));
                so_far
            }
        });
    }
    let (key, value) = shared?.into_iter().next()?;
    Some(format!("{key}={value}"))
}

/// Created, configured or unchanged, from the live object before and the answer after,
/// the same way in a dry run (where the resourceVersion never moves) and a real run:
/// configured whenever the stored object changed, ownership (managedFields) included.
/// A controller's status write between our read and our apply (a new Deployment's
/// first status lands just then) moves the resourceVersion too, so status, the version
/// and the status subresource's managedFields entries are left out of the comparison.
fn classify(before: Option<&Value>, after: &Value) -> Change {
    let Some(before) = before else {
        return Change::Created;
    };
    if stored(before) != stored(after) {
        Change::Configured
    } else {
        Change::Unchanged
    }
}

/// The object as our apply can change it: without status, resourceVersion, the time
/// stamps of managedFields (a dry run rewrites them) and entries of status writers.
fn stored(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("resourceVersion");
        if let Some(fields) = metadata
            .get_mut("managedFields")
            .and_then(Value::as_array_mut)
        {
            fields.retain(|entry| entry["subresource"] != "status");
            for entry in fields.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn a_label_every_object_has_selects_them() {
        let object = |labels: Value| serde_json::json!({"metadata": {"labels": labels}});
        let a = object(serde_json::json!({"app": "argocd", "tier": "web", "x": "a b"}));
        let b = object(serde_json::json!({"tier": "web", "app": "argocd", "x": "a b"}));
        let c = object(serde_json::json!({"tier": "db", "app": "argocd"}));
        assert_eq!(
            shared_label([&a, &b].into_iter()).as_deref(),
            Some("app=argocd")
        );
        assert_eq!(
            shared_label([&b, &c].into_iter()).as_deref(),
            Some("app=argocd")
        );
        let none = object(serde_json::json!({"tier": "db"}));
        assert_eq!(shared_label([&a, &none].into_iter()), None);
        assert_eq!(shared_label([&a, &serde_json::json!({})].into_iter()), None);
    }

    #[test]
    fn an_ownership_only_change_is_configured_in_dry_and_real_runs() {
        let live = fixtures::body("15-ssa-noop.json");
        let mut after = live.clone();
        let mut entry = after["metadata"]["managedFields"][0].clone();
        entry["manager"] = "other".into();
        entry["time"] = "2030-01-01T00:00:00Z".into();
        after["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(entry);
        assert_eq!(classify(Some(&live), &after), Change::Configured);
        after["metadata"]["resourceVersion"] = "999999".into();
        assert_eq!(classify(Some(&live), &after), Change::Configured);
    }

    #[test]
    fn classifies_from_fixtures_14_15_16() {
        let created = fixtures::body("14-ssa-create.json");
        let noop = fixtures::body("15-ssa-noop.json");
        let changed = fixtures::body("16-ssa-change.json");
        assert_eq!(classify(None, &created), Change::Created);
        assert_eq!(classify(Some(&created), &noop), Change::Unchanged);
        assert_eq!(classify(Some(&noop), &changed), Change::Configured);
    }

    #[test]
    fn a_status_write_between_read_and_apply_is_not_our_change() {
        let live = fixtures::body("15-ssa-noop.json");
        let mut after = live.clone();
        after["metadata"]["resourceVersion"] = "999999".into();
        after["status"] = serde_json::json!({"observedGeneration": 1, "replicas": 1});
        assert_eq!(classify(Some(&live), &after), Change::Unchanged);
        after["metadata"]["labels"]["tier"] = "web".into();
        assert_eq!(classify(Some(&live), &after), Change::Configured);
    }

    #[test]
    fn dry_run_compares_content_because_fixture_19_keeps_the_resource_version() {
        let live = fixtures::body("16-ssa-change.json");
        let dry = fixtures::body("19-ssa-dryrun.json");
        assert_eq!(
            live["metadata"]["resourceVersion"],
            dry["metadata"]["resourceVersion"]
        );
        assert_eq!(classify(Some(&live), &dry), Change::Configured);
        let mut same = live.clone();
        same["metadata"]["managedFields"][0]["time"] = "2030-01-01T00:00:00Z".into();
        assert_eq!(classify(Some(&live), &same), Change::Unchanged);
    }
}

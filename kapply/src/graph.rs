//! The change graph (carvel kapp's model): every change, an upsert of an input object or
//! a deletion of a pruned one, is a node; an edge says one change must be done before
//! another. Changes run in waves: a wave is every change whose predecessors are all done,
//! so the objects of a wave go in parallel and a run needs as few sequential steps as
//! its edges force (each costs a round trip to the API server, 10-15 ms a write on a
//! real one).
//!
//! Edges come from change rules, in kapp's words:
//! - built-in ones, by kind: Namespaces and CustomResourceDefinitions first, then what
//!   pods consume or are admitted under (ServiceAccounts, RBAC, quotas and policies,
//!   ConfigMaps, Secrets, storage), then everything else at once, then kinds of this
//!   input's own CRDs; deletions in the reverse order;
//! - the annotations users already write for kapp: `kapp.k14s.io/change-group: G`
//!   puts a change in group G, and `kapp.k14s.io/change-rule: "OP before|after
//!   OP-ING G"` orders it against every change of G (both annotations also as
//!   `...change-group.ANY` and `...change-rule.ANY`, for several per object). With
//!   `--wait`, a change that follows another by such a rule waits until that one is
//!   ready, as kapp waits for it to reconcile.
//!
//! kapply deletes only after a whole run (every upsert done and, with `--wait`, ready),
//! so `delete after upserting` and `upsert before deleting` always hold, and the two
//! rules that would need a deletion before an upsert (`upsert after deleting`, `delete
//! before upserting`) cannot: they are named in a warning when a run meets them.

use crate::report::kubectl_name;
use kpipe_core::{Error, ObjectId, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

pub const GROUP: &str = "kapp.k14s.io/change-group";
pub const RULE: &str = "kapp.k14s.io/change-rule";

/// What a change does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Upsert,
    Delete,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        match word {
            "upsert" | "upserting" => Some(Op::Upsert),
            "delete" | "deleting" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// A kapp change rule of one object: its `op` is done `before` (or after) every `other`
/// change of `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    op: Op,
    before: bool,
    other: Op,
    group: String,
    text: String,
}

/// The built-in class of a kind, as a default change group; deletions go in reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Namespaces and CustomResourceDefinitions: the rest may live in the one or be
    /// served by the other.
    Foundation,
    /// What pods consume or are admitted under, which must exist before a controller
    /// creates them.
    PodInputs,
    /// Everything else (Services, workloads, Jobs, Ingresses, custom resources whose
    /// definition the server has): controllers reconcile as they appear.
    Rest,
    /// Kinds defined by a CustomResourceDefinition of this input: once it is Established.
    Custom,
}

/// Groups served by Kubernetes itself whose names have no dot.
const DOTLESS_BUILT_IN_GROUPS: &[&str] =
    &["", "apps", "batch", "autoscaling", "policy", "extensions"];

/// Whether `group` belongs to Kubernetes itself rather than to an add-on's CRDs.
pub fn is_built_in_group(group: &str) -> bool {
    DOTLESS_BUILT_IN_GROUPS.contains(&group)
        || group.ends_with(".k8s.io") && !group.ends_with(".x-k8s.io")
}

/// The built-in class of a kind; `input_crd_groups` are the groups the input's own CRDs
/// define, whose kinds wait for them even when the group looks built-in (Gateway API).
pub fn class(group: &str, kind: &str, input_crd_groups: &HashSet<String>) -> Class {
    if input_crd_groups.contains(group) {
        return Class::Custom;
    }
    if !is_built_in_group(group) {
        return Class::Rest;
    }
    match kind {
        "Namespace" | "CustomResourceDefinition" => Class::Foundation,
        "ServiceAccount"
        | "Role"
        | "ClusterRole"
        | "RoleBinding"
        | "ClusterRoleBinding"
        | "ResourceQuota"
        | "LimitRange"
        | "PriorityClass"
        | "NetworkPolicy"
        | "ConfigMap"
        | "Secret"
        | "StorageClass"
        | "PersistentVolume"
        | "PersistentVolumeClaim" => Class::PodInputs,
        _ => Class::Rest,
    }
}

/// The values of an annotation and its `.SUFFIX` variants.
fn values<'a>(object: &'a Value, key: &str) -> Vec<&'a str> {
    let dotted = format!("{key}.");
    object["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k == key || k.starts_with(&dotted))
        .filter_map(|(_, v)| v.as_str())
        .collect()
}

/// kapp's placeholders in group names.
fn expand(name: &str, id: &ObjectId) -> String {
    name.replace("{api-group}", id.group())
        .replace("{kind}", &id.kind)
        .replace("{name}", &id.name)
        .replace("{namespace}", id.namespace.as_deref().unwrap_or_default())
}

/// The groups an object is in.
fn groups_of(object: &Value, id: &ObjectId) -> Vec<String> {
    values(object, GROUP)
        .into_iter()
        .map(|g| expand(g, id))
        .collect()
}

/// The change rules of an object; one that is not a kapp rule is bad input.
fn rules_of(object: &Value, id: &ObjectId) -> Result<Vec<Rule>> {
    values(object, RULE)
        .into_iter()
        .map(|text| {
            let words: Vec<&str> = text.split_whitespace().collect();
            let parsed = match words.as_slice() {
                [op, order @ ("before" | "after"), other, group] => {
                    Op::parse(op).zip(Op::parse(other)).map(|(op, other)| Rule {
                        op,
                        before: *order == "before",
                        other,
                        group: expand(group, id),
                        text: text.to_owned(),
                    })
                }
                _ => None,
            };
            // `OP` is the verb, `OP-ING` its -ing form: "upsert after upsert x" is no rule.
            parsed
                .filter(|_| ["upsert", "delete"].contains(&words[0]) && words[2].ends_with("ing"))
                .ok_or_else(|| {
                    Error::input(format!(
                        "{id}: annotation {RULE}: {text:?} is not a kapp change rule \
                         (OP before|after OP-ING GROUP, e.g. \"upsert after upserting GROUP\")"
                    ))
                })
        })
        .collect()
}

/// The waves of one kind of change, and what each change waits for.
#[derive(Debug)]
pub struct Schedule {
    /// Change indexes, wave by wave; within a wave in input order.
    pub waves: Vec<Vec<usize>>,
    /// For each change, the changes whose readiness it waits for (kapp rules).
    pub ready_before: Vec<Vec<usize>>,
    /// For each change, the groups it follows by a kapp rule, for messages.
    pub follows: Vec<Vec<String>>,
}

/// The objects of one run's changes, with what the rules need of them.
pub struct Change<'a> {
    pub id: &'a ObjectId,
    pub object: &'a Value,
}

/// The upserts of an input: built-in order, then kapp's upsert rules.
pub fn upserts(changes: &[Change], input_crd_groups: &HashSet<String>) -> Result<Schedule> {
    schedule(changes, input_crd_groups, Op::Upsert)
}

/// The deletions of a prune or a delete-all: the built-in order reversed, then kapp's
/// delete rules (of the objects as they live).
pub fn deletions(changes: &[Change], input_crd_groups: &HashSet<String>) -> Result<Schedule> {
    schedule(changes, input_crd_groups, Op::Delete)
}

/// Rules one run cannot honour because it deletes only after every upsert: those of
/// `upserted` that follow a deletion of `deleted`, and those of `deleted` that precede
/// an upsert of `upserted`. One warning each.
pub fn unkept_rules(upserted: &[Change], deleted: &[Change]) -> Vec<String> {
    let members = |changes: &[Change]| -> BTreeMap<String, Vec<String>> {
        let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in changes {
            for g in groups_of(c.object, c.id) {
                by_group.entry(g).or_default().push(kubectl_name(c.id));
            }
        }
        by_group
    };
    let (upserted_groups, deleted_groups) = (members(upserted), members(deleted));
    let mut warnings = Vec::new();
    for (changes, op, others, other_op) in [
        (upserted, Op::Upsert, &deleted_groups, Op::Delete),
        (deleted, Op::Delete, &upserted_groups, Op::Upsert),
    ] {
        for c in changes {
            for rule in rules_of(c.object, c.id).unwrap_or_default() {
                let needs_deletion_first = match op {
                    Op::Upsert => !rule.before,
                    Op::Delete => rule.before,
                };
                if rule.op == op
                    && rule.other == other_op
                    && needs_deletion_first
                    && let Some(members) = others.get(&rule.group)
                {
                    warnings.push(format!(
                        "{}: change rule {:?} not kept: kapply deletes only after every \
                         object applied ({} of group {})",
                        kubectl_name(c.id),
                        rule.text,
                        members.join(", "),
                        rule.group
                    ));
                }
            }
        }
    }
    warnings
}

/// The waves: a change's stage is how many changes its kapp rules put before it (the
/// longest chain of rule edges); within a stage the built-in classes go in order. A
/// rule thus outranks the built-in order (a ConfigMap may follow a Job), as before.
fn schedule(changes: &[Change], crd_groups: &HashSet<String>, op: Op) -> Result<Schedule> {
    let n = changes.len();
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut rules = Vec::with_capacity(n);
    for (i, change) in changes.iter().enumerate() {
        for group in groups_of(change.object, change.id) {
            members.entry(group).or_default().push(i);
        }
        rules.push(rules_of(change.object, change.id)?);
    }
    // edges[a] holds b when a must be done (ready, with --wait) before b.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut follows = vec![Vec::new(); n];
    for (i, own) in rules.iter().enumerate() {
        for rule in own.iter().filter(|r| r.op == op && r.other == op) {
            // A group nobody is in is no constraint, as in kapp.
            for &other in members.get(&rule.group).into_iter().flatten() {
                let (from, to) = if rule.before { (i, other) } else { (other, i) };
                if other != i && !edges[from].contains(&to) {
                    edges[from].push(to);
                }
            }
            if !rule.before && !follows[i].contains(&rule.group) {
                follows[i].push(rule.group.clone());
            }
        }
    }

    // Longest chain from the sources, in Kahn's order; what is left is a cycle.
    let mut incoming = vec![0usize; n];
    for targets in &edges {
        for &to in targets {
            incoming[to] += 1;
        }
    }
    let mut stage = vec![0usize; n];
    let mut ready_before = vec![Vec::new(); n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| incoming[v] == 0).collect();
    let mut seen = 0;
    while let Some(v) = queue.pop() {
        seen += 1;
        for &to in &edges[v] {
            stage[to] = stage[to].max(stage[v] + 1);
            ready_before[to].push(v);
            incoming[to] -= 1;
            if incoming[to] == 0 {
                queue.push(to);
            }
        }
    }
    if seen < n {
        let stuck = (0..n).find(|&v| incoming[v] > 0).expect("a cycle is left");
        return Err(Error::input(format!(
            "{}: kapp change rules form a cycle (it waits, through its groups, for itself)",
            changes[stuck].id
        )));
    }
    let mut by_wave: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        let class = class(change.id.group(), &change.id.kind, crd_groups) as usize;
        // Deletions: the built-in order reversed.
        let order = match op {
            Op::Upsert => class,
            Op::Delete => Class::Custom as usize - class,
        };
        by_wave.entry((stage[i], order)).or_default().push(i);
    }
    for before in &mut ready_before {
        before.sort_unstable();
    }
    Ok(Schedule {
        waves: by_wave.into_values().collect(),
        ready_before,
        follows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(api_version: &str, kind: &str, name: &str, annotations: Value) -> (ObjectId, Value) {
        let value = json!({"apiVersion": api_version, "kind": kind,
                           "metadata": {"name": name, "annotations": annotations}});
        (ObjectId::of(&value).unwrap(), value)
    }

    fn waves(objects: &[(ObjectId, Value)], op: Op) -> Result<Vec<Vec<String>>> {
        let changes: Vec<Change> = objects
            .iter()
            .map(|(id, object)| Change { id, object })
            .collect();
        let crd_groups = HashSet::from(["example.com".to_owned()]);
        let s = match op {
            Op::Upsert => upserts(&changes, &crd_groups)?,
            Op::Delete => deletions(&changes, &crd_groups)?,
        };
        Ok(s.waves
            .iter()
            .map(|w| w.iter().map(|&i| objects[i].0.name.clone()).collect())
            .collect())
    }

    #[test]
    fn built_in_order_in_as_few_waves_as_kinds_need() {
        let objects = [
            object("apps/v1", "Deployment", "app", json!({})),
            object("v1", "ConfigMap", "config", json!({})),
            object("v1", "Namespace", "ns", json!({})),
            object("example.com/v1", "Widget", "w", json!({})),
            object("v1", "Service", "svc", json!({})),
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "crd",
                json!({}),
            ),
        ];
        assert_eq!(
            waves(&objects, Op::Upsert).unwrap(),
            [
                vec!["ns", "crd"],
                vec!["config"],
                vec!["app", "svc"],
                vec!["w"]
            ]
        );
        assert_eq!(
            waves(&objects, Op::Delete).unwrap(),
            [
                vec!["w"],
                vec!["app", "svc"],
                vec!["config"],
                vec!["ns", "crd"]
            ]
        );
        // Only ConfigMaps: one wave.
        let one = [object("v1", "ConfigMap", "a", json!({}))];
        assert_eq!(waves(&one, Op::Upsert).unwrap(), [vec!["a"]]);
    }

    #[test]
    fn upsert_after_and_before_upserting() {
        let objects = [
            object(
                "apps/v1",
                "Deployment",
                "app",
                json!({RULE: "upsert after upserting polls/migrate"}),
            ),
            object(
                "batch/v1",
                "Job",
                "migrate",
                json!({GROUP: "polls/migrate"}),
            ),
            object("v1", "Service", "svc", json!({})),
            object(
                "batch/v1",
                "Job",
                "check",
                json!({"kapp.k14s.io/change-rule.1": "upsert before upserting polls/migrate"}),
            ),
        ];
        assert_eq!(
            waves(&objects, Op::Upsert).unwrap(),
            [vec!["svc", "check"], vec!["migrate"], vec!["app"]]
        );
        let changes: Vec<Change> = objects
            .iter()
            .map(|(id, object)| Change { id, object })
            .collect();
        let s = upserts(&changes, &HashSet::new()).unwrap();
        assert_eq!(s.ready_before[0], [1]);
        assert_eq!(s.ready_before[1], [3]);
        assert_eq!(s.follows[0], ["polls/migrate"]);
    }

    #[test]
    fn delete_after_and_before_deleting() {
        let objects = [
            object("v1", "ConfigMap", "a", json!({GROUP: "first"})),
            object(
                "v1",
                "ConfigMap",
                "b",
                json!({RULE: "delete after deleting first", GROUP: "second"}),
            ),
            object(
                "v1",
                "ConfigMap",
                "c",
                json!({RULE: "delete before deleting first"}),
            ),
            // Upsert rules do not order deletions.
            object(
                "v1",
                "ConfigMap",
                "d",
                json!({RULE: "upsert after upserting second"}),
            ),
        ];
        assert_eq!(
            waves(&objects, Op::Delete).unwrap(),
            [vec!["c", "d"], vec!["a"], vec!["b"]]
        );
        assert_eq!(
            waves(&objects, Op::Upsert).unwrap(),
            [vec!["a", "b", "c"], vec!["d"]]
        );
    }

    #[test]
    fn placeholders_chains_cycles_and_bad_rules() {
        let chain = [
            object("batch/v1", "Job", "a", json!({GROUP: "{kind}-first"})),
            object(
                "batch/v1",
                "Job",
                "b",
                json!({GROUP: "second", RULE: "upsert after upserting Job-first"}),
            ),
            object(
                "apps/v1",
                "Deployment",
                "c",
                json!({RULE: "upsert after upserting second"}),
            ),
        ];
        assert_eq!(waves(&chain, Op::Upsert).unwrap(), [["a"], ["b"], ["c"]]);
        let cycle = [
            object(
                "batch/v1",
                "Job",
                "a",
                json!({GROUP: "a", RULE: "upsert after upserting b"}),
            ),
            object(
                "batch/v1",
                "Job",
                "b",
                json!({GROUP: "b", RULE: "upsert before upserting a"}),
            ),
        ];
        // b before a, and a after b: no cycle.
        assert_eq!(waves(&cycle, Op::Upsert).unwrap(), [["b"], ["a"]]);
        let cycle = [
            object(
                "batch/v1",
                "Job",
                "a",
                json!({GROUP: "a", RULE: "upsert after upserting b"}),
            ),
            object(
                "batch/v1",
                "Job",
                "b",
                json!({GROUP: "b", RULE: "upsert after upserting a"}),
            ),
        ];
        let e = waves(&cycle, Op::Upsert).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("cycle"), "{e}");
        for bad in [
            "after migrate",
            "upsert after upsert x",
            "create after upserting x",
        ] {
            let objects = [object("batch/v1", "Job", "a", json!({RULE: bad}))];
            let e = waves(&objects, Op::Upsert).unwrap_err().to_string();
            assert!(e.contains("not a kapp change rule"), "{bad}: {e}");
        }
    }

    #[test]
    fn rules_a_prune_cannot_keep_are_named() {
        let upserted = [object(
            "v1",
            "ConfigMap",
            "new",
            json!({RULE: "upsert after deleting old"}),
        )];
        let deleted = [object("v1", "ConfigMap", "gone", json!({GROUP: "old"}))];
        let changes = |o: &[(ObjectId, Value)]| -> Vec<(ObjectId, Value)> { o.to_vec() };
        let (u, d) = (changes(&upserted), changes(&deleted));
        let u: Vec<Change> = u.iter().map(|(id, object)| Change { id, object }).collect();
        let d: Vec<Change> = d.iter().map(|(id, object)| Change { id, object }).collect();
        let warnings = unkept_rules(&u, &d);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("\"upsert after deleting old\" not kept"),
            "{warnings:?}"
        );
        // Always kept: deletions come after every upsert.
        let fine = [object(
            "v1",
            "ConfigMap",
            "new",
            json!({RULE: "upsert before deleting old"}),
        )];
        let f: Vec<Change> = fine
            .iter()
            .map(|(id, object)| Change { id, object })
            .collect();
        assert!(unkept_rules(&f, &d).is_empty());
    }
}

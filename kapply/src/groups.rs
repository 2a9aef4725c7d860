//! Carvel kapp's change groups, which users already write into manifests:
//! `kapp.k14s.io/change-group: NAME` puts an object in a group, and
//! `kapp.k14s.io/change-rule: "upsert after upserting NAME"` makes it wait for every
//! object of that group. (Both also as `kapp.k14s.io/change-group.ANY` and
//! `kapp.k14s.io/change-rule.ANY`, for several per object.) kapply turns them into
//! stages: stage 0 has no rule, an object's stage is one past the latest stage of the
//! groups it follows. With `--wait` a stage starts only once the earlier ones are ready.

use kpipe_core::{Error, ObjectId, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const GROUP: &str = "kapp.k14s.io/change-group";
const RULE: &str = "kapp.k14s.io/change-rule";

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

/// The groups an object must follow: its `upsert after upserting G` rules. Delete
/// rules concern deletion, which kapply does not order.
fn follows(object: &Value, id: &ObjectId) -> Result<Vec<String>> {
    let mut groups = Vec::new();
    for rule in values(object, RULE) {
        let words: Vec<&str> = rule.split_whitespace().collect();
        match words.as_slice() {
            ["upsert", "after", "upserting", group] => groups.push(expand(group, id)),
            [
                "upsert" | "delete",
                "before" | "after",
                "upserting" | "deleting",
                _,
            ] => {}
            _ => {
                return Err(Error::input(format!(
                    "{id}: annotation {RULE}: {rule:?} is not a kapp change rule \
                     (e.g. \"upsert after upserting GROUP\")"
                )));
            }
        }
    }
    Ok(groups)
}

/// The stage of every object (same order as `objects`); a cycle of rules is bad input.
pub fn stages(objects: &[(&ObjectId, &Value)]) -> Result<Vec<usize>> {
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut rules = Vec::with_capacity(objects.len());
    for (index, (id, object)) in objects.iter().enumerate() {
        for group in values(object, GROUP) {
            members.entry(expand(group, id)).or_default().push(index);
        }
        rules.push(follows(object, id)?);
    }
    let mut stage: Vec<Option<usize>> = vec![None; objects.len()];
    for index in 0..objects.len() {
        resolve(
            index,
            objects,
            &members,
            &rules,
            &mut stage,
            &mut BTreeSet::new(),
        )?;
    }
    Ok(stage.into_iter().map(|s| s.unwrap_or(0)).collect())
}

fn resolve(
    index: usize,
    objects: &[(&ObjectId, &Value)],
    members: &BTreeMap<String, Vec<usize>>,
    rules: &[Vec<String>],
    stage: &mut [Option<usize>],
    path: &mut BTreeSet<usize>,
) -> Result<usize> {
    if let Some(s) = stage[index] {
        return Ok(s);
    }
    if !path.insert(index) {
        return Err(Error::input(format!(
            "{}: kapp change rules form a cycle (it waits, through its groups, for itself)",
            objects[index].0
        )));
    }
    let mut mine = 0;
    for group in &rules[index] {
        // A group nobody is in is no constraint, as in kapp.
        for &other in members.get(group).into_iter().flatten() {
            if other != index {
                mine = mine.max(resolve(other, objects, members, rules, stage, path)? + 1);
            }
        }
    }
    path.remove(&index);
    stage[index] = Some(mine);
    Ok(mine)
}

/// The groups an object follows, for messages about what it waited for.
pub fn followed(object: &Value, id: &ObjectId) -> Vec<String> {
    follows(object, id).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: &str, name: &str, annotations: Value) -> (ObjectId, Value) {
        let value = json!({"apiVersion": "v1", "kind": kind,
                           "metadata": {"name": name, "annotations": annotations}});
        (ObjectId::of(&value).unwrap(), value)
    }

    fn staged(objects: &[(ObjectId, Value)]) -> Result<Vec<usize>> {
        let refs: Vec<(&ObjectId, &Value)> = objects.iter().map(|(i, v)| (i, v)).collect();
        stages(&refs)
    }

    #[test]
    fn rules_make_stages() {
        let objects = [
            object(
                "Deployment",
                "app",
                json!({RULE: "upsert after upserting polls/migrate"}),
            ),
            object("Job", "migrate", json!({GROUP: "polls/migrate"})),
            object("ConfigMap", "config", json!({})),
            object(
                "Ingress",
                "web",
                json!({"kapp.k14s.io/change-rule.1": "upsert after upserting polls/app", "kapp.k14s.io/change-group": "x"}),
            ),
            object(
                "Service",
                "svc",
                json!({"kapp.k14s.io/change-group.a": "polls/app", RULE: "delete before deleting polls/migrate"}),
            ),
        ];
        assert_eq!(staged(&objects).unwrap(), [1, 0, 0, 1, 0]);
    }

    #[test]
    fn placeholders_and_chains() {
        let objects = [
            object("Job", "a", json!({GROUP: "{kind}-first"})),
            object(
                "Job",
                "b",
                json!({GROUP: "second", RULE: "upsert after upserting Job-first"}),
            ),
            object(
                "Deployment",
                "c",
                json!({RULE: "upsert after upserting second"}),
            ),
        ];
        assert_eq!(staged(&objects).unwrap(), [0, 1, 2]);
    }

    #[test]
    fn cycles_and_bad_rules_are_bad_input() {
        let cycle = [
            object(
                "Job",
                "a",
                json!({GROUP: "a", RULE: "upsert after upserting b"}),
            ),
            object(
                "Job",
                "b",
                json!({GROUP: "b", RULE: "upsert after upserting a"}),
            ),
        ];
        let e = staged(&cycle).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("cycle"), "{e}");
        let bad = [object("Job", "a", json!({RULE: "after migrate"}))];
        assert!(
            staged(&bad)
                .unwrap_err()
                .to_string()
                .contains("not a kapp change rule")
        );
    }
}

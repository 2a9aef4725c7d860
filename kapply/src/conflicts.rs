//! Conflicts found before the first write: an object whose live state has fields of
//! another field manager that the input sets is tried with a server-side dry run (not
//! forced); any conflict stops the run before anything is written, naming the fields,
//! their managers and what would change. Objects only kapply manages (or only status
//! writers besides it), objects that do not exist yet, and objects the apply will not
//! send (unchanged), cannot conflict: a no-op re-apply sends nothing more.

use crate::api::Caller;
use crate::failure::Failure;
use crate::plan::Item;
use crate::report;
use crate::reporter::Reporter;
use futures::StreamExt;
use kpipe_core::redact::scrub;
use kpipe_core::{Error, Result};
use kube::core::params::PatchParams;
use serde_json::Value;
use std::collections::HashMap;

/// The live objects before the run, by input position ([`crate::apply::Run::prefetch`]).
pub(crate) type Live = HashMap<usize, std::result::Result<Option<Value>, Failure>>;

/// Refuses the run when applying `items` (not forced) would conflict: each object's
/// report on stderr, then the summary as the error.
pub(crate) async fn refuse_conflicts(
    caller: &Caller,
    reporter: &Reporter,
    items: &[Item],
    live: &Live,
    params: &PatchParams,
    concurrency: usize,
) -> Result<()> {
    let manager = params.field_manager.as_deref().unwrap_or_default();
    let candidates = items.iter().filter_map(|item| {
        let resource = item.resolved.served()?;
        let Some(Ok(Some(before))) = live.get(&item.position) else {
            return None;
        };
        // Sent nothing, it cannot conflict ([`crate::unchanged`]).
        let sent = !crate::unchanged::proven(&item.body, before, manager);
        (sent && shares_fields(before, &item.body, manager)).then_some((item, resource, before))
    });
    let dry_run = params.clone().dry_run();
    let dry_run = &dry_run;
    let mut found: Vec<(usize, String)> = futures::stream::iter(candidates)
        .map(|(item, resource, before)| async move {
            let what = item.id.to_string();
            let result = caller
                .apply(&item.target(resource), &item.body, dry_run, &what)
                .await;
            match result {
                Err(mut failure @ Failure::Api { .. })
                    if failure.code() == Some(409) && conflicted(&failure) =>
                {
                    report::note_operations(&mut failure, Some(before));
                    let mut text = report::failure(&item.id, &failure, caller.retry_budget());
                    text.push_str(&changes(&failure, before, &item.body, &item.id.kind));
                    Some((item.position, scrub(&text).into_owned()))
                }
                // Anything else is met, and reported, by the apply itself.
                _ => None,
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|found| async move { found })
        .collect()
        .await;
    if found.is_empty() {
        return Ok(());
    }
    found.sort_by_key(|(position, _)| *position);
    for (_, text) in &found {
        reporter.say(text);
    }
    Err(Error::Summary(format!(
        "{} of {} objects would take over fields another field manager owns: nothing \
         applied; to take them over, run again with --force-conflicts (make deploy/issuers: \
         FORCE=1)",
        found.len(),
        items.len()
    )))
}

fn conflicted(failure: &Failure) -> bool {
    match failure {
        Failure::Api { status, .. } => !report::conflicts(status).is_empty(),
        _ => false,
    }
}

/// Whether a field manager other than `manager` owns, outside the status, a field that
/// `body` sets: only then can applying it conflict.
fn shares_fields(live: &Value, body: &Value, manager: &str) -> bool {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["manager"] != manager && entry["subresource"].is_null())
        .any(|entry| overlaps(&entry["fieldsV1"], body))
}

/// Whether a fieldsV1 set holds a field of `sent`. Generous where unsure (a list item
/// key without its defaulted fields): one dry run too many costs a request, one too
/// few a conflict half-way through the run.
fn overlaps(owned: &Value, sent: &Value) -> bool {
    let Some(owned) = owned.as_object() else {
        return false;
    };
    let below = |sub: &Value, sent: &Value| {
        sub.as_object().is_none_or(|m| m.keys().all(|k| k == ".")) || overlaps(sub, sent)
    };
    owned.iter().any(|(key, sub)| {
        if let Some(field) = key.strip_prefix("f:") {
            sent.get(field).is_some_and(|value| below(sub, value))
        } else if let Some(item_key) = key.strip_prefix("k:") {
            let Ok(Value::Object(item_key)) = serde_json::from_str::<Value>(item_key) else {
                return true;
            };
            sent.as_array().into_iter().flatten().any(|item| {
                item_key
                    .iter()
                    .all(|(k, v)| item.get(k).is_none_or(|value| value == v))
                    && below(sub, item)
            })
        } else if let Some(value) = key.strip_prefix("v:") {
            let value: Option<Value> = serde_json::from_str(value).ok();
            sent.as_array()
                .is_some_and(|items| value.is_none_or(|v| items.contains(&v)))
        } else {
            false
        }
    })
}

/// `kapply:   .spec.acme.email: "a@x" -> "b@y"` for each field in conflict whose live and
/// applied values can be read (never for a Secret: its values are not shown).
fn changes(failure: &Failure, live: &Value, body: &Value, kind: &str) -> String {
    let Failure::Api { status, .. } = failure else {
        return String::new();
    };
    if kind == "Secret" {
        return String::new();
    }
    let mut text = String::new();
    for conflict in report::conflicts(status) {
        if let (Some(now), Some(then)) = (at(live, &conflict.field), at(body, &conflict.field))
            && now != then
        {
            text.push_str(&format!(
                "kapply:   would change {}: {now} -> {then}\n",
                conflict.field
            ));
        }
    }
    text
}

/// The value at a conflict's field path: `.spec.acme.email`,
/// `.spec.template.spec.containers[name="app"].image`.
fn at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = object;
    for segment in split(path.strip_prefix('.')?) {
        let (field, selector) = match segment.split_once('[') {
            Some((field, rest)) => (field, Some(rest.strip_suffix(']')?)),
            None => (segment, None),
        };
        node = node.get(field)?;
        if let Some(selector) = selector {
            let wanted: Vec<(&str, Value)> = selector
                .split(',')
                .map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k, serde_json::from_str(v).ok()?))
                })
                .collect::<Option<_>>()?;
            node = node
                .as_array()?
                .iter()
                .find(|item| wanted.iter().all(|(k, v)| item.get(*k) == Some(v)))?;
        }
    }
    Some(node)
}

/// A path's segments, split at dots outside brackets and quotes.
fn split(path: &str) -> Vec<&str> {
    let (mut segments, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0, false);
    for (i, c) in path.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth -= 1,
            '.' if !quoted && depth == 0 => {
                segments.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    segments.push(&path[start..]);
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_other_managers_fields_the_input_sets_call_for_a_dry_run() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kapply", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update",
             "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}}},
        ]}});
        let body = json!({"metadata": {"annotations": {"a": "b"}}, "spec": {"replicas": 2}});
        assert!(!shares_fields(&live, &body, "kapply"));
        let mut by_hand = live.clone();
        by_hand["metadata"]["managedFields"][2]["fieldsV1"] = json!({"f:spec": {"f:template":
            {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}}}}}});
        let body = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}});
        assert!(shares_fields(&by_hand, &body, "kapply"));
        let other = json!({"spec": {"template": {"spec": {"containers": [{"name": "web"}]}}}});
        assert!(!shares_fields(&by_hand, &other, "kapply"));
    }

    #[test]
    fn conflict_paths_lead_to_their_values() {
        let object = json!({"spec": {"acme": {"email": "a@x"}, "template": {"spec": {"containers": [
            {"name": "web", "image": "w"}, {"name": "app.v1", "image": "a"}]}}}});
        assert_eq!(at(&object, ".spec.acme.email"), Some(&json!("a@x")));
        assert_eq!(
            at(
                &object,
                ".spec.template.spec.containers[name=\"app.v1\"].image"
            ),
            Some(&json!("a"))
        );
        assert_eq!(at(&object, ".spec.acme.server"), None);
    }
}

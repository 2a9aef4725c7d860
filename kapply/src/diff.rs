//! `--diff`: the live object against what the server would make of the apply.
//!
//! A diff is made for people, wherever it goes (a terminal, a pipe, a file): Secret
//! values are masked on both sides, and every known secret value is masked wherever it
//! appears, on any object (an annotation, a Deployment's inline env value).

use crate::report::kubectl_name;
use kpipe_core::ObjectId;
use kpipe_core::redact::{LAST_APPLIED, MASK, is_secret, mask_secret, scrub};
use serde_json::Value;
use similar::TextDiff;

/// A unified diff of `live` (absent: a new object) against `merged`, empty when equal.
/// Secret values are masked on both sides, marked `(before)`/`(after)` where they differ
/// so that a changed value still shows as a change; every known secret value is masked
/// wherever it appears.
pub fn unified(id: &ObjectId, live: Option<&Value>, merged: &Value) -> String {
    let mut merged = comparable(merged);
    let mut live = live.map(comparable);
    if is_secret(&merged) {
        mask_pair(live.as_mut(), &mut merged);
    }
    if live
        .as_ref()
        .is_some_and(|live| same_but_moved(live, &merged))
    {
        return String::new();
    }
    let old = live
        .as_ref()
        .map(kpipe_core::yaml::to_string)
        .unwrap_or_default();
    let new = kpipe_core::yaml::to_string(&merged);
    let place = match &id.namespace {
        Some(ns) => format!("{ns}/{}", kubectl_name(id)),
        None => kubectl_name(id),
    };
    let diff = TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{place}"), &format!("merged/{place}"))
        .to_string();
    scrub(&diff).into_owned()
}

/// The diff of an object a prune deletes: every live line removed, Secret values
/// masked, and every known secret value wherever it appears.
pub fn removal(id: &ObjectId, live: &Value) -> String {
    let mut live = comparable(live);
    if is_secret(&live) {
        kpipe_core::redact::mask_secret(&mut live);
    }
    let place = match &id.namespace {
        Some(ns) => format!("{ns}/{}", kubectl_name(id)),
        None => kubectl_name(id),
    };
    let old = kpipe_core::yaml::to_string(&live);
    let diff = TextDiff::from_lines(old.as_str(), "")
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{place}"), &format!("merged/{place}"))
        .to_string();
    scrub(&diff).into_owned()
}

/// Whether two objects differ only in what applying cannot change but controllers keep
/// moving meanwhile (status, and the resourceVersion their writes bump): then applying
/// changes nothing. (Both are shown, as `kubectl diff` shows them, when something else
/// differs.)
fn same_but_moved(live: &Value, merged: &Value) -> bool {
    let strip = |object: &Value| {
        let mut object = object.clone();
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        object
    };
    strip(live) == strip(merged)
}

/// The object as `kubectl diff` shows it: without managedFields.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    // A Secret's last-applied-configuration is a JSON copy of its values.
    if is_secret(&object)
        && let Some(copy) = object["metadata"]["annotations"].get(LAST_APPLIED).cloned()
    {
        let mut masked = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"annotations": {LAST_APPLIED: copy}}});
        mask_secret(&mut masked);
        object["metadata"]["annotations"][LAST_APPLIED] =
            masked["metadata"]["annotations"][LAST_APPLIED].take();
    }
    object
}

fn mask_pair(live: Option<&mut Value>, merged: &mut Value) {
    let empty = serde_json::Map::new();
    let before = live
        .as_ref()
        .and_then(|l| l["data"].as_object())
        .cloned()
        .unwrap_or_default();
    if let Some(after) = merged.get_mut("data").and_then(Value::as_object_mut) {
        for (key, value) in after.iter_mut() {
            *value = Value::String(mark(before.get(key).is_some_and(|b| b != value), "after"));
        }
    }
    let after = merged["data"].as_object().unwrap_or(&empty).clone();
    if let Some(live) = live
        && let Some(data) = live.get_mut("data").and_then(Value::as_object_mut)
    {
        for (key, value) in data.iter_mut() {
            let changed = after.get(key).is_some_and(|a| a.as_str() != Some(MASK));
            *value = Value::String(mark(changed, "before"));
        }
    }
}

fn mark(changed: bool, side: &str) -> String {
    if changed {
        format!("{MASK} ({side})")
    } else {
        MASK.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(kind: &str) -> ObjectId {
        ObjectId {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        }
    }

    #[test]
    fn shows_changed_lines_only_and_nothing_when_equal() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "managedFields": [{}]},
                          "data": {"A": "1", "B": "2"}});
        let merged = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                            "data": {"A": "1", "B": "3"}});
        let text = unified(&id("ConfigMap"), Some(&live), &merged);
        assert!(
            text.starts_with("--- live/ns/configmap/x\n+++ merged/ns/configmap/x\n"),
            "{text}"
        );
        assert!(text.contains("\n-  B: \"2\"\n+  B: \"3\"\n"), "{text}");
        assert!(!text.contains("managedFields"), "{text}");
        assert_eq!(unified(&id("ConfigMap"), Some(&merged), &merged), "");
    }

    #[test]
    fn last_applied_configuration_of_a_secret_is_masked() {
        // Case 1 of the leak hunt: a Secret first created with `kubectl apply`.
        let applied = r#"{"apiVersion":"v1","data":{"PW":"b2xkLXBhc3N3b3Jk"},"kind":"Secret","metadata":{"name":"x"}}"#;
        let live = json!({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "x", "annotations": {LAST_APPLIED: applied}},
                          "data": {"PW": "b2xkLXBhc3N3b3Jk"}});
        let mut merged = live.clone();
        merged["data"]["PW"] = "bmV3LXBhc3N3b3Jk".into();
        let text = unified(&id("Secret"), Some(&live), &merged);
        assert!(text.contains("PW"), "{text}");
        for value in ["b2xkLXBhc3N3b3Jk", "bmV3LXBhc3N3b3Jk", "old-password"] {
            assert!(!text.contains(value), "{text}");
        }
    }

    #[test]
    fn copies_of_secret_values_on_other_objects_are_masked() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "stringData": {"PW": "copied-s3cret-value"}});
        kpipe_core::redact::learn_objects([&secret]);
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                          "data": {"A": "1"}});
        let mut merged = live.clone();
        merged["metadata"]["annotations"] = json!({"note": "pw is copied-s3cret-value"});
        merged["data"]["B"] = "copied-s3cret-value".into();
        let text = unified(&id("ConfigMap"), Some(&live), &merged);
        assert!(!text.contains("copied-s3cret-value"), "{text}");
        assert!(text.contains("+    note: pw is <redacted>\n"), "{text}");
        assert!(text.contains("+  B: <redacted>\n"), "{text}");
        let pruned = removal(&id("ConfigMap"), &merged);
        assert!(!pruned.contains("copied-s3cret-value"), "{pruned}");
    }

    #[test]
    fn secret_values_are_masked_but_changes_still_show() {
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                          "data": {"PW": "b2xk", "USER": "dXNlcg=="}});
        let merged = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                            "data": {"PW": "bmV3", "USER": "dXNlcg=="}});
        let text = unified(&id("Secret"), Some(&live), &merged);
        for value in ["b2xk", "bmV3", "dXNlcg"] {
            assert!(!text.contains(value), "{text}");
        }
        assert!(
            text.contains("-  PW: \"<redacted> (before)\"\n+  PW: \"<redacted> (after)\"\n"),
            "{text}"
        );
        assert!(text.contains("   USER: \"<redacted>\"\n"), "{text}");
        let pruned = removal(&id("Secret"), &live);
        assert!(pruned.contains("-  PW: \"<redacted>\"\n"), "{pruned}");
        assert!(
            !pruned.contains("b2xk") && !pruned.contains("\n+ "),
            "{pruned}"
        );
        let created = unified(&id("Secret"), None, &merged);
        assert!(
            created.contains("+  PW: \"<redacted>\"\n") && !created.contains("bmV3"),
            "{created}"
        );
    }
}

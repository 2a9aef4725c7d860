//! Resources served from another resource's storage, as the real server serves one
//! stored object under several groups: `events.k8s.io/v1` Events are the `v1` Events
//! (same objects, same uid, same resourceVersion), with fields renamed
//! (k8s.io/kubernetes pkg/apis/events/v1 conversion). Requests to such a view go to
//! the stored resource; bodies are converted on the way in and out.
//!
//! Simplification: managedFields keep the stored form's field names and apiVersion,
//! where the real server records each manager's own version.

use serde_json::{Map, Value};

use crate::kinds::{ResourceType, builtins};
use crate::status::ApiError;

/// `events.k8s.io/v1` field -> `v1` field; the others have the same name in both.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn is_event_view(rt: &ResourceType) -> bool {
    !rt.custom && rt.group == "events.k8s.io" && rt.plural == "events"
}

/// The resource whose storage `view` serves, when it is not its own.
pub fn storage(view: &ResourceType) -> Option<ResourceType> {
    if !is_event_view(view) {
        return None;
    }
    builtins()
        .into_iter()
        .find(|t| t.group.is_empty() && t.plural == "events")
}

fn rename(object: &mut Value, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let mut renamed = Map::new();
    for (from, to) in pairs {
        if let Some(value) = map.remove(from) {
            renamed.insert(to.into(), value);
        }
    }
    map.extend(renamed);
}

/// A body (object or merge patch) of the view as the stored resource has it.
pub fn inward(view: &ResourceType, stored: &ResourceType, mut body: Value) -> Value {
    if is_event_view(view) {
        rename(&mut body, EVENT_FIELDS.iter().copied());
        if body.get("apiVersion").is_some() {
            body["apiVersion"] = stored.api_version().into();
        }
    }
    body
}

/// A JSON patch path of the view (`/note`) as the stored resource has it (`/message`).
pub fn inward_path(view: &ResourceType, path: &str) -> String {
    if is_event_view(view) {
        let (first, rest) = match path[1.min(path.len())..].split_once('/') {
            Some((first, rest)) => (first, format!("/{rest}")),
            None => (&path[1.min(path.len())..], String::new()),
        };
        if let Some((_, to)) = EVENT_FIELDS.iter().find(|(from, _)| *from == first) {
            return format!("/{to}{rest}");
        }
    }
    path.to_owned()
}

/// A stored object (or a list of them, or a Status) as the view shows it.
pub fn outward(view: &ResourceType, mut object: Value) -> Value {
    if !is_event_view(view) {
        return object;
    }
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            *item = outward(view, std::mem::take(item));
        }
        object["apiVersion"] = view.api_version().into();
        object["kind"] = view.list_kind.clone().into();
        return object;
    }
    if object["kind"] != view.kind.as_str() {
        return object;
    }
    rename(
        &mut object,
        EVENT_FIELDS.iter().map(|(to, from)| (*from, *to)),
    );
    object["apiVersion"] = view.api_version().into();
    object
}

/// An error about the stored resource, naming the view as the real server does
/// (`events.events.k8s.io "x" not found`).
pub fn error(view: &ResourceType, stored: &ResourceType, mut e: ApiError) -> ApiError {
    if view == stored {
        return e;
    }
    let prefix = format!("{} \"", stored.qualified_plural());
    if let Some(rest) = e.message.strip_prefix(&prefix) {
        e.message = format!("{} \"{rest}", view.qualified_plural());
    }
    if let Some(details) = e.details.as_mut().and_then(Value::as_object_mut)
        && details.get("kind").and_then(Value::as_str) == Some(&stored.plural)
    {
        details.insert("group".into(), view.group.clone().into());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> (ResourceType, ResourceType) {
        let all = builtins();
        let view = all
            .iter()
            .find(|t| t.group == "events.k8s.io")
            .unwrap()
            .clone();
        let stored = storage(&view).unwrap();
        (view, stored)
    }

    #[test]
    fn an_events_k8s_io_event_is_a_v1_event_with_fields_renamed() {
        let (view, stored) = types();
        assert_eq!(stored.api_version(), "v1");
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "note": "hello", "regarding": {"kind": "Pod", "name": "p"},
            "reportingController": "example.com/c", "reason": "Started", "type": "Normal"});
        let stored_form = inward(&view, &stored, new.clone());
        assert_eq!(stored_form["apiVersion"], "v1");
        assert_eq!(stored_form["message"], "hello");
        assert_eq!(stored_form["involvedObject"]["name"], "p");
        assert_eq!(stored_form["reportingComponent"], "example.com/c");
        assert_eq!(stored_form["reason"], "Started");
        assert!(stored_form.get("note").is_none());
        assert_eq!(outward(&view, stored_form), new);
        assert_eq!(inward_path(&view, "/note"), "/message");
        assert_eq!(
            inward_path(&view, "/regarding/name"),
            "/involvedObject/name"
        );
        assert_eq!(inward_path(&view, "/metadata/labels"), "/metadata/labels");
        let e = error(&view, &stored, ApiError::not_found(&stored, "e"));
        assert_eq!(e.message, "events.events.k8s.io \"e\" not found");
    }
}

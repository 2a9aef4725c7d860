//! Proving that applying an object again would change nothing, so that nothing is sent
//! (kapp skips unchanged objects by diffing too). On a no-op re-apply the writes are
//! most of the cost, for the API server above all: a server-side apply of a 1 MB CRD
//! decodes, merges and compares it whole.
//!
//! Proven only when the live object is not being deleted, holds every value of the
//! applied configuration, and this field manager's one Apply entry in managedFields
//! (of the same apiVersion) owns exactly the fields of that configuration, no more and
//! no fewer: server-side apply would then merge the same values into the same fields
//! and store the same object. The fields are matched the way the server records them
//! (fieldsV1): `f:NAME` for a field, `k:{...}` for an item of a list keyed by some of
//! its fields, `v:VALUE` for an item of a set, and a leaf for what the schema makes
//! atomic. Whatever this does not understand sends: stringData (never stored as sent),
//! a null (a removal), a list item matched by position, a value the server normalised.

use serde_json::{Map, Value};

/// Whether applying `body` as `manager` would leave `live` as it is.
pub fn proven(body: &Value, live: &Value, manager: &str) -> bool {
    let meta = &live["metadata"];
    if !meta["deletionTimestamp"].is_null() {
        return false;
    }
    let mut entries = meta["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["manager"] == manager && f["operation"] == "Apply")
        .filter(|f| f["subresource"].is_null());
    let (Some(entry), None) = (entries.next(), entries.next()) else {
        return false;
    };
    if entry["apiVersion"] != body["apiVersion"] || entry["fieldsType"] != "FieldsV1" {
        return false;
    }
    let Some(config) = configuration(body) else {
        return false;
    };
    let fields = &entry["fieldsV1"];
    map_matches(&config, fields, live)
}

/// The fields server-side apply tracks: the body without its identity (apiVersion,
/// kind, metadata.name and .namespace), which fieldsV1 never lists.
fn configuration(body: &Value) -> Option<Map<String, Value>> {
    let mut config = body.as_object()?.clone();
    config.remove("apiVersion");
    config.remove("kind");
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("name");
        meta.remove("namespace");
        if meta.is_empty() {
            config.remove("metadata");
        }
    }
    Some(config)
}

/// A field node of fieldsV1 without its `.` (the node itself, owned with its item).
fn children(node: &Value) -> Option<Vec<(&String, &Value)>> {
    Some(
        node.as_object()?
            .iter()
            .filter(|(key, _)| key.as_str() != ".")
            .collect(),
    )
}

/// A map of the configuration against its field node and the live map: exactly its
/// keys owned, each value matching.
fn map_matches(config: &Map<String, Value>, node: &Value, live: &Value) -> bool {
    let Some(owned) = children(node) else {
        return false;
    };
    if owned.len() != config.len() {
        return false;
    }
    owned.into_iter().all(|(key, child)| {
        let Some(name) = key.strip_prefix("f:") else {
            return false;
        };
        match (config.get(name), live.get(name)) {
            (Some(value), Some(live)) => value_matches(value, child, live),
            _ => false,
        }
    })
}

fn value_matches(value: &Value, node: &Value, live: &Value) -> bool {
    let leaf = node.as_object().is_some_and(Map::is_empty);
    match value {
        Value::Null => false,
        Value::Object(map) if leaf => {
            // An atomic map is replaced whole; an empty struct keeps what others set.
            if map.is_empty() {
                live.is_object()
            } else {
                value == live
            }
        }
        Value::Object(map) => map_matches(map, node, live),
        Value::Array(items) if leaf => live.as_array().is_some_and(|live| {
            live.len() == items.len() && items.iter().zip(live).all(|(s, l)| holds(s, l))
        }),
        Value::Array(items) => list_matches(items, node, live),
        scalar => leaf && scalar == live,
    }
}

/// A keyed list (`k:{...}` items) or a set (`v:VALUE` items): each item of the
/// configuration owned exactly once, matched in the live list in the same order.
fn list_matches(items: &[Value], node: &Value, live: &Value) -> bool {
    let (Some(owned), Some(live)) = (children(node), live.as_array()) else {
        return false;
    };
    if owned.len() != items.len() {
        return false;
    }
    let mut after = 0;
    let mut used = Vec::with_capacity(items.len());
    for item in items {
        // The live item holding this one, after the previous match: the order kept.
        let Some(at) = (after..live.len()).find(|&i| holds(item, &live[i])) else {
            return false;
        };
        let found = &live[at];
        after = at + 1;
        let Some(&(key, child)) = owned.iter().find(|(key, _)| names(key, found)) else {
            return false;
        };
        if used.contains(&key) {
            return false;
        }
        used.push(key);
        let matches = match (item, key.starts_with("k:")) {
            (Value::Object(map), true) => map_matches(map, child, found),
            (_, false) => children(child).is_some_and(|c| c.is_empty()),
            _ => false,
        };
        if !matches {
            return false;
        }
    }
    true
}

/// Whether a fieldsV1 list-item key names `item`: `k:{...}` its key fields (as stored,
/// defaults included: a port's protocol), `v:VALUE` its value.
fn names(key: &str, item: &Value) -> bool {
    if let Some(fields) = key.strip_prefix("k:") {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) else {
            return false;
        };
        fields.iter().all(|(k, v)| item.get(k) == Some(v))
    } else if let Some(value) = key.strip_prefix("v:") {
        serde_json::from_str::<Value>(value).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

/// Whether `live` has everything `sent` has (the server adds defaults, never removes).
pub fn holds(sent: &Value, live: &Value) -> bool {
    match (sent, live) {
        (Value::Object(sent), Value::Object(live)) => sent
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|l| holds(value, l))),
        (Value::Array(sent), Value::Array(live)) => {
            sent.len() == live.len() && sent.iter().zip(live).all(|(s, l)| holds(s, l))
        }
        _ => sent == live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use serde_json::json;

    fn deployment() -> (Value, Value) {
        let path = format!(
            "{}/testdata/27-deployment-apply.request.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        (body, fixtures::body("27-deployment-apply.json"))
    }

    #[test]
    fn a_real_servers_answer_proves_its_own_apply_unchanged() {
        // Keyed containers, a port keyed with its defaulted protocol, an atomic selector
        // and an atomic envFrom list, as a real kube-apiserver recorded them.
        let (body, live) = deployment();
        assert!(proven(&body, &live, "kapply"));
        let config = fixtures::body("15-ssa-noop.json");
        let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "polls-config", "namespace": "fixtures"},
            "data": {"DEBUG": "True", "DJANGO_LOGLEVEL": "info"}});
        assert!(proven(&applied, &config, "kapply"));
    }

    #[test]
    fn any_difference_sends() {
        let (body, live) = deployment();
        assert!(!proven(&body, &live, "someone-else"));
        let mut changed = body.clone();
        changed["spec"]["replicas"] = json!(3);
        assert!(!proven(&changed, &live, "kapply"));
        // A field dropped from the configuration: the server would remove it.
        let mut fewer = body.clone();
        fewer["spec"].as_object_mut().unwrap().remove("replicas");
        assert!(!proven(&fewer, &live, "kapply"));
        // A field added, even one the live object already has by default.
        let mut more = body.clone();
        more["spec"]["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
        assert!(!proven(&more, &live, "kapply"));
        let mut port = body.clone();
        port["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = json!("web");
        assert!(!proven(&port, &live, "kapply"));
        let mut envs = body.clone();
        envs["spec"]["template"]["spec"]["containers"][0]["envFrom"]
            .as_array_mut()
            .unwrap()
            .reverse();
        assert!(!proven(&envs, &live, "kapply"));
        let mut null = body.clone();
        null["metadata"]["labels"]["app"] = Value::Null;
        assert!(!proven(&null, &live, "kapply"));
        let mut other_version = body;
        other_version["apiVersion"] = json!("apps/v1beta2");
        assert!(!proven(&other_version, &live, "kapply"));
    }

    #[test]
    fn a_second_item_or_a_deletion_sends() {
        let (body, live) = deployment();
        let mut two = body.clone();
        let containers = two["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        containers.push(containers[0].clone());
        assert!(!proven(&two, &live, "kapply"));
        let mut deleting = live;
        deleting["metadata"]["deletionTimestamp"] = json!("2026-11-24T17:50:00Z");
        assert!(!proven(&body, &deleting, "kapply"));
    }

    #[test]
    fn string_data_is_never_proven_it_is_not_stored_as_sent() {
        let live = fixtures::body("25-secret-stringdata.json");
        let body = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "polls-secret"}, "type": "Opaque",
            "stringData": {"DATABASE_PASSWORD": "s3cr3t"}, "data": {"OTHER": "b3RoZXI="}});
        assert!(!proven(&body, &live, "kapply"));
    }

    #[test]
    fn sets_are_matched_by_value() {
        let live = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a",
            "finalizers": ["a.io/x", "b.io/y"],
            "managedFields": [{"manager": "kapply", "operation": "Apply", "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"a.io/x\"": {}}}}}]}});
        let body = json!({"apiVersion": "v1", "kind": "X",
            "metadata": {"name": "a", "finalizers": ["a.io/x"]}});
        assert!(proven(&body, &live, "kapply"));
        let other = json!({"apiVersion": "v1", "kind": "X",
            "metadata": {"name": "a", "finalizers": ["b.io/y"]}});
        assert!(!proven(&other, &live, "kapply"));
    }
}

//! Field sets as server-side apply tracks them (the `fieldsV1` format of
//! managedFields), and the merges that follow the same list semantics.
//!
//! A field set is a set of paths; each path element is a fieldsV1 key: `f:name`
//! (a map field), `k:{"name":"x"}` (a list item by its merge key) or `.` (the node
//! itself). Lists whose items have a merge key are associative, all others atomic,
//! as in the Kubernetes schemas the kpipe tools touch.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// The merge key of a list, from its field name and items (Kubernetes' schemas).
pub fn list_keys(field: &str, items: &[Value]) -> Option<&'static [&'static str]> {
    let any_has = |k: &str| items.iter().any(|i| i.get(k).is_some());
    if !items.iter().all(Value::is_object) {
        return None;
    }
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "ports" if any_has("containerPort") => Some(&["containerPort", "protocol"]),
        "ports" if any_has("port") => Some(&["port", "protocol"]),
        "conditions" => Some(&["type"]),
        "ownerReferences" => Some(&["uid"]),
        "hostAliases" => Some(&["ip"]),
        _ => None,
    }
}

/// Label selectors are atomic in the Kubernetes schemas (`+structType=atomic`).
fn is_atomic_map(field: &str, map: &Map<String, Value>) -> bool {
    field == "selector" && (map.contains_key("matchLabels") || map.contains_key("matchExpressions"))
}

/// A merge key field of an item; a port's protocol defaults to TCP before the
/// server keys it, so an applied port without one matches the stored one.
fn key_field(item: &Value, field: &str) -> Option<Value> {
    match item.get(field) {
        Some(v) => Some(v.clone()),
        None if field == "protocol" => Some(Value::from("TCP")),
        None => None,
    }
}

/// The `k:{...}` element for a list item.
fn item_key(keys: &[&str], item: &Value) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = key_field(item, k) {
            m.insert((*k).to_string(), v);
        }
    }
    format!("k:{}", Value::Object(m))
}

fn item_matches(keys: &[&str], item: &Value, key: &Value) -> bool {
    keys.iter().all(|k| key_field(item, k) == key_field(key, k))
}

/// Ports are keyed with their protocol, which the server defaults to TCP.
pub fn default_port_protocols(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "ports"
                    && let Value::Array(items) = v
                    && list_keys("ports", items).is_some()
                {
                    for item in items.iter_mut() {
                        if let Value::Object(port) = item {
                            port.entry("protocol").or_insert_with(|| Value::from("TCP"));
                        }
                    }
                }
                default_port_protocols(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_port_protocols),
        _ => {}
    }
}

/// The fields set in `value` (an object's body without apiVersion/kind). `updates`
/// marks maps themselves as owned too, as the server records for Update operations.
pub fn field_set(value: &Value, updates: bool) -> FieldSet {
    let mut set = FieldSet::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            let path = vec![format!("f:{k}")];
            // metadata always exists: nobody owns the map itself.
            walk(&path, k, v, updates && k != "metadata", updates, &mut set);
        }
    }
    set
}

fn walk(
    path: &Path,
    field: &str,
    value: &Value,
    own_self: bool,
    updates: bool,
    set: &mut FieldSet,
) {
    let with = |p: &Path, e: String| -> Path {
        let mut p = p.clone();
        p.push(e);
        p
    };
    match value {
        Value::Object(map) if !map.is_empty() && !is_atomic_map(field, map) => {
            if own_self {
                set.insert(with(path, ".".into()));
            }
            for (k, v) in map {
                walk(&with(path, format!("f:{k}")), k, v, updates, updates, set);
            }
        }
        Value::Array(items) if !items.is_empty() => match list_keys(field, items) {
            Some(keys) => {
                if own_self {
                    set.insert(with(path, ".".into()));
                }
                for item in items {
                    let item_path = with(path, item_key(keys, item));
                    set.insert(with(&item_path, ".".into()));
                    if let Value::Object(m) = item {
                        for (k, v) in m {
                            walk(
                                &with(&item_path, format!("f:{k}")),
                                k,
                                v,
                                updates,
                                updates,
                                set,
                            );
                        }
                    }
                }
            }
            None => {
                set.insert(path.clone());
            }
        },
        _ => {
            set.insert(path.clone());
        }
    }
}

/// The fieldsV1 JSON tree of a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for element in path {
            node = node
                .entry(element.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
    }
    Value::Object(root)
}

/// The field set of a fieldsV1 JSON tree.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    fn go(prefix: &Path, node: &Value, set: &mut FieldSet) {
        match node.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, v) in m {
                    let mut p = prefix.clone();
                    p.push(k.clone());
                    go(&p, v, set);
                }
            }
            _ if !prefix.is_empty() => {
                set.insert(prefix.clone());
            }
            _ => {}
        }
    }
    let mut set = FieldSet::new();
    go(&Vec::new(), tree, &mut set);
    set
}

/// The value a path names in `value`, if present.
pub fn get_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = value;
    for element in path {
        cur = step(cur, element)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, element: &str) -> Option<&'a Value> {
    if element == "." {
        Some(cur)
    } else if let Some(name) = element.strip_prefix("f:") {
        cur.get(name)
    } else if let Some(key) = element.strip_prefix("k:") {
        let key: Value = serde_json::from_str(key).ok()?;
        let keys: Vec<&str> = key.as_object()?.keys().map(String::as_str).collect();
        cur.as_array()?
            .iter()
            .find(|item| item_matches(&keys, item, &key))
    } else {
        None
    }
}

/// Removes the field (or list item, for a `k:..` + `.` path) a path names.
pub fn remove_at(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if last == "." {
        if let Some((item, list_path)) = parents.split_last()
            && let Some(key) = item.strip_prefix("k:")
            && let Ok(key) = serde_json::from_str::<Value>(key)
            && let Some(Value::Array(items)) = get_mut_at(value, list_path)
        {
            let keys: Vec<String> = key
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            items.retain(|i| !item_matches(&keys, i, &key));
        }
        return;
    }
    if let Some(name) = last.strip_prefix("f:")
        && let Some(Value::Object(m)) = get_mut_at(value, parents)
    {
        m.remove(name);
    }
}

fn get_mut_at<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = value;
    for element in path {
        cur = if element == "." {
            cur
        } else if let Some(name) = element.strip_prefix("f:") {
            cur.get_mut(name)?
        } else if let Some(key) = element.strip_prefix("k:") {
            let key: Value = serde_json::from_str(key).ok()?;
            let keys: Vec<String> = key.as_object()?.keys().cloned().collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            cur.as_array_mut()?
                .iter_mut()
                .find(|item| item_matches(&keys, item, &key))?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// `.spec.template.spec.containers[name="polls"].image`, as conflicts name a path.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let key: Value = serde_json::from_str(key).unwrap_or(Value::Null);
            let parts: Vec<String> = key
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    out
}

/// Server-side apply's merge: maps merge, associative lists merge item by key,
/// everything else is replaced by the applied value.
pub fn merge_applied(live: &mut Value, applied: &Value) {
    merge_with(live, applied, "", false)
}

/// A strategic merge patch: like apply's merge, plus `null` deletes a field and
/// `$patch: delete` an item; other `$` directives are ordering hints we can ignore.
pub fn strategic_merge(live: &mut Value, patch: &Value) {
    merge_with(live, patch, "", true)
}

fn merge_with(live: &mut Value, patch: &Value, field: &str, strategic: bool) {
    match (live, patch) {
        (Value::Object(l), Value::Object(p)) if !is_atomic_map(field, p) => {
            for (k, pv) in p {
                if k.starts_with('$') {
                    continue;
                }
                if strategic && pv.is_null() {
                    l.remove(k);
                    continue;
                }
                match l.get_mut(k) {
                    Some(lv) => merge_with(lv, pv, k, strategic),
                    None => {
                        let mut fresh = Value::Null;
                        merge_with(&mut fresh, pv, k, strategic);
                        l.insert(k.clone(), fresh);
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(p))
            if list_keys(field, p).is_some() && list_keys(field, l).is_some() =>
        {
            let keys = list_keys(field, p).expect("checked");
            for pi in p {
                let delete =
                    strategic && pi.get("$patch").and_then(Value::as_str) == Some("delete");
                let pos = l.iter().position(|li| item_matches(keys, li, pi));
                match (pos, delete) {
                    (Some(i), true) => {
                        l.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => merge_with(&mut l[i], pi, "", strategic),
                    (None, false) => {
                        let mut fresh = Value::Null;
                        merge_with(&mut fresh, pi, "", strategic);
                        l.push(fresh);
                    }
                }
            }
        }
        (live, patch) => {
            *live = strip_directives(patch);
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_field_set_matches_the_recorded_deployment() {
        let applied = json!({"spec": {"selector": {"matchLabels": {"app": "polls"}},
            "template": {"spec": {"containers": [{"name": "polls", "image": "x",
                "ports": [{"containerPort": 8000, "name": "gunicorn"}]}]}}}});
        let tree = to_fields_v1(&field_set(&applied, false));
        assert_eq!(
            tree,
            json!({"f:spec": {"f:selector": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"polls\"}": {".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":8000,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:name": {}}}}}}}}})
        );
        assert_eq!(from_fields_v1(&tree), field_set(&applied, false));
    }

    #[test]
    fn update_field_set_owns_maps() {
        let tree = to_fields_v1(&field_set(
            &json!({"spec": {"a": 1}, "metadata": {"labels": {"x": "y"}}}),
            true,
        ));
        assert_eq!(
            tree,
            json!({"f:spec": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        );
    }

    #[test]
    fn paths_reach_list_items_and_remove_them() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        let p: Path = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"b\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(get_at(&v, &p), Some(&json!("2")));
        assert_eq!(display_path(&p), ".spec.containers[name=\"b\"].image");
        let mut item = p.clone();
        item.pop();
        item.push(".".into());
        remove_at(&mut v, &item);
        assert_eq!(
            v,
            json!({"spec": {"containers": [{"name": "a", "image": "1"}]}})
        );
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut live = json!({"spec": {"containers": [{"name": "a", "image": "1"}], "x": 1}});
        strategic_merge(
            &mut live,
            &json!({"$setElementOrder/containers": [], "spec": {"x": null,
            "containers": [{"name": "a", "image": "2"}, {"name": "b", "image": "3"}]}}),
        );
        assert_eq!(
            live,
            json!({"spec": {"containers": [{"name": "a", "image": "2"}, {"name": "b", "image": "3"}]}})
        );
    }
}

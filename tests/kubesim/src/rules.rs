//! Per-kind rules the real server enforces and tools trip on: names, Secret and
//! ConfigMap values, immutable fields, Ingress hosts, size, and the defaults it fills in.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kpipe_core::object::{MAX_OBJECT_BYTES, dns1123_label_error, dns1123_subdomain_error};
use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause, DNS1123_SUBDOMAIN_HINT};

fn is(rt: &ResourceType, group: &str, plural: &str) -> bool {
    rt.group == group && rt.plural == plural && !rt.custom
}

/// `/v1, Kind=ConfigMap` as the apply machinery's messages name a kind.
fn gvk(rt: &ResourceType) -> String {
    format!("{}/{}, Kind={}", rt.group, rt.version, rt.kind)
}

fn go_value(v: &Value) -> String {
    match v {
        Value::Object(_) => "map[string]interface {}".into(),
        Value::Array(_) => "[]interface {}".into(),
        other => other.to_string(),
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        _ => "null",
    }
}

/// ConfigMap and Secret values must be strings. An apply patch fails while the
/// server builds its typed patch (500, fixture 22); a JSON body fails to decode (400).
pub fn check_string_values(rt: &ResourceType, obj: &Value, apply: bool) -> Result<(), ApiError> {
    let fields: &[&str] = if is(rt, "", "configmaps") {
        &["data", "binaryData"]
    } else if is(rt, "", "secrets") {
        &["data", "stringData"]
    } else {
        return Ok(());
    };
    for field in fields {
        let Some(map) = obj.get(*field).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in map {
            if value.is_string() {
                continue;
            }
            return Err(if apply {
                let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                ApiError::internal(format!(
                    "failed to create typed patch object ({ns}/{name}; {}): .{field}.{key}: expected string, got &value.valueUnstructured{{Value:{}}}",
                    gvk(rt),
                    go_value(value)
                ))
            } else {
                ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: json: cannot unmarshal {t} into Go struct field {kind}.{field} of type string",
                    kind = rt.kind,
                    v = rt.version,
                    t = go_type(value)
                ))
            });
        }
    }
    Ok(())
}

/// Secret `stringData` is write-only: merged into base64 `data`, never stored.
/// Invalid base64 in `data` fails the conversion, as a 500 (fixture 26).
pub fn fold_secret_string_data(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    if !is(rt, "", "secrets") {
        return Ok(());
    }
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for value in data.values() {
            let text = value.as_str().unwrap_or_default();
            if let Err(e) = STANDARD.decode(text) {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                let at = match e {
                    base64::DecodeError::InvalidByte(i, _)
                    | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                    _ => text.len(),
                };
                return Err(ApiError::internal(format!(
                    "failed to convert new object (/{name}; {}) to proper version: unable to convert unstructured object to {}: error decoding from json: illegal base64 data at input byte {at}",
                    gvk(rt),
                    gvk(rt)
                )));
            }
        }
    }
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        let data = obj
            .as_object_mut()
            .expect("objects are maps")
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(data) = data {
            for (k, v) in string_data {
                data.insert(
                    k,
                    Value::from(STANDARD.encode(v.as_str().unwrap_or_default())),
                );
            }
        }
    }
    Ok(())
}

/// Validation of a complete object about to be stored; `old` for updates.
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    let name_error = if is(rt, "", "namespaces") || is(rt, "", "services") {
        dns1123_label_error(name)
    } else {
        dns1123_subdomain_error(name).map(|e| format!("{e} {DNS1123_SUBDOMAIN_HINT}"))
    };
    if let Some(why) = name_error {
        causes.push(Cause::invalid("metadata.name", &format!("{name:?}"), &why));
    }
    if is(rt, "", "configmaps") || is(rt, "", "secrets") {
        let size: usize = ["data", "binaryData"]
            .iter()
            .filter_map(|f| obj.get(*f).and_then(Value::as_object))
            .flat_map(|m| {
                m.iter()
                    .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            })
            .sum();
        if size > MAX_OBJECT_BYTES {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                message: format!("Too long: must have at most {MAX_OBJECT_BYTES} bytes"),
                field: "data".into(),
            });
        }
    }
    if is(rt, "networking.k8s.io", "ingresses") {
        ingress_hosts(obj, &mut causes);
    }
    if let Some(old) = old {
        let immutable = |field: &str, path: &[&str], causes: &mut Vec<Cause>| {
            let get = |v: &Value| {
                path.iter()
                    .fold(v.clone(), |v, p| v.get(*p).cloned().unwrap_or(Value::Null))
            };
            let (before, after) = (get(old), get(obj));
            if before != after {
                causes.push(Cause::invalid(
                    field,
                    &after.to_string(),
                    "field is immutable",
                ));
            }
        };
        if is(rt, "apps", "deployments") {
            immutable("spec.selector", &["spec", "selector"], &mut causes);
        }
        if is(rt, "batch", "jobs") {
            immutable("spec.template", &["spec", "template"], &mut causes);
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, name, causes))
    }
}

fn ingress_hosts(obj: &Value, causes: &mut Vec<Cause>) {
    let mut check = |field: String, host: &str| {
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if let Some(why) = dns1123_subdomain_error(bare) {
            causes.push(Cause::invalid(
                field,
                &format!("{host:?}"),
                &format!("{why} {DNS1123_SUBDOMAIN_HINT}"),
            ));
        }
    };
    let items = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for (i, rule) in items(&obj["spec"]["rules"]).iter().enumerate() {
        if let Some(host) = rule["host"].as_str() {
            check(format!("spec.rules[{i}].host"), host);
        }
    }
    for (i, tls) in items(&obj["spec"]["tls"]).iter().enumerate() {
        for (j, host) in items(&tls["hosts"]).iter().enumerate() {
            if let Some(host) = host.as_str() {
                check(format!("spec.tls[{i}].hosts[{j}]"), host);
            }
        }
    }
}

/// What admission adds before the write is recorded, so the writer owns it: a
/// namespace's `kubernetes.io/metadata.name` label (fixture 12).
pub fn admit(rt: &ResourceType, obj: &mut Value) {
    if is(rt, "", "namespaces") && obj["metadata"].is_object() {
        let name = obj["metadata"]["name"].clone();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    }
}

/// Fills in what the real server defaults, so objects read back as they would
/// from a cluster (fixtures 27 and 29). Idempotent: a no-op apply stays a no-op.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if rt.custom {
        return;
    }
    crate::fields::default_port_protocols(obj);
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => default(obj, &["spec", "finalizers"], json!(["kubernetes"])),
        ("", "secrets") => default(obj, &["type"], json!("Opaque")),
        ("", "services") => {
            default(obj, &["spec", "type"], json!("ClusterIP"));
            default(obj, &["spec", "sessionAffinity"], json!("None"));
        }
        ("apps", "deployments") => {
            default(obj, &["spec", "replicas"], json!(1));
            default(
                obj,
                &["spec", "strategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            pod_template_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        ("batch", "jobs") => {
            // The job controller finds its pods by these labels, keyed by the Job's uid.
            let uid = obj["metadata"]["uid"].clone();
            let name = obj["metadata"]["name"].clone();
            let labels = json!({
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            });
            if obj["spec"]["manualSelector"] != json!(true) {
                default(
                    obj,
                    &["spec", "selector"],
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                );
                for (k, v) in labels.as_object().expect("literal map") {
                    default(obj, &["metadata", "labels", k], v.clone());
                    default(
                        obj,
                        &["spec", "template", "metadata", "labels", k],
                        v.clone(),
                    );
                }
            }
            default(obj, &["spec", "manualSelector"], json!(false));
            default(
                obj,
                &["spec", "podReplacementPolicy"],
                json!("TerminatingOrFailed"),
            );
            default(obj, &["spec", "parallelism"], json!(1));
            default(obj, &["spec", "completions"], json!(1));
            default(obj, &["spec", "backoffLimit"], json!(6));
            default(obj, &["spec", "completionMode"], json!("NonIndexed"));
            default(obj, &["spec", "suspend"], json!(false));
            pod_template_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        _ => {}
    }
}

fn default(obj: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = obj;
    for p in parents {
        if !cur.is_object() {
            return;
        }
        cur = cur
            .as_object_mut()
            .expect("checked")
            .entry(*p)
            .or_insert_with(|| json!({}));
    }
    if let Some(m) = cur.as_object_mut() {
        m.entry(*last).or_insert(value);
    }
}

fn pod_template_defaults(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, &["restartPolicy"], json!("Always"));
    default(spec, &["terminationGracePeriodSeconds"], json!(30));
    default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default(spec, &["securityContext"], json!({}));
    default(spec, &["schedulerName"], json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                let image = c["image"].as_str().unwrap_or_default();
                let tag = image.rsplit('/').next().unwrap_or_default();
                let pull = if !tag.contains(':') || tag.ends_with(":latest") {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                default(c, &["imagePullPolicy"], json!(pull));
                default(c, &["resources"], json!({}));
                default(
                    c,
                    &["terminationMessagePath"],
                    json!("/dev/termination-log"),
                );
                default(c, &["terminationMessagePolicy"], json!("File"));
            }
        }
    }
}

/// The status a new object starts with when written through the main resource.
pub fn initial_status(rt: &ResourceType) -> Option<Value> {
    match (rt.custom, rt.group.as_str(), rt.plural.as_str()) {
        (true, _, _) => None,
        (_, "", "namespaces") => Some(json!({"phase": "Active"})),
        (_, "", "services") | (_, "networking.k8s.io", "ingresses") => {
            Some(json!({"loadBalancer": {}}))
        }
        (_, "apiextensions.k8s.io", _) => None,
        (_, _, _) if rt.status_subresource => Some(json!({})),
        _ => None,
    }
}

/// What the real server writes into a CustomResourceDefinition's status once its
/// names are accepted: Established, so the new resource is served at once.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtins;

    fn rt(plural: &str) -> ResourceType {
        builtins().into_iter().find(|t| t.plural == plural).unwrap()
    }

    #[test]
    fn string_data_becomes_base64_data() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"A": "s3cr3t"}, "data": {"B": "b3RoZXI="}});
        fold_secret_string_data(&rt("secrets"), &mut s).unwrap();
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"A": "czNjcjN0", "B": "b3RoZXI="}})
        );
        let mut bad = json!({"metadata": {"name": "bad64"}, "data": {"K": "***notbase64"}});
        let e = fold_secret_string_data(&rt("secrets"), &mut bad).unwrap_err();
        assert_eq!(e.code, 500);
        assert!(
            e.message.ends_with("illegal base64 data at input byte 0"),
            "{}",
            e.message
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old =
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}}}});
        let new =
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "b"}}}});
        let e = validate(&rt("deployments"), &new, Some(&old)).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.starts_with("Deployment.apps \"d\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"b\"}}: field is immutable"), "{}", e.message);
    }

    #[test]
    fn bool_in_configmap_is_rejected() {
        let cm = json!({"metadata": {"name": "boolish"}, "data": {"DEBUG": true}});
        let e = check_string_values(&rt("configmaps"), &cm, true).unwrap_err();
        assert_eq!(
            e.message,
            "failed to create typed patch object (/boolish; /v1, Kind=ConfigMap): .data.DEBUG: expected string, got &value.valueUnstructured{Value:true}"
        );
    }
}

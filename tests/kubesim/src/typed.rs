//! Unknown fields in built-in kinds, found by reading the body into its
//! k8s-openapi type: the real server decodes into Go structs, so a field it does
//! not know is never stored, and `?fieldValidation=Strict` (kubectl's default)
//! rejects it, `Warn` reports it in a Warning header.

use k8s_openapi::api::{apps, autoscaling, batch, core, events, networking, policy};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::kinds::ResourceType;
use crate::status::ApiError;

/// What `?fieldValidation=` asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validation {
    Ignore,
    Warn,
    Strict,
}

impl Validation {
    pub fn parse(value: Option<&str>) -> Validation {
        match value {
            Some("Strict") => Validation::Strict,
            Some("Ignore") => Validation::Ignore,
            _ => Validation::Warn,
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> Option<Value> {
    serde_json::from_value::<T>(v.clone())
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
}

/// The body as its typed struct reads it back; None for kinds without one here
/// (custom resources, CRDs) and for bodies the later checks will reject anyway.
fn typed(rt: &ResourceType, body: &Value) -> Option<Value> {
    if rt.custom {
        return None;
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "configmaps") => round_trip::<core::v1::ConfigMap>(body),
        ("", "secrets") => round_trip::<core::v1::Secret>(body),
        ("", "namespaces") => round_trip::<core::v1::Namespace>(body),
        ("", "services") => round_trip::<core::v1::Service>(body),
        ("", "serviceaccounts") => round_trip::<core::v1::ServiceAccount>(body),
        ("", "events") => round_trip::<core::v1::Event>(body),
        ("events.k8s.io", "events") => round_trip::<events::v1::Event>(body),
        ("", "pods") => round_trip::<core::v1::Pod>(body),
        ("apps", "replicasets") => round_trip::<apps::v1::ReplicaSet>(body),
        ("apps", "deployments") => round_trip::<apps::v1::Deployment>(body),
        ("batch", "jobs") => round_trip::<batch::v1::Job>(body),
        ("networking.k8s.io", "ingresses") => round_trip::<networking::v1::Ingress>(body),
        ("autoscaling", "horizontalpodautoscalers") => {
            round_trip::<autoscaling::v2::HorizontalPodAutoscaler>(body)
        }
        ("policy", "poddisruptionbudgets") => round_trip::<policy::v1::PodDisruptionBudget>(body),
        _ => None,
    }
}

/// Paths of `input` (non-null) that `known` lacks, removing them from `input`.
fn prune(path: &str, input: &mut Value, known: &Value, found: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(fields), Value::Object(known_fields)) => {
            fields.retain(|k, v| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match known_fields.get(k) {
                    Some(known) => {
                        prune(&p, v, known, found);
                        true
                    }
                    None if v.is_null() => true,
                    None => {
                        found.push(p);
                        false
                    }
                }
            });
        }
        (Value::Array(items), Value::Array(known_items)) => {
            for (i, (item, known)) in items.iter_mut().zip(known_items).enumerate() {
                prune(&format!("{path}[{i}]"), item, known, found);
            }
        }
        _ => {}
    }
}

/// Drops the fields the kind does not declare; Strict turns them into a 400, Warn
/// into warnings (returned) for the response's Warning headers.
pub fn check(
    rt: &ResourceType,
    body: &mut Value,
    validation: Validation,
    apply: bool,
) -> Result<Vec<String>, ApiError> {
    let Some(known) = typed(rt, body) else {
        return Ok(Vec::new());
    };
    let mut unknown = Vec::new();
    prune("", body, &known, &mut unknown);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    match validation {
        Validation::Strict if apply => {
            let fields: Vec<String> = unknown
                .iter()
                .map(|f| format!(".{f}: field not declared in schema"))
                .collect();
            Err(ApiError::bad_request(fields.join(", ")))
        }
        Validation::Strict => {
            let fields: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field {f:?}"))
                .collect();
            Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                fields.join(", ")
            )))
        }
        Validation::Warn => Ok(unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect()),
        Validation::Ignore => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtins;
    use serde_json::json;

    fn deployments() -> ResourceType {
        builtins()
            .into_iter()
            .find(|t| t.plural == "deployments")
            .unwrap()
    }

    #[test]
    fn unknown_fields_are_found_pruned_and_judged() {
        let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "creationTimestamp": null},
            "spec": {"replicas": 1, "replica": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}}}});
        let mut pruned = body.clone();
        let warnings = check(&deployments(), &mut pruned, Validation::Warn, false).unwrap();
        assert_eq!(
            warnings,
            [
                "unknown field \"spec.replica\"",
                "unknown field \"spec.template.spec.containers[0].imagePolicy\""
            ]
        );
        assert!(pruned["spec"].get("replica").is_none());
        assert_eq!(pruned["metadata"]["creationTimestamp"], Value::Null);
        let e = check(&deployments(), &mut body.clone(), Validation::Strict, false).unwrap_err();
        assert_eq!(
            e.message,
            "strict decoding error: unknown field \"spec.replica\", unknown field \"spec.template.spec.containers[0].imagePolicy\""
        );
        let e = check(&deployments(), &mut body.clone(), Validation::Strict, true).unwrap_err();
        assert!(
            e.message
                .starts_with(".spec.replica: field not declared in schema"),
            "{}",
            e.message
        );
        assert!(
            check(&deployments(), &mut body.clone(), Validation::Ignore, false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn known_bodies_pass_unchanged() {
        let mut body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "b"}},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "i", "resources": {},
                    "ports": [{"containerPort": 80}], "envFrom": [{"secretRef": {"name": "s"}}]}]}}},
            "status": {}});
        let before = body.clone();
        assert!(
            check(&deployments(), &mut body, Validation::Strict, true)
                .unwrap()
                .is_empty()
        );
        assert_eq!(body, before);
    }
}

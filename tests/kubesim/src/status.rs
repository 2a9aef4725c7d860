//! API errors, answered as `Status` objects shaped like the real server's.

use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;

/// The regex the real server quotes after a DNS-1123 subdomain complaint.
pub const DNS1123_SUBDOMAIN_HINT: &str = "(e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// A failed request: HTTP code plus the Status body that explains it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: Option<String>,
    pub message: String,
    pub details: Option<Value>,
}

/// One `details.causes[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: &str, why: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {why}"),
            field: field.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }
}

fn details(name: &str, rt: &ResourceType, kind: &str) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), json!(name));
    if !rt.group.is_empty() {
        d.insert("group".into(), json!(rt.group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

impl ApiError {
    fn new(
        code: u16,
        reason: Option<&str>,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> ApiError {
        ApiError {
            code,
            reason: reason.map(String::from),
            message: message.into(),
            details,
        }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            404,
            Some("NotFound"),
            format!("{} \"{name}\" not found", rt.qualified_plural()),
            Some(details(name, rt, &rt.plural)),
        )
    }

    pub fn namespace_not_found(namespace: &str) -> ApiError {
        ApiError::new(
            404,
            Some("NotFound"),
            format!("namespaces \"{namespace}\" not found"),
            Some(json!({"name": namespace, "kind": "namespaces"})),
        )
    }

    /// A path that names no resource the server knows.
    pub fn no_route() -> ApiError {
        ApiError::new(
            404,
            Some("NotFound"),
            "the server could not find the requested resource",
            Some(json!({})),
        )
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            Some("AlreadyExists"),
            format!("{} \"{name}\" already exists", rt.qualified_plural()),
            Some(details(name, rt, &rt.plural)),
        )
    }

    /// An update carrying an old resourceVersion.
    pub fn stale(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            Some("Conflict"),
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified_plural()
            ),
            Some(details(name, rt, &rt.plural)),
        )
    }

    /// 422 with one cause per broken field, worded as the real server words it.
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> ApiError {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let mut d = details(name, rt, &rt.kind);
        d["causes"] = Value::Array(causes.iter().map(Cause::to_json).collect());
        ApiError::new(
            422,
            Some("Invalid"),
            format!("{} \"{name}\" is invalid: {joined}", rt.qualified_kind()),
            Some(d),
        )
    }

    /// Server-side apply without `?fieldManager=` (fixture 18).
    pub fn field_manager_required() -> ApiError {
        let why = "Required value: is required for apply patch";
        ApiError::new(
            422,
            Some("Invalid"),
            format!("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: {why}"),
            Some(json!({"group": "meta.k8s.io", "kind": "PatchOptions",
                "causes": [{"reason": "FieldValueRequired", "message": why, "field": "fieldManager"}]})),
        )
    }

    /// Server-side apply conflicts (fixture 17): `(manager label, field path)` pairs.
    pub fn apply_conflicts(conflicts: &[(String, String)]) -> ApiError {
        let n = conflicts.len();
        let summary = if n == 1 {
            format!("conflict with {}: {}", conflicts[0].0, conflicts[0].1)
        } else {
            let mut lines = Vec::new();
            let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
            managers.dedup();
            for manager in managers {
                lines.push(format!("conflicts with {manager}:"));
                lines.extend(
                    conflicts
                        .iter()
                        .filter(|(m, _)| m == manager)
                        .map(|(_, f)| format!("- {f}")),
                );
            }
            lines.join("\n")
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": f}))
            .collect();
        ApiError::new(
            409,
            Some("Conflict"),
            format!(
                "Apply failed with {n} conflict{}: {summary}",
                if n == 1 { "" } else { "s" }
            ),
            Some(json!({"causes": causes})),
        )
    }

    /// A JSON patch whose operations do not apply (a failed `test`, a missing path).
    pub fn json_patch_failed(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            422,
            Some("Invalid"),
            format!("the server rejected our request due to an error in our request: {e}"),
            None,
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, Some("BadRequest"), message, None)
    }

    /// What the real server answers for errors inside its apply machinery: a bare 500.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, None, message, None)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            Some("MethodNotAllowed"),
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            Some("UnsupportedMediaType"),
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
            None,
        )
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, Some("Unauthorized"), "Unauthorized", None)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            Some("RequestEntityTooLarge"),
            format!("Request entity too large: limit is {limit}"),
            None,
        )
    }

    /// A watch from a resourceVersion older than the kept history (fixture 47).
    pub fn expired(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(
            410,
            Some("Expired"),
            format!("too old resource version: {requested} ({oldest})"),
            None,
        )
    }

    /// An injected failure (`--faults`).
    pub fn injected(code: u16) -> ApiError {
        let (reason, message) = match code {
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            500 => (
                "InternalError",
                "an error on the server (\"injected by kubesim\") has prevented the request from succeeding",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            _ => ("InternalError", "injected by kubesim"),
        };
        ApiError::new(
            code,
            Some(reason),
            message,
            Some(json!({"retryAfterSeconds": 1})),
        )
    }

    pub fn to_status(&self) -> Value {
        let mut s = Map::new();
        s.insert("kind".into(), json!("Status"));
        s.insert("apiVersion".into(), json!("v1"));
        s.insert("metadata".into(), json!({}));
        s.insert("status".into(), json!("Failure"));
        s.insert("message".into(), json!(self.message));
        if let Some(reason) = &self.reason {
            s.insert("reason".into(), json!(reason));
        }
        if let Some(details) = &self.details {
            s.insert("details".into(), details.clone());
        }
        s.insert("code".into(), json!(self.code));
        Value::Object(s)
    }
}

/// The Status a successful DELETE answers (fixture 45).
pub fn deleted(rt: &ResourceType, name: &str, uid: &Value) -> Value {
    let mut d = details(name, rt, &rt.plural);
    d["uid"] = uid.clone();
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_matches_the_real_server() {
        let e = ApiError::apply_conflicts(&[("\"kapply\"".into(), ".data.DJANGO_LOGLEVEL".into())]);
        assert_eq!(
            e.message,
            "Apply failed with 1 conflict: conflict with \"kapply\": .data.DJANGO_LOGLEVEL"
        );
        let e = ApiError::apply_conflicts(&[
            ("\"a\"".into(), ".x".into()),
            ("\"a\"".into(), ".y".into()),
        ]);
        assert_eq!(
            e.message,
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .x\n- .y"
        );
    }
}

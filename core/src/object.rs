//! Object identity and the validation rules the API server applies to names and keys.

use serde_json::Value;
use std::fmt;

/// The largest object etcd stores: the API server rejects anything bigger.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;

/// apiVersion, kind, namespace and name: what identifies an object in messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectId {
    /// The identity of an object; `None` when apiVersion or kind is missing.
    pub fn of(obj: &Value) -> Option<Self> {
        Self::check(obj).ok()?;
        let meta = &obj["metadata"];
        let name = meta["name"]
            .as_str()
            .or_else(|| meta["generateName"].as_str())
            .unwrap_or("");
        Some(ObjectId {
            api_version: obj["apiVersion"].as_str()?.to_owned(),
            kind: obj["kind"].as_str()?.to_owned(),
            namespace: meta["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// Why an object cannot be a Kubernetes object, if it cannot.
    pub fn check(obj: &Value) -> Result<(), String> {
        for field in ["apiVersion", "kind"] {
            match obj.get(field) {
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(Value::String(_)) | None | Some(Value::Null) => {
                    return Err(format!("missing {field}"));
                }
                Some(_) => return Err(format!("{field} must be a string")),
            }
        }
        match obj.get("metadata") {
            None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
            Some(_) => Err("metadata must be a mapping".into()),
        }
    }

    /// The API group, empty for the core group.
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }
}

impl fmt::Display for ObjectId {
    /// `Kind/name`, with ` in namespace NS` when it has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in namespace {ns}")?;
        }
        Ok(())
    }
}

/// Kubernetes' DNS-1123 subdomain rule (most object names): why `name` breaks it.
pub fn dns1123_subdomain_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    if name
        .split('.')
        .all(|part| is_dns_label_shape(part, usize::MAX))
    {
        None
    } else {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character"
                .into(),
        )
    }
}

/// Kubernetes' DNS-1123 label rule (Service and Namespace names): why `name` breaks it.
pub fn dns1123_label_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    if is_dns_label_shape(name, 63) {
        None
    } else {
        Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character"
                .into(),
        )
    }
}

/// Kubernetes' DNS-1035 label rule (Service names: they become DNS names and
/// environment variables, so they start with a letter): why `name` breaks it.
pub fn dns1035_label_error(name: &str) -> Option<String> {
    if let Some(why) = dns1123_label_error(name) {
        return Some(why.replace("RFC 1123", "RFC 1035"));
    }
    if name.as_bytes()[0].is_ascii_lowercase() {
        None
    } else {
        Some(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
             start with an alphabetic character, and end with an alphanumeric character"
                .into(),
        )
    }
}

/// The rule every name keeps, whatever its kind (it is a segment of the request's
/// path; RBAC names keep only this one): why `name` breaks it.
pub fn path_segment_error(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    name.contains(['/', '%'])
        .then(|| "may not contain '/' or '%'".into())
}

/// A label or annotation key (`[prefix/]name`, the prefix a DNS-1123 subdomain):
/// why `key` breaks the rule.
pub fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if let Some(why) = dns1123_subdomain_error(prefix) {
            return Some(format!("prefix part {why}"));
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some("name part must be no more than 63 characters".into());
    }
    if is_label_value_shape(name) {
        None
    } else {
        Some(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
             start and end with an alphanumeric character"
                .into(),
        )
    }
}

/// A label value: empty, or up to 63 characters of `[-._a-zA-Z0-9]` starting and
/// ending with an alphanumeric one. Why `value` breaks the rule.
pub fn label_value_error(value: &str) -> Option<String> {
    if value.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    if value.is_empty() || is_label_value_shape(value) {
        None
    } else {
        Some(
            "a valid label must be an empty string or consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character"
                .into(),
        )
    }
}

fn is_label_value_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_label_shape(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// ConfigMap and Secret data keys: `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`.
pub fn config_key_error(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > 253 {
        return Some("a valid config key must be 1 to 253 characters".into());
    }
    if key == "." || key == ".." {
        return Some("a valid config key must not be '.' or '..'".into());
    }
    if key.starts_with("..") {
        return Some("a valid config key must not start with '..'".into());
    }
    if key
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        None
    } else {
        Some("a valid config key must consist of alphanumeric characters, '-', '_' or '.'".into())
    }
}

/// Whether `key` becomes an environment variable through `envFrom` (C identifier rules
/// are what shells accept; the kubelet skips nothing but the pod may not see it).
pub fn is_env_var_name(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_and_display() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "polls-app", "namespace": "web"}});
        let id = ObjectId::of(&obj).unwrap();
        assert_eq!(id.group(), "apps");
        assert_eq!(id.to_string(), "Deployment/polls-app in namespace web");
        assert!(ObjectId::of(&json!({"kind": "X"})).is_none());
    }

    #[test]
    fn name_rules() {
        assert!(dns1123_subdomain_error("polls-config").is_none());
        assert!(dns1123_subdomain_error("a.b-c").is_none());
        assert!(dns1123_subdomain_error("Polls").is_some());
        assert!(dns1123_subdomain_error("-a").is_some());
        assert!(dns1123_label_error("a.b").is_some());
        assert!(config_key_error("DJANGO_SECRET_KEY").is_none());
        assert!(config_key_error("a b").is_some());
        assert!(config_key_error("..a").is_some());
        assert!(config_key_error(".a..b").is_none());
        assert!(dns1035_label_error("web-1").is_none());
        assert!(dns1035_label_error("1web").is_some());
        assert!(dns1035_label_error("Web").is_some());
        assert!(path_segment_error("system:kube-Controller").is_none());
        assert!(path_segment_error("a/b").is_some());
        assert!(path_segment_error("..").is_some());
        for good in ["app", "app.kubernetes.io/name", "example.com/Under_score.x"] {
            assert!(qualified_name_error(good).is_none(), "{good}");
        }
        for bad in ["/a", "a/", "Ex.com/a", "a b", "-a", &"x".repeat(64)] {
            assert!(qualified_name_error(bad).is_some(), "{bad}");
        }
        assert!(label_value_error("").is_none());
        assert!(label_value_error("v1.2_A-b").is_none());
        assert!(label_value_error("a b").is_some());
        assert!(label_value_error(&"x".repeat(64)).is_some());
        assert!(is_env_var_name("_A1"));
        assert!(!is_env_var_name("a.b"));
        assert!(!is_env_var_name("1A"));
    }
}

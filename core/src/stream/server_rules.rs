//! The API server's rules for values that YAML reads fine: fields the server takes
//! only as strings (`map[string]string`), where an unquoted `on`, `yes` or `0755` is
//! read by Kubernetes as a bool or number and the object rejected.

use serde_json::Value;

/// The path of the first value of `object` the server would reject, and why, naming
/// the key only (a Secret's value stays out of messages).
pub(super) fn rejects(object: &Value) -> Option<(Vec<String>, String)> {
    fn strings_only(map: &Value, path: &[&str], what: &str) -> Option<(Vec<String>, String)> {
        let (key, value) = map
            .as_object()?
            .iter()
            .find(|(_, v)| !(v.is_string() || v.is_null()))?;
        let reads = match value {
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            _ => "a list or mapping",
        };
        let mut at: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        at.push(key.clone());
        Some((
            at,
            format!(
                "{what} {key:?}: Kubernetes (YAML 1.1) reads this unquoted value as {reads}, \
                 and the API server accepts only strings there; quote the value"
            ),
        ))
    }
    let kind = object["kind"].as_str().unwrap_or_default();
    let api_core = object["apiVersion"] == "v1";
    let mut checks: Vec<(Vec<&str>, String)> = vec![
        (vec!["metadata", "labels"], "label".into()),
        (vec!["metadata", "annotations"], "annotation".into()),
        (
            vec!["spec", "template", "metadata", "labels"],
            "pod template label".into(),
        ),
        (
            vec!["spec", "template", "metadata", "annotations"],
            "pod template annotation".into(),
        ),
        (
            vec!["spec", "selector", "matchLabels"],
            "selector label".into(),
        ),
    ];
    if api_core && kind == "ConfigMap" {
        checks.push((vec!["data"], "ConfigMap data key".into()));
        checks.push((vec!["binaryData"], "ConfigMap binaryData key".into()));
    }
    if api_core && kind == "Secret" {
        checks.push((vec!["data"], "Secret data key".into()));
        checks.push((vec!["stringData"], "Secret stringData key".into()));
    }
    checks.into_iter().find_map(|(path, what)| {
        let map = path.iter().try_fold(object, |v, k| v.get(*k))?;
        strings_only(map, &path, &what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_first_non_string_of_a_strings_only_field_by_its_key() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                            "stringData": {"PORT": 5432}});
        let (path, why) = rejects(&secret).unwrap();
        assert_eq!(path, ["stringData", "PORT"]);
        assert!(why.starts_with("Secret stringData key \"PORT\": "), "{why}");
        assert!(!why.contains("5432"), "{why}");
        let label = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                           "spec": {"template": {"metadata": {"labels": {"canary": true}}}}});
        assert!(rejects(&label).unwrap().1.contains("as a boolean"));
        // `data` takes any value outside core/v1 ConfigMaps and Secrets.
        let custom = json!({"apiVersion": "example.com/v1", "kind": "ConfigMap",
                            "data": {"n": 1}});
        assert_eq!(rejects(&custom), None);
    }
}

//! What the API server would refuse, checked for the whole input before anything is
//! written: names, duplicates, data sizes, values the server rejects for certain.

use kpipe_core::{Document, Error, Result};
use serde_json::Value;
use std::collections::HashMap;

/// The API server's limit on a Secret's or ConfigMap's data (`MaxSecretSize`,
/// `MaxConfigMapSize`). Other objects have no limit the client can know exactly (etcd's
/// request limit is the cluster's setting), so they go to the server as they are.
const MAX_DATA_BYTES: usize = 1024 * 1024;

/// A v1 Secret's or ConfigMap's data size as the server's validation counts it: every
/// key plus its decoded value, `stringData` merged into a Secret's `data` first.
fn data_size(object: &Value) -> Option<usize> {
    use base64::Engine as _;
    if object["apiVersion"] != "v1" {
        return None;
    }
    // Which fields hold data, and whether their values are base64 (counted decoded).
    let fields: [(&str, bool); 2] = match object["kind"].as_str() {
        Some("Secret") => [("stringData", false), ("data", true)],
        Some("ConfigMap") => [("data", false), ("binaryData", true)],
        _ => return None,
    };
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for (field, encoded) in fields {
        for (key, value) in object[field].as_object().into_iter().flatten() {
            let text = value.as_str().unwrap_or_default();
            let bytes = if encoded {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_or(text.len(), |b| b.len())
            } else {
                text.len()
            };
            // stringData wins over data for the same key, as the server merges them.
            sizes.entry(key).or_insert(key.len() + bytes);
        }
    }
    Some(sizes.values().sum())
}

/// How the API server checks the names of a kind (apimachinery's validation).
fn name_error(group: &str, kind: &str, name: &str) -> Option<String> {
    use kpipe_core::object::{
        dns1035_label_error, dns1123_label_error, dns1123_subdomain_error, path_segment_error,
    };
    match (group, kind) {
        ("", "Namespace") => dns1123_label_error(name),
        ("", "Service") => dns1035_label_error(name),
        (
            "",
            "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "Pod"
            | "PersistentVolumeClaim"
            | "PersistentVolume"
            | "Endpoints"
            | "LimitRange"
            | "ResourceQuota"
            | "ReplicationController"
            | "PodTemplate",
        )
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob")
        | ("autoscaling", "HorizontalPodAutoscaler")
        | ("policy", "PodDisruptionBudget")
        | ("networking.k8s.io", "Ingress" | "IngressClass" | "NetworkPolicy")
        | ("scheduling.k8s.io", "PriorityClass")
        | ("storage.k8s.io", "StorageClass") => dns1123_subdomain_error(name),
        // RBAC names (`system:controller:x`), kinds of API extensions the server may
        // judge more leniently: only what no server accepts.
        _ => path_segment_error(name),
    }
}

/// Go's `base64.StdEncoding`, as the API server decodes `[]byte` fields: padding
/// required, line breaks skipped, stray low bits of the last character accepted.
fn is_std_base64(text: &str) -> bool {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let text: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    GO_STD.decode(text).is_ok()
}

/// The API server's limit on the total size of an object's annotations.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// What the API server would refuse in one object for certain, found before anything
/// is written: its name (by the rule of its kind), label and annotation keys, label
/// values, the keys of a ConfigMap's or Secret's data and the base64 of their binary
/// values. Secret values are never quoted: the key is named.
fn validate(doc: &Document) -> Result<()> {
    use kpipe_core::object::{config_key_error, label_value_error, qualified_name_error};
    let id = doc.id();
    let bad = |what: String, why: String| {
        Err(Error::input(format!(
            "{}: {id}: {what}: {why}",
            doc.place()
        )))
    };
    if let Some(why) = name_error(id.group(), &id.kind, &id.name) {
        return bad(format!("metadata.name {:?}", id.name), why);
    }
    let meta = &doc.value["metadata"];
    for (key, value) in meta["labels"].as_object().into_iter().flatten() {
        if let Some(why) = qualified_name_error(key) {
            return bad(format!("label key {key:?}"), why);
        }
        if let Some(why) = value.as_str().and_then(label_value_error) {
            return bad(format!("value of label {key:?}"), why);
        }
    }
    let mut annotations_size = 0;
    for (key, value) in meta["annotations"].as_object().into_iter().flatten() {
        // The server checks annotation keys in lower case.
        if let Some(why) = qualified_name_error(&key.to_lowercase()) {
            return bad(format!("annotation key {key:?}"), why);
        }
        annotations_size += key.len() + value.as_str().map_or(0, str::len);
    }
    if annotations_size > MAX_ANNOTATIONS_BYTES {
        return bad(
            "metadata.annotations".into(),
            format!("{annotations_size} bytes, over the limit of {MAX_ANNOTATIONS_BYTES}"),
        );
    }
    if doc.value["apiVersion"] != "v1" {
        return Ok(());
    }
    // Data fields, and whether their values are base64.
    let fields: &[(&str, bool)] = match id.kind.as_str() {
        "Secret" => &[("data", true), ("stringData", false)],
        "ConfigMap" => &[("data", false), ("binaryData", true)],
        _ => return Ok(()),
    };
    for (field, encoded) in fields {
        for (key, value) in doc.value[*field].as_object().into_iter().flatten() {
            if let Some(why) = config_key_error(key) {
                return bad(format!("{field} key {key:?}"), why);
            }
            if *encoded && value.as_str().is_some_and(|v| !is_std_base64(v)) {
                return bad(
                    format!("{field}.{key}"),
                    "the value is not valid base64 (the API server decodes it as base64)".into(),
                );
            }
        }
    }
    if id.kind == "ConfigMap"
        && let (Some(data), Some(binary)) = (
            doc.value["data"].as_object(),
            doc.value["binaryData"].as_object(),
        )
        && let Some(key) = data.keys().find(|k| binary.contains_key(*k))
    {
        return bad(
            format!("data key {key:?}"),
            "also in binaryData: a key may be in only one of them".into(),
        );
    }
    Ok(())
}

/// What server-side apply needs of every object, checked before the first request.
pub fn check(docs: &[Document]) -> Result<()> {
    let mut seen: HashMap<(String, String, Option<String>, String), &Document> = HashMap::new();
    for doc in docs {
        let id = doc.id();
        if doc.value["metadata"]["name"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            let why = if doc.value["metadata"]["generateName"].is_string() {
                "has generateName but no name: server-side apply needs metadata.name"
            } else {
                "has no metadata.name"
            };
            return Err(Error::input(format!("{}: {} {why}", doc.place(), id.kind)));
        }
        validate(doc)?;
        if let Some(size) = data_size(&doc.value)
            && size > MAX_DATA_BYTES
        {
            return Err(Error::input(format!(
                "{}: {id} holds {size} bytes of data (keys and decoded values), over the \
                 API server's limit of {MAX_DATA_BYTES} for a {}",
                doc.place(),
                id.kind
            )));
        }
        let key = (
            id.group().to_owned(),
            id.kind.clone(),
            id.namespace.clone(),
            id.name.clone(),
        );
        if let Some(first) = seen.insert(key, doc) {
            return Err(Error::input(format!(
                "{}: {id} appears twice (also {}); apply each object once",
                doc.place(),
                first.place()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kpipe_core::stream;

    fn docs(text: &str) -> Vec<Document> {
        stream::parse("in.yaml", text).unwrap()
    }

    #[test]
    fn names_are_required() {
        let err = check(&docs(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n",
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.yaml: document 1 (line 1): ConfigMap has generateName but no name: server-side apply needs metadata.name"
        );
        assert_eq!(err.exit_code(), 2);
        let err = check(&docs("---\napiVersion: v1\nkind: ConfigMap\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.yaml: document 1 (line 2): ConfigMap has no metadata.name"
        );
    }

    #[test]
    fn duplicates_are_refused() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n\
                    ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let err = check(&docs(text)).unwrap_err().to_string();
        assert_eq!(
            err,
            "in.yaml: document 3 (line 9): ConfigMap/a appears twice (also in.yaml: document 1 (line 1)); apply each object once"
        );
    }

    #[test]
    fn only_data_over_the_servers_own_limit_is_refused() {
        use base64::Engine as _;
        let encode = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![b'x'; n]);
        let secret = |data: &str| {
            format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: a}}\ndata: {{k: '{data}'}}\n")
        };
        // 900 KiB decoded is 1.2 MB of base64: the server stores it.
        check(&docs(&secret(&encode(900 * 1024)))).unwrap();
        let err = check(&docs(&secret(&encode(MAX_DATA_BYTES))))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "1048577 bytes of data (keys and decoded values), over the API server's limit"
            ),
            "{err}"
        );
        // A large CRD or ConfigMap of other objects is the server's to judge.
        let big = "x".repeat(1_100_000);
        let crd = format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
             metadata: {{name: a}}\nspec: {{description: '{big}'}}\n"
        );
        check(&docs(&crd)).unwrap();
    }

    #[test]
    fn what_the_server_refuses_for_certain_is_bad_input_naming_the_key_not_the_value() {
        let refused = |text: &str| check(&docs(text)).unwrap_err().to_string();
        let err = refused(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad}\n",
        );
        assert_eq!(
            err,
            "in.yaml: document 2 (line 5): ConfigMap/Bad: metadata.name \"Bad\": a lowercase \
             RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character"
        );
        let long = "x".repeat(254);
        let err = refused(&format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {long}}}\n"
        ));
        assert!(
            err.ends_with("must be no more than 253 characters"),
            "{err}"
        );
        let err = refused("apiVersion: v1\nkind: Service\nmetadata: {name: 1web}\n");
        assert!(err.contains("start with an alphabetic character"), "{err}");
        let err = refused("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n");
        assert!(err.contains("RFC 1123 label"), "{err}");
        let err = refused(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {PASSWORD: 'hunter2!'}\n",
        );
        assert!(err.ends_with("Secret/s: data.PASSWORD: the value is not valid base64 (the API server decodes it as base64)"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = refused(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {bad key: hunter2}\n",
        );
        assert!(
            err.contains("stringData key \"bad key\": a valid config key"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = refused(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\nbinaryData: {k: dg==}\n",
        );
        assert!(err.contains("also in binaryData"), "{err}");
        let err = refused(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {tier: 'a b'}}\n",
        );
        assert!(err.contains("value of label \"tier\""), "{err}");
        let err = refused(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {'a/b/c': x}}\n",
        );
        assert!(err.contains("annotation key \"a/b/c\""), "{err}");
    }

    #[test]
    fn what_a_real_server_accepts_is_not_refused() {
        check(&docs(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n\
             metadata: {name: 'system:controller:Mine'}\n---\n\
             apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: Any_Name}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: s, annotations: {Example.COM/Key: x}}\n\
             data: {a.b_c-D: \"YQ\\n==\", e: YWI=, f: YR==, g: ''}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: web-1, labels: {v: ''}}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 1.a-b}\nbinaryData: {k: AAEC}\n",
        ))
        .unwrap();
    }
}

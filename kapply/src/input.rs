//! Reading and checking the whole input before anything is written.

use kpipe_core::stream;
use kpipe_core::{Document, Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use tokio::time::Instant;

/// Extensions read from a directory, as `kubectl apply -f DIR` does.
const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// The files a `-f` argument names: itself, `-`, or a directory's manifests (with
/// `recursive`, those of its subdirectories too, as kubectl's -R), in the order
/// kubectl's `filepath.Walk` visits them: by name, a subdirectory where its name sorts.
/// As there, symbolic links are not followed to directories: a link to a file is read,
/// one to a directory inside the tree is skipped (or fails to read, named `*.yaml`), and
/// `-f LINK` to a directory is refused (`-f LINK/` reads it).
pub fn expand(path: &str, recursive: bool) -> Result<Vec<String>> {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if path == "-" || !is_dir {
        if Path::new(path).is_dir() {
            return Err(Error::input(format!(
                "{path}: cannot read: a symbolic link to a directory, which kubectl does not \
                 follow either (give {path}/ to read the directory)"
            )));
        }
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    walk(Path::new(path), recursive, &mut files)?;
    Ok(files)
}

fn walk(dir: &Path, recursive: bool, files: &mut Vec<String>) -> Result<()> {
    let shown = dir.display();
    let cannot = |e: std::io::Error| Error::input(format!("{shown}: cannot read: {e}"));
    let mut entries = std::fs::read_dir(dir)
        .and_then(Iterator::collect::<std::io::Result<Vec<_>>>)
        .map_err(cannot)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let file = entry.path();
        // The entry itself, not what a link points to.
        if entry.file_type().map_err(cannot)?.is_dir() {
            if recursive {
                walk(&file, recursive, files)?;
            }
            continue;
        }
        let is_manifest = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e));
        if is_manifest {
            files.push(file.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// A label selector as kubectl's `-l` takes it.
#[derive(Debug)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Selector {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::input(format!("-l {text:?}: not a label selector"));
        let mut requirements = Vec::new();
        // Split on commas outside parentheses.
        let (mut depth, mut start) = (0, 0);
        let mut parts = Vec::new();
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&text[start..]);
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let set = |rest: &str| -> Option<Vec<String>> {
                let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
                Some(inner.split(',').map(|v| v.trim().to_owned()).collect())
            };
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_owned())
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==").or(part.split_once('=')) {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(key.trim().into(), set(rest).ok_or_else(bad)?)
            } else if let Some((key, rest)) = part.split_once(" in ") {
                Requirement::In(key.trim().into(), set(rest).ok_or_else(bad)?)
            } else if part.contains([' ', '(', ')']) {
                return Err(bad());
            } else {
                Requirement::Exists(part.to_owned())
            };
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: &Value) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
        })
    }
}

/// Whether a `-f` argument is a URL, which kubectl reads over HTTP(S).
fn is_url(path: &str) -> bool {
    path.starts_with("https://") || path.starts_with("http://")
}

/// Reads every source (stdin when none is given) into one list of documents.
pub async fn read_all(
    paths: &[String],
    recursive: bool,
    deadline: Option<Instant>,
) -> Result<Vec<Document>> {
    let paths: Vec<String> = if paths.is_empty() {
        vec!["-".into()]
    } else {
        paths.to_vec()
    };
    let stdin_count = paths.iter().filter(|p| *p == "-").count();
    if stdin_count > 1 {
        return Err(Error::input("-f - (standard input) can be given only once"));
    }
    let mut docs = Vec::new();
    for path in &paths {
        if is_url(path) {
            docs.extend(stream::parse(
                path,
                &crate::fetch::fetch(path, deadline).await?,
            )?);
            continue;
        }
        for file in expand(path, recursive)? {
            docs.extend(stream::read(&file)?);
        }
    }
    if docs.is_empty() {
        return Err(Error::input(format!(
            "no objects in the input ({})",
            paths.join(", ")
        )));
    }
    Ok(docs)
}

/// `-k DIR`: the objects `kubectl kustomize DIR` renders, or `kustomize build DIR` where
/// kubectl is not on PATH (kapply has no kustomize of its own). Its messages become
/// kapply's (through the redacting writer: a kustomization may hold secret literals).
pub fn kustomize(dir: &str) -> Result<Vec<Document>> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
    };
    let (program, args, command) = if let Some(kubectl) = on_path("kubectl") {
        (kubectl, ["kustomize", dir], "kubectl kustomize")
    } else if let Some(kustomize) = on_path("kustomize") {
        (kustomize, ["build", dir], "kustomize build")
    } else {
        return Err(Error::input(format!(
            "-k {dir}: neither kubectl nor kustomize is on PATH: install one of them, or \
             pipe `kustomize build {dir}` into kapply"
        )));
    };
    let out = std::process::Command::new(&program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::runtime(format!("-k {dir}: cannot run {}: {e}", program.display())))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Error::input(format!(
            "-k {dir}: {command} failed ({}):\n{}",
            out.status,
            why.trim_end()
        )));
    }
    let source = format!("{dir} ({command})");
    let docs = stream::parse(&source, &stream::text_of(&source, out.stdout)?)?;
    if docs.is_empty() {
        return Err(Error::input(format!("no objects in the input ({source})")));
    }
    Ok(docs)
}

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

    #[test]
    fn selectors_match_as_kubectl_does() {
        let labels = serde_json::json!({"app": "polls", "tier": "web"});
        for (text, want) in [
            ("app=polls", true),
            ("app==polls,tier=db", false),
            ("app!=shop", true),
            ("tier", true),
            ("!tier", false),
            ("tier in (web, db),app", true),
            ("tier notin (web)", false),
            ("missing notin (x)", true),
        ] {
            assert_eq!(
                Selector::parse(text).unwrap().matches(&labels),
                want,
                "{text}"
            );
        }
        assert!(Selector::parse("a in b").is_err());
    }

    #[test]
    fn directories_give_their_manifests_sorted() {
        let dir = std::env::temp_dir().join(format!("kapply-expand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.yml", "a.yaml", "c.json", "notes.txt"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/d.yaml"), "").unwrap();
        assert_eq!(expand(dir.to_str().unwrap(), true).unwrap().len(), 4);
        let files = expand(dir.to_str().unwrap(), false).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                Path::new(f)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml", "c.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

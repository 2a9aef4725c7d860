//! kapply reads manifests exactly as kubectl reads them: real upstream manifests
//! (tests/corpus/manifests, provenance in tests/corpus/README.md) and one file per
//! class of YAML that Kubernetes' YAML 1.1 reader resolves its own way, each read by
//! `kapply --dry-run=client -o json` and by kubectl itself, compared object by object.
//! `kubectl annotate --local` parses through the same resource builder and decoder as
//! `kubectl create`/`apply -f`, without a cluster and without needing the kinds served.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Objects in a `-o json` output: one object, a `List`, or objects back to back.
fn objects(json: &[u8]) -> Vec<Value> {
    let mut all = Vec::new();
    for value in serde_json::Deserializer::from_slice(json).into_iter::<Value>() {
        let value = value.expect("JSON output");
        match value["items"].as_array() {
            Some(items) if value["kind"] == "List" => all.extend(items.iter().cloned()),
            _ => all.push(value),
        }
    }
    all
}

/// The annotation `kubectl annotate` adds or removes leaves an empty (or null) map.
fn normal(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut()
        && meta
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|m| m.is_empty()))
    {
        meta.remove("annotations");
    }
    object
}

fn kubectl_reads(file: &Path) -> Output {
    crate::common::kubectl_cmd()
        .args(["annotate", "--local", "-o", "json", "kpipe-oracle-", "-f"])
        .arg(file)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl is installed")
}

fn kapply_reads(file: &Path) -> Run {
    cmd("kapply")
        .args(["--dry-run=client", "-o", "json", "-f"])
        .arg(file)
        .run()
        .context(file.display())
}

/// Both read `file` to the same objects; returns how many.
fn same_objects(file: &Path) -> usize {
    let theirs = kubectl_reads(file);
    assert!(
        theirs.status.success(),
        "kubectl: {}: {}",
        file.display(),
        stderr(&theirs)
    );
    let ours = kapply_reads(file);
    ours.success();
    let theirs: Vec<Value> = objects(&theirs.stdout).into_iter().map(normal).collect();
    let ours: Vec<Value> = objects(&ours.stdout).into_iter().map(normal).collect();
    assert_eq!(ours.len(), theirs.len(), "{}", file.display());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a,
            b,
            "{}: object {} differs from kubectl's reading",
            file.display(),
            i + 1
        );
    }
    ours.len()
}

#[test]
fn the_manifest_corpus_reads_as_kubectl_reads_it() {
    let dir = root().join("tests/corpus/manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let total: usize = files.iter().map(|f| same_objects(f)).sum();
    assert!(
        files.len() >= 10 && total >= 150,
        "corpus too small: {total}"
    );
}

/// One file per class of input the issue lists, written to a temporary file.
fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

#[test]
fn yaml_11_classes_read_as_kubectl_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, String)> = vec![
        // helm's defaultMode: 0755 is octal 493.
        (
            "octal.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n  \
             volumes:\n  - name: v\n    configMap: {name: c, defaultMode: 0755}\n"
                .into(),
        ),
        (
            // (A file whose first character is `{` is JSON to kubectl: flow style after a
            // comment or `---`.)
            "flow.yaml",
            "# quota\n{apiVersion: v1, kind: ResourceQuota, metadata: {name: q}, spec: {hard: {pods: 10, cpu: '4'}}}\n"
                .into(),
        ),
        (
            "numbers.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {a: 12:30:00, b: 1:20, c: 2001-12-14}}\n\
             spec:\n  terminationGracePeriodSeconds: 1_000\n  activeDeadlineSeconds: 0x1F\n  \
             containers: [{name: c, image: i}]\n  priority: +12\n"
                .into(),
        ),
        (
            "merge.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: &l {app: a}}\n  \
             template:\n    metadata: {labels: {<<: *l, tier: web}}\n    spec:\n      containers:\n      - &c {name: a, image: i, ports: [{containerPort: 80}]}\n      \
             - {<<: *c, name: b}\n"
                .into(),
        ),
        (
            "json-stream.json",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}\n\
             {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},\"data\":{\"k\":\"on\"}}\n"
                .into(),
        ),
        (
            "bom.yaml",
            format!(
                "{CM}---\n\u{feff}apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n--- # next\n{}",
                CM.replace("name: c", "name: d")
            ),
        ),
        (
            "keys.yaml",
            format!("{CM}data:\n  y: a\n  off: b\n  10: c\n  1.5: d\n"),
        ),
        // A repeated key keeps its last value, also a whole repeated `metadata`.
        (
            "repeated.yaml",
            format!("{CM}  labels: {{a: '1', a: '2'}}\ndata:\n  k: one\n  k: two\nmetadata: {{name: d}}\n"),
        ),
        (
            "repeated.json",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":\"1\"}},\
             \"data\":{\"k\":\"1\",\"k\":\"2\"},\"metadata\":{\"name\":\"b\"}}\n"
                .into(),
        ),
    ];
    for (name, text) in &cases {
        same_objects(&write(d, name, text.as_bytes()));
    }
}

/// What kubectl refuses, kapply refuses: exit 2, the document's line, nothing quoted.
#[test]
fn what_kubectl_refuses_is_refused_at_its_line_without_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (file, text, what kapply says after the file's name, a value it must not quote)
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "inf.yaml",
            format!("{CM}data:\n  a: x\n  b: .inf\n").into_bytes(),
            "document 1 (line 7): an unquoted infinity or not-a-number cannot be converted to JSON \
             (kubectl refuses it too); quote it to keep a string",
            ".inf",
        ),
        (
            "nan.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {x: .nan}\n".into(),
            "document 1 (line 4): an unquoted infinity or not-a-number cannot be converted to JSON \
             (kubectl refuses it too); quote it to keep a string",
            ".nan",
        ),
        (
            "null-key.yaml",
            format!("{CM}data:\n  ~: secret-ish\n").into_bytes(),
            "document 1 (line 6): a null mapping key (`~`, `null` or empty) cannot be a JSON key",
            "secret-ish",
        ),
        (
            "nul.yaml",
            format!("{CM}data:\n  a: x\n  b: \"\0\"\n").into_bytes(),
            "document 1 (line 7): a control character (such as NUL) is not allowed in YAML",
            "\0",
        ),
    ];
    for (name, text, why, value) in cases {
        let file = write(d, name, &text);
        let theirs = kubectl_reads(&file);
        assert!(!theirs.status.success(), "{name}: kubectl accepted it");
        kapply_reads(&file)
            .code(2)
            .stdout_empty()
            .stderr_is(&format!("kapply: {}: {why}\n", file.display()))
            .stderr_lacks(value);
    }
}

/// Depth is bounded as go-yaml bounds it, and the refusal is linear: 100k levels of
/// flow nesting end with exit 2 (time is measured in `make bench`, not here).
#[test]
fn deeply_nested_flow_yaml_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let file = write(dir.path(), "deep.yaml", deep.as_bytes());
    kapply_reads(&file).code(2).stderr_is(&format!(
        "kapply: {}: document 1 (line 1): nested deeper than 10000 levels (the limit of \
             Kubernetes' YAML reader)\n",
        file.display()
    ));
}

/// Where kubectl's own reading gives the server a bool or number in a string-only map,
/// the server rejects the object: kapply says so first, with the place and the fix.
#[test]
fn values_the_server_would_reject_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "on.yaml",
        format!("{CM}  labels:\n    tier: web\n    enabled: yes\ndata:\n  DEBUG: on\n").as_bytes(),
    );
    kapply_reads(&file).code(2).stderr_is(&format!(
        "kapply: {}: document 1 (line 7): label \"enabled\": Kubernetes (YAML 1.1) reads \
             this unquoted value as a boolean, and the API server accepts only strings there; \
             quote the value\n",
        file.display()
    ));
}

/// `--from-env-file` as kubectl reads it: key -> value, or `None` when kubectl refuses
/// the file.
fn kubectl_env_file(file: &Path) -> Option<serde_json::Map<String, Value>> {
    let out = crate::common::kubectl_cmd()
        .args([
            "create",
            "secret",
            "generic",
            "x",
            "--dry-run=client",
            "-o",
            "json",
        ])
        .arg("--from-env-file")
        .arg(file)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl is installed");
    out.status.success().then(|| {
        let secret: Value = serde_json::from_slice(&out.stdout).unwrap();
        decoded(&secret["data"])
    })
}

/// A Secret's base64 `data` as text.
fn decoded(data: &Value) -> serde_json::Map<String, Value> {
    use base64::Engine as _;
    let data = data.as_object().cloned().unwrap_or_default();
    data.into_iter()
        .map(|(key, value)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap())
                .unwrap();
            (key, Value::String(String::from_utf8(bytes).unwrap()))
        })
        .collect()
}

/// The one Secret in a tool's YAML output, decoded.
fn secret_data(yaml: &[u8]) -> serde_json::Map<String, Value> {
    let text = std::str::from_utf8(yaml).unwrap();
    let secret = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(crate::common::yaml)
        .find(|o| o["kind"] == "Secret")
        .expect("a Secret");
    decoded(&secret["data"])
}

/// Exit 2 with `tool: FILE:LINE: ...` lines, nothing on stdout, and no value of the
/// file in any message: every `KEY=value` line's value of 4 characters or more but
/// plain words (`single`, `docker`), which the messages' own words may contain.
fn refused_cleanly(tool: &str, file: &Path, out: &Run) {
    let name = file.display();
    out.code(2).stdout_empty();
    let err = out.stderr();
    let prefix = format!("{tool}: {name}:");
    for line in err.lines() {
        let at = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line}"));
        let number = at.split(':').next().unwrap_or_default();
        assert!(
            number.parse::<usize>().is_ok() || line.contains("more bad lines"),
            "{line}"
        );
    }
    let text = std::fs::read_to_string(file).unwrap();
    for value in text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(_, v)| v.trim())
    {
        let word = value.bytes().all(|b| b.is_ascii_alphabetic());
        if value.len() >= 4 && !word {
            out.stderr_lacks(value);
        }
    }
}

/// Real env files of well-known projects (tests/corpus/env, provenance in
/// tests/corpus/README.md) read by `kubectl create secret generic --from-env-file`
/// and by `envsplit --format docker --secret '*' | secretgen` and `secretgen
/// --from-env-file --format docker`: the same keys and values, or both refuse the file.
/// Read as dotenv (envsplit's default), every file is either read or refused cleanly.
#[test]
fn the_env_corpus_reads_as_kubectl_reads_it() {
    let dir = root().join("tests/corpus/env");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    let (mut agreed, mut refused, mut keys) = (0, 0, 0);
    for file in &files {
        let name = file.display();
        let split = cmd("envsplit")
            .args(["--app", "x", "--format", "docker", "--secret", "*"])
            .arg(file)
            .run()
            .context(format!("envsplit: {name}"));
        let standalone = cmd("secretgen")
            .args(["--name", "x", "--format", "docker", "--from-env-file"])
            .arg(file)
            .run()
            .context(format!("secretgen: {name}"));
        match kubectl_env_file(file) {
            Some(theirs) => {
                split.success();
                let encoded = cmd("secretgen")
                    .run_with(&split.stdout)
                    .context(format!("secretgen: {name}"));
                encoded.success();
                assert_eq!(
                    secret_data(&encoded.stdout),
                    theirs,
                    "{name}: envsplit --format docker | secretgen differs from kubectl"
                );
                standalone.success();
                assert_eq!(
                    secret_data(&standalone.stdout),
                    theirs,
                    "{name}: secretgen --from-env-file --format docker differs from kubectl"
                );
                agreed += 1;
                keys += theirs.len();
            }
            None => {
                refused_cleanly("envsplit", file, &split);
                refused_cleanly("secretgen", file, &standalone);
                refused += 1;
            }
        }
        let dotenv = cmd("envsplit")
            .args(["--app", "x"])
            .arg(file)
            .run()
            .context(format!("envsplit: {name}"));
        if !dotenv.status.success() {
            refused_cleanly("envsplit", file, &dotenv);
        }
    }
    assert!(
        files.len() >= 15 && agreed >= 15 && refused >= 1 && keys >= 300,
        "corpus too small: {agreed} files read ({keys} keys), {refused} refused"
    );
}

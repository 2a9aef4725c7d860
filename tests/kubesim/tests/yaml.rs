//! kubesim reads YAML bodies with its own reader (go-yaml v2's rules, written for the
//! simulator). kubectl reads manifests with the same library the API server reads YAML
//! bodies with (sigs.k8s.io/yaml), so kubectl is the oracle: every case here must come
//! out of kubesim's reader as kubectl prints it.

use serde_json::Value;

use crate::common::kubectl_cmd;

/// Scalars where YAML 1.1 (go-yaml v2) and a reader of YAML 1.2 or of plain strings part
/// ways, and the edges of Go's number parsing.
const SCALARS: &[&str] = &[
    "on",
    "off",
    "On",
    "OFF",
    "y",
    "Y",
    "n",
    "yes",
    "No",
    "true",
    "False",
    "~",
    "null",
    "Null",
    "NULL",
    "\"\"",
    "''",
    "0755",
    "0x1F",
    "0X1f",
    "0o17",
    "0b101",
    "-0b11",
    "1_000",
    "08",
    "09.5",
    "1e3",
    "1E3",
    "1.5",
    ".5",
    "-.5",
    "+12",
    "-0",
    "12:30:00",
    "190:20:30",
    "2001-12-14",
    "2001-12-14T21:59:43.10-05:00",
    "1.0",
    "3.0e2",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "0.1e-3",
    "1e21",
    "1e20",
    "1e-7",
    "'quoted'",
    "\"0755\"",
    "!!str 123",
    "!!str on",
    "1__0",
    "_1",
    "+0x10",
    "0b102",
    "0xG",
    "1.2.3",
    "1e",
    "e3",
    "0.",
    "+.5e+3",
    "1_0.5",
    "0x_1F",
    "+",
    ".",
    "<<",
    "yes please",
    "ON!",
    "0o",
    "0x",
    "00",
    "007",
    "-007",
    "0.0",
    "-0.0",
    "12e03",
];

fn document() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: oracle\nspec:\n  scalars:\n",
    );
    for (i, scalar) in SCALARS.iter().enumerate() {
        text.push_str(&format!("    k{i:02}: {scalar}\n"));
    }
    text.push_str(
        "  keys:\n    1: int\n    0x10: hex\n    y: yes-key\n    true: bool\n    '2': quoted\n\
         \x20 base: &base {p: 1, q: 2, r: [a, b]}\n\
         \x20 other: &other {q: 20, s: 30}\n\
         \x20 merged:\n    p: 0\n    <<: *base\n    q: 3\n\
         \x20 merged_list:\n    <<: [*base, *other]\n    t: 4\n\
         \x20 alias: *base\n\
         \x20 block: |\n    line one\n    line two\n\
         \x20 folded: >-\n    folded\n    text\n\
         \x20 flow: {a: [1, on, \"x\"], b: null}\n",
    );
    text
}

/// kubectl's reading of a manifest file, printed as JSON (`--local`: no cluster).
fn kubectl_reads(file: &std::path::Path) -> std::process::Output {
    kubectl_cmd()
        .args(["annotate", "--local", "-o", "json", "kpipe=oracle", "-f"])
        .arg(file)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("run kubectl")
}

#[test]
fn kubesim_reads_yaml_as_kubectl_does() {
    let text = document();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oracle.yaml");
    std::fs::write(&file, &text).unwrap();
    let out = kubectl_reads(&file);
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubectl = unstructured(serde_json::from_slice(&out.stdout).unwrap());
    let kubesim = unstructured(kubesim::yaml11::load(&text).unwrap());
    let differ: Vec<String> = SCALARS
        .iter()
        .enumerate()
        .filter_map(|(i, scalar)| {
            let key = format!("k{i:02}");
            let (ours, theirs) = (
                &kubesim["spec"]["scalars"][&key],
                &kubectl["spec"]["scalars"][&key],
            );
            (ours != theirs).then(|| format!("{scalar}: kubesim {ours}, kubectl {theirs}"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "read differently:\n{}",
        differ.join("\n")
    );
    assert_eq!(kubesim["spec"], kubectl["spec"]);
}

/// What decoding the JSON into an object does after the YAML is read, in kubectl and
/// the server alike: an int beyond int64 becomes a float64.
fn unstructured(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_u64() && !n.is_i64() => {
            #[allow(clippy::cast_precision_loss)]
            let f = n.as_u64().unwrap() as f64;
            Value::from(f)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(unstructured).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, unstructured(v))).collect())
        }
        other => other,
    }
}

#[test]
fn what_json_cannot_hold_is_refused_as_kubectl_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    for (i, body) in [
        "v: .inf",
        "v: -.Inf",
        "v: .nan",
        "~: null-key",
        "[a]: seq-key",
    ]
    .iter()
    .enumerate()
    {
        let text =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nspec:\n  {body}\n");
        let file = dir.path().join(format!("{i}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let out = kubectl_reads(&file);
        assert!(!out.status.success(), "{body}: kubectl read it");
        assert!(
            kubesim::yaml11::load(&text).is_err(),
            "{body}: kubesim read what kubectl refuses"
        );
    }
}

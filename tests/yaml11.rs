//! The YAML we emit reads back as the same strings under YAML 1.1, the resolver
//! Kubernetes uses: values (and keys) that look like bools, nulls, numbers or timestamps
//! go through envsplit (and secretgen) and are read with PyYAML and with kubectl.

use crate::common::*;
use serde_json::{Map, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Strings a YAML 1.1 reader would turn into something else if written bare.
const TRICKY_VALUES: &[&str] = &[
    "on",
    "On",
    "ON",
    "off",
    "yes",
    "Yes",
    "no",
    "NO",
    "y",
    "Y",
    "n",
    "N",
    "true",
    "False",
    "~",
    "null",
    "Null",
    "",
    " x",
    "x ",
    "0755",
    "0o17",
    "0x1F",
    "1_000",
    "1e3",
    "-1",
    "+1",
    "3.14",
    ".inf",
    "-.Inf",
    ".NaN",
    "12:30:00",
    "190:20:30",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "=",
    "<<",
    "*",
    "&a",
    "!x",
    "%x",
    "@x",
    "`x",
    "|",
    ">",
    "- a",
    "? a",
    "a: b",
    "a #b",
    "#c",
    "[a]",
    "{a: 1}",
    "'q'",
    "\"q\"",
    "a,b",
    "multi\nline",
    // Literal blocks (`|`, `|-`, `|+`, `|2-`) and what must stay double-quoted.
    "script\nline 2\n",
    " lead\nx",
    "kept\n\n",
    "\n",
    "\nfirst",
    "x\n  indented\n",
    "# not a comment\n- not a list",
    "trailing space \nx",
    "x\n ",
    // Plain as kubectl writes them, or quoted where some reader sees a number.
    "--port=8444",
    "-x",
    "100m",
    "3f2a1b4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b",
    "10.0.0.1",
    "1.2.3",
    "tab\tin",
    "ünïcödé ✓ 日本",
    "emoji 🎉",
    "back\\slash",
    "postgresql_psycopg2",
];

/// Keys that YAML 1.1 would read as bools, nulls or numbers (docker format allows them).
const TRICKY_KEYS: &[&str] = &[
    "on", "y", "N", "No", "Yes", "null", "True", ".inf", "-1", "_",
];

/// A dotenv line that dotenvy reads back as exactly `value`.
fn dotenv_line(key: &str, value: &str) -> String {
    if value.contains(['\'', '\n', '\t']) {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        // dotenvy has no \t escape, but a tab inside double quotes is taken as is.
        format!("{key}=\"{escaped}\"\n")
    } else {
        format!("{key}='{value}'\n")
    }
}

fn python_yaml_to_json(yaml: &[u8]) -> Vec<Value> {
    let probe = Command::new("python3").args(["-c", "import yaml"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "python3 with PyYAML is required for the YAML 1.1 round trip: run `make test-deps` \
             and put .venv/bin first on PATH (make test does)"
        ),
    }
    let script = "import yaml, sys, json\n\
                  docs = [d for d in yaml.safe_load_all(sys.stdin.buffer) if d is not None]\n\
                  json.dump(docs, sys.stdout, default=repr)";
    let out = run_with_stdin(
        {
            let mut c = Command::new("python3");
            c.args(["-c", script]);
            c
        },
        yaml,
    );
    assert!(
        out.status.success(),
        "PyYAML could not read our output: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn expected_map(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

#[test]
fn tricky_values_read_back_identically_under_yaml_1_1() {
    let pairs: Vec<(String, String)> = TRICKY_VALUES
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("K{i:02}"), (*v).to_owned()))
        .collect();
    let env: String = pairs.iter().map(|(k, v)| dotenv_line(k, v)).collect();
    let out = cmd("envsplit")
        .args(["--app", "yaml", "--config", "*"])
        .run_with(&env);
    out.success();
    let docs = python_yaml_to_json(&out.stdout);
    assert_eq!(docs.len(), 1);
    let data = docs[0]["data"]
        .as_object()
        .expect("data is a mapping of strings")
        .clone();
    let expected = expected_map(&pairs);
    for (key, want) in &expected {
        assert_eq!(
            data.get(key),
            Some(want),
            "{key}: YAML 1.1 read {:?} back as {:?}",
            want,
            data.get(key)
        );
    }
    assert_eq!(data, expected);
    // kpipe's own reader (what kapply reads it with) agrees.
    let body = out.stdout();
    let body = body.split_once("\n---\n").expect("a document").1;
    let back = crate::common::yaml(body);
    assert_eq!(back["data"].as_object().unwrap(), &expected);
}

#[test]
fn tricky_keys_read_back_identically_under_yaml_1_1() {
    let pairs: Vec<(String, String)> = TRICKY_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), format!("v-{k}")))
        .collect();
    let env: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let out = cmd("envsplit")
        .args(["--app", "yaml", "--format", "docker", "--config", "*"])
        .run_with(&env);
    out.success();
    let docs = python_yaml_to_json(&out.stdout);
    assert_eq!(docs[0]["data"].as_object().unwrap(), &expected_map(&pairs));
}

#[test]
fn kubectl_reads_the_same_strings() {
    let pairs: Vec<(String, String)> = TRICKY_VALUES
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("K{i:02}"), (*v).to_owned()))
        .collect();
    let env: String = pairs.iter().map(|(k, v)| dotenv_line(k, v)).collect();
    let split = cmd("envsplit")
        .args(["--app", "yaml", "--config", "K0*", "--secret", "*"])
        .run_with(&env);
    split.success();
    let encoded = cmd("secretgen").run_with(&split.stdout);
    encoded.success();

    let mut kubectl = crate::common::kubectl_cmd()
        // `--local` parses and prints without a cluster: kubectl's own YAML reading.
        .args([
            "annotate",
            "--local",
            "-f",
            "-",
            "kpipe=check",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    kubectl
        .stdin
        .take()
        .unwrap()
        .write_all(&encoded.stdout)
        .unwrap();
    let out = kubectl.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl: {}", stderr(&out));
    // One JSON object per input object, back to back.
    let items: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items.len(), 2);
    let mut seen = Map::new();
    for item in &items {
        match item["kind"].as_str() {
            Some("ConfigMap") => seen.extend(item["data"].as_object().unwrap().clone()),
            Some("Secret") => {
                use base64::Engine as _;
                for (k, v) in item["data"].as_object().unwrap() {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap())
                        .unwrap();
                    seen.insert(k.clone(), Value::String(String::from_utf8(bytes).unwrap()));
                }
            }
            other => panic!("unexpected kind {other:?}"),
        }
    }
    assert_eq!(seen, expected_map(&pairs));
}

/// A tag the value does not fit (`PW: !!int abc`) is refused, as kubectl refuses the
/// file, naming the file, line and key, never the value; a tag it fits is read.
#[test]
fn a_tag_the_value_does_not_fit_is_refused_as_kubectl_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.yaml");
    let text = |tagged: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData:\n  USER: polls\n  PW: {tagged}\n"
        )
    };
    for (tagged, fits) in [
        ("!!int s3cr3t-tagged", false),
        ("!!bool s3cr3t-tagged", false),
        ("!!timestamp s3cr3t-tagged", false),
        ("!!str 0755", true),
    ] {
        std::fs::write(&file, text(tagged)).unwrap();
        let kubectl = crate::common::kubectl_cmd()
            .args(["annotate", "--local", "kpipe=check", "-o", "name", "-f"])
            .arg(&file)
            .env("KUBECONFIG", "/dev/null")
            .output()
            .expect("kubectl is installed");
        assert_eq!(kubectl.status.success(), fits, "kubectl on {tagged}");
        let out = cmd("kapply")
            .args(["--dry-run=client", "-o", "name", "-f"])
            .arg(&file)
            .run();
        if fits {
            out.success();
            continue;
        }
        let tag = tagged.split_whitespace().next().unwrap();
        out.code(2)
            .stdout_empty()
            .stderr_is(&format!(
                "kapply: {}: document 1 (line 6): key \"PW\": a scalar tagged {tag} is not a \
                 valid {}\n",
                file.display(),
                tag.trim_start_matches("!!")
            ))
            .no_secret("s3cr3t-tagged");
    }
}

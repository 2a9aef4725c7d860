//! Replays the exchanges recorded from a real kube-apiserver (tests/fixtures/apiserver
//! in the repository) against a fresh simulator, in order, and compares the
//! answers: same status codes, same Status bodies (kind, reason, message, details
//! and causes), same managedFields, same discovery entries, same watch events.
//! Identifiers, times and resourceVersions are the recording server's and are
//! compared as shapes only.

use std::path::PathBuf;

use http_body_util::BodyExt;
use serde_json::{Value, json};

fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/apiserver");
    assert!(
        dir.is_dir(),
        "the recorded API fixtures are missing: expected {}",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn events(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.body)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn send(client: &kube::Client, request: &Value, path: &str) -> Answer {
    let mut builder = http::Request::builder()
        .method(request["method"].as_str().unwrap())
        .uri(path);
    if let Some(headers) = request["headers"].as_object() {
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str().unwrap());
        }
    }
    let body = request["body"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let response = client
        .send(builder.body(kube::client::Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// Blanks what differs between any two servers: identifiers, times, versions,
/// and the object's own uid wherever it is quoted (a Job's selector labels).
fn normalize(v: &Value) -> Value {
    let uid = v["metadata"]["uid"]
        .as_str()
        .or(v["object"]["metadata"]["uid"].as_str())
        .unwrap_or("-")
        .to_string();
    blank(v, &uid)
}

fn blank(v: &Value, uid: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let blank = matches!(
                        k.as_str(),
                        "uid"
                            | "resourceVersion"
                            | "creationTimestamp"
                            | "deletionTimestamp"
                            | "time"
                            | "lastTransitionTime"
                    );
                    (
                        k.clone(),
                        if blank {
                            json!("<x>")
                        } else {
                            self::blank(v, uid)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| self::blank(v, uid)).collect()),
        Value::String(s) if s == uid => json!("<uid>"),
        other => other.clone(),
    }
}

/// Where two JSON values differ, as readable lines.
fn differences(path: &str, mine: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (mine, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differences(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: only kubesim has {x}")),
                    (None, Some(y)) => out.push(format!("{p}: only the real server has {y}")),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if mine != theirs => out.push(format!("{path}: kubesim {mine} != real {theirs}")),
        _ => {}
    }
}

fn assert_same(name: &str, mine: &Value, theirs: &Value) {
    let mut diffs = Vec::new();
    differences("", &normalize(mine), &normalize(theirs), &mut diffs);
    assert!(
        diffs.is_empty(),
        "{name}: the answer differs from the recording:\n{}",
        diffs.join("\n")
    );
}

/// The Job pod template message quotes a Go struct dump; compare up to the value.
fn comparable_status(name: &str, status: &Value) -> Value {
    let mut s = status.clone();
    if name.starts_with("30-") {
        let cut = |v: &Value| json!(v.as_str().unwrap().split("Invalid value:").next().unwrap());
        s["message"] = cut(&s["message"]);
        s["details"]["causes"][0]["message"] = cut(&s["details"]["causes"][0]["message"]);
    }
    s
}

/// A discovery list's entries, by name, for the names kubesim serves.
fn entries(list: &Value) -> Vec<(String, Value)> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("storageVersionHash");
            (r["name"].as_str().unwrap().to_string(), r)
        })
        .collect()
}

/// Built-in lists: every entry kubesim serves is in the recording, identical. The
/// cert-manager list was recorded while only some CRDs were Established: there,
/// every recorded entry must be served, identical.
fn assert_discovery_matches(name: &str, mine: &Value, theirs: &Value) {
    assert_eq!(mine["kind"], theirs["kind"], "{name}");
    assert_eq!(mine["groupVersion"], theirs["groupVersion"], "{name}");
    assert_eq!(mine.get("apiVersion"), theirs.get("apiVersion"), "{name}");
    let (mine, real) = (entries(mine), entries(theirs));
    let (subset, superset) = if name.starts_with("39-") {
        (&real, &mine)
    } else {
        (&mine, &real)
    };
    for (resource, entry) in subset {
        let other = superset
            .iter()
            .find(|(n, _)| n == resource)
            .unwrap_or_else(|| {
                panic!("{name}: {resource} is served by only one of kubesim and the real server")
            });
        assert_same(&format!("{name} {resource}"), entry, &other.1);
    }
}

/// Every resource kubesim lists in aggregated discovery is in the recording, identical.
fn assert_aggregated_matches(name: &str, mine: &Value, theirs: &Value) {
    assert_eq!(
        (&mine["kind"], &mine["apiVersion"]),
        (&theirs["kind"], &theirs["apiVersion"]),
        "{name}"
    );
    let mut compared = 0;
    for group in mine["items"].as_array().unwrap() {
        let recorded = theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"] == group["metadata"]);
        let recorded =
            recorded.unwrap_or_else(|| panic!("{name}: unknown group {}", group["metadata"]));
        for version in group["versions"].as_array().unwrap() {
            let real = recorded["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["version"] == version["version"]);
            let real = real.unwrap_or_else(|| {
                panic!(
                    "{name}: {} has no {}",
                    group["metadata"], version["version"]
                )
            });
            assert_eq!(version["freshness"], real["freshness"], "{name}");
            for resource in version["resources"].as_array().unwrap() {
                let other = real["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["resource"] == resource["resource"]);
                let other = other.unwrap_or_else(|| {
                    panic!(
                        "{name}: {} is not served by the real server",
                        resource["resource"]
                    )
                });
                assert_same(&format!("{name} {}", resource["resource"]), resource, other);
                compared += 1;
            }
        }
    }
    assert!(compared >= 6, "{name}: only {compared} resources compared");
}

#[tokio::test]
async fn recorded_exchanges_replay_identically() {
    let (_server, client) = crate::support::start(kubesim::ServeOptions::default()).await;
    let mut certificate_rv = String::new();
    let mut replayed = 0;
    for name in fixture_names() {
        let recorded = fixture(&name);
        let request = &recorded["request"];
        let expected = &recorded["response"];
        let mut path = request["path"].as_str().unwrap().to_string();
        if name.starts_with("44-") {
            // Resume from our own create's resourceVersion; end the watch sooner.
            path = path.replace(
                "resourceVersion=287",
                &format!("resourceVersion={certificate_rv}"),
            );
            path = path.replace("timeoutSeconds=5", "timeoutSeconds=1");
        }
        let answer = send(&client, request, &path).await;
        replayed += 1;
        let code = expected["status"].as_u64().unwrap() as u16;
        if name.contains("-crd-") && !name.contains("-get") {
            // The recording server already had one of these CRDs (200); kubesim starts empty.
            assert!(
                matches!(answer.status, 200 | 201),
                "{name}: {}",
                String::from_utf8_lossy(&answer.body)
            );
            continue;
        }
        assert_eq!(
            answer.status,
            code,
            "{name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let n = &name[..3];
        match n {
            "01-" => {
                let mine = answer.json();
                let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
                assert_eq!(keys(&mine), keys(&expected["body"]), "{name}");
            }
            "02-" => assert_same(
                &name,
                &json!({"kind": answer.json()["kind"], "versions": answer.json()["versions"]}),
                &json!({"kind": expected["body"]["kind"], "versions": expected["body"]["versions"]}),
            ),
            "05-" => {
                assert_eq!(
                    answer.content_type, expected["headers"]["Content-Type"],
                    "{name}"
                );
                assert_aggregated_matches(&name, &answer.json(), &expected["body"]);
            }
            "04-" => {
                let mine = answer.json();
                assert!(
                    answer.content_type.starts_with("application/json"),
                    "{name}"
                );
                assert_eq!(mine["kind"], "APIGroupList", "{name}");
                let real = fixture("04-discovery-apis.json")["response"]["body"].clone();
                for group in mine["groups"].as_array().unwrap() {
                    let recorded = real["groups"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|g| g["name"] == group["name"]);
                    let recorded = recorded
                        .unwrap_or_else(|| panic!("{name}: unknown group {}", group["name"]));
                    assert_eq!(
                        group["preferredVersion"], recorded["preferredVersion"],
                        "{name}"
                    );
                }
            }
            "03-" | "06-" | "07-" | "08-" | "09-" | "10-" | "11-" | "39-" => {
                assert_discovery_matches(&name, &answer.json(), &expected["body"])
            }
            "38-" => {
                let mine = answer.json();
                let types = |v: &Value| {
                    v["status"]["conditions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["type"].clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(types(&mine), types(&expected["body"]), "{name}");
                assert_eq!(
                    mine["status"]["acceptedNames"], expected["body"]["status"]["acceptedNames"],
                    "{name}"
                );
            }
            "44-" => {
                let mine: Vec<Value> = answer
                    .events()
                    .into_iter()
                    .filter(|e| e["type"] != "BOOKMARK")
                    .collect();
                let theirs = expected["events"].as_array().unwrap();
                assert_eq!(mine.len(), theirs.len(), "{name}: {mine:?}");
                for (m, t) in mine.iter().zip(theirs) {
                    assert_same(&name, m, t);
                }
            }
            "47-" => {
                let events = answer.events();
                assert_eq!(events.len(), 1, "{name}");
                let mut mine = events[0].clone();
                let mut theirs = expected["body"].clone();
                // The message quotes the oldest resourceVersion each server still has.
                mine["object"]["message"] = json!("<x>");
                theirs["object"]["message"] = json!("<x>");
                assert_same(&name, &mine, &theirs);
            }
            _ => {
                let mine = answer.json();
                if name.starts_with("41-") {
                    certificate_rv = mine["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string();
                }
                if mine["kind"] == "Status" {
                    assert_same(
                        &name,
                        &comparable_status(&name, &mine),
                        &comparable_status(&name, &expected["body"]),
                    );
                } else {
                    assert_same(&name, &mine, &expected["body"]);
                }
            }
        }
    }
    assert!(replayed >= 40, "only {replayed} fixtures found");
}

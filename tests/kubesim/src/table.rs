//! `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`: the server-side
//! printing `kubectl get` asks for, so its columns look as on a real cluster
//! (READY/UP-TO-DATE/AVAILABLE for Deployments, a CRD's additionalPrinterColumns...).

use serde_json::{Value, json};

use crate::kinds::ResourceType;

/// Whether the client asked for a Table.
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// How much of each object a row carries (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(value: Option<&str>) -> Include {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

struct Column {
    name: String,
    kind: String,
    priority: i64,
    cell: Box<dyn Fn(&Value) -> Value + Send + Sync>,
}

fn column(name: &str, cell: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Column {
    Column {
        name: name.into(),
        kind: "string".into(),
        priority: 0,
        cell: Box::new(cell),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Entries of a map or list.
fn count(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    }
}

/// Kubernetes' `duration.HumanDuration`, as the Age column shows it.
pub fn human_duration(seconds: i64) -> String {
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

fn age(obj: &Value) -> Value {
    let created = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match created {
        Some(t) => json!(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second()
        )),
        None => json!("<unknown>"),
    }
}

fn condition_true(obj: &Value, kind: &str) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// The STATUS kubectl shows for a pod: a container's waiting or terminated reason
/// when there is one, else the phase (kubectl's printPod, without init containers).
fn pod_status(pod: &Value) -> String {
    let status = &pod["status"];
    let mut shown = status["reason"]
        .as_str()
        .or(status["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for c in status["containerStatuses"].as_array().into_iter().flatten() {
        let state = &c["state"];
        if let Some(reason) = state["waiting"]["reason"].as_str() {
            shown = reason.to_string();
        } else if let Some(reason) = state["terminated"]["reason"].as_str() {
            shown = reason.to_string();
        } else if state["terminated"].is_object() {
            shown = format!("ExitCode:{}", int(&state["terminated"]["exitCode"]));
        }
    }
    shown
}

fn builtin_columns(rt: &ResourceType) -> Vec<Column> {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => vec![
            column("Ready", |o| {
                json!(format!(
                    "{}/{}",
                    int(&o["status"]["readyReplicas"]),
                    int(&o["spec"]["replicas"])
                ))
            }),
            column("Up-to-date", |o| {
                json!(int(&o["status"]["updatedReplicas"]))
            }),
            column("Available", |o| {
                json!(int(&o["status"]["availableReplicas"]))
            }),
        ],
        ("apps", "replicasets") => vec![
            column("Desired", |o| json!(int(&o["spec"]["replicas"]))),
            column("Current", |o| json!(int(&o["status"]["replicas"]))),
            column("Ready", |o| json!(int(&o["status"]["readyReplicas"]))),
        ],
        ("", "pods") => vec![
            column("Ready", |o| {
                let statuses = o["status"]["containerStatuses"].as_array();
                let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
                json!(format!("{ready}/{}", count(&o["spec"]["containers"])))
            }),
            column("Status", |o| json!(pod_status(o))),
            column("Restarts", |o| {
                let statuses = o["status"]["containerStatuses"].as_array();
                json!(statuses.map_or(0, |s| {
                    s.iter().map(|c| int(&c["restartCount"])).sum::<i64>()
                }))
            }),
        ],
        ("batch", "jobs") => vec![
            column("Status", |o| {
                json!(if condition_true(o, "Complete") {
                    "Complete"
                } else if condition_true(o, "Failed") {
                    "Failed"
                } else {
                    "Running"
                })
            }),
            column("Completions", |o| {
                json!(format!(
                    "{}/{}",
                    int(&o["status"]["succeeded"]),
                    int(&o["spec"]["completions"])
                ))
            }),
        ],
        ("", "services") => vec![
            column("Type", |o| o["spec"]["type"].clone()),
            column("Cluster-IP", |o| {
                json!(o["spec"]["clusterIP"].as_str().unwrap_or("<none>"))
            }),
            column("Port(s)", |o| {
                let ports: Vec<String> = o["spec"]["ports"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                format!(
                                    "{}/{}",
                                    int(&p["port"]),
                                    p["protocol"].as_str().unwrap_or("TCP")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                })
            }),
        ],
        ("", "configmaps") => vec![column("Data", |o| {
            json!(count(&o["data"]) + count(&o["binaryData"]))
        })],
        ("", "secrets") => vec![
            column("Type", |o| o["type"].clone()),
            column("Data", |o| json!(count(&o["data"]))),
        ],
        ("", "namespaces") => vec![column("Status", |o| o["status"]["phase"].clone())],
        ("networking.k8s.io", "ingresses") => vec![
            column("Class", |o| {
                json!(o["spec"]["ingressClassName"].as_str().unwrap_or("<none>"))
            }),
            column("Hosts", |o| {
                let hosts: Vec<&str> = o["spec"]["rules"]
                    .as_array()
                    .map(|rs| rs.iter().filter_map(|r| r["host"].as_str()).collect())
                    .unwrap_or_default();
                json!(if hosts.is_empty() {
                    "*".to_string()
                } else {
                    hosts.join(",")
                })
            }),
            column("Ports", |o| {
                json!(
                    if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                        "80, 443"
                    } else {
                        "80"
                    }
                )
            }),
        ],
        _ => Vec::new(),
    }
}

fn crd_columns(crd: &Value, version: &str) -> Vec<Column> {
    let versions = crd["spec"]["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(v) = versions.iter().find(|v| v["name"] == version) else {
        return Vec::new();
    };
    v["additionalPrinterColumns"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["jsonPath"] != ".metadata.creationTimestamp")
        .map(|c| {
            let path = c["jsonPath"].as_str().unwrap_or_default().to_string();
            let kind = c["type"].as_str().unwrap_or("string").to_string();
            let date = kind == "date";
            Column {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                kind: if date { "string".into() } else { kind },
                priority: c["priority"].as_i64().unwrap_or(0),
                cell: Box::new(move |o| {
                    let found = json_path(o, &path);
                    match (
                        date,
                        found
                            .as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok()),
                    ) {
                        (true, Some(t)) => json!(human_duration(
                            jiff::Timestamp::now().as_second() - t.as_second()
                        )),
                        _ => found,
                    }
                }),
            }
        })
        .collect()
}

/// The JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`.
pub fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = vec![obj.clone()];
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(filter) = rest.strip_prefix('[') {
            let Some(end) = filter.find(']') else {
                return Value::Null;
            };
            let inner = &filter[..end];
            rest = filter[end + 1..].trim_start_matches('.');
            cur = cur
                .iter()
                .flat_map(|v| {
                    v.as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                })
                .filter(|(i, item)| {
                    match inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                        Some(cond) => cond.split_once("==").is_some_and(|(k, want)| {
                            let want = want.trim().trim_matches(['"', '\'']);
                            json_path(item, k.trim()).as_str() == Some(want)
                        }),
                        None => inner.parse::<usize>().is_ok_and(|n| n == *i) || inner == "*",
                    }
                })
                .map(|(_, item)| item)
                .collect();
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let field = &rest[..end];
            rest = rest[end..].trim_start_matches('.');
            cur = cur
                .iter()
                .map(|v| v[field].clone())
                .filter(|v| !v.is_null())
                .collect();
        }
    }
    match cur.len() {
        0 => Value::Null,
        1 => cur.remove(0),
        _ => json!(
            cur.iter()
                .map(|v| v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A Table of `objects`; `crd` is the definition of a custom resource's type.
pub fn table(
    rt: &ResourceType,
    crd: Option<&Value>,
    objects: &[Value],
    resource_version: &str,
    include: Include,
) -> Value {
    let mut columns = vec![Column {
        name: "Name".into(),
        kind: "string".into(),
        priority: 0,
        cell: Box::new(|o| o["metadata"]["name"].clone()),
    }];
    columns.extend(match crd {
        Some(crd) => crd_columns(crd, &rt.version),
        None => builtin_columns(rt),
    });
    columns.push(column("Age", age));
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": c.kind, "format": format, "description": "", "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(o)).collect();
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
                }
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths() {
        let cert = json!({"spec": {"secretName": "s"}, "status": {"conditions": [
            {"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            json_path(&cert, ".status.conditions[?(@.type==\"Ready\")].status"),
            json!("True")
        );
        assert_eq!(json_path(&cert, ".spec.secretName"), json!("s"));
        assert_eq!(
            json_path(&cert, ".status.conditions[0].type"),
            json!("Issuing")
        );
        assert_eq!(json_path(&cert, ".spec.missing"), Value::Null);
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(3600 * 24 * 3), "3d");
    }

    #[test]
    fn wanted_only_when_tables_come_first() {
        assert!(wanted(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wanted("application/json"));
    }
}

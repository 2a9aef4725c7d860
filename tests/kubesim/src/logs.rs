//! `pods/NAME/log`: what a container wrote, made up from its state, since no container
//! runs. A running container shows a web server's start-up lines; one that crashed
//! shows a Django app dying at start-up, after printing its settings (so the values of
//! the Secrets it reads appear in the log, as they do with real apps, and clients
//! that show logs must scrub them).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::cluster::{Cluster, Target};
use crate::status::ApiError;

/// Which container's log, and how much of it (`kubectl logs -c C --tail N --previous`).
pub struct LogRequest<'a> {
    pub container: Option<&'a str>,
    pub tail_lines: Option<usize>,
    pub previous: bool,
}

/// The log text, or the error the real server answers (no container named in a pod
/// with several, a container that has not started).
pub fn pod_log(cluster: &Cluster, pod: &Value, req: &LogRequest) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers: Vec<&Value> = pod["spec"]["containers"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let container = match (req.container, containers.as_slice()) {
        (Some(wanted), _) => containers
            .iter()
            .find(|c| c["name"] == wanted)
            .copied()
            .ok_or_else(|| {
                ApiError::bad_request(format!("container {wanted} is not valid for pod {name}"))
            })?,
        (None, [one]) => *one,
        (None, many) => {
            let names: Vec<&str> = many.iter().filter_map(|c| c["name"].as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let container_name = container["name"].as_str().unwrap_or_default();
    let status = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == container_name));
    let Some(status) = status else {
        return Err(waiting(container_name, name, "ContainerCreating"));
    };
    let terminated = if req.previous {
        &status["lastState"]["terminated"]
    } else if status["state"]["terminated"].is_object() {
        &status["state"]["terminated"]
    } else if status["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
        // Until the restart, the log is that of the instance that crashed.
        &status["lastState"]["terminated"]
    } else {
        &Value::Null
    };
    if req.previous && !terminated.is_object() {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container_name}\" in pod \"{name}\" not found"
        )));
    }
    if !terminated.is_object() && !status["state"]["running"].is_object() {
        let reason = status["state"]["waiting"]["reason"]
            .as_str()
            .unwrap_or("ContainerCreating");
        let reason = match reason {
            "ErrImagePull" | "ImagePullBackOff" => "trying and failing to pull image",
            other => other,
        };
        return Err(waiting(container_name, name, reason));
    }
    let lines = match terminated["exitCode"].as_i64() {
        Some(code) if code != 0 => crashed(cluster, pod, container, code),
        Some(_) => finished(container),
        None => serving(container),
    };
    let skip = req.tail_lines.map_or(0, |n| lines.len().saturating_sub(n));
    Ok(lines.into_iter().skip(skip).map(|l| l + "\n").collect())
}

fn waiting(container: &str, pod: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}"
    ))
}

fn serving(_container: &Value) -> Vec<String> {
    [
        "[1] [INFO] Starting gunicorn 22.0.0",
        "[1] [INFO] Listening at: http://0.0.0.0:8000 (1)",
        "[1] [INFO] Using worker: sync",
        "[7] [INFO] Booting worker with pid: 7",
    ]
    .map(String::from)
    .to_vec()
}

fn finished(container: &Value) -> Vec<String> {
    let command = command_line(container);
    vec![
        format!("+ {command}"),
        "Operations to perform:".into(),
        "  Apply all migrations: admin, auth, contenttypes, polls, sessions".into(),
        "Running migrations:".into(),
        "  No migrations to apply.".into(),
    ]
}

fn crashed(cluster: &Cluster, pod: &Value, container: &Value, code: i64) -> Vec<String> {
    let mut lines = vec![
        format!("+ {}", command_line(container)),
        "Settings from the environment:".into(),
    ];
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    for (key, value) in environment(cluster, namespace, container) {
        lines.push(format!("  {key}={value}"));
    }
    lines.extend(
        [
            "Traceback (most recent call last):",
            "  File \"/app/manage.py\", line 22, in <module>",
            "    main()",
            "  File \"/usr/local/lib/python3.12/site-packages/django/db/backends/base/base.py\", line 275, in ensure_connection",
            "    self.connect()",
            "django.db.utils.OperationalError: connection to server failed: Connection refused",
            "\tIs the server running on that host and accepting TCP/IP connections?",
        ]
        .map(String::from),
    );
    lines.push(format!("exited with code {code}"));
    lines
}

fn command_line(container: &Value) -> String {
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|f| container[*f].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if words.is_empty() {
        container["image"].as_str().unwrap_or_default().to_string()
    } else {
        words.join(" ")
    }
}

/// The container's environment as the kubelet would build it: envFrom sources, then env.
fn environment(cluster: &Cluster, namespace: &str, container: &Value) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or_default();
        for (plural, field) in [("configmaps", "configMapRef"), ("secrets", "secretRef")] {
            if let Some(name) = source[field]["name"].as_str()
                && let Some(data) = data_of(cluster, namespace, plural, name)
            {
                env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
            }
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_string();
        let from = &var["valueFrom"];
        let value = if let Some(v) = var["value"].as_str() {
            Some(v.to_string())
        } else {
            [
                ("configmaps", "configMapKeyRef"),
                ("secrets", "secretKeyRef"),
            ]
            .iter()
            .find_map(|(plural, field)| {
                let reference = &from[*field];
                let data = data_of(cluster, namespace, plural, reference["name"].as_str()?)?;
                let key = reference["key"].as_str()?;
                data.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
            })
        };
        env.extend(value.map(|v| (name, v)));
    }
    env
}

/// A ConfigMap's or Secret's data as text (Secret values decoded).
fn data_of(
    cluster: &Cluster,
    namespace: &str,
    plural: &str,
    name: &str,
) -> Option<Vec<(String, String)>> {
    let rt = cluster.find_type("", "v1", plural)?;
    let object = cluster
        .get(&Target {
            rt,
            namespace: Some(namespace.to_string()),
            name: Some(name.to_string()),
            subresource: None,
        })
        .ok()?;
    let data = object["data"].as_object()?;
    Some(
        data.iter()
            .map(|(k, v)| {
                let text = v.as_str().unwrap_or_default();
                let text = if plural == "secrets" {
                    STANDARD
                        .decode(text)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                } else {
                    text.to_string()
                };
                (k.clone(), text)
            })
            .collect(),
    )
}

//! Pod Security admission's warnings, as the real server sends them in `Warning`
//! headers: a pod template that would violate the level a namespace labels with
//! `pod-security.kubernetes.io/warn` (or `enforce`, which for workloads also only warns
//! here, pods are not run) gets `would violate PodSecurity "LEVEL:latest": ...`. The
//! checks modelled are the ones manifests trip on most: privileged and host namespaces
//! (baseline), and the restricted level's four container settings.

use serde_json::Value;

/// The warning for `obj` (a Pod or a workload with a pod template) in a namespace with
/// `labels`, if it violates the namespace's level.
pub fn warning(labels: &Value, obj: &Value) -> Option<String> {
    let level = ["warn", "enforce"]
        .iter()
        .find_map(|mode| labels[format!("pod-security.kubernetes.io/{mode}")].as_str())?;
    let restricted = match level {
        "restricted" => true,
        "baseline" => false,
        _ => return None,
    };
    let pod = if obj["kind"] == "Pod" {
        &obj["spec"]
    } else if obj["kind"] == "CronJob" {
        &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &obj["spec"]["template"]["spec"]
    };
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| pod[*f].as_array())
        .flatten()
        .collect();
    if containers.is_empty() {
        return None;
    }
    let name = |c: &Value| c["name"].as_str().unwrap_or_default().to_owned();
    let quoted = |names: &[String]| {
        let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        let noun = if names.len() == 1 {
            "container"
        } else {
            "containers"
        };
        format!("{noun} {}", list.join(", "))
    };
    let mut found = Vec::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host] == true {
            found.push(format!("host namespaces ({host}=true)"));
        }
    }
    let privileged: Vec<String> = containers
        .iter()
        .filter(|c| c["securityContext"]["privileged"] == true)
        .map(|c| name(c))
        .collect();
    if !privileged.is_empty() {
        found.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            quoted(&privileged)
        ));
    }
    if restricted {
        let lacking = |test: &dyn Fn(&Value) -> bool| -> Vec<String> {
            containers
                .iter()
                .filter(|c| !test(c))
                .map(|c| name(c))
                .collect()
        };
        let escalation = lacking(&|c| c["securityContext"]["allowPrivilegeEscalation"] == false);
        if !escalation.is_empty() {
            found.push(format!(
                "allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)",
                quoted(&escalation)
            ));
        }
        let capabilities = lacking(&|c| {
            c["securityContext"]["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|v| v == "ALL"))
        });
        if !capabilities.is_empty() {
            found.push(format!(
                "unrestricted capabilities ({} must set securityContext.capabilities.drop=[\"ALL\"])",
                quoted(&capabilities)
            ));
        }
        let pod_non_root = pod["securityContext"]["runAsNonRoot"] == true;
        let root = lacking(&|c| pod_non_root || c["securityContext"]["runAsNonRoot"] == true);
        if !root.is_empty() {
            found.push(format!(
                "runAsNonRoot != true (pod or {} must set securityContext.runAsNonRoot=true)",
                quoted(&root)
            ));
        }
        let pod_seccomp = pod["securityContext"]["seccompProfile"]["type"].is_string();
        let seccomp =
            lacking(&|c| pod_seccomp || c["securityContext"]["seccompProfile"]["type"].is_string());
        if !seccomp.is_empty() {
            found.push(format!(
                "seccompProfile (pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
                quoted(&seccomp)
            ));
        }
    }
    (!found.is_empty()).then(|| {
        format!(
            "would violate PodSecurity \"{level}:latest\": {}",
            found.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn restricted_namespaces_warn_about_plain_deployments() {
        let labels = json!({"pod-security.kubernetes.io/warn": "restricted"});
        let deploy = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "x"}]}}}});
        let text = warning(&labels, &deploy).unwrap();
        assert!(text.starts_with("would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"app\" must set"), "{text}");
        assert_eq!(warning(&json!({}), &deploy), None);
        let baseline = json!({"pod-security.kubernetes.io/enforce": "baseline"});
        assert_eq!(warning(&baseline, &deploy), None);
    }
}

//! When an applied object counts as ready: `kubectl rollout status`'s rules for the
//! workloads, kstatus' for the rest (a Ready/Available condition of the current
//! generation; objects without status are ready once stored).

use serde_json::Value;

/// What an object's live state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not there yet; why, in a few words.
    Waiting(String),
    Ready(String),
    /// It will not get there without a change (progress deadline, Job failed).
    Failed(String),
}

impl State {
    pub fn text(&self) -> &str {
        match self {
            State::Waiting(t) | State::Ready(t) | State::Failed(t) => t,
        }
    }

    pub fn is_done(&self) -> bool {
        !matches!(self, State::Waiting(_))
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The condition of `kind`, if set.
pub fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn is_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind).is_some_and(|c| c["status"] == "True")
}

/// `reason: message` of a condition, for messages.
fn explain(c: &Value) -> String {
    let reason = c["reason"].as_str().unwrap_or_default();
    match c["message"].as_str() {
        Some(m) if !m.is_empty() && !reason.is_empty() => format!("{reason}: {m}"),
        Some(m) if !m.is_empty() => m.to_string(),
        _ => reason.to_string(),
    }
}

/// Whether the controller has seen the current spec (objects without
/// observedGeneration have no such controller).
fn observed(obj: &Value) -> Option<State> {
    let generation = int(&obj["metadata"]["generation"]);
    let observed = &obj["status"]["observedGeneration"];
    (observed.is_i64() && int(observed) < generation).then(|| {
        State::Waiting(format!(
            "waiting for generation {generation} to be observed"
        ))
    })
}

/// The state of `obj` (apiVersion and kind set).
pub fn assess(obj: &Value) -> State {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (group, obj["kind"].as_str().unwrap_or_default()) {
        ("apps", "Deployment") => deployment(obj),
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("batch", "Job") => job(obj),
        ("", "PersistentVolumeClaim") => match obj["status"]["phase"].as_str() {
            Some("Bound") => State::Ready("Bound".into()),
            Some("Lost") => State::Failed("Lost: its volume is gone".into()),
            phase => State::Waiting(phase.unwrap_or("Pending").to_string()),
        },
        ("", "Service") if obj["spec"]["type"] == "LoadBalancer" => {
            match obj["status"]["loadBalancer"]["ingress"].as_array() {
                Some(addresses) if !addresses.is_empty() => {
                    let shown: Vec<&str> = addresses
                        .iter()
                        .filter_map(|a| a["ip"].as_str().or(a["hostname"].as_str()))
                        .collect();
                    State::Ready(format!("load balancer at {}", shown.join(", ")))
                }
                _ => State::Waiting("waiting for a load balancer address".into()),
            }
        }
        ("", "Pod") => match obj["status"]["phase"].as_str() {
            Some("Succeeded") => State::Ready("Succeeded".into()),
            Some("Failed") => State::Failed("Failed".into()),
            _ if is_true(obj, "Ready") => State::Ready("Ready".into()),
            phase => State::Waiting(phase.unwrap_or("Pending").to_string()),
        },
        ("cert-manager.io", "Issuer" | "ClusterIssuer") => issuer(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            if is_true(obj, "Established") {
                State::Ready("Established".into())
            } else if let Some(c) =
                condition(obj, "NamesAccepted").filter(|c| c["status"] == "False")
            {
                State::Failed(explain(c))
            } else {
                State::Waiting("waiting to be Established".into())
            }
        }
        _ => generic(obj),
    }
}

/// kubectl rollout status for Deployments.
fn deployment(obj: &Value) -> State {
    if let Some(waiting) = observed(obj).or_else(|| {
        obj["status"]["observedGeneration"]
            .is_null()
            .then(|| State::Waiting("waiting for the deployment controller".into()))
    }) {
        return waiting;
    }
    let status = &obj["status"];
    if let Some(c) =
        condition(obj, "Progressing").filter(|c| c["reason"] == "ProgressDeadlineExceeded")
    {
        return State::Failed(format!("exceeded its progress deadline ({})", explain(c)));
    }
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = int(&status["updatedReplicas"]);
    let available = int(&status["availableReplicas"]);
    let total = int(&status["replicas"]);
    if updated < replicas {
        State::Waiting(format!(
            "{updated} of {replicas} new replicas updated, {available} available"
        ))
    } else if total > updated {
        State::Waiting(format!(
            "{} old replicas pending termination",
            total - updated
        ))
    } else if available < updated {
        State::Waiting(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else if total > replicas {
        // Scaled down (by hand or a HorizontalPodAutoscaler): the pods beyond
        // spec.replicas are going, never "2/1 available".
        State::Ready(format!(
            "{}/{replicas} replicas available (scaling down from {total})",
            available.min(replicas)
        ))
    } else {
        State::Ready(format!("{available}/{replicas} replicas available"))
    }
}

fn stateful_set(obj: &Value) -> State {
    if let Some(waiting) = observed(obj) {
        return waiting;
    }
    let status = &obj["status"];
    let spec = &obj["spec"];
    if spec["updateStrategy"]["type"] == "OnDelete" {
        return State::Ready("OnDelete: updated as pods are deleted".into());
    }
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let ready = int(&status["readyReplicas"]);
    if ready < replicas {
        return State::Waiting(format!("{ready} of {replicas} pods ready"));
    }
    let partition = int(&spec["updateStrategy"]["rollingUpdate"]["partition"]);
    if partition > 0 {
        let updated = int(&status["updatedReplicas"]);
        if updated < replicas - partition {
            return State::Waiting(format!(
                "{updated} of {} pods updated (partition {partition})",
                replicas - partition
            ));
        }
        return State::Ready(format!("{ready}/{replicas} pods ready"));
    }
    if status["updateRevision"] != status["currentRevision"] {
        let updated = int(&status["updatedReplicas"]);
        return State::Waiting(format!("{updated} of {replicas} pods updated"));
    }
    State::Ready(format!("{ready}/{replicas} pods ready"))
}

fn daemon_set(obj: &Value) -> State {
    if let Some(waiting) = observed(obj) {
        return waiting;
    }
    let status = &obj["status"];
    if obj["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return State::Ready("OnDelete: updated as pods are deleted".into());
    }
    let desired = int(&status["desiredNumberScheduled"]);
    let updated = int(&status["updatedNumberScheduled"]);
    let available = int(&status["numberAvailable"]);
    if updated < desired {
        State::Waiting(format!("{updated} of {desired} pods updated"))
    } else if available < desired {
        State::Waiting(format!("{available} of {desired} updated pods available"))
    } else {
        State::Ready(format!("{available}/{desired} pods available"))
    }
}

fn job(obj: &Value) -> State {
    if let Some(c) = condition(obj, "Failed").filter(|c| c["status"] == "True") {
        return State::Failed(format!("failed ({})", explain(c)));
    }
    let status = &obj["status"];
    let succeeded = int(&status["succeeded"]);
    if is_true(obj, "Complete") {
        return State::Ready(format!("complete ({succeeded} succeeded)"));
    }
    if obj["spec"]["suspend"] == true {
        return State::Waiting("suspended".into());
    }
    let completions = obj["spec"]["completions"].as_i64().unwrap_or(1);
    let (active, failed) = (int(&status["active"]), int(&status["failed"]));
    let mut text = format!("{succeeded} of {completions} completions, {active} running");
    if failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    State::Waiting(text)
}

/// cert-manager's issuers are usable once cert-manager says Ready (an ACME account
/// registered, a CA verified): stored alone, they sign nothing. Ready=False carries
/// cert-manager's reason (a refused ACME registration), which it keeps retrying.
fn issuer(obj: &Value) -> State {
    match condition(obj, "Ready") {
        Some(c) => {
            let current = c["observedGeneration"]
                .as_i64()
                .is_none_or(|g| g >= int(&obj["metadata"]["generation"]));
            match c["status"].as_str() {
                Some("True") if current => State::Ready(format!("Ready ({})", explain(c))),
                Some("True") => {
                    State::Waiting("waiting for cert-manager to check the change".into())
                }
                status => State::Waiting(format!(
                    "not Ready ({}): {}",
                    status.unwrap_or("Unknown"),
                    explain(c)
                )),
            }
        }
        None => State::Waiting(
            "waiting for cert-manager to set Ready (is cert-manager running?)".into(),
        ),
    }
}

/// kstatus for kinds it has no special rules for.
fn generic(obj: &Value) -> State {
    if let Some(waiting) = observed(obj) {
        return waiting;
    }
    if let Some(c) = condition(obj, "Stalled").filter(|c| c["status"] == "True") {
        return State::Failed(explain(c));
    }
    for kind in ["Ready", "Available"] {
        if let Some(c) = condition(obj, kind) {
            // A condition that records its generation must be about the current one.
            let stale = c["observedGeneration"]
                .as_i64()
                .is_some_and(|g| g < int(&obj["metadata"]["generation"]));
            return match c["status"].as_str() {
                Some("True") if !stale => State::Ready(kind.to_string()),
                _ => State::Waiting(format!(
                    "{kind}={}: {}",
                    c["status"].as_str().unwrap_or("Unknown"),
                    explain(c)
                )),
            };
        }
    }
    if is_true(obj, "Reconciling") {
        return State::Waiting("reconciling".into());
    }
    State::Ready("stored".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn deployments_follow_rollout_status() {
        let waiting = |s: Value| matches!(assess(&deploy(s)), State::Waiting(_));
        assert!(waiting(
            json!({"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2})
        ));
        assert!(waiting(
            json!({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 2, "replicas": 3})
        ));
        assert!(waiting(
            json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 3})
        ));
        assert!(waiting(
            json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 1, "replicas": 2})
        ));
        assert_eq!(
            assess(&deploy(
                json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2})
            )),
            State::Ready("2/2 replicas available".into())
        );
        let stuck = deploy(json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"a-1\" has timed out progressing."}]}));
        assert!(matches!(assess(&stuck), State::Failed(m) if m.contains("progress deadline")));
    }

    #[test]
    fn a_deployment_scaled_down_never_shows_more_available_than_wanted() {
        let mut scaled = deploy(
            json!({"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}),
        );
        scaled["spec"]["replicas"] = 1.into();
        assert_eq!(
            assess(&scaled),
            State::Ready("1/1 replicas available (scaling down from 2)".into())
        );
    }

    #[test]
    fn issuers_are_ready_when_cert_manager_says_so() {
        let issuer = |status: Value| {
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
                   "metadata": {"generation": 1}, "status": status})
        };
        assert!(
            matches!(assess(&issuer(json!({}))), State::Waiting(t) if t.contains("cert-manager"))
        );
        let refused = issuer(json!({"conditions": [{"type": "Ready", "status": "False",
            "reason": "ErrRegisterACMEAccount", "message": "Failed to register ACME account: 400"}]}));
        assert!(
            matches!(assess(&refused), State::Waiting(t) if t.contains("ErrRegisterACMEAccount: Failed to register"))
        );
        let ready = issuer(json!({"conditions": [{"type": "Ready", "status": "True",
            "reason": "ACMEAccountRegistered", "observedGeneration": 1}]}));
        assert!(matches!(assess(&ready), State::Ready(_)));
    }

    #[test]
    fn jobs_complete_or_fail() {
        let job = |conditions: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {},
                   "status": {"conditions": conditions, "failed": 7}})
        };
        assert!(matches!(assess(&job(json!([]))), State::Waiting(t) if t.contains("7 failed")));
        assert!(matches!(
            assess(&job(json!([{"type": "Complete", "status": "True"}]))),
            State::Ready(_)
        ));
        assert!(matches!(
            assess(&job(json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]))),
            State::Failed(t) if t.contains("BackoffLimitExceeded")
        ));
    }

    #[test]
    fn other_kinds() {
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}});
        assert!(matches!(assess(&pvc), State::Waiting(_)));
        let lb = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"},
                        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        assert_eq!(assess(&lb), State::Ready("load balancer at 1.2.3.4".into()));
        let plain = json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"},
                           "status": {"loadBalancer": {}}});
        assert!(matches!(assess(&plain), State::Ready(_)));
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert!(matches!(assess(&crd), State::Ready(_)));
        let cert = |status: &str, observed: i64| {
            json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"generation": 2},
            "status": {"conditions": [{"type": "Ready", "status": status, "observedGeneration": observed}]}})
        };
        assert!(matches!(assess(&cert("True", 2)), State::Ready(_)));
        assert!(matches!(assess(&cert("True", 1)), State::Waiting(_)));
        assert!(matches!(assess(&cert("False", 2)), State::Waiting(_)));
        assert!(matches!(
            assess(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            State::Ready(_)
        ));
    }
}

//! Reading a Certificate's status the way cert-manager writes it.
//!
//! cert-manager keeps two conditions on a Certificate: `Ready` (the Secret holds a valid,
//! up-to-date certificate) and `Issuing` (an issuance is in progress; `False` with reason
//! `Failed` when the last attempt failed, together with `status.lastFailureTime`).
//! A condition is only about the spec it was computed for when its `observedGeneration`
//! equals the object's `metadata.generation`.

use jiff::Timestamp;
use serde_json::Value;

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// `Ready: False, Reason: DoesNotExist, Message: ...`, as `cmctl status` prints it.
    pub fn cmctl_line(&self) -> String {
        format!(
            "{}: {}, Reason: {}, Message: {}",
            self.type_, self.status, self.reason, self.message
        )
    }
}

/// The condition of the given type in `status.conditions`, if any.
pub fn condition(object: &Value, type_: &str) -> Option<Condition> {
    conditions(object).into_iter().find(|c| c.type_ == type_)
}

/// Every condition in `status.conditions`, in order.
pub fn conditions(object: &Value) -> Vec<Condition> {
    let text = |c: &Value, field: &str| c[field].as_str().unwrap_or_default().to_owned();
    object["status"]["conditions"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|c| Condition {
                    type_: text(c, "type"),
                    status: text(c, "status"),
                    reason: text(c, "reason"),
                    message: text(c, "message"),
                    observed_generation: c["observedGeneration"].as_i64(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a Certificate's status means for someone waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ready=True for the current spec.
    Ready,
    /// Not there yet (or Ready only for an older generation of the spec).
    Pending,
    /// cert-manager recorded a failed issuance; its next attempt is far away.
    Failed {
        last_failure_time: String,
        message: String,
    },
}

/// Reads a Certificate's status. A failure counts only if it is new: recorded at or after
/// `started`, or different from the failure recorded when certwait first saw the
/// certificate (`baseline`), so an old failure that cert-manager will retry is not fatal.
pub fn verdict(cert: &Value, started: Timestamp, baseline: Option<&str>) -> Verdict {
    if is_ready(cert) {
        return Verdict::Ready;
    }
    let Some(issuing) = condition(cert, "Issuing") else {
        return Verdict::Pending;
    };
    let Some(failed_at) = cert["status"]["lastFailureTime"].as_str() else {
        return Verdict::Pending;
    };
    let failed = issuing.status == "False" && issuing.reason == "Failed";
    if failed && is_new_failure(failed_at, started, baseline) {
        Verdict::Failed {
            last_failure_time: failed_at.to_owned(),
            message: issuing.message,
        }
    } else {
        Verdict::Pending
    }
}

/// Ready=True, computed for the current generation of the spec. A condition without
/// observedGeneration (cert-manager before 1.0) is taken as current.
pub fn is_ready(cert: &Value) -> bool {
    let Some(ready) = condition(cert, "Ready") else {
        return false;
    };
    ready.status == "True" && is_current(cert, &ready)
}

fn is_current(object: &Value, condition: &Condition) -> bool {
    match (
        condition.observed_generation,
        object["metadata"]["generation"].as_i64(),
    ) {
        (Some(observed), Some(generation)) => observed == generation,
        _ => true,
    }
}

/// Status times have whole seconds, so a failure in the second certwait started counts.
fn is_new_failure(failed_at: &str, started: Timestamp, baseline: Option<&str>) -> bool {
    if baseline.is_some_and(|b| b != failed_at) {
        return true;
    }
    let Ok(failed_at) = failed_at.parse::<Timestamp>() else {
        return false;
    };
    failed_at.as_second() >= started.as_second()
}

/// The Ready and Issuing conditions in one line: what progress reports when it changes.
pub fn summary(cert: &Value) -> String {
    let mut parts = Vec::new();
    let mut said = String::new();
    for type_ in ["Ready", "Issuing"] {
        let Some(c) = condition(cert, type_) else {
            continue;
        };
        let mut part = format!("{}={}", c.type_, c.status);
        if !c.reason.is_empty() {
            part.push_str(&format!(" {}", c.reason));
        }
        // cert-manager often gives both conditions the same message: say it once.
        if !c.message.is_empty() && c.message != said {
            part.push_str(&format!(": {}", c.message));
        }
        said = c.message.clone();
        if !is_current(cert, &c) {
            part.push_str(&format!(
                " (for generation {}, the spec is at {})",
                c.observed_generation.unwrap_or_default(),
                cert["metadata"]["generation"].as_i64().unwrap_or_default()
            ));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        "created, no status yet (is the cert-manager controller running?)".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn started() -> Timestamp {
        "2026-11-24T17:49:10.600Z".parse().unwrap()
    }

    /// Shaped like fixture 42: Issuing, not yet Ready.
    fn issuing() -> Value {
        json!({
            "metadata": {"name": "polls-tls", "generation": 1},
            "status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "DoesNotExist",
                 "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1},
                {"type": "Issuing", "status": "True", "reason": "DoesNotExist",
                 "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1}
            ]}
        })
    }

    /// Shaped like fixture 43: Ready, with the Issuing condition removed.
    fn ready(observed: i64, generation: i64) -> Value {
        json!({
            "metadata": {"name": "polls-tls", "generation": generation},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "Ready",
                 "message": "Certificate is up to date and has not expired",
                 "observedGeneration": observed}
            ], "notAfter": "2027-02-22T00:00:00Z"}
        })
    }

    fn failed(at: &str) -> Value {
        json!({
            "metadata": {"name": "polls-tls", "generation": 1},
            "status": {"lastFailureTime": at, "failedIssuanceAttempts": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "x",
                 "observedGeneration": 1},
                {"type": "Issuing", "status": "False", "reason": "Failed",
                 "message": "The certificate request has failed to complete and will be retried",
                 "observedGeneration": 1}
            ]}
        })
    }

    #[test]
    fn ready_needs_true_for_the_current_generation() {
        assert_eq!(verdict(&ready(1, 1), started(), None), Verdict::Ready);
        assert_eq!(verdict(&ready(1, 2), started(), None), Verdict::Pending);
        assert_eq!(verdict(&issuing(), started(), None), Verdict::Pending);
        assert_eq!(
            verdict(&json!({"metadata": {"name": "x"}}), started(), None),
            Verdict::Pending
        );
    }

    #[test]
    fn condition_without_observed_generation_is_current() {
        let mut cert = ready(1, 3);
        cert["status"]["conditions"][0]
            .as_object_mut()
            .unwrap()
            .remove("observedGeneration");
        assert!(is_ready(&cert));
    }

    #[test]
    fn failure_after_start_is_fatal_one_before_is_not() {
        let after = failed("2026-11-24T17:49:30Z");
        assert!(matches!(
            verdict(&after, started(), None),
            Verdict::Failed { .. }
        ));
        // Same second as the start: status times are truncated to seconds.
        let same_second = failed("2026-11-24T17:49:10Z");
        assert!(matches!(
            verdict(&same_second, started(), None),
            Verdict::Failed { .. }
        ));
        let before = failed("2026-11-24T16:00:00Z");
        assert_eq!(
            verdict(&before, started(), Some("2026-11-24T16:00:00Z")),
            Verdict::Pending
        );
    }

    #[test]
    fn failure_that_changed_since_first_seen_is_new_even_with_a_slow_clock() {
        let cert = failed("2026-11-24T17:00:00Z");
        let verdict = verdict(&cert, started(), Some("2026-11-24T16:00:00Z"));
        assert!(matches!(verdict, Verdict::Failed { message, .. } if message.contains("retried")));
    }

    #[test]
    fn issuing_failed_without_last_failure_time_is_pending() {
        let mut cert = failed("2026-11-24T17:49:30Z");
        cert["status"]
            .as_object_mut()
            .unwrap()
            .remove("lastFailureTime");
        assert_eq!(verdict(&cert, started(), None), Verdict::Pending);
    }

    #[test]
    fn summary_names_conditions_and_stale_generations() {
        assert_eq!(
            summary(&issuing()),
            "Ready=False DoesNotExist: Issuing certificate as Secret does not exist; \
             Issuing=True DoesNotExist"
        );
        assert!(summary(&ready(1, 2)).contains("(for generation 1, the spec is at 2)"));
        assert!(summary(&json!({})).contains("no status yet"));
    }

    #[test]
    fn cmctl_line_format() {
        let c = condition(&issuing(), "Ready").unwrap();
        assert_eq!(
            c.cmctl_line(),
            "Ready: False, Reason: DoesNotExist, Message: Issuing certificate as Secret does not exist"
        );
    }
}

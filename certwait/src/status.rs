//! Reading a Certificate's status the way cert-manager writes it.
//!
//! cert-manager keeps two conditions on a Certificate: `Ready` (the Secret holds a valid,
//! up-to-date certificate) and `Issuing` (an issuance is in progress; `False` with reason
//! `Failed` when the last attempt failed, together with `status.lastFailureTime`).
//! A condition is only about the spec it was computed for when its `observedGeneration`
//! equals the object's `metadata.generation`.

use crate::certmanager::{Certificate, Condition, condition};
use jiff::Timestamp;

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
pub fn verdict(cert: &Certificate, started: Timestamp, baseline: Option<&str>) -> Verdict {
    if is_ready(cert) {
        return Verdict::Ready;
    }
    let Some(issuing) = condition(cert, "Issuing") else {
        return Verdict::Pending;
    };
    let Some(failed_at) = last_failure_time(cert) else {
        return Verdict::Pending;
    };
    let failed = issuing.status == "False" && issuing.reason == "Failed";
    if failed && is_new_failure(failed_at, started, baseline) {
        Verdict::Failed {
            last_failure_time: failed_at.to_owned(),
            message: issuing.message.clone(),
        }
    } else {
        Verdict::Pending
    }
}

/// Ready=True, computed for the current generation of the spec. A condition without
/// observedGeneration (cert-manager before 1.0) is taken as current.
pub fn is_ready(cert: &Certificate) -> bool {
    let Some(ready) = condition(cert, "Ready") else {
        return false;
    };
    ready.status == "True" && is_current(cert, ready)
}

/// `status.lastFailureTime`, when cert-manager recorded a failed issuance.
pub fn last_failure_time(cert: &Certificate) -> Option<&str> {
    cert.status.as_ref()?.last_failure_time.as_deref()
}

fn is_current(cert: &Certificate, condition: &Condition) -> bool {
    match (condition.observed_generation, cert.metadata.generation) {
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
pub fn summary(cert: &Certificate) -> String {
    let mut parts = Vec::new();
    let mut said = "";
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
        said = &c.message;
        if !is_current(cert, c) {
            part.push_str(&format!(
                " (for generation {}, the spec is at {})",
                c.observed_generation.unwrap_or_default(),
                cert.metadata.generation.unwrap_or_default()
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
    use serde_json::{Value, json};

    fn cert(object: Value) -> Certificate {
        serde_json::from_value(object).unwrap()
    }

    fn started() -> Timestamp {
        "2026-11-24T17:49:10.600Z".parse().unwrap()
    }

    /// Shaped like fixture 42: Issuing, not yet Ready.
    fn issuing() -> Certificate {
        cert(json!({
            "metadata": {"name": "polls-tls", "generation": 1}, "spec": {},
            "status": {"conditions": [
                {"type": "Ready", "status": "False", "reason": "DoesNotExist",
                 "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1},
                {"type": "Issuing", "status": "True", "reason": "DoesNotExist",
                 "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1}
            ]}
        }))
    }

    /// Shaped like fixture 43: Ready, with the Issuing condition removed.
    fn ready(observed: i64, generation: i64) -> Certificate {
        cert(json!({
            "metadata": {"name": "polls-tls", "generation": generation}, "spec": {},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "Ready",
                 "message": "Certificate is up to date and has not expired",
                 "observedGeneration": observed}
            ], "notAfter": "2027-02-22T00:00:00Z"}
        }))
    }

    fn failed(at: &str) -> Certificate {
        cert(json!({
            "metadata": {"name": "polls-tls", "generation": 1}, "spec": {},
            "status": {"lastFailureTime": at, "failedIssuanceAttempts": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "x",
                 "observedGeneration": 1},
                {"type": "Issuing", "status": "False", "reason": "Failed",
                 "message": "The certificate request has failed to complete and will be retried",
                 "observedGeneration": 1}
            ]}
        }))
    }

    #[test]
    fn ready_needs_true_for_the_current_generation() {
        assert_eq!(verdict(&ready(1, 1), started(), None), Verdict::Ready);
        assert_eq!(verdict(&ready(1, 2), started(), None), Verdict::Pending);
        assert_eq!(verdict(&issuing(), started(), None), Verdict::Pending);
        assert_eq!(
            verdict(
                &cert(json!({"metadata": {"name": "x"}, "spec": {}})),
                started(),
                None
            ),
            Verdict::Pending
        );
    }

    #[test]
    fn condition_without_observed_generation_is_current() {
        let mut cert = ready(1, 3);
        cert.status.as_mut().unwrap().conditions[0].observed_generation = None;
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
        cert.status.as_mut().unwrap().last_failure_time = None;
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
        assert!(summary(&cert(json!({"metadata": {}, "spec": {}}))).contains("no status yet"));
    }

    #[test]
    fn cmctl_line_format() {
        let cert = issuing();
        let c = condition(&cert, "Ready").unwrap();
        assert_eq!(
            c.cmctl_line(),
            "Ready: False, Reason: DoesNotExist, Message: Issuing certificate as Secret does not exist"
        );
    }
}

//! What kapply says about each object: result lines, failures, the summary.

use crate::cli::Output;
use crate::failure::Failure;
use crate::outcome::{Change, Outcome};
use kpipe_core::ObjectId;
use kpipe_core::time::format_elapsed;
use serde_json::Value;
use std::time::Duration;

/// `deployment.apps/polls`, as kubectl names objects in its result lines.
pub fn kubectl_name(id: &ObjectId) -> String {
    let kind = id.kind.to_lowercase();
    match id.group() {
        "" => format!("{kind}/{}", id.name),
        group => format!("{kind}.{group}/{}", id.name),
    }
}

/// `n` and `noun`, plural unless `n` is 1: `1 object`, `3 objects`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// One result line: `configmap/polls-config created`, `... (server dry run)`.
pub fn result_line(id: &ObjectId, change: Change, dry_run: bool) -> String {
    let suffix = if dry_run { " (server dry run)" } else { "" };
    format!("{} {change}{suffix}\n", kubectl_name(id))
}

/// The kinds of failure the summary counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    Conflict,
    Invalid,
    NotFound,
    Forbidden,
    Unavailable,
    TimedOut,
    /// Not sent, because what it needs failed.
    NotApplied,
    Other,
}

impl FailureKind {
    pub fn of(failure: &Failure) -> Self {
        match failure {
            Failure::OutOfTime => return FailureKind::TimedOut,
            Failure::NotApplied(_) => return FailureKind::NotApplied,
            _ => {}
        }
        if failure.is_transient() {
            return FailureKind::Unavailable;
        }
        match failure.code() {
            Some(409) => FailureKind::Conflict,
            // A 500 that is not transient is the server rejecting the object's content.
            Some(400 | 422 | 500) => FailureKind::Invalid,
            Some(404) => FailureKind::NotFound,
            Some(401 | 403) => FailureKind::Forbidden,
            _ => FailureKind::Other,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            FailureKind::Conflict => "conflict",
            FailureKind::Invalid => "invalid",
            FailureKind::NotFound => "not found",
            FailureKind::Forbidden => "forbidden",
            FailureKind::Unavailable => "server unavailable",
            FailureKind::TimedOut => "timed out",
            FailureKind::NotApplied => "not applied",
            FailureKind::Other => "other",
        }
    }
}

/// The full report of one failed object, every line starting `kapply: `, every known
/// secret value masked.
pub fn failure(id: &ObjectId, failure: &Failure, retried: Duration) -> String {
    let retried = format_elapsed(retried);
    let text = match failure {
        Failure::Api { status, .. } if status.code == 409 && !conflicts(status).is_empty() => {
            conflict_report(id, status)
        }
        Failure::Api { status, .. } => {
            let mut line = format!("kapply: {id}: {}", failure.message());
            if failure.is_transient() {
                line.push_str(&format!(
                    " (HTTP {}; gave up after retrying for {retried})",
                    status.code
                ));
            }
            line.push('\n');
            if status.code == 422 && status.message.contains("field is immutable") {
                let namespace = id
                    .namespace
                    .as_ref()
                    .map(|ns| format!(" -n {ns}"))
                    .unwrap_or_default();
                line.push_str(&format!(
                    "kapply:   that field cannot change on a live object: delete it \
                     (kubectl delete {}{namespace}) and apply again\n",
                    kubectl_name(id)
                ));
            }
            line
        }
        Failure::Transport {
            transient: true, ..
        } => {
            format!(
                "kapply: {id}: {} (gave up after retrying for {retried})\n",
                failure.message()
            )
        }
        _ => format!("kapply: {id}: {}\n", failure.message()),
    };
    kpipe_core::redact::scrub(&text).into_owned()
}

/// One field in conflict: who manages it and how (`Apply` or `Update`, when known).
pub struct Conflict {
    pub field: String,
    pub manager: String,
    pub operation: Option<String>,
}

/// The conflicts of a 409's `FieldManagerConflict` causes.
pub fn conflicts(status: &kube::core::Status) -> Vec<Conflict> {
    let Some(details) = &status.details else {
        return Vec::new();
    };
    details
        .causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| {
            // The message reads `conflict with "MANAGER"` (plus ` using VERSION` at times),
            // and [`note_operations`] may have added `(operation: OP)`.
            let manager = c.message.split('"').nth(1).unwrap_or(&c.message).to_owned();
            let operation = c
                .message
                .split_once(OPERATION)
                .map(|(_, op)| op.trim_end_matches(')').to_owned());
            Conflict {
                field: c.field.clone(),
                manager,
                operation,
            }
        })
        .collect()
}

const OPERATION: &str = " (operation: ";

/// Adds to a 409's conflict causes the operation by which each manager owns its fields,
/// from the live object's managedFields: the fitting fix depends on it.
pub fn note_operations(failure: &mut Failure, live: Option<&serde_json::Value>) {
    let (Failure::Api { status, .. }, Some(live)) = (failure, live) else {
        return;
    };
    let Some(details) = status.details.as_mut() else {
        return;
    };
    let entries = live["metadata"]["managedFields"].as_array();
    for cause in details
        .causes
        .iter_mut()
        .filter(|c| c.reason == "FieldManagerConflict" && !c.message.contains(OPERATION))
    {
        let manager = cause.message.split('"').nth(1).unwrap_or_default();
        let operation = entries
            .into_iter()
            .flatten()
            .find(|e| e["manager"] == manager && e["subresource"].is_null())
            .and_then(|e| e["operation"].as_str());
        if let Some(operation) = operation {
            cause.message = format!("{}{OPERATION}{operation})", cause.message);
        }
    }
}

fn conflict_report(id: &ObjectId, status: &kube::core::Status) -> String {
    let fields = conflicts(status);
    let count = fields.len();
    let plural = if count == 1 { "field is" } else { "fields are" };
    let mut text = format!(
        "kapply: {id}: apply conflict: {count} {plural} managed by another field manager:\n"
    );
    let width = fields.iter().map(|c| c.field.len()).max().unwrap_or(0);
    for c in &fields {
        let how = match c.operation.as_deref() {
            Some("Apply") => " (server-side apply)",
            Some("Update") => " (update)",
            _ => "",
        };
        text.push_str(&format!(
            "kapply:   {:width$}  managed by \"{}\"{how}\n",
            c.field, c.manager
        ));
    }
    let mut managers: Vec<&Conflict> = Vec::new();
    for c in &fields {
        if !managers.iter().any(|m| m.manager == c.manager) {
            managers.push(c);
        }
    }
    for c in managers {
        let manager = &c.manager;
        text.push_str(&match c.operation.as_deref() {
            Some("Apply") => format!(
                "kapply:   \"{manager}\" applies these fields with server-side apply: to apply \
                 as that manager, run again with --field-manager {manager}; to take the fields \
                 over from it, run again with --force-conflicts\n"
            ),
            Some("Update") => format!(
                "kapply:   \"{manager}\" wrote these fields with an update (such as kubectl \
                 edit, create or client-side apply): to take them over, run again with \
                 --force-conflicts; from then on change them in the manifests\n"
            ),
            _ => format!(
                "kapply:   to take the fields of \"{manager}\" over, run again with \
                 --force-conflicts (it then stops managing them)\n"
            ),
        });
    }
    text
}

/// The last line on stderr when something failed.
pub fn summary(kinds: &[FailureKind], total: usize, dry_run: bool) -> String {
    let mut counts: Vec<(FailureKind, usize)> = Vec::new();
    let mut sorted = kinds.to_vec();
    sorted.sort();
    for kind in sorted {
        match counts.last_mut() {
            Some((k, n)) if *k == kind => *n += 1,
            _ => counts.push((kind, 1)),
        }
    }
    let detail: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{n} {}", k.noun()))
        .collect();
    let done = total - kinds.len();
    let verb = if dry_run { "checked" } else { "applied" };
    format!(
        "{} of {} failed ({}); {done} {verb}",
        kinds.len(),
        counted(total, "object"),
        detail.join(", ")
    )
}

/// How many objects the summary of an interrupted run names one by one.
const NAMED_NOT_APPLIED: usize = 10;

/// What an interrupted run did and did not do: `ids` and `outcomes` in input order.
pub fn interrupted(ids: &[ObjectId], outcomes: &[Outcome], dry_run: bool) -> String {
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done { .. }))
        .count();
    let verb = if dry_run { "checked" } else { "applied" };
    let mut text = format!("{done} of {} objects {verb}", ids.len());
    let not_started: Vec<String> = ids
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Interrupted { in_flight: false }))
        .map(|(id, _)| id.to_string())
        .collect();
    let in_flight: Vec<String> = ids
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Interrupted { in_flight: true }))
        .map(|(id, _)| id.to_string())
        .collect();
    if !in_flight.is_empty() {
        text.push_str(&format!(
            "; still in flight, may or may not have been {verb}: {}",
            named(&in_flight)
        ));
    }
    if !not_started.is_empty() {
        text.push_str(&format!("; not {verb}: {}", named(&not_started)));
    }
    text
}

/// What a prune or delete that a signal stopped did and did not do.
pub fn interrupted_removal(verb: &str, left: &crate::applyset::Left) -> String {
    let names = |ids: &[ObjectId]| named(&ids.iter().map(ToString::to_string).collect::<Vec<_>>());
    let total = left.deleted + left.failed.len() + left.kept.len() + left.unsure.len();
    let mut text = format!("{} of {total} objects {verb}", left.deleted);
    if !left.unsure.is_empty() {
        text.push_str(&format!(
            "; still in flight, may or may not have been {verb}: {}",
            names(&left.unsure)
        ));
    }
    if !left.kept.is_empty() {
        text.push_str(&format!("; kept (not {verb}): {}", names(&left.kept)));
    }
    if !left.failed.is_empty() {
        let failed: Vec<ObjectId> = left.failed.iter().map(|(id, _)| id.clone()).collect();
        text.push_str(&format!("; failed (see above): {}", names(&failed)));
    }
    text
}

fn named(ids: &[String]) -> String {
    let mut text = ids
        .iter()
        .take(NAMED_NOT_APPLIED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > NAMED_NOT_APPLIED {
        text.push_str(&format!(" and {} more", ids.len() - NAMED_NOT_APPLIED));
    }
    text
}

/// `-o yaml` is a stream, `-o json` one object or a `List`, `-o name` one line each,
/// as kubectl prints them. Only the YAML stream tells a reader that the run did not
/// succeed (`complete` false: no end line); JSON carries no comment, and a cut-off JSON
/// document does not parse anyway.
pub fn render(objects: &[Value], format: Output, complete: bool) -> String {
    match format {
        Output::Name => objects
            .iter()
            .filter_map(ObjectId::of)
            .map(|id| kubectl_name(&id) + "\n")
            .collect(),
        Output::Yaml if complete => kpipe_core::yaml::to_stream(objects),
        Output::Yaml => kpipe_core::yaml::to_unfinished_stream(objects),
        Output::Json => {
            let value = match objects {
                [one] => one.clone(),
                many => {
                    serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": many})
                }
            };
            serde_json::to_string_pretty(&value).expect("JSON values serialize") + "\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn id(api_version: &str, kind: &str, name: &str) -> ObjectId {
        ObjectId {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some("fixtures".into()),
            name: name.into(),
        }
    }

    #[test]
    fn result_lines_name_objects_as_kubectl_does() {
        assert_eq!(
            result_line(
                &id("v1", "ConfigMap", "polls-config"),
                Change::Created,
                false
            ),
            "configmap/polls-config created\n"
        );
        assert_eq!(
            result_line(
                &id("apps/v1", "Deployment", "polls-app"),
                Change::Unchanged,
                false
            ),
            "deployment.apps/polls-app unchanged\n"
        );
        assert_eq!(
            result_line(
                &id("cert-manager.io/v1", "ClusterIssuer", "le"),
                Change::Configured,
                true
            ),
            "clusterissuer.cert-manager.io/le configured (server dry run)\n"
        );
    }

    #[test]
    fn conflict_lists_each_field_with_its_manager_from_fixture_17() {
        let failure = Failure::api(fixtures::status("17-ssa-conflict.json"), None);
        let text = super::failure(
            &id("v1", "ConfigMap", "polls-config"),
            &failure,
            Duration::from_secs(30),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "kapply: ConfigMap/polls-config in namespace fixtures: apply conflict: 1 field is managed by another field manager:"
        );
        assert_eq!(
            lines[1],
            "kapply:   .data.DJANGO_LOGLEVEL  managed by \"kapply\""
        );
        assert!(lines[2].contains("--force-conflicts"), "{text}");
        assert!(!text.contains("tutorial"), "{text}");
        assert_eq!(FailureKind::of(&failure), FailureKind::Conflict);
    }

    #[test]
    fn conflicts_give_the_fix_that_fits_the_managers_operation() {
        let mut status = fixtures::status("17-ssa-conflict.json");
        let details = status.details.as_mut().unwrap();
        details.causes[0].message = "conflict with \"kubectl\"".into();
        let mut second = details.causes[0].clone();
        second.message = "conflict with \"kubectl-client-side-apply\" using v1".into();
        second.field = ".data.DEBUG".into();
        details.causes.push(second);
        let live = serde_json::json!({"metadata": {"managedFields": [
            {"manager": "kubectl", "operation": "Apply"},
            {"manager": "kubectl-client-side-apply", "operation": "Update"},
        ]}});
        let mut failure = Failure::api(status, None);
        note_operations(&mut failure, Some(&live));
        let text = super::failure(
            &id("v1", "ConfigMap", "polls-config"),
            &failure,
            Duration::from_secs(30),
        );
        assert!(text.contains("2 fields are managed"), "{text}");
        assert!(
            text.contains(
                "kapply:   .data.DEBUG            managed by \"kubectl-client-side-apply\" (update)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\"kubectl\" applies these fields with server-side apply: to apply as that manager, run again with --field-manager kubectl; to take the fields over from it, run again with --force-conflicts"),
            "{text}"
        );
        assert!(
            text.contains("\"kubectl-client-side-apply\" wrote these fields with an update (such as kubectl edit, create or client-side apply): to take them over, run again with --force-conflicts"),
            "{text}"
        );
        assert!(!text.contains("tutorial"), "{text}");
    }

    #[test]
    fn other_failures_carry_the_servers_message_scrubbed() {
        let failure = Failure::api(fixtures::status("21-ssa-missing-namespace.json"), None);
        let text = super::failure(
            &id("v1", "ConfigMap", "x"),
            &failure,
            Duration::from_secs(30),
        );
        assert_eq!(
            text,
            "kapply: ConfigMap/x in namespace fixtures: namespaces \"nonexistent\" not found\n"
        );
        assert_eq!(FailureKind::of(&failure), FailureKind::NotFound);

        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"pw": "hunter2-pw"}});
        kpipe_core::redact::learn_objects([&secret]);
        let echo = Failure::api(
            kube::core::Status::failure("bad value \"hunter2-pw\"", "Invalid").with_code(422),
            None,
        );
        let text = super::failure(&id("v1", "Secret", "s"), &echo, Duration::from_secs(30));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn immutable_fields_get_a_way_out_from_fixture_28() {
        let failure = Failure::api(
            fixtures::status("28-deployment-selector-immutable.json"),
            None,
        );
        let text = super::failure(
            &id("apps/v1", "Deployment", "polls-app"),
            &failure,
            Duration::from_secs(30),
        );
        assert!(text.contains("spec.selector: Invalid value"), "{text}");
        assert!(
            text.ends_with(
                "delete it (kubectl delete deployment.apps/polls-app -n fixtures) and apply again\n"
            ),
            "{text}"
        );
        let bad_type = Failure::api(fixtures::status("22-configmap-bool-value.json"), None);
        assert_eq!(FailureKind::of(&bad_type), FailureKind::Invalid);
    }

    #[test]
    fn transient_failures_say_they_were_retried() {
        let failure = Failure::api(kube::core::Status::failure("busy", "").with_code(503), None);
        let text = super::failure(
            &id("v1", "ConfigMap", "x"),
            &failure,
            Duration::from_secs(30),
        );
        assert!(
            text.ends_with("busy (HTTP 503; gave up after retrying for 30.0s)\n"),
            "{text}"
        );
    }

    #[test]
    fn summary_counts_failures_by_kind() {
        let kinds = [
            FailureKind::Invalid,
            FailureKind::Conflict,
            FailureKind::Invalid,
        ];
        assert_eq!(
            summary(&kinds, 7, false),
            "3 of 7 objects failed (1 conflict, 2 invalid); 4 applied"
        );
        assert_eq!(
            summary(&kinds[..1], 2, true),
            "1 of 2 objects failed (1 invalid); 1 checked"
        );
    }

    #[test]
    fn json_output_is_a_list_when_there_are_several() {
        let a = serde_json::json!({"kind": "ConfigMap"});
        let one: Value =
            serde_json::from_str(&render(std::slice::from_ref(&a), Output::Json, true)).unwrap();
        assert_eq!(one, a);
        let two: Value =
            serde_json::from_str(&render(&[a.clone(), a.clone()], Output::Json, true)).unwrap();
        assert_eq!(two["kind"], "List");
        assert_eq!(two["items"].as_array().unwrap().len(), 2);
        assert_eq!(
            render(std::slice::from_ref(&a), Output::Yaml, true),
            "# kpipe stream: begin\n---\nkind: ConfigMap\n# kpipe stream: end\n"
        );
        assert_eq!(
            render(&[a], Output::Yaml, false),
            "# kpipe stream: begin\n---\nkind: ConfigMap\n"
        );
    }
}

//! `kapply --wait` against kubesim's simulated pods: a rollout that succeeds, each way
//! one fails (exit 1 and why), a timeout (exit 124 and why), and kapp change rules
//! that hold a Deployment back until its migration Job is complete. kubectl reads
//! the same cluster, to show what the diagnosis stands for.

use crate::common::{Exec, Run, Sim, run_bounded_with};

const SECRET_VALUE: &str = "s3cr3t-hunter2-value";

fn stack(image: &str, extra_container: &str, deployment_extra: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: polls-secret}}
stringData: {{DATABASE_PASSWORD: {SECRET_VALUE}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: polls-config}}
data: {{DJANGO_LOGLEVEL: info}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: polls-app}}
spec:
  replicas: 2{deployment_extra}
  selector: {{matchLabels: {{app: polls}}}}
  template:
    metadata: {{labels: {{app: polls}}}}
    spec:
      containers:
      - name: polls
        image: {image}
        envFrom:
        - secretRef: {{name: polls-secret}}
        - configMapRef: {{name: polls-config}}{extra_container}
"#
    )
}

fn kapply_wait(sim: &Sim, input: &str, args: &[&str]) -> Run {
    let mut c = sim.cmd("kapply");
    c.arg("--wait").args(args);
    c.run_with(input)
}

fn sim() -> Sim {
    Sim::start(&[
        "--deploy-delay",
        "200ms",
        "--pods-fail",
        "polls:bad=ImagePullBackOff",
        "--pods-fail",
        "polls:crash=CrashLoopBackOff:3",
        "--pods-fail",
        "polls:huge=Unschedulable",
    ])
}

#[test]
fn a_good_rollout_is_waited_for_and_ready() {
    let sim = sim();
    let out = kapply_wait(&sim, &stack("polls:1", "", ""), &["--timeout", "30s"]);
    out.success()
        .stdout_has("deployment.apps/polls-app created")
        .stderr_has("deployment.apps/polls-app: ready: 2/2 replicas available")
        .stderr_has("deployment.apps/polls-app: waiting:");
    // What the tutorial checks by hand now holds, as kubectl sees it.
    let deploy = sim.kubectl_ok(&["get", "deploy", "polls-app"]);
    assert!(deploy.contains("2/2"), "{deploy}");
    let pods = sim.kubectl_ok(&["get", "pod", "-l", "app=polls"]);
    assert_eq!(pods.matches("Running").count(), 2, "{pods}");
    let rollout = sim.kubectl_ok(&["rollout", "status", "deploy/polls-app", "--timeout=5s"]);
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
}

#[test]
fn with_output_the_objects_are_printed_once_ready() {
    let sim = sim();
    let out = kapply_wait(&sim, &stack("polls:1", "", ""), &["-o", "json"]);
    out.success();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deployment = &list["items"][2];
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(
        deployment["status"]["availableReplicas"], 2,
        "{deployment:#}"
    );
}

#[test]
fn an_image_that_cannot_be_pulled_fails_with_the_registry_message() {
    let sim = sim();
    let out = kapply_wait(&sim, &stack("polls:bad", "", ""), &[]);
    out.code(1)
        .stderr_has("deployment.apps/polls-app: failed:")
        .stderr_has("ImagePullBackOff");
    out.stderr_has("container polls: ImagePullBackOff (image polls:bad)")
        .stderr_has("pull access denied");
    out.stderr_has("recent warnings:")
        .stderr_has("Failed pod/polls-app-")
        .stderr_has("1 of 3 objects not ready");
    // kubectl describe shows the same kubelet story.
    let pod = sim.kubectl_ok(&["get", "pod", "-l", "app=polls", "-o", "name"]);
    let describe = sim.kubectl_ok(&["describe", pod.lines().next().unwrap()]);
    assert!(describe.contains("ImagePullBackOff"), "{describe}");
}

#[test]
fn an_image_is_printed_whole_even_when_a_secret_value_is_part_of_it() {
    // The tutorial's Docker Hub user is also its database user.
    let sim = sim();
    let input = stack("docker.io/sammy/polls:bad", "", "").replace(
        "{DATABASE_PASSWORD: ",
        "{DATABASE_USERNAME: sammy, DATABASE_PASSWORD: ",
    );
    let out = kapply_wait(&sim, &input, &[]);
    out.code(1)
        .stderr_has("container polls: ImagePullBackOff (image docker.io/sammy/polls:bad)")
        .stderr_lacks(SECRET_VALUE);
}

#[test]
fn a_crash_loop_shows_the_exit_code_and_the_scrubbed_log_tail() {
    let sim = sim();
    let out = kapply_wait(&sim, &stack("polls:crash", "", ""), &[]);
    out.code(1)
        .stderr_has(
            "container polls: CrashLoopBackOff, restarted 1 times, last exit code 3 (Error)",
        )
        .stderr_has("last 20 log lines:")
        .stderr_has("| django.db.utils.OperationalError")
        .stderr_has("DATABASE_PASSWORD=<redacted>")
        .stderr_lacks(SECRET_VALUE);
    // The container's log really holds the value: the redaction is what keeps it out.
    let pod = sim.kubectl_ok(&["get", "pod", "-l", "app=polls", "-o", "name"]);
    let logs = sim.kubectl_ok(&["logs", pod.lines().next().unwrap()]);
    assert!(logs.contains(SECRET_VALUE), "{logs}");
}

#[test]
fn a_secret_missing_from_the_cluster_is_named() {
    let sim = sim();
    let missing_ref = "\n        - secretRef: {name: polls-extra}";
    let out = kapply_wait(&sim, &stack("polls:1", missing_ref, ""), &[]);
    out.code(1).stderr_has(
        "container polls: CreateContainerConfigError: secret \"polls-extra\" not found",
    );
    let missing_key = "\n        env:\n        - name: API_KEY\n          valueFrom: {secretKeyRef: {name: polls-secret, key: API_KEY}}";
    let out = kapply_wait(&sim, &stack("polls:1", missing_key, ""), &[]);
    out.code(1)
        .stderr_has("couldn't find key API_KEY in Secret default/polls-secret");
}

#[test]
fn a_passed_progress_deadline_fails_and_shows_the_scheduling_message() {
    let sim = sim();
    let input = stack("polls:huge", "", "\n  progressDeadlineSeconds: 1");
    let out = kapply_wait(&sim, &input, &["--timeout", "30s"]);
    out.code(1)
        .stderr_has("exceeded its progress deadline")
        .stderr_has("Progressing=False ProgressDeadlineExceeded")
        .stderr_has("not scheduled: Unschedulable: 0/1 nodes are available")
        .stderr_has("FailedScheduling pod/polls-app-");
}

#[test]
fn a_timeout_exits_124_with_the_diagnosis() {
    let sim = sim();
    let out = kapply_wait(&sim, &stack("polls:huge", "", ""), &["--timeout", "2s"]);
    out.code(124)
        .stderr_has("deployment.apps/polls-app: not ready:")
        .stderr_has("not scheduled: Unschedulable")
        .stderr_has("timed out waiting: 1 of 3 objects not ready");
}

#[test]
fn a_watch_that_is_not_allowed_fails_at_once_naming_verb_and_resource() {
    // RBAC lets the user apply and list Deployments but not watch them: waiting
    // longer cures nothing, so the wait ends now rather than at --timeout.
    let sim = Sim::start(&[
        "--deploy-delay",
        "200ms",
        "--faults",
        "403:1000@GET/apis/apps/v1/namespaces/default/deployments?watch",
    ]);
    // --timeout 1h: a run that waits for it is killed after a minute and fails; how
    // soon it ends is bench/deadlines.sh's to measure.
    let mut c = sim.cmd("kapply");
    c.args(["--wait", "--timeout", "1h"]);
    let out = run_bounded_with(&mut c, &stack("polls:1", "", ""));
    // Its lines carry timings: the lines that matter, not the whole output.
    out.code(1)
        .stderr_has("deployment.apps/polls-app: failed: cannot watch deployments.apps in namespace default: forbidden (403)")
        .stderr_has("1 of 3 objects not ready")
        .stderr_lacks("timed out");
}

fn migration(job_image: &str, app_image: &str, backoff: u32) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: polls-migrate-{job_image_tag}
  annotations: {{kapp.k14s.io/change-group: polls/migrate}}
spec:
  backoffLimit: {backoff}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: {job_image}
        command: [python, manage.py, migrate]
---
{}"#,
        stack(app_image, "", "")
            .replace(
                "metadata: {name: polls-app}",
                "metadata:\n  name: polls-app\n  annotations: {kapp.k14s.io/change-rule: upsert after upserting polls/migrate}"
            ),
        job_image_tag = job_image.rsplit(':').next().unwrap(),
    )
}

#[test]
fn kapp_change_rules_apply_the_deployment_after_the_job_completed() {
    let sim = sim();
    let since = resource_version(&sim);
    let out = kapply_wait(&sim, &migration("polls:1", "polls:1", 1), &[]);
    // Its lines carry timings: their order, not the whole output.
    let err = out.success().stderr();
    let job_ready = err
        .find("job.batch/polls-migrate-1: ready: complete")
        .expect(&err);
    let deploy_seen = err.find("deployment.apps/polls-app:").expect(&err);
    assert!(job_ready < deploy_seen, "{err}");
    // The server made the Deployment only after the Job's completion was written: in
    // the order of its changes (resourceVersions, as a watch from the start replays
    // them), not of its log, whose line for a write can come after what that write set
    // off.
    let completed = first_change(
        &sim,
        "/apis/batch/v1/namespaces/default/jobs",
        &since,
        |e| {
            e["object"]["metadata"]["name"] == "polls-migrate-1"
                && e["object"]["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Complete" && c["status"] == "True")
                    })
        },
    );
    let created = first_change(
        &sim,
        "/apis/apps/v1/namespaces/default/deployments",
        &since,
        |e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "polls-app",
    );
    assert!(completed < created, "{completed} {created}\n{}", sim.log());
}

/// The server's resourceVersion now (a list's).
fn resource_version(sim: &Sim) -> String {
    let list: serde_json::Value =
        serde_json::from_str(&sim.kubectl_ok(&["get", "--raw", "/api/v1/namespaces"])).unwrap();
    list["metadata"]["resourceVersion"]
        .as_str()
        .expect("a list's resourceVersion")
        .to_owned()
}

/// The resourceVersion of the first change after resourceVersion `since` to the
/// objects at `path` (a collection) that `wanted` accepts, from the server's history:
/// a watch from `since` replays every change after it, then ends after a second.
fn first_change(
    sim: &Sim,
    path: &str,
    since: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> u64 {
    let events = sim.kubectl_ok(&[
        "get",
        "--raw",
        &format!("{path}?watch=1&resourceVersion={since}&timeoutSeconds=1"),
    ]);
    events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a watch event"))
        .find(|e| wanted(e))
        .and_then(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no such change at {path}:\n{events}"))
}

#[test]
fn a_failed_migration_leaves_the_running_deployment_untouched() {
    let sim = sim();
    kapply_wait(&sim, &migration("polls:1", "polls:1", 1), &[]).success();
    let out = kapply_wait(&sim, &migration("polls:crash", "polls:crash", 1), &[]);
    out.code(1)
        .stderr_has("job.batch/polls-migrate-crash: failed: failed (BackoffLimitExceeded")
        .stderr_has("exited with code 3 (Error)")
        .stderr_has("| django.db.utils.OperationalError")
        .stderr_has("polls-app: not applied: it follows change group polls/migrate, which did not become ready");
    let image = sim.kubectl_ok(&[
        "get",
        "deploy",
        "polls-app",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "polls:1");
    let rollout = sim.kubectl_ok(&["rollout", "status", "deploy/polls-app", "--timeout=5s"]);
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
}

#[test]
fn manifest_gen_migrate_orders_the_migration_before_the_rollout() {
    let sim = sim();
    let mut generate = crate::common::cmd("manifest-gen");
    generate.args([
        "--image",
        "polls:1",
        "--host",
        "polls.example.com",
        "--migrate",
        "--no-config-hash",
    ]);
    let generated = generate.run_with(
        stack("polls:1", "", "")
            .split("---\napiVersion: apps/v1")
            .next()
            .unwrap(),
    );
    generated
        .success()
        .stdout_has("kapp.k14s.io/change-group: polls/migrate")
        .stdout_has("kapp.k14s.io/change-rule: upsert after upserting polls/migrate");
    let out = kapply_wait(&sim, &generated.stdout(), &[]);
    // Its lines carry timings: their order, not the whole output.
    let err = out.success().stderr();
    let job_ready = err.find(": ready: complete").expect(&err);
    let deploy_seen = err.find("deployment.apps/polls-app:").expect(&err);
    assert!(job_ready < deploy_seen, "{err}");
}

const HIDDEN_VALUE: &str = "hidden-s3cr3t-for-the-app";

#[test]
fn a_pod_whose_secret_cannot_be_read_shows_no_log_lines_and_says_why() {
    // The user may not read the Secret the pod reads (RBAC's 403): its values cannot
    // be learned, so none of the pod's log lines may be shown. The kubelet (the
    // simulator's own controller) reads it, and the app logs its value.
    let sim = Sim::start(&[
        "--deploy-delay",
        "200ms",
        "--pods-fail",
        "polls:crash=CrashLoopBackOff:3",
        "--faults",
        "403:1000@GET/api/v1/namespaces/default/secrets/polls-hidden",
    ]);
    let literal = format!("--from-literal=API_TOKEN={HIDDEN_VALUE}");
    sim.kubectl_ok(&["create", "secret", "generic", "polls-hidden", &literal]);
    let hidden_ref = "\n        - secretRef: {name: polls-hidden}";
    let out = kapply_wait(&sim, &stack("polls:crash", hidden_ref, ""), &[]);
    out.code(1)
        .stderr_has("CrashLoopBackOff, restarted")
        .stderr_has("(its log is not shown: it reads Secret polls-hidden, which could not be read (403 Forbidden")
        .stderr_has("so its values could not be masked)")
        .stderr_lacks("log lines:")
        .stderr_lacks("      | ")
        .stderr_lacks(HIDDEN_VALUE);
    let pod = sim.kubectl_ok(&["get", "pod", "-l", "app=polls", "-o", "name"]);
    let logs = sim.kubectl_ok(&["logs", pod.lines().next().unwrap()]);
    assert!(logs.contains(HIDDEN_VALUE), "{logs}");

    // An optional Secret that does not exist: the container starts without it, and
    // kapply cannot know what it held.
    let missing_ref = "\n        - secretRef: {name: polls-gone, optional: true}";
    let out = kapply_wait(&sim, &stack("polls:crash", missing_ref, ""), &[]);
    out.code(1)
        .stderr_has(
            "(its log is not shown: it reads Secret polls-gone, which could not be read (not found)",
        )
        .stderr_lacks("      | ");
}

#[test]
fn terminal_escapes_in_logs_and_events_are_shown_escaped() {
    // An OSC 52 clipboard write and a clear-screen, in a log line and in an event (DEL
    // and a C1 CSI too: an apply body may not carry them raw, an event created may).
    let sim = sim();
    let escapes = r#"\e]52;c;cm0gLXJmIH4=\a\e[2J\r\e[H"#;
    let shown = r"\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x0d\x1b[H";
    let banner = format!("\n        env:\n        - {{name: BANNER, value: \"{escapes}\"}}");
    let input = stack("polls:crash", &banner, "");
    sim.cmd("kapply").run_with(&input).success();
    let uid = sim.kubectl_ok(&[
        "get",
        "deploy",
        "polls-app",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    sim.apply_yaml(&format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: polls-app.banner}}\ninvolvedObject: {{apiVersion: apps/v1, kind: Deployment, name: polls-app, namespace: default, uid: {uid}}}\nreason: Banner\ntype: Warning\nlastTimestamp: \"2099-01-01T00:00:00Z\"\nmessage: \"{escapes}\\x7f\\u009b\"\n"
    ));
    let out = kapply_wait(&sim, &input, &[]);
    out.code(1)
        .stderr_has(&format!("|   BANNER={shown}\n"))
        .stderr_has(&format!(r"Banner deployment/polls-app: {shown}\x7f\u009b"));
    for raw in ['\x1b', '\x07', '\r', '\x7f', '\u{9b}'] {
        out.stderr_lacks(&raw.to_string());
    }
}

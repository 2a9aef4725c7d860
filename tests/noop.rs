//! A re-apply that would change nothing sends nothing: every object the server already
//! holds as applied, owned by kapply's field manager exactly, is reported unchanged from
//! what was read, and no write reaches the server, the ApplySet parent's included.

use crate::common::*;
use crate::day2::{FIRST, make};

const INSTALL: &str = "tests/corpus/manifests/argo-cd-install.yaml";

/// The tool's requests that write, from the `from`th on.
fn writes(sim: &Sim, from: usize) -> Vec<String> {
    sim.tool_requests()
        .into_iter()
        .skip(from)
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

#[test]
fn a_no_op_re_apply_of_a_real_install_sends_no_write() {
    let sim = Sim::start(&[]);
    sim.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n");
    let install = workspace_root().join(INSTALL);
    let apply = |file: &std::path::Path| {
        let mut c = sim.cmd("kapply");
        c.args(["-n", "argocd", "-f"]).arg(file);
        c.run_with("")
    };
    apply(&install).success();
    let from = sim.tool_requests().len();
    let again = apply(&install);
    again.success();
    let lines = again.stdout();
    assert_eq!(lines.lines().count(), 59, "{lines}");
    assert!(lines.lines().all(|l| l.ends_with(" unchanged")), "{lines}");
    assert_eq!(writes(&sim, from), Vec::<String>::new());

    // A label another manager added is not ours to re-apply: still nothing sent.
    sim.kubectl_ok(&[
        "label",
        "-n",
        "argocd",
        "configmap",
        "argocd-cm",
        "team=web",
    ]);
    let from = sim.tool_requests().len();
    apply(&install)
        .success()
        .stdout_has("configmap/argocd-cm unchanged");
    assert_eq!(writes(&sim, from), Vec::<String>::new());

    // Another manager applying the same values co-owns them: nothing to check by a
    // dry run either, nothing sent.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\n  name: argocd-cm\n";
    let mut c = sim.kubectl();
    c.args([
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-n",
        "argocd",
        "-f",
        "-",
    ]);
    c.run_with(cm).success();
    let from = sim.tool_requests().len();
    apply(&install)
        .success()
        .stdout_has("configmap/argocd-cm unchanged");
    assert_eq!(writes(&sim, from), Vec::<String>::new());

    // One value changed in the input: that object alone is sent.
    let text = std::fs::read_to_string(&install).unwrap();
    let changed = text.replacen(
        "  name: argocd-cm\n---",
        "  name: argocd-cm\n  annotations: {note: changed}\n---",
        1,
    );
    assert_ne!(changed, text);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, changed).unwrap();
    let from = sim.tool_requests().len();
    apply(&file)
        .success()
        .stdout_has("configmap/argocd-cm configured");
    let sent = writes(&sim, from);
    // The apply, after a dry run that checks it against the other manager's fields.
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(
        sent.iter()
            .all(|r| r.starts_with("PATCH /api/v1/namespaces/argocd/configmaps/argocd-cm ")),
        "{sent:#?}"
    );
}

#[test]
fn a_deploy_again_writes_nothing_not_even_the_parent_or_a_record() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "200ms",
        "--deploy-delay",
        "100ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");
    make(Some(&sim), &settings, "deploy", FIRST).success();
    let from = sim.tool_requests().len();
    make(Some(&sim), &settings, "deploy", &[]).success();
    assert_eq!(writes(&sim, from), Vec::<String>::new());
}

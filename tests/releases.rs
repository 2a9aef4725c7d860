//! Releases against kubesim: `make history`, a failed deploy rolled back by itself (and
//! left in place with ATOMIC=0), `make rollback` to the previous or a named revision,
//! records that hold no secret value outside a Secret, config versions kept for the
//! last releases and pruned after, and `make destroy` taking the history with it.

use crate::common::*;
use crate::day2::{FIRST, make};
use serde_json::Value;

fn sim() -> Sim {
    Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "200ms",
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        ":broken$=ImagePullBackOff",
    ])
}

fn image(sim: &Sim) -> String {
    sim.kubectl_ok(&[
        "get",
        "deployment",
        "polls-app",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

/// `make history`'s rows, each split into its columns (the description whole).
fn history(sim: &Sim, settings: &std::path::Path) -> Vec<Vec<String>> {
    let run = make(Some(sim), settings, "history", &[]);
    run.success();
    let text = run.stdout();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("REVISION "), "{text}");
    let description = header.find("DESCRIPTION").expect("a DESCRIPTION column");
    lines
        .map(|l| {
            let mut cells: Vec<String> = l[..description]
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            cells.push(l[description..].to_owned());
            cells
        })
        .collect()
}

fn records(sim: &Sim) -> Vec<Value> {
    let list: Value = serde_json::from_str(&sim.kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        "default",
        "-l",
        "kpipe.dev/release-of",
        "-o",
        "json",
    ]))
    .unwrap();
    list["items"].as_array().unwrap().clone()
}

#[test]
fn history_atomic_rollback_and_destroy_through_make() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");
    let v2 = "IMAGE=docker.io/sammy/polls:v2";
    let broken = "IMAGE=docker.io/sammy/polls:broken";

    make(Some(&sim), &settings, "deploy", FIRST).success();
    // The same inputs again: nothing changes, not even the history.
    make(Some(&sim), &settings, "deploy", &[]).success();
    let rows = history(&sim, &settings);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "1");
    assert_eq!(
        [&rows[0][2], &rows[0][3], &rows[0][5], &rows[0][6]],
        [
            "deployed",
            "docker.io/sammy/polls:v1",
            "letsencrypt-staging",
            "install"
        ]
    );
    // The config versions the release's pods read, by content-named version.
    let config: Vec<&str> = rows[0][4].split(',').collect();
    assert!(
        config.len() == 2
            && config[0].starts_with("polls-config-")
            && config[1].starts_with("polls-secret-"),
        "{rows:?}"
    );

    make(Some(&sim), &settings, "deploy", &[v2]).success();

    // A release whose pods cannot start is undone: the app runs revision 2 again.
    make(Some(&sim), &settings, "deploy", &[broken])
        .code(2)
        .stderr_has("kapply: revision 3 failed: rolling back to revision 2 (--atomic)")
        .stderr_has("rolled back to revision 2, which runs again");
    assert_eq!(image(&sim), "docker.io/sammy/polls:v2");
    assert!(
        std::fs::read_to_string(&settings)
            .unwrap()
            .contains("IMAGE := docker.io/sammy/polls:v2\n"),
        "a failed release replaced the kept settings"
    );
    let rows = history(&sim, &settings);
    let status: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        status,
        [
            ("1", "superseded"),
            ("2", "superseded"),
            ("3", "failed"),
            ("4", "deployed")
        ]
    );
    assert!(rows[2][6].starts_with("upgrade failed: "), "{rows:?}");
    assert_eq!(rows[3][6], "rollback to 2 after revision 3 failed");

    // A rollout that fails (no migration Job to stop the release before it) is undone
    // too: the Deployment's pod template is the good release's again.
    make(Some(&sim), &settings, "deploy", &[broken, "MIGRATE=0"])
        .code(2)
        .stderr_has("deployment.apps/polls-app configured")
        .stderr_has("kapply: revision 5 failed: rolling back to revision 4 (--atomic)");
    assert_eq!(image(&sim), "docker.io/sammy/polls:v2");

    // ATOMIC=0: the failed release stays, and says how to go back.
    make(
        Some(&sim),
        &settings,
        "deploy",
        &[broken, "MIGRATE=0", "ATOMIC=0"],
    )
    .code(2)
    .stderr_has(
        "the failed release stays (no --atomic); `--rollback 6` returns to the last good one",
    )
    .stderr_lacks("rolling back");
    assert_eq!(image(&sim), "docker.io/sammy/polls:broken");

    // make rollback: from a failed release, back to the newest good one, waited for.
    make(Some(&sim), &settings, "rollback", &[])
        .success()
        .stdout_has("deployment.apps/polls-app configured")
        .stderr_has("deployment.apps/polls-app: ready: 2/2 replicas available");
    assert_eq!(image(&sim), "docker.io/sammy/polls:v2");
    make(Some(&sim), &settings, "rollback", &["REVISION=1"]).success();
    assert_eq!(image(&sim), "docker.io/sammy/polls:v1");
    let rows = history(&sim, &settings);
    let described: Vec<&str> = rows[5..].iter().map(|r| r[6].as_str()).collect();
    assert_eq!(
        described[..2],
        [
            "rollback to 4 after revision 5 failed",
            "upgrade failed: 1 of 5 objects not ready"
        ]
    );
    assert_eq!(described[2..], ["rollback to 6", "rollback to 1"]);
    make(Some(&sim), &settings, "rollback", &["REVISION=99"])
        .code(2)
        .stderr_has("--rollback 99: applyset secret/polls in namespace default has no revision 99");

    // Records are Secrets; what they show outside their data holds no secret value.
    let generated = sim.kubectl_ok(&[
        "get",
        "secret",
        "-n",
        "default",
        "-l",
        "app.kubernetes.io/name=polls",
        "-o",
        "jsonpath={.items[*].data.DJANGO_SECRET_KEY}",
    ]);
    let key = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            generated.split_whitespace().next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let all = records(&sim);
    assert_eq!(all.len(), 9);
    for record in &all {
        assert_eq!(record["type"], "kpipe.dev/release.v1");
        let shown = record["metadata"].to_string();
        for secret in [
            key.as_str(),
            "your_django_db_user_password",
            "your_space_access_key_secret",
        ] {
            assert!(!shown.contains(secret), "a secret value in {shown}");
        }
    }

    make(Some(&sim), &settings, "destroy", &[])
        .success()
        .stdout_has("secret/kpipe-release.polls.v1 deleted");
    assert_eq!(records(&sim).len(), 0);
}

/// A ConfigMap version `cfg-N` (immutable, named by its content as manifest-gen's
/// --versioned-config names them) and a mutable one the release carries.
fn release(n: u32) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg-{n}}}\nimmutable: true\ndata: {{V: '{n}'}}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: plain-{n}}}\ndata: {{V: '{n}'}}\n"
    )
}

/// kapply's line for ConfigMap `cfg-N` kept as the config version of release N.
fn kept(n: u32) -> String {
    format!(
        "kapply: configmap/cfg-{n} kept: config version of revision {n}, kept for a rollback \
         (the last 3 good releases keep theirs)\n"
    )
}

fn config_maps(sim: &Sim) -> String {
    sim.kubectl_ok(&["get", "configmaps", "-n", "default", "-o", "name"])
}

#[test]
fn config_versions_of_the_last_good_releases_are_kept_then_pruned() {
    let sim = Sim::start(&[]);
    let kapply = |n: u32, extra: &[&str]| {
        let mut c = sim.cmd("kapply");
        c.args(["-n", "default", "--applyset", "app", "--prune", "--release"])
            .args(extra);
        c.run_with(release(n))
    };
    for n in 1..=3 {
        kapply(n, &[]).success();
    }
    // Release 4 prunes release 1's version and every mutable ConfigMap dropped, and
    // keeps those of releases 2 and 3 (the last three good ones, with 4), saying why.
    kapply(4, &[])
        .success()
        .stdout_is(
            "configmap/cfg-4 created\nconfigmap/plain-4 created\nconfigmap/cfg-1 pruned\nconfigmap/plain-3 pruned\n",
        )
        .stderr_is(&[kept(2), kept(3)].concat())
        .stdout_has("configmap/cfg-1 pruned")
        .stdout_has("configmap/plain-3 pruned")
        .stderr_has("kapply: configmap/cfg-2 kept: config version of revision 2, kept for a rollback (the last 3 good releases keep theirs)")
        .stderr_has("kapply: configmap/cfg-3 kept: config version of revision 3");
    let left = config_maps(&sim);
    for name in ["cfg-2", "cfg-3", "cfg-4", "plain-4"] {
        assert!(left.contains(&format!("configmap/{name}\n")), "{left}");
    }
    assert!(
        !left.contains("cfg-1") && !left.contains("plain-3"),
        "{left}"
    );

    // A dry run keeps them too, and writes no record.
    kapply(5, &["--dry-run=server"])
        .success()
        .stdout_is(
            "configmap/cfg-5 created (server dry run)\nconfigmap/plain-5 created (server dry run)\n\
             configmap/cfg-2 pruned (server dry run)\nconfigmap/plain-4 pruned (server dry run)\n",
        )
        .stderr_is(&[kept(3), kept(4)].concat())
        .stdout_has("configmap/cfg-2 pruned (server dry run)")
        .stdout_lacks("cfg-3 pruned")
        .stdout_lacks("cfg-4 pruned");
    assert_eq!(records(&sim).len(), 4);

    // Fewer kept on request; a rollback brings a pruned version back from the record.
    kapply(5, &["--keep-releases", "1"])
        .success()
        .stdout_is(
            "configmap/cfg-5 created\nconfigmap/plain-5 created\nconfigmap/cfg-2 pruned\n\
             configmap/cfg-3 pruned\nconfigmap/cfg-4 pruned\nconfigmap/plain-4 pruned\n",
        )
        .stderr_empty()
        .stdout_has("configmap/cfg-2 pruned")
        .stdout_has("configmap/cfg-3 pruned")
        .stdout_has("configmap/cfg-4 pruned");
    let mut c = sim.cmd("kapply");
    c.args([
        "-n",
        "default",
        "--applyset",
        "app",
        "--prune",
        "--rollback",
        "2",
    ]);
    c.run_with("")
        .success()
        .stdout_is("configmap/cfg-2 created\nconfigmap/plain-2 created\nconfigmap/plain-5 pruned\n")
        .stderr_is(&kept(5))
        .stdout_has("configmap/cfg-2 created")
        .stdout_has("configmap/plain-5 pruned")
        .stderr_has("kapply: configmap/cfg-5 kept: config version of revision 5");
    assert!(config_maps(&sim).contains("configmap/cfg-2\n"));
}

#[test]
fn release_flags_that_cannot_be_honoured_are_refused() {
    let sim = Sim::start(&[]);
    let mut c = sim.cmd("kapply");
    c.args(["--applyset", "app", "--prune", "--release", "--atomic"]);
    c.run_with(release(1)).code(2).stderr_has("--wait").stderr_is(
        "error: the following required arguments were not provided:\n  --wait\n\n\
         Usage: kapply --applyset <[RESOURCE[.GROUP]/]NAME> --release --wait --atomic <--prune|--delete-all|--history>\n\n\
         For more information, try '--help'.\n",
    );
    let mut c = sim.cmd("kapply");
    c.args(["--applyset", "app", "--prune", "--rollback"]);
    c.run_with("")
        .code(2)
        .stderr_is(
            "kapply: --rollback: applyset secret/app in namespace default has no earlier good release \
             to return to (none recorded)\n",
        )
        .stderr_has("--rollback: applyset secret/app in namespace default has no earlier good release to return to (none recorded)");
    let mut c = sim.cmd("kapply");
    c.args(["--applyset", "app", "--history"]);
    c.run_with("")
        .success()
        .stdout_empty()
        .stderr_is(
            "kapply: no releases of applyset secret/app in namespace default recorded (kapply --release records them)\n",
        )
        .stderr_has("kapply: no releases of applyset secret/app in namespace default recorded");
    assert!(
        sim.tool_requests()
            .iter()
            .all(|r| !r.starts_with("POST") && !r.starts_with("PATCH"))
    );
}

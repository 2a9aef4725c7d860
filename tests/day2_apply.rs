//! Day two of a deployment: switching to an autoscaler, taking over objects made by
//! hand, deploying into a new namespace, ClusterIssuers, and Ctrl-C in `make deploy`,
//! run through make and kapply against the simulator.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `make TARGET` in the repository with the test build's tools, against `sim`.
fn make_cmd(sim: &Sim, target: &str, vars: &[&str]) -> Command {
    let mut c = crate::common::make_cmd(target);
    // The settings a first deploy needs, kept in the simulator's folder (nothing is
    // written into the repository); `vars` come later, so they win.
    c.arg(format!(
        "SETTINGS={}",
        sim.dir.path().join("settings.mk").display()
    ))
    .args([
        "IMAGE=docker.io/sammy/polls:latest",
        "HOST=polls.example.com",
    ])
    .args(vars)
    .env("KUBECONFIG", &sim.kubeconfig)
    .env("HOME", sim.dir.path())
    .stdin(Stdio::null());
    c
}

fn make(sim: &Sim, target: &str, vars: &[&str]) -> Run {
    let run = make_cmd(sim, target, vars).run();
    run.context(format!(
        "make {target} {vars:?}\n--- kubesim ---\n{}",
        sim.log()
    ))
}

fn make_ok(sim: &Sim, target: &str, vars: &[&str]) -> Run {
    let out = make(sim, target, vars);
    out.success();
    out
}

/// The tutorial's env file with a secret key set, in `dir`: `ENV=...` for make.
fn env_var(dir: &Path) -> String {
    let env = dir.join("env");
    let template = std::fs::read_to_string(repo().join("examples/polls/env")).unwrap();
    std::fs::write(
        &env,
        template.replace("DJANGO_SECRET_KEY=\n", "DJANGO_SECRET_KEY=k\n"),
    )
    .unwrap();
    format!("ENV={}", env.display())
}

fn json(sim: &Sim, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&sim.kubectl_ok(&all)).unwrap()
}

/// The live pods of ReplicaSets (the app's, not the migrate Job's) in `ns`.
fn pod_names(sim: &Sim, ns: &str) -> Vec<String> {
    let pods = json(sim, &["get", "pods", "-n", ns]);
    let mut names: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

// ---- point 5: REPLICAS=2, then HPA=2:5:70 ---------------------------------------------

#[test]
fn switching_to_an_hpa_never_lowers_the_replicas() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "100ms",
        "--deploy-delay",
        "100ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = env_var(dir.path());
    let base = [env.as_str(), "NAMESPACE=default", "TIMEOUT=60s"];
    make_ok(&sim, "deploy", &[&base[..], &["REPLICAS=2"]].concat());
    let pods = pod_names(&sim, "default");
    assert_eq!(pods.len(), 2, "{pods:?}");

    // Every value spec.replicas takes during the switch (the first line is the current one).
    let mut watch = sim
        .kubectl()
        .args(["get", "deployment", "polls-app", "-n", "default", "--watch"])
        .args(["-o", "jsonpath={.spec.replicas}{\"\\n\"}"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = BufReader::new(watch.stdout.take().unwrap()).lines();
    assert_eq!(seen.next().unwrap().unwrap(), "2");

    let out = make_ok(&sim, "deploy", &[&base[..], &["HPA=2:5:70"]].concat());
    out.stderr_has(
        "deployment.apps/polls-app: spec.replicas left the input: its live value 2 is kept",
    )
    .stderr_lacks("2/1");
    let deployment = json(
        &sim,
        &[
            "get",
            "deployment",
            "polls-app",
            "-n",
            "default",
            "--show-managed-fields",
        ],
    );
    assert_eq!(deployment["spec"]["replicas"], 2, "{deployment:#}");
    let owners: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["fieldsV1"]["f:spec"]["f:replicas"].is_object())
        .map(|f| f["manager"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["handover-to-hpa"], "{deployment:#}");
    assert_eq!(
        pod_names(&sim, "default"),
        pods,
        "no pod was replaced or killed"
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let values: Vec<String> = seen.map_while(Result::ok).collect();
    assert!(
        values.iter().all(|v| v == "2"),
        "spec.replicas went {values:?}"
    );

    // Applied again as it is: nothing more to hand over, nothing said.
    make_ok(&sim, "deploy", &[&base[..], &["HPA=2:5:70"]].concat()).stderr_lacks("left the input");
}

// ---- point 6: objects made by hand, ClusterIssuers --------------------------------------

#[test]
fn deploying_over_objects_made_by_hand_stops_before_any_write_until_force() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "100ms",
        "--deploy-delay",
        "100ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = env_var(dir.path());
    let base = [env.as_str(), "NAMESPACE=default", "TIMEOUT=60s"];
    // As the tutorial makes them: kubectl create.
    sim.kubectl_ok(&[
        "create",
        "configmap",
        "polls-config",
        "-n",
        "default",
        "--from-literal=DJANGO_LOGLEVEL=debug",
    ]);
    sim.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "polls",
        "-n",
        "default",
        "--tcp=8000:9000",
    ]);

    let out = make(&sim, "deploy", &base);
    assert!(!out.status.success(), "{}", out.stderr());
    // The config is versioned by content (polls-config-<hash>): the ConfigMap made by
    // hand is another object, neither in conflict nor taken over. The Service is.
    out.stderr_has("Service/polls in namespace default: apply conflict")
        .stderr_has("managed by \"kubectl-create\"")
        .stderr_has("nothing applied")
        .stderr_has("FORCE=1")
        .stderr_lacks("ConfigMap/polls-config");
    // Nothing written: not the Secret, not the Job, not the ApplySet parent.
    let names = sim.kubectl_ok(&[
        "get",
        "configmaps,secrets,jobs",
        "-n",
        "default",
        "-o",
        "name",
    ]);
    assert_eq!(names.trim(), "configmap/polls-config", "{names}");
    let writes: Vec<String> = sim
        .tool_requests()
        .into_iter()
        .filter(|l| !l.starts_with("GET ") && !l.contains("dryRun"))
        .filter(|l| !l.contains("[kubectl"))
        .collect();
    assert!(
        writes.iter().all(|l| !l.contains("-> 20")),
        "written: {writes:#?}"
    );
    let config = json(&sim, &["get", "configmap", "polls-config", "-n", "default"]);
    assert_eq!(config["data"]["DJANGO_LOGLEVEL"], "debug");

    make_ok(&sim, "deploy", &[&base[..], &["FORCE=1"]].concat());
    let deployment = json(&sim, &["get", "deployment", "polls-app", "-n", "default"]);
    let read = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][1]
        ["configMapRef"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(read.starts_with("polls-config-"), "{read}");
    let config = json(&sim, &["get", "configmap", &read, "-n", "default"]);
    assert_eq!(config["data"]["DJANGO_LOGLEVEL"], "info");
    // The one made by hand is left as it was: not the app's, never pruned.
    let by_hand = json(&sim, &["get", "configmap", "polls-config", "-n", "default"]);
    assert_eq!(by_hand["data"]["DJANGO_LOGLEVEL"], "debug");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "docker.io/sammy/polls:latest"
    );
}

#[test]
fn make_issuers_refuses_to_take_over_issuers_without_force_and_waits_for_ready() {
    // The simulator's pair stands for issuers made by hand (another email and manager).
    let sim = Sim::start(&["--cert-manager"]);
    let out = make(&sim, "issuers", &["EMAIL=ops@example.com", "TIMEOUT=20s"]);
    assert!(!out.status.success(), "{}", out.stderr());
    out.stderr_has("ClusterIssuer/letsencrypt-staging: apply conflict")
        .stderr_has("managed by \"kubesim\"")
        .stderr_has(
            "would change .spec.acme.email: \"admin@your_domain.com\" -> \"ops@example.com\"",
        )
        .stderr_has("FORCE=1");
    let issuer = json(&sim, &["get", "clusterissuer", "letsencrypt-staging"]);
    assert_eq!(issuer["spec"]["acme"]["email"], "admin@your_domain.com");

    let out = make_ok(
        &sim,
        "issuers",
        &["EMAIL=ops@example.com", "TIMEOUT=20s", "FORCE=1"],
    );
    out.stderr_has(
        "clusterissuer.cert-manager.io/letsencrypt-prod: ready: Ready (ACMEAccountRegistered",
    )
    .stderr_lacks("ready: stored");

    // An account Let's Encrypt refuses: not ready, and why.
    let out = make(
        &sim,
        "issuers",
        &["EMAIL=ops@example.invalid", "TIMEOUT=3s", "FORCE=1"],
    );
    // make passes on kapply's 124 as 2; the condition's message explains it.
    out.code(2)
        .stderr_has("contact email has invalid domain")
        .stderr_lacks("letsencrypt-prod: ready");
}

// ---- point 7: a new namespace -----------------------------------------------------------

#[test]
fn make_deploy_creates_a_new_namespace_and_make_diff_only_says_so() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "100ms",
        "--deploy-delay",
        "100ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = env_var(dir.path());
    let base = [env.as_str(), "NAMESPACE=fresh", "TIMEOUT=60s"];

    let diff = make(&sim, "diff", &base);
    diff.stderr_has("namespace/fresh would be created")
        .stderr_lacks("updating")
        .stderr_lacks("namespaces not found");
    let out = sim.kubectl_run(&["get", "namespace", "fresh"]);
    assert!(!out.status.success(), "a diff created the namespace");

    make_ok(&sim, "deploy", &base).stderr_has("namespace/fresh created");
    let ns = json(&sim, &["get", "namespace", "fresh"]);
    assert!(
        ns["metadata"]["labels"]["applyset.kubernetes.io/part-of"].is_null(),
        "the namespace is not a member of the set: {ns:#}"
    );
    let parent = json(&sim, &["get", "secret", "polls", "-n", "fresh"]);
    assert!(parent["metadata"]["labels"]["applyset.kubernetes.io/id"].is_string());

    // Deployed again (the namespace exists now), nothing about it is said; it stays.
    make_ok(&sim, "deploy", &base).stderr_lacks("namespace/fresh");
    sim.kubectl_ok(&["get", "namespace", "fresh"]);
}

// ---- point 8: Ctrl-C in make deploy -----------------------------------------------------

#[test]
fn ctrl_c_in_make_deploy_while_the_migration_is_pending_stops_at_once_and_prunes_nothing() {
    // The v2 image's pods are never scheduled: its migrate Job stays pending.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "100ms",
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        ":v2$=Unschedulable",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = env_var(dir.path());
    let base = [env.as_str(), "NAMESPACE=default", "TIMEOUT=5m"];
    make_ok(
        &sim,
        "deploy",
        &[&base[..], &["IMAGE=docker.io/sammy/polls:v1"]].concat(),
    );
    let jobs = |sim: &Sim| sim.kubectl_ok(&["get", "jobs", "-n", "default", "-o", "name"]);
    let old_job = jobs(&sim).trim().to_owned();
    let before = json(&sim, &["get", "deployment", "polls-app", "-n", "default"]);

    let mut c = make_cmd(
        &sim,
        "deploy",
        &[&base[..], &["IMAGE=docker.io/sammy/polls:v2"]].concat(),
    );
    c.process_group(0);
    let child = Background::start(c);
    let group = child.id();
    sim.await_log_lines("the v2 migrate Job is created", 2, |l| {
        l.starts_with("PATCH /apis/batch/v1/namespaces/default/jobs/") && l.contains(" -> 201 [")
    });
    // A terminal's Ctrl-C: SIGINT to the whole foreground process group. It stops at
    // once, not at TIMEOUT (5m: a run still going after a minute fails).
    let kill = Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.finish();
    assert!(!out.status.success(), "{}", out.stderr());
    out.stderr_has("interrupted by SIGINT")
        .stderr_has("nothing pruned")
        .stderr_has("not applied: Deployment/polls-app")
        .stderr_lacks(" pruned\n");
    // The running release is as it was: the old Job kept, the Deployment untouched.
    assert!(jobs(&sim).contains(&old_job), "{}", jobs(&sim));
    let after = json(&sim, &["get", "deployment", "polls-app", "-n", "default"]);
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        "docker.io/sammy/polls:v1"
    );
}

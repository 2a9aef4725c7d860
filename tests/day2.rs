//! Day two of a deployment: switching to an autoscaler, taking over objects made by
//! hand, deploying into a new namespace, ClusterIssuers, and Ctrl-C in `make deploy`,
//! run through make and kapply against the simulator.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `make TARGET` in the repository with the test build's tools, against `sim`.
fn make_cmd(sim: &Sim, target: &str, vars: &[&str]) -> Command {
    let mut c = Command::new("make");
    c.current_dir(repo())
        .args(["--no-print-directory", target])
        .arg(format!("BIN={}", fresh_bin_dir().display()))
        .args(vars)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env("KUBECONFIG", &sim.kubeconfig)
        .env("HOME", sim.dir.path())
        .stdin(Stdio::null());
    c
}

fn make(sim: &Sim, target: &str, vars: &[&str]) -> Output {
    make_cmd(sim, target, vars).output().unwrap()
}

fn make_ok(sim: &Sim, target: &str, vars: &[&str]) -> Output {
    let out = make(sim, target, vars);
    assert!(
        out.status.success(),
        "make {target} {vars:?}: {}\n--- kubesim ---\n{}",
        stderr(&out),
        sim.log()
    );
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

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let err = stderr(&out);
    assert!(
        err.contains(
            "deployment.apps/polls-app: spec.replicas left the input: its live value 2 is kept"
        ),
        "{err}"
    );
    assert!(!err.contains("2/1"), "{err}");
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
    let again = make_ok(&sim, "deploy", &[&base[..], &["HPA=2:5:70"]].concat());
    assert!(
        !stderr(&again).contains("left the input"),
        "{}",
        stderr(&again)
    );
}

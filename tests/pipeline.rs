//! The whole tutorial as pipes: `make render`, `make deploy` and `make demo` run as a
//! user runs them, with the workspace's freshly built binaries.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SECRET_KEY: &str = "k3ep-th1s-0ut-of-every-log";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `make TARGET ...` in the repository, using the test build's binaries.
fn make(target: &str, vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new("make");
    c.current_dir(repo())
        .arg("--no-print-directory")
        .arg(target);
    c.arg(format!("BIN={}", fresh_bin_dir().display()));
    for (k, v) in vars {
        c.arg(format!("{k}={v}"));
    }
    // A make running `cargo test` must not hand its jobserver to ours.
    c.env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("KUBECONFIG");
    c
}

/// The tutorial's env file with the secret key filled in, so renders are reproducible.
fn env_file(dir: &Path) -> std::path::PathBuf {
    let template = std::fs::read_to_string(repo().join("examples/polls/env")).unwrap();
    let text = template.replace(
        "DJANGO_SECRET_KEY=\n",
        &format!("DJANGO_SECRET_KEY={SECRET_KEY}\n"),
    );
    assert!(
        text.contains(SECRET_KEY),
        "examples/polls/env has no empty DJANGO_SECRET_KEY line"
    );
    let path = dir.join("env");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn render_writes_a_private_file_equal_to_the_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_file(dir.path());
    let file = dir.path().join("deploy.yaml");
    let out = make(
        "render",
        &[
            ("ENV", env.to_str().unwrap()),
            ("OUT", file.to_str().unwrap()),
        ],
    )
    .run();
    out.success().no_secret(SECRET_KEY);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "deploy.yaml holds Secrets and must be 0600");

    // The README's pipe, by hand, with the Makefile's default flags.
    let pipe = format!(
        "envsplit --app polls --rules examples/polls/split.rules {env} \
         | secretgen --generate DJANGO_SECRET_KEY \
         | manifest-gen --app polls --image docker.io/sammy/polls:latest \
           --host polls.example.com --issuer letsencrypt-staging --replicas 2 --migrate",
        env = env.display()
    );
    let by_hand = Command::new("bash")
        .args(["-o", "pipefail", "-c", &pipe])
        .current_dir(repo())
        .env("PATH", path_with_tools())
        .output()
        .unwrap();
    assert!(by_hand.status.success(), "{}", stderr(&by_hand));
    let rendered = std::fs::read_to_string(&file).unwrap();
    assert_eq!(rendered, stdout(&by_hand));
    for kind in [
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Ingress",
        "Job",
    ] {
        assert!(
            rendered.contains(&format!("kind: {kind}\n")),
            "no {kind} in the render"
        );
    }
}

#[test]
fn a_failing_stage_fails_deploy_and_applies_nothing() {
    let sim = Sim::start(&["--cert-manager"]);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::write(&env, "DEBUG=True\nTHIS LINE IS BROKEN\n").unwrap();
    let out = make(
        "deploy",
        &[("ENV", env.to_str().unwrap()), ("TIMEOUT", "10s")],
    )
    .env("KUBECONFIG", &sim.kubeconfig)
    .output()
    .unwrap();
    assert!(
        !out.status.success(),
        "make deploy succeeded on a broken env file"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("envsplit: {}:2:", env.display())),
        "stage message missing:\n{err}"
    );

    let listed = sim
        .kubectl()
        .args([
            "get",
            "configmaps,secrets,deployments,services,ingresses,jobs",
            "-n",
            "default",
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let names = stdout(&listed);
    for kind in [
        "deployment",
        "service/polls",
        "ingress",
        "job",
        "polls-config",
        "polls-secret",
    ] {
        assert!(
            !names.contains(kind),
            "{kind} was applied after a failed stage:\n{names}"
        );
    }
}

#[test]
fn make_demo_runs_the_whole_pipeline_and_leaves_nothing_running() {
    let out = make("demo", &[])
        .env("KPIPE_BIN", fresh_bin_dir())
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "make demo failed:\nstdout:\n{text}\nstderr:\n{err}"
    );
    let all = format!("{text}\n{err}");
    for expected in [
        "configmap/polls-config created",
        "secret/polls-secret created",
        "deployment.apps/polls-app created",
        "ingress.networking.k8s.io/polls-ingress created",
        "deployment.apps/polls-app unchanged",
    ] {
        assert!(
            all.contains(expected),
            "demo output lacks {expected:?}:\n{all}"
        );
    }
    assert!(
        all.contains("polls-tls"),
        "no certificate in the demo output:\n{all}"
    );
    assert!(
        all.to_lowercase().contains("staging"),
        "no staging warning:\n{all}"
    );

    let pid: u32 = all
        .split("kubesim pid ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the demo prints the simulator's pid");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "kubesim (pid {pid}) is still running"
    );
}

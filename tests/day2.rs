//! Day 2 through the make targets, against kubesim: settings kept per app and namespace,
//! a generated secret made once, a re-deploy that changes nothing, a promote that
//! changes only the issuer, a rotation that rolls the pods, config versions a failed
//! release never touches, `make status` and `make diff`.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `make TARGET VARS...` in the repository with the test build's tools, against `sim`
/// (none: no cluster at all), the settings kept in `settings`.
pub(crate) fn make(sim: Option<&Sim>, settings: &Path, target: &str, vars: &[&str]) -> Run {
    let mut c = make_cmd(target);
    c.arg(format!("SETTINGS={}", settings.display()))
        .args(["NAMESPACE=default", "TIMEOUT=30s"])
        .args(vars);
    if let Some(sim) = sim {
        c.env("KUBECONFIG", &sim.kubeconfig)
            .env("HOME", sim.dir.path());
    }
    let run = c.run();
    match sim {
        Some(sim) => run.context(sim.log()),
        None => run,
    }
}

fn sim() -> Sim {
    Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "200ms",
        "--deploy-delay",
        "100ms",
    ])
}

/// The first deploy's settings: the tutorial's template env (DJANGO_SECRET_KEY empty:
/// generated), an image and a host.
pub(crate) const FIRST: &[&str] = &[
    "ENV=examples/polls/env",
    "IMAGE=docker.io/sammy/polls:v1",
    "HOST=polls.example.com",
];

/// The app's objects as the server holds them, reduced to what a deploy writes:
/// kind/name -> generation, annotations, labels, spec and data.
fn live(sim: &Sim) -> Vec<(String, Value)> {
    let list: Value = serde_json::from_str(&sim.kubectl_ok(&[
        "get",
        "configmaps,secrets,deployments,services,ingresses,jobs",
        "-n",
        "default",
        "-l",
        "app.kubernetes.io/name=polls",
        "-o",
        "json",
    ]))
    .unwrap();
    let mut objects: Vec<(String, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    m["name"].as_str().unwrap()
                ),
                serde_json::json!({
                    "generation": m["generation"],
                    "annotations": m["annotations"],
                    "labels": m["labels"],
                    "spec": o["spec"],
                    "data": o["data"],
                }),
            )
        })
        .collect();
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    objects
}

fn names(sim: &Sim, kinds: &str) -> String {
    sim.kubectl_ok(&["get", kinds, "-n", "default", "-o", "name"])
}

/// The names of the Secret and the ConfigMap the live Deployment's pods read: the config
/// is versioned by content (`polls-secret-<hash>`).
fn env_from(sim: &Sim) -> (String, String) {
    let names = sim.kubectl_ok(&[
        "get",
        "deployment",
        "polls-app",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].envFrom[*].secretRef.name} \
         {.spec.template.spec.containers[0].envFrom[*].configMapRef.name}",
    ]);
    let (secret, config) = names.split_once(' ').expect("a Secret and a ConfigMap");
    for (name, base) in [(secret, "polls-secret-"), (config, "polls-config-")] {
        let hash = name.strip_prefix(base).unwrap_or_default();
        assert!(
            hash.len() == 10 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a version of {base}<hash>: {name:?}"
        );
    }
    (secret.to_owned(), config.to_owned())
}

/// The generated key in the Secret the live pods read.
fn secret_key(sim: &Sim) -> String {
    sim.kubectl_ok(&[
        "get",
        "secret",
        &env_from(sim).0,
        "-n",
        "default",
        "-o",
        "jsonpath={.data.DJANGO_SECRET_KEY}",
    ])
}

/// The kapply lines of a deploy: what each object became.
fn kapply_verdicts(run: &Run) -> Vec<String> {
    run.stderr()
        .lines()
        .filter(|l| {
            l.starts_with("kapply: ") && !l.contains(": ready: ") && !l.contains(": waiting")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn deploy_keeps_settings_and_the_generated_key_promote_changes_only_the_issuer() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");

    make(Some(&sim), &settings, "deploy", FIRST).success();
    let kept = std::fs::read_to_string(&settings).unwrap();
    for line in [
        "ENV := examples/polls/env\n",
        "IMAGE := docker.io/sammy/polls:v1\n",
        "HOST := polls.example.com\n",
        "ISSUER := letsencrypt-staging\n",
    ] {
        assert!(kept.contains(line), "{line:?} not kept:\n{kept}");
    }
    let key = secret_key(&sim);
    assert!(!key.is_empty(), "DJANGO_SECRET_KEY was not generated");
    let workloads = names(&sim, "replicasets,jobs");
    let first = live(&sim);

    // Nothing given but the app: the same render, nothing written, no new key.
    let again = make(Some(&sim), &settings, "deploy", &[]);
    again.success();
    let verdicts = kapply_verdicts(&again);
    assert_eq!(verdicts.len(), 6, "{verdicts:#?}");
    assert!(
        verdicts.iter().all(|l| l.ends_with(" unchanged")),
        "{verdicts:#?}"
    );
    assert_eq!(secret_key(&sim), key, "a re-deploy made a new secret key");
    assert_eq!(names(&sim, "replicasets,jobs"), workloads);
    assert_eq!(live(&sim), first);

    // make render agrees with the cluster too: the key it writes is the live one.
    let out = dir.path().join("deploy.yaml");
    make(
        Some(&sim),
        &settings,
        "render",
        &[&format!("OUT={}", out.display())],
    )
    .success();
    assert!(std::fs::read_to_string(&out).unwrap().contains(&key));

    // make status: release, image, pods, certificate and its issuer, in one screen.
    make(Some(&sim), &settings, "status", &[])
        .success()
        .stdout_has("release:     deployment.apps/polls-app")
        .stdout_has("image docker.io/sammy/polls:v1")
        .stdout_has("revision:    revision 1 of 20")
        .stdout_has("pods ready:  2/2")
        .stdout_has("certificate: polls-tls ready True, issuer ClusterIssuer letsencrypt-staging, expires 2");

    // make logs: every web pod's last lines, prefixed with the pod.
    make(Some(&sim), &settings, "logs", &["TAIL=1"])
        .success()
        .stdout_has("[pod/polls-app-");

    // Promote: only the Ingress changes (its issuer), and the settings keep it.
    make(Some(&sim), &settings, "promote", &[])
        .success()
        .stderr_has("ingress.networking.k8s.io/polls-ingress configured")
        .stderr_lacks("was issued by Let's Encrypt's STAGING CA");
    let promoted = live(&sim);
    let changed: Vec<&String> = first
        .iter()
        .zip(&promoted)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| &a.0)
        .collect();
    assert_eq!(first.len(), promoted.len());
    assert_eq!(changed, ["Ingress/polls-ingress"]);
    let ingress = &promoted
        .iter()
        .find(|o| o.0 == "Ingress/polls-ingress")
        .unwrap()
        .1;
    assert_eq!(
        ingress["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt-prod"
    );
    assert!(
        std::fs::read_to_string(&settings)
            .unwrap()
            .contains("ISSUER := letsencrypt-prod\n")
    );

    // A later deploy naming the env file keeps the production issuer and the image.
    make(Some(&sim), &settings, "deploy", &["ENV=examples/polls/env"]).success();
    assert_eq!(live(&sim), promoted);

    // Rotation on request: a new key in a new version of the Secret, the pods roll.
    let (old_secret, config) = env_from(&sim);
    make(Some(&sim), &settings, "rotate", &["KEY=DJANGO_SECRET_KEY"])
        .success()
        .stderr_has("secret/polls-secret-")
        .stderr_has("deployment.apps/polls-app configured");
    let (new_secret, same_config) = env_from(&sim);
    assert_ne!(new_secret, old_secret);
    assert_eq!(same_config, config, "only the Secret changed");
    assert_ne!(secret_key(&sim), key, "rotate kept the old key");
    let rotated = names(&sim, "replicasets");
    assert!(
        rotated.lines().any(|rs| !workloads.contains(rs)),
        "no new ReplicaSet after rotate:\n{rotated}"
    );
}

/// One live ConfigMap or Secret as the API server holds it.
fn object(sim: &Sim, kind: &str, name: &str) -> Value {
    serde_json::from_str(&sim.kubectl_ok(&["get", kind, name, "-n", "default", "-o", "json"]))
        .unwrap()
}

/// The requests that wrote the object `plural/name` (not dry runs).
fn writes_to(sim: &Sim, plural: &str, name: &str) -> Vec<String> {
    let path = format!("/{plural}/{name}");
    sim.log()
        .lines()
        .filter(|l| l.starts_with("PATCH ") || l.starts_with("PUT "))
        .filter(|l| l.contains(&path) && !l.contains("dryRun"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn config_versions_are_immutable_and_a_failed_release_leaves_what_the_pods_read() {
    // The v2 image's pods crash: its migration Job fails, the release with it.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "200ms",
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        ":v2$=CrashLoopBackOff:1",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");
    make(Some(&sim), &settings, "deploy", FIRST).success();
    let (secret, config) = env_from(&sim);
    let key = secret_key(&sim);
    let live_config = object(&sim, "configmap", &config);
    let live_secret = object(&sim, "secret", &secret);
    assert_eq!(live_config["immutable"], true);
    assert_eq!(live_secret["immutable"], true);
    let config_writes = writes_to(&sim, "configmaps", &config);
    let secret_writes = writes_to(&sim, "secrets", &secret);
    assert!(
        !config_writes.is_empty() && !secret_writes.is_empty(),
        "{}",
        sim.log()
    );

    // A bad DATABASE_HOST and another log level, with an image whose migration fails.
    let env = dir.path().join("env");
    let template = std::fs::read_to_string(repo().join("examples/polls/env")).unwrap();
    std::fs::write(
        &env,
        template
            .replace("DATABASE_HOST=your_db_host", "DATABASE_HOST=bad-db-host")
            .replace("DJANGO_LOGLEVEL=info", "DJANGO_LOGLEVEL=debug"),
    )
    .unwrap();
    let changed_env = format!("ENV={}", env.display());
    let failed = make(
        Some(&sim),
        &settings,
        "deploy",
        &[
            &changed_env,
            "IMAGE=docker.io/sammy/polls:v2",
            "TIMEOUT=20s",
        ],
    );
    assert_ne!(failed.status.code(), Some(0), "{}", failed.stderr());
    failed
        .no_secret("bad-db-host")
        .stderr_has("deployment.apps/polls-app: not applied")
        .stderr_has("nothing pruned")
        .stderr_has("kapply: revision 2 failed: rolling back to revision 1 (--atomic)")
        .stderr_has("rolled back to revision 1, which runs again");
    // The new versions were made beside the live ones, which nothing wrote to, and
    // pruned by the rollback; the live ones stay, as they were.
    let configs = names(&sim, "configmaps");
    assert_eq!(
        configs.matches("configmap/polls-config-").count(),
        1,
        "{configs}"
    );
    assert_eq!(env_from(&sim), (secret.clone(), config.clone()));
    assert_eq!(object(&sim, "configmap", &config), live_config);
    assert_eq!(object(&sim, "secret", &secret), live_secret);
    assert_eq!(writes_to(&sim, "configmaps", &config), config_writes);
    assert_eq!(writes_to(&sim, "secrets", &secret), secret_writes);
    assert!(
        std::fs::read_to_string(&settings)
            .unwrap()
            .contains("IMAGE := docker.io/sammy/polls:v1\n")
    );

    // The same config with an image that works: the pods read the new versions, and the
    // generated key is the one the running pods had.
    make(
        Some(&sim),
        &settings,
        "deploy",
        &[&changed_env, "IMAGE=docker.io/sammy/polls:v1"],
    )
    .success()
    .no_secret("bad-db-host");
    let (new_secret, new_config) = env_from(&sim);
    assert_ne!(new_secret, secret);
    assert_ne!(new_config, config);
    assert_eq!(secret_key(&sim), key, "the generated key was not kept");
    let fresh = object(&sim, "configmap", &new_config);
    assert_eq!(fresh["data"]["DJANGO_LOGLEVEL"], "debug");
    assert_eq!(fresh["immutable"], true);
    // The old version is never written: still as it was, or pruned.
    assert_eq!(writes_to(&sim, "configmaps", &config), config_writes);
    let left = sim.kubectl_ok(&[
        "get",
        "configmap",
        &config,
        "-n",
        "default",
        "--ignore-not-found",
        "-o",
        "json",
    ]);
    if !left.trim().is_empty() {
        let left: Value = serde_json::from_str(&left).unwrap();
        assert_eq!(left["data"], live_config["data"]);
    }
}

/// The generated key is kept from the Secret the live Deployment reads: when the cluster
/// cannot be read, deploy stops before making a new one, render warns and makes one.
#[test]
fn a_cluster_that_cannot_be_read_stops_deploy_before_a_new_key_and_render_warns() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");
    let kubeconfig = dir.path().join("kubeconfig");
    let port = closed_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n\
             current-context: c\n",
        ),
    )
    .unwrap();
    // kubectl's last line, the reason; not its client-go log lines before it.
    let why = format!(
        "(The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?)"
    );
    let make = |target: &str, vars: &[&str]| {
        let mut c = make_cmd(target);
        c.arg(format!("SETTINGS={}", settings.display()))
            .args(["NAMESPACE=default", "TIMEOUT=10s"])
            .args(FIRST)
            .args(vars)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path());
        c.run()
    };
    make("deploy", &[])
        .code(2)
        .stderr_has(&format!("make deploy: cannot read the live Secret of polls-app {why}: stopped before making new DJANGO_SECRET_KEY\n"))
        .stderr_lacks("memcache.go")
        .stderr_lacks("kapply");
    assert!(!settings.exists());

    let out = dir.path().join("deploy.yaml");
    make("render", &[&format!("OUT={}", out.display())])
        .success()
        .stderr_has(&format!(
            "kpipe: warning: cannot read the live Secret of polls-app {why}: "
        ))
        .stderr_lacks("memcache.go");
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(rendered.contains("DJANGO_SECRET_KEY: "), "{rendered}");
}

#[test]
fn make_diff_says_what_exit_1_means_and_succeeds() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");
    make(Some(&sim), &settings, "deploy", FIRST).success();
    make(Some(&sim), &settings, "diff", &[])
        .success()
        .stderr_is(
            "envsplit: examples/polls/env:3: warning: secret key DJANGO_SECRET_KEY is empty: \
             fill it in, or let `secretgen --generate DJANGO_SECRET_KEY` do it\n\
             make diff: no differences: the cluster runs what deploy would apply\n",
        );
    make(Some(&sim), &settings, "diff", &["REPLICAS=3"])
        .success()
        .stdout_has("replicas: 3")
        .stderr_is(
            "envsplit: examples/polls/env:3: warning: secret key DJANGO_SECRET_KEY is empty: \
             fill it in, or let `secretgen --generate DJANGO_SECRET_KEY` do it\n\
             kapply: 1 of 6 objects differs from the live state\n\
             make diff: the differences above are what `make deploy` would change \
             (kapply --diff exit status 1 means \"there are differences\": not a failure)\n",
        );
}

#[test]
fn a_first_deploy_without_an_image_stops_before_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("polls.default.mk");
    // No cluster at all: the check comes before anything is rendered or read.
    make(
        None,
        &settings,
        "deploy",
        &["ENV=examples/polls/env", "HOST=polls.example.com"],
    )
    .code(2)
    .stdout_empty()
    // Then make's own line, naming the Makefile's line: not pinned.
    .stderr_has(&format!(
        "make deploy: no IMAGE for APP=polls NAMESPACE=default, and no {settings} to keep \
         them: name them on the first deploy, e.g.\n  make deploy APP=polls NAMESPACE=default \
         ENV=examples/polls/env IMAGE=docker.io/you/polls:v1 HOST=polls.your-domain.com\n\
         (a successful deploy keeps them in {settings}; later deploys need only what changes)\n",
        settings = settings.display()
    ))
    .stderr_lacks("envsplit")
    .stderr_lacks("kubectl")
    .stderr_lacks("docker.io/sammy/polls:latest");
    assert!(!settings.exists());
}

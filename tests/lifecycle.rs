//! Lifecycle: ApplySets (`kapply --applyset --prune`, `--delete-all`, `make destroy`)
//! and the simulator's deletion (propagation policies, garbage collection), checked with
//! the real kubectl.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PART_OF: &str = "applyset.kubernetes.io/part-of";

fn kapply(sim: &Sim, args: &[&str], stdin: &str) -> Run {
    let out = sim.cmd("kapply").args(args).run_with(stdin);
    let log = sim.log();
    out.context(format!("kapply {args:?}\n--- kubesim ---\n{log}"))
}

/// kapply as [`kapply`], which must succeed.
fn kapply_ok(sim: &Sim, args: &[&str], stdin: &str) -> Run {
    let out = kapply(sim, args, stdin);
    out.success();
    out
}

/// `kubectl apply --server-side --prune --applyset=SET -n NS -f -`, with kubectl's
/// ApplySet support turned on.
fn kubectl_applyset(sim: &Sim, set: &str, ns: &str) -> Command {
    let mut c = sim.kubectl();
    c.env("KUBECTL_APPLYSET", "true")
        .args(["apply", "--server-side", "--prune"])
        .arg(format!("--applyset={set}"))
        .args(["-n", ns, "-f", "-"]);
    c
}

fn configmap(name: &str) -> String {
    format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{K: v}}\n")
}

const HPA: &str = "---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: polls-app}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: polls-app}
  minReplicas: 2
  maxReplicas: 5
";

fn exists(sim: &Sim, what: &str, ns: &str) -> bool {
    sim.kubectl_run(&["get", what, "-n", ns]).status.success()
}

/// Which of `objects` (`TYPE/NAME` as `kubectl get -o name` writes them) exist in
/// `ns`, asked in one kubectl run, sorted.
fn existing(sim: &Sim, objects: &[&str], ns: &str) -> Vec<String> {
    let args = [
        &["get"],
        objects,
        &["-n", ns, "--ignore-not-found", "-o", "name"],
    ]
    .concat();
    let mut names: Vec<String> = sim.kubectl_ok(&args).lines().map(String::from).collect();
    names.sort();
    names
}

/// Polls until `done` holds (the simulated garbage collector acts a moment after).
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn parent(sim: &Sim, name: &str, ns: &str) -> serde_json::Value {
    serde_json::from_str(&sim.kubectl_ok(&["get", "secret", name, "-n", ns, "-o", "json"])).unwrap()
}

fn set_id(sim: &Sim, name: &str, ns: &str) -> String {
    parent(sim, name, ns)["metadata"]["labels"]["applyset.kubernetes.io/id"]
        .as_str()
        .expect("an id label")
        .to_owned()
}

#[test]
fn applying_without_the_hpa_prunes_it_and_narrows_the_parent() {
    let sim = Sim::start(&[]);
    let with = configmap("polls-config") + HPA;
    kapply_ok(&sim, &["--applyset", "polls", "--prune"], &with).stdout_is(
        "configmap/polls-config created\nhorizontalpodautoscaler.autoscaling/polls-app created\n",
    );
    let annotations = &parent(&sim, "polls", "default")["metadata"]["annotations"];
    assert_eq!(
        annotations["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,HorizontalPodAutoscaler.autoscaling"
    );
    assert!(
        annotations["applyset.kubernetes.io/tooling"]
            .as_str()
            .unwrap()
            .starts_with("kapply/v")
    );
    let id = set_id(&sim, "polls", "default");
    let hpa: serde_json::Value =
        serde_json::from_str(&sim.kubectl_ok(&["get", "hpa", "polls-app", "-o", "json"])).unwrap();
    assert_eq!(hpa["metadata"]["labels"][PART_OF], id.as_str());

    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &configmap("polls-config"),
    )
    .stdout_is(
        "configmap/polls-config unchanged\nhorizontalpodautoscaler.autoscaling/polls-app pruned\n",
    );
    assert!(!exists(&sim, "hpa/polls-app", "default"));
    assert!(exists(&sim, "configmap/polls-config", "default"));
    assert_eq!(
        parent(&sim, "polls", "default")["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );
}

#[test]
fn objects_without_the_label_survive_a_prune_even_with_the_same_kind_and_name() {
    let sim = Sim::start(&[]);
    sim.kubectl_ok(&["create", "namespace", "other"]);
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("keep") + &configmap("dropped")),
    );
    // Same kind and name as the member about to be pruned, in another namespace and
    // without the label; and one made by hand next to the set.
    sim.kubectl_ok(&["create", "configmap", "dropped", "-n", "other"]);
    sim.kubectl_ok(&["create", "configmap", "by-hand", "-n", "default"]);
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune", "-n", "default"],
        &configmap("keep"),
    )
    .stdout_is("configmap/keep unchanged\nconfigmap/dropped pruned\n");
    assert!(exists(&sim, "configmap/dropped", "other"));
    assert!(exists(&sim, "configmap/by-hand", "default"));
    assert!(!exists(&sim, "configmap/dropped", "default"));

    // A member whose label was taken off by hand has left the set: never pruned.
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("keep") + &configmap("unlabelled")),
    );
    sim.kubectl_ok(&["label", "configmap", "unlabelled", &format!("{PART_OF}-")]);
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &configmap("keep"),
    )
    .stdout_is("configmap/keep unchanged\n");
    assert!(exists(&sim, "configmap/unlabelled", "default"));
}

#[test]
fn a_set_spread_over_namespaces_is_recorded_and_pruned_in_each() {
    let sim = Sim::start(&[]);
    sim.kubectl_ok(&["create", "namespace", "two"]);
    let two = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: far, namespace: two}\n";
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("near") + two),
    );
    assert_eq!(
        parent(&sim, "polls", "default")["metadata"]["annotations"]["applyset.kubernetes.io/additional-namespaces"],
        "two"
    );
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &configmap("near"),
    )
    .stdout_is("configmap/near unchanged\nconfigmap/far pruned\n");
    assert!(!exists(&sim, "configmap/far", "two"));
    assert_eq!(
        parent(&sim, "polls", "default")["metadata"]["annotations"]["applyset.kubernetes.io/additional-namespaces"],
        ""
    );
}

#[test]
fn dry_run_and_diff_list_what_would_be_pruned_and_delete_nothing() {
    let sim = Sim::start(&[]);
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: old-secret}\n\
                  stringData: {PW: s3cr3t-old-pw}\n";
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("polls-config") + HPA + secret),
    );
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune", "--dry-run=server"],
        &configmap("polls-config"),
    )
    .stdout_is(
        "configmap/polls-config unchanged (server dry run)\n\
         horizontalpodautoscaler.autoscaling/polls-app pruned (server dry run)\n\
         secret/old-secret pruned (server dry run)\n",
    );
    // The diff holds uids and resourceVersions: its lines, not the whole of it.
    let diff = kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune", "--diff"],
        &configmap("polls-config"),
    );
    diff.stdout_has("--- live/default/horizontalpodautoscaler.autoscaling/polls-app\n")
        .stdout_has("\n-  maxReplicas: 5\n")
        .stdout_has("\n-  PW: \"<redacted>\"\n");
    for leak in ["s3cr3t-old-pw", "czNjcjN0LW9sZC1wdw"] {
        // A Secret value in the diff.
        diff.stdout_lacks(leak);
    }
    assert!(exists(&sim, "hpa/polls-app", "default"));
    // The parent still records the HPA: a real run prunes it.
    assert_eq!(
        parent(&sim, "polls", "default")["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,HorizontalPodAutoscaler.autoscaling,Secret"
    );
    assert!(exists(&sim, "secret/old-secret", "default"));
    let deletes = sim
        .log()
        .lines()
        .filter(|l| l.starts_with("DELETE "))
        .count();
    assert_eq!(deletes, 4, "dry-run DELETEs only: {}", sim.log());
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &configmap("polls-config"),
    )
    .stdout_is(
        "configmap/polls-config unchanged\n\
         horizontalpodautoscaler.autoscaling/polls-app pruned\n\
         secret/old-secret pruned\n",
    );
}

#[test]
fn a_failed_apply_prunes_nothing() {
    let sim = Sim::start(&[]);
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("polls-config") + &configmap("old")),
    );
    // An object whose namespace does not exist fails (a conflict would stop the run
    // before any write: see the conflict tests).
    let out = kapply(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("polls-config")
            + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost, namespace: missing}\n"),
    );
    out.code(1)
        .stdout_lacks("pruned")
        .stdout_is("configmap/polls-config unchanged\n")
        .stderr_is(
            "kapply: ConfigMap/lost in namespace missing: namespaces \"missing\" not found\n\
             kapply: nothing pruned from applyset-vS1dmJLpR3vh7ng1pQB7lZnkFii6AMlsbYx1M_bzff8-v1: not every object applied\n\
             kapply: 1 of 2 objects failed (1 not found); 1 applied\n",
        );
    assert!(exists(&sim, "configmap/old", "default"));
    assert!(
        !sim.log().lines().any(|l| l.starts_with("DELETE ")),
        "{}",
        sim.log()
    );
}

#[test]
fn a_set_made_by_kubectl_is_refused_unless_forced() {
    let sim = Sim::start(&[]);
    let c = kubectl_applyset(&sim, "theirs", "default");
    let out = run_with_stdin(c, configmap("k1").as_bytes());
    sim.kubectl_stdout("apply --applyset", &out);

    // kubectl writes its own version there.
    let tooling = parent(&sim, "theirs", "default")["metadata"]["annotations"]
        ["applyset.kubernetes.io/tooling"]
        .as_str()
        .expect("kubectl's tooling annotation")
        .to_owned();
    kapply(&sim, &["--applyset", "theirs", "--prune"], &configmap("k2"))
        .code(1)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: applyset secret/theirs in namespace default: it is managed by \"kubectl\" \
             (applyset.kubernetes.io/tooling: {tooling}); kapply changes only sets it made \
             (--force-applyset takes this one over)\n"
        ));
    assert!(!exists(&sim, "configmap/k2", "default"), "nothing applied");

    kapply_ok(
        &sim,
        &["--applyset", "theirs", "--prune", "--force-applyset"],
        &configmap("k2"),
    )
    .stdout_is("configmap/k2 created\nconfigmap/k1 pruned\n");
    assert!(
        parent(&sim, "theirs", "default")["metadata"]["annotations"]
            ["applyset.kubernetes.io/tooling"]
            .as_str()
            .unwrap()
            .starts_with("kapply/")
    );
}

#[test]
fn an_object_that_is_not_a_set_parent_is_refused() {
    let sim = Sim::start(&[]);
    sim.kubectl_ok(&["create", "secret", "generic", "plain", "--from-literal=a=b"]);
    kapply(&sim, &["--applyset", "plain", "--prune"], &configmap("x"))
        .code(1)
        .stderr_is(
            "kapply: applyset secret/plain in namespace default: the object exists but has no \
             applyset.kubernetes.io/tooling annotation: it is not an ApplySet parent; kapply changes only sets \
             it made (--force-applyset takes this one over)\n",
        );
    // --applyset alone is a usage error.
    kapply(&sim, &["--applyset", "plain"], &configmap("x"))
        .code(2)
        .stderr_is(
            "error: the following required arguments were not provided:\n  <--prune|--delete-all|--history>\n\n\
             Usage: kapply --applyset <[RESOURCE[.GROUP]/]NAME> <--prune|--delete-all|--history>\n\n\
             For more information, try '--help'.\n",
        );
}

#[test]
fn kubectl_and_kapply_compute_the_same_id_and_kubectl_lists_the_set() {
    let sim = Sim::start(&[]);
    sim.kubectl_ok(&["create", "namespace", "shop"]);
    // kubectl's set first: its parent's id label, and a member labelled with it.
    let c = kubectl_applyset(&sim, "same", "shop");
    sim.kubectl_stdout(
        "apply --applyset",
        &run_with_stdin(c, configmap("from-kubectl").as_bytes()),
    );
    let kubectl_id = set_id(&sim, "same", "shop");
    sim.kubectl_ok(&["delete", "secret", "same", "-n", "shop"]);

    // kapply, same parent: the same id, so kubectl's member is kapply's to prune.
    kapply_ok(
        &sim,
        &["--applyset", "same", "--prune", "-n", "shop"],
        &(configmap("from-kapply") + HPA),
    )
    .stdout_is(
        "configmap/from-kapply created\n\
         horizontalpodautoscaler.autoscaling/polls-app created\n\
         configmap/from-kubectl pruned\n",
    );
    assert_eq!(set_id(&sim, "same", "shop"), kubectl_id);

    let listed = sim.kubectl_ok(&[
        "get",
        "configmaps,hpa",
        "-n",
        "shop",
        "-l",
        &format!("{PART_OF}={kubectl_id}"),
        "-o",
        "name",
    ]);
    assert_eq!(
        listed,
        "configmap/from-kapply\nhorizontalpodautoscaler.autoscaling/polls-app\n"
    );
    // And kubectl reads kapply's parent as a valid set made by another tool.
    let c = kubectl_applyset(&sim, "same", "shop");
    let out = run_with_stdin(c, configmap("from-kubectl").as_bytes());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("managed by tooling \"kapply\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_custom_resource_parent_needs_its_crd_labelled_and_to_exist() {
    let sim = Sim::start(&[]);
    let crd = |labels: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
             metadata: {{name: applysets.example.com, labels: {{{labels}}}}}\nspec:\n  group: example.com\n  \
             scope: Namespaced\n  names: {{kind: ApplySet, plural: applysets, singular: applyset, listKind: ApplySetList}}\n  \
             versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      \
             openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
        )
    };
    sim.apply_yaml(&crd(""));
    eventually("the CRD is served", || {
        sim.kubectl_run(&["get", "applysets"]).status.success()
    });
    let spec = ["--applyset", "applysets.example.com/mine", "--prune"];
    kapply(&sim, &spec, &configmap("a"))
        .code(2)
        .stderr_is(
            "kapply: ApplySet is not permitted as an ApplySet parent: its CustomResourceDefinition applysets.example.com \
             needs the applyset.kubernetes.io/is-parent-type label (as kubectl requires)\n",
        );

    sim.apply_yaml(&crd("applyset.kubernetes.io/is-parent-type: \"true\""));
    kapply(&sim, &spec, &configmap("a"))
        .code(1)
        .stderr_is(
            "kapply: applyset applyset.example.com/mine in namespace default does not exist: \
             a custom resource parent is not created automatically (as in kubectl); create it first\n",
        );

    // Made by hand it is no set yet (kubectl refuses it too): taken over once.
    sim.apply_yaml("apiVersion: example.com/v1\nkind: ApplySet\nmetadata: {name: mine}\n");
    kapply(&sim, &spec, &configmap("a"))
        .stderr_is(
            "kapply: applyset applyset.example.com/mine in namespace default: the object exists but has no \
             applyset.kubernetes.io/tooling annotation: it is not an ApplySet parent; kapply changes only sets \
             it made (--force-applyset takes this one over)\n",
        );
    let forced = [&spec[..], &["--force-applyset"]].concat();
    kapply_ok(&sim, &forced, &(configmap("a") + &configmap("b")))
        .stdout_is("configmap/a created\nconfigmap/b created\n");
    let parent: serde_json::Value =
        serde_json::from_str(&sim.kubectl_ok(&["get", "applyset", "mine", "-o", "json"])).unwrap();
    // sha256("mine.default.ApplySet.example.com"), computed apart.
    assert_eq!(
        parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        "applyset-5fd1NQ1qz6UNuK3FKGOuTY6w2Hnh4gyc79Bmp-qb2p8-v1"
    );
    kapply_ok(&sim, &spec, &configmap("a"))
        .stdout_is("configmap/a unchanged\nconfigmap/b pruned\n");
}

#[test]
fn delete_all_removes_the_set_and_its_parent_in_reverse_order() {
    let sim = Sim::start(&["--deploy-delay", "100ms"]);
    let deployment = "---
apiVersion: apps/v1
kind: Deployment
metadata: {name: polls-app}
spec:
  selector: {matchLabels: {app: polls}}
  template:
    metadata: {labels: {app: polls}}
    spec:
      containers: [{name: polls, image: docker.io/sammy/polls:latest}]
";
    let stack = configmap("polls-config") + deployment + HPA;
    kapply_ok(&sim, &["--applyset", "polls", "--prune"], &stack);
    sim.kubectl_ok(&["create", "configmap", "bystander"]);

    // The HPA and the Deployment are deleted together, in either order: a line, not
    // the whole output.
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--delete-all", "--dry-run=server"],
        "",
    )
    .stdout_has("configmap/polls-config deleted (server dry run)\n");
    assert!(exists(&sim, "deployment/polls-app", "default"));

    // Last step first: the HPA and the Deployment share kapply's last step (deleted
    // together, in either order), then the ConfigMap, then the parent.
    let out = kapply_ok(&sim, &["--applyset", "polls", "--delete-all"], "").stdout();
    let lines: Vec<&str> = out.lines().collect();
    let mut last_step = lines[..2.min(lines.len())].to_vec();
    last_step.sort_unstable();
    assert_eq!(
        last_step,
        [
            "deployment.apps/polls-app deleted",
            "horizontalpodautoscaler.autoscaling/polls-app deleted"
        ],
        "{out}"
    );
    assert_eq!(
        lines[2..],
        ["configmap/polls-config deleted", "secret/polls deleted"],
        "{out}"
    );
    // The set and its parent are gone, the bystander is not.
    assert_eq!(
        existing(
            &sim,
            &[
                "configmap/polls-config",
                "deployment.apps/polls-app",
                "horizontalpodautoscaler.autoscaling/polls-app",
                "secret/polls",
                "configmap/bystander",
            ],
            "default"
        ),
        ["configmap/bystander"]
    );
    kapply(&sim, &["--applyset", "polls", "--delete-all"], "")
        .success()
        .stderr_is("kapply: applyset secret/polls in namespace default does not exist: nothing to delete\n");
}

/// Puts a finalizer of its own on ConfigMap `name`: its deletion waits until it is taken off.
fn hold(sim: &Sim, name: &str, finalizers: &str) {
    let patch = format!(r#"{{"metadata":{{"finalizers":{finalizers}}}}}"#);
    sim.kubectl_ok(&["patch", "configmap", name, "--type=merge", "-p", &patch]);
}

#[test]
fn delete_all_waits_for_what_a_finalizer_holds_and_no_longer() {
    let sim = Sim::start(&[]);
    kapply_ok(
        &sim,
        &["--applyset", "stuck", "--prune"],
        &configmap("stuck"),
    );
    kapply_ok(&sim, &["--applyset", "held", "--prune"], &configmap("held"));
    hold(&sim, "stuck", r#"["example.com/hold"]"#);
    hold(&sim, "held", r#"["example.com/hold"]"#);

    // Held for good: --timeout ends the wait and names what is not gone (how soon
    // after it: bench/deadlines.sh).
    let mut c = sim.cmd("kapply");
    c.args(["--applyset", "stuck", "--delete-all", "--timeout", "2s"]);
    // Not the whole stderr: its last line says "1 objects".
    run_bounded(&mut c)
        .code(124)
        .stderr_has("waiting for 1 deleted object to be gone")
        .stderr_has("ConfigMap/stuck in namespace default: not done when --timeout ran out");

    // Let go while kapply waits: it is done then, not at its timeout (how soon:
    // bench/deadlines.sh).
    let mut c = sim.cmd("kapply");
    c.args(["--applyset", "held", "--delete-all", "--timeout", "1h"]);
    let mut waiting = Background::start(c);
    waiting.expect_line("waiting for 1 deleted object to be gone");
    hold(&sim, "held", "null");
    let out = waiting.finish().context(sim.log());
    out.success();
    assert!(!exists(&sim, "configmap/held", "default"));
}

/// A Deployment named `name` whose container reads `env` (`envFrom` and `env` entries).
fn deployment(name: &str, env: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  \
         selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    \
         spec:\n      containers:\n      - name: c\n        image: docker.io/sammy/polls:latest\n{env}"
    )
}

fn secret(name: &str) -> String {
    format!("---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData: {{K: v}}\n")
}

const INGRESS: &str = "---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: polls}
spec:
  tls: [{hosts: [polls.example.com], secretName: polls-tls}]
  rules:
  - host: polls.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: polls, port: {number: 80}}}}
";

const SERVICE: &str = "---
apiVersion: v1
kind: Service
metadata: {name: polls}
spec:
  selector: {app: polls-app}
  ports: [{port: 80}]
";

#[test]
fn a_prune_keeps_what_kept_objects_use_and_says_who_uses_it() {
    let sim = Sim::start(&["--deploy-delay", "100ms"]);
    let app = deployment(
        "polls-app",
        "        envFrom: [{secretRef: {name: polls-secret}}]\n        \
         env: [{name: DEBUG, valueFrom: {configMapKeyRef: {name: polls-config, key: K}}}]\n",
    );
    let worker = deployment(
        "worker",
        "        envFrom: [{configMapRef: {name: worker-config}}]\n",
    );
    let kept = app.clone() + INGRESS;
    let stack = kept.clone()
        + &secret("polls-secret")
        + &configmap("polls-config")
        + SERVICE
        + &secret("polls-tls")
        + &secret("shared")
        + &worker
        + &configmap("worker-config")
        + &configmap("unused");
    kapply_ok(&sim, &["--applyset", "polls", "--prune"], &stack);
    // A Pod made by hand, not in the set, mounts one of the set's Secrets.
    sim.apply_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: by-hand}\nspec:\n  containers: [{name: c, image: busybox}]\n  \
         volumes: [{name: s, secret: {secretName: shared}}]\n",
    );

    // The stream drops what the Deployment, the Ingress and the Pod use, and the
    // worker with its ConfigMap.
    let out = kapply(&sim, &["--applyset", "polls", "--prune"], &kept);
    let err = out
        .success()
        .stderr_is(
            "kapply: configmap/polls-config kept: used by deployment.apps/polls-app (env)\n\
             kapply: secret/polls-secret kept: used by deployment.apps/polls-app (envFrom)\n\
             kapply: secret/polls-tls kept: used by ingress.networking.k8s.io/polls (tls)\n\
             kapply: secret/shared kept: used by pod/by-hand (volume)\n\
             kapply: service/polls kept: used by ingress.networking.k8s.io/polls (backend)\n",
        )
        .stderr();
    let printed = out.stdout();
    let mut pruned: Vec<&str> = printed.lines().filter(|l| l.ends_with(" pruned")).collect();
    pruned.sort_unstable();
    assert_eq!(
        pruned,
        [
            "configmap/unused pruned",
            "configmap/worker-config pruned",
            "deployment.apps/worker pruned"
        ],
        "{err}"
    );
    for line in [
        "kapply: secret/polls-secret kept: used by deployment.apps/polls-app (envFrom)\n",
        "kapply: configmap/polls-config kept: used by deployment.apps/polls-app (env)\n",
        "kapply: service/polls kept: used by ingress.networking.k8s.io/polls (backend)\n",
        "kapply: secret/polls-tls kept: used by ingress.networking.k8s.io/polls (tls)\n",
        "kapply: secret/shared kept: used by pod/by-hand (volume)\n",
    ] {
        out.stderr_has(line);
    }
    // What is used is kept, what is not is pruned.
    assert_eq!(
        existing(
            &sim,
            &[
                "secret/polls-secret",
                "configmap/polls-config",
                "service/polls",
                "secret/polls-tls",
                "secret/shared",
                "configmap/worker-config",
            ],
            "default"
        ),
        [
            "configmap/polls-config",
            "secret/polls-secret",
            "secret/polls-tls",
            "secret/shared",
            "service/polls",
        ]
    );
    // Kept objects stay members: the parent still records their kinds.
    assert_eq!(
        parent(&sim, "polls", "default")["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,Deployment.apps,Ingress.networking.k8s.io,Secret,Service"
    );

    // Once nothing kept uses them, they go.
    sim.kubectl_ok(&["delete", "pod", "by-hand"]);
    let out = kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &configmap("polls-config"),
    );
    out.stdout_is(
        "configmap/polls-config unchanged\n\
         deployment.apps/polls-app pruned\n\
         ingress.networking.k8s.io/polls pruned\n\
         service/polls pruned\n\
         secret/polls-secret pruned\n\
         secret/polls-tls pruned\n\
         secret/shared pruned\n",
    );
    for gone in [
        "secret/polls-secret pruned",
        "service/polls pruned",
        "secret/shared pruned",
        "deployment.apps/polls-app pruned",
    ] {
        out.stdout_has(gone);
    }
}

#[test]
fn a_namespace_is_pruned_only_when_nothing_else_lives_in_it() {
    let sim = Sim::start(&[]);
    let namespace =
        |name: &str| format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n");
    let in_ns = |name: &str, ns: &str| {
        format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\n"
        )
    };
    let stays = in_ns("stays", "keeps");
    let stack = configmap("home")
        + &namespace("shop")
        + &in_ns("catalog", "shop")
        + &namespace("empty")
        + &in_ns("leaves", "empty")
        + &namespace("keeps")
        + &stays;
    kapply_ok(&sim, &["--applyset", "polls", "--prune"], &stack);
    // Someone else's object in one of the set's namespaces.
    sim.kubectl_ok(&["create", "configmap", "by-hand", "-n", "shop"]);

    let out = kapply(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("home") + &stays),
    );
    out.success()
        .stdout_is(
            "configmap/home unchanged\nconfigmap/stays unchanged\nconfigmap/catalog pruned\n\
             configmap/leaves pruned\nnamespace/empty pruned\n",
        )
        .stderr_is(
            "kapply: namespace/keeps kept: configmap/stays still in it\n\
             kapply: namespace/shop kept: configmap/by-hand still in it\n",
        );
    for line in [
        "configmap/catalog pruned\n",
        "configmap/leaves pruned\n",
        "namespace/empty pruned\n",
    ] {
        out.stdout_has(line);
    }
    out.stdout_lacks("namespace/shop")
        .stdout_lacks("namespace/keeps")
        .stderr_has("kapply: namespace/shop kept: configmap/by-hand still in it\n")
        .stderr_has("kapply: namespace/keeps kept: configmap/stays still in it\n");
    assert!(exists(&sim, "configmap/by-hand", "shop"));
    assert!(exists(&sim, "configmap/stays", "keeps"));
    assert!(!exists(&sim, "configmap/catalog", "shop"));
    assert!(
        !sim.kubectl_run(&["get", "namespace", "empty"])
            .status
            .success()
    );

    // --delete-all keeps it too, and the parent that tracks it.
    kapply(&sim, &["--applyset", "polls", "--delete-all"], "")
        .success()
        .stderr_is(
            "kapply: namespace/shop kept: configmap/by-hand still in it\n\
             kapply: applyset secret/polls in namespace default kept: it still tracks the object kept\n",
        );
    assert!(exists(&sim, "configmap/by-hand", "shop"));
    assert!(
        exists(&sim, "secret/polls", "default"),
        "the parent tracks namespace/shop"
    );
    assert!(
        !sim.kubectl_run(&["get", "namespace", "keeps"])
            .status
            .success()
    );
}

/// One Event, as `events.k8s.io/v1` and as `v1` write it.
const EVENT_NEW: &str = "---
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: deployed}
eventTime: '2026-01-01T00:00:00.000000Z'
reportingController: example.com/deployer
reportingInstance: deployer-1
action: Deploy
reason: Deployed
note: polls deployed
type: Normal
regarding: {apiVersion: v1, kind: ConfigMap, name: polls-config, namespace: default}
";
const EVENT_V1: &str = "---
apiVersion: v1
kind: Event
metadata: {name: deployed}
eventTime: '2026-01-01T00:00:00.000000Z'
reportingComponent: example.com/deployer
reportingInstance: deployer-1
action: Deploy
reason: Deployed
message: polls deployed
type: Normal
involvedObject: {apiVersion: v1, kind: ConfigMap, name: polls-config, namespace: default}
";

#[test]
fn an_object_served_under_two_groups_is_never_pruned_when_applied_under_either() {
    let sim = Sim::start(&[]);
    let uid = |resource: &str| {
        sim.kubectl_ok(&[
            "get",
            resource,
            "deployed",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    kapply_ok(
        &sim,
        &["--applyset", "polls", "--prune"],
        &(configmap("polls-config") + EVENT_NEW),
    );
    let first = uid("events.events.k8s.io");
    assert!(!first.is_empty());
    assert_eq!(uid("events"), first, "one object under both groups");

    for (stream, before, name) in [
        (EVENT_V1, "Event.events.k8s.io", "event/deployed"),
        (EVENT_NEW, "Event", "event.events.k8s.io/deployed"),
    ] {
        kapply(
            &sim,
            &["--applyset", "polls", "--prune"],
            &(configmap("polls-config") + stream),
        )
        .context(format!("after {before}"))
        .success()
        .stdout_lacks("pruned")
        .stdout_is(&format!(
            "configmap/polls-config unchanged\n{name} unchanged\n"
        ));
        assert_eq!(
            uid("events"),
            first,
            "after {before}: deleted and made again?"
        );
    }
    let deletes: Vec<&str> = Vec::new();
    assert_eq!(
        sim.log()
            .lines()
            .filter(|l| l.starts_with("DELETE "))
            .collect::<Vec<_>>(),
        deletes
    );
}

// ---- the simulator's deletion, through kubectl ------------------------------------------

/// A ConfigMap `owner` and a ConfigMap `child` whose ownerReferences name it.
fn owner_and_child(sim: &Sim) {
    sim.kubectl_ok(&["create", "configmap", "owner"]);
    let uid = sim.kubectl_ok(&[
        "get",
        "configmap",
        "owner",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    sim.apply_yaml(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child\n  ownerReferences:\n  \
         - {{apiVersion: v1, kind: ConfigMap, name: owner, uid: {uid}, blockOwnerDeletion: true}}\n"
    ));
}

#[test]
fn background_deletion_collects_dependents_and_dry_run_deletes_nothing() {
    let sim = Sim::start(&[]);
    owner_and_child(&sim);
    sim.kubectl_ok(&["delete", "configmap", "owner", "--dry-run=server"]);
    assert!(exists(&sim, "configmap/owner", "default"));
    sim.kubectl_ok(&["delete", "configmap", "owner"]);
    assert!(!exists(&sim, "configmap/owner", "default"));
    sim.await_gc("configmaps default/owner");
    assert!(
        !exists(&sim, "configmap/child", "default"),
        "the child is collected"
    );
}

#[test]
fn finalizers_hold_a_deletion_until_the_last_one_is_taken_off() {
    let sim = Sim::start(&[]);
    owner_and_child(&sim);
    sim.kubectl_ok(&[
        "patch",
        "configmap",
        "owner",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    sim.kubectl_ok(&["delete", "configmap", "owner", "--wait=false"]);
    sim.await_gc("configmaps default/owner");
    let owner = sim.get_json("configmap/owner");
    assert!(
        owner["metadata"].get("deletionTimestamp").is_some(),
        "{owner}"
    );
    assert!(
        exists(&sim, "configmap/child", "default"),
        "the owner still exists"
    );
    sim.kubectl_ok(&[
        "patch",
        "configmap",
        "owner",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(!exists(&sim, "configmap/owner", "default"));
    // Taking off the last finalizer completes the deletion, dependents included.
    sim.await_gc("configmaps default/owner");
    assert!(
        !exists(&sim, "configmap/child", "default"),
        "the child is collected"
    );
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_reference() {
    let sim = Sim::start(&[]);
    owner_and_child(&sim);
    sim.kubectl_ok(&["delete", "configmap", "owner", "--cascade=orphan"]);
    assert!(!exists(&sim, "configmap/owner", "default"));
    sim.await_gc("configmaps default/owner");
    let child = sim.get_json("configmap/child");
    assert!(
        child["metadata"].get("ownerReferences").is_none(),
        "{child}"
    );
}

#[test]
fn foreground_deletion_removes_the_owner_only_after_its_dependents() {
    let sim = Sim::start(&[]);
    owner_and_child(&sim);
    // A finalizer of its own holds the child, and so the owner, until removed.
    sim.kubectl_ok(&[
        "patch",
        "configmap",
        "child",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    sim.kubectl_ok(&[
        "delete",
        "configmap",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    sim.await_gc("configmaps default/owner");
    let child = sim.get_json("configmap/child");
    assert!(
        child["metadata"].get("deletionTimestamp").is_some(),
        "the child is being deleted: {child}"
    );
    let owner = sim.get_json("configmap/owner");
    assert!(
        owner["metadata"].get("deletionTimestamp").is_some(),
        "{owner}"
    );
    assert_eq!(owner["metadata"]["finalizers"][0], "foregroundDeletion");

    sim.kubectl_ok(&[
        "patch",
        "configmap",
        "child",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    sim.kubectl_ok(&["wait", "--for=delete", "configmap/owner", "--timeout=10s"]);
    assert!(!exists(&sim, "configmap/child", "default"));
}

#[test]
fn deleting_a_deployment_or_a_job_collects_its_replica_sets_and_pods() {
    let sim = Sim::start(&["--deploy-delay", "100ms"]);
    sim.apply_yaml(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  \
         selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    \
         spec:\n      containers: [{name: c, image: nginx}]\n---\n\
         apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n    spec:\n      \
         restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n",
    );
    // The simulated controllers make a ReplicaSet and pods of both.
    sim.await_log_count(
        "POST /apis/apps/v1/namespaces/default/replicasets -> 201 [kubesim-controller]",
        1,
    );
    sim.await_log_count(
        "POST /api/v1/namespaces/default/pods -> 201 [kubesim-controller]",
        3,
    );
    let owned = || sim.kubectl_ok(&["get", "replicasets,pods", "-o", "name"]);
    let names = owned();
    assert!(
        names.contains("replicaset.apps/web-") && names.matches("pod/").count() >= 3,
        "{names}"
    );
    sim.kubectl_ok(&["delete", "deployment", "web"]);
    sim.kubectl_ok(&["delete", "job", "once"]);
    sim.await_gc("deployments.apps default/web");
    sim.await_gc("jobs.batch default/once");
    assert_eq!(
        owned().trim(),
        "",
        "the ReplicaSet and every pod are collected"
    );
}

#[test]
fn a_job_deleted_without_a_policy_orphans_as_batch_v1_does() {
    let sim = Sim::start(&[]);
    sim.apply_yaml(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n    spec:\n      \
         restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n",
    );
    let uid = sim.kubectl_ok(&["get", "job", "once", "-o", "jsonpath={.metadata.uid}"]);
    sim.apply_yaml(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: job-output\n  ownerReferences:\n  \
         - {{apiVersion: batch/v1, kind: Job, name: once, uid: {uid}}}\n"
    ));
    // A raw DELETE without DeleteOptions, as old clients send it.
    sim.kubectl_ok(&[
        "delete",
        "--raw",
        "/apis/batch/v1/namespaces/default/jobs/once",
    ]);
    sim.await_gc("jobs.batch default/once");
    assert!(!exists(&sim, "job/once", "default"), "the Job is gone");
    assert!(exists(&sim, "configmap/job-output", "default"));
}

// ---- make deploy / make destroy ------------------------------------------------------

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn make(sim: &Sim, target: &str, vars: &[&str]) -> Run {
    let mut c = make_cmd(target);
    c.args(vars)
        .env("KUBECONFIG", &sim.kubeconfig)
        .env("HOME", sim.dir.path());
    let out = c.run();
    let log = sim.log();
    out.context(format!("make {target}\n--- kubesim ---\n{log}"))
}

fn names(sim: &Sim) -> String {
    sim.kubectl_ok(&[
        "get",
        "configmaps,secrets,deployments,services,ingresses,jobs,hpa,pdb,certificates",
        "-n",
        "default",
        "-o",
        "name",
    ])
}

#[test]
fn make_deploy_prunes_what_the_app_dropped_and_make_destroy_leaves_nothing() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "200ms",
        "--deploy-delay",
        "100ms",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    let template = std::fs::read_to_string(repo().join("examples/polls/env")).unwrap();
    std::fs::write(
        &env,
        template.replace("DJANGO_SECRET_KEY=\n", "DJANGO_SECRET_KEY=k\n"),
    )
    .unwrap();
    let env = format!("ENV={}", env.display());
    let settings = format!("SETTINGS={}", dir.path().join("polls.mk").display());
    let base = [
        env.as_str(),
        settings.as_str(),
        "NAMESPACE=default",
        "TIMEOUT=30s",
    ];

    let full = [
        &base[..],
        &[
            "IMAGE=docker.io/sammy/polls:v1",
            "HOST=polls.example.com",
            "HPA=2:5",
            "PDB=1",
        ],
    ]
    .concat();
    make(&sim, "deploy", &full).success();
    let before = names(&sim);
    for kind in [
        "horizontalpodautoscaler",
        "poddisruptionbudget",
        "job.batch/",
    ] {
        assert!(before.contains(kind), "{kind} not deployed:\n{before}");
    }
    let old_job = before
        .lines()
        .find(|l| l.starts_with("job.batch/"))
        .unwrap()
        .to_owned();

    // A new image: a new migrate Job name; no --hpa, no --pdb (the kept settings have
    // them: dropping them is said).
    let next = [
        &base[..],
        &["IMAGE=docker.io/sammy/polls:v2", "HPA=", "PDB=0"],
    ]
    .concat();
    // Among the lines of every tool make runs, some with timings.
    let out = make(&sim, "deploy", &next);
    out.success();
    for pruned in [
        "horizontalpodautoscaler.autoscaling/polls-app pruned",
        "poddisruptionbudget.policy/polls-app pruned",
        &format!("{old_job} pruned"),
    ] {
        out.stderr_has(pruned);
    }
    let after = names(&sim);
    assert!(!after.contains("horizontalpodautoscaler"), "{after}");
    assert!(!after.contains("poddisruptionbudget"), "{after}");
    assert!(!after.contains(&old_job), "{after}");
    assert_eq!(after.matches("job.batch/").count(), 1, "{after}");

    make(&sim, "destroy", &base).success();
    // What the app's objects owned (the Certificate, the ReplicaSets) is collected.
    sim.await_gc("");
    assert_eq!(names(&sim).trim(), "", "nothing of the app is left");
}

// ---- what prune and delete never do ---------------------------------------------------

/// `n` ConfigMaps named `PREFIX-0` ...
fn configmaps(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| configmap(&format!("{prefix}-{i}")))
        .collect()
}

/// The ConfigMaps in `default` whose names start with `prefix`.
fn live_configmaps(sim: &Sim, prefix: &str) -> Vec<String> {
    sim.kubectl_ok(&["get", "configmaps", "-o", "name"])
        .lines()
        .filter(|l| l.starts_with(&format!("configmap/{prefix}")))
        .map(String::from)
        .collect()
}

/// The simulator's log lines of the tools' requests from the `from`th on.
fn requests_since(sim: &Sim, from: usize) -> Vec<String> {
    sim.tool_requests().into_iter().skip(from).collect()
}

/// Whether a log line is a write (anything but a read or a watch).
fn is_write(line: &str) -> bool {
    !line.starts_with("GET ") && !line.starts_with("HEAD ")
}

/// Starts kapply with `args` on `stdin`, waits until a request of its own that
/// `event` accepts is in the simulator's log, sends it each of `signals` (`-INT`,
/// `-TERM`) and returns its output.
fn signalled_when(
    sim: &Sim,
    args: &[&str],
    stdin: &str,
    event: impl Fn(&str) -> bool,
    signals: &[&str],
) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let from = sim.tool_requests().len();
    let mut child = sim
        .cmd("kapply")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !requests_since(sim, from).iter().any(|l| event(l)) {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "kapply never got there:\n{}",
            sim.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for signal in signals {
        let sent = Command::new("kill")
            .args([*signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
    child.wait_with_output().unwrap().into()
}

#[test]
fn a_signal_while_applying_or_waiting_prunes_nothing() {
    // Slow writes, so that a signal falls in the middle; pods that never start.
    let sim = Sim::start(&["--latency", "write=200ms", "--deploy-delay", "1h"]);
    kapply_ok(
        &sim,
        &["--applyset", "app", "--prune"],
        &configmaps("old", 40),
    );

    // SIGINT once the first new object is applied: the rest is not, nothing pruned.
    let from = sim.tool_requests().len();
    let out = signalled_when(
        &sim,
        &["--applyset", "app", "--prune"],
        &configmaps("new", 40),
        |l| l.starts_with("PATCH ") && l.contains("/configmaps/new-"),
        &["-INT"],
    );
    // How far it got varies: the lines, not the whole output.
    let err = out.code(130).stderr();
    let applied = out.stdout().matches(" created\n").count();
    assert!(applied > 0 && applied < 40, "{err}");
    out.stderr_has(&format!(
        "kapply: interrupted by SIGINT: {applied} of 40 objects applied; not applied: "
    ))
    .stderr_has("; nothing pruned: the run was interrupted")
    .stdout_lacks("pruned");
    assert_eq!(live_configmaps(&sim, "old-").len(), 40);
    let deletes: Vec<String> = requests_since(&sim, from)
        .into_iter()
        .filter(|l| l.starts_with("DELETE "))
        .collect();
    assert!(deletes.is_empty(), "{deletes:?}");

    // SIGTERM while --wait waits for a rollout: nothing pruned either.
    let deployment = "---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
";
    let from = sim.tool_requests().len();
    let out = signalled_when(
        &sim,
        &["--applyset", "app", "--prune", "--wait", "--timeout", "20s"],
        deployment,
        |l| l.contains("/deployments?watch"),
        &["-TERM"],
    );
    // Also on stderr: how long the wait had been going.
    out.code(143).stderr_has(
        "kapply: interrupted by SIGTERM: 1 of 1 objects applied; nothing pruned: the run was interrupted",
    );
    assert_eq!(live_configmaps(&sim, "old-").len(), 40);
    assert!(
        !requests_since(&sim, from)
            .iter()
            .any(|l| l.starts_with("DELETE ")),
        "{}",
        sim.log()
    );
}

#[test]
fn a_signal_during_a_prune_or_delete_all_stops_it_and_names_what_is_kept() {
    let sim = Sim::start(&["--latency", "write=200ms"]);
    kapply_ok(
        &sim,
        &["--applyset", "app", "--prune"],
        &(configmap("keep") + &configmaps("old", 40)),
    );

    // SIGINT twice once the first deletion is answered: no new one starts.
    let out = signalled_when(
        &sim,
        &["--applyset", "app", "--prune"],
        &configmap("keep"),
        |l| l.starts_with("DELETE "),
        &["-INT", "-INT"],
    );
    // How far it got varies: the lines, not the whole output.
    let err = out.code(130).stderr();
    let pruned = out.stdout().matches(" pruned\n").count();
    let left = live_configmaps(&sim, "old-");
    assert!(pruned > 0 && pruned < 40, "{err}");
    assert_eq!(left.len(), 40 - pruned, "{err}");
    out.stderr_has(&format!(
        "kapply: interrupted by SIGINT while pruning: {pruned} of 40 objects pruned; kept (not pruned): ConfigMap/old-"
    ));
    // Not narrowed: the parent still covers what is left.
    assert_eq!(
        parent(&sim, "app", "default")["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );

    // The same for --delete-all, SIGTERM: the parent stays while members are left.
    let out = signalled_when(
        &sim,
        &["--applyset", "app", "--delete-all"],
        "",
        |l| l.starts_with("DELETE "),
        &["-TERM"],
    );
    let err = out.code(143).stderr();
    let deleted = out.stdout().matches(" deleted\n").count();
    let members = left.len() + 1;
    assert!(deleted > 0 && deleted < members, "{err}");
    out.stderr_has(&format!(
        "kapply: interrupted by SIGTERM: {deleted} of {members} objects deleted; kept (not deleted): "
    ))
    .stderr_has("the parent applyset-");
    assert!(exists(&sim, "secret/app", "default"));
    assert_eq!(live_configmaps(&sim, "").len(), members - deleted, "{err}");
}

#[test]
fn a_rollout_that_fails_or_times_out_prunes_nothing() {
    let sim = Sim::start(&[
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        "web:bad=ImagePullBackOff",
    ]);
    let deployment = |image: &str| {
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  \
             selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
             spec:\n      containers: [{{name: web, image: '{image}'}}]\n"
        )
    };
    kapply_ok(
        &sim,
        &["--applyset", "app", "--prune", "--wait"],
        &(configmap("old") + &deployment("web:good")),
    );
    let from = sim.tool_requests().len();
    let out = kapply(
        &sim,
        &["--applyset", "app", "--prune", "--wait", "--timeout", "30s"],
        &deployment("web:bad"),
    );
    // The diagnosis holds pod names and how long it waited: its lines, not the whole of it.
    out.code(1)
        .stderr_has("ImagePullBackOff")
        .stderr_has("kapply: nothing pruned from applyset-")
        .stderr_has(": 1 object not ready\n");
    assert!(exists(&sim, "configmap/old", "default"));
    assert!(
        !requests_since(&sim, from)
            .iter()
            .any(|l| l.starts_with("DELETE ")),
        "{}",
        sim.log()
    );
}

#[test]
fn dry_runs_write_nothing_and_list_what_a_real_run_would_delete() {
    let sim = Sim::start(&[]);
    kapply_ok(
        &sim,
        &["--applyset", "app", "--prune"],
        &(configmap("keep") + &configmap("old")),
    );
    let annotations = || parent(&sim, "app", "default")["metadata"]["annotations"].clone();
    let recorded = annotations();
    let from = sim.tool_requests().len();

    kapply_ok(
        &sim,
        &["--applyset", "app", "--delete-all", "--dry-run=client"],
        "",
    )
    .stdout_is(
        "configmap/keep deleted (dry run)\nconfigmap/old deleted (dry run)\nsecret/app deleted (dry run)\n",
    );
    kapply_ok(
        &sim,
        &["--applyset", "app", "--prune", "--dry-run=client"],
        &(configmap("keep") + &configmap("new")),
    )
    .stdout_is(
        "configmap/keep created (dry run)\nconfigmap/new created (dry run)\nconfigmap/old pruned (dry run)\n",
    );
    // A client dry run reads, and only reads.
    let writes: Vec<String> = requests_since(&sim, from)
        .into_iter()
        .filter(|l| is_write(l))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Server dry runs and --diff send dry-run requests only: nothing changes.
    kapply_ok(
        &sim,
        &["--applyset", "app", "--delete-all", "--dry-run=server"],
        "",
    );
    kapply_ok(
        &sim,
        &[
            "--applyset",
            "app",
            "--prune",
            "--dry-run=server",
            "-o",
            "name",
        ],
        &configmap("new"),
    )
    .stdout_is("configmap/new\n");
    // The diff holds uids and resourceVersions: a line, not the whole of it.
    kapply(
        &sim,
        &["--applyset", "app", "--prune", "--diff"],
        &configmap("new"),
    )
    .code(1)
    .stdout_has("--- live/default/configmap/old\n");
    assert_eq!(
        live_configmaps(&sim, ""),
        ["configmap/keep", "configmap/old"]
    );
    assert_eq!(annotations(), recorded);

    // Without a cluster, a client dry run of a set says it cannot list it.
    let unreachable = sim.dir.path().join("unreachable");
    let config = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let port = config
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .expect("a server address in the kubeconfig")
        .to_owned();
    std::fs::write(&unreachable, config.replace(&format!(":{port}"), ":1")).unwrap();
    let mut c = cmd("kapply");
    c.env("KUBECONFIG", &unreachable).args([
        "--applyset",
        "app",
        "--prune",
        "--dry-run=client",
        "--retry-for",
        "0s",
    ]);
    // A server that never answered: kubectl's one line, as for any other run.
    c.run_with(configmap("keep"))
        .code(1)
        .stdout_empty()
        .stderr_is(
            "kapply: The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n",
        );
}

#[test]
fn flags_kapply_cannot_honour_together_are_refused_before_any_request() {
    let sim = Sim::start(&[]);
    let input = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, labels: {app: web}}\n\
                 ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: db, labels: {app: db}}\n";
    kapply_ok(&sim, &["--applyset", "app", "--prune"], input);
    let from = sim.tool_requests().len();
    let clap = |error: &str, usage: &str| {
        format!("error: {error}\n\nUsage: kapply {usage}\n\nFor more information, try '--help'.\n")
    };
    let applyset_usage = "--applyset <[RESOURCE[.GROUP]/]NAME> <--prune|--delete-all|--history>";
    let conflict = |a: &str, b: &str| {
        clap(
            &format!("the argument '{a}' cannot be used with '{b}'"),
            applyset_usage,
        )
    };
    let missing = |what: &str, usage: &str| {
        clap(
            &format!("the following required arguments were not provided:\n  {what}"),
            usage,
        )
    };
    for (flags, names, says) in [
        // -l would leave `db` out of the input, and prune it (kubectl refuses too).
        (
            &["--applyset", "app", "--prune", "-l", "app=web"][..],
            &["--applyset", "--selector"][..],
            conflict("--applyset <[RESOURCE[.GROUP]/]NAME>", "--selector <SELECTOR>"),
        ),
        (
            &["--applyset", "app", "--delete-all", "-l", "app=web"],
            &["--applyset", "--selector"],
            conflict("--applyset <[RESOURCE[.GROUP]/]NAME>", "--selector <SELECTOR>"),
        ),
        (
            &["--applyset", "app", "--delete-all", "--wait"],
            &["--delete-all", "--wait"],
            conflict("--delete-all", "--wait"),
        ),
        (
            &["--applyset", "app", "--delete-all", "-R"],
            &["--delete-all", "--recursive"],
            conflict("--delete-all", "--recursive"),
        ),
        (
            &["--applyset", "app", "--delete-all", "--force-conflicts"],
            &["--delete-all", "--force-conflicts"],
            conflict("--delete-all", "--force-conflicts"),
        ),
        (
            &["--applyset", "app", "--delete-all", "--field-manager", "x"],
            &["--delete-all", "--field-manager"],
            conflict("--delete-all", "--field-manager <NAME>"),
        ),
        (
            &["--applyset", "app", "--delete-all", "-f", "-"],
            &["--delete-all", "--filename"],
            conflict("--delete-all", "--filename <FILE|DIR|URL|->"),
        ),
        (
            &["--applyset", "app", "--delete-all", "--prune"],
            &["--delete-all", "--prune"],
            conflict("--delete-all", "--prune"),
        ),
        (
            &["--applyset", "app"],
            &["--prune", "--delete-all"],
            missing("<--prune|--delete-all|--history>", applyset_usage),
        ),
        (
            &["--prune"],
            &["--applyset"],
            missing("--applyset <[RESOURCE[.GROUP]/]NAME>", applyset_usage),
        ),
        (
            &["--diff", "--dry-run=server"],
            &["--diff", "--dry-run=server"],
            "kapply: --diff cannot be used with --dry-run=server: --diff is a server dry run of its own\n"
                .to_owned(),
        ),
        (
            &["--wait", "--dry-run=server"],
            &["--wait", "--dry-run=server"],
            "kapply: --wait cannot be used with --dry-run=server: a dry run makes nothing to wait for\n"
                .to_owned(),
        ),
        (
            &["--wait", "--diff"],
            &["--wait", "--diff"],
            "kapply: --wait cannot be used with --diff: a dry run makes nothing to wait for\n".to_owned(),
        ),
        (
            &["--show-secrets"],
            &["--output"],
            missing("--output <FORMAT>", "--output <FORMAT> --show-secrets"),
        ),
        (
            &["--show-managed-fields"],
            &["--output"],
            missing("--output <FORMAT>", "--output <FORMAT> --show-managed-fields"),
        ),
        (
            &["-R"],
            &["--filename"],
            missing("--filename <FILE|DIR|URL|->", "--filename <FILE|DIR|URL|-> --recursive"),
        ),
    ] {
        let out = kapply(&sim, flags, input).context(format!("{flags:?}"));
        out.code(2).stdout_empty().stderr_is(&says);
        for name in names {
            out.stderr_has(name);
        }
    }
    assert!(requests_since(&sim, from).is_empty(), "{}", sim.log());
    assert!(exists(&sim, "configmap/db", "default"));

    // --prune without input (an empty pipe: the stage before failed): nothing to
    // compare with, so nothing is pruned.
    kapply(&sim, &["--applyset", "app", "--prune"], "")
        .code(2)
        .stderr_is("kapply: <stdin>: no input: the stage before me failed or wrote nothing\n");
    assert!(exists(&sim, "configmap/db", "default"));
}

#[test]
fn the_parent_is_never_a_member_and_only_a_parent_kind_is_one() {
    let sim = Sim::start(&[]);
    kapply_ok(&sim, &["--applyset", "app", "--prune"], &configmap("web"));
    let parent_too =
        configmap("web") + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: app}\n";
    let from = sim.tool_requests().len();
    kapply(&sim, &["--applyset", "app", "--prune"], &parent_too)
        .code(2)
        .stderr_is(
            "kapply: Secret/app in namespace default is the parent of --applyset app: \
             a set cannot hold its own parent; leave it out of the input\n",
        );
    assert!(
        !requests_since(&sim, from).iter().any(|l| is_write(l)),
        "{}",
        sim.log()
    );
    assert!(exists(&sim, "configmap/web", "default"));

    for (spec, kind) in [
        ("namespaces/x", "Namespace"),
        ("deployments.apps/x", "Deployment"),
    ] {
        kapply(&sim, &["--applyset", spec, "--prune"], &configmap("web"))
            .code(2)
            .stderr_is(&format!(
                "kapply: --applyset {spec}: a {kind} cannot be an ApplySet parent; a parent is a Secret \
                 (NAME or secrets/NAME), a ConfigMap (configmaps/NAME) or a custom resource whose \
                 CustomResourceDefinition carries the applyset.kubernetes.io/is-parent-type label\n"
            ))
            .stderr_lacks("CustomResourceDefinition namespaces");
    }
}

//! kapp's change rules in all their forms, against kubesim: the order of the writes is
//! read back from what the server saw (each write takes the next resourceVersion, each
//! deletion is a line of its log), never from kapply's own report.

use crate::common::*;

fn config_map(name: &str, annotations: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\ndata: {{K: v}}\n"
    )
}

/// The resourceVersion each named ConfigMap was created with.
fn created_at(sim: &Sim, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|name| {
            sim.kubectl_ok(&[
                "get",
                "configmap",
                name,
                "-n",
                "default",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ])
            .parse()
            .unwrap()
        })
        .collect()
}

#[test]
fn upsert_after_and_before_upserting_order_the_writes() {
    let sim = Sim::start(&[]);
    let input = [
        config_map("after", "kapp.k14s.io/change-rule: upsert after upserting first"),
        config_map("first", "kapp.k14s.io/change-group: first"),
        config_map(
            "before",
            "kapp.k14s.io/change-rule.x: upsert before upserting first",
        ),
        // A rule outranks the built-in order: this ConfigMap follows a Job.
        config_map("late", "kapp.k14s.io/change-rule: upsert after upserting jobs"),
        "---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: job, annotations: {kapp.k14s.io/change-group: jobs}}\n\
         spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}\n"
            .to_owned(),
    ]
    .concat();
    let mut c = sim.cmd("kapply");
    c.args(["-n", "default"]);
    c.run_with(&input).success();
    let rv = created_at(&sim, &["before", "first", "after", "late"]);
    assert!(
        rv[0] < rv[1] && rv[1] < rv[2],
        "before, first, after: {rv:?}"
    );
    let job: u64 = sim
        .kubectl_ok(&[
            "get",
            "job",
            "job",
            "-n",
            "default",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    // The Job's status may have moved its version since: it was created before `late`.
    let job_created = sim
        .log()
        .lines()
        .position(|l| l.starts_with("PATCH /apis/batch/v1/namespaces/default/jobs/job "))
        .unwrap();
    let late_created = sim
        .log()
        .lines()
        .position(|l| l.starts_with("PATCH /api/v1/namespaces/default/configmaps/late "))
        .unwrap();
    assert!(
        job_created < late_created,
        "job at {job}, late at {}",
        rv[3]
    );
}

#[test]
fn delete_after_and_before_deleting_order_the_prune() {
    let sim = Sim::start(&[]);
    let all = [
        config_map(
            "keep",
            "kapp.k14s.io/change-rule: upsert after deleting old",
        ),
        config_map("middle", "kapp.k14s.io/change-group: old"),
        config_map(
            "last",
            "kapp.k14s.io/change-rule: delete after deleting old",
        ),
        config_map(
            "first",
            "kapp.k14s.io/change-rule: delete before deleting old",
        ),
    ];
    let prune = |input: &str| {
        let mut c = sim.cmd("kapply");
        c.args(["-n", "default", "--applyset", "rules", "--prune"]);
        c.run_with(input)
    };
    prune(&all.concat()).success();
    prune(&all[0])
        .success()
        .stdout_has("configmap/first pruned")
        .stdout_is(
            "configmap/keep unchanged\nconfigmap/first pruned\nconfigmap/middle pruned\nconfigmap/last pruned\n",
        )
        .stderr_is(
            "kapply: warning: configmap/keep: change rule \"upsert after deleting old\" not kept: \
             kapply deletes only after every object applied (configmap/middle of group old)\n",
        );
    let deleted: Vec<String> = sim
        .log()
        .lines()
        .filter(|l| l.starts_with("DELETE /api/v1/namespaces/default/configmaps/"))
        .map(|l| {
            l.split('/')
                .nth(6)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(deleted, ["first", "middle", "last"]);
}

#[test]
fn with_wait_an_upsert_before_rule_holds_back_what_it_precedes() {
    let sim = Sim::start(&[
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        ":broken$=ImagePullBackOff",
    ]);
    let input = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: check
  annotations: {kapp.k14s.io/change-rule: upsert before upserting app}
spec: {backoffLimit: 0, template: {spec: {restartPolicy: Never, containers: [{name: c, image: 'busybox:broken'}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {kapp.k14s.io/change-group: app}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
";
    let mut c = sim.cmd("kapply");
    c.args(["-n", "default", "--wait", "--timeout", "20s"]);
    c.run_with(input)
        .code(1)
        .stdout_has("job.batch/check created")
        .stdout_lacks("deployment.apps/web")
        .stdout_is("job.batch/check created\n")
        .stderr_has(
            "kapply: deployment.apps/web: not applied: changes it waits for did not become ready",
        );
    assert!(
        !sim.log()
            .lines()
            .any(|l| l.contains("/deployments/web ") && !l.starts_with("GET")),
        "the Deployment was written"
    );
}

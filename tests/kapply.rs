//! kapply as a user runs it: bad input without a server, and everything else against a
//! private kubesim per test, checked with the real kubectl.

use crate::common::*;

/// The polls stack, deliberately out of order (Ingress first, ConfigMap last).
const POLLS: &str = "\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: polls
  annotations: {cert-manager.io/cluster-issuer: letsencrypt-staging}
spec:
  rules:
  - host: polls.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: polls, port: {number: 8000}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: polls-app, labels: {app: polls}}
spec:
  replicas: 2
  selector: {matchLabels: {app: polls}}
  template:
    metadata: {labels: {app: polls}}
    spec:
      containers:
      - name: polls
        image: docker.io/sammy/polls:latest
        envFrom: [{secretRef: {name: polls-secret}}, {configMapRef: {name: polls-config}}]
        ports: [{containerPort: 8000, name: gunicorn}]
---
apiVersion: v1
kind: Service
metadata: {name: polls, labels: {app: polls}}
spec:
  type: ClusterIP
  selector: {app: polls}
  ports: [{port: 8000, targetPort: 8000, name: http}]
---
apiVersion: v1
kind: Secret
metadata: {name: polls-secret}
type: Opaque
stringData:
  DATABASE_PASSWORD: s3cr3t-polls-pw
  DJANGO_SECRET_KEY: k3y-that-must-not-leak
---
apiVersion: v1
kind: ConfigMap
metadata: {name: polls-config}
data:
  DEBUG: \"True\"
  DJANGO_LOGLEVEL: info
";

/// Every secret value of [`POLLS`], plain and base64.
const SECRETS: &[&str] = &[
    "s3cr3t-polls-pw",
    "k3y-that-must-not-leak",
    "czNjcjN0LXBvbGxzLXB3",
];

/// kapply's lines for [`POLLS`]: step by step (what pods consume, then the rest), in
/// input order within a step.
const POLLS_CREATED: &str = "\
secret/polls-secret created
configmap/polls-config created
ingress.networking.k8s.io/polls created
deployment.apps/polls-app created
service/polls created
";

fn kapply(sim: &Sim, args: &[&str], stdin: &str) -> Run {
    let out = sim.cmd("kapply").args(args).run_with(stdin);
    let log = sim.log();
    out.context(format!("kubesim log:\n{log}"))
}

/// kapply as [`kapply`], which must succeed.
fn kapply_ok(sim: &Sim, args: &[&str], stdin: &str) -> Run {
    let out = kapply(sim, args, stdin);
    out.success();
    out
}

fn kubectl_json(sim: &Sim, args: &[&str]) -> serde_json::Value {
    let out = sim
        .kubectl()
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn exists(sim: &Sim, args: &[&str]) -> bool {
    sim.kubectl()
        .args(["get"])
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

fn configmap_value(sim: &Sim, name: &str, key: &str) -> String {
    kubectl_json(sim, &["get", "configmap", name])["data"][key]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// DJANGO_LOGLEVEL in ConfigMap polls-config, as the cluster has it.
fn loglevel(sim: &Sim) -> String {
    configmap_value(sim, "polls-config", "DJANGO_LOGLEVEL")
}

/// The order in which the simulator saw apply PATCHes for these resources (its own
/// controllers' status writes left out).
fn patch_order(sim: &Sim, resources: &[&str]) -> Vec<String> {
    sim.log()
        .lines()
        .filter(|l| l.starts_with("PATCH ") && !l.contains("/status"))
        .filter_map(|l| {
            resources
                .iter()
                .find(|r| l.contains(&format!("/{r}/")))
                .map(|r| r.to_string())
        })
        .collect()
}

// ---- bad input and usage: no server needed ------------------------------------------

#[test]
fn bad_document_applies_nothing_and_names_source_document_and_line() {
    let text =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [oops\n";
    cmd("kapply")
        .run_with(text)
        .code(2)
        .stdout_empty()
        .stderr_is("kapply: <stdin>: document 2 (line 6): invalid YAML: unclosed bracket '['\n");
}

#[test]
fn a_repeated_key_keeps_its_last_value_as_kubectl_does() {
    let sim = Sim::start(&[]);
    // The second ConfigMap lost its `---`: kubectl applies the merged document with the
    // last value of each key (`second`, its labels only), and so does kapply, saying so.
    let merged = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n  labels: {a: b}\n\
                  apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\n\
                  data:\n  K: one\n  K: two\n";
    let out = kapply_ok(&sim, &[], &format!("{POLLS}---\n{merged}"));
    let first = POLLS.lines().count() + 2;
    out.stderr_is(&format!(
        "kapply: <stdin>:{}: key \"apiVersion\" repeated; the last value is used, as kubectl does\n\
         kapply: <stdin>:{}: key \"kind\" repeated; the last value is used, as kubectl does\n\
         kapply: <stdin>:{}: key \"metadata\" repeated; the last value is used, as kubectl does\n\
         kapply: <stdin>:{}: key \"K\" repeated; the last value is used, as kubectl does\n",
        first + 5,
        first + 6,
        first + 7,
        first + 11
    ))
    .stderr_lacks("two");
    assert!(!exists(&sim, &["configmap", "first"]), "first was applied");
    let ours = sim.kubectl_ok(&["get", "configmap", "second", "-o", "json"]);
    let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(ours["data"], serde_json::json!({"K": "two"}));
    assert!(ours["metadata"].get("labels").is_none(), "{ours}");

    // kubectl, applying the same text into another namespace, stores the same object.
    sim.kubectl_ok(&["create", "namespace", "oracle"]);
    let mut kubectl = sim.kubectl();
    kubectl.args(["apply", "--server-side", "-n", "oracle", "-f", "-"]);
    kubectl.run_with(merged).success();
    let theirs = sim.kubectl_ok(&["get", "configmap", "second", "-n", "oracle", "-o", "json"]);
    let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
    assert_eq!(ours["data"], theirs["data"]);
    assert_eq!(
        ours["metadata"].get("labels"),
        theirs["metadata"].get("labels")
    );
    out.no_secrets(SECRETS);
}

#[test]
fn unquoted_yaml11_values_are_refused_before_anything_is_applied() {
    let sim = Sim::start(&[]);
    let debug_on = POLLS.replace("DEBUG: \"True\"", "DEBUG: on");
    assert_ne!(debug_on, POLLS, "the fixture lost its DEBUG line");
    let out = kapply(&sim, &[], &debug_on);
    out.code(2).stdout_empty().stderr_is(
        "kapply: <stdin>: document 5 (line 48): ConfigMap data key \"DEBUG\": Kubernetes (YAML 1.1) reads this unquoted value as a boolean, \
         and the API server accepts only strings there; quote the value\n",
    );
    assert!(!exists(&sim, &["configmap", "polls-config"]));
    out.no_secrets(SECRETS);
}

/// What our own tools write quotes every YAML 1.1 look-alike, so the strict reading of
/// manifest-gen and kapply never trips on a pipe of them.
#[test]
fn the_pipes_own_output_passes_the_yaml11_check() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::write(
        &env,
        "DEBUG=on\nDJANGO_LOGLEVEL=no\nSTATIC_BUCKET_NAME=0755\nSTATIC_ENDPOINT_URL=12:30:00\n\
         DJANGO_ALLOWED_HOSTS=~\nDATABASE_ENGINE=1_000\nDATABASE_PASSWORD=yes\nDJANGO_SECRET_KEY=y\n",
    )
    .unwrap();
    let envsplit = cmd("envsplit").args(["--app", "polls"]).arg(&env).run();
    envsplit.success();
    let secretgen = cmd("secretgen").run_with(&envsplit.stdout);
    secretgen.success();
    // No --host: DJANGO_ALLOWED_HOSTS `~` admits none, and manifest-gen refuses that.
    let generated = cmd("manifest-gen")
        .args(["--image", "example/polls:1"])
        .run_with(&secretgen.stdout);
    generated.success();
    sim.cmd("kapply")
        .arg("--dry-run=server")
        .run_with(&generated.stdout)
        .success()
        .stdout_is(
            "configmap/polls-config created (server dry run)\n\
             secret/polls-secret created (server dry run)\n\
             deployment.apps/polls-app created (server dry run)\n\
             service/polls created (server dry run)\n",
        );
}

#[test]
fn object_without_a_name_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n",
    )
    .unwrap();
    cmd("kapply")
        .arg("-f")
        .arg(&file)
        .run()
        .code(2)
        .stderr_is(&format!(
            "kapply: {}: document 1 (line 1): ConfigMap has generateName but no name: server-side apply needs metadata.name\n",
            file.display()
        ));
}

#[test]
fn an_object_the_server_would_refuse_after_a_valid_one_applies_nothing() {
    let sim = Sim::start(&[]);
    let valid = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: valid}\ndata: {K: v}\n---\n";
    let long = "x".repeat(254);
    for (bad, says) in [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Upper}\n".to_owned(),
            "kapply: <stdin>: document 2 (line 6): ConfigMap/Upper: metadata.name \"Upper\": a lowercase RFC 1123 subdomain \
             must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n"
                .to_owned(),
        ),
        (
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {long}}}\n"),
            format!(
                "kapply: <stdin>: document 2 (line 6): ConfigMap/{long}: metadata.name \"{long}\": must be no more than 253 characters\n"
            ),
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: 8080-web}\nspec: {ports: [{port: 80}]}\n"
                .to_owned(),
            "kapply: <stdin>: document 2 (line 6): Service/8080-web: metadata.name \"8080-web\": a DNS-1035 label \
             must consist of lower case alphanumeric characters or '-', start with an alphabetic character, \
             and end with an alphanumeric character\n"
                .to_owned(),
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'bad key': v}\n".to_owned(),
            "kapply: <stdin>: document 2 (line 6): ConfigMap/c: data key \"bad key\": a valid config key must consist of \
             alphanumeric characters, '-', '_' or '.'\n"
                .to_owned(),
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {PASSWORD: s3cr3t-not-base64}\n"
                .to_owned(),
            "kapply: <stdin>: document 2 (line 6): Secret/s: data.PASSWORD: the value is not valid base64 \
             (the API server decodes it as base64)\n"
                .to_owned(),
        ),
    ] {
        let out = kapply(&sim, &[], &format!("{valid}{bad}"));
        out.code(2)
            .stdout_empty()
            .stderr_is(&says)
            .no_secret("s3cr3t-not-base64");
    }
    assert!(sim.tool_requests().is_empty(), "{}", sim.log());
    assert!(!exists(&sim, &["configmap", "valid"]));
}

#[test]
fn missing_file_empty_input_and_bad_flags_are_usage_errors() {
    cmd("kapply")
        .args(["-f", "/nonexistent/stack.yaml"])
        .run()
        .code(2)
        .stderr_is("kapply: /nonexistent/stack.yaml: cannot read: No such file or directory (os error 2)\n");

    cmd("kapply")
        .run_with("# nothing here\n---\n")
        .code(2)
        .stderr_is("kapply: no objects in the input (-)\n");

    for (bad, says) in [
        (
            &["--concurrency", "0"][..],
            "error: invalid value '0' for '--concurrency <N>': 0 is not in 1..=65535\n",
        ),
        (
            &["--dry-run", "sometimes"],
            "error: invalid value 'sometimes' for '--dry-run <MODE>'\n  [possible values: none, client, server]\n",
        ),
        (
            &["--timeout", "soon"],
            "error: invalid value 'soon' for '--timeout <DURATION>': invalid duration \"soon\" (expected number at 0); \
             use e.g. 30s, 5m, 1h\n",
        ),
        (
            &["--diff", "-o", "yaml"],
            "error: the argument '--diff' cannot be used with '--output <FORMAT>'\n\nUsage: kapply --diff\n",
        ),
    ] {
        cmd("kapply")
            .args(bad)
            .run_with(POLLS)
            .context(format!("{bad:?}"))
            .code(2)
            .stdout_empty()
            .stderr_is(&format!("{says}\nFor more information, try '--help'.\n"));
    }
}

#[test]
fn help_teaches_order_examples_and_exit_codes() {
    let out = cmd("kapply").arg("--help").run();
    for needle in [
        "--force-conflicts",
        "--dry-run",
        "--diff",
        "Exit codes:",
        "124",
        "Examples:",
        "--kubeconfig",
        "What --prune and --delete-all never do:",
        "prune after a run that was not whole",
        "start a deletion after SIGINT/SIGTERM",
        "write in a dry run",
    ] {
        out.stdout_has(needle);
    }
}

/// A server that refuses the connection before it ever answered is not there: kapply
/// fails at once with kubectl's words (not after 30 s of retries and a notice each: its
/// stderr is that one line). How soon: bench/deadlines.sh.
#[test]
fn a_server_that_refuses_before_any_answer_fails_at_once_as_kubectl_says() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    let port = closed_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\n\
             users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\n\
             current-context: x\n"
        ),
    )
    .unwrap();
    let message = format!(
        "The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?"
    );
    for args in [&[][..], &["--applyset", "polls", "--delete-all"]] {
        let mut c = cmd("kapply");
        c.env("KUBECONFIG", &kubeconfig).args(args);
        run_bounded_with(&mut c, POLLS)
            .context(format!("{args:?}"))
            .code(1)
            .stdout_empty()
            .stderr_is(&format!("kapply: {message}\n"));
    }
}

#[test]
fn polls_stack_applies_in_order_and_a_second_run_is_unchanged() {
    let sim = Sim::start(&["--deploy-delay", "200ms"]);
    kapply(&sim, &[], POLLS)
        .no_secrets(SECRETS)
        .success()
        .stdout_is(POLLS_CREATED);
    // Two sequential steps: what the pods consume, then the rest, each in parallel.
    let mut order = patch_order(
        &sim,
        &[
            "configmaps",
            "secrets",
            "services",
            "deployments",
            "ingresses",
        ],
    );
    assert_eq!(order.len(), 5, "{order:?}");
    order[..2].sort();
    order[2..].sort();
    assert_eq!(
        order,
        [
            "configmaps",
            "secrets",
            "deployments",
            "ingresses",
            "services"
        ]
    );

    assert_eq!(loglevel(&sim), "info");
    let deployment = kubectl_json(
        &sim,
        &["get", "deployment", "polls-app", "--show-managed-fields"],
    );
    assert_eq!(deployment["spec"]["replicas"], 2);
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["operation"] == "Apply")
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kapply"]);

    // As on a cluster, the Deployment's controller writes its status in between: that
    // is no change of what kapply applied.
    sim.kubectl_ok(&[
        "wait",
        "--for=jsonpath={.status.availableReplicas}=2",
        "deployment/polls-app",
        "--timeout=60s",
    ]);
    kapply_ok(&sim, &[], POLLS)
        .stdout_is(&POLLS_CREATED.replace("created", "unchanged"))
        .no_secrets(SECRETS);
}

#[test]
fn a_changed_configmap_value_reports_configured_and_the_rest_unchanged() {
    let sim = Sim::start(&[]);
    kapply_ok(&sim, &["-n", "default"], POLLS);
    let changed = POLLS.replace("DJANGO_LOGLEVEL: info", "DJANGO_LOGLEVEL: debug");
    kapply_ok(&sim, &["-n", "default"], &changed)
        .stdout_is(
            "secret/polls-secret unchanged\n\
             configmap/polls-config configured\n\
             ingress.networking.k8s.io/polls unchanged\n\
             deployment.apps/polls-app unchanged\n\
             service/polls unchanged\n",
        )
        .no_secrets(SECRETS);
    assert_eq!(loglevel(&sim), "debug");
}

#[test]
fn dry_run_and_diff_change_nothing() {
    let sim = Sim::start(&[]);
    kapply_ok(&sim, &[], POLLS);
    let changed = POLLS
        .replace("DJANGO_LOGLEVEL: info", "DJANGO_LOGLEVEL: warning")
        .replace("s3cr3t-polls-pw", "n3w-s3cr3t-pw");

    kapply_ok(&sim, &["--dry-run=server"], &changed).stdout_is(
        "secret/polls-secret configured (server dry run)\n\
         configmap/polls-config configured (server dry run)\n\
         ingress.networking.k8s.io/polls unchanged (server dry run)\n\
         deployment.apps/polls-app unchanged (server dry run)\n\
         service/polls unchanged (server dry run)\n",
    );
    assert_eq!(loglevel(&sim), "info");

    // As `kubectl diff`: exit 1 when something differs, 0 when nothing does.
    let out = kapply(&sim, &["--diff"], &changed);
    // The diff holds resourceVersions and uids: its lines, not the whole of it.
    out.code(1)
        .stderr_is("kapply: 2 of 5 objects differ from the live state\n")
        .stdout_has("--- live/default/configmap/polls-config\n")
        .stdout_has("-  DJANGO_LOGLEVEL: info\n+  DJANGO_LOGLEVEL: warning\n")
        .stdout_has("DATABASE_PASSWORD: \"<redacted> (after)\"")
        // Unchanged objects have no diff.
        .stdout_lacks("service/polls");
    for secret in [
        "n3w-s3cr3t-pw",
        "bjN3LXMzY3IzdC1wdw",
        "s3cr3t-polls-pw",
        "czNjcjN0LXBvbGxzLXB3",
    ] {
        out.stdout_lacks(secret).stderr_lacks(secret);
    }
    assert_eq!(loglevel(&sim), "info");
    let secret = kubectl_json(&sim, &["get", "secret", "polls-secret"]);
    assert_eq!(secret["data"]["DATABASE_PASSWORD"], "czNjcjN0LXBvbGxzLXB3");
}

const WIDGET_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[test]
fn a_crd_and_its_custom_resource_in_one_stream() {
    let sim = Sim::start(&[]);
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: gear}\nspec: {teeth: 12}\n";
    // The custom resource comes first: kapply must still apply the CRD first.
    kapply_ok(&sim, &[], &format!("{widget}---\n{WIDGET_CRD}")).stdout_is(
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created\nwidget.example.com/gear created\n",
    );
    let gear = kubectl_json(&sim, &["get", "widgets.example.com", "gear"]);
    assert_eq!(gear["spec"]["teeth"], 12);

    kapply_ok(&sim, &[], &format!("{widget}---\n{WIDGET_CRD}")).stdout_is(
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com unchanged\nwidget.example.com/gear unchanged\n",
    );
}

#[test]
fn a_kind_the_cluster_does_not_serve_stops_everything_before_writing() {
    let sim = Sim::start(&[]);
    let certificate = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: polls-tls}\n\
                       spec: {secretName: polls-tls, dnsNames: [polls.example.com], issuerRef: {name: x, kind: ClusterIssuer}}\n";
    let out = kapply(&sim, &[], &format!("{POLLS}---\n{certificate}"));
    out.code(1)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: <stdin>: document 6 (line 51): Certificate: cert-manager.io/v1 is not served by {}/: \
             is cert-manager installed?\n\
             kapply: nothing was applied\n",
            server(&sim)
        ));
    assert!(!exists(&sim, &["configmap", "polls-config"]));
    out.no_secrets(SECRETS);
}

#[test]
fn a_namespace_other_than_the_flag_is_refused_before_writing() {
    let sim = Sim::start(&[]);
    let stray =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stray, namespace: kube-system}\n";
    let out = kapply(&sim, &["-n", "default"], &format!("{POLLS}---\n{stray}"));
    out.code(2).stderr_is(
        "kapply: <stdin>: document 6 (line 51): ConfigMap/stray: its namespace \"kube-system\" does not match -n \"default\" \
         (as kubectl, kapply does not move objects: drop -n or pass -n kube-system)\n",
    );
    assert!(!exists(&sim, &["configmap", "polls-config"]));
    out.no_secrets(SECRETS);
}

#[test]
fn conflicts_list_fields_and_managers_and_force_takes_them_over() {
    let sim = Sim::start(&[]);
    // The tutorial done by hand: kubectl's client-side apply owns DJANGO_LOGLEVEL.
    let by_hand = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: polls-config, namespace: default}\n\
                   data: {DEBUG: \"True\", DJANGO_LOGLEVEL: warning}\n";
    sim.apply_yaml(by_hand);

    // Found before the first write: nothing else was applied either.
    kapply(&sim, &[], POLLS)
        .code(1)
        .stdout_empty()
        .stderr_is(
            "kapply: ConfigMap/polls-config in namespace default: apply conflict: 1 field is managed by another field manager:\n\
             kapply:   .data.DJANGO_LOGLEVEL  managed by \"kubectl-client-side-apply\" (update)\n\
             kapply:   \"kubectl-client-side-apply\" wrote these fields with an update (such as kubectl edit, create or client-side apply): \
             to take them over, run again with --force-conflicts; from then on change them in the manifests\n\
             kapply:   would change .data.DJANGO_LOGLEVEL: \"warning\" -> \"info\"\n\
             kapply: 1 of 5 objects would take over fields another field manager owns: \
             nothing applied; to take them over, run again with --force-conflicts \
             (make deploy/issuers: FORCE=1)\n",
        )
        .no_secrets(SECRETS);
    assert!(
        !sim.kubectl_run(&["get", "deployment", "polls-app"])
            .status
            .success()
    );
    assert_eq!(loglevel(&sim), "warning");

    kapply_ok(&sim, &["--force-conflicts"], POLLS).stdout_is(&POLLS_CREATED.replace(
        "configmap/polls-config created",
        "configmap/polls-config configured",
    ));
    assert_eq!(loglevel(&sim), "info");
}

#[test]
fn permanent_errors_exit_1_report_identity_and_message_and_apply_the_rest() {
    let sim = Sim::start(&[]);
    let broken = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost, namespace: nonexistent}\ndata: {A: b}\n\
                  ---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad-host}\n\
                  spec: {rules: [{host: Bad_Host.example.com}]}\n";
    kapply(&sim, &[], &format!("{POLLS}---\n{broken}"))
        .code(1)
        .stdout_is(POLLS_CREATED)
        .stderr_is(
            "kapply: ConfigMap/lost in namespace nonexistent: namespaces \"nonexistent\" not found\n\
             kapply: Ingress/bad-host in namespace default: Ingress.networking.k8s.io \"bad-host\" is invalid: \
             spec.rules[0].host: Invalid value: \"Bad_Host.example.com\": a lowercase RFC 1123 subdomain must consist of \
             lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
             (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n\
             kapply: 2 of 7 objects failed (1 invalid, 1 not found); 5 applied\n",
        )
        .no_secrets(SECRETS);
    assert!(exists(&sim, &["ingress", "polls"]));
}

/// How many of kapply's requests the simulator answered with `outcome` (`503`,
/// `reset`), as its log says.
fn answered(sim: &Sim, outcome: &str) -> usize {
    let answer = format!(" -> {outcome} [");
    sim.tool_requests()
        .iter()
        .filter(|l| l.contains(&answer))
        .count()
}

/// Runs the polls stack through `fault` and checks that kapply itself met every
/// fault (the simulator's controllers are exempt, and nothing else talks to it
/// yet), reported a retry saying `notice`, and still applied everything.
/// `met` lists each injected outcome and how many requests it answered.
fn assert_fault_survived(fault: &str, notice: &str, met: &[(&str, usize)]) {
    let sim = Sim::start(&["--faults", fault]);
    let out = kapply(&sim, &[], POLLS).context(format!("{fault}\nkubesim log:\n{}", sim.log()));
    out.success();
    let log = sim.log();
    for (outcome, count) in met {
        assert_eq!(
            answered(&sim, outcome),
            *count,
            "{fault}: kapply's requests answered {outcome}:\n{log}"
        );
    }
    // Retries are told with how long they wait: the lines, not the whole of stderr.
    out.stdout_is(POLLS_CREATED)
        .stderr_has("retry 1 in ")
        .stderr_has(notice)
        .no_secrets(SECRETS);
    // Every object is there (kubectl fails naming any that is not).
    let live = sim.kubectl_ok(&[
        "get",
        "configmap/polls-config",
        "secret/polls-secret",
        "service/polls",
        "deployment/polls-app",
        "ingress/polls",
        "-o",
        "name",
    ]);
    assert_eq!(live.lines().count(), 5, "{fault}: {live}");
}

#[test]
fn unavailable_patches_are_retried() {
    assert_fault_survived("503:3@PATCH", "503 Service Unavailable", &[("503", 3)]);
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    // The simulator sends Retry-After: 1, which beats the first backoff steps.
    assert_fault_survived("429:2@PATCH", "429 Too Many Requests: ", &[("429", 2)]);
    // Retry-After: 1, plus up to half as much again so that throttled workers spread out.
    assert_fault_survived("429:1@PATCH", "; retry 1 in 1.", &[("429", 1)]);
}

#[test]
fn reset_connections_are_retried() {
    let sim = Sim::start(&["--faults", "reset:2@PATCH"]);
    let out = kapply_ok(&sim, &[], POLLS);
    assert_eq!(answered(&sim, "reset"), 2, "{}", sim.log());
    out.stdout_is(POLLS_CREATED)
        .stderr_has("(the connection closed without an answer)");
    // A broken connection is an outage: one line when it begins, one when it ends.
    assert_outage_told_once(&out);
}

/// One line when the outage began and one when it ended, and not one per retry.
fn assert_outage_told_once(out: &Run) {
    let err = out.stderr();
    let began = err
        .matches("kapply: no answer from the server 127.0.0.1:")
        .count();
    let ended = err.matches(" answers again (no answer for ").count();
    assert_eq!((began, ended), (1, 1), "{err}");
    out.stderr_lacks("; retry ");
}

#[test]
fn internal_errors_and_gateway_failures_are_retried() {
    assert_fault_survived(
        "500:1@PATCH,502:1@PATCH,504:1@PATCH",
        "500 Internal Server Error",
        &[("500", 1), ("502", 1), ("504", 1)],
    );
    assert_fault_survived(
        "502:1@PATCH,504:1@PATCH",
        "504 Gateway Timeout",
        &[("502", 1), ("504", 1)],
    );
}

#[test]
fn faults_on_any_request_discovery_included_are_retried() {
    // Without @METHOD the first requests kapply makes (discovery) meet the faults.
    assert_fault_survived(
        "503:2,reset:1",
        "503 Service Unavailable",
        &[("503", 2), ("reset", 1)],
    );
    assert_fault_survived("500:2", "500 Internal Server Error", &[("500", 2)]);
}

#[test]
fn flaky_server_under_load_still_gets_every_object() {
    let sim = Sim::start(&["--faults", "rate:503:0.3"]);
    let stream: String = (0..40)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{NUM: \"{i}\"}}\n"))
        .collect();
    // Told in input order, whatever the retries.
    kapply_ok(&sim, &[], &stream).stdout_is(&configmap_lines(40, "created"));
    // The final state, read through the same faults: every object is there as applied.
    kapply_ok(&sim, &[], &stream).stdout_is(&configmap_lines(40, "unchanged"));
}

#[test]
fn output_yaml_is_the_live_objects_without_managed_fields() {
    let sim = Sim::start(&[]);
    let out = kapply_ok(&sim, &["-o", "yaml"], POLLS);
    let text = stdout(&out);
    let docs: Vec<serde_json::Value> = text
        .split("---\n")
        .map(crate::common::yaml)
        .filter(|d| !d.is_null()) // the stream's first line, a comment
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["Ingress", "Deployment", "Service", "Secret", "ConfigMap"],
        "input order"
    );
    for doc in &docs {
        assert!(
            doc["metadata"]["uid"].is_string(),
            "live objects carry uid: {doc}"
        );
        assert!(doc["metadata"].get("managedFields").is_none(), "{doc}");
    }
    // Not a terminal: Secret data passes through for the next tool, as the server has it.
    assert_eq!(docs[3]["data"]["DATABASE_PASSWORD"], "czNjcjN0LXBvbGxzLXB3");
    // What changed is still told, on stderr.
    out.stderr_is(
        &POLLS_CREATED
            .lines()
            .map(|l| format!("kapply: {l}\n"))
            .collect::<String>(),
    )
    .no_secrets(SECRETS);

    let out = kapply(&sim, &["-o", "json", "--show-managed-fields"], POLLS);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert!(list["items"][0]["metadata"]["managedFields"].is_array());
}

#[test]
fn timeout_gives_up_with_exit_124_and_names_what_was_not_done() {
    let sim = Sim::start(&["--faults", "503:1000@PATCH"]);
    // Its retries are told with how long they wait: the lines, not the whole of stderr.
    let out = kapply(&sim, &["--timeout", "2s", "--retry-for", "1h"], POLLS);
    let err = out
        .code(124)
        .stdout_empty()
        .stderr_has(
            "kapply: ConfigMap/polls-config in namespace default: not done when --timeout ran out\n",
        )
        .no_secrets(SECRETS)
        .stderr();
    assert!(
        err.ends_with("\nkapply: 5 of 5 objects failed (5 timed out); 0 applied\n"),
        "{err}"
    );
}

#[test]
fn dry_run_of_a_new_namespace_and_crd_notes_what_the_server_cannot_check_yet() {
    let sim = Sim::start(&[]);
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
    let config =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {A: b}\n";
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: gear, namespace: shop}\n";
    let stream = format!("{namespace}---\n{config}---\n{WIDGET_CRD}---\n{widget}");
    // Exit 0 only when every object was checked.
    kapply(&sim, &["--dry-run=server"], &stream)
        .code(1)
        .stdout_is(
            "namespace/shop created (server dry run)\n\
             customresourcedefinition.apiextensions.k8s.io/widgets.example.com created (server dry run)\n",
        )
        .stderr_is(
            "kapply: ConfigMap/c in namespace shop: not checked: namespace \"shop\" is created by this input\n\
             kapply: Widget/gear in namespace shop: not checked: example.com/v1 is served only once \
             CustomResourceDefinition/widgets.example.com of this input is applied\n\
             kapply: 2 of 4 objects not checked (see above); 2 checked\n",
        );
    assert!(!exists(&sim, &["namespace", "shop"]));
    assert!(!exists(&sim, &["crd", "widgets.example.com"]));
}

#[test]
fn cert_manager_kinds_apply_when_cert_manager_is_installed() {
    let sim = Sim::start(&["--cert-manager"]);
    let issuer = "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: selfsigned}\nspec: {selfSigned: {}}\n";
    let certificate = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: polls-tls}\n\
                       spec: {secretName: polls-tls, dnsNames: [polls.example.com], issuerRef: {name: selfsigned, kind: ClusterIssuer}}\n";
    kapply_ok(
        &sim,
        &["-n", "default"],
        &format!("{certificate}---\n{issuer}"),
    )
    .stdout_is(
        "certificate.cert-manager.io/polls-tls created\nclusterissuer.cert-manager.io/selfsigned created\n",
    );
    let issuer = kubectl_json(&sim, &["get", "clusterissuer", "selfsigned"]);
    assert!(
        issuer["metadata"].get("namespace").is_none(),
        "cluster-scoped: {issuer}"
    );
}

#[test]
fn files_directories_json_and_lists_are_read_in_order() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-b}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"apiVersion": "v1", "kind": "List", "items": [
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-a1"}},
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-a2"}}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let single = dir.path().join("single.yml.txt");
    std::fs::write(
        &single,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: single}\n",
    )
    .unwrap();
    let mut c = sim.cmd("kapply");
    c.arg("-f")
        .arg(dir.path())
        .arg("-f")
        .arg(&single)
        .args(["-f", "-"]);
    c.run_with("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: piped}\n")
        .success()
        .stdout_is(
            "configmap/from-a1 created\nconfigmap/from-a2 created\nconfigmap/from-b created\n\
             configmap/single created\nconfigmap/piped created\n",
        );
}

#[test]
fn secret_data_is_masked_when_output_goes_to_a_terminal() {
    let sim = Sim::start(&[]);
    let stack = sim.dir.path().join("polls.yaml");
    std::fs::write(&stack, POLLS).unwrap();
    let kapply = bin("kapply");
    let on_terminal = |flags: &str| {
        // script(1) gives kapply a pseudo-terminal for stdout.
        let line = format!(
            "{} -o yaml {flags} -f {}",
            kapply.display(),
            stack.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("KUBECONFIG", &sim.kubeconfig)
            .run();
        out.success();
        out
    };
    // What the terminal showed (stdout and stderr, on script's stdout) holds uids.
    let shown = on_terminal("");
    shown
        .stdout_has("DATABASE_PASSWORD: \"<redacted>\"")
        .stdout_has("DJANGO_LOGLEVEL: info");
    for secret in SECRETS {
        shown.stdout_lacks(secret);
    }
    on_terminal("--show-secrets").stdout_has("czNjcjN0LXBvbGxzLXB3");
}

#[test]
fn request_timeouts_are_retried_then_reported() {
    let sim = Sim::start(&["--faults", "latency:2s"]);
    let out = kapply(
        &sim,
        &["--request-timeout", "200ms", "--retry-for", "1s"],
        POLLS,
    );
    let err = out.code(1).stderr();
    // Told once, as an outage, not once per retry.
    let notices = err.matches(": no answer from the server ").count();
    assert_eq!(notices, 1, "{err}");
    out.stdout_empty()
        .stderr_has("(timed out); retrying until it answers")
        .stderr_lacks("; retry ")
        .stderr_has("failed: timed out (gave up after retrying for 1.0s)")
        .no_secrets(SECRETS);
}

#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    let sim = Sim::start(&[]);
    let mut child = sim
        .cmd("kapply")
        .args(["-o", "yaml"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before kapply writes anything, as with `| head -0`.
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, POLLS.as_bytes()).unwrap();
    drop(stdin);
    Run::from(child.wait_with_output().unwrap())
        .code(141)
        .stderr_lacks("panicked")
        .stderr_lacks("Broken pipe")
        .no_secrets(SECRETS);
}

/// Server warnings reach the user as kubectl prints them, each once: here Pod Security
/// admission's for a Deployment in a namespace that warns at the restricted level.
#[test]
fn server_warnings_are_printed_once_as_kubectl_prints_them() {
    let sim = Sim::start(&[]);
    sim.apply_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: strict\n  labels:\n    \
         pod-security.kubernetes.io/warn: restricted\n",
    );
    let out = kapply(&sim, &["-n", "strict"], POLLS);
    // The warning, once, and nothing else.
    out.code(0).stderr_is(
        "Warning: would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
         (container \"polls\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"polls\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"polls\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"polls\" must set securityContext.seccompProfile.type to \
         \"RuntimeDefault\" or \"Localhost\")\n",
    );
    let err = out.stderr();
    // kubectl says the same for the same object.
    let mut c = sim.kubectl();
    c.args([
        "apply",
        "--server-side",
        "--force-conflicts",
        "-n",
        "strict",
        "-f",
        "-",
    ]);
    let theirs = run_with_stdin(c, POLLS.as_bytes());
    let line = err.lines().find(|l| l.starts_with("Warning: ")).unwrap();
    assert!(stderr(&theirs).contains(line), "{}", stderr(&theirs));
}

/// `-R` reads nested directories, `-l` keeps the objects whose labels match, `-o name`
/// prints `kind.group/name` lines: all as kubectl does, checked without a cluster.
#[test]
fn recursive_selector_and_name_output() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("app/config");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(
        dir.path().join("app/deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {tier: web}}\n",
    )
    .unwrap();
    std::fs::write(
        nested.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, labels: {tier: db}}\n",
    )
    .unwrap();
    let root = dir.path().to_str().unwrap();
    let run = |args: &[&str]| cmd("kapply").args(args).run();
    // A nested directory without -R.
    run(&["--dry-run=client", "-o", "name", "-f", root])
        .code(2)
        .stderr_is(&format!("kapply: no objects in the input ({root})\n"));
    run(&["--dry-run=client", "-o", "name", "-R", "-f", root])
        .stdout_is("configmap/cfg\ndeployment.apps/web\n");
    run(&[
        "--dry-run=client",
        "-o",
        "name",
        "-R",
        "-f",
        root,
        "-l",
        "tier in (db)",
    ])
    .stdout_is("configmap/cfg\n");
    // As kubectl's "no objects passed to apply": exit 1, not bad input.
    run(&["--dry-run=client", "-R", "-f", root, "-l", "tier=none"])
        .code(1)
        .stderr_is(
            "kapply: no objects passed to apply: none in the input match the selector \"tier=none\"\n",
        );
}

/// `-f URL`: plain http is read; https verifies the certificate as usual (kubesim's own
/// CA is not trusted by the system, so its URL is refused, nothing applied).
#[test]
fn manifests_are_read_from_urls_with_certificates_verified() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let body =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-url}\ndata: {MODE: '0755'}\n";
        write!(
            &stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/cm.yaml");
    cmd("kapply")
        .args(["--dry-run=client", "-o", "name", "-f", &url])
        .run()
        .stdout_is("configmap/from-url\n");
    server.join().unwrap();

    let sim = Sim::start(&[]);
    let kubeconfig = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .trim()
        .to_owned();
    let out = cmd("kapply")
        .args(["--dry-run=client", "-f", &format!("{server}/api")])
        .run();
    out.code(2).stderr_is(&format!(
        "kapply: {server}/api: cannot read: cannot connect: invalid peer certificate: UnknownIssuer\n"
    ));
}

/// A plain-http server on 127.0.0.1 for `-f URL`, answering each request (one a
/// connection) with what `answer` makes of its request line (`GET /x HTTP/1.1`); the
/// request lines it was sent, in order.
struct HttpServer {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpServer {
    fn start(answer: impl Fn(&str) -> String + Send + 'static) -> HttpServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let log = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let request = request.trim_end().to_owned();
                let answer = answer(&request);
                log.lock().unwrap().push(request);
                let _ = (&stream).write_all(answer.as_bytes());
            }
        });
        HttpServer { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

const URL_MANIFEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-url}\n";

fn http_answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// kapply as a user runs it on a URL, with no proxy but the `env` given.
fn kapply_url(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = cmd("kapply");
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "REQUEST_METHOD",
    ] {
        c.env_remove(name);
    }
    c.envs(env.iter().copied())
        .args(["--timeout", "20s"])
        .args(args);
    c.run()
}

/// Redirects are followed as kubectl's Go client follows them (GitHub's raw links
/// answer 302): a chain of 9, not a 10th.
#[test]
fn urls_are_read_through_redirects_as_kubectl_follows_them() {
    let server = HttpServer::start(|request| {
        let target = request.split(' ').nth(1).unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        let found = |to: &str| http_answer("302 Found", &format!("Location: {to}\r\n"), "");
        if path == "/moved" {
            found("/stack/cm.yaml")
        } else if path == "/stack/cm.yaml" || path == "/hops/0" {
            http_answer("200 OK", "", URL_MANIFEST)
        } else if let Some(n) = path.strip_prefix("/hops/") {
            found(&format!("/hops/{}", n.parse::<u32>().unwrap() - 1))
        } else if path == "/loop" {
            found("/loop?token=signed")
        } else {
            http_answer("404 Not Found", "", "")
        }
    });
    let moved = server.url("/moved");
    kapply_url(&[], &["--dry-run=client", "-o", "name", "-f", &moved])
        .code(0)
        .stderr_empty();
    kapply_url(&[], &["--dry-run=client", "-f", &moved])
        .code(0)
        .stdout_is("configmap/from-url created (dry run)\n");
    assert_eq!(
        server.requests()[..2],
        ["GET /moved HTTP/1.1", "GET /stack/cm.yaml HTTP/1.1"]
    );

    let hops = server.url("/hops/9");
    kapply_url(&[], &["--dry-run=client", "-o", "name", "-f", &hops])
        .code(0)
        .stdout_is("configmap/from-url\n");

    let looping = server.url("/loop");
    let before = server.requests().len();
    kapply_url(&[], &["--dry-run=client", "-f", &looping])
        .code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: {looping}: cannot read: stopped after 10 redirects (the last to {})\n",
            server.url("/loop")
        ));
    assert_eq!(server.requests().len() - before, 10);
}

/// An answer other than 200 OK is refused in kubectl's words, nothing applied.
#[test]
fn a_url_answered_with_an_error_status_is_refused_as_kubectl_words_it() {
    let server = HttpServer::start(|_| http_answer("404 Not Found", "", "404: Not Found"));
    let url = server.url("/missing.yaml");
    kapply_url(&[], &["-f", &url])
        .code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: unable to read URL \"{url}\", server reported 404 Not Found, status code=404\n"
        ));
}

/// HTTP_PROXY, HTTPS_PROXY and NO_PROXY as kubectl (Go's net/http) takes them: a URL is
/// read through the proxy, except for the hosts of NO_PROXY and loopback addresses.
#[test]
fn urls_are_read_through_the_proxy_of_the_environment() {
    let proxy = HttpServer::start(|request| {
        if request.starts_with("CONNECT ") {
            http_answer("403 Forbidden", "", "")
        } else {
            http_answer("200 OK", "", URL_MANIFEST)
        }
    });
    // As people write it, without a scheme: http.
    let via = format!("127.0.0.1:{}", proxy.port);
    // A name no resolver knows: only the proxy can answer for it.
    let url = "http://manifests.invalid/stack/cm.yaml";
    kapply_url(
        &[("HTTP_PROXY", &via)],
        &["--dry-run=client", "-o", "name", "-f", url],
    )
    .code(0)
    .stdout_is("configmap/from-url\n");
    assert_eq!(proxy.requests(), [format!("GET {url} HTTP/1.1")]);

    // https goes through HTTPS_PROXY's tunnel (which this proxy refuses).
    kapply_url(
        &[("https_proxy", &format!("http://{via}"))],
        &[
            "--dry-run=client",
            "-f",
            "https://manifests.invalid/cm.yaml",
        ],
    )
    .code(2)
    .stdout_empty()
    .stderr_is("kapply: https://manifests.invalid/cm.yaml: cannot read: cannot connect: tunnel error: unsuccessful\n");
    assert_eq!(
        proxy.requests()[1..],
        ["CONNECT manifests.invalid:443 HTTP/1.1"]
    );

    // NO_PROXY: straight to the host, whose name does not resolve.
    kapply_url(
        &[("HTTP_PROXY", &via), ("NO_PROXY", "example.com, .invalid")],
        &["--dry-run=client", "-f", url],
    )
    .code(2)
    .stdout_empty()
    // The resolver's own words follow: they differ from system to system.
    .stderr_has(&format!("kapply: {url}: cannot read: cannot connect"));
    assert_eq!(proxy.requests().len(), 2);

    // A loopback address never goes through a proxy, as in kubectl.
    let server = HttpServer::start(|_| http_answer("200 OK", "", URL_MANIFEST));
    let local = server.url("/cm.yaml");
    kapply_url(
        &[("HTTP_PROXY", &via)],
        &["--dry-run=client", "-o", "name", "-f", &local],
    )
    .code(0)
    .stdout_is("configmap/from-url\n");
    assert_eq!(server.requests(), ["GET /cm.yaml HTTP/1.1"]);
    assert_eq!(proxy.requests().len(), 2);
}

// ---- deadlines, outages, throttling storms, interrupts ------------------------------

/// The simulator's address as its kubeconfig has it (`https://127.0.0.1:PORT`).
fn server(sim: &Sim) -> String {
    let kubeconfig = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server in the kubeconfig")
        .trim()
        .to_owned()
}

/// kapply's lines for [`configmaps`]`(n)`: each ConfigMap `done` (`created`), in input order.
fn configmap_lines(n: usize, done: &str) -> String {
    (0..n)
        .map(|i| format!("configmap/cm-{i} {done}\n"))
        .collect()
}

/// `n` ConfigMaps, one document each.
fn configmaps(n: usize) -> String {
    (0..n)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{NUM: \"{i}\"}}\n"))
        .collect()
}

/// kapply with `--timeout 1s` against `fault`: exit 124 by itself, whatever the server
/// does (how soon after the second: bench/deadlines.sh).
fn assert_bounded_by_timeout(fault: &str) {
    let sim = Sim::start(&["--faults", fault]);
    let mut c = sim.cmd("kapply");
    c.args(["--timeout", "1s"]);
    run_bounded_with(&mut c, POLLS)
        .context(fault)
        .code(124)
        .stderr_is(&format!(
            "kapply: discovery of networking.k8s.io/v1 at {}/: not done when --timeout ran out; nothing was applied\n",
            server(&sim)
        ));
}

#[test]
fn timeout_bounds_a_server_that_accepts_and_never_answers() {
    assert_bounded_by_timeout("hang");
}

#[test]
fn timeout_bounds_a_server_that_trickles_its_answers() {
    assert_bounded_by_timeout("trickle:200ms");
}

/// kapply `args` with `--timeout TIMEOUT` on `stdin`-less input against a simulator:
/// exit 124 by itself, not when the server answers (how soon after the timeout:
/// bench/deadlines.sh).
fn assert_ends_by_timeout(sim: &Sim, args: &[&str], timeout: &str) -> Run {
    let mut c = sim.cmd("kapply");
    c.args(args).args(["--timeout", timeout]);
    let out = run_bounded(&mut c).context(format!("kubesim log:\n{}", sim.log()));
    out.code(124);
    out
}

#[test]
fn wait_and_its_diagnosis_end_by_timeout_on_a_frozen_server() {
    // Applied and waited for; the server freezes for 15 s from 1.5 s in (never ready:
    // its pods never start), so the wait times out with the server frozen, and the
    // diagnosis of why asks it.
    let sim = Sim::start(&["--deploy-delay", "1h", "--faults", "freeze:15s+1500ms"]);
    let file = sim.dir.path().join("deploy.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  \
         selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    \
         spec: {containers: [{name: web, image: nginx}]}\n",
    )
    .unwrap();
    // The diagnosis holds how long it waited: its lines, not the whole of it.
    assert_ends_by_timeout(&sim, &["-f", file.to_str().unwrap(), "--wait"], "3s")
        .stderr_has("deployment.apps/web: not ready")
        .stderr_has("timed out waiting: 1 of 1 object not ready");
}

#[test]
fn delete_all_ends_by_timeout_on_a_server_that_accepts_and_never_answers() {
    let sim = Sim::start(&["--faults", "hang"]);
    assert_ends_by_timeout(&sim, &["--applyset", "polls", "--delete-all"], "1s")
        .stderr_is("kapply: --applyset polls: discovery of v1: not done when --timeout ran out\n");
}

#[test]
fn a_url_that_never_answers_is_read_within_timeout() {
    let url = format!("http://127.0.0.1:{}/stack.yaml", silent_listener());
    let mut c = cmd("kapply");
    c.args(["--dry-run=client", "--timeout", "1s", "-f", &url]);
    run_bounded(&mut c).code(124).stderr_is(&format!(
        "kapply: {url}: cannot read: no answer before --timeout ran out; nothing was applied\n"
    ));
}

#[test]
fn three_hundred_objects_ride_out_a_throttling_storm() {
    // Every request of kapply is answered 429 with Retry-After: 1 for 2 s.
    let sim = Sim::start(&["--faults", "storm:2s"]);
    kapply_ok(&sim, &[], &configmaps(300)).stdout_is(&configmap_lines(300, "created"));
    assert!(answered(&sim, "429") > 0, "{}", sim.log());
}

#[test]
fn a_storm_longer_than_a_count_of_retries_is_ridden_out_by_the_time_budget() {
    // 429 for 6 s: five retries a second apart (a budget by count) give up inside it;
    // the default budget of time does not.
    let sim = Sim::start(&["--faults", "storm:6s"]);
    kapply_ok(&sim, &[], &configmaps(50)).stdout_is(&configmap_lines(50, "created"));
    assert!(answered(&sim, "429") > 0, "{}", sim.log());
}

#[test]
fn three_hundred_objects_ride_out_an_outage_within_the_retry_budget() {
    // Writes take 20 ms each (a real server's order), so the outage that starts 300 ms
    // after kapply's first request always falls in the middle of the 300 writes. A 2 s
    // outage and a 6 s budget stand for a 10 s one and the default 30 s.
    let sim = Sim::start(&["--faults", "down:2s+300ms", "--latency", "write=20ms"]);
    let out = kapply_ok(&sim, &["--retry-for", "6s"], &configmaps(300));
    out.stdout_is(&configmap_lines(300, "created"));
    assert!(answered(&sim, "reset") > 0, "{}", sim.log());
    assert_outage_told_once(&out);
}

#[test]
fn a_restarted_server_is_ridden_out_and_told_in_two_lines() {
    // The API server is killed 300 ms after kapply's first request (connections reset,
    // then refused) and back 1.5 s later on the same port: after the first answer a
    // refusal is an outage to wait out, not a wrong address.
    let sim = Sim::start(&[
        "--faults",
        "restart:1500ms+300ms",
        "--latency",
        "write=20ms",
    ]);
    let out = kapply_ok(&sim, &[], &configmaps(300));
    out.stdout_is(&configmap_lines(300, "created"));
    assert!(
        sim.log().contains("kubesim: restart: listening again"),
        "{}",
        sim.log()
    );
    assert_outage_told_once(&out);
}

/// Starts kapply on `stdin`, sends it `signal` once the simulator has answered five of
/// its writes (in the middle of the 300: each takes 50 ms), and returns its output.
fn interrupted(sim: &Sim, signal: &str, stdin: &str) -> Run {
    let running = Background::start_with(sim.cmd("kapply"), stdin);
    sim.await_log_count("PATCH /api/v1/namespaces/default/configmaps/cm-", 5);
    running.signal(signal);
    running.finish()
}

#[test]
fn sigint_prints_every_applied_object_and_what_was_not_then_exits_130() {
    let sim = Sim::start(&["--faults", "latency:50ms"]);
    let out = interrupted(&sim, "-INT", &configmaps(300));
    let err = out.code(130).stderr();
    let printed: std::collections::BTreeSet<String> = stdout(&out)
        .lines()
        .map(|l| l.strip_suffix(" created").expect(l).to_owned())
        .collect();
    let live: std::collections::BTreeSet<String> = sim
        .kubectl_ok(&["get", "configmaps", "-o", "name"])
        .lines()
        .filter(|l| l.starts_with("configmap/cm-"))
        .map(String::from)
        .collect();
    assert!(!printed.is_empty() && printed.len() < 300, "{err}");
    assert_eq!(printed, live, "{err}");
    out.stderr_has(&format!(
        "kapply: interrupted by SIGINT: {} of 300 objects applied; not applied: ",
        printed.len()
    ));
}

#[test]
fn sigterm_exits_143_after_the_same_report() {
    let sim = Sim::start(&["--faults", "latency:50ms"]);
    let out = interrupted(&sim, "-TERM", &configmaps(300));
    let err = out
        .code(143)
        .stderr_has("kapply: interrupted by SIGTERM: ")
        .stderr();
    // How far it got varies: the last line printed, not the whole output.
    assert!(stdout(&out).ends_with(" created\n"), "{err}");
}

#[test]
fn objects_in_a_namespace_that_failed_are_skipped_with_one_reason_each() {
    // The first write, the Namespace's, is refused for good.
    let sim = Sim::start(&["--faults", "403:1@PATCH"]);
    let stream = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: doomed}}\n{}",
        configmaps(3).replace("metadata: {name:", "metadata: {namespace: doomed, name:")
    );
    // One reason each; the summary counts them apart from the failure that caused it.
    kapply(&sim, &[], &stream).code(1).stderr_is(
        "kapply: Namespace/doomed: injected by kubesim\n\
         kapply: ConfigMap/cm-0 in namespace doomed: not applied: its Namespace/doomed of this input could not be created\n\
         kapply: ConfigMap/cm-1 in namespace doomed: not applied: its Namespace/doomed of this input could not be created\n\
         kapply: ConfigMap/cm-2 in namespace doomed: not applied: its Namespace/doomed of this input could not be created\n\
         kapply: 4 of 4 objects failed (1 forbidden, 3 not applied); 0 applied\n",
    );
    let patches = sim
        .tool_requests()
        .into_iter()
        .filter(|l| l.starts_with("PATCH "))
        .count();
    assert_eq!(patches, 1, "{}", sim.log());
}

/// Output thrown away on purpose is not an error: stdout on /dev/null opened read-write,
/// as Python's `subprocess.DEVNULL` and `1<>/dev/null` open it (what Rust's runtime
/// would put in place of a closed stdout, had core's constructor not run first).
#[test]
fn stdout_on_a_read_write_dev_null_is_not_an_error() {
    let sim = Sim::start(&[]);
    let mut c = std::process::Command::new("sh");
    c.args([
        "-c",
        "exec \"$0\" -f - 1<>/dev/null",
        &bin("kapply").to_string_lossy(),
    ])
    .env("KUBECONFIG", &sim.kubeconfig);
    c.run_with(POLLS)
        .code(0)
        .stderr_lacks("stdout is closed")
        .stderr_empty();
}

// ---- kubeconfig as kubectl reads it ------------------------------------------------

/// The simulator's kubeconfig, changed by `edit`, written next to it; its path.
fn edited_kubeconfig(
    sim: &Sim,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let mut config = crate::common::yaml(&text);
    edit(&mut config);
    let path = sim.dir.path().join(name);
    std::fs::write(&path, crate::common::to_yaml(&config)).unwrap();
    path
}

fn kapply_with_kubeconfig(env: &std::ffi::OsStr) -> Run {
    let mut c = cmd("kapply");
    c.env("KUBECONFIG", env);
    c.run_with(POLLS)
}

#[test]
fn a_missing_file_in_kubeconfig_is_skipped_as_kubectl_skips_it() {
    let sim = Sim::start(&[]);
    let mut list = std::ffi::OsString::from("/nonexistent/kubeconfig:");
    list.push(&sim.kubeconfig);
    kapply_with_kubeconfig(&list)
        .code(0)
        .stdout_is(POLLS_CREATED);
}

#[test]
fn a_token_file_ending_in_a_newline_is_trimmed() {
    let sim = Sim::start(&[]);
    let token_file = sim.dir.path().join("token");
    let kubeconfig = edited_kubeconfig(&sim, "with-token-file", |config| {
        let user = &mut config["users"][0]["user"];
        let token = user["token"].as_str().unwrap().to_owned();
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        let map = user.as_object_mut().unwrap();
        map.remove("token");
        map.insert("tokenFile".into(), token_file.to_string_lossy().into());
    });
    kapply_with_kubeconfig(kubeconfig.as_os_str())
        .code(0)
        .stdout_is(POLLS_CREATED);
}

#[test]
fn insecure_skip_tls_verify_warns_and_with_a_ca_is_refused() {
    let sim = Sim::start(&[]);
    let both = edited_kubeconfig(&sim, "both", |config| {
        config["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = true.into();
    });
    kapply_with_kubeconfig(both.as_os_str())
        .code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: kubeconfig: the cluster of {}/ sets both insecure-skip-tls-verify and a certificate authority; \
             kubectl refuses that too (specifying a root certificates file with the insecure flag is not allowed): drop one\n",
            server(&sim)
        ));

    let insecure = edited_kubeconfig(&sim, "insecure", |config| {
        let cluster = config["clusters"][0]["cluster"].as_object_mut().unwrap();
        cluster.remove("certificate-authority-data");
        cluster.insert("insecure-skip-tls-verify".into(), true.into());
    });
    // One warning, from kapply.
    kapply_with_kubeconfig(insecure.as_os_str())
        .code(0)
        .stderr_is(&format!(
            "kapply: warning: TLS verification is off for {}/ (insecure-skip-tls-verify in the kubeconfig): \
             anyone on the way can read and change what is sent\n",
            server(&sim)
        ));
}

#[test]
fn a_write_whose_answer_was_lost_is_read_back_and_reported_applied() {
    // Every PATCH is stored, and its answer lost, until the retry budget runs out.
    let sim = Sim::start(&["--faults", "lost:1000@PATCH"]);
    kapply(&sim, &["--retry-for", "1s"], POLLS)
        .code(0)
        .stdout_is(POLLS_CREATED)
        .stderr_has("the answer to the write was lost (the connection closed without an answer), but the server has the object as applied");
    assert!(answered(&sim, "200 lost") >= 5, "{}", sim.log());
}

// ---- files, kustomize and output exactly as kubectl --------------------------------

/// kubectl reading files without a cluster (`annotate --local`): what it prints, and
/// whether it succeeded.
fn kubectl_local(args: &[&str], output: &str) -> (bool, String) {
    let out = crate::common::kubectl_cmd()
        .args(["annotate", "--local", "kpipe=check", "-o", output])
        .args(args)
        .env("KUBECONFIG", "/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("kubectl is installed");
    (out.status.success(), stdout(&out))
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: v}}\n")
}

/// Symbolic links as kubectl 1.32 takes them: -R does not follow a linked directory (so
/// a tree with `alias -> real` is not read twice and refused as duplicates), a linked
/// file is read, `-f LINK` to a directory is refused and `-f LINK/` reads it; and the
/// files come in kubectl's order (`sub/` before `sub.yaml`).
#[test]
fn symlinks_and_file_order_are_read_as_kubectl_reads_them() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("app/b.yaml", &config_map("b"));
    write("app/real/a.yaml", &config_map("a"));
    write("app/sub/d.yaml", &config_map("d"));
    write("app/sub.yaml", &config_map("e"));
    write("outside/c.yaml", &config_map("c"));
    symlink("real", root.join("alias")).unwrap();
    symlink("../outside/c.yaml", root.join("link.yaml")).unwrap();
    symlink("app", dir.path().join("app-link")).unwrap();
    let at = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    let cases: [Vec<String>; 5] = [
        vec!["-R".into(), "-f".into(), at("app")],
        vec!["-f".into(), at("app")],
        vec!["-R".into(), "-f".into(), at("app-link")],
        vec!["-R".into(), "-f".into(), at("app-link") + "/"],
        vec!["-f".into(), at("app/link.yaml")],
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (kubectl_ok, names) = kubectl_local(&args, "name");
        let out = cmd("kapply")
            .args(["--dry-run=client", "-o", "name"])
            .args(&args)
            .run();
        if kubectl_ok {
            out.success();
            assert_eq!(out.stdout(), names, "{args:?}");
        } else {
            out.code(2)
                .stdout_empty()
                .stderr_has("a symbolic link to a directory");
        }
    }
    let (_, all) = kubectl_local(&["-R", "-f", &at("app")], "name");
    assert_eq!(
        all,
        "configmap/b\nconfigmap/c\nconfigmap/a\nconfigmap/d\nconfigmap/e\n"
    );
}

/// `-k DIR` applies what `kubectl kustomize DIR` renders; it conflicts with -f as in
/// kubectl, and without kubectl or kustomize on PATH kapply says what is missing.
#[test]
fn kustomize_directories_are_rendered_by_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("overlay");
    std::fs::create_dir_all(&k).unwrap();
    std::fs::write(
        k.join("kustomization.yaml"),
        "namePrefix: prod-\nresources: [cm.yaml]\ncommonLabels: {app: polls}\n",
    )
    .unwrap();
    std::fs::write(k.join("cm.yaml"), config_map("polls-config")).unwrap();
    let k = k.to_str().unwrap();
    let rendered = crate::common::kubectl_cmd()
        .args(["kustomize", k])
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    let want = yaml(&String::from_utf8_lossy(&rendered.stdout));
    let out = cmd("kapply")
        .args(["-k", k, "--dry-run=client", "-o", "json"])
        .run();
    out.success();
    let got: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(got, want);
    assert_eq!(got["metadata"]["name"], "prod-polls-config");

    cmd("kapply")
        .args(["-k", k, "-f", "x.yaml", "--dry-run=client"])
        .run()
        .code(2)
        .stdout_empty()
        .stderr_is(
            "error: the argument '--kustomize <DIR>' cannot be used with '--filename <FILE|DIR|URL|->'\n\
             \n\
             Usage: kapply --kustomize <DIR> --dry-run <MODE>\n\
             \n\
             For more information, try '--help'.\n",
        );
    let empty = tempfile::tempdir().unwrap();
    cmd("kapply")
        .args(["-k", k, "--dry-run=client"])
        .env("PATH", empty.path())
        .run()
        .code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: -k {k}: neither kubectl nor kustomize is on PATH: install one of them, \
             or pipe `kustomize build {k}` into kapply\n"
        ));
}

/// `-o yaml` writes multi-line strings as kubectl does (`|` blocks) and args such as
/// `--port=8444` bare: the same text as `kubectl -o yaml` for the same object.
#[test]
fn output_yaml_writes_strings_as_kubectl_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scripts.yaml");
    std::fs::write(&file, SCRIPTS).unwrap();
    let file = file.to_str().unwrap();
    let (ok, theirs) = kubectl_local(&["-f", file], "yaml");
    assert!(ok, "{theirs}");
    let ours = cmd("kapply")
        .args(["--dry-run=client", "-o", "yaml", "-f", file])
        .run();
    ours.success();
    // The data of the ConfigMap, line for line, and the Deployment's args.
    let data = |text: &str| {
        let start = text.find("data:\n").expect("data");
        let end = start + text[start..].find("\nkind:").expect("kind");
        text[start..end].to_owned()
    };
    assert_eq!(data(&ours.stdout()), data(&theirs));
    assert!(
        data(&theirs).contains("  run.sh: |\n    #!/bin/sh\n    echo one\n"),
        "{theirs}"
    );
    for line in ["\n        - --port=8444\n", "\n        - --v=2\n"] {
        assert!(theirs.contains(line), "{theirs}");
        ours.stdout_has(line);
    }
}

/// A ConfigMap holding a script and a Deployment with flags, for the tests of kubectl's
/// output.
const SCRIPTS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: scripts, namespace: default}
data:
  run.sh: |
    #!/bin/sh
    echo one
    echo two
    echo three
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        args: [\"--port=8444\", \"--v=2\"]
";

/// The hunks of a unified diff per object, without the file headers (kubectl's name
/// temporary files), sorted by object.
fn diff_hunks(text: &str) -> Vec<String> {
    let mut objects: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("+++ ") || line.starts_with("diff -u") {
            continue;
        }
        if line.starts_with("--- ") {
            objects.push(String::new());
            continue;
        }
        if let Some(object) = objects.last_mut() {
            object.push_str(line);
            object.push('\n');
        }
    }
    objects.sort();
    objects
}

/// `--diff` shows what `kubectl diff --server-side` shows: a one-line edit of a script
/// in a ConfigMap is a one-line change, flags and the uid are written bare, and
/// resourceVersion is there. `-o name` prints the names on stdout and nothing else, and
/// `-l` matching nothing exits 1, as kubectl does.
#[test]
fn diff_and_output_name_match_kubectl() {
    let sim = Sim::start(&[]);
    kapply_ok(&sim, &["-f", "-"], SCRIPTS);
    let edited = SCRIPTS
        .replace("echo two", "echo 2")
        .replace("--v=2", "--v=3");
    let theirs = run_with_stdin(
        {
            let mut c = sim.kubectl();
            c.args(["diff", "--server-side", "--field-manager=kapply", "-f", "-"]);
            c
        },
        edited.as_bytes(),
    );
    assert_eq!(theirs.status.code(), Some(1), "{}", stderr(&theirs));
    let ours = kapply(&sim, &["--diff", "-f", "-"], &edited);
    ours.code(1);
    assert_eq!(diff_hunks(&ours.stdout()), diff_hunks(&stdout(&theirs)));
    ours.stdout_has("\n-    echo two\n+    echo 2\n")
        .stdout_has("\n-        - --v=2\n+        - --v=3\n")
        .stdout_has("\n   resourceVersion: ");

    let theirs = run_with_stdin(
        {
            let mut c = sim.kubectl();
            c.args(["apply", "--server-side", "--field-manager=kapply"])
                .args(["-o", "name", "-f", "-"]);
            c
        },
        SCRIPTS.as_bytes(),
    );
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    assert!(theirs.stderr.is_empty(), "{}", stderr(&theirs));
    kapply(&sim, &["-o", "name", "-f", "-"], SCRIPTS)
        .success()
        .stderr_empty();
    assert_eq!(
        kapply(&sim, &["-o", "name", "-f", "-"], SCRIPTS).stdout(),
        stdout(&theirs)
    );

    let theirs = run_with_stdin(
        {
            let mut c = sim.kubectl();
            c.args(["apply", "--server-side", "-l", "tier=none", "-f", "-"]);
            c
        },
        SCRIPTS.as_bytes(),
    );
    assert_eq!(theirs.status.code(), Some(1), "{}", stderr(&theirs));
    kapply(&sim, &["-l", "tier=none", "-f", "-"], SCRIPTS)
        .code(1)
        .stdout_empty()
        .stderr_is(
            "kapply: no objects passed to apply: none in the input match the selector \"tier=none\"\n",
        );
}

//! The installed kubectl, a client nobody here wrote, against a fresh `kubesim serve`
//! per test: if kubectl accepts the simulator, so do kapply and certwait.

use std::process::{Output, Stdio};

use crate::common::{Run, Sim, condition, yaml};
use serde_json::Value;

/// Every built-in kind kubesim serves, as a manifest stream.
const EVERY_KIND: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: polls
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: polls-config
  namespace: polls
data:
  DEBUG: "True"
  DJANGO_LOGLEVEL: info
---
apiVersion: v1
kind: Secret
metadata:
  name: polls-secret
  namespace: polls
type: Opaque
stringData:
  DATABASE_PASSWORD: s3cr3t
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: polls
  namespace: polls
---
apiVersion: v1
kind: Service
metadata:
  name: polls
  namespace: polls
spec:
  selector:
    app: polls
  ports:
  - port: 80
    targetPort: 8000
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: polls-app
  namespace: polls
  labels:
    app: polls
spec:
  replicas: 2
  selector:
    matchLabels:
      app: polls
  template:
    metadata:
      labels:
        app: polls
    spec:
      containers:
      - name: polls
        image: sammy/sammy-django:latest
        envFrom:
        - secretRef:
            name: polls-secret
        - configMapRef:
            name: polls-config
        ports:
        - containerPort: 8000
          name: gunicorn
---
apiVersion: batch/v1
kind: Job
metadata:
  name: polls-migrate
  namespace: polls
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: sammy/sammy-django:1
        command: ["python", "manage.py", "migrate"]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: polls-ingress
  namespace: polls
spec:
  ingressClassName: nginx
  tls:
  - hosts: ["polls.example.com"]
    secretName: polls-tls
  rules:
  - host: polls.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: polls
            port:
              number: 80
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: polls
  namespace: polls
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: polls-app
  minReplicas: 1
  maxReplicas: 3
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: polls
  namespace: polls
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: polls
---
apiVersion: v1
kind: Event
metadata:
  name: polls.started
  namespace: polls
involvedObject:
  kind: Deployment
  name: polls-app
  namespace: polls
reason: Started
message: deployed by the test
type: Normal
"#;

const CERTIFICATE: &str = r#"
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: polls-tls
  namespace: default
spec:
  secretName: polls-tls
  dnsNames: ["polls.example.com"]
  issuerRef:
    name: no-such-issuer
    kind: ClusterIssuer
"#;

fn write(sim: &Sim, name: &str, text: &str) -> std::path::PathBuf {
    let path = sim.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes `text` to the file `name` and applies it server-side; returns kubectl's output.
fn try_apply_server_side(sim: &Sim, name: &str, text: &str) -> Output {
    let file = write(sim, name, text);
    sim.kubectl_run(&["apply", "--server-side", "-f", file.to_str().unwrap()])
}

/// Writes `text` to the file `name` and applies it server-side; must succeed.
fn apply_server_side(sim: &Sim, name: &str, text: &str) {
    let out = try_apply_server_side(sim, name, text);
    sim.kubectl_stdout(&format!("apply --server-side -f {name}"), &out);
}

/// `kubectl patch certificate polls-tls --subresource=status` with a merge patch.
fn patch_certificate_status(sim: &Sim, patch: &str) {
    sim.kubectl_ok(&[
        "patch",
        "certificate",
        "polls-tls",
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
}

/// Asserts that kubectl exited 1, saying `needle` on stderr (in kubectl's own words
/// around it, not pinned here); the run, for more checks.
#[track_caller]
fn assert_rejected(out: &Output, needle: &str) -> Run {
    let run = Run::from(out.clone());
    run.code(1).stderr_has(needle);
    run
}

/// `kind/name -> resourceVersion` for every object in a file.
fn resource_versions(sim: &Sim, file: &str) -> Vec<(String, String)> {
    let list: Value =
        serde_json::from_str(&sim.kubectl_ok(&["get", "-f", file, "-o", "json"])).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn version_reports_the_server() {
    let sim = Sim::start(&[]);
    let v: Value = serde_json::from_str(&sim.kubectl_ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(v["serverVersion"]["major"], "1");
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.")
    );
}

#[test]
fn api_resources_lists_every_served_kind() {
    let sim = Sim::start(&["--cert-manager"]);
    let out = sim.kubectl_ok(&["api-resources", "-o", "name"]);
    for resource in [
        "namespaces",
        "configmaps",
        "secrets",
        "services",
        "serviceaccounts",
        "events",
        "deployments.apps",
        "jobs.batch",
        "ingresses.networking.k8s.io",
        "horizontalpodautoscalers.autoscaling",
        "poddisruptionbudgets.policy",
        "customresourcedefinitions.apiextensions.k8s.io",
        "certificates.cert-manager.io",
        "certificaterequests.cert-manager.io",
        "issuers.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "orders.acme.cert-manager.io",
        "challenges.acme.cert-manager.io",
    ] {
        assert!(
            out.lines().any(|l| l == resource),
            "{resource} missing from:\n{out}"
        );
    }
}

#[test]
fn server_side_apply_of_every_kind_twice_changes_nothing_the_second_time() {
    // A long deploy delay keeps the simulated controllers from writing status meanwhile.
    let sim = Sim::start(&["--deploy-delay", "1h"]);
    let file = write(&sim, "all.yaml", EVERY_KIND);
    let file = file.to_str().unwrap();
    let first = sim.kubectl_ok(&["apply", "--server-side", "-f", file]);
    assert_eq!(first.lines().count(), 11, "{first}");
    assert!(
        first.lines().all(|l| l.ends_with("serverside-applied")),
        "{first}"
    );
    let before = resource_versions(&sim, file);
    assert_eq!(before.len(), 11);
    sim.kubectl_ok(&["apply", "--server-side", "-f", file]);
    assert_eq!(resource_versions(&sim, file), before);
}

#[test]
fn get_yaml_shows_what_a_cluster_stores() {
    let sim = Sim::start(&["--deploy-delay", "1h"]);
    apply_server_side(&sim, "all.yaml", EVERY_KIND);
    let secret =
        yaml(&sim.kubectl_ok(&["get", "-n", "polls", "secret", "polls-secret", "-o", "yaml"]));
    assert_eq!(secret["data"]["DATABASE_PASSWORD"], "czNjcjN0");
    assert!(secret.get("stringData").is_none());
    let deploy = yaml(&sim.kubectl_ok(&[
        "get",
        "-n",
        "polls",
        "deploy",
        "polls-app",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]));
    assert_eq!(deploy["metadata"]["generation"], 1);
    assert_eq!(deploy["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(deploy["metadata"]["managedFields"][0]["operation"], "Apply");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
        "TCP"
    );
}

#[test]
fn delete_removes_objects_and_namespaces_take_their_objects_along() {
    let sim = Sim::start(&["--deploy-delay", "1h"]);
    apply_server_side(&sim, "all.yaml", EVERY_KIND);
    let out = sim.kubectl_ok(&["delete", "-n", "polls", "configmap", "polls-config"]);
    assert_eq!(out.trim(), "configmap \"polls-config\" deleted");
    let missing = Run::from(sim.kubectl_run(&["get", "-n", "polls", "configmap", "polls-config"]));
    assert!(!missing.status.success(), "{}", missing.stderr());
    missing.stderr_has("NotFound");
    sim.kubectl_ok(&["delete", "namespace", "polls"]);
    let left = sim.kubectl_ok(&["get", "deploy", "-A", "-o", "name"]);
    assert_eq!(left, "");
}

#[test]
fn status_patch_changes_status_only() {
    let sim = Sim::start(&["--cert-manager"]);
    apply_server_side(&sim, "cert.yaml", CERTIFICATE);
    let patch = r#"{"spec":{"secretName":"changed"},"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"done"}]}}"#;
    patch_certificate_status(&sim, patch);
    let cert = sim.get_json("certificate/polls-tls");
    let ready = condition(&cert, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(cert["spec"]["secretName"], "polls-tls");
    assert_eq!(cert["metadata"]["generation"], 1);
}

#[test]
fn wait_sees_a_condition_set_through_the_status_subresource() {
    let sim = Sim::start(&["--cert-manager"]);
    apply_server_side(&sim, "cert.yaml", CERTIFICATE);
    let mut wait = sim.kubectl();
    wait.args([
        "wait",
        "--for=condition=Ready",
        "certificate/polls-tls",
        "--timeout=60s",
    ]);
    let waiting = wait
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let patch = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"issued"}]}}"#;
    patch_certificate_status(&sim, patch);
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(
        sim.kubectl_stdout("wait", &out).trim(),
        "certificate.cert-manager.io/polls-tls condition met"
    );
}

#[test]
fn field_manager_conflict_is_reported_as_a_conflict() {
    let sim = Sim::start(&[]);
    let file = write(
        &sim,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  LEVEL: info\n",
    );
    sim.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=kapply",
        "-f",
        file.to_str().unwrap(),
    ]);
    let other = write(
        &sim,
        "other.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  LEVEL: debug\n",
    );
    let out = sim.kubectl_run(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        other.to_str().unwrap(),
    ]);
    assert_rejected(
        &out,
        "Apply failed with 1 conflict: conflict with \"kapply\": .data.LEVEL",
    );
    sim.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        other.to_str().unwrap(),
    ]);
    let level = sim.kubectl_ok(&["get", "cm", "c", "-o", "jsonpath={.data.LEVEL}"]);
    assert_eq!(level, "debug");
}

#[test]
fn a_crd_applied_by_a_client_is_served() {
    let sim = Sim::start(&[]);
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  size: 3
"#;
    let file = write(&sim, "crd.yaml", crd);
    let file = file.to_str().unwrap();
    // kubectl resolves every kind before applying, so the CRD goes first on its own.
    let crd_only = write(&sim, "crd-only.yaml", crd.split("---").next().unwrap());
    sim.kubectl_ok(&["apply", "--server-side", "-f", crd_only.to_str().unwrap()]);
    sim.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
    ]);
    sim.kubectl_ok(&["apply", "--server-side", "-f", file]);
    let size = sim.kubectl_ok(&["get", "widget", "w", "-o", "jsonpath={.spec.size}"]);
    assert_eq!(size, "3");
}

#[test]
fn server_side_validation_errors_come_back_as_the_real_server_words_them() {
    let sim = Sim::start(&[]);
    let out = try_apply_server_side(
        &sim,
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    );
    assert_rejected(
        &out,
        "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"",
    );
}

#[test]
fn bad_labels_and_a_misnamed_crd_are_invalid() {
    let sim = Sim::start(&[]);
    let out = try_apply_server_side(
        &sim,
        "labels.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: labelled\n  labels: {\"bad key\": ok, app: -polls}\n",
    );
    // kubectl lists the causes of a 422 one per line.
    assert_rejected(&out, "The ConfigMap \"labelled\" is invalid: \n")
        .stderr_has("\n* metadata.labels: Invalid value: \"-polls\": a valid label must be an empty string or consist of alphanumeric characters")
        .stderr_has("\n* metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters");
    let crd = write(
        &sim,
        "crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widget.example.com}\n\
         spec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n\
         \x20 versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n",
    );
    let out = sim.kubectl_run(&["create", "-f", crd.to_str().unwrap()]);
    assert_rejected(
        &out,
        "The CustomResourceDefinition \"widget.example.com\" is invalid: metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group",
    );
}

#[test]
fn get_pages_through_long_lists() {
    let sim = Sim::start(&[]);
    let many: String = (0..7)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\n"))
        .collect();
    let file = write(&sim, "many.yaml", &many);
    sim.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    for output in ["name", "wide"] {
        let out = sim.kubectl_ok(&["get", "configmaps", "--chunk-size=3", "-o", output]);
        assert_eq!(
            (0..7).filter(|i| out.contains(&format!("cm-{i}"))).count(),
            7,
            "-o {output}:\n{out}"
        );
    }
    let pages = sim
        .log()
        .matches("GET /api/v1/namespaces/default/configmaps -> 200 [kubectl")
        .count();
    assert_eq!(pages, 6, "three pages per get:\n{}", sim.log());
}

#[test]
fn get_prints_the_columns_a_cluster_prints() {
    let sim = Sim::start(&["--deploy-delay", "1h", "--cert-manager"]);
    apply_server_side(&sim, "all.yaml", EVERY_KIND);
    let deploys = sim.kubectl_ok(&["get", "-n", "polls", "deployments"]);
    let header: Vec<&str> = deploys.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{deploys}"
    );
    assert!(
        deploys
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("polls-app   0/2 "),
        "{deploys}"
    );
    apply_server_side(&sim, "cert.yaml", CERTIFICATE);
    let certs = sim.kubectl_ok(&["get", "certificates"]);
    let header: Vec<&str> = certs.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "SECRET", "AGE"], "{certs}");
}

#[test]
fn scale_writes_replicas_through_the_scale_subresource() {
    let sim = Sim::start(&["--deploy-delay", "1h"]);
    apply_server_side(&sim, "all.yaml", EVERY_KIND);
    sim.kubectl_ok(&[
        "scale",
        "-n",
        "polls",
        "deployment/polls-app",
        "--replicas=3",
    ]);
    let got = sim.kubectl_ok(&[
        "get",
        "-n",
        "polls",
        "deploy",
        "polls-app",
        "-o",
        "jsonpath={.spec.replicas} {.metadata.generation}",
    ]);
    assert_eq!(got, "3 2");
}

#[test]
fn wait_for_a_certificate_the_simulated_cert_manager_issues() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "1s"]);
    let ingress = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: polls
  annotations:
    cert-manager.io/cluster-issuer: letsencrypt-staging
spec:
  ingressClassName: nginx
  tls:
  - hosts: [polls.example.com]
    secretName: polls-tls
  rules:
  - host: polls.example.com
"#;
    apply_server_side(&sim, "ingress.yaml", ingress);
    // ingress-shim creates the Certificate a moment later: wait for it to exist first.
    sim.kubectl_ok(&[
        "wait",
        "--for=create",
        "certificate/polls-tls",
        "--timeout=60s",
    ]);
    let out = sim.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "certificate/polls-tls",
        "--timeout=60s",
    ]);
    assert_eq!(
        out.trim(),
        "certificate.cert-manager.io/polls-tls condition met"
    );
    let secret = sim.kubectl_ok(&["get", "secret", "polls-tls", "-o", "jsonpath={.type}"]);
    assert_eq!(secret, "kubernetes.io/tls");
}

#[test]
fn kubectl_create_secret_from_env_file_as_the_tutorial_does() {
    // kubectl's typed create commands send protobuf, not JSON.
    let sim = Sim::start(&[]);
    let env = write(
        &sim,
        "poll-secrets",
        "DJANGO_SECRET_KEY=abc\nDATABASE_PASSWORD=s3cr3t\n",
    );
    let from = format!("--from-env-file={}", env.display());
    sim.kubectl_ok(&["create", "secret", "generic", "polls-secret", &from]);
    let secret = sim.get_json("secret/polls-secret");
    assert_eq!(secret["data"]["DATABASE_PASSWORD"], "czNjcjN0");
    assert_eq!(secret["type"], "Opaque");
    let out =
        Run::from(sim.kubectl_run(&["create", "ingress", "i", "--rule=a.example.com/=svc:80"]));
    assert!(!out.status.success(), "protobuf Ingresses are not decoded");
    out.stderr_has("unknown format");
}

#[test]
fn kubectl_create_deployment_service_and_job() {
    // Typed create commands send protobuf bodies.
    let sim = Sim::start(&["--deploy-delay", "100ms"]);
    for args in [
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--port=8080",
            "--replicas=2",
        ][..],
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        &[
            "create",
            "job",
            "hello",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ],
    ] {
        sim.kubectl_ok(args);
    }
    let deployment = sim.get_json("deployment/web");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    let service = sim.get_json("service/web");
    assert_eq!(
        service["spec"]["ports"][0],
        serde_json::json!({"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080})
    );
    assert_eq!(service["spec"]["selector"]["app"], "web");
    let job = sim.get_json("job/hello");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    sim.kubectl_ok(&[
        "wait",
        "--for=condition=Complete",
        "job/hello",
        "--timeout=60s",
    ]);
    sim.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
}

#[test]
fn unknown_fields_are_rejected_by_default_and_dropped_without_validation() {
    let sim = Sim::start(&["--deploy-delay", "1h"]);
    let typo = EVERY_KIND.replace("  replicas: 2\n", "  replicas: 2\n  replica: 3\n");
    let file = write(&sim, "typo.yaml", &typo);
    let file = file.to_str().unwrap();
    let out = sim.kubectl_run(&["apply", "--server-side", "-f", file]);
    assert_rejected(&out, ".spec.replica: field not declared in schema");
    sim.kubectl_ok(&["apply", "--server-side", "--validate=false", "-f", file]);
    let spec: Value = serde_json::from_str(&sim.kubectl_ok(&[
        "get",
        "-n",
        "polls",
        "deploy",
        "polls-app",
        "-o",
        "jsonpath={.spec}",
    ]))
    .unwrap();
    assert_eq!(spec["replicas"], 2);
    assert!(spec.get("replica").is_none(), "{spec}");
}

#[test]
fn an_immutable_config_map_or_secret_keeps_its_data_as_the_real_server_does() {
    let sim = Sim::start(&[]);
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: polls-config-0a1b2c3d4e\n\
                  immutable: true\ndata:\n  DATABASE_HOST: db.example.com\n";
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: polls-secret-0a1b2c3d4e\n\
                  immutable: true\nstringData:\n  DATABASE_PASSWORD: s3cr3t-value\n";
    apply_server_side(&sim, "config.yaml", &format!("{config}---\n{secret}"));

    // Its labels may change, its data may not: 422 Invalid, in the real server's words.
    apply_server_side(
        &sim,
        "labelled.yaml",
        &config.replace("metadata:\n", "metadata:\n  labels: {release: two}\n"),
    );
    let out = sim
        .kubectl()
        .args(["apply", "--server-side", "-v=6", "-f"])
        .arg(write(
            &sim,
            "changed.yaml",
            &config.replace("db.example.com", "bad.example.com"),
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_rejected(
        &out,
        "ConfigMap \"polls-config-0a1b2c3d4e\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
    )
    .stderr_has("422 Unprocessable Entity");
    let out = try_apply_server_side(
        &sim,
        "mutable.yaml",
        &config.replace("immutable: true\n", "immutable: false\n"),
    );
    assert_rejected(
        &out,
        "ConfigMap \"polls-config-0a1b2c3d4e\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set",
    );
    let out = try_apply_server_side(
        &sim,
        "secret.yaml",
        &secret.replace("s3cr3t-value", "an0ther-value"),
    );
    assert_rejected(
        &out,
        "Secret \"polls-secret-0a1b2c3d4e\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
    )
    .stderr_lacks("an0ther-value");

    let live = sim.kubectl_ok(&[
        "get",
        "configmap",
        "polls-config-0a1b2c3d4e",
        "-o",
        "jsonpath={.data.DATABASE_HOST} {.immutable} {.metadata.labels.release}",
    ]);
    assert_eq!(live, "db.example.com true two");
}

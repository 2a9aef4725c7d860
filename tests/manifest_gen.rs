//! manifest-gen as a user runs it: flags in, YAML stream out, checked against the
//! tutorial's manifests, kubernetes-validate, PyYAML (YAML 1.1) and kubectl.

use crate::common::*;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const IMAGE: &str = "your_dockerhub_username/app_repo_name:latest";
const HOST: &str = "your-domain.com";
/// A value of the test Secret (tests/golden/manifest-gen/polls-config.yaml).
const SECRET_VALUE: &str = "kpipe-test-django-secret-key-0123456789";

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/manifest-gen")
        .join(name)
}

fn golden_text(name: &str) -> String {
    std::fs::read_to_string(golden_path(name)).unwrap()
}

fn golden(name: &str) -> Value {
    let docs = parse_stream(&golden_text(name));
    assert_eq!(docs.len(), 1, "{name}");
    docs.into_iter().next().unwrap()
}

/// The documents of a stream; every document manifest-gen writes starts with a `---` line.
fn parse_stream(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line == "---" {
            let value = crate::common::yaml(&current);
            if !value.is_null() {
                docs.push(value);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// manifest-gen with no input stream (stdin is /dev/null, as in a pipeline with nothing before it).
fn gen_args(args: &[&str]) -> Run {
    cmd("manifest-gen").args(args).run()
}

fn gen_stream(args: &[&str], stdin: &str) -> Run {
    cmd("manifest-gen").args(args).run_with(stdin)
}

/// manifest-gen `--image IMAGE` reading `stream` must refuse it: exit 2, nothing on
/// stdout. Returns the run, for its stderr.
#[track_caller]
fn refused_stream(stream: &str) -> Run {
    refused_stream_with(&[], stream)
}

/// A generated stream's objects, with `--image IMAGE` added to `args`; every stream a
/// test looks at must also be valid for Kubernetes.
fn objects(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--image", IMAGE];
    all.extend_from_slice(args);
    valid_objects(&all, gen_args(&all).success().stdout())
}

fn objects_from(args: &[&str], stdin: &str) -> Vec<Value> {
    let mut all = vec!["--image", IMAGE];
    all.extend_from_slice(args);
    valid_objects(&all, gen_stream(&all, stdin).success().stdout())
}

fn valid_objects(args: &[&str], text: String) -> Vec<Value> {
    let (ok, problems) = python_worker("validate", &text);
    assert!(
        ok,
        "{args:?}: not valid for Kubernetes (or kubernetes-validate is missing: run `make test-deps`, \
         .venv/bin first on PATH):\n{problems}"
    );
    parse_stream(&text)
}

/// One Python process for the whole test run, serving requests one JSON line each:
/// `validate` checks a stream with kubernetes-validate's Python API, strict, for
/// Kubernetes 1.29 and the newest version it ships (an unknown kind or apiVersion is a
/// failure too: its CLI only warns about those); `yaml11` reads a stream with PyYAML
/// (YAML 1.1, as Kubernetes does) into JSON. Each answer is `{"ok": bool, "out": text}`.
/// Started once, it spares every check the start-up and imports (most of its cost).
const PYTHON_WORKER: &str = r#"
import sys, json, functools, yaml, kubernetes_validate as kv, kubernetes_validate.utils
# Each check reads its schema and the version's definitions (a megabyte of JSON) from
# disk again; once is enough for a worker that does them all.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents)
versions = ["1.29.0", kv.latest_version()]
def validate(text):
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    problems = []
    for version in versions:
        for doc in docs:
            try:
                kv.validate(doc, version, strict=True)
            except Exception as e:
                why = getattr(e, "message", "") or str(e)
                problems.append("%s: %s/%s: %s %s" % (version, doc.get("kind"), doc.get("metadata", {}).get("name"), type(e).__name__, why))
    return bool(docs) and not problems, "\n".join(problems)
def yaml11(text):
    return True, json.dumps([d for d in yaml.safe_load_all(text) if d is not None])
for line in sys.stdin:
    request = json.loads(line)
    try:
        ok, out = {"validate": validate, "yaml11": yaml11}[request["op"]](request["text"])
    except Exception as e:
        ok, out = False, "%s: %s" % (type(e).__name__, e)
    print(json.dumps({"ok": ok, "out": out}), flush=True)
"#;

/// Asks the shared [`PYTHON_WORKER`] to do `op` with `text`: whether it succeeded, and
/// what it said.
fn python_worker(op: &str, text: &str) -> (bool, String) {
    use std::io::{BufRead, BufReader, Read, Seek, Write};
    use std::process::{Child, ChildStdout};
    use std::sync::{Mutex, OnceLock};
    type Worker = (Child, BufReader<ChildStdout>, std::fs::File);
    static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        // Its stderr goes to a file (a pipe nobody reads could fill up and stop it).
        let err = tempfile::tempfile().expect("a temporary file");
        let mut child = python3()
            .args(["-c", PYTHON_WORKER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err.try_clone().expect("a second handle"))
            .spawn()
            .expect("python3 must be installed");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Mutex::new((child, out, err))
    });
    // A test that failed while holding it left the worker as it was: still usable.
    let mut guard = worker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (child, out, err) = &mut *guard;
    let request = json!({"op": op, "text": text}).to_string() + "\n";
    let mut answer = String::new();
    let asked = child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(request.as_bytes())
        .is_ok();
    if !asked || out.read_line(&mut answer).unwrap_or(0) == 0 {
        // It is gone (PyYAML or kubernetes-validate missing): say why.
        let mut why = String::new();
        let _ = child.wait();
        let _ = err.rewind();
        let _ = err.read_to_string(&mut why);
        return (false, format!("the Python worker stopped: {why}"));
    }
    let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
    (
        answer["ok"] == true,
        answer["out"].as_str().unwrap_or_default().to_owned(),
    )
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:#?}"))
}

fn kinds(objects: &[Value]) -> Vec<&str> {
    objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect()
}

/// Every field the tutorial sets has the tutorial's value; lists have the same length.
fn assert_fields_equal(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let child = format!("{path}.{key}");
                let got = have
                    .get(key)
                    .unwrap_or_else(|| panic!("{child} is missing"));
                assert_fields_equal(value, got, &child);
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            assert_eq!(want.len(), have.len(), "{path}: {have:?}");
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                assert_fields_equal(w, h, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

fn config_stream() -> String {
    golden_text("polls-config.yaml")
}

// ---------------------------------------------------------------- the tutorial's manifests

#[test]
fn defaults_are_the_tutorials_deployment_and_final_service() {
    let objs = objects(&[]);
    assert_eq!(kinds(&objs), ["Deployment", "Service"]);
    assert_fields_equal(
        &golden("polls-deployment.yaml"),
        find(&objs, "Deployment"),
        "Deployment",
    );
    assert_fields_equal(
        &golden("polls-svc-clusterip.yaml"),
        find(&objs, "Service"),
        "Service",
    );
}

#[test]
fn node_port_is_the_tutorials_step_7_service() {
    let objs = objects(&["--service-type", "NodePort"]);
    assert_fields_equal(&golden("polls-svc.yaml"), find(&objs, "Service"), "Service");
}

#[test]
fn host_gives_the_tutorials_step_8_ingress_in_v1() {
    let objs = objects(&["--host", HOST]);
    assert_eq!(kinds(&objs), ["Deployment", "Service", "Ingress"]);
    let ingress = find(&objs, "Ingress");
    assert_fields_equal(&golden("polls-ingress.yaml"), ingress, "Ingress");
    assert_eq!(
        ingress["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .len(),
        1,
        "no deprecated class annotation"
    );

    let prod = objects(&["--host", HOST, "--issuer", "letsencrypt-prod"]);
    assert_eq!(
        find(&prod, "Ingress")["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt-prod"
    );
}

#[test]
fn ingress_options() {
    let objs = objects(&[
        "--host",
        "a.example.com",
        "--host",
        "*.b.example.com",
        "--namespaced-issuer",
        "local",
        "--tls-secret",
        "web-tls",
        "--ingress-class",
        "traefik",
    ]);
    let ingress = find(&objs, "Ingress");
    assert_eq!(
        ingress["metadata"]["annotations"],
        json!({"cert-manager.io/issuer": "local"})
    );
    assert_eq!(ingress["spec"]["ingressClassName"], "traefik");
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["a.example.com", "*.b.example.com"], "secretName": "web-tls"}])
    );
    let hosts: Vec<&Value> = ingress["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["host"])
        .collect();
    assert_eq!(hosts, [&json!("a.example.com"), &json!("*.b.example.com")]);

    let plain = objects(&["--host", HOST, "--no-tls"]);
    let ingress = find(&plain, "Ingress");
    assert!(
        ingress["spec"].get("tls").is_none() && ingress["metadata"].get("annotations").is_none()
    );
    let no_issuer = objects(&["--host", HOST, "--no-issuer"]);
    assert!(
        find(&no_issuer, "Ingress")["metadata"]
            .get("annotations")
            .is_none()
    );
}

// ---------------------------------------------------------------- Django as the tutorial runs it

/// The readiness and liveness probes of the Deployment's container.
fn probes(objs: &[Value]) -> [&Value; 2] {
    let c = container(objs);
    [&c["readinessProbe"], &c["livenessProbe"]]
}

#[test]
fn with_a_host_the_probes_are_http_and_send_it_as_host_header() {
    // A TCP probe calls a pod ready while Django answers 400 to every request for a
    // host it does not allow; the HTTP probe asks as the Ingress will, for the first host.
    let objs = objects(&["--host", "polls.example.com,www.polls.example.com"]);
    for probe in probes(&objs) {
        assert_eq!(
            probe["httpGet"],
            json!({"path": "/admin/login/", "port": "gunicorn",
                   "httpHeaders": [{"name": "Host", "value": "polls.example.com"}]}),
            "{probe}"
        );
        assert!(probe.get("tcpSocket").is_none());
    }
    let objs = objects(&["--host", HOST, "--probe-path", "/polls/"]);
    for probe in probes(&objs) {
        assert_eq!(probe["httpGet"]["path"], "/polls/");
        assert_eq!(probe["httpGet"]["httpHeaders"][0]["value"], HOST);
    }
    // A wildcard is no Host header Django accepts: a name under it is sent.
    let objs = objects(&["--host", "*.example.com"]);
    assert_eq!(
        probes(&objs)[0]["httpGet"]["httpHeaders"][0]["value"],
        "kpipe-probe.example.com"
    );
    let objs = objects(&["--host", "*.example.com", "--host", HOST]);
    assert_eq!(probes(&objs)[0]["httpGet"]["httpHeaders"][0]["value"], HOST);
    // TCP on request, and without a host (no name to send).
    for args in [&["--host", HOST, "--tcp-probes"][..], &[]] {
        let objs = objects(args);
        for probe in probes(&objs) {
            assert_eq!(probe["tcpSocket"]["port"], "gunicorn", "{args:?}");
            assert!(probe.get("httpGet").is_none(), "{args:?}");
        }
    }
    gen_args(&[
        "--image",
        IMAGE,
        "--host",
        HOST,
        "--tcp-probes",
        "--probe-path",
        "/",
    ])
    .code(2)
    .stdout_empty()
    .stderr_is(
        "error: the argument '--tcp-probes' cannot be used with '--probe-path <PATH>'\n\
         \n\
         Usage: manifest-gen --image <IMAGE> --host <HOST[,HOST]> --tcp-probes\n\
         \n\
         For more information, try '--help'.\n",
    );
}

#[test]
fn two_hosts_give_a_rule_each_and_one_tls_entry_for_one_certificate() {
    // HOST=a,b through make is `--host a,b`; repeated --host is the same.
    for args in [
        &["--host", "polls.example.com,www.polls.example.com"][..],
        &[
            "--host",
            "polls.example.com",
            "--host",
            "www.polls.example.com",
        ],
    ] {
        let objs = objects(args);
        let ingress = find(&objs, "Ingress");
        let rules = ingress["spec"]["rules"].as_array().unwrap();
        let hosts: Vec<&str> = rules.iter().map(|r| r["host"].as_str().unwrap()).collect();
        assert_eq!(
            hosts,
            ["polls.example.com", "www.polls.example.com"],
            "{args:?}"
        );
        for rule in rules {
            assert_eq!(
                rule["http"]["paths"][0]["backend"]["service"]["name"],
                "polls"
            );
        }
        // ingress-shim makes one Certificate per secretName: one entry, both hosts.
        assert_eq!(
            ingress["spec"]["tls"],
            json!([{"hosts": ["polls.example.com", "www.polls.example.com"], "secretName": "polls-tls"}]),
            "{args:?}"
        );
    }
    gen_args(&["--image", IMAGE, "--host", "polls.example.com,"])
        .code(2)
        .stdout_empty()
        .stderr_is("manifest-gen: --host \"\": must not be empty\n");
}

/// The test config with DJANGO_ALLOWED_HOSTS set to `value` (in the ConfigMap).
fn allowing(value: &str) -> String {
    let stream = config_stream();
    assert!(stream.contains("DJANGO_ALLOWED_HOSTS: \"*\""));
    stream.replace(
        "DJANGO_ALLOWED_HOSTS: \"*\"",
        &format!("DJANGO_ALLOWED_HOSTS: {}", json!(value)),
    )
}

#[test]
fn hosts_django_does_not_allow_are_refused_naming_the_setting() {
    let two = ["--host", "polls.example.com,www.polls.example.com"];
    // Admitted: exact names (any case), a leading dot (domain and subdomains), `*`.
    for allowed in [
        "polls.example.com,www.polls.example.com",
        "localhost,POLLS.example.com,Www.Polls.Example.Com",
        ".example.com",
        ".polls.example.com",
        "*",
        "localhost,*",
    ] {
        objects_from(&two, &allowing(allowed));
    }
    objects_from(&["--host", "*.example.com"], &allowing(".example.com"));

    // Refused: exit 2, nothing written, the object and the setting named, the fix given.
    let both = "--host polls.example.com, --host www.polls.example.com";
    let add_both = "polls.example.com,www.polls.example.com (or *)";
    for (allowed, refused, add) in [
        ("localhost,127.0.0.1", both, add_both),
        (
            "polls.example.com",
            "--host www.polls.example.com",
            "www.polls.example.com (or .www.polls.example.com with its subdomains, or *)",
        ),
        ("example.com", both, add_both),
        ("*.example.com", both, add_both),
        ("", both, add_both),
    ] {
        let mut args = vec!["--image", IMAGE];
        args.extend_from_slice(&two);
        gen_stream(&args, &allowing(allowed))
            .context(allowed)
            .code(2)
            .stdout_empty()
            .stderr_is(&format!(
                "manifest-gen: <stdin>: document 1 (line 4): ConfigMap/polls-config: \
                 DJANGO_ALLOWED_HOSTS {} does not admit {refused}: Django would answer \
                 every request with 400 Bad Request (and the HTTP probes would fail); \
                 add {add} to it\n",
                json!(allowed)
            ))
            .no_secret(SECRET_VALUE);
    }
    refused_stream_with(&["--host", "*.example.com"], &allowing("polls.example.com")).stderr_is(
        "manifest-gen: <stdin>: document 1 (line 4): ConfigMap/polls-config: \
         DJANGO_ALLOWED_HOSTS \"polls.example.com\" does not admit --host *.example.com: \
         Django would answer every request with 400 Bad Request (and the HTTP probes \
         would fail); add .example.com (or *) to it\n",
    );
    // The tutorial's settings split on ',' alone: a space is part of the next name.
    refused_stream_with(&["--host", HOST], &allowing("localhost, your-domain.com")).stderr_is(
        &format!(
            "manifest-gen: <stdin>: document 1 (line 4): ConfigMap/polls-config: \
             DJANGO_ALLOWED_HOSTS \"localhost, {HOST}\" does not admit --host {HOST}: \
             Django would answer every request with 400 Bad Request (and the HTTP probes \
             would fail); add {HOST} (or .{HOST} with its subdomains, or *) to it; the \
             spaces around its commas are part of the names (the tutorial's settings split \
             on ',' alone): remove them\n"
        ),
    );

    // Not in the stream, or no stream: nothing to check, nothing guessed.
    let without = config_stream().replace("  DJANGO_ALLOWED_HOSTS: \"*\"\n", "");
    objects_from(&two, &without);
    objects(&two);
}

/// manifest-gen `--image IMAGE ARGS` refuses `stream`: exit 2, nothing on stdout.
/// Returns the run, for its stderr.
#[track_caller]
fn refused_stream_with(args: &[&str], stream: &str) -> Run {
    let mut all = vec!["--image", IMAGE];
    all.extend_from_slice(args);
    let run = gen_stream(&all, stream).context(stream);
    run.code(2).stdout_empty();
    run
}

#[test]
fn allowed_hosts_in_the_secret_are_checked_without_showing_them() {
    // envsplit rules may put DJANGO_ALLOWED_HOSTS into the Secret: checked, never shown.
    let hidden = "hidden-allowed-host.internal";
    let in_secret = config_stream()
        .replace("  DJANGO_ALLOWED_HOSTS: \"*\"\n", "")
        .replace(
            "stringData:\n",
            &format!("stringData:\n  DJANGO_ALLOWED_HOSTS: \"{hidden}\"\n"),
        );
    refused_stream_with(&["--host", HOST], &in_secret)
        .stderr_is(&format!(
            "manifest-gen: <stdin>: document 2 (line 17): Secret/polls-secret: \
             DJANGO_ALLOWED_HOSTS (its value is not shown: a Secret holds it) does not admit \
             --host {HOST}: Django would answer every request with 400 Bad Request (and the \
             HTTP probes would fail); add {HOST} (or .{HOST} with its subdomains, or *) to it\n"
        ))
        .no_secrets(&[hidden, SECRET_VALUE]);
    objects_from(&["--host", hidden], &in_secret);
    // Both set it: envFrom lists the ConfigMap last, and its value is the one Django sees.
    let both = config_stream().replace(
        "stringData:\n",
        &format!("stringData:\n  DJANGO_ALLOWED_HOSTS: \"{hidden}\"\n"),
    );
    objects_from(&["--host", HOST], &both);
}

#[test]
fn image_pull_secrets_go_on_every_pod_and_into_the_job_name() {
    let objs = objects_from(
        &[
            "--migrate",
            "--image-pull-secret",
            "regcred",
            "--image-pull-secret",
            "other",
        ],
        &config_stream(),
    );
    let want = json!([{"name": "regcred"}, {"name": "other"}]);
    assert_eq!(
        find(&objs, "Deployment")["spec"]["template"]["spec"]["imagePullSecrets"],
        want
    );
    let job = find(&objs, "Job");
    assert_eq!(job["spec"]["template"]["spec"]["imagePullSecrets"], want);
    // The Job's pod template is immutable: another pull secret is another Job.
    let plain = job_of(&[], &config_stream());
    assert_ne!(job["metadata"]["name"], plain["metadata"]["name"]);
    assert!(
        find(&objects(&[]), "Deployment")["spec"]["template"]["spec"]
            .get("imagePullSecrets")
            .is_none()
    );
    gen_args(&["--image", IMAGE, "--image-pull-secret", "Reg_Cred"])
        .code(2)
        .stdout_empty()
        .stderr_is(
            "manifest-gen: --image-pull-secret \"Reg_Cred\": a lowercase RFC 1123 subdomain \
             must consist of lower case alphanumeric characters, '-' or '.', and must start \
             and end with an alphanumeric character\n",
        );
}

// ---------------------------------------------------------------- labels and selectors

#[test]
fn selectors_are_exactly_app_polls_and_extra_labels_stay_out_of_them() {
    let objs = objects(&["--hpa", "2:4", "--pdb", "--migrate"]);
    let app_only = json!({"app": "polls"});
    let deployment = find(&objs, "Deployment");
    assert_eq!(
        deployment["spec"]["selector"],
        json!({"matchLabels": app_only})
    );
    assert_eq!(find(&objs, "Service")["spec"]["selector"], app_only);
    assert_eq!(
        find(&objs, "PodDisruptionBudget")["spec"]["selector"],
        json!({"matchLabels": app_only})
    );
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pod_labels["app"], "polls");
    assert_eq!(pod_labels["app.kubernetes.io/name"], "polls");
    for obj in &objs {
        let labels = obj["metadata"]["labels"].as_object().unwrap();
        assert_eq!(labels["app"], "polls", "{}", obj["kind"]);
        assert!(
            labels
                .keys()
                .all(|k| k == "app" || k.starts_with("app.kubernetes.io/")),
            "{labels:?}"
        );
    }
    // A migration pod must not receive the Service's traffic nor count for the PDB.
    let job_pod_labels = &find(&objs, "Job")["spec"]["template"]["metadata"]["labels"];
    assert!(job_pod_labels.get("app").is_none(), "{job_pod_labels}");
}

#[test]
fn names_follow_app() {
    let objs = objects(&["--app", "shop", "--host", HOST, "--migrate"]);
    assert_eq!(find(&objs, "Deployment")["metadata"]["name"], "shop-app");
    assert_eq!(find(&objs, "Service")["metadata"]["name"], "shop");
    assert_eq!(find(&objs, "Ingress")["metadata"]["name"], "shop-ingress");
    assert_eq!(
        find(&objs, "Ingress")["spec"]["tls"][0]["secretName"],
        "shop-tls"
    );
    assert!(
        find(&objs, "Job")["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("shop-migrate-")
    );
    let container = &find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "shop");
    assert_eq!(
        container["envFrom"],
        json!([{"secretRef": {"name": "shop-secret"}}, {"configMapRef": {"name": "shop-config"}}])
    );
}

// ---------------------------------------------------------------- what a careful engineer adds

fn container(objs: &[Value]) -> &Value {
    &find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn extras_are_on_by_default() {
    let objs = objects(&[]);
    let deployment = find(&objs, "Deployment");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let c = container(&objs);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["tcpSocket"]["port"], "gunicorn", "{probe}");
        assert!(c[probe]["periodSeconds"].as_i64().unwrap() > 0);
    }
    assert!(
        c["livenessProbe"]["initialDelaySeconds"].as_i64()
            > c["readinessProbe"]["initialDelaySeconds"].as_i64()
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "100m", "memory": "128Mi"})
    );
    assert!(
        c["resources"]["limits"].get("cpu").is_none(),
        "no CPU limit by default"
    );
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(
        c["securityContext"].get("runAsNonRoot").is_none(),
        "the tutorial's image runs as root"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
}

#[test]
fn extras_can_be_changed_or_turned_off() {
    let objs = objects(&[
        "--probe-path",
        "/polls/",
        "--cpu-request",
        "250m",
        "--memory-request",
        "none",
        "--cpu-limit",
        "1",
        "--memory-limit",
        "none",
        "--run-as-user",
        "1000",
        "--max-unavailable",
        "25%",
        "--port",
        "8080",
        "--port-name",
        "http",
        "--replicas",
        "3",
    ]);
    let c = container(&objs);
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/polls/", "port": "http"})
    );
    assert_eq!(
        c["resources"],
        json!({"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}})
    );
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["runAsUser"], 1000);
    assert_eq!(c["ports"], json!([{"containerPort": 8080, "name": "http"}]));
    let deployment = find(&objs, "Deployment");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        find(&objs, "Service")["spec"]["ports"],
        json!([{"port": 8080, "targetPort": 8080}])
    );

    let bare = objects(&[
        "--no-probes",
        "--no-security-context",
        "--cpu-request",
        "none",
        "--memory-request",
        "none",
        "--memory-limit",
        "none",
    ]);
    let c = container(&bare);
    for field in [
        "readinessProbe",
        "livenessProbe",
        "securityContext",
        "resources",
    ] {
        assert!(c.get(field).is_none(), "{field} is still there");
    }
    assert!(
        find(&bare, "Deployment")["spec"]["template"]["spec"]
            .get("securityContext")
            .is_none()
    );
}

#[test]
fn namespace_goes_on_every_object_and_the_namespace_comes_first() {
    let objs = objects_from(
        &[
            "-n",
            "web",
            "--emit-namespace",
            "--host",
            HOST,
            "--migrate",
            "--hpa",
            "1:3",
            "--pdb",
        ],
        &config_stream(),
    );
    assert_eq!(
        kinds(&objs),
        [
            "Namespace",
            "ConfigMap",
            "Secret",
            "Job",
            "Deployment",
            "Service",
            "Ingress",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget"
        ]
    );
    assert_eq!(objs[0]["metadata"]["name"], "web");
    for obj in &objs[3..] {
        assert_eq!(obj["metadata"]["namespace"], "web", "{}", obj["kind"]);
    }
    let without = objects(&["-n", "web"]);
    assert_eq!(kinds(&without), ["Deployment", "Service"]);
}

// ---------------------------------------------------------------- Job, HPA, PDB

fn job_of(args: &[&str], stdin: &str) -> Value {
    let mut all = vec!["--migrate"];
    all.extend_from_slice(args);
    find(&objects_from(&all, stdin), "Job").clone()
}

#[test]
fn migration_job_runs_migrate_with_the_apps_image_and_env() {
    let job = job_of(&[], &config_stream());
    let spec = &job["spec"];
    assert_eq!(spec["backoffLimit"], 2);
    assert_eq!(spec["ttlSecondsAfterFinished"], 86400);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], IMAGE);
    assert_eq!(
        c["command"],
        json!(["python", "manage.py", "migrate", "--noinput"])
    );
    assert_eq!(
        c["envFrom"],
        json!([{"secretRef": {"name": "polls-secret"}}, {"configMapRef": {"name": "polls-config"}}])
    );
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("polls-migrate-") && name.len() == "polls-migrate-".len() + 10,
        "{name}"
    );

    let both = job_of(
        &[
            "--collectstatic",
            "--job-ttl",
            "1h",
            "--job-backoff-limit",
            "0",
        ],
        &config_stream(),
    );
    let pod = &both["spec"]["template"]["spec"];
    assert_eq!(
        pod["initContainers"][0]["command"],
        json!(["python", "manage.py", "migrate", "--noinput"])
    );
    assert_eq!(
        pod["containers"][0]["command"],
        json!(["python", "manage.py", "collectstatic", "--noinput"])
    );
    assert_eq!(both["spec"]["ttlSecondsAfterFinished"], 3600);
    assert_eq!(both["spec"]["backoffLimit"], 0);
    let custom = job_of(
        &[
            "--migrate-command",
            r#"["sh","-c","python manage.py migrate && echo done"]"#,
        ],
        &config_stream(),
    );
    assert_eq!(
        custom["spec"]["template"]["spec"]["containers"][0]["command"][2],
        "python manage.py migrate && echo done"
    );
}

#[test]
fn job_name_changes_with_image_command_and_config_only() {
    let name = |job: &Value| job["metadata"]["name"].as_str().unwrap().to_owned();
    let base = name(&job_of(&[], &config_stream()));
    assert_eq!(base, name(&job_of(&[], &config_stream())), "stable");
    assert_eq!(
        base,
        name(&job_of(
            &["--replicas", "5", "--host", HOST],
            &config_stream()
        )),
        "unrelated flags"
    );
    let args = [
        "--migrate",
        "--image",
        "your_dockerhub_username/app_repo_name:v2",
    ];
    let other_image = find(
        &parse_stream(&gen_stream(&args, &config_stream()).success().stdout()),
        "Job",
    )
    .clone();
    assert_ne!(base, name(&other_image), "image");
    assert_ne!(
        base,
        name(&job_of(&["--collectstatic"], &config_stream())),
        "command"
    );
    let changed = config_stream().replace("DEBUG: \"True\"", "DEBUG: \"False\"");
    assert_ne!(base, name(&job_of(&[], &changed)), "config");
}

#[test]
fn hpa_replaces_replicas_and_pdb_needs_two_replicas() {
    let objs = objects(&["--hpa", "2:5:70", "--pdb"]);
    assert_eq!(
        kinds(&objs),
        [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget"
        ]
    );
    assert!(
        find(&objs, "Deployment")["spec"].get("replicas").is_none(),
        "replicas with an HPA"
    );
    let hpa = find(&objs, "HorizontalPodAutoscaler");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "polls-app"})
    );
    assert_eq!(
        (
            hpa["spec"]["minReplicas"].as_i64(),
            hpa["spec"]["maxReplicas"].as_i64()
        ),
        (Some(2), Some(5))
    );
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"],
        json!({"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}})
    );
    let pdb = find(&objs, "PodDisruptionBudget");
    assert_eq!(
        (
            pdb["apiVersion"].as_str(),
            pdb["spec"]["minAvailable"].as_i64()
        ),
        (Some("policy/v1"), Some(1))
    );

    assert_eq!(
        find(&objects(&["--hpa", "1:3"]), "HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"]
            ["target"]["averageUtilization"],
        80
    );
    assert_eq!(
        kinds(&objects(&["--pdb"])),
        ["Deployment", "Service", "PodDisruptionBudget"]
    );
    for args in [
        &["--pdb", "--replicas", "1"][..],
        &["--pdb", "--hpa", "1:1"],
    ] {
        let mut all = vec!["--image", IMAGE];
        all.extend_from_slice(args);
        gen_args(&all)
            .context(format!("{args:?}"))
            .success()
            .stdout_lacks("PodDisruptionBudget")
            .stderr_is(
                "manifest-gen: --pdb skipped: at most 1 replica can run, and a \
                 PodDisruptionBudget with minAvailable 1 would block every node drain\n",
            );
    }
}

// ---------------------------------------------------------------- the input stream

#[test]
fn stream_objects_pass_through_first_in_order_and_unchanged() {
    let input = format!(
        "{}---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: zz, annotations: {{b: \"on\"}}}}\n",
        config_stream()
    );
    let objs = objects_from(&[], &input);
    let expected = parse_stream(&format!("---\n{input}"));
    assert_eq!(objs[..3], expected[..]);
    assert_eq!(kinds(&objs[3..]), ["Deployment", "Service"]);
    // `-i -` reads stdin explicitly; `-i FILE` reads a file.
    let explicit = gen_stream(&["--image", IMAGE, "-i", "-"], &input)
        .success()
        .stdout();
    assert_eq!(parse_stream(&explicit), objs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, &input).unwrap();
    let from_file = gen_args(&["--image", IMAGE, "-i", file.to_str().unwrap()])
        .success()
        .stdout();
    assert_eq!(from_file, explicit);
}

#[test]
fn stream_config_becomes_env_from_and_the_config_hash() {
    let objs = objects_from(&[], &config_stream());
    let c = container(&objs);
    assert_eq!(
        c["envFrom"],
        json!([{"secretRef": {"name": "polls-secret"}}, {"configMapRef": {"name": "polls-config"}}])
    );
    let hash = config_hash(&objs).expect("config hash annotation");
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));

    // Names from the stream: only what it holds is referenced.
    let renamed = config_stream().replace("name: polls-config", "name: web-env");
    let objs = objects_from(&[], &renamed);
    assert_eq!(
        container(&objs)["envFrom"][1],
        json!({"configMapRef": {"name": "web-env"}})
    );
    let only_config: String = config_stream().split("---").next().unwrap().to_owned();
    let objs = objects_from(&[], &only_config);
    assert_eq!(
        container(&objs)["envFrom"],
        json!([{"configMapRef": {"name": "polls-config"}}])
    );
    // Flags win.
    let objs = objects_from(
        &["--config-map", "other", "--secret", "creds"],
        &config_stream(),
    );
    assert_eq!(
        container(&objs)["envFrom"],
        json!([{"secretRef": {"name": "creds"}}, {"configMapRef": {"name": "other"}}])
    );
    // Without a stream there is nothing to hash.
    assert_eq!(config_hash(&objects(&[])), None);
    assert_eq!(
        config_hash(&objects_from(&["--no-config-hash"], &config_stream())),
        None
    );
}

fn config_hash(objs: &[Value]) -> Option<String> {
    find(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["kpipe/config-hash"]
        .as_str()
        .map(str::to_owned)
}

fn hash_of(stream: &str) -> String {
    let out = gen_stream(&["--image", IMAGE], stream);
    out.no_secret(SECRET_VALUE);
    config_hash(&parse_stream(&out.success().stdout())).unwrap()
}

#[test]
fn config_hash_follows_every_value_and_nothing_else() {
    let base_stream = config_stream();
    let base = hash_of(&base_stream);
    assert_eq!(base, hash_of(&base_stream), "deterministic");
    let changes = [
        ("DEBUG: \"True\"", "DEBUG: \"False\""),
        ("DJANGO_LOGLEVEL: \"info\"", "DJANGO_LOGLEVEL: \"debug\""),
        (SECRET_VALUE, "another-secret-key-value"),
        ("DATABASE_PORT: \"25060\"", "DATABASE_PORT: \"25061\""),
        (
            "DATABASE_PORT: \"25060\"",
            "DATABASE_PORT: \"25060\"\n  NEW_KEY: \"x\"",
        ),
        ("  DJANGO_LOGLEVEL: \"info\"\n", ""),
        ("name: polls-config", "name: polls-config2"),
    ];
    for (from, to) in changes {
        assert!(base_stream.contains(from), "{from}");
        let changed = base_stream.replace(from, to);
        assert_ne!(hash_of(&changed), base, "changing {from:?} kept the hash");
    }
    let unrelated = [
        format!("{base_stream}---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: x}}\n"),
        base_stream.replace(
            "labels:\n    app: polls\ndata:",
            "labels:\n    app: other\ndata:",
        ),
        base_stream.replace("# What", "# Only a comment changed. What"),
        base_stream
            .replace("  DEBUG: \"True\"\n", "")
            .replace("data:\n", "data:\n  DEBUG: \"True\"\n"),
    ];
    for stream in &unrelated {
        assert_ne!(stream, &base_stream);
        assert_eq!(
            hash_of(stream),
            base,
            "an unrelated change moved the hash:\n{stream}"
        );
    }
}

#[test]
fn secret_hashes_the_same_as_string_data_or_base64_data() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let plain = config_stream();
    let secret_part = plain.split("---\n").nth(1).unwrap();
    let mut encoded_secret = String::from(secret_part.split("stringData:\n").next().unwrap());
    encoded_secret.push_str("data:\n");
    for line in secret_part.split("stringData:\n").nth(1).unwrap().lines() {
        let (key, value) = line.trim().split_once(": ").unwrap();
        let value: String = serde_json::from_str(value).unwrap();
        encoded_secret.push_str(&format!("  {key}: {}\n", b64(&value)));
    }
    let encoded = plain.replace(secret_part, &encoded_secret);
    assert!(!encoded.contains(SECRET_VALUE));
    assert_eq!(hash_of(&encoded), hash_of(&plain));
}

#[test]
fn secret_values_never_reach_stderr_or_the_generated_objects() {
    let out = gen_stream(
        &[
            "--image",
            IMAGE,
            "--migrate",
            "--host",
            HOST,
            "--hpa",
            "2:3",
            "--pdb",
        ],
        &config_stream(),
    );
    let text = out.success().stdout();
    let objs = parse_stream(&text);
    // The Secret passes through (it is the stream's); nothing generated copies a value.
    for obj in objs.iter().filter(|o| o["kind"] != "Secret") {
        assert!(!obj.to_string().contains(SECRET_VALUE), "{}", obj["kind"]);
        assert!(
            !obj.to_string().contains("your_django_db_user_password"),
            "{}",
            obj["kind"]
        );
    }
    let bad = config_stream().replace("stringData:", "data:");
    gen_stream(&["--image", IMAGE], &bad)
        .code(2)
        .stderr_is(
            "manifest-gen: <stdin>: document 2 (line 18): Secret/polls-secret: \
             data.DATABASE_HOST is not valid base64\n",
        )
        .no_secret(SECRET_VALUE);
}

#[test]
fn two_config_maps_or_secrets_need_a_flag_to_pick_one() {
    let two = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra}}\ndata: {{A: b}}\n",
        config_stream()
    );
    refused_stream(&two).stderr_is(
        "manifest-gen: the input holds more than one ConfigMap: ConfigMap/polls-config \
         (<stdin>: document 1 (line 4)) and ConfigMap/extra (<stdin>: document 3 (line 35)); \
         name the one the pods read with --config-map NAME\n",
    );

    let picked = objects_from(&["--config-map", "extra"], &two);
    assert_eq!(
        container(&picked)["envFrom"][1],
        json!({"configMapRef": {"name": "extra"}})
    );
    let with_a = config_hash(&picked).unwrap();
    let changed = objects_from(&["--config-map", "extra"], &two.replace("{A: b}", "{A: c}"));
    assert_ne!(config_hash(&changed).unwrap(), with_a);
    let other_changed = objects_from(
        &["--config-map", "extra"],
        &two.replace("DEBUG: \"True\"", "DEBUG: \"no\""),
    );
    assert_eq!(
        config_hash(&other_changed).unwrap(),
        with_a,
        "the unused ConfigMap is not hashed"
    );

    // Two Opaque Secrets likewise; a TLS Secret is not environment and does not count.
    let tls =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: polls-tls}\ntype: kubernetes.io/tls\n";
    let objs = objects_from(&[], &format!("{}---\n{tls}", config_stream()));
    assert_eq!(
        container(&objs)["envFrom"][0],
        json!({"secretRef": {"name": "polls-secret"}})
    );
    let two = format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: more}}\n",
        config_stream()
    );
    refused_stream(&two)
        .stderr_is(
            "manifest-gen: the input holds more than one Secret: Secret/polls-secret \
             (<stdin>: document 2 (line 18)) and Secret/more (<stdin>: document 3 (line 35)); \
             name the one the pods read with --secret NAME\n",
        )
        .no_secret(SECRET_VALUE);
    let picked = objects_from(&["--secret", "more"], &two);
    assert_eq!(
        container(&picked)["envFrom"][0],
        json!({"secretRef": {"name": "more"}})
    );
}

// ---------------------------------------------------------------- --versioned-config

/// `BASE-<10 lowercase hex>`.
fn is_version_of(name: &Value, base: &str) -> bool {
    name.as_str()
        .and_then(|n| n.strip_prefix(base))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hash| {
            hash.len() == 10
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

const VERSIONED: &[&str] = &["--versioned-config", "--migrate", "--host", HOST];

/// The versioned names of the ConfigMap and the Secret in a generated stream.
fn version_names(objs: &[Value]) -> (String, String) {
    let name = |kind| {
        find(objs, kind)["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    (name("ConfigMap"), name("Secret"))
}

fn versioned_run(stdin: &str) -> String {
    let mut args = vec!["--image", IMAGE];
    args.extend_from_slice(VERSIONED);
    let out = gen_stream(&args, stdin);
    out.success().stderr_empty().no_secret(SECRET_VALUE);
    out.stdout()
}

#[test]
fn versioned_config_is_immutable_named_by_content_and_read_by_the_deployment_and_job() {
    let objs = objects_from(VERSIONED, &config_stream());
    assert_eq!(
        kinds(&objs),
        [
            "ConfigMap",
            "Secret",
            "Job",
            "Deployment",
            "Service",
            "Ingress"
        ]
    );
    let input = parse_stream(&format!("---\n{}", config_stream()));
    let (config, secret) = version_names(&objs);
    assert!(is_version_of(&json!(config), "polls-config"), "{config}");
    assert!(is_version_of(&json!(secret), "polls-secret"), "{secret}");
    for (i, object) in objs[..2].iter().enumerate() {
        assert_eq!(object["immutable"], true, "{object:#}");
        // The rest as the stream gave it: labels, type, data.
        let mut unversioned = object.clone();
        unversioned.as_object_mut().unwrap().remove("immutable");
        unversioned["metadata"]["name"] = input[i]["metadata"]["name"].clone();
        assert_eq!(unversioned, input[i]);
    }
    let env_from = json!([{"secretRef": {"name": secret}}, {"configMapRef": {"name": config}}]);
    assert_eq!(container(&objs)["envFrom"], env_from);
    let job = find(&objs, "Job");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["envFrom"],
        env_from
    );
    assert!(config_hash(&objs).is_some(), "the config hash is kept");

    // Deterministic: the same input gives the same bytes.
    assert_eq!(
        versioned_run(&config_stream()),
        versioned_run(&config_stream())
    );

    // Without the flag nothing is renamed or made immutable.
    let plain = objects_from(&["--migrate", "--host", HOST], &config_stream());
    assert_eq!(plain[..2], input[..]);
    assert_eq!(
        version_names(&plain),
        ("polls-config".to_owned(), "polls-secret".to_owned())
    );
    // The rest of the render is the same but for the names the pods read.
    let renamed = versioned_run(&config_stream())
        .replace(&config, "polls-config")
        .replace(&secret, "polls-secret")
        .replace("immutable: true\n", "");
    let plain_text = gen_stream(
        &["--image", IMAGE, "--migrate", "--host", HOST],
        &config_stream(),
    )
    .success()
    .stdout();
    assert_eq!(renamed, plain_text);
}

#[test]
fn a_changed_value_changes_only_the_version_of_its_object() {
    let base = parse_stream(&versioned_run(&config_stream()));
    let (config, secret) = version_names(&base);
    let job = find(&base, "Job")["metadata"]["name"].clone();

    let debug = parse_stream(&versioned_run(
        &config_stream().replace("DEBUG: \"True\"", "DEBUG: \"False\""),
    ));
    let (debug_config, debug_secret) = version_names(&debug);
    assert_ne!(debug_config, config);
    assert!(is_version_of(&json!(debug_config), "polls-config"));
    assert_eq!(debug_secret, secret);
    assert_ne!(find(&debug, "Job")["metadata"]["name"], job);

    let key = parse_stream(&versioned_run(
        &config_stream().replace(SECRET_VALUE, "another-django-secret-key-value"),
    ));
    let (key_config, key_secret) = version_names(&key);
    assert_eq!(key_config, config);
    assert_ne!(key_secret, secret);
    assert_eq!(
        container(&key)["envFrom"][0]["secretRef"]["name"],
        key_secret.as_str()
    );

    // A label is not content: the same version.
    let labelled = parse_stream(&versioned_run(&config_stream().replacen(
        "app: polls",
        "app: polls\n    tier: web",
        1,
    )));
    assert_eq!(version_names(&labelled), (config, secret));
}

#[test]
fn a_versioned_stream_read_again_keeps_its_names() {
    let first = parse_stream(&versioned_run(&config_stream()));
    // manifest-gen's ConfigMap and Secret, read again as they came out.
    let again_input: String = first[..2]
        .iter()
        .map(|o| format!("---\n{}", to_yaml(o)))
        .collect();
    let again = parse_stream(&versioned_run(&again_input));
    assert_eq!(again[..2], first[..2]);
    for kind in ["Job", "Deployment"] {
        assert_eq!(find(&again, kind), find(&first, kind), "{kind}");
    }

    // Already immutable under its plain name: versioned all the same.
    let immutable =
        config_stream().replace("kind: ConfigMap\n", "kind: ConfigMap\nimmutable: true\n");
    let objs = parse_stream(&versioned_run(&immutable));
    assert_eq!(version_names(&objs), version_names(&first));

    // A flag naming an object the stream lacks is referenced as given; the other is versioned.
    let objs = objects_from(
        &["--versioned-config", "--secret", "made-elsewhere"],
        &config_stream(),
    );
    assert_eq!(
        container(&objs)["envFrom"],
        json!([{"secretRef": {"name": "made-elsewhere"}}, {"configMapRef": {"name": version_names(&first).0}}])
    );
    assert_eq!(find(&objs, "Secret")["metadata"]["name"], "polls-secret");
    assert!(find(&objs, "Secret").get("immutable").is_none());
}

#[test]
fn versioned_config_never_shows_a_secret_value() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // A name too long for its version: the message names the object, never a value.
    let long = "s".repeat(250);
    let stream = config_stream().replace("name: polls-secret", &format!("name: {long}"));
    gen_stream(&["--image", IMAGE, "--versioned-config"], &stream)
        .code(2)
        .stdout_empty()
        .no_secret(SECRET_VALUE)
        .stderr_is(&format!(
            "manifest-gen: <stdin>: document 2 (line 18): Secret/{long}: its versioned name \
             \"{long}-ca1fcf585f\" is not valid: must be no more than 253 characters\n"
        ));
    // Bad base64 in data: the key is named, not the value.
    let bad = config_stream().replace(
        "stringData:\n",
        &format!("data:\n  BROKEN: \"{}!\"\nstringData:\n", b64(SECRET_VALUE)),
    );
    gen_stream(&["--image", IMAGE, "--versioned-config"], &bad)
        .code(2)
        .stdout_empty()
        .stderr_is(
            "manifest-gen: <stdin>: document 2 (line 18): Secret/polls-secret: \
             data.BROKEN is not valid base64\n",
        )
        .no_secret(SECRET_VALUE);
    // The whole render: nothing on stderr, no value in a generated object or a name.
    let text = versioned_run(&config_stream());
    for obj in parse_stream(&text).iter().filter(|o| o["kind"] != "Secret") {
        assert!(!obj.to_string().contains(SECRET_VALUE), "{}", obj["kind"]);
    }
}

#[test]
fn invalid_streams_are_refused() {
    for (input, expect) in [
        (
            "apiVersion: v1\nkind: [\n",
            "manifest-gen: <stdin>: document 1 (line 2): invalid YAML: unclosed bracket '['\n",
        ),
        (
            "kind: ConfigMap\nmetadata: {name: a}\n",
            "manifest-gen: <stdin>: document 1 (line 1): missing apiVersion\n",
        ),
        (
            "- a\n",
            "manifest-gen: <stdin>: document 1 (line 1): not a Kubernetes object (expected a mapping)\n",
        ),
    ] {
        refused_stream(input).stderr_is(expect);
    }
}

// ---------------------------------------------------------------- bad flags

#[test]
fn bad_flags_exit_2_with_nothing_on_stdout_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--image", ""],
            "manifest-gen: --image: must not be empty\n",
        ),
        (
            &["--image", "polls app:1"],
            "manifest-gen: --image \"polls app:1\": must not contain whitespace\n",
        ),
        (
            &["--image", "polls:1\t"],
            "manifest-gen: --image \"polls:1\\t\": must not contain whitespace\n",
        ),
        (
            &["--image", IMAGE, "--app", "Polls"],
            "manifest-gen: --app \"Polls\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--app", "polls_app"],
            "manifest-gen: --app \"polls_app\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--app", &"a".repeat(50), "--migrate"],
            "manifest-gen: --app \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": the migration Job name aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-migrate-0000000000 would be longer than 63 characters\n",
        ),
        (
            &["--image", IMAGE, "--deployment-name=-x"],
            "manifest-gen: --deployment-name \"-x\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--service-name", "9lives"],
            "manifest-gen: --service-name \"9lives\": a Service name must start with a letter\n",
        ),
        (
            &["--image", IMAGE, "--container-name", "a.b"],
            "manifest-gen: --container-name \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--config-map", "A"],
            "manifest-gen: --config-map \"A\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--secret", "a_b"],
            "manifest-gen: --secret \"a_b\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--namespace", "Web"],
            "manifest-gen: --namespace \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--port", "0"],
            "error: invalid value '0' for '--port <PORT>': 0 is not in 1..=65535\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--port", "65536"],
            "error: invalid value '65536' for '--port <PORT>': 65536 is not in 1..=65535\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--port", "http"],
            "error: invalid value 'http' for '--port <PORT>': invalid digit found in string\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--port-name", "Gunicorn"],
            "manifest-gen: --port-name \"Gunicorn\": must be 1-15 lowercase letters, digits or '-', with a letter, no '--' and no '-' at either end\n",
        ),
        (
            &["--image", IMAGE, "--hpa", "5:2"],
            "manifest-gen: --hpa \"5:2\": MIN must not be greater than MAX (expected MIN:MAX[:CPU%], e.g. 2:5:70)\n",
        ),
        (
            &["--image", IMAGE, "--hpa", "0:2"],
            "manifest-gen: --hpa \"0:2\": MIN must be at least 1 (expected MIN:MAX[:CPU%], e.g. 2:5:70)\n",
        ),
        (
            &["--image", IMAGE, "--hpa", "2"],
            "manifest-gen: --hpa \"2\": wrong number of fields (expected MIN:MAX[:CPU%], e.g. 2:5:70)\n",
        ),
        (
            &["--image", IMAGE, "--hpa", "2:3", "--cpu-request", "none"],
            "manifest-gen: --hpa scales on CPU utilisation, a share of the CPU request: set --cpu-request\n",
        ),
        (
            &["--image", IMAGE, "--hpa", "2:3", "--replicas", "2"],
            "error: the argument '--hpa <MIN:MAX[:CPU%]>' cannot be used with '--replicas <N>'\n\nUsage: manifest-gen --image <IMAGE> --hpa <MIN:MAX[:CPU%]>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--cpu-request", "100 m"],
            "manifest-gen: --cpu-request: \"100 m\" is not a quantity: a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>), e.g. 250m, 128Mi, 1.5\n",
        ),
        (
            &["--image", IMAGE, "--memory-request", "128MB"],
            "manifest-gen: --memory-request: \"128MB\" is not a quantity: a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>), e.g. 250m, 128Mi, 1.5\n",
        ),
        (
            &["--image", IMAGE, "--memory-limit=-1Gi"],
            "manifest-gen: --memory-limit: \"-1Gi\" is negative\n",
        ),
        (
            &["--image", IMAGE, "--cpu-limit", "1x"],
            "manifest-gen: --cpu-limit: \"1x\" is not a quantity: a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or e<exponent>), e.g. 250m, 128Mi, 1.5\n",
        ),
        (
            &[
                "--image",
                IMAGE,
                "--memory-request",
                "1Gi",
                "--memory-limit",
                "512Mi",
            ],
            "manifest-gen: --memory-request is greater than --memory-limit: a pod cannot request more than its limit\n",
        ),
        (
            &["--image", IMAGE, "--host", "your_domain.com"],
            "manifest-gen: --host \"your_domain.com\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--host", "10.0.0.1"],
            "manifest-gen: --host \"10.0.0.1\": must be a DNS name, not an IP address\n",
        ),
        (
            &["--image", IMAGE, "--host", HOST, "--tls-secret", "Bad"],
            "manifest-gen: --tls-secret \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--host", HOST, "--issuer", "Bad Issuer"],
            "manifest-gen: --issuer \"Bad Issuer\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character\n",
        ),
        (
            &["--image", IMAGE, "--probe-path", "polls"],
            "manifest-gen: --probe-path \"polls\": must be a URL path starting with '/' and without spaces\n",
        ),
        (
            &["--image", IMAGE, "--max-unavailable", "200%"],
            "manifest-gen: --max-unavailable \"200%\": expected a whole number or a percentage (0, 1, 25%)\n",
        ),
        (
            &["--image", IMAGE, "--run-as-user", "0"],
            "error: invalid value '0' for '--run-as-user <UID>': 0 is not in 1..=2147483647\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--replicas=-1"],
            "error: invalid value '-1' for '--replicas <N>': -1 is not in 0..=2147483647\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--collectstatic"],
            "error: the following required arguments were not provided:\n  --migrate\n\nUsage: manifest-gen --migrate --image <IMAGE> --collectstatic\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--image", IMAGE, "--migrate", "--migrate-command", "[1]"],
            "manifest-gen: --migrate-command: not a JSON array of strings: invalid type: integer `1`, expected a string at line 1 column 2\n",
        ),
        (
            &["--image", IMAGE, "--migrate", "--job-ttl", "soon"],
            "manifest-gen: --job-ttl: invalid duration \"soon\" (expected number at 0); use e.g. 30s, 5m, 1h\n",
        ),
        (
            &["--image", IMAGE, "--emit-namespace"],
            "error: the following required arguments were not provided:\n  --namespace <NAMESPACE>\n\nUsage: manifest-gen --namespace <NAMESPACE> --image <IMAGE> --emit-namespace\n\nFor more information, try '--help'.\n",
        ),
        (
            &[
                "--image",
                IMAGE,
                "--issuer",
                "x",
                "--namespaced-issuer",
                "y",
            ],
            "error: the argument '--issuer <NAME>' cannot be used with '--namespaced-issuer <NAME>'\n\nUsage: manifest-gen --image <IMAGE> --issuer <NAME>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--app", "polls"],
            "error: the following required arguments were not provided:\n  --image <IMAGE>\n\nUsage: manifest-gen --app <APP> --image <IMAGE>\n\nFor more information, try '--help'.\n",
        ),
    ];
    for (args, expected) in cases {
        gen_args(args)
            .context(format!("{args:?}"))
            .code(2)
            .stdout_empty()
            .stderr_is(expected);
    }
}

// ---------------------------------------------------------------- output properties

/// Flag combinations whose output must be valid for Kubernetes; each is also read back.
fn combinations() -> Vec<(&'static str, Vec<&'static str>, bool)> {
    vec![
        ("defaults", vec![], false),
        ("nodeport", vec!["--service-type", "NodePort"], false),
        (
            "loadbalancer",
            vec![
                "--service-type",
                "LoadBalancer",
                "--port",
                "80",
                "--port-name",
                "http",
            ],
            false,
        ),
        ("ingress", vec!["--host", HOST], false),
        (
            "ingress-prod",
            vec![
                "--host",
                HOST,
                "--host",
                "www.your-domain.com",
                "--issuer",
                "letsencrypt-prod",
            ],
            false,
        ),
        (
            "ingress-namespaced-issuer",
            vec![
                "--host",
                "*.example.com",
                "--namespaced-issuer",
                "local",
                "-n",
                "web",
            ],
            false,
        ),
        ("ingress-no-tls", vec!["--host", HOST, "--no-tls"], false),
        (
            "two-hosts-private-registry",
            vec![
                "--host",
                "polls.example.com,www.polls.example.com",
                "--image-pull-secret",
                "regcred",
                "--migrate",
            ],
            true,
        ),
        ("stream", vec![], true),
        (
            "everything",
            vec![
                "--host",
                HOST,
                "--migrate",
                "--collectstatic",
                "--hpa",
                "2:5:70",
                "--pdb",
                "-n",
                "web",
                "--emit-namespace",
                "--run-as-user",
                "1000",
                "--probe-path",
                "/polls/",
                "--cpu-limit",
                "1",
                "--memory-limit",
                "1Gi",
            ],
            true,
        ),
        (
            "migrate-custom",
            vec![
                "--migrate",
                "--migrate-command",
                "python manage.py migrate",
                "--job-ttl",
                "10m",
            ],
            true,
        ),
        (
            "bare",
            vec![
                "--no-probes",
                "--no-security-context",
                "--cpu-request",
                "none",
                "--memory-request",
                "none",
                "--memory-limit",
                "none",
                "--replicas",
                "1",
                "--pdb",
            ],
            false,
        ),
        (
            "scaled",
            vec!["--replicas", "4", "--pdb", "--max-unavailable", "25%"],
            false,
        ),
    ]
}

fn generate_combination(args: &[&str], with_stream: bool) -> String {
    let mut all = vec!["--image", IMAGE];
    all.extend_from_slice(args);
    if with_stream {
        gen_stream(&all, &config_stream()).success().stdout()
    } else {
        gen_args(&all).success().stdout()
    }
}

fn python3() -> Command {
    Command::new("python3")
}

/// The newest Kubernetes version kubernetes-validate ships schemas for.
fn newest_kubernetes() -> String {
    let out = python3()
        .args([
            "-c",
            "import kubernetes_validate.utils as u; print(u.latest_version())",
        ])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "kubernetes-validate is not installed for python3 (run `make test-deps` and put .venv/bin first on PATH): {}",
        stderr(&out)
    );
    stdout(&out).trim().to_owned()
}

fn kubernetes_validate(version: &str, files: &[PathBuf]) -> Output {
    Command::new("kubernetes-validate")
        .args(["-k", version, "--strict", "--quiet"])
        .args(files)
        .output()
        .expect("kubernetes-validate is not installed (run `make test-deps`; tests need .venv/bin first on PATH)")
}

#[test]
fn every_combination_passes_kubernetes_validate_for_1_29_and_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = combinations()
        .into_iter()
        .map(|(name, args, stream)| {
            let path = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&path, generate_combination(&args, stream)).unwrap();
            path
        })
        .collect();
    let newest = newest_kubernetes();
    for version in ["1.29.0", newest.as_str()] {
        let out = kubernetes_validate(version, &files);
        // --quiet prints only problems; an unknown kind or version is a WARN with exit 0.
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "Kubernetes {version}:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    // The check can fail: the tutorial's own v1beta1 Ingress (removed in 1.22) and a
    // misspelt field are both reported.
    Run::from(kubernetes_validate(
        "1.29.0",
        &[golden_path("polls-ingress-v1beta1.yaml")],
    ))
    .context("kubernetes-validate accepted a removed API")
    .stdout_has("Couldn't find schema");
    let misspelt = dir.path().join("misspelt.yaml");
    std::fs::write(
        &misspelt,
        generate_combination(&[], false).replace("containerPort:", "containerPorts:"),
    )
    .unwrap();
    let out = kubernetes_validate(&newest, &[misspelt]);
    assert!(
        !out.status.success() && stdout(&out).contains("containerPort"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unquoted_yaml11_values_in_the_input_stream_are_bad_input() {
    // Kubernetes reads the value `no` as false, which the API server refuses in a
    // ConfigMap: said up front, with the line and the fix.
    let tricky = config_stream().replace("DEBUG: \"True\"", "DEBUG: no");
    refused_stream(&tricky).stderr_is(
        "manifest-gen: <stdin>: document 1 (line 15): ConfigMap data key \"DEBUG\": \
         Kubernetes (YAML 1.1) reads this unquoted value as a boolean, and the API server \
         accepts only strings there; quote the value\n",
    );
}

#[test]
fn output_is_deterministic_and_reads_back_the_same_under_yaml_1_1() {
    // Values YAML 1.1 would turn into bools, numbers or timestamps if written bare.
    let tricky = config_stream()
        .replace("DEBUG: \"True\"", "DEBUG: \"on\"\n  MODE: \"0755\"\n  WHEN: \"2001-12-14\"\n  SEXA: \"12:30:00\"\n  \"NO\": \"no\"");
    for (name, args, _) in combinations() {
        let mut all = vec!["--image", IMAGE];
        all.extend_from_slice(&args);
        let first = gen_stream(&all, &tricky).success().stdout();
        let second = gen_stream(&all, &tricky).success().stdout();
        assert_eq!(first, second, "{name}: two runs differ");

        let (ok, out) = python_worker("yaml11", &first);
        assert!(ok, "PyYAML (run `make test-deps`): {out}");
        let yaml11: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            yaml11,
            Value::Array(parse_stream(&first)),
            "{name}: YAML 1.1 reads something else"
        );
    }
}

#[test]
fn help_teaches_the_tutorials_steps() {
    let out = cmd("manifest-gen").arg("--help").run();
    out.success();
    for needle in [
        "Step 6",
        "Step 7",
        "--service-type NodePort",
        "Step 8",
        "--host",
        "--issuer letsencrypt-prod",
        "Exit status",
        "kpipe/config-hash",
    ] {
        out.stdout_has(needle);
    }
}

// ---------------------------------------------------------------- kubectl

/// Answers kubectl's discovery with a real API server's recorded responses
/// (tests/fixtures/apiserver) and every other GET with the recorded 404, which is all a
/// client-side dry run asks of a cluster.
struct RecordedDiscovery {
    address: String,
}

impl RecordedDiscovery {
    fn start() -> RecordedDiscovery {
        use std::io::{BufRead, BufReader, Write};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apiserver");
        let mut routes = std::collections::HashMap::new();
        let mut not_found = None;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let Ok(record) =
                serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
            else {
                continue;
            };
            let request = &record["request"];
            let accept = request["headers"]["Accept"].as_str().unwrap_or_default();
            if request["method"] != "GET"
                || accept.contains("apidiscovery")
                || accept.contains("watch")
            {
                continue;
            }
            let body = record["response"]["body"].to_string();
            if record["response"]["status"] == 404 {
                not_found.get_or_insert(body);
            } else if record["response"]["status"] == 200 {
                routes.insert(request["path"].as_str().unwrap().to_owned(), body);
            }
        }
        assert!(
            routes.contains_key("/apis/apps/v1"),
            "no discovery recordings in {}",
            dir.display()
        );
        let not_found = not_found.expect("a recorded 404");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let target = request_line.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or(target);
                let (status, body) = match routes.get(path) {
                    Some(body) => ("200 OK", body.as_str()),
                    None => ("404 Not Found", not_found.as_str()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        RecordedDiscovery { address }
    }
}

#[test]
fn kubectl_client_dry_run_accepts_the_output() {
    let server = RecordedDiscovery::start();
    let home = tempfile::tempdir().unwrap();
    for (name, args, stream) in combinations() {
        let text = generate_combination(&args, stream);
        let count = parse_stream(&text).len();
        let mut kubectl = crate::common::kubectl_cmd();
        kubectl
            .env_remove("KUBECONFIG")
            .env("HOME", home.path())
            .args([
                "--server",
                &server.address,
                "apply",
                "--dry-run=client",
                "--validate=false",
                "-o",
                "name",
                "-f",
                "-",
            ]);
        let out = run_with_stdin(kubectl, text.as_bytes());
        assert!(
            out.status.success(),
            "{name}: kubectl refused:\n{}",
            stderr(&out)
        );
        assert_eq!(
            stdout(&out).lines().count(),
            count,
            "{name}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn envsplit_and_envsplit_secretgen_give_the_same_config_hash() {
    let env = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/polls/env");
    let split = cmd("envsplit").args(["--app", "polls"]).arg(&env).run();
    let config = split.success().stdout();
    let encoded = cmd("secretgen").run_with(&config).success().stdout();
    assert_ne!(config, encoded, "secretgen moved stringData into data");
    let direct = objects_from(&[], &config);
    let through_secretgen = objects_from(&[], &encoded);
    assert!(config_hash(&direct).is_some());
    assert_eq!(config_hash(&direct), config_hash(&through_secretgen));
    assert_eq!(
        container(&direct)["envFrom"],
        container(&through_secretgen)["envFrom"]
    );
}

/// Runs manifest-gen with stdin, stdout and stderr on a terminal, through util-linux
/// `script` (which gives the command a pseudo-terminal).
fn on_terminal(args: &str) -> Run {
    let command = format!("{} --image {IMAGE} {args}", bin("manifest-gen").display());
    Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs commands on a pseudo-terminal")
        .into()
}

#[test]
fn on_a_terminal_stdin_is_not_read_and_secrets_are_not_shown() {
    // Nobody types a manifest: with stdin a terminal and no -i, it writes at once.
    on_terminal("").success().stdout_has("kind: Deployment");

    let config = golden_path("polls-config.yaml");
    on_terminal(&format!("-i {}", config.display()))
        .code(2)
        // The terminal's line ending: stdout and stderr are the pseudo-terminal.
        .stdout_is(&format!(
            "manifest-gen: stdout is a terminal and the input holds Secret/polls-secret \
             ({}: document 2 (line 18)): pipe the stream on (| kapply), redirect it to a \
             file, or pass --show\r\n",
            config.display()
        ))
        .stdout_lacks(SECRET_VALUE)
        .stdout_lacks("kind: Deployment");
    on_terminal(&format!("-i {} --show", config.display()))
        .success()
        .stdout_has(SECRET_VALUE);
}

#[test]
fn cluster_issuers_are_the_tutorials_acme_issuers_and_are_ready_once_applied() {
    let text = gen_args(&["--cluster-issuers", "ops@example.com"])
        .success()
        .stdout();
    let docs = parse_stream(&text);
    assert_eq!(docs.len(), 2, "{text}");
    for (doc, (name, server)) in docs.iter().zip([
        (
            "letsencrypt-staging",
            "https://acme-staging-v02.api.letsencrypt.org/directory",
        ),
        (
            "letsencrypt-prod",
            "https://acme-v02.api.letsencrypt.org/directory",
        ),
    ]) {
        assert_eq!(doc["kind"], "ClusterIssuer");
        assert_eq!(doc["metadata"]["name"], name);
        assert_eq!(doc["spec"]["acme"]["server"], server);
        assert_eq!(doc["spec"]["acme"]["email"], "ops@example.com");
        assert_eq!(
            doc["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClassName"],
            "nginx"
        );
    }
    gen_args(&["--cluster-issuers", "not-an-email"])
        .code(2)
        .stdout_empty()
        .stderr_is(
            "manifest-gen: --cluster-issuers: \"not-an-email\" is not an email address \
             (Let's Encrypt registers the ACME account with it)\n",
        );
    gen_args(&["--cluster-issuers", "ops@example.com", "--image", IMAGE])
        .code(2)
        .stderr_is(
            "error: the argument '--cluster-issuers <EMAIL>' cannot be used with '--image <IMAGE>'\n\
             \n\
             Usage: manifest-gen --cluster-issuers <EMAIL>\n\
             \n\
             For more information, try '--help'.\n",
        );

    // `make issuers`: applied (over the simulator's own pair, as over issuers made by
    // hand) and waited for until cert-manager made them Ready.
    let sim = Sim::start(&["--cert-manager"]);
    let mut c = sim.cmd("kapply");
    c.args(["--wait", "--force-conflicts", "--timeout", "30s"]);
    c.run_with(&text)
        .context(sim.log())
        .success()
        // Progress lines with timings, in the order the issuers became ready.
        .stderr_has("clusterissuer.cert-manager.io/letsencrypt-prod: ready");
}

/// A ConfigMap or Secret without a name in the input is an input error at its place,
/// not a complaint about a flag the user never gave (`--config-map "": must not be
/// empty`).
#[test]
fn a_nameless_config_map_or_secret_is_named_by_its_place() {
    for (kind, body) in [
        ("ConfigMap", "data: {DEBUG: 'True'}"),
        ("Secret", "stringData: {PW: pw-of-a-nameless-secret}"),
    ] {
        let stream = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: polls}}\n---\n\
             apiVersion: v1\nkind: {kind}\nmetadata: {{labels: {{app: polls}}}}\n{body}\n"
        );
        refused_stream(&stream)
            .stderr_is(&format!(
                "manifest-gen: <stdin>: document 2 (line 5): {kind} has no metadata.name, \
                 and the pods' envFrom needs one\n"
            ))
            .stderr_lacks("--config-map")
            .stderr_lacks("--secret")
            .no_secret("pw-of-a-nameless-secret");
    }
}

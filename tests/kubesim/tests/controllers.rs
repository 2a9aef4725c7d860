//! kubesim's simulated controllers as the installed kubectl sees them: cert-manager
//! (ClusterIssuers, ingress-shim, issuance, failures), Deployment rollouts with
//! ReplicaSets and Pods, Jobs and their Pods, the simulated kubelet's failures.

use crate::common::*;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

/// How long any wait below may take before the test fails: far more than the delays
/// configured, so a slow machine does not fail a test, while a hang still does.
const WAIT: &str = "--timeout=60s";

fn ingress(issuer: &str, hosts: &[&str]) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: polls-ingress
  annotations:
    kubernetes.io/ingress.class: "nginx"
    cert-manager.io/cluster-issuer: "{issuer}"
spec:
  tls:
  - hosts: [{hosts}]
    secretName: polls-tls
  rules:
  - host: {first}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: polls
            port:
              number: 8000
"#,
        hosts = hosts.join(", "),
        first = hosts[0],
    )
}

fn certificate(issuer_kind: &str, issuer: &str) -> String {
    format!(
        r#"apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: polls-tls
spec:
  secretName: polls-tls
  dnsNames: ["polls.example.com"]
  issuerRef:
    name: {issuer}
    kind: {issuer_kind}
    group: cert-manager.io
"#
    )
}

/// What `openssl x509` says about the first certificate of a PEM chain.
fn describe_certificate(pem: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-issuer",
            "-ext",
            "subjectAltName",
            "-startdate",
            "-enddate",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().unwrap().write_all(pem).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl cannot read the certificate: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn secret_file(secret: &Value, key: &str) -> Vec<u8> {
    let encoded = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("Secret has no {key}"));
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64 data")
}

/// What `openssl x509` says about the certificate in Secret polls-tls.
fn issued_certificate(sim: &Sim) -> String {
    describe_certificate(&secret_file(&sim.get_json("secret/polls-tls"), "tls.crt"))
}

fn wait_ready(sim: &Sim, generation: u32) {
    let jsonpath = format!(
        "--for=jsonpath={{.status.conditions[?(@.type==\"Ready\")].observedGeneration}}={generation}"
    );
    wait(sim, &jsonpath, "certificate/polls-tls");
    wait_cert_ready(sim);
}

/// `kubectl wait FOR WHAT`, within the test's generous limit; must succeed.
fn wait(sim: &Sim, for_: &str, what: &str) {
    sim.kubectl_ok(&["wait", for_, what, WAIT]);
}

/// Waits until Certificate polls-tls is Ready.
fn wait_cert_ready(sim: &Sim) {
    wait(sim, "--for=condition=Ready", "certificate/polls-tls");
}

/// Applies the polls Ingress for `issuer` and `hosts`, then waits for ingress-shim to
/// create Certificate polls-tls and for it to become Ready.
fn apply_ingress_until_ready(sim: &Sim, issuer: &str, hosts: &[&str]) {
    sim.apply_yaml(&ingress(issuer, hosts));
    wait(sim, "--for=create", "certificate/polls-tls");
    wait_cert_ready(sim);
}

/// Waits for CertificateRequest polls-tls-1 to be created and left Pending (its issuer
/// is missing), and returns it.
fn pending_request(sim: &Sim) -> Value {
    let pending = "--for=jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}=Pending";
    wait(sim, "--for=create", "certificaterequest/polls-tls-1");
    wait(sim, pending, "certificaterequest/polls-tls-1");
    sim.get_json("certificaterequest/polls-tls-1")
}

/// Waits for an Event about a `kind` object: controllers record Events in the
/// background, so one may land just after the status it reports on.
fn wait_for_event(sim: &Sim, kind: &str, reason: &str, message: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = sim.get_json("events");
        let found = events["items"].as_array().unwrap().iter().any(|e| {
            e["involvedObject"]["kind"] == kind && e["reason"] == reason && e["message"] == message
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} event {reason}: {message:?} in {events:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cluster_issuers_exist_and_are_ready_when_the_kubeconfig_is_written() {
    let sim = Sim::start(&["--cert-manager"]);
    let issuers = sim.get_json("clusterissuers");
    let mut names = Vec::new();
    for issuer in issuers["items"].as_array().unwrap() {
        let name = issuer["metadata"]["name"].as_str().unwrap();
        names.push(name.to_owned());
        let acme = &issuer["spec"]["acme"];
        let server = acme["server"].as_str().unwrap();
        assert_eq!(
            server.contains("staging"),
            name == "letsencrypt-staging",
            "{name}: {server}"
        );
        assert_eq!(acme["privateKeySecretRef"]["name"], name);
        assert_eq!(acme["solvers"][0]["http01"]["ingress"]["class"], "nginx");
        let ready = condition(issuer, "Ready");
        assert_eq!(ready["status"], "True", "{name}");
        assert_eq!(ready["reason"], "ACMEAccountRegistered");
        assert_eq!(
            ready["message"],
            "The ACME account was registered with the ACME server"
        );
        assert!(
            issuer["status"]["acme"]["uri"]
                .as_str()
                .unwrap()
                .starts_with(server.trim_end_matches("/directory"))
        );
    }
    names.sort();
    assert_eq!(names, ["letsencrypt-prod", "letsencrypt-staging"]);
}

#[test]
fn an_annotated_ingress_gets_a_ready_certificate_from_staging() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    apply_ingress_until_ready(
        &sim,
        "letsencrypt-staging",
        &["polls.example.com", "www.polls.example.com"],
    );

    let ingress = sim.get_json("ingress/polls-ingress");
    let cert = sim.get_json("certificate/polls-tls");
    let owner = &cert["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Ingress");
    assert_eq!(owner["uid"], ingress["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(cert["spec"]["secretName"], "polls-tls");
    assert_eq!(
        cert["spec"]["dnsNames"],
        serde_json::json!(["polls.example.com", "www.polls.example.com"])
    );
    assert_eq!(
        cert["spec"]["issuerRef"],
        serde_json::json!({"name": "letsencrypt-staging", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    let ready = condition(&cert, "Ready");
    assert_eq!(ready["reason"], "Ready");
    assert_eq!(
        ready["message"],
        "Certificate is up to date and has not expired"
    );
    assert_eq!(ready["observedGeneration"], cert["metadata"]["generation"]);
    let status = &cert["status"];
    assert_eq!(status["revision"], 1);
    for field in ["notBefore", "notAfter", "renewalTime"] {
        assert!(
            status[field].is_string(),
            "status.{field} missing: {status:#}"
        );
    }
    assert!(
        status.get("nextPrivateKeySecretName").is_none(),
        "{status:#}"
    );

    // The chain behind it, as cert-manager leaves it.
    let request = sim.get_json("certificaterequest/polls-tls-1");
    assert_eq!(
        request["metadata"]["annotations"]["cert-manager.io/certificate-name"],
        "polls-tls"
    );
    assert_eq!(
        request["metadata"]["ownerReferences"][0]["uid"],
        cert["metadata"]["uid"]
    );
    assert_eq!(condition(&request, "Approved")["status"], "True");
    assert_eq!(condition(&request, "Ready")["reason"], "Issued");
    let orders = sim.get_json("orders");
    let order = &orders["items"][0];
    assert_eq!(order["status"]["state"], "valid");
    assert_eq!(
        order["metadata"]["ownerReferences"][0]["uid"],
        request["metadata"]["uid"]
    );
    let challenges = sim.get_json("challenges");
    let mut domains: Vec<&str> = challenges["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["spec"]["type"], "HTTP-01");
            assert_eq!(c["status"]["state"], "valid");
            assert_eq!(
                c["metadata"]["ownerReferences"][0]["uid"],
                order["metadata"]["uid"]
            );
            c["spec"]["dnsName"].as_str().unwrap()
        })
        .collect();
    domains.sort();
    assert_eq!(domains, ["polls.example.com", "www.polls.example.com"]);

    // A real certificate for those names, issued by "Let's Encrypt staging".
    let secret = sim.get_json("secret/polls-tls");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(
        secret["metadata"]["annotations"]["cert-manager.io/issuer-name"],
        "letsencrypt-staging"
    );
    let text = describe_certificate(&secret_file(&secret, "tls.crt"));
    assert!(
        text.contains("DNS:polls.example.com, DNS:www.polls.example.com"),
        "{text}"
    );
    // In the order Let's Encrypt's intermediates have it.
    let issuer = "issuer=C = US, O = (STAGING) Let's Encrypt, CN = (STAGING) Ersatz Edamame E1";
    assert!(text.lines().any(|l| l == issuer), "{text}");
    assert!(
        text.lines().any(|l| l == "subject=CN = polls.example.com"),
        "{text}"
    );
    assert!(
        String::from_utf8(secret_file(&secret, "tls.key"))
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert!(
        describe_certificate(&secret_file(&secret, "ca.crt"))
            .contains("(STAGING) Ersatz Edamame E1")
    );
    let not_after = status["notAfter"].as_str().unwrap();
    let end = text
        .lines()
        .find_map(|l| l.strip_prefix("notAfter="))
        .unwrap();
    assert!(
        end.contains(&not_after[..4]),
        "notAfter {not_after} vs certificate's {end}"
    );
}

#[test]
fn cert_manager_records_its_events() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "200ms"]);
    apply_ingress_until_ready(&sim, "letsencrypt-staging", &["polls.example.com"]);
    let created = r#"Successfully created Certificate "polls-tls""#;
    wait_for_event(&sim, "Ingress", "CreateCertificate", created);
    let first = "Issuing certificate as Secret does not exist";
    wait_for_event(&sim, "Certificate", "Issuing", first);
    wait_for_event(
        &sim,
        "Certificate",
        "Requested",
        r#"Created new CertificateRequest resource "polls-tls-1""#,
    );
    wait_for_event(
        &sim,
        "CertificateRequest",
        "CertificateIssued",
        "Certificate fetched from issuer successfully",
    );
    wait_for_event(
        &sim,
        "Certificate",
        "Issuing",
        "The certificate has been successfully issued",
    );
}

#[test]
fn a_failing_challenge_fails_the_issuance_as_cert_manager_records_it() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "300ms",
        "--cert-fail",
        "challenge",
    ]);
    sim.apply_yaml(&certificate("ClusterIssuer", "letsencrypt-staging"));
    let failed = "--for=jsonpath={.status.conditions[?(@.type==\"Issuing\")].reason}=Failed";
    wait(&sim, failed, "certificate/polls-tls");

    let cert = sim.get_json("certificate/polls-tls");
    let issuing = condition(&cert, "Issuing");
    assert_eq!(issuing["status"], "False");
    assert_eq!(issuing["observedGeneration"], 1);
    let message = issuing["message"].as_str().unwrap();
    assert!(
        message.starts_with("The certificate request has failed to complete and will be retried: Failed to wait for order resource \"polls-tls-1-"),
        "{message}"
    );
    assert!(
        message.ends_with("to become ready: order is in \"invalid\" state: "),
        "{message}"
    );
    assert!(cert["status"]["lastFailureTime"].is_string());
    assert_eq!(cert["status"]["failedIssuanceAttempts"], 1);
    let ready = condition(&cert, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("DoesNotExist"))
    );

    let request = sim.get_json("certificaterequest/polls-tls-1");
    let request_ready = condition(&request, "Ready");
    assert_eq!(request_ready["reason"], "Failed");
    assert!(request["status"]["failureTime"].is_string());
    assert!(message.ends_with(request_ready["message"].as_str().unwrap()));
    let order = &sim.get_json("orders")["items"][0];
    assert_eq!(order["status"]["state"], "invalid");
    let challenge = &sim.get_json("challenges")["items"][0];
    assert_eq!(challenge["status"]["state"], "invalid");
    assert_eq!(
        challenge["status"]["reason"],
        "Waiting for HTTP-01 challenge propagation: wrong status code '404', expected '200'"
    );
    let secret = sim.kubectl_run(&["get", "secret", "polls-tls"]);
    assert!(!secret.status.success(), "a failed issuance left a Secret");
}

#[test]
fn a_missing_issuer_leaves_the_request_pending_until_it_appears() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "200ms"]);
    sim.apply_yaml(&certificate("ClusterIssuer", "letsencrypt-missing"));
    let request = pending_request(&sim);
    assert_eq!(
        condition(&request, "Ready")["message"],
        "Referenced \"ClusterIssuer\" not found: clusterissuer.cert-manager.io \"letsencrypt-missing\" not found"
    );
    let cert = sim.get_json("certificate/polls-tls");
    assert_eq!(condition(&cert, "Ready")["status"], "False");
    assert_eq!(condition(&cert, "Issuing")["status"], "True");
    let orders = sim.get_json("orders");
    assert_eq!(
        orders["items"].as_array().unwrap().len(),
        0,
        "an Order without an issuer"
    );

    sim.apply_yaml(
        r#"apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt-missing
spec:
  acme:
    email: admin@example.com
    server: https://acme-v02.api.letsencrypt.org/directory
    privateKeySecretRef:
      name: letsencrypt-missing
    solvers:
    - http01:
        ingress:
          class: nginx
"#,
    );
    wait(
        &sim,
        "--for=condition=Ready",
        "clusterissuer/letsencrypt-missing",
    );
    wait_cert_ready(&sim);
    let text = issued_certificate(&sim);
    assert!(
        text.contains("CN = E5") && text.contains("O = Let's Encrypt"),
        "{text}"
    );
}

#[test]
fn switching_the_ingress_to_production_reissues_the_certificate() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    sim.apply_yaml(&ingress("letsencrypt-staging", &["polls.example.com"]));
    wait(&sim, "--for=create", "certificate/polls-tls");
    wait_ready(&sim, 1);
    let staging = issued_certificate(&sim);
    assert!(staging.contains("(STAGING)"), "{staging}");

    sim.apply_yaml(&ingress("letsencrypt-prod", &["polls.example.com"]));
    wait_ready(&sim, 2);
    let cert = sim.get_json("certificate/polls-tls");
    assert_eq!(cert["metadata"]["generation"], 2);
    assert_eq!(cert["spec"]["issuerRef"]["name"], "letsencrypt-prod");
    assert_eq!(cert["status"]["revision"], 2);
    let request = sim.get_json("certificaterequest/polls-tls-2");
    assert_eq!(request["spec"]["issuerRef"]["name"], "letsencrypt-prod");
    assert_eq!(condition(&request, "Ready")["reason"], "Issued");
    let secret = sim.get_json("secret/polls-tls");
    assert_eq!(
        secret["metadata"]["annotations"]["cert-manager.io/issuer-name"],
        "letsencrypt-prod"
    );
    let prod = describe_certificate(&secret_file(&secret, "tls.crt"));
    assert!(
        prod.contains("CN = E5") && !prod.contains("STAGING"),
        "{prod}"
    );
    let reissue = "Issuing certificate as Secret was previously issued by ClusterIssuer.cert-manager.io/letsencrypt-staging";
    wait_for_event(&sim, "Certificate", "Issuing", reissue);
}

#[test]
fn deployments_roll_out_and_jobs_complete_after_the_delay() {
    let sim = Sim::start(&["--deploy-delay", "200ms"]);
    sim.apply_yaml(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: polls
spec:
  replicas: 2
  selector:
    matchLabels: {app: polls}
  template:
    metadata:
      labels: {app: polls}
    spec:
      containers:
      - name: polls
        image: polls:1
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: polls:1
        command: ["python", "manage.py", "migrate"]
"#,
    );
    let rollout = sim.kubectl_ok(&["rollout", "status", "deployment/polls", WAIT]);
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
    let deployment = sim.get_json("deployment/polls");
    let status = &deployment["status"];
    assert_eq!(
        status["observedGeneration"],
        deployment["metadata"]["generation"]
    );
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        assert_eq!(status[field], 2, "status.{field}: {status:#}");
    }
    assert_eq!(condition(&deployment, "Available")["status"], "True");
    assert_eq!(
        condition(&deployment, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );

    wait(&sim, "--for=condition=Complete", "job/migrate");
    let job = sim.get_json("job/migrate");
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["startTime"].is_string() && job["status"]["completionTime"].is_string());
    assert!(job["status"].get("active").is_none(), "{:#}", job["status"]);
    assert_eq!(condition(&job, "SuccessCriteriaMet")["status"], "True");
    assert_eq!(condition(&job, "Complete")["reason"], "CompletionsReached");

    // A new template is a new rollout, observed and completed again.
    let new_image =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"polls","image":"polls:2"}]}}}}"#;
    sim.kubectl_ok(&["patch", "deployment/polls", "--type=merge", "-p", new_image]);
    let rollout = sim.kubectl_ok(&["rollout", "status", "deployment/polls", WAIT]);
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
    let deployment = sim.get_json("deployment/polls");
    assert_eq!(deployment["metadata"]["generation"], 2);
    assert_eq!(deployment["status"]["observedGeneration"], 2);
}

#[test]
fn deleting_the_ingress_takes_the_certificate_and_its_requests_with_it() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "200ms"]);
    apply_ingress_until_ready(&sim, "letsencrypt-staging", &["polls.example.com"]);
    let order = sim.get_json("orders")["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let challenge = sim.get_json("challenges")["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    sim.kubectl_ok(&["delete", "ingress", "polls-ingress"]);
    for gone in [
        "certificate/polls-tls".to_owned(),
        "certificaterequest/polls-tls-1".into(),
        format!("order/{order}"),
        format!("challenge/{challenge}"),
    ] {
        wait(&sim, "--for=delete", &gone);
    }
    // The issued Secret stays, as with cert-manager's default (no owner reference).
    sim.kubectl_ok(&["get", "secret", "polls-tls"]);
}

#[test]
fn a_self_signed_issuer_in_the_namespace_issues_without_acme() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "200ms"]);
    sim.apply_yaml(&certificate("Issuer", "local"));
    let request = pending_request(&sim);
    assert_eq!(
        condition(&request, "Ready")["message"],
        "Referenced \"Issuer\" not found: issuer.cert-manager.io \"local\" not found"
    );

    sim.apply_yaml(
        "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata:\n  name: local\nspec:\n  selfSigned: {}\n",
    );
    wait(&sim, "--for=condition=Ready", "issuer/local");
    wait_cert_ready(&sim);
    let request = sim.get_json("certificaterequest/polls-tls-1");
    assert_eq!(condition(&request, "Ready")["reason"], "Issued");
    assert!(
        request["status"]["ca"].is_string(),
        "a non-ACME request carries its CA"
    );
    assert_eq!(
        sim.get_json("orders")["items"].as_array().unwrap().len(),
        0,
        "an Order for a non-ACME issuer"
    );
    let text = issued_certificate(&sim);
    assert!(
        text.contains("DNS:polls.example.com") && text.contains("CN = local"),
        "{text}"
    );
}

#[test]
fn a_deleted_secret_is_issued_again() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "200ms"]);
    sim.apply_yaml(&certificate("ClusterIssuer", "letsencrypt-prod"));
    wait_cert_ready(&sim);
    let first = sim.get_json("secret/polls-tls");

    sim.kubectl_ok(&["delete", "secret", "polls-tls"]);
    wait(
        &sim,
        "--for=jsonpath={.status.revision}=2",
        "certificate/polls-tls",
    );
    let cert = sim.get_json("certificate/polls-tls");
    assert_eq!(condition(&cert, "Ready")["status"], "True");
    assert_eq!(
        cert["metadata"]["generation"], 1,
        "a re-issue is no spec change"
    );
    let request = sim.get_json("certificaterequest/polls-tls-2");
    assert_eq!(condition(&request, "Ready")["reason"], "Issued");
    let second = sim.get_json("secret/polls-tls");
    assert_ne!(first["metadata"]["uid"], second["metadata"]["uid"]);
    assert_ne!(
        secret_file(&first, "tls.crt"),
        secret_file(&second, "tls.crt")
    );
}

#[test]
fn a_manual_renewal_issues_a_new_revision() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "200ms"]);
    sim.apply_yaml(&certificate("ClusterIssuer", "letsencrypt-staging"));
    wait_cert_ready(&sim);

    // What `cmctl renew` writes: Issuing=True, reason ManuallyTriggered, next to Ready.
    let ready = condition(&sim.get_json("certificate/polls-tls"), "Ready").clone();
    let renew = serde_json::json!({"status": {"conditions": [ready, {
        "type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
        "message": "Certificate re-issuance manually triggered",
        "lastTransitionTime": "2026-11-24T18:00:00Z", "observedGeneration": 1,
    }]}});
    let renew = renew.to_string();
    sim.kubectl_ok(&[
        "patch",
        "certificate/polls-tls",
        "--subresource=status",
        "--type=merge",
        "-p",
        &renew,
    ]);
    wait(
        &sim,
        "--for=jsonpath={.status.revision}=2",
        "certificate/polls-tls",
    );
    let cert = sim.get_json("certificate/polls-tls");
    assert_eq!(condition(&cert, "Ready")["status"], "True");
    let issuing = cert["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Issuing");
    assert!(
        !issuing,
        "Issuing stays after the renewal: {:#}",
        cert["status"]
    );
    assert_eq!(
        condition(&sim.get_json("certificaterequest/polls-tls-2"), "Ready")["reason"],
        "Issued"
    );
}

/// The tutorial's step 8: `kubectl describe` lists cert-manager's events under the
/// Ingress and the Certificate (kubectl finds them with an involvedObject field selector).
#[test]
fn kubectl_describe_shows_cert_managers_events() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    sim.apply_yaml(&ingress("letsencrypt-staging", &["polls.example.com"]));
    wait_cert_ready(&sim);
    let events = |text: &str| {
        text.split("\nEvents:\n")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let ingress = events(&sim.kubectl_ok(&["describe", "ingress", "polls-ingress"]));
    assert!(
        ingress.contains("CreateCertificate")
            && ingress.contains("Successfully created Certificate \"polls-tls\""),
        "{ingress}"
    );
    let certificate = events(&sim.kubectl_ok(&["describe", "certificate", "polls-tls"]));
    for (reason, message) in [
        ("Issuing", "Issuing certificate as Secret does not exist"),
        (
            "Generated",
            "Stored new private key in temporary Secret resource \"polls-tls-",
        ),
        (
            "Requested",
            "Created new CertificateRequest resource \"polls-tls-1\"",
        ),
        ("Issuing", "The certificate has been successfully issued"),
    ] {
        assert!(
            certificate
                .lines()
                .any(|l| l.contains(&format!(" {reason} ")) && l.contains(message)),
            "no {reason} event {message:?}:\n{certificate}"
        );
    }
    // Only the Certificate's own events: the CertificateRequest's are not listed.
    assert!(
        !certificate.contains("cert-manager-certificaterequests"),
        "{certificate}"
    );
}

fn web_deployment(image: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  strategy:
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}{extra}
"#
    )
}

#[test]
fn deployments_make_replica_sets_and_pods_and_roll_within_max_surge() {
    let sim = Sim::start(&["--deploy-delay", "150ms"]);
    sim.apply_yaml(&web_deployment("polls:1", ""));
    sim.kubectl_ok(&["rollout", "status", "deployment/web", WAIT]);
    let rs = sim.get_json("rs");
    let items = rs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{rs:#}");
    let hash = items[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(items[0]["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        items[0]["metadata"]["ownerReferences"][0]["kind"],
        "Deployment"
    );
    assert_eq!(
        items[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let pods = sim.kubectl_ok(&["get", "pod", "-l", &format!("pod-template-hash={hash}")]);
    assert_eq!(pods.matches(" Running ").count(), 4, "{pods}");

    // A new template: never more than replicas + maxSurge pods wanted by the
    // ReplicaSets, never fewer ready than maxUnavailable allows, as kubectl sees it
    // while it rolls. (Pods, not wanted ones: a pod being deleted may still be listed,
    // as a terminating one is on a real cluster.)
    sim.kubectl_ok(&["set", "image", "deployment/web", "web=polls:2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sets = sim.get_json("rs");
        let wanted: i64 = sets["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rs| rs["spec"]["replicas"].as_i64().unwrap_or(0))
            .sum();
        assert!(
            wanted <= 5,
            "more than replicas + maxSurge pods wanted: {sets:#}"
        );
        let pods = sim.get_json("pods");
        let all = pods["items"].as_array().unwrap();
        let ready = all
            .iter()
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count();
        assert!(
            ready >= 3,
            "fewer ready pods than maxUnavailable allows: {ready}"
        );
        let d = sim.get_json("deployment/web");
        if d["status"]["updatedReplicas"] == 4
            && d["status"]["availableReplicas"] == 4
            && d["status"]["replicas"] == 4
        {
            break;
        }
        assert!(Instant::now() < deadline, "rollout did not finish: {d:#}");
        std::thread::sleep(Duration::from_millis(30));
    }
    let rs = sim.kubectl_ok(&["get", "rs"]);
    assert_eq!(rs.lines().count(), 3, "two ReplicaSets: {rs}");
    let describe = sim.kubectl_ok(&["describe", "deployment/web"]);
    assert!(
        describe.contains("Scaled down replica set web-"),
        "{describe}"
    );
    assert!(describe.contains("NewReplicaSet:"), "{describe}");
}

#[test]
fn kubelet_failures_show_in_kubectl_as_on_a_cluster() {
    let sim = Sim::start(&[
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        ":bad$=ImagePullBackOff",
        "--pods-fail",
        ":crash$=CrashLoopBackOff:2",
    ]);
    sim.apply_yaml(&web_deployment("polls:bad", ""));
    let pod_in = |state: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pods = sim.kubectl_ok(&["get", "pod", "--no-headers"]);
            if let Some(line) = pods.lines().find(|l| l.contains(state)) {
                return line.split_whitespace().next().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no pod in {state}: {pods}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let pod = pod_in("ImagePullBackOff");
    let describe = sim.kubectl_ok(&["describe", "pod", &pod]);
    for expected in [
        "Reason:       ImagePullBackOff",
        "Successfully assigned default/",
        "Failed to pull image \"polls:bad\"",
        "Back-off pulling image \"polls:bad\"",
    ] {
        assert!(describe.contains(expected), "{expected:?} in {describe}");
    }
    Run::from(sim.kubectl_run(&["logs", &pod]))
        .stderr_has("is waiting to start: trying and failing to pull image");

    sim.kubectl_ok(&["set", "image", "deployment/web", "web=polls:crash"]);
    let pod = pod_in("CrashLoopBackOff");
    let describe = sim.kubectl_ok(&["describe", "pod", &pod]);
    assert!(describe.contains("Exit Code:    2"), "{describe}");
    assert!(
        describe.contains("Back-off restarting failed container web"),
        "{describe}"
    );
    let logs = sim.kubectl_ok(&["logs", &pod, "--tail", "1"]);
    assert_eq!(logs, "exited with code 2\n");

    // A missing Secret: CreateContainerConfigError with the kubelet's message.
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"polls:3","envFrom":[{"secretRef":{"name":"nothere"}}]}]}}}}"#;
    sim.kubectl_ok(&["patch", "deployment/web", "-p", patch]);
    let pod = pod_in("CreateContainerConfigError");
    let describe = sim.kubectl_ok(&["describe", "pod", &pod]);
    assert!(
        describe.contains("Error: secret \"nothere\" not found"),
        "{describe}"
    );
}

#[test]
fn a_deployment_without_progress_exceeds_its_deadline() {
    let sim = Sim::start(&[
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        "huge=Unschedulable",
    ]);
    sim.apply_yaml(
        &web_deployment("polls:huge", "")
            .replace("replicas: 4", "replicas: 1\n  progressDeadlineSeconds: 1"),
    );
    let out = Run::from(sim.kubectl_run(&["rollout", "status", "deployment/web", WAIT]));
    assert!(!out.status.success(), "{}", out.stderr());
    out.stderr_has("exceeded its progress deadline");
    let pending = sim.kubectl_ok(&["get", "pod"]);
    assert!(pending.contains("Pending"), "{pending}");
}

#[test]
fn a_job_whose_pods_fail_gives_up_at_its_backoff_limit() {
    let sim = Sim::start(&[
        "--deploy-delay",
        "100ms",
        "--pods-fail",
        "crash=CrashLoopBackOff:1",
    ]);
    sim.apply_yaml(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: polls:crash
"#,
    );
    wait(&sim, "--for=condition=Failed", "job/migrate");
    let job = sim.get_json("job/migrate");
    assert_eq!(job["status"]["failed"], 3, "{:#}", job["status"]);
    assert_eq!(condition(&job, "Failed")["reason"], "BackoffLimitExceeded");
    let pods = sim.kubectl_ok(&["get", "pod", "-l", "job-name=migrate", "--no-headers"]);
    assert_eq!(pods.matches(" Error ").count(), 3, "{pods}");
}

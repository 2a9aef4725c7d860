//! certwait as a user runs it: against the simulator and its simulated cert-manager,
//! with pipes, exit codes and stderr.

use crate::common::*;

fn certificate(name: &str, issuer: &str, dns: &str) -> String {
    format!(
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: {name}\nspec:\n  \
         secretName: {name}\n  dnsNames: [{dns}]\n  issuerRef:\n    name: {issuer}\n    \
         kind: ClusterIssuer\n    group: cert-manager.io\n"
    )
}

fn ingress(secret: &str, issuer: &str, host: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: polls\n  \
         annotations:\n    cert-manager.io/cluster-issuer: {issuer}\nspec:\n  ingressClassName: nginx\n  \
         tls:\n  - hosts: [{host}]\n    secretName: {secret}\n  rules:\n  - host: {host}\n    http:\n      \
         paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            \
         name: polls\n            port: {{number: 80}}\n"
    )
}

/// Applies Certificate `name` for `dns` from ClusterIssuer `issuer`.
fn apply_certificate(sim: &Sim, name: &str, issuer: &str, dns: &str) {
    sim.apply_yaml(&certificate(name, issuer, dns));
}

/// `kubectl patch certificate NAME --subresource=status` with a merge patch.
fn patch_status(sim: &Sim, name: &str, patch: &str) {
    sim.kubectl_ok(&[
        "patch",
        "certificate",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    ]);
}

/// Waits (with kubectl) until the simulated controller has written the first status, so
/// that patches written afterwards are not overwritten by it.
fn wait_issuing(sim: &Sim, name: &str) {
    sim.kubectl_ok(&[
        "wait",
        "--for=condition=Issuing",
        &format!("certificate/{name}"),
        "--timeout=30s",
    ]);
}

/// A simulator whose cert-manager takes an hour to issue, with Certificate `name` for
/// `dns` from letsencrypt-staging applied and the first status written.
fn stalled_certificate(name: &str, dns: &str) -> Sim {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "1h"]);
    apply_certificate(&sim, name, "letsencrypt-staging", dns);
    wait_issuing(&sim, name);
    sim
}

/// certwait with `args`, no cluster.
fn certwait(args: &[&str]) -> Run {
    cmd("certwait").args(args).run()
}

/// certwait with `args` against the simulator.
fn certwait_on(sim: &Sim, args: &[&str]) -> Run {
    let out = sim.cmd("certwait").args(args).run();
    let log = sim.log();
    out.context(format!("kubesim log:\n{log}"))
}

/// certwait reading `stream` on stdin against the simulator.
fn certwait_stdin(sim: &Sim, args: &[&str], stream: &str) -> Run {
    let out = sim.cmd("certwait").args(args).run_with(stream);
    let log = sim.log();
    out.context(format!("kubesim log:\n{log}"))
}

/// `certwait NAME --timeout 2m` against the simulator, in the background.
fn certwait_background(sim: &Sim, name: &str) -> Background {
    let mut c = sim.cmd("certwait");
    c.args([name, "--timeout", "2m"]);
    Background::start(c)
}

/// [`certwait_background`], once it has said that the Certificate does not exist yet.
fn until_created(sim: &Sim, name: &str) -> Background {
    let mut waiting = certwait_background(sim, name);
    waiting.expect_line(&format!(
        "default/{name}: waiting for the Certificate to be created"
    ));
    waiting
}

/// Waits for the exit; the whole run, with the simulator's log for failure messages.
fn finish(sim: &Sim, waiting: Background) -> Run {
    let run = waiting.finish();
    let log = sim.log();
    run.context(format!("kubesim log:\n{log}"))
}

#[test]
fn a_certificate_that_never_appears_is_talked_about_until_the_timeout() {
    // cert-manager is installed, but nothing makes the Certificate (no Ingress).
    let sim = Sim::start(&["--cert-manager"]);
    let mut c = sim.cmd("certwait");
    c.args(["polls-tls", "--timeout", "12s"]);
    let mut waiting = Background::start(c);
    waiting.expect_line("default/polls-tls: waiting for the Certificate to be created");
    // Not a terminal: a plain line now and then (every 10 s), with the likely cause.
    waiting.expect_line("default/polls-tls: still no Certificate after 10");
    finish(&sim, waiting).code(124).stdout_empty().stderr_has(
        "cert-manager's ingress-shim makes it for an Ingress annotated \
             cert-manager.io/cluster-issuer with a tls secretName polls-tls",
    );
}

#[test]
fn a_watch_that_is_not_allowed_ends_the_wait_at_once_as_in_kapply() {
    // RBAC lets the user list Certificates but not watch them: the same words as
    // `kapply --wait` says it, exit 1, long before --timeout (an hour: a run that waits
    // for it is killed and fails). How soon: bench/deadlines.sh.
    let sim = Sim::start(&[
        "--cert-manager",
        "--faults",
        "403:1000@GET/apis/cert-manager.io/v1/namespaces/default/certificates?watch",
    ]);
    let mut c = sim.cmd("certwait");
    c.args(["polls-tls", "--timeout", "1h"]);
    // After a progress line with a time in it.
    run_bounded(&mut c).code(1).stdout_empty().stderr_has(
        "certwait: cannot watch certificates.cert-manager.io in namespace default: forbidden (403)",
    );
}

// --- bad input: exit 2, nothing on stdout, no cluster needed --------------------------

/// certwait reading `stream` on stdin must reject it as bad input saying `message`.
#[track_caller]
fn assert_bad_stdin(stream: &str, message: &str) {
    assert_bad_input(&cmd("certwait").run_with(stream), message);
}

/// Bad input: exit 2, nothing on stdout, `message` (a `certwait: ` line) on stderr.
#[track_caller]
fn assert_bad_input(out: &Run, message: &str) {
    out.code(2).stdout_empty().stderr_is(message);
    assert!(message.starts_with("certwait: "), "{message}");
}

#[test]
fn invalid_certificate_name_is_bad_input() {
    assert_bad_input(
        &certwait(&["Polls_TLS"]),
        "certwait: invalid Certificate name \"Polls_TLS\": a lowercase RFC 1123 subdomain \
         must consist of lower case alphanumeric characters, '-' or '.', and must start and \
         end with an alphanumeric character\n",
    );
}

#[test]
fn names_and_all_together_are_a_usage_error() {
    let out = certwait(&["--all", "polls-tls"]);
    out.code(2).stdout_empty().stderr_is(
        "error: the argument '--all' cannot be used with '[NAME]...'\n\
         \n\
         Usage: certwait --all [NAME]...\n\
         \n\
         For more information, try '--help'.\n",
    );
}

#[test]
fn bad_timeout_is_a_usage_error() {
    let out = certwait(&["--timeout", "soon", "polls-tls"]);
    out.code(2).stdout_empty().stderr_is(
        "error: invalid value 'soon' for '--timeout <DURATION>': invalid duration \"soon\" \
         (expected number at 0); use e.g. 30s, 5m, 1h\n\
         \n\
         For more information, try '--help'.\n",
    );
}

#[test]
fn stream_without_certificates_is_bad_input() {
    let stream = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: polls}\ndata: {A: b}\n";
    assert_bad_stdin(
        stream,
        "certwait: <stdin>: no Certificate, and no Ingress annotated with \
         cert-manager.io/cluster-issuer or cert-manager.io/issuer: nothing to wait for\n",
    );
}

#[test]
fn invalid_yaml_on_stdin_names_the_line() {
    let stream = certificate("a", "letsencrypt-staging", "a.example") + "---\nkind: [\n";
    assert_bad_stdin(
        &stream,
        "certwait: <stdin>: document 2 (line 13): invalid YAML: unclosed bracket '['\n",
    );
}

#[test]
fn unquoted_yaml11_values_on_stdin_are_bad_input() {
    let stream = certificate("a", "letsencrypt-staging", "a.example")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  DEBUG: off\n";
    assert_bad_stdin(
        &stream,
        "certwait: <stdin>: document 2 (line 17): ConfigMap data key \"DEBUG\": Kubernetes \
         (YAML 1.1) reads this unquoted value as a boolean, and the API server accepts only \
         strings there; quote the value\n",
    );
}

#[test]
fn ingress_tls_without_secret_name_is_bad_input() {
    let stream = ingress("polls-tls", "letsencrypt-staging", "polls.example.com")
        .replace("    secretName: polls-tls\n", "");
    assert_bad_stdin(
        &stream,
        "certwait: <stdin>: document 1 (line 1): Ingress/polls spec.tls[0] has no secretName; \
         cert-manager names the certificate after it and skips entries without one\n",
    );
}

#[test]
fn old_certificate_api_version_is_bad_input() {
    let stream = certificate("a", "x", "a.example")
        .replace("cert-manager.io/v1\n", "cert-manager.io/v1alpha2\n");
    assert_bad_stdin(
        &stream,
        "certwait: <stdin>: document 1 (line 1): Certificate apiVersion \
         \"cert-manager.io/v1alpha2\" is not served by cert-manager 1.x; use cert-manager.io/v1\n",
    );
}

// --- against the simulator ---------------------------------------------------------------

#[test]
fn waits_for_ready_then_prints_the_certificate_and_the_staging_warning() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "500ms"]);
    apply_certificate(
        &sim,
        "polls-tls",
        "letsencrypt-staging",
        "polls.example.com",
    );
    let out = certwait_on(&sim, &["polls-tls"]);
    out.success()
        .stderr_has("default/polls-tls: Ready=True Ready")
        .stderr_has("Let's Encrypt's STAGING CA")
        .stderr_has("browsers will not trust it")
        .stderr_has("letsencrypt-prod");
    let data = out.stdout();
    let fields: Vec<&str> = data.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 4, "{data}");
    assert_eq!(fields[0], "default/polls-tls");
    assert_eq!(fields[1], "polls.example.com");
    assert!(fields[2].contains("(STAGING) Ersatz Edamame E1"), "{data}");
    assert!(fields[3].ends_with('Z') && fields[3].len() == 20, "{data}");

    // No secret material anywhere in what certwait wrote.
    let key_b64 = stdout(&sim.kubectl_run(&[
        "get",
        "secret",
        "polls-tls",
        "-o",
        "jsonpath={.data.tls\\.key}",
    ]));
    assert!(
        key_b64.len() > 100,
        "the simulator wrote no tls.key: {key_b64}"
    );
    let key_pem = base64_decode(&key_b64);
    let body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for secret in [&key_b64[..40], &body[..40], "PRIVATE KEY"] {
        out.stdout_lacks(secret).stderr_lacks(secret);
    }
    out.no_secrets(&[&key_b64[..40], &body[..40]]);
}

#[test]
fn a_certificate_created_after_certwait_started_is_waited_for() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    let waiting = until_created(&sim, "later-tls");
    apply_certificate(&sim, "later-tls", "letsencrypt-prod", "later.example.com");
    let out = finish(&sim, waiting);
    out.success().stdout_has("CN=E5").stderr_lacks("STAGING");
    assert!(
        out.stdout()
            .starts_with("default/later-tls\tlater.example.com\t"),
        "{}",
        out.stdout()
    );
}

#[test]
fn names_come_from_an_ingress_on_stdin() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    let stream = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: polls}}\nspec:\n  ports: [{{port: 80}}]\n---\n{}",
        ingress("polls-tls", "letsencrypt-staging", "polls.example.com")
    );
    sim.apply_yaml(&stream);
    let out = certwait_stdin(&sim, &[], &stream);
    let data = out.success().stdout();
    assert!(
        data.starts_with("default/polls-tls\tpolls.example.com\t"),
        "{data}"
    );
    assert_eq!(data.lines().count(), 1, "{data}");
}

#[test]
fn several_certificates_one_line_each_and_all() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    sim.apply_yaml(
        &(certificate("a-tls", "letsencrypt-staging", "a.example.com")
            + "---\n"
            + &certificate("b-tls", "letsencrypt-prod", "b.example.com")),
    );
    let out = certwait_on(&sim, &["b-tls", "a-tls"]);
    let lines: Vec<String> = out.success().stdout().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("default/a-tls\ta.example.com\t"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("default/b-tls\tb.example.com\t"),
        "{lines:?}"
    );
    let warnings = out.stderr().matches("STAGING CA").count();
    assert_eq!(warnings, 1, "only a-tls is from staging: {}", out.stderr());

    // -q: the same lines, no progress.
    certwait_on(&sim, &["--all", "-q"])
        .success()
        .stdout_is(&out.stdout())
        .stderr_is(
            "certwait: warning: default/a-tls was issued by Let's Encrypt's STAGING CA (C=US, \
             O=(STAGING) Let's Encrypt, CN=(STAGING) Ersatz Edamame E1): browsers will not \
             trust it. When everything works, switch the Ingress to the production \
             ClusterIssuer letsencrypt-prod (`make promote`, or `manifest-gen --issuer \
             letsencrypt-prod ... | kapply`) and run certwait again.\n",
        )
        .stderr_lacks("Ready=True");
}

#[test]
fn stream_objects_keep_their_namespaces() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    let web = certificate("web-tls", "letsencrypt-prod", "web.example.com")
        .replace("  name: web-tls\n", "  name: web-tls\n  namespace: web\n");
    let stream = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: web}}\n---\n{web}---\n{}",
        certificate("home-tls", "letsencrypt-prod", "home.example.com")
    );
    sim.apply_yaml(&stream);
    let data = certwait_stdin(&sim, &[], &stream).success().stdout();
    let names: Vec<&str> = data.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(names, ["default/home-tls", "web/web-tls"], "{data}");

    // -n must agree with the objects' own namespace, as with kubectl.
    certwait_stdin(&sim, &["-n", "default"], &stream)
        .code(2)
        .stdout_empty()
        .stderr_is(
            "certwait: <stdin>: document 2 (line 5): Certificate/web-tls: its namespace \"web\" \
             does not match -n \"default\" (drop -n or pass -n web)
",
        );
}

#[test]
fn failed_issuance_prints_the_chain_and_exits_1() {
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "500ms",
        "--cert-fail",
        "challenge",
    ]);
    apply_certificate(
        &sim,
        "polls-tls",
        "letsencrypt-staging",
        "polls.example.com",
    );
    let out = certwait_on(&sim, &["polls-tls"]);
    // Progress lines with times, a failure time: no whole output.
    out.code(1).stdout_empty();
    for expected in [
        "Certificate default/polls-tls:",
        "Issuing: False, Reason: Failed",
        "Issuer: ClusterIssuer letsencrypt-staging",
        "CertificateRequest: ",
        "Order: ",
        "State: invalid",
        "HTTP-01, Domain: polls.example.com, State: invalid",
        "wrong status code '404'",
        "Hint: Let's Encrypt could not fetch http://polls.example.com/",
        "certwait: default/polls-tls: issuance failed at ",
    ] {
        out.stderr_has(expected);
    }
}

#[test]
fn timeout_exits_124_after_the_diagnosis() {
    let sim = stalled_certificate("slow-tls", "slow.example.com");
    certwait_on(&sim, &["slow-tls", "--timeout", "1s"])
        .code(124)
        .stderr_has("Certificate default/slow-tls:")
        .stderr_has("Ready: False")
        .stderr_has("certwait: timed out after 1.0s waiting for default/slow-tls");
}

#[test]
fn an_old_failure_is_not_fatal_but_a_new_one_is() {
    let sim = stalled_certificate("old-tls", "old.example.com");
    let failed = |at: &str| {
        format!(
            r#"{{"status":{{"lastFailureTime":"{at}","failedIssuanceAttempts":1,"conditions":[
            {{"type":"Ready","status":"False","reason":"DoesNotExist","message":"Issuing certificate as Secret does not exist","observedGeneration":1}},
            {{"type":"Issuing","status":"False","reason":"Failed","message":"The certificate request has failed to complete and will be retried","observedGeneration":1}}]}}}}"#
        )
    };
    patch_status(&sim, "old-tls", &failed("2020-01-01T00:00:00Z"));
    let mut waiting = certwait_background(&sim, "old-tls");
    waiting.expect_line("Issuing=False Failed");
    patch_status(&sim, "old-tls", &failed("2020-01-01T01:00:00Z"));
    finish(&sim, waiting)
        .code(1)
        .stderr_has("issuance failed at 2020-01-01T01:00:00Z");
}

#[test]
fn ready_for_an_older_generation_is_not_ready() {
    let sim = stalled_certificate("gen-tls", "gen.example.com");
    let ready = |observed: u32| {
        format!(
            r#"{{"status":{{"notAfter":"2027-02-22T00:00:00Z","conditions":[{{"type":"Ready","status":"True","reason":"Ready","message":"Certificate is up to date and has not expired","observedGeneration":{observed}}}]}}}}"#
        )
    };
    patch_status(&sim, "gen-tls", &ready(0));
    let mut waiting = certwait_background(&sim, "gen-tls");
    waiting.expect_line("(for generation 0, the spec is at 1)");
    patch_status(&sim, "gen-tls", &ready(1));
    // The simulated controller never got to write the Secret: the status stands in.
    finish(&sim, waiting)
        .success()
        .stdout_is("default/gen-tls\tgen.example.com\t-\t2027-02-22T00:00:00Z\n")
        .stderr_has("cannot read the certificate in Secret default/gen-tls");
}

/// How many of certwait's requests the simulator logged as `tail` (`METHOD PATH ->
/// OUTCOME`); the simulated controllers (exempt from faults) and kubectl left out.
fn certwait_lines(sim: &Sim, tail: &str) -> usize {
    let tail = format!("{tail} [");
    sim.tool_requests()
        .iter()
        .filter(|l| l.contains(&tail))
        .count()
}

const CERTIFICATES: &str = "GET /apis/cert-manager.io/v1/namespaces/default/certificates";

#[test]
fn dropped_watch_streams_are_resumed() {
    // Every watch stream of certwait ends after one event, while the simulated
    // cert-manager issues the certificate.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "1s",
        "--faults",
        "watch-close:1",
    ]);
    let waiting = until_created(&sim, "flaky-tls");
    apply_certificate(
        &sim,
        "flaky-tls",
        "letsencrypt-staging",
        "flaky.example.com",
    );
    let out = finish(&sim, waiting);
    out.success().stderr_lacks("expired (410");
    assert!(
        out.stdout().starts_with("default/flaky-tls\t"),
        "{}",
        out.stdout()
    );
    // Created, Issuing, Ready: each in a stream of its own, the first two cut.
    let cut = certwait_lines(
        &sim,
        &format!("{CERTIFICATES}?watch -> closed after 1 events (watch-close)"),
    );
    assert!(
        cut >= 2,
        "certwait's streams cut {cut} times:\n{}",
        sim.log()
    );
    let watches = certwait_lines(&sim, &format!("{CERTIFICATES}?watch -> 200"));
    assert!(watches >= 3, "{watches} watches:\n{}", sim.log());
    assert_eq!(
        certwait_lines(&sim, &format!("{CERTIFICATES} -> 200")),
        1,
        "resuming from the last resourceVersion needs no re-list:\n{}",
        sim.log()
    );
}

#[test]
fn a_watch_answered_410_gone_lists_again() {
    // Certwait's first watches from a resourceVersion are answered with an ERROR
    // event 410 Expired (fixture 47) and its streams are cut after each event, while
    // the simulated cert-manager issues: it lists again each time and sees it through.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "1s",
        "--faults",
        "watch-gone:3,watch-close:1",
    ]);
    let mut waiting = until_created(&sim, "gone-tls");
    waiting.expect_line("watch in default expired (410");
    apply_certificate(&sim, "gone-tls", "letsencrypt-staging", "gone.example.com");
    let data = finish(&sim, waiting).success().stdout();
    assert!(
        data.starts_with("default/gone-tls\tgone.example.com\t"),
        "{data}"
    );
    assert_eq!(
        certwait_lines(
            &sim,
            &format!("{CERTIFICATES}?watch -> 200 ERROR 410 Expired (watch-gone)")
        ),
        3,
        "{}",
        sim.log()
    );
    // The first list, one after each 410.
    let lists = certwait_lines(&sim, &format!("{CERTIFICATES} -> 200"));
    assert!(lists >= 4, "{lists} lists:\n{}", sim.log());
}

#[test]
fn a_flaky_api_server_at_startup_is_survived() {
    // certwait's first two GETs (its start-up checks) fail with 503.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "300ms",
        "--faults",
        "503:2@GET",
    ]);
    let waiting = until_created(&sim, "retry-tls");
    apply_certificate(&sim, "retry-tls", "letsencrypt-prod", "retry.example.com");
    let data = finish(&sim, waiting).success().stdout();
    assert!(data.starts_with("default/retry-tls\t"), "{data}");
    assert_eq!(certwait_lines(&sim, " -> 503"), 2, "{}", sim.log());
}

#[test]
fn without_cert_manager_it_fails_at_once() {
    let sim = Sim::start(&[]);
    certwait_on(&sim, &["polls-tls"])
        .code(1)
        .stdout_empty()
        .stderr_is(
            "certwait: cert-manager is not installed: the cluster does not serve \
             cert-manager.io/v1 Certificates (https://cert-manager.io/docs/installation/)\n",
        );
}

#[test]
fn a_missing_issuer_fails_unless_keep_waiting() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    apply_certificate(&sim, "lost-tls", "letsencrypt-nope", "lost.example.com");
    certwait_on(&sim, &["lost-tls"])
        .code(1)
        .stderr_has("ClusterIssuer letsencrypt-nope does not exist")
        .stderr_has("Hint: create the ClusterIssuer letsencrypt-nope");

    // The CertificateRequest the simulated cert-manager leaves pending, for the chain.
    for condition in ["--for=create", "--for=condition=Ready=false"] {
        sim.kubectl_ok(&[
            "wait",
            condition,
            "certificaterequest/lost-tls-1",
            "--timeout=30s",
        ]);
    }
    certwait_on(&sim, &["lost-tls", "--keep-waiting", "--timeout", "1s"])
        .code(124)
        .stderr_has("warning: default/lost-tls: ClusterIssuer letsencrypt-nope does not exist")
        // The CertificateRequest's reason.
        .stderr_has("Referenced \"ClusterIssuer\" not found");
}

/// certwait reading `stream` on stdin, giving up after `timeout`.
fn certwait_stream(sim: &Sim, stream: &str, timeout: &str) -> Run {
    certwait_stdin(sim, &["--timeout", timeout], stream)
}

/// `make promote`'s race: kapply has switched the Ingress to letsencrypt-prod, but
/// ingress-shim has not updated the Certificate yet, which is still Ready=True for its
/// (staging) generation. Not applying the new Ingress freezes that moment.
#[test]
fn a_certificate_not_yet_switched_to_the_streams_issuer_is_not_ready() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    let staging = ingress("polls-tls", "letsencrypt-staging", "polls.example.com");
    sim.apply_yaml(&staging);
    certwait_stream(&sim, &staging, "1m")
        .success()
        .stdout_has("(STAGING)");

    let prod = ingress("polls-tls", "letsencrypt-prod", "polls.example.com");
    certwait_stream(&sim, &prod, "2s")
        .code(124)
        .stdout_empty()
        .stderr_has(
            "default/polls-tls: waiting for cert-manager to update the Certificate \
             (issuer ClusterIssuer letsencrypt-staging -> letsencrypt-prod)",
        )
        .stderr_has("Hint: the Certificate does not have the spec the input asks for yet");

    sim.apply_yaml(&prod);
    let out = certwait_stream(&sim, &prod, "1m");
    out.success()
        .stdout_has("CN=E5")
        .stdout_lacks("STAGING")
        .stderr_lacks("STAGING");
    let data = out.stdout();
    assert!(
        data.starts_with("default/polls-tls\tpolls.example.com\t"),
        "{data}"
    );
}

/// The same race for a changed host list: the Certificate still covers the old names.
#[test]
fn a_certificate_not_yet_covering_the_streams_hosts_is_not_ready() {
    let sim = Sim::start(&["--cert-manager", "--cert-delay", "300ms"]);
    let one = ingress("polls-tls", "letsencrypt-prod", "polls.example.com");
    sim.apply_yaml(&one);
    certwait_stream(&sim, &one, "1m").success();

    let two = one.replace(
        "hosts: [polls.example.com]",
        "hosts: [www.polls.example.com, polls.example.com]",
    );
    certwait_stream(&sim, &two, "2s")
        .code(124)
        .stdout_empty()
        .stderr_has(
            "default/polls-tls: waiting for cert-manager to update the Certificate \
             (dnsNames polls.example.com -> polls.example.com, www.polls.example.com)",
        );

    sim.apply_yaml(&two);
    let data = certwait_stream(&sim, &two, "1m").success().stdout();
    let fields: Vec<&str> = data.trim_end().split('\t').collect();
    let mut names: Vec<&str> = fields[1].split(',').collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["polls.example.com", "www.polls.example.com"],
        "{data}"
    );
}

fn base64_decode(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The simulator's address as its kubeconfig gives it (`https://127.0.0.1:PORT/`).
fn server(sim: &Sim) -> String {
    let kubeconfig = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let line = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server in the kubeconfig");
    format!("{}/", line.trim_end_matches('/'))
}

/// certwait `args` against `sim`, which must end by itself (see [`run_bounded`]).
fn certwait_bounded(sim: &Sim, args: &[&str]) -> Run {
    let mut c = sim.cmd("certwait");
    c.args(args);
    run_bounded(&mut c).context(format!("kubesim log:\n{}", sim.log()))
}

// How soon after --timeout certwait ends on such servers: bench/deadlines.sh.
#[test]
fn timeout_bounds_a_server_that_accepts_and_never_answers() {
    for fault in ["hang", "trickle:200ms"] {
        let sim = Sim::start(&["--cert-manager", "--faults", fault]);
        certwait_bounded(&sim, &["polls-tls", "--timeout", "1s"])
            .code(124)
            .stderr_is(&format!(
                "certwait: timed out after 1.0s asking {} whether it serves cert-manager.io/v1\n",
                server(&sim)
            ));
    }
}

#[test]
fn timeout_bounds_the_diagnosis_too() {
    // The Certificate is seen, then the server goes away for good: the diagnosis at the
    // deadline must not wait for it.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "1h",
        "--faults",
        "down:1h+2s",
    ]);
    apply_certificate(
        &sim,
        "polls-tls",
        "letsencrypt-staging",
        "polls.example.com",
    );
    certwait_bounded(&sim, &["polls-tls", "--timeout", "3s"])
        .code(124)
        .stderr_has("timed out after 3.0s");
}

#[test]
fn a_certificate_issued_during_an_outage_is_seen_once_the_server_is_back() {
    // Applying the Certificate starts the clock: down from 1 s to 3 s; cert-manager
    // (exempt) issues at about 2 s, while certwait cannot see it. How soon after the
    // server's return certwait sees it: bench/deadlines.sh.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "2s",
        "--faults",
        "down:2s+1s",
    ]);
    apply_certificate(
        &sim,
        "polls-tls",
        "letsencrypt-staging",
        "polls.example.com",
    );
    let out = certwait_on(&sim, &["polls-tls", "--timeout", "30s"]);
    out.success().stderr_has("s default/polls-tls: Ready=True");
    assert_outage_told_once(&out.stderr());
}

/// One line when the outage began and one when it ended, not one per retry.
fn assert_outage_told_once(err: &str) {
    let began = err
        .matches("certwait: no answer from the server 127.0.0.1:")
        .count();
    let ended = err.matches(" answers again (no answer for ").count();
    assert_eq!((began, ended), (1, 1), "{err}");
}

#[test]
fn a_killed_and_restarted_server_is_ridden_out() {
    // The API server is killed 1 s after the Certificate is applied (open connections
    // reset, new ones refused) and back on the same port 2 s later; cert-manager
    // (exempt) issues meanwhile.
    let sim = Sim::start(&[
        "--cert-manager",
        "--cert-delay",
        "1500ms",
        "--faults",
        "restart:2s+1s",
    ]);
    apply_certificate(
        &sim,
        "polls-tls",
        "letsencrypt-staging",
        "polls.example.com",
    );
    let out = certwait_on(&sim, &["polls-tls", "--timeout", "30s"]);
    out.success().stderr_has("default/polls-tls: Ready=True");
    assert!(
        sim.log().contains("kubesim: restart: listening again"),
        "{}",
        sim.log()
    );
    assert_outage_told_once(&out.stderr());
}

#[test]
fn a_server_that_refuses_before_any_answer_fails_at_once_as_kubectl_says() {
    let sim = Sim::start(&["--cert-manager"]);
    let port = closed_port();
    let kubeconfig = std::fs::read_to_string(&sim.kubeconfig).unwrap();
    let start = kubeconfig.find("server: ").unwrap();
    let end = start + kubeconfig[start..].find('\n').unwrap();
    let moved = format!(
        "{}server: https://127.0.0.1:{port}{}",
        &kubeconfig[..start],
        &kubeconfig[end..]
    );
    let path = sim.dir.path().join("refused.kubeconfig");
    std::fs::write(&path, moved).unwrap();
    // At once, not at --timeout (an hour); how soon: bench/deadlines.sh.
    let mut c = cmd("certwait");
    c.env("KUBECONFIG", &path)
        .args(["polls-tls", "--timeout", "1h"]);
    run_bounded(&mut c).code(1).stderr_is(&format!(
        "certwait: The connection to the server 127.0.0.1:{port} was refused - did you \
         specify the right host or port?\n"
    ));
}

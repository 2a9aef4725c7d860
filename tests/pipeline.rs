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
    let mut c = make_cmd(target);
    for (k, v) in vars {
        c.arg(format!("{k}={v}"));
    }
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
            ("IMAGE", "docker.io/sammy/polls:latest"),
            ("HOST", "polls.example.com"),
            ("SETTINGS", dir.path().join("none.mk").to_str().unwrap()),
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
           --host polls.example.com --issuer letsencrypt-staging --replicas 2 --migrate \
           --versioned-config",
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
        &[
            ("ENV", env.to_str().unwrap()),
            ("IMAGE", "docker.io/sammy/polls:v1"),
            ("HOST", "polls.example.com"),
            ("SETTINGS", dir.path().join("polls.mk").to_str().unwrap()),
            ("TIMEOUT", "10s"),
        ],
    )
    .env("KUBECONFIG", &sim.kubeconfig)
    .run();
    assert!(
        !out.status.success(),
        "make deploy succeeded on a broken env file"
    );
    // make's own lines name the Makefile's lines: only the stage's message is pinned.
    out.stderr_has(&format!(
        "envsplit: {}:2: missing '=' (a line must read KEY=value)\n",
        env.display()
    ));

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
    // The simulator's delays shorter than a person watching gets: the output is the same.
    let out = make("demo", &[])
        .env("KPIPE_BIN", fresh_bin_dir())
        .env("DEMO_DEPLOY_DELAY", "100ms")
        .env("DEMO_CERT_DELAY", "200ms")
        .run();
    out.success();
    let (text, err) = (out.stdout(), out.stderr());
    let all = format!("{text}\n{err}");
    // The config is versioned by content: polls-config-<hash>.
    for (prefix, suffix) in [
        ("configmap/polls-config-", " created"),
        ("secret/polls-secret-", " created"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.split(prefix).nth(1).is_some_and(|rest| {
                    rest.len() == 10 + suffix.len()
                        && rest.ends_with(suffix)
                        && rest[..10].bytes().all(|b| b.is_ascii_hexdigit())
                })),
            "demo output lacks {prefix}<hash>{suffix}:\n{all}"
        );
    }
    for expected in [
        "deployment.apps/polls-app created",
        "ingress.networking.k8s.io/polls-ingress created",
        "deployment.apps/polls-app unchanged",
        "kapply: revision 2 failed: rolling back to revision 1 (--atomic)",
        "rollback to 1 after revision 2 failed",
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

/// `bash -o pipefail -c PIPE` in the repository, the workspace's tools first on PATH,
/// pointed at `sim` when there is one.
fn shell(pipe: &str, sim: Option<&Sim>) -> Run {
    let mut c = Command::new("bash");
    c.args(["-o", "pipefail", "-c", pipe])
        .current_dir(repo())
        .env("PATH", path_with_tools())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG");
    if let Some(sim) = sim {
        c.env("KUBECONFIG", &sim.kubeconfig);
    }
    c.run().context(pipe)
}

/// The README's pipe into `last`, reading `env`.
fn readme_pipe(env: &Path, last: &str) -> String {
    format!(
        "envsplit --app polls --rules examples/polls/split.rules {env} \
         | secretgen --generate DJANGO_SECRET_KEY \
         | manifest-gen --app polls --image docker.io/sammy/polls:latest --host polls.example.com \
         | {last}",
        env = env.display()
    )
}

/// What a reader of an empty pipe says, and nothing else.
fn no_input(tool: &str) -> String {
    format!("{tool}: <stdin>: no input: the stage before me failed or wrote nothing\n")
}

/// What a reader of a kpipe stream cut off says, and nothing else.
fn cut_off(tool: &str) -> String {
    format!("{tool}: <stdin>: input cut off: the stage before me failed or was killed\n")
}

#[test]
fn a_failing_stage_fails_every_later_stage_and_kapply_prunes_nothing() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let kapply = "kapply --applyset polls --prune";
    shell(&readme_pipe(&env_file(dir.path()), kapply), Some(&sim))
        .success()
        .stdout_has("configmap/polls-config created")
        .stdout_has("secret/polls-secret created");
    let listing = [
        "get",
        "configmaps,secrets,deployments,services",
        "-o",
        "name",
    ];
    let before = sim.kubectl_ok(&listing);
    let requests = sim.tool_requests().len();

    // A typo in the env file: envsplit fails, so must every stage after it, each with
    // one line (secretgen has no Secret for --generate, manifest-gen no config: neither
    // may say so), and kapply must not prune the config the running Deployment reads.
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "DEBUG=True\nTHIS LINE IS BROKEN\n").unwrap();
    shell(&readme_pipe(&bad, kapply), Some(&sim))
        .code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "envsplit: {}:2: missing '=' (a line must read KEY=value)\n{}{}{}",
            bad.display(),
            no_input("secretgen"),
            no_input("manifest-gen"),
            no_input("kapply")
        ));
    assert_eq!(
        sim.tool_requests().len(),
        requests,
        "kapply talked to the cluster after a failed stage"
    );
    assert_eq!(sim.kubectl_ok(&listing), before);
}

#[test]
fn a_cut_off_stream_is_refused_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let full = shell(&readme_pipe(&env_file(dir.path()), "cat"), None)
        .success()
        .stdout();
    let file = dir.path().join("deploy.yaml");
    std::fs::write(&file, &full).unwrap();
    // Cut where a document ends (a stream a tool killed mid-write could leave), and
    // before the end line only.
    let cuts = [
        full.find("---\napiVersion: apps/v1").unwrap(),
        full.rfind("# kpipe stream: end").unwrap(),
    ];
    let readers = [
        ("secretgen", "secretgen"),
        ("manifest-gen", "manifest-gen --image polls:v2"),
        ("kapply", "kapply --dry-run=client"),
        ("certwait", "certwait --timeout 5s"),
    ];
    for cut in cuts {
        for (tool, command) in readers {
            let pipe = format!("head -c {cut} {} | {command}", file.display());
            shell(&pipe, None)
                .code(2)
                .stdout_empty()
                .stderr_is(&cut_off(tool));
        }
    }
    // A file cut off is refused too, by name.
    let cut = dir.path().join("cut.yaml");
    std::fs::write(&cut, &full[..cuts[0]]).unwrap();
    shell(
        &format!("kapply --dry-run=client -f {}", cut.display()),
        None,
    )
    .code(2)
    .stdout_empty()
    .stderr_is(&format!(
        "kapply: {}: input cut off: the kpipe stream that begins on line 1 lacks its end line \
         `# kpipe stream: end` (the tool that wrote it failed or was killed)\n",
        cut.display()
    ));
    // The whole stream passes.
    for (_, command) in &readers[..3] {
        shell(&format!("cat {} | {command}", file.display()), None).success();
    }
}

#[test]
fn hand_written_input_is_read_and_kubectl_applies_kpipe_streams() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // Written by hand: no kpipe lines, a comment, no leading `---`.
    let hand = dir.path().join("config.yaml");
    std::fs::write(
        &hand,
        "# the tutorial's config, by hand\napiVersion: v1\nkind: ConfigMap\n\
         metadata: {name: polls-config}\ndata: {DEBUG: \"True\"}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: polls-secret}\n\
         stringData: {DJANGO_SECRET_KEY: k3ep-th1s-0ut-of-every-log}\n",
    )
    .unwrap();
    let pipe = format!(
        "cat {} | secretgen | manifest-gen --image polls:v1 --host polls.example.com",
        hand.display()
    );
    let stream = shell(&pipe, None).success().stderr_empty().stdout();
    // Passed through two tools, the stream still has one first and one last line.
    assert!(
        stream.starts_with("# kpipe stream: begin\n---\n"),
        "{stream}"
    );
    assert!(stream.ends_with("\n# kpipe stream: end\n"), "{stream}");
    assert_eq!(stream.matches("# kpipe stream:").count(), 2, "{stream}");

    // kubectl reads the two lines as the comments they are.
    let mut c = sim.kubectl();
    c.args(["apply", "-f", "-"]);
    let applied = sim.kubectl_stdout("apply -f -", &run_with_stdin(c, stream.as_bytes()));
    for created in [
        "configmap/polls-config created",
        "secret/polls-secret created",
        "deployment.apps/polls-app created",
        "ingress.networking.k8s.io/polls-ingress created",
    ] {
        assert!(applied.contains(created), "{applied}");
    }

    // Nothing on purpose (a terminal, /dev/null, an empty file) is no input, not a
    // failed stage: manifest-gen writes the tutorial's objects.
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    for redirect in ["</dev/null", &format!("<{}", empty.display())] {
        shell(&format!("manifest-gen --image polls:v1 {redirect}"), None)
            .success()
            .stdout_has("kind: Deployment\n")
            .stdout_has("# kpipe stream: end\n");
    }
    // Another generator's stream (kubectl's) goes into kapply as it is.
    shell(
        "kubectl create configmap other --from-literal=A=b --dry-run=client -o yaml | kapply",
        Some(&sim),
    )
    .success()
    .stdout_is("configmap/other created\n");
}

#[test]
fn a_failed_kapply_run_fails_certwait_after_it() {
    let sim = Sim::start(&["--cert-manager"]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: bad-host}\n\
         spec: {rules: [{host: Bad_Host.example.com}]}\n",
    )
    .unwrap();
    // Everything applies but the Ingress the server finds invalid: kapply exits 1,
    // and its YAML of what it applied lacks the end line, so certwait does not wait.
    let apply = format!(
        "cat - {} | kapply -o yaml | certwait --timeout 30s",
        bad.display()
    );
    let out = shell(&readme_pipe(&env_file(dir.path()), &apply), Some(&sim));
    out.code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "kapply: configmap/polls-config created\n\
             kapply: secret/polls-secret created\n\
             kapply: deployment.apps/polls-app created\n\
             kapply: service/polls created\n\
             kapply: ingress.networking.k8s.io/polls-ingress created\n\
             kapply: Ingress/bad-host in namespace default: Ingress.networking.k8s.io \
             \"bad-host\" is invalid: spec.rules[0].host: Invalid value: \"Bad_Host.example.com\": \
             a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n\
             kapply: 1 of 6 objects failed (1 invalid); 5 applied\n\
             {}",
            cut_off("certwait")
        ))
        .no_secret(SECRET_KEY);
}

/// The documents of a kpipe stream, parsed.
fn documents(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n").skip(1).map(yaml).collect()
}

fn kind<'a>(docs: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// Django as the tutorial runs it, through make: a secret key with `$` (FORMAT=docker),
/// two hosts on one certificate, DJANGO_ALLOWED_HOSTS checked, a private registry.
#[test]
fn make_passes_format_hosts_and_the_pull_secret_to_the_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let key = "k3y$with$dollars-0ut-of-every-log";
    let env = dir.path().join("env");
    let template = std::fs::read_to_string(repo().join("examples/polls/env")).unwrap();
    std::fs::write(
        &env,
        template
            .replace(
                "DJANGO_SECRET_KEY=\n",
                &format!("DJANGO_SECRET_KEY={key}\n"),
            )
            .replace(
                "DJANGO_ALLOWED_HOSTS=*\n",
                "DJANGO_ALLOWED_HOSTS=.example.com\n",
            ),
    )
    .unwrap();
    let docker_config = dir.path().join("config.json");
    std::fs::write(
        &docker_config,
        r#"{"auths":{"registry.example.com":{"auth":"dTpw"}}}"#,
    )
    .unwrap();
    let out_file = dir.path().join("deploy.yaml");
    let vars = |extra: &[(&'static str, String)]| {
        let mut v: Vec<(&str, String)> = vec![
            ("ENV", env.display().to_string()),
            ("OUT", out_file.display().to_string()),
            ("HOST", "polls.example.com,www.polls.example.com".into()),
            ("IMAGE", "docker.io/sammy/polls:latest".into()),
            (
                "SETTINGS",
                dir.path().join("polls.mk").display().to_string(),
            ),
        ];
        v.extend_from_slice(extra);
        v
    };
    let render = |vars: &[(&str, String)]| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        make("render", &vars).run()
    };

    // The default format would expand `$`: refused, and make has no other way than FORMAT.
    render(&vars(&[]))
        .code(2)
        // kubectl's complaints (no cluster) and make's lines around it: not pinned.
        .stderr_has(&format!(
            "envsplit: {}:3: DJANGO_SECRET_KEY: '$' would be expanded by dotenv rules, \
             changing the value: keep it literal with single quotes (KEY='...') or \\$, or use \
             --format docker; pass --expand to expand it\n",
            env.display()
        ))
        .no_secret(key);
    assert!(
        !out_file.exists(),
        "a failed render wrote {}",
        out_file.display()
    );

    render(&vars(&[
        ("FORMAT", "docker".into()),
        ("DOCKER_CONFIG_FILE", docker_config.display().to_string()),
    ]))
    .success()
    .no_secret(key);
    let docs = documents(&std::fs::read_to_string(&out_file).unwrap());
    let secret = docs
        .iter()
        .find(|d| {
            d["kind"] == "Secret"
                && d["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("polls-secret-")
        })
        .expect("the versioned polls-secret-<hash>");
    assert_eq!(secret["immutable"], true);
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        secret["data"]["DJANGO_SECRET_KEY"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(decoded, key.as_bytes(), "the key as written, `$` and all");

    let ingress = kind(&docs, "Ingress");
    assert_eq!(ingress["spec"]["rules"].as_array().unwrap().len(), 2);
    assert_eq!(
        ingress["spec"]["tls"],
        serde_json::json!([{"hosts": ["polls.example.com", "www.polls.example.com"], "secretName": "polls-tls"}])
    );
    let registry = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "polls-registry")
        .expect("DOCKER_CONFIG_FILE makes APP-registry");
    assert_eq!(registry["type"], "kubernetes.io/dockerconfigjson");
    for workload in ["Deployment", "Job"] {
        let pod = &kind(&docs, workload)["spec"]["template"]["spec"];
        assert_eq!(
            pod["imagePullSecrets"],
            serde_json::json!([{"name": "polls-registry"}]),
            "{workload}"
        );
    }
    let probe =
        &kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"];
    assert_eq!(
        probe["httpGet"]["httpHeaders"][0]["value"],
        "polls.example.com"
    );

    // IMAGE_PULL_SECRET alone references a Secret made elsewhere.
    render(&vars(&[
        ("FORMAT", "docker".into()),
        ("IMAGE_PULL_SECRET", "regcred".into()),
    ]))
    .success();
    let docs = documents(&std::fs::read_to_string(&out_file).unwrap());
    assert!(
        docs.iter()
            .all(|d| d["type"] != "kubernetes.io/dockerconfigjson")
    );
    assert_eq!(
        kind(&docs, "Deployment")["spec"]["template"]["spec"]["imagePullSecrets"],
        serde_json::json!([{"name": "regcred"}])
    );

    // A host the env's DJANGO_ALLOWED_HOSTS does not admit stops the render.
    std::fs::remove_file(&out_file).unwrap();
    render(&[
        ("ENV", env.display().to_string()),
        ("OUT", out_file.display().to_string()),
        ("FORMAT", "docker".into()),
        ("HOST", "polls.example.org".into()),
        ("IMAGE", "docker.io/sammy/polls:latest".into()),
        (
            "SETTINGS",
            dir.path().join("polls.mk").display().to_string(),
        ),
    ])
    .code(2)
    .stderr_has(
        "manifest-gen: <stdin>: document 1 (line 3): ConfigMap/polls-config: \
         DJANGO_ALLOWED_HOSTS \".example.com\" does not admit --host polls.example.org: Django \
         would answer every request with 400 Bad Request (and the HTTP probes would fail); add \
         polls.example.org (or .polls.example.org with its subdomains, or *) to it\n",
    )
    .no_secret(key);
    assert!(!out_file.exists());
}

#[test]
fn two_hosts_get_one_certificate_for_both() {
    let sim = Sim::start(&["--cert-manager"]);
    let dir = tempfile::tempdir().unwrap();
    let env = env_file(dir.path());
    let out = make(
        "deploy",
        &[
            ("ENV", env.to_str().unwrap()),
            ("HOST", "polls.example.com,www.polls.example.com"),
            ("IMAGE", "docker.io/sammy/polls:latest"),
            ("SETTINGS", dir.path().join("polls.mk").to_str().unwrap()),
            ("TIMEOUT", "60s"),
        ],
    )
    .env("KUBECONFIG", &sim.kubeconfig)
    .run();
    out.success().no_secret(SECRET_KEY);
    let names = sim.kubectl_ok(&["get", "certificates", "-n", "default", "-o", "name"]);
    assert_eq!(
        names.trim(),
        "certificate.cert-manager.io/polls-tls",
        "{names}"
    );
    let dns = sim.kubectl_ok(&[
        "get",
        "certificate",
        "polls-tls",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.dnsNames}",
    ]);
    assert_eq!(dns, r#"["polls.example.com","www.polls.example.com"]"#);
}

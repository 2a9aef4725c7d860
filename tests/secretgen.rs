//! secretgen as a user runs it: the filter, --generate, --from-env-file, bad input,
//! terminals, and secret values kept out of stderr.

use crate::common::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::process::{Command, Stdio};

/// A value that stands for a password in the inputs below: it must never reach stderr.
const SECRET: &str = "hunter2-Xyzzy";

/// secretgen with `args` and `stdin`; a known secret value never reaches its stderr.
fn secretgen(args: &[&str], stdin: &str) -> Run {
    let out = cmd("secretgen").args(args).run_with(stdin);
    out.no_secret(SECRET);
    out
}

/// The documents of a tool's output (every one starts with a `---` line).
fn docs(yaml: &str) -> Vec<Value> {
    yaml.split("---\n")
        .map(crate::common::yaml)
        .filter(|d| !d.is_null()) // the stream's first line, a comment
        .collect()
}

fn decode(v: &Value) -> String {
    String::from_utf8(STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
}

fn stream() -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: before}}\ndata: {{DEBUG: \"on\"}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ntype: Opaque\n\
         data: {{A: {old}, B: {kept}}}\nstringData: {{A: \"{SECRET}\", C: \"\", D: \"ü\\n\"}}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: after}}\nspec: {{replicas: 2}}\n",
        old = STANDARD.encode("old"),
        kept = STANDARD.encode("kept"),
    )
}

#[test]
fn moves_string_data_into_base64_data_and_passes_the_rest_in_order() {
    let out = secretgen(&[], &stream());
    let objects = docs(&out.success().stderr_empty().stdout());
    let kinds: Vec<_> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Secret", "Deployment"]);
    assert_eq!(objects[0]["data"]["DEBUG"], "on");
    assert_eq!(objects[2]["spec"]["replicas"], 2);
    let secret = &objects[1];
    assert!(secret.get("stringData").is_none());
    let data = &secret["data"];
    // stringData wins over data, as the API server does.
    assert_eq!(decode(&data["A"]), SECRET);
    assert_eq!(decode(&data["B"]), "kept");
    assert_eq!(decode(&data["C"]), "");
    assert_eq!(decode(&data["D"]), "ü\n");
    assert_eq!(data["A"], STANDARD.encode(SECRET), "standard padded base64");

    // A fixed point: running it on its own output changes no byte.
    secretgen(&[], &out.stdout()).stdout_is(&out.stdout());
}

#[test]
fn reads_files_and_stdin_in_argument_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n",
    )
    .unwrap();
    let out = secretgen(
        &[file.to_str().unwrap(), "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\n",
    );
    let names: Vec<_> = docs(&out.stdout())
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["first", "second"]);
}

#[test]
fn generate_fills_missing_or_empty_keys_and_never_replaces_a_value() {
    let out = secretgen(
        &[
            "--generate",
            "C",
            "--generate",
            "NEW:20",
            "--generate",
            "A",
            "--charset",
            "django",
        ],
        &stream(),
    );
    let data = docs(&out.success().stdout())[1]["data"].clone();
    assert_eq!(decode(&data["A"]), SECRET, "a set value was replaced");
    let django = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)";
    let c = decode(&data["C"]);
    assert_eq!(c.len(), 50);
    assert!(c.chars().all(|ch| django.contains(ch)), "{c}");
    assert_eq!(decode(&data["NEW"]).len(), 20);

    // Fresh randomness each run, and another charset.
    let other = secretgen(&["--generate", "C", "--charset", "hex"], &stream());
    let c2 = decode(&docs(&other.stdout())[1]["data"]["C"]);
    assert_ne!(c, c2);
    assert!(
        c2.chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()),
        "{c2}"
    );

    // Once filled, a second run keeps it: the output is stable.
    secretgen(&["--generate", "C"], &out.stdout()).stdout_is(&out.stdout());
}

#[test]
fn keep_from_keeps_the_live_generated_value_and_rotate_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = secretgen(&["--generate", "C"], &stream());
    first.success();
    let live_value = docs(&first.stdout())[1]["data"]["C"].clone();
    // The live Secret as kubectl prints it: no kpipe stream lines, server fields.
    let live = dir.path().join("live.yaml");
    std::fs::write(
        &live,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\n  \
             resourceVersion: \"7\"\ntype: Opaque\ndata:\n  C: {}\n  A: {}\n",
            live_value.as_str().unwrap(),
            STANDARD.encode("ignored: set in the input"),
        ),
    )
    .unwrap();
    let live = live.to_str().unwrap();

    // Kept: the same bytes as the first run, however often it runs.
    let kept = secretgen(&["--generate", "C", "--keep-from", live], &stream());
    kept.success();
    assert_eq!(kept.stdout(), first.stdout());
    let data = &docs(&kept.stdout())[1]["data"];
    assert_eq!(
        decode(&data["A"]),
        SECRET,
        "a value set in the input is its own"
    );

    // No live Secret yet (kubectl --ignore-not-found prints nothing): generated.
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let fresh = secretgen(
        &["--generate", "C", "--keep-from", empty.to_str().unwrap()],
        &stream(),
    );
    fresh.success();
    assert_ne!(docs(&fresh.stdout())[1]["data"]["C"], live_value);

    // Rotation on request; a key the input sets, or one not generated, is refused.
    let rotated = secretgen(
        &["--generate", "C", "--keep-from", live, "--rotate", "C"],
        &stream(),
    );
    rotated.success();
    assert_ne!(docs(&rotated.stdout())[1]["data"]["C"], live_value);
    secretgen(&["--generate", "C", "--rotate", "A"], &stream())
        .code(2)
        .stdout_empty()
        .stderr_is(
            "secretgen: --rotate A: not a --generate key; a value set in the input is changed \
             there\n",
        );
    secretgen(&["--generate", "A", "--rotate", "A"], &stream())
        .code(2)
        .stdout_empty()
        .stderr_is(
            "secretgen: <stdin>: document 2 (line 6): Secret/s: --rotate A: the input sets this \
             key; change its value there\n",
        );
}

/// `make deploy` hands secretgen the Secret the live Deployment reads: with versioned
/// config that is `s-<10 hex>`, an immutable version of the stream's `s`.
#[test]
fn keep_from_keeps_the_value_of_the_live_version_of_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.yaml");
    let live_secret = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\n\
             immutable: true\ntype: Opaque\ndata:\n  C: {}\n",
            STANDARD.encode(value)
        )
    };
    let kept_c = |file: &str| {
        let out = secretgen(&["--generate", "C", "--keep-from", file], &stream());
        out.success();
        decode(&docs(&out.stdout())[1]["data"]["C"])
    };
    std::fs::write(&live, live_secret("s-0a1b2c3d4e", "versioned-live-key")).unwrap();
    assert_eq!(kept_c(live.to_str().unwrap()), "versioned-live-key");

    // A Secret of the very name wins; a name that is not a version is another Secret.
    std::fs::write(
        &live,
        format!(
            "{}---\n{}",
            live_secret("s-0a1b2c3d4e", "versioned-live-key"),
            live_secret("s", "plain-live-key")
        ),
    )
    .unwrap();
    assert_eq!(kept_c(live.to_str().unwrap()), "plain-live-key");
    std::fs::write(&live, live_secret("s-other", "someone-elses-key")).unwrap();
    assert_ne!(kept_c(live.to_str().unwrap()), "someone-elses-key");
}

#[test]
fn generate_respects_only_and_needs_a_secret() {
    let two = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n\
               ---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\n";
    let out = secretgen(&["--generate", "K", "--only", "b"], two);
    let objects = docs(&out.success().stdout());
    assert_eq!(objects[0]["data"].as_object().unwrap().len(), 0);
    assert!(objects[1]["data"]["K"].is_string());
    assert!(
        objects[2]["data"].get("K").is_none(),
        "generated into a TLS secret"
    );

    secretgen(
        &["--generate", "K"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .code(2)
    .stdout_empty()
    .stderr_is("secretgen: --generate K: no Secret to put it in\n");
}

#[test]
fn bad_secrets_exit_2_naming_the_object_with_empty_stdout() {
    let secret = |body: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ok}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: web}}\n{body}\n"
        )
    };
    let big = "x".repeat(700 * 1024);
    let cases = [
        (
            "base64",
            secret(&format!("data: {{A: \"{SECRET}!\"}}")),
            "data.A is not valid base64 (standard, padded)",
        ),
        (
            "key",
            secret(&format!("stringData: {{\"a b\": {SECRET}}}")),
            "stringData: invalid key \"a b\": a valid config key must consist of alphanumeric \
             characters, '-', '_' or '.'",
        ),
        (
            "data key",
            secret("data: {\"a/b\": eA==}"),
            "data: invalid key \"a/b\": a valid config key must consist of alphanumeric \
             characters, '-', '_' or '.'",
        ),
        (
            "size",
            secret(&format!("stringData: {{A: {big}, B: {big}}}")),
            "data holds 1433600 bytes, over the API server's limit of 1048576 (1 MiB)",
        ),
    ];
    // A number where the server takes only strings is refused as the stream is read,
    // at the value's line, naming the key and the fix.
    secretgen(&[], &secret("stringData:\n  PORT: 25060\n"))
        .code(2)
        .stderr_is(
            "secretgen: <stdin>: document 2 (line 9): Secret stringData key \"PORT\": Kubernetes \
             (YAML 1.1) reads this unquoted value as a number, and the API server accepts only \
             strings there; quote the value\n",
        );
    for (name, input, reason) in cases {
        secretgen(&[], &input)
            .context(name)
            .code(2)
            .stdout_empty()
            .stderr_is(&format!(
                "secretgen: <stdin>: document 2 (line 5): Secret/s in namespace web: {reason}\n"
            ));
    }
    secretgen(
        &["--no-size-limit"],
        &secret(&format!("stringData: {{A: {big}, B: {big}}}")),
    )
    .success();
}

#[test]
fn from_env_file_makes_a_secret_like_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("polls-secrets");
    std::fs::write(
        &env,
        format!("DATABASE_PASSWORD='{SECRET}'\nDATABASE_PORT=25060\nDJANGO_SECRET_KEY=\n"),
    )
    .unwrap();
    let env = env.to_str().unwrap();
    let out = secretgen(
        &[
            "--name",
            "polls-secret",
            "-n",
            "web",
            "--from-env-file",
            env,
            "--generate",
            "DJANGO_SECRET_KEY",
        ],
        "",
    );
    let objects = docs(&out.success().stdout());
    assert_eq!(objects.len(), 1);
    let s = &objects[0];
    assert_eq!(
        (s["kind"].as_str(), s["type"].as_str()),
        (Some("Secret"), Some("Opaque"))
    );
    assert_eq!(s["metadata"]["name"], "polls-secret");
    assert_eq!(s["metadata"]["namespace"], "web");
    assert_eq!(decode(&s["data"]["DATABASE_PASSWORD"]), SECRET);
    assert_eq!(decode(&s["data"]["DATABASE_PORT"]), "25060");
    assert_eq!(decode(&s["data"]["DJANGO_SECRET_KEY"]).len(), 50);

    // Same parser as envsplit: its errors, with secretgen's name.
    std::fs::write(dir.path().join("bad"), format!("A=1\nPASSWORD={SECRET}$\n")).unwrap();
    let bad = dir.path().join("bad");
    secretgen(
        &["--name", "x", "--from-env-file", bad.to_str().unwrap()],
        "",
    )
    .code(2)
    .stdout_empty()
    .stderr_is(&format!(
        "secretgen: {}:2: PASSWORD: '$' would be expanded by dotenv rules, changing the value: \
         keep it literal with single quotes (KEY='...') or \\$, or use --format docker; pass \
         --expand to expand it\n",
        bad.display()
    ));

    // --from-env-file without --name.
    secretgen(&["--from-env-file", env], "").code(2).stderr_is(
        "error: the following required arguments were not provided:\n  --name <NAME>\n\
             \n\
             Usage: secretgen --name <NAME> <--from-env-file <FILE>|--docker-config <FILE>|\
             --docker-username <USER>> [FILE]...\n\
             \n\
             For more information, try '--help'.\n",
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let big: String = (0..5000)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{A: '{i}'}}\n"))
        .collect();
    let mut c = cmd("secretgen");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, big.as_bytes()));
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut child.stdout.take().unwrap(), &mut first).unwrap();
    let out: Run = child.wait_with_output().unwrap().into();
    writer.join().unwrap().unwrap();
    out.code(141).stderr_empty();
}

#[test]
fn secret_values_reach_a_terminal_only_with_show() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{A: {SECRET}}}\n"
        ),
    )
    .unwrap();
    let tool = bin("secretgen");
    let on_terminal = |extra: &str| {
        Command::new("script")
            .args([
                "-qec",
                &format!("{} {extra} {}", tool.display(), file.display()),
                "/dev/null",
            ])
            .stdin(Stdio::null())
            .output()
            .map(Run::from)
            .expect("script(1) from util-linux")
    };
    // The terminal shows stdout and stderr together, with its line ending.
    on_terminal("")
        .code(2)
        .stdout_is(
            "secretgen: refusing to write Secret values to a terminal: pipe the output on, \
             redirect it to a file, or pass --show\r\n",
        )
        .stdout_lacks(&STANDARD.encode(SECRET));
    on_terminal("--show")
        .success()
        .stdout_has(&STANDARD.encode(SECRET));
}

/// secretgen passes other objects on as every tool reads them: merge keys merged, big
/// integers as Kubernetes reads them, never rewritten another way.
#[test]
fn passed_through_objects_read_as_kapply_reads_them() {
    let stream = "apiVersion: apps/v1\nkind: Deployment\n\
                  metadata: {name: d, labels: {<<: {app: polls}, tier: web}}\n\
                  spec: {replicas: 0x2, progressDeadlineSeconds: 18446744073709551615, \
                  template: {metadata: {labels: {<<: {app: polls}}}}}\n";
    let out = secretgen(&[], stream);
    out.success();
    let read = |text: &[u8]| {
        let out = cmd("kapply")
            .args(["--dry-run=client", "-o", "json"])
            .run_with(text);
        out.success();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let before = read(stream.as_bytes());
    assert_eq!(before["metadata"]["labels"]["app"], "polls");
    assert_eq!(before["spec"]["replicas"], 2);
    assert_eq!(read(&out.stdout), before);
}

/// `kubectl create secret docker-registry NAME ARGS --dry-run=client -o yaml`, parsed.
fn kubectl_docker_registry(args: &[&str]) -> Value {
    let out = crate::common::kubectl_cmd()
        .args(["create", "secret", "docker-registry"])
        .args(args)
        .args(["--dry-run=client", "-o", "yaml"])
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed");
    assert!(out.status.success(), "{}", stderr(&out));
    yaml(&String::from_utf8_lossy(&out.stdout))
}

/// What a Secret is to the API server: name, namespace, type and data.
fn essence(secret: &Value) -> Value {
    serde_json::json!({
        "kind": secret["kind"],
        "name": secret["metadata"]["name"],
        "namespace": secret["metadata"]["namespace"],
        "type": secret["type"],
        "data": secret["data"],
    })
}

#[test]
fn docker_registry_secrets_equal_kubectls() {
    // Go's JSON escapes <, > and & in the password: byte for byte the same.
    let password = format!("{SECRET}<&>\"$x");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--docker-username", "u", "--docker-password", &password],
            vec!["--docker-username", "u", "--docker-password", &password],
        ),
        (
            vec![
                "--docker-server",
                "registry.example.com",
                "--docker-username",
                "robot$ci",
                "--docker-password",
                &password,
                "--docker-email",
                "ci@example.com",
                "-n",
                "web",
            ],
            vec![
                "--docker-server=registry.example.com",
                "--docker-username=robot$ci",
                "--docker-password",
                &password,
                "--docker-email=ci@example.com",
                "-n",
                "web",
            ],
        ),
    ];
    for (ours, kubectls) in cases {
        let mut args = vec!["--name", "regcred"];
        args.extend_from_slice(&ours);
        // stdin not a pipe (here /dev/null): no stream, just the Secret.
        let out = cmd("secretgen").args(&args).run();
        out.success().no_secret(SECRET);
        let objects = docs(&out.stdout());
        assert_eq!(objects.len(), 1);
        let mut theirs = vec!["regcred"];
        theirs.extend_from_slice(&kubectls);
        assert_eq!(
            essence(&objects[0]),
            essence(&kubectl_docker_registry(&theirs)),
            "{ours:?}"
        );
    }

    // From a docker config file: its bytes, as `--from-file=.dockerconfigjson=FILE`.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let auth = STANDARD.encode(format!("u:{SECRET}"));
    std::fs::write(
        &config,
        format!("{{\n\t\"auths\": {{\n\t\t\"ghcr.io\": {{\n\t\t\t\"auth\": \"{auth}\"\n\t\t}}\n\t}}\n}}\n"),
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let out = cmd("secretgen")
        .args(["--docker-config", path, "--name", "regcred"])
        .run();
    out.success().no_secret(SECRET).no_secret(&auth);
    let from_file = format!("--from-file=.dockerconfigjson={path}");
    assert_eq!(
        essence(&docs(&out.stdout())[0]),
        essence(&kubectl_docker_registry(&["regcred", &from_file]))
    );
}

#[test]
fn a_registry_secret_joins_the_stream_and_useless_configs_are_refused() {
    let out = secretgen(
        &[
            "--generate",
            "C",
            "--name",
            "regcred",
            "--docker-username",
            "u",
            "--docker-password",
            SECRET,
        ],
        &stream(),
    );
    out.success();
    let objects = docs(&out.stdout());
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["before", "s", "after", "regcred"]);
    assert_eq!(objects[3]["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(
        objects[3]["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [".dockerconfigjson"],
        "--generate fills Opaque Secrets only"
    );
    assert_eq!(decode(&objects[1]["data"]["C"]).len(), 50);

    // A name the stream already has is refused.
    secretgen(
        &[
            "--name",
            "s",
            "--docker-username",
            "u",
            "--docker-password",
            SECRET,
        ],
        &stream(),
    )
    .code(2)
    .stdout_empty()
    .stderr_is(
        "secretgen: --name s: the stream already has Secret/s (<stdin>: document 2 (line 6))\n",
    );

    // Docker Desktop keeps the credentials in a helper the cluster cannot run; a file
    // that is not JSON would be refused by the API server. Neither is quoted.
    let dir = tempfile::tempdir().unwrap();
    for (text, why) in [
        (
            format!("{{\"auths\": {{}}, \"credsStore\": \"desktop\", \"x\": \"{SECRET}\"}}"),
            ": not a docker config with credentials: no registry in \"auths\": its credentials \
             are kept by a credential helper (credsStore/credHelpers), which the cluster cannot \
             run; give them with --docker-server, --docker-username and --docker-password \
             instead",
        ),
        (
            format!("{{\"auths\": {{\"r\": \"{SECRET}\"}}"),
            ":1: not a docker config: invalid JSON at column 32",
        ),
        (
            "{}".to_owned(),
            ": not a docker config with credentials: no registry in \"auths\"",
        ),
    ] {
        let file = dir.path().join("config.json");
        std::fs::write(&file, &text).unwrap();
        let out = cmd("secretgen")
            .args(["--docker-config", file.to_str().unwrap(), "--name", "r"])
            .run();
        out.code(2)
            .stdout_empty()
            .stderr_is(&format!("secretgen: {}{why}\n", file.display()))
            .no_secret(SECRET);
    }
    // Half a login, or no name: usage errors.
    let usage = |missing: &str| {
        format!(
            "error: the following required arguments were not provided:\n  {missing}\n\
             \n\
             Usage: secretgen --name <NAME> --docker-password <PASSWORD> <--from-env-file \
             <FILE>|--docker-config <FILE>|--docker-username <USER>> [FILE]...\n\
             \n\
             For more information, try '--help'.\n"
        )
    };
    for (args, expected) in [
        (
            &["--name", "r", "--docker-username", "u"][..],
            usage("--docker-password <PASSWORD>"),
        ),
        (
            &["--name", "r", "--docker-password", "p"],
            usage("<--from-env-file <FILE>|--docker-config <FILE>|--docker-username <USER>>"),
        ),
        (
            &["--docker-username", "u", "--docker-password", "p"],
            usage("--name <NAME>"),
        ),
        (
            &[
                "--name",
                "r",
                "--docker-config",
                "f",
                "--docker-username",
                "u",
            ],
            "error: the argument '--docker-config <FILE>' cannot be used with '--docker-username \
             <USER>'\n\
             \n\
             Usage: secretgen --name <NAME> <--from-env-file <FILE>|--docker-config <FILE>|\
             --docker-username <USER>> [FILE]...\n\
             \n\
             For more information, try '--help'.\n"
                .to_owned(),
        ),
    ] {
        cmd("secretgen")
            .args(args)
            .run()
            .code(2)
            .stdout_empty()
            .stderr_is(&expected);
    }
}

/// Runs secretgen on `input` with its heap (RLIMIT_DATA) limited to 48 MiB: an input
/// that makes it allocate more fails to allocate (and aborts) instead of being refused.
fn secretgen_in_48_mib(input: &str) -> Run {
    let mut c = Command::new("sh");
    c.args(["-c", "ulimit -d 49152 && exec \"$0\""])
        .arg(bin("secretgen"));
    c.run_with(input)
}

/// Alias bombs are refused before they take the memory they ask for: a long string
/// repeated by aliases ("string bomb": few nodes, 1 MB of input, gigabytes expanded)
/// and the billion laughs (nested lists of aliases) alike.
#[test]
fn alias_bombs_are_refused_within_a_small_heap() {
    let long = "y".repeat(20_000);
    let mut bomb = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bomb}}\nstringData:\n  s: &s {long}\n  l:\n"
    );
    let row = format!("  - [{}]\n", ["*s"; 20].join(", "));
    while bomb.len() < 1_000_000 {
        bomb.push_str(&row);
    }
    let mut laughs =
        String::from("apiVersion: v1\nkind: Secret\nmetadata: {name: l}\nstringData:\n");
    laughs.push_str(&format!("  a0: &a0 [{}]\n", ["x"; 10].join(",")));
    for i in 1..10 {
        let items = vec![format!("*a{}", i - 1); 10].join(",");
        laughs.push_str(&format!("  a{i}: &a{i} [{items}]\n"));
    }
    // Refused at the line where the aliases pass the limit.
    for (input, line) in [(&bomb, 17), (&laughs, 10)] {
        secretgen_in_48_mib(input)
            .code(2)
            .stdout_empty()
            .stderr_is(&format!(
                "secretgen: <stdin>: document 1 (line {line}): the document contains excessive \
                 aliasing\n"
            ));
    }
    // Anchors used as meant are read as before, within the same heap.
    let fine = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: ok}}\nstringData:\n  a: &a {long}\n  b: *a\n"
    );
    let out = secretgen_in_48_mib(&fine);
    out.success();
    let doc = &docs(&out.stdout())[0];
    assert_eq!(decode(&doc["data"]["b"]), long);
}

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
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = docs(&stdout(&out));
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
    let again = secretgen(&[], &stdout(&out));
    assert_eq!(stdout(&again), stdout(&out));
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
    let names: Vec<_> = docs(&stdout(&out))
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
    assert!(out.status.success(), "{}", stderr(&out));
    let data = docs(&stdout(&out))[1]["data"].clone();
    assert_eq!(decode(&data["A"]), SECRET, "a set value was replaced");
    let django = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)";
    let c = decode(&data["C"]);
    assert_eq!(c.len(), 50);
    assert!(c.chars().all(|ch| django.contains(ch)), "{c}");
    assert_eq!(decode(&data["NEW"]).len(), 20);

    // Fresh randomness each run, and another charset.
    let other = secretgen(&["--generate", "C", "--charset", "hex"], &stream());
    let c2 = decode(&docs(&stdout(&other))[1]["data"]["C"]);
    assert_ne!(c, c2);
    assert!(
        c2.chars()
            .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()),
        "{c2}"
    );

    // Once filled, a second run keeps it: the output is stable.
    let again = secretgen(&["--generate", "C"], &stdout(&out));
    assert_eq!(stdout(&again), stdout(&out));
}

#[test]
fn generate_respects_only_and_needs_a_secret() {
    let two = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n\
               ---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\n";
    let out = secretgen(&["--generate", "K", "--only", "b"], two);
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = docs(&stdout(&out));
    assert_eq!(objects[0]["data"].as_object().unwrap().len(), 0);
    assert!(objects[1]["data"]["K"].is_string());
    assert!(
        objects[2]["data"].get("K").is_none(),
        "generated into a TLS secret"
    );

    let out = secretgen(
        &["--generate", "K"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "secretgen: --generate K: no Secret to put it in\n"
    );
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
            "data.A is not valid base64",
        ),
        (
            "key",
            secret(&format!("stringData: {{\"a b\": {SECRET}}}")),
            "stringData: invalid key \"a b\"",
        ),
        (
            "data key",
            secret("data: {\"a/b\": eA==}"),
            "data: invalid key \"a/b\"",
        ),
        (
            "size",
            secret(&format!("stringData: {{A: {big}, B: {big}}}")),
            "data holds 1433600 bytes",
        ),
    ];
    // A number where the server takes only strings is refused as the stream is read,
    // at the value's line, naming the key and the fix.
    let out = secretgen(&[], &secret("stringData:\n  PORT: 25060\n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("secretgen: <stdin>: document 2 (line 9): Secret stringData key \"PORT\": Kubernetes (YAML 1.1) reads this unquoted value as a number"),
        "{}",
        stderr(&out)
    );
    for (name, input, reason) in cases {
        let out = secretgen(&[], &input);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}: wrote to stdout");
        let expected =
            format!("secretgen: <stdin>: document 2 (line 5): Secret/s in namespace web: {reason}");
        assert!(
            stderr(&out).starts_with(&expected),
            "{name}: {}",
            stderr(&out)
        );
    }
    let out = secretgen(
        &["--no-size-limit"],
        &secret(&format!("stringData: {{A: {big}, B: {big}}}")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
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
    assert!(out.status.success(), "{}", stderr(&out));
    let objects = docs(&stdout(&out));
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
    let out = secretgen(
        &["--name", "x", "--from-env-file", bad.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).starts_with(&format!("secretgen: {}:2: PASSWORD: '$'", bad.display())),
        "{}",
        stderr(&out)
    );

    let out = secretgen(&["--from-env-file", env], "");
    assert_eq!(out.status.code(), Some(2), "--from-env-file without --name");
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
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(141));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
            .expect("script(1) from util-linux")
    };
    let refused = on_terminal("");
    assert_eq!(refused.status.code(), Some(2));
    assert!(stdout(&refused).contains("refusing to write Secret values to a terminal"));
    assert!(!stdout(&refused).contains(&STANDARD.encode(SECRET)));
    let shown = on_terminal("--show");
    assert_eq!(shown.status.code(), Some(0));
    assert!(stdout(&shown).contains(&STANDARD.encode(SECRET)));
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
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |text: &[u8]| {
        let mut c = cmd("kapply");
        c.args(["--dry-run=client", "-o", "json"]);
        let out = run_with_stdin(c, text);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let before = read(stream.as_bytes());
    assert_eq!(before["metadata"]["labels"]["app"], "polls");
    assert_eq!(before["spec"]["replicas"], 2);
    assert_eq!(read(&out.stdout), before);
}

//! envsplit as a user runs it: the tutorial's split against a reviewed golden file, the
//! kubectl differential on the env-file corpus, every bad input, terminals and pipes.

use crate::common::*;
use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A value that stands for a password in the inputs below: it must never reach stderr.
const SECRET: &str = "hunter2-Xyzzy";

/// The tutorial's split: the rules file the Makefile, demo and benchmarks use (so there is
/// the one copy of it).
const TUTORIAL_SPLIT: &[&str] = &[
    "--rules",
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/polls/split.rules"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// envsplit with `args` and `stdin`; a known secret value never reaches its stderr.
fn envsplit(args: &[&str], stdin: &[u8]) -> Run {
    let out = cmd("envsplit").args(args).run_with(stdin);
    out.no_secret(SECRET);
    out
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The documents of a tool's output (every one starts with a `---` line).
fn docs(yaml: &str) -> Vec<Value> {
    yaml.split("---\n")
        .map(crate::common::yaml)
        .filter(|d| !d.is_null()) // the stream's first line, a comment
        .collect()
}

fn data_of(objects: &[Value], kind: &str, field: &str) -> Map<String, Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .and_then(|o| o[field].as_object().cloned())
        .unwrap_or_default()
}

/// The ConfigMap's `data` and the Secret's `stringData` of an envsplit run that must
/// have succeeded.
fn split_of(out: &Run) -> (Map<String, Value>, Map<String, Value>) {
    let objects = docs(&out.success().stdout());
    (
        data_of(&objects, "ConfigMap", "data"),
        data_of(&objects, "Secret", "stringData"),
    )
}

/// The keys of a ConfigMap's or Secret's data, in order.
fn keys(data: &Map<String, Value>) -> Vec<&str> {
    data.keys().map(String::as_str).collect()
}

#[test]
fn tutorial_env_through_secretgen_equals_the_reviewed_golden_file() {
    let env = root().join("examples/polls/env");
    let mut args = vec!["--app", "polls"];
    args.extend(TUTORIAL_SPLIT);
    args.push(env.to_str().unwrap());
    let split = envsplit(&args, b"");
    // The tutorial leaves DJANGO_SECRET_KEY empty for the user to fill: say so.
    split.success().stderr_is(&format!(
        "envsplit: {}:3: warning: secret key DJANGO_SECRET_KEY is empty: fill it in, or let \
         `secretgen --generate DJANGO_SECRET_KEY` do it\n",
        env.display()
    ));
    let encoded = cmd("secretgen").run_with(&split.stdout);
    encoded.success().stderr_empty();
    let placeholder_secrets = [
        "your_django_db_user_password",
        "your_space_access_key_secret",
    ];
    split.no_secrets(&placeholder_secrets);
    encoded.no_secrets(&placeholder_secrets);
    let golden =
        std::fs::read_to_string(root().join("tests/golden/polls-config-secret.yaml")).unwrap();
    encoded.stdout_is(&golden);

    // The split is exactly the tutorial's: six config keys, the other eight secret.
    let objects = docs(&golden);
    assert_eq!(
        keys(&data_of(&objects, "ConfigMap", "data")),
        [
            "DATABASE_ENGINE",
            "DEBUG",
            "DJANGO_ALLOWED_HOSTS",
            "DJANGO_LOGLEVEL",
            "STATIC_BUCKET_NAME",
            "STATIC_ENDPOINT_URL"
        ]
    );
    assert_eq!(
        keys(&data_of(&objects, "Secret", "data")),
        [
            "DATABASE_HOST",
            "DATABASE_NAME",
            "DATABASE_PASSWORD",
            "DATABASE_PORT",
            "DATABASE_USERNAME",
            "DJANGO_SECRET_KEY",
            "STATIC_ACCESS_KEY_ID",
            "STATIC_SECRET_KEY"
        ]
    );
}

#[test]
fn default_heuristic_and_explain_never_show_values() {
    let env = format!(
        "DJANGO_SECRET_KEY='{SECRET}'\nDEBUG=True\nDATABASE_URL=postgres://u:{SECRET}@db/x\nDATABASE_HOST=db\n"
    );
    let out = envsplit(&["--app", "polls", "--explain", "-"], env.as_bytes());
    let (config, secret) = split_of(&out);
    assert_eq!(keys(&config), ["DATABASE_HOST", "DEBUG"]);
    assert_eq!(keys(&secret), ["DATABASE_URL", "DJANGO_SECRET_KEY"]);
    assert_eq!(secret["DJANGO_SECRET_KEY"], SECRET);
    out.stderr_is(
        "envsplit: <stdin>:1: DJANGO_SECRET_KEY: secret (default: key part SECRET)\n\
         envsplit: <stdin>:2: DEBUG: config (default: no credential word in the key)\n\
         envsplit: <stdin>:3: DATABASE_URL: secret (default: value is a URL with a password)\n\
         envsplit: <stdin>:4: DATABASE_HOST: config (default: key ends in _HOST, which names a setting)\n",
    );
}

/// A path the user gave and the tool's own words are public: printed whole even where a
/// secret value is part of them (`plane-vars.env` with the password `plane` read
/// `<redacted>-vars.env`, which both mangled the path and confirmed the value; that
/// the value stays masked elsewhere in a message is kpipe_core::redact's unit test).
#[test]
fn paths_keys_and_explain_lines_are_printed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "plane-vars.env",
        b"DEBUG=1\nPOSTGRES_PASSWORD=plane\nSECRET_KEY=secret\nDB_PASS=PASS\nSOME_PASSWORD=\n",
    );
    let out = cmd("envsplit")
        .args(["--app", "a", "--explain", &file])
        .run_with(b"");
    let (_, secret) = split_of(&out);
    assert_eq!(secret["POSTGRES_PASSWORD"], "plane");
    out.stderr_is(&format!(
        "envsplit: {file}:1: DEBUG: config (default: no credential word in the key)\n\
         envsplit: {file}:2: POSTGRES_PASSWORD: secret (default: key part PASSWORD)\n\
         envsplit: {file}:3: SECRET_KEY: secret (default: key part SECRET)\n\
         envsplit: {file}:4: DB_PASS: secret (default: key part PASS)\n\
         envsplit: {file}:5: SOME_PASSWORD: secret (default: key part PASSWORD)\n\
         envsplit: {file}:5: warning: secret key SOME_PASSWORD is empty: fill it in, or let \
         `secretgen --generate SOME_PASSWORD` do it\n"
    ));
}

#[test]
fn flags_then_rules_then_heuristic_first_match_wins() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write_file(
        dir.path(),
        "rules",
        b"# mine\nconfig API_KEY_ID\nsecret DATABASE_*\n",
    );
    let env = format!(
        "API_KEY_ID=abc\nDATABASE_HOST=db\nDATABASE_PASSWORD={SECRET}\nDEBUG=1\nSTRIPE_KEY=x\n"
    );
    let out = envsplit(
        &[
            "--app",
            "a",
            "--config",
            "STRIPE_*",
            "--secret",
            "DEBUG",
            "--rules",
            &rules,
            "--explain",
        ],
        env.as_bytes(),
    );
    let (config, secret) = split_of(&out);
    assert_eq!(keys(&config), ["API_KEY_ID", "STRIPE_KEY"]);
    assert_eq!(
        keys(&secret),
        ["DATABASE_HOST", "DATABASE_PASSWORD", "DEBUG"]
    );
    out.stderr_is(&format!(
        "envsplit: <stdin>:1: API_KEY_ID: config ({rules}:2: config API_KEY_ID)\n\
         envsplit: <stdin>:2: DATABASE_HOST: secret ({rules}:3: secret DATABASE_*)\n\
         envsplit: <stdin>:3: DATABASE_PASSWORD: secret ({rules}:3: secret DATABASE_*)\n\
         envsplit: <stdin>:4: DEBUG: secret (--secret 'DEBUG')\n\
         envsplit: <stdin>:5: STRIPE_KEY: config (--config 'STRIPE_*')\n"
    ));

    let bad = write_file(dir.path(), "bad", b"secret A\nsecrets B\n");
    envsplit(&["--app", "a", "--rules", &bad], b"A=1\n")
        .code(2)
        .stdout_empty()
        .stderr_is(&format!(
            "envsplit: {bad}:2: expected `secret GLOB` or `config GLOB`\n"
        ));
}

#[test]
fn names_namespace_labels_and_always_both() {
    let out = envsplit(
        &[
            "--app",
            "polls",
            "-n",
            "web",
            "--config-name",
            "cfg",
            "--always-both",
        ],
        b"DEBUG=1\n",
    );
    let objects = docs(&out.success().stdout());
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["metadata"]["name"], "cfg");
    assert_eq!(objects[1]["metadata"]["name"], "polls-secret");
    assert_eq!(objects[1]["type"], "Opaque");
    for o in &objects {
        assert_eq!(o["metadata"]["namespace"], "web");
        assert_eq!(o["metadata"]["labels"]["app"], "polls");
        assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/name"], "polls");
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "kpipe"
        );
    }
    // Without --always-both an empty side is left out.
    let out = envsplit(&["--app", "polls"], b"DEBUG=1\n");
    assert_eq!(docs(&out.stdout()).len(), 1);
    envsplit(&["--app", "Polls"], b"DEBUG=1\n")
        .code(2)
        .stderr_is(
            "envsplit: --config-name (or --app): invalid name \"Polls-config\": a lowercase \
             RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', \
             and must start and end with an alphanumeric character\n",
        );
}

#[test]
fn bom_crlf_and_warnings_are_accepted() {
    let out = envsplit(
        &["--app", "a"],
        format!("\u{feff}A=1\r\nmy.key=2\r\nAPI_TOKEN=\r\nPASSWORD={SECRET}\r\n").as_bytes(),
    );
    let (config, secret) = split_of(&out);
    assert_eq!(config["A"], "1");
    assert_eq!(secret["PASSWORD"], SECRET);
    out.stderr_is(
        "envsplit: <stdin>:2: warning: key \"my.key\" is a valid ConfigMap/Secret key but not \
         a shell variable name: the app may not see it through envFrom\n\
         envsplit: <stdin>:3: warning: secret key API_TOKEN is empty: fill it in, or let \
         `secretgen --generate API_TOKEN` do it\n",
    );
}

/// Every bad input: exit 2, nothing on stdout, `envsplit: FILE:LINE: reason`, no secret.
#[test]
fn bad_input_exits_2_with_file_line_and_empty_stdout() {
    let big = format!(
        "A={}\nB={}\n",
        "x".repeat(600 * 1024),
        "y".repeat(600 * 1024)
    );
    let long = format!("A={SECRET}\nLONG={}\n", "x".repeat(64 * 1024));
    let cases: Vec<(&str, Vec<u8>, &[&str], String)> = vec![
        (
            "missing =",
            format!("A={SECRET}\n{SECRET}\n").into(),
            &[],
            "2: missing '=' (a line must read KEY=value)".into(),
        ),
        (
            "invalid key",
            b"A=1\n1BAD=x\n".to_vec(),
            &[],
            "2: not a KEY=VALUE line: the text before '=' starts with a digit (a key is letters, \
             digits, '_' and '.', not starting with a digit); the line is not shown, it may be \
             a value"
                .into(),
        ),
        (
            "duplicate",
            format!("A=1\nPASSWORD={SECRET}\nA=2\n").into(),
            &[],
            "3: duplicate key A (first set on line 1)".into(),
        ),
        (
            "unterminated",
            format!("A=1\nPASSWORD=\"{SECRET}\nB=2\n").into(),
            &[],
            "2: PASSWORD: unterminated quote".into(),
        ),
        (
            "NUL",
            format!("PASSWORD={SECRET}\nB=x\0y\n").into(),
            &[],
            "2: NUL byte in the file".into(),
        ),
        (
            "invalid UTF-8",
            b"A=1\nB=2\nC=\xff\n".to_vec(),
            &[],
            "3: invalid UTF-8".into(),
        ),
        (
            "over 1 MiB",
            big.into(),
            &[],
            "2: B: the ConfigMap's values pass 1048576 bytes, the API server's 1 MiB object \
             limit: split the file"
                .into(),
        ),
        (
            "dollar",
            format!("PASSWORD={SECRET}$x\n").into(),
            &[],
            "1: PASSWORD: '$' would be expanded by dotenv rules, changing the value: keep it \
             literal with single quotes (KEY='...') or \\$, or use --format docker; pass \
             --expand to expand it"
                .into(),
        ),
        (
            "space",
            format!("PASSWORD={SECRET} x\n").into(),
            &[],
            "1: PASSWORD: unquoted value contains a space: quote the value, or read the file as \
             docker and kubectl do with --format docker"
                .into(),
        ),
        (
            "docker key",
            b"A=1\nexport B=2\n".to_vec(),
            &["--format", "docker"],
            "2: invalid key (\"export B\"): `export` is dotenv syntax, which kubectl and docker do \
             not read: drop it, or read the file with --format dotenv"
                .into(),
        ),
        (
            "docker long line",
            long.into(),
            &["--format", "docker"],
            "2: line is 64 KiB or longer: kubectl and docker cannot read it (kubectl silently \
             drops the rest of the file)"
                .into(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, input, extra, reason) in cases {
        let file = write_file(dir.path(), "env", &input);
        let mut args = vec!["--app", "a"];
        args.extend(extra);
        args.push(&file);
        envsplit(&args, b"")
            .context(name)
            .code(2)
            .stdout_empty()
            .stderr_is(&format!("envsplit: {file}:{reason}\n"));
    }
}

#[test]
fn dollar_is_literal_in_single_quotes_docker_format_or_expanded_on_request() {
    let env = b"A='x$y'\nB=a\\$b\n";
    let out = envsplit(&["--app", "a"], env);
    let data = data_of(&docs(&out.success().stdout()), "ConfigMap", "data");
    assert_eq!(
        (data["A"].as_str(), data["B"].as_str()),
        (Some("x$y"), Some("a$b"))
    );
    let out = envsplit(&["--app", "a", "--format", "docker"], b"A=x$y\n");
    assert_eq!(
        data_of(&docs(&out.stdout()), "ConfigMap", "data")["A"],
        "x$y"
    );
    let out = envsplit(&["--app", "a", "--expand"], b"A=x\nB=${A}y\n");
    assert_eq!(
        data_of(&docs(&out.stdout()), "ConfigMap", "data")["B"],
        "xy"
    );
}

/// kubectl's parser decides: where it fails envsplit exits 2, where it succeeds the data
/// match value for value, for the ConfigMap and (decoded) for the Secret.
#[test]
fn docker_format_matches_kubectl_on_the_corpus() {
    let corpus = root().join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    let (mut agreed_ok, mut agreed_err) = (0, 0);
    for file in files {
        let f = file.to_str().unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let env = [("KPIPE_CORPUS_FROM_ENV", "from the environment")];
        let kubectl = |what: &[&str]| {
            let out = crate::common::kubectl_cmd()
                .args(["create"])
                .args(what)
                .args([
                    "x",
                    &format!("--from-env-file={f}"),
                    "--dry-run=client",
                    "-o",
                    "json",
                ])
                .envs(env)
                .env_remove("KPIPE_CORPUS_UNSET_XYZ")
                .output()
                .expect("kubectl is installed");
            out.status
                .success()
                .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
        };
        let run = |tool: &str, args: &[&str]| {
            let mut c = cmd(tool);
            c.args(args).envs(env).env_remove("KPIPE_CORPUS_UNSET_XYZ");
            c.run_with(b"").context(&name)
        };
        let cm = run(
            "envsplit",
            &[
                "--app",
                "x",
                "--format",
                "docker",
                "--config",
                "*",
                "--always-both",
                f,
            ],
        );
        let split = run(
            "envsplit",
            &[
                "--app",
                "x",
                "--format",
                "docker",
                "--secret",
                "*",
                "--always-both",
                f,
            ],
        );
        let standalone = run(
            "secretgen",
            &["--name", "x", "--format", "docker", "--from-env-file", f],
        );
        match (kubectl(&["configmap"]), kubectl(&["secret", "generic"])) {
            (Some(kube_cm), Some(kube_secret)) => {
                assert!(!name.contains(".err."), "{name}: kubectl accepts it");
                let ours = data_of(&docs(&cm.success().stdout()), "ConfigMap", "data");
                let theirs = kube_cm["data"].as_object().cloned().unwrap_or_default();
                assert_eq!(
                    ours, theirs,
                    "{name}: ConfigMap data differs from kubectl's"
                );

                let theirs = decoded(kube_secret["data"].as_object().cloned().unwrap_or_default());
                let encoded = cmd("secretgen")
                    .run_with(&split.stdout)
                    .context(&name)
                    .success()
                    .stdout();
                let piped = decoded(data_of(&docs(&encoded), "Secret", "data"));
                assert_eq!(
                    piped, theirs,
                    "{name}: envsplit | secretgen differs from kubectl"
                );
                let made = decoded(data_of(
                    &docs(&standalone.success().stdout()),
                    "Secret",
                    "data",
                ));
                assert_eq!(
                    made, theirs,
                    "{name}: secretgen --from-env-file differs from kubectl"
                );
                agreed_ok += 1;
            }
            (None, None) => {
                assert!(name.contains(".err."), "{name}: kubectl rejects it");
                for (what, out) in [("envsplit", &cm), ("secretgen", &standalone)] {
                    // kubectl rejects it: so must the tool, naming the file.
                    out.code(2).stdout_empty();
                    assert!(
                        out.stderr().starts_with(&format!("{what}: {f}:")),
                        "{name}: {}",
                        out.stderr()
                    );
                }
                agreed_err += 1;
            }
            _ => panic!("{name}: kubectl's configmap and secret disagree"),
        }
    }
    assert!(
        agreed_ok >= 9 && agreed_err >= 10,
        "corpus too small: {agreed_ok} ok, {agreed_err} errors"
    );
}

fn decoded(data: Map<String, Value>) -> Map<String, Value> {
    data.into_iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k, Value::String(String::from_utf8(bytes).unwrap()))
        })
        .collect()
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let env: String = (0..20_000)
        .map(|i| format!("SETTING_{i}='value number {i}'\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "env", env.as_bytes());
    let mut child = cmd("envsplit")
        .args(["--app", "a", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then dropped: `| head -c1`
    let out: Run = child.wait_with_output().unwrap().into();
    assert_eq!(&first, b"#");
    out.code(141).stderr_empty();
}

/// Runs a shell command line with stdout on a pseudo-terminal (util-linux `script`).
fn on_terminal(command_line: &str) -> Run {
    Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux")
        .into()
}

#[test]
fn secret_values_reach_a_terminal_only_with_show() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "env",
        format!("PASSWORD={SECRET}\nDEBUG=1\n").as_bytes(),
    );
    let envsplit = bin("envsplit");
    // The terminal shows stdout and stderr together, with its line ending.
    on_terminal(&format!("{} --app a {file}", envsplit.display()))
        .code(2)
        .stdout_is(
            "envsplit: refusing to write Secret values to a terminal: pipe the output on, \
             redirect it to a file, or pass --show\r\n",
        )
        .stdout_lacks(SECRET);
    on_terminal(&format!("{} --app a --show {file}", envsplit.display()))
        .success()
        .stdout_has(SECRET);
    // Plain settings are fine on a terminal.
    on_terminal(&format!(
        "{} --app a --config '*' {file}",
        envsplit.display()
    ))
    .success();
}

/// Every bad line of a file in one run (up to 20), each `envsplit: FILE:LINE: why`; an
/// unquoted space names the flag that reads the file as docker and kubectl do.
#[test]
fn every_bad_line_is_reported_in_one_run() {
    let mut text = String::from("GOOD=1\nNAME=two words\n1BAD=x\nOK=2\nA B=c\n");
    for i in 0..30 {
        text.push_str(&format!("{i}X=y\n"));
    }
    let out = envsplit(&["--app", "a"], text.as_bytes());
    // Lines 3 and 6 to 22 start with a digit; the 20 reported, then a count.
    let digit = |line: usize| {
        format!(
            "envsplit: <stdin>:{line}: not a KEY=VALUE line: the text before '=' starts with a \
             digit (a key is letters, digits, '_' and '.', not starting with a digit); the \
             line is not shown, it may be a value\n"
        )
    };
    let mut expected = String::from(
        "envsplit: <stdin>:2: NAME: unquoted value contains a space: quote the value, or read \
         the file as docker and kubectl do with --format docker\n",
    );
    expected.push_str(&digit(3));
    expected.push_str(
        "envsplit: <stdin>:5: not a KEY=VALUE line: the text before '=' has a space (a key is \
         letters, digits, '_' and '.', not starting with a digit); the line is not shown, it \
         may be a value\n",
    );
    for line in 6..=22 {
        expected.push_str(&digit(line));
    }
    expected.push_str("envsplit: ... and 13 more bad lines\n");
    out.code(2)
        .stdout_empty()
        .stderr_is(&expected)
        .stderr_lacks("two words");
}

/// Real env files name credentials many ways; only random secrets get the hint to
/// generate them.
#[test]
fn credential_words_of_real_env_files_and_the_generate_hint() {
    let text = "DB_PW=\nMYSQL_ROOT_PASS=x\nGPG_PASSPHRASE=x\nSIM_PIN=1234\nAPI_TOKENS=a,b\n\
                STRIPE_KEYS=x\nGOOGLE_APPLICATION_CREDENTIALS=/c.json\nSENTRY_DSN=\n\
                DEBUG=1\nSPIN_COUNT=3\n";
    let out = envsplit(&["--app", "a"], text.as_bytes());
    let docs: Vec<Value> = out
        .success()
        .stdout()
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(crate::common::yaml)
        .collect();
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let keys: Vec<&String> = secret["stringData"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 8, "{keys:?}");
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert_eq!(config["data"].as_object().unwrap().len(), 2);
    out.stderr_is(
        "envsplit: <stdin>:1: warning: secret key DB_PW is empty: fill it in, or let \
         `secretgen --generate DB_PW` do it\n\
         envsplit: <stdin>:8: warning: secret key SENTRY_DSN is empty: fill it in\n",
    );
}

/// The default split (no --config, --secret or --rules) against every key of the real
/// env files of tests/corpus/env, labelled secret or config by reading them
/// (tests/corpus/env-labels.tsv): no labelled credential reaches the ConfigMap, and at
/// least 95% of what reaches the Secret is one. A quality guard for the heuristic;
/// bench/heuristic.sh prints the same measure.
#[test]
fn the_default_split_finds_every_labelled_credential() {
    let labels = std::fs::read_to_string(root().join("tests/corpus/env-labels.tsv")).unwrap();
    let mut files: std::collections::BTreeMap<&str, Vec<(&str, bool)>> = Default::default();
    for line in labels
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert!(matches!(fields[2], "secret" | "config"), "{line}");
        files
            .entry(fields[0])
            .or_default()
            .push((fields[1], fields[2] == "secret"));
    }
    let (mut found, mut missed, mut extra) = (0, Vec::new(), Vec::new());
    for (name, keys) in &files {
        let path = root().join("tests/corpus/env").join(name);
        let path = path.to_str().unwrap();
        // Read as dotenv, envsplit's default, or as docker where dotenv refuses the file.
        let out = ["dotenv", "docker"]
            .iter()
            .map(|format| {
                cmd("envsplit")
                    .args(["--app", "x", "--explain", "--format", format, path])
                    .run_with(b"")
            })
            .find(|out| out.status.success())
            .unwrap_or_else(|| panic!("{name}: envsplit reads it in no format"));
        let (config, secret) = split_of(&out);
        assert_eq!(
            config.len() + secret.len(),
            keys.len(),
            "{name}: keys differ"
        );
        for (key, labelled_secret) in keys {
            let sent_to_secret = secret.contains_key(*key);
            assert!(sent_to_secret || config.contains_key(*key), "{name}: {key}");
            match (labelled_secret, sent_to_secret) {
                (true, true) => found += 1,
                (true, false) => missed.push(format!("{name}:{key}")),
                (false, true) => extra.push(format!("{name}:{key}")),
                (false, false) => {}
            }
        }
    }
    assert!(
        missed.is_empty(),
        "credentials sent to the ConfigMap: {missed:?}"
    );
    let precision = found as f64 / (found + extra.len()) as f64;
    assert!(
        precision >= 0.95,
        "precision {precision:.3}: settings sent to the Secret: {extra:?}"
    );
    assert!(
        files.len() >= 35 && found >= 250,
        "corpus too small: {} files, {found} credentials",
        files.len()
    );
}

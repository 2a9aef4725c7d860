//! What every kpipe tool promises on the command line.

use crate::common::*;

const TOOLS: &[&str] = &[
    "envsplit",
    "secretgen",
    "manifest-gen",
    "kapply",
    "certwait",
];

#[test]
fn help_goes_to_stdout_and_exits_zero() {
    for tool in TOOLS {
        let out = cmd(tool).arg("--help").output().unwrap();
        assert!(out.status.success(), "{tool} --help failed");
        assert!(
            stdout(&out).contains("Usage:"),
            "{tool} --help has no usage"
        );
        assert!(out.stderr.is_empty(), "{tool} --help wrote to stderr");
    }
}

#[test]
fn unknown_flag_is_a_usage_error_with_exit_2() {
    for tool in TOOLS {
        let out = cmd(tool).arg("--no-such-flag").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{tool}");
        assert!(
            out.stdout.is_empty(),
            "{tool} wrote to stdout on a usage error"
        );
        assert!(stderr(&out).contains("--no-such-flag"), "{tool}");
    }
}

#[test]
fn man_pages_and_completions_come_from_the_same_definitions() {
    for tool in TOOLS {
        let man = cmd(tool).arg("--man").output().unwrap();
        assert!(
            man.status.success(),
            "{tool} --man failed: {}",
            stderr(&man)
        );
        assert!(
            stdout(&man).contains(&format!(".TH {tool}")),
            "{tool} man page has no title"
        );
        for shell in ["bash", "zsh", "fish"] {
            let out = cmd(tool).args(["--completions", shell]).output().unwrap();
            assert!(out.status.success(), "{tool} --completions {shell}");
            assert!(
                stdout(&out).contains("--help"),
                "{tool} {shell} completion lacks flags"
            );
        }
        let bad = cmd(tool).args(["--completions", "tcsh"]).output().unwrap();
        assert_eq!(
            bad.status.code(),
            Some(2),
            "{tool} accepted an unknown shell"
        );
    }
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let bad = OsStr::from_bytes(b"caf\xe9");
    for tool in TOOLS {
        for args in [vec![bad], vec![OsStr::new("--namespace"), bad]] {
            let out = cmd(tool)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{tool} {args:?}: {err}");
            assert!(out.stdout.is_empty(), "{tool} {args:?} wrote to stdout");
            assert!(
                err.contains("invalid UTF-8") || err.contains("unexpected argument"),
                "{tool} {args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{tool} {args:?}: {err}");
        }
    }
}

/// A closed stdout (`tool >&-`) is a write error (exit 1), not output lost with exit 0;
/// a closed pipe (`| head`) stays a quiet 141, and /dev/null opened read-write on
/// purpose (Python's `subprocess.DEVNULL`) stays fine.
#[test]
fn a_closed_stdout_is_a_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env");
    std::fs::write(&env, "DEBUG=on\nDATABASE_PASSWORD=pw-closed-stdout\n").unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: polls-config}\ndata: {A: b}\n",
    )
    .unwrap();
    let (env, manifest) = (env.to_str().unwrap(), manifest.to_str().unwrap());
    let runs: [(&str, Vec<&str>); 4] = [
        ("envsplit", vec!["--app", "polls", env]),
        ("secretgen", vec!["--from-env-file", env, "--name", "s"]),
        ("manifest-gen", vec!["--image", "polls:1", "-i", manifest]),
        (
            "kapply",
            vec!["--dry-run=client", "-o", "yaml", "-f", manifest],
        ),
    ];
    for (tool, args) in runs {
        let through_sh = |redirect: &str| {
            let mut c = std::process::Command::new("sh");
            c.arg("-c")
                .arg(format!("exec \"$0\" \"$@\" {redirect}"))
                .arg(bin(tool))
                .args(&args)
                .env_remove("KUBECONFIG");
            c.run()
        };
        through_sh(">&-").code(1).stderr_has(&format!(
            "{tool}: cannot write the output: standard output is closed"
        ));
        through_sh("1<>/dev/null").success().stderr_empty();
    }
}

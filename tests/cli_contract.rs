//! What every kpipe tool promises on the command line.

use crate::common::*;

const TOOLS: &[&str] = &[
    "envsplit",
    "secretgen",
    "manifest-gen",
    "kapply",
    "certwait",
];

/// The usage line clap prints for `tool` after a usage error.
fn usage(tool: &str) -> &'static str {
    match tool {
        "envsplit" => "envsplit [OPTIONS] --app <APP> [FILE]",
        "secretgen" => "secretgen [OPTIONS] [FILE]...",
        "manifest-gen" => "manifest-gen [OPTIONS]",
        "kapply" => "kapply [OPTIONS]",
        "certwait" => "certwait [OPTIONS] [NAME]...",
        _ => panic!("no such tool: {tool}"),
    }
}

/// clap's message for a usage error: `error`, its `tip` if any, the `usage` line.
fn usage_error(error: &str, tip: &str, usage: &str) -> String {
    format!("error: {error}\n{tip}\nUsage: {usage}\n\nFor more information, try '--help'.\n")
}

#[test]
fn help_goes_to_stdout_and_exits_zero() {
    for tool in TOOLS {
        cmd(tool)
            .arg("--help")
            .run()
            .context(tool)
            .success()
            .stdout_has("Usage:")
            .stderr_empty();
    }
}

#[test]
fn unknown_flag_is_a_usage_error_with_exit_2() {
    for tool in TOOLS {
        cmd(tool)
            .arg("--no-such-flag")
            .run()
            .context(tool)
            .code(2)
            .stdout_empty()
            .stderr_has("--no-such-flag")
            .stderr_is(&usage_error(
                "unexpected argument '--no-such-flag' found",
                match *tool {
                    // Tools without arguments of their own have no tip about `--`.
                    "kapply" => "",
                    "manifest-gen" => "\n  tip: a similar argument exists: '--no-config-hash'\n",
                    _ => "\n  tip: to pass '--no-such-flag' as a value, use '-- --no-such-flag'\n",
                },
                match *tool {
                    "manifest-gen" => "manifest-gen --no-config-hash",
                    _ => usage(tool),
                },
            ));
    }
}

#[test]
fn man_pages_and_completions_come_from_the_same_definitions() {
    for tool in TOOLS {
        // The man page has a title.
        cmd(tool)
            .arg("--man")
            .run()
            .context(tool)
            .success()
            .stdout_has(&format!(".TH {tool}"));
        for shell in ["bash", "zsh", "fish"] {
            // The completion has the flags.
            cmd(tool)
                .args(["--completions", shell])
                .run()
                .context(format!("{tool} {shell}"))
                .success()
                .stdout_has("--help");
        }
        // An unknown shell is refused.
        cmd(tool)
            .args(["--completions", "tcsh"])
            .run()
            .context(tool)
            .code(2)
            .stderr_is(&format!(
                "{tool}: --completions: unknown shell \"tcsh\" (bash, zsh or fish)\n"
            ));
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
                .run()
                .context(format!("{tool} {args:?}"));
            let err = out.code(2).stdout_empty().stderr_lacks("panicked").stderr();
            assert!(
                err.contains("invalid UTF-8") || err.contains("unexpected argument"),
                "{tool} {args:?}: {err}"
            );
            // A tool that takes no argument of its own reads `caf\xe9` as an unexpected one.
            let error = if args.len() == 1 && matches!(*tool, "manifest-gen" | "kapply") {
                "unexpected argument 'caf\u{fffd}' found"
            } else {
                "invalid UTF-8 was detected in one or more arguments"
            };
            out.stderr_is(&usage_error(error, "", usage(tool)));
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
        through_sh(">&-")
            .code(1)
            .stderr_has(&format!(
                "{tool}: cannot write the output: standard output is closed"
            ))
            .stderr_is(&format!(
                "{tool}: cannot write the output: standard output is closed\n"
            ));
        through_sh("1<>/dev/null").success().stderr_empty();
    }
}

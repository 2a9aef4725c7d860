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

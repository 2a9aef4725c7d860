//! kubesim quotes values in its messages as the server does, with Go's
//! `strconv.Quote`. kubectl is a Go program whose go-template `printf "%q"` is that
//! function: the oracle.

use crate::common::kubectl_cmd;

/// Strings where quoting rules part ways: C escapes, `\x` bytes, runes Go does not print
/// (separators, format and private-use runes, a BOM) in and beyond the BMP, and
/// printable ones that stay as they are.
const STRINGS: &[&str] = &[
    "plain",
    "tab\there nl\n cr\r bell\x07 bs\x08 ff\x0c vt\x0b del\x7f esc\x1b",
    "quote\" back\\ single'",
    "nbsp\u{a0} shy\u{ad} nel\u{85} zwsp\u{200b} zwj\u{200d} lre\u{202a}",
    "bom\u{feff} pua\u{e000} ls\u{2028} ps\u{2029} ideographic space\u{3000}",
    "emoji\u{1f600} tag\u{e0041} plane-15\u{f0000}",
    "\u{e9} \u{f1} \u{4e2d} \u{301} \u{2603} \u{1d11e}",
];

#[test]
fn values_are_quoted_as_go_quotes_them() {
    let mut differ = Vec::new();
    for s in STRINGS {
        let out = kubectl_cmd()
            .args(["create", "configmap", "x", "--dry-run=client"])
            .arg(format!("--from-literal=k={s}"))
            .args(["-o", "go-template={{printf \"%q\" .data.k}}"])
            .env("KUBECONFIG", "/dev/null")
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let go = String::from_utf8(out.stdout).unwrap();
        let ours = kubesim::go_quote(s);
        if ours != go {
            differ.push(format!("{s:?}: kubesim {ours}, Go {go}"));
        }
    }
    assert!(
        differ.is_empty(),
        "quoted differently:\n{}",
        differ.join("\n")
    );
}

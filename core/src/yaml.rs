//! YAML output that every reader takes back as the same data.
//!
//! Kubernetes reads YAML with a YAML 1.1 resolver (go-yaml v2 behind sigs.k8s.io/yaml),
//! where plain `on`, `no`, `y`, `~`, `0755`, `1_000`, `12:30:00` or `2001-12-14` are
//! bools, nulls, numbers or timestamps. A YAML 1.2 writer writes such strings bare,
//! so `DEBUG: "on"` would reach the API server as `true`. This emitter writes a string
//! plain only when it is plainly a string under both specs, and double-quotes the rest.
//! Map keys are sorted, so the output is deterministic.

use crate::stream;
use serde_json::{Map, Value};
use std::fmt::Write;

/// Writes one value as a block-style YAML document body (no `---`), ending in a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

/// Writes a multi-document stream between the lines [`stream::BEGIN`] and [`stream::END`]
/// (comments to every YAML reader; kpipe's reader refuses a stream cut off before `END`).
/// Every document starts with `---`, so streams can be concatenated with `cat` and still
/// be one valid stream.
pub fn to_stream<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = to_unfinished_stream(docs);
    out.push_str(stream::END);
    out.push('\n');
    out
}

/// [`to_stream`] without its end line: what a tool that failed writes of the work it did,
/// so that the next kpipe tool refuses it as the output of a failed stage.
pub fn to_unfinished_stream<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = format!("{}\n", stream::BEGIN);
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&to_string(doc));
    }
    out
}

/// The text of a string scalar: plain when safe, double-quoted otherwise.
pub fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        double_quoted(s)
    }
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, first_inline: bool) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for (i, key) in keys.into_iter().enumerate() {
        if !(first_inline && i == 0) {
            pad(out, indent);
        }
        out.push_str(&scalar(key));
        out.push(':');
        write_child(out, &map[key], indent, indent + 2);
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                write_map(out, map, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&inline(scalar));
                out.push('\n');
            }
        }
    }
}

/// Writes what follows `key:`; sequences sit at the key's own indent, as kubectl writes them.
fn write_child(out: &mut String, value: &Value, key_indent: usize, map_indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, map_indent, false);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(out, items, key_indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Words that YAML 1.1 resolves to bool or null in some capitalisation.
const RESERVED_WORDS: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

/// True when `s` written bare is a string under YAML 1.1 and 1.2 alike.
///
/// Deliberately conservative: it must start with a letter or `/` (no number, time,
/// `~`, `.inf`, `<<` or indicator can), use only characters that carry no YAML meaning,
/// and not be a bool/null word. Everything else is quoted, which is always correct.
fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'/') || s.ends_with(' ') {
        return false;
    }
    if RESERVED_WORDS.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return false;
    }
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
        b'_' | b'.' | b'/' | b'-' | b'@' | b'+' | b'=' => true,
        // ": " and a trailing ":" make a mapping; "a:b" is a plain string.
        b':' => matches!(bytes.get(i + 1), Some(next) if *next != b' '),
        // " #" starts a comment, but '#' is never allowed anyway.
        b' ' => true,
        _ => false,
    })
}

/// A double-quoted scalar that both YAML 1.1 and 1.2 read back byte for byte.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Control characters, DEL, C1, the BOM, YAML's own line separators and
            // non-characters are not allowed raw in YAML 1.1.
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || matches!(
                    c,
                    '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml11_lookalikes_are_quoted() {
        for s in [
            "on",
            "On",
            "OFF",
            "y",
            "N",
            "yes",
            "NO",
            "True",
            "null",
            "~",
            "",
            "0755",
            "1_000",
            "12:30:00",
            "2001-12-14",
            ".inf",
            "-.Inf",
            ".nan",
            "<<",
            "=",
            "0x1F",
            "1e3",
            "+1",
            "0b101",
            "-",
            "*",
            "&a",
            "!tag",
            "%x",
            "@x",
            "`x",
            "a: b",
            "a #b",
            "x:",
            " lead",
            "trail ",
            "multi\nline",
            "tab\there",
            "{a}",
            "[a]",
            "'q'",
            "\"q\"",
            "a,b",
            "ü",
        ] {
            let out = scalar(s);
            assert!(out.starts_with('"'), "{s:?} was emitted bare as {out}");
        }
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in [
            "polls",
            "info",
            "postgresql_psycopg2",
            "app.kubernetes.io/name",
            "nginx:1.25",
            "/app",
            "a b",
        ] {
            assert_eq!(scalar(s), s);
        }
    }

    #[test]
    fn escapes_what_yaml11_forbids_raw() {
        assert_eq!(scalar("a\u{7f}b"), "\"a\\u007Fb\"");
        assert_eq!(scalar("a\u{2028}b"), "\"a\\u2028b\"");
        assert_eq!(scalar("q\"\\"), "\"q\\\"\\\\\"");
    }

    #[test]
    fn block_layout_with_sorted_keys() {
        let v = json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "x", "labels": {}},
            "data": {"on": "on", "n": 1},
            "list": [{"b": 1, "a": [1, 2]}, "s", [], [true]]
        });
        let expected = "\
apiVersion: v1
data:
  \"n\": 1
  \"on\": \"on\"
kind: ConfigMap
list:
- a:
  - 1
  - 2
  b: 1
- s
- []
-
  - true
metadata:
  labels: {}
  name: x
";
        assert_eq!(to_string(&v), expected);
        let back = crate::yaml11::load(expected).unwrap().value.unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn stream_starts_every_document() {
        let a = json!({"a": 1});
        assert_eq!(
            to_stream([&a, &a]),
            "# kpipe stream: begin\n---\na: 1\n---\na: 1\n# kpipe stream: end\n"
        );
        assert_eq!(
            to_stream([]),
            "# kpipe stream: begin\n# kpipe stream: end\n"
        );
    }
}

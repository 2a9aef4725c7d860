//! YAML output that every reader takes back as the same data.
//!
//! Kubernetes reads YAML with a YAML 1.1 resolver (go-yaml v2 behind sigs.k8s.io/yaml),
//! where plain `on`, `no`, `y`, `~`, `0755`, `1_000`, `12:30:00` or `2001-12-14` are
//! bools, nulls, numbers or timestamps. A YAML 1.2 writer writes such strings bare,
//! so `DEBUG: "on"` would reach the API server as `true`. This emitter writes a string
//! plain only when it is plainly a string under both specs, a multi-line string as a
//! literal block (`|`, `|-`, `|+`) where that keeps every byte, as kubectl does, and
//! double-quotes the rest. Map keys are sorted, so the output is deterministic.

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
        if let Value::String(s) = item
            && is_literal_safe(s)
        {
            write_literal(out, s, indent + 2);
            continue;
        }
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
        Value::String(s) if is_literal_safe(s) => write_literal(out, s, map_indent),
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

/// Whether a string is written as a literal block: it has a line break, and a literal
/// block keeps every byte of it. go-yaml (kubectl) writes one only then too: no
/// character that must be escaped (a tab, `\r`, a control character; here also the
/// Unicode line separators a YAML 1.1 reader may break lines at), no space before a
/// line break or at the end (a reader may strip it).
fn is_literal_safe(s: &str) -> bool {
    s.contains('\n')
        && !s.ends_with(' ')
        && !s.contains(" \n")
        && s.chars().all(|c| c == '\n' || !needs_escape(c))
}

/// ` |` (`|-` without a final line break, `|+` with more than one), then the lines at
/// `indent`. A first line that starts with a space or is empty needs the indentation
/// given: `|2`, as go-yaml writes it.
fn write_literal(out: &mut String, s: &str, indent: usize) {
    out.push_str(" |");
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    let body = s.strip_suffix('\n');
    match body {
        None => out.push('-'),
        Some(rest) if rest.is_empty() || rest.ends_with('\n') => out.push('+'),
        Some(_) => {}
    }
    out.push('\n');
    for line in body.unwrap_or(s).split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.push_str(line);
        }
        out.push('\n');
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
/// `~`, `.inf`, `<<` or indicator can), or with a digit or `-` and be no number or time
/// in any schema ([`may_be_number_or_time`]: `--port=8444`, `100m`, `1.25-alpine` and
/// uids stay plain, as kubectl writes them); use only characters that carry no YAML meaning,
/// and not be a bool/null word. Everything else is quoted, which is always correct.
fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let starts_well = match first {
        b'a'..=b'z' | b'A'..=b'Z' | b'/' => true,
        // Not an indicator (`- x`, `-`), a document marker or a number.
        b'0'..=b'9' | b'-' => {
            !matches!(bytes.get(1), None | Some(b' '))
                && !s.starts_with("---")
                && !may_be_number_or_time(s)
        }
        _ => false,
    };
    if !starts_well || s.ends_with(' ') {
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

/// Control characters, DEL, C1, the BOM, YAML's own line separators and non-characters
/// are not allowed raw in YAML 1.1.
fn needs_escape(c: char) -> bool {
    (c as u32) < 0x20
        || (0x7f..=0x9f).contains(&(c as u32))
        || matches!(
            c,
            '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// Whether some YAML 1.1 or 1.2 reader might take `s` for a number or a timestamp:
/// every form of those (`0x1F`, `0o17`, `0b101`, `-1_000`, `1e3`, `.5`, `-.inf`,
/// `190:20:30.15`, `2001-12-14t21:59:43.10-05:00`) has a sign, `0x` and hex digits, or
/// only digits and the characters `._:+-eEoObBtTzZ` and space (YAML 1.1's own float
/// pattern allows `1.2.3`, so `10.0.0.1` is quoted too), or a `.` first. Anything else
/// (a letter of another kind) is a string in every schema.
fn may_be_number_or_time(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if unsigned.starts_with('.') {
        return true;
    }
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        return hex.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_');
    }
    unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || b" ._:+-eEoObBtTzZ".contains(&b))
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
            c if needs_escape(c) => {
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
            "-1",
            "- x",
            "---x",
            "-.inf",
            "1.2.3",
            "10.0.0.1",
            "-0x1F",
            "0x1_f",
            "12345678-1234-1234-1234-123456789012",
            "2001-12-14 21:59:43.10",
            "2001-12-14t21:59:43.10-05:00",
            "190:20:30.15",
            "1e",
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
            // As kubectl writes them: no number or time in any schema.
            "--port=8444",
            "-x",
            "100m",
            "1Gi",
            "3f2a1b4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b",
            "1.25-alpine",
            "0xZZ",
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
    fn multi_line_strings_are_literal_blocks_as_kubectl_writes_them() {
        // What `kubectl create configmap --from-literal ... -o yaml` writes for each.
        let v = json!({"data": {
            "a": "line1\nline2", "b": "line1\nline2\n", "c": "line1\n\n",
            "d": " lead\nx", "e": "trail \nx", "f": "tab\tx\ny", "g": "\nfirst",
            "h": "x\n ", "i": "a\r\nb", "k": "# c\n- x", "l": "\n", "p": "x\n\n\n",
            "q": "  x\n y", "r": "x\n  y\n", "s": "x\u{2028}y\nz"},
            "command": ["sh", "-c", "echo a\necho b"]});
        let expected = "\
command:
- sh
- -c
- |-
  echo a
  echo b
data:
  a: |-
    line1
    line2
  b: |
    line1
    line2
  c: |+
    line1

  d: |2-
     lead
    x
  e: \"trail \\nx\"
  f: \"tab\\tx\\ny\"
  g: |2-

    first
  h: \"x\\n \"
  i: \"a\\r\\nb\"
  k: |-
    # c
    - x
  l: |2+

  p: |+
    x


  q: |2-
      x
     y
  r: |
    x
      y
  s: \"x\\u2028y\\nz\"
";
        assert_eq!(to_string(&v), expected);
        let back = crate::yaml11::load(expected).unwrap().value.unwrap();
        assert_eq!(back, v);
        // Nested in lists and maps, every string comes back as it was.
        let nested = json!([{"x": ["a\n", {"y": " b\n\nc\n\n"}]}, ["\n\n", "z"]]);
        let back = crate::yaml11::load(&to_string(&nested))
            .unwrap()
            .value
            .unwrap();
        assert_eq!(back, nested);
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

//! Request bodies in YAML, read the way kube-apiserver reads them: go-yaml v2 (YAML 1.1)
//! behind sigs.k8s.io/yaml, then JSON. A plain `on`, `yes` or `n` is a boolean (fixture
//! 22), `0755` is octal, `1_000` and `0x1F` are ints, timestamps and base-60 numbers
//! (`12:30:00`, fixture 23) stay strings, `<<` merges mappings.
//!
//! Written from go-yaml v2's resolve.go and decode.go on yaml-rust2's events, and checked
//! against kubectl's own reading (tests/kubesim/tests/yaml.rs). It shares nothing with
//! the tools' reader (`kpipe_core::yaml11`): a simulator that read YAML with the tools'
//! own rules could not catch their mistakes.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

use crate::status::ApiError;

/// Nodes a document may expand to through aliases before it is refused (an alias bomb).
const MAX_NODES: usize = 1_000_000;

/// Reads a YAML (or JSON) body; `what` starts the 400's message, as the server words it.
pub fn parse(bytes: &[u8], what: &str) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request(format!("{what}: invalid UTF-8")))?;
    load(text).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// Parses an `application/apply-patch+yaml` body.
pub fn parse_apply(bytes: &[u8]) -> Result<Value, ApiError> {
    parse(bytes, "error decoding YAML")
}

/// The first document of `text` as JSON (null for none), or why not (`line N: ...`).
pub fn load(text: &str) -> Result<Value, String> {
    let mut parser = Parser::new_from_str(text);
    let mut doc = Document::default();
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| format!("line {}: {}", e.marker().line(), e.info()))?;
        let at = |why: String| format!("line {}: {why}", mark.line());
        match event {
            Event::StreamEnd | Event::DocumentEnd => break,
            Event::Scalar(text, TScalarStyle::Plain, 0, None) if text == "<<" && doc.key_next() => {
                doc.merge_next();
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_ref()).map_err(at)?;
                doc.node(value, anchor).map_err(at)?;
            }
            Event::SequenceStart(anchor, _) => doc.open(Open::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => doc.open(Open::Map(Mapping::new(anchor))),
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match doc.stack.pop() {
                    Some(Open::Seq(items, anchor)) => (Value::Array(items), anchor),
                    Some(Open::Map(mapping)) => (Value::Object(mapping.map), mapping.anchor),
                    None => return Err(at("unbalanced collection".into())),
                };
                doc.node(value, anchor).map_err(at)?;
            }
            Event::Alias(id) => {
                let value = doc
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| at("unknown anchor".into()))?;
                doc.expanded += count(&value);
                if doc.expanded > MAX_NODES {
                    return Err(at("document contains excessive aliasing".into()));
                }
                doc.node(value, 0).map_err(at)?;
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart => {}
        }
    }
    Ok(doc.root.unwrap_or(Value::Null))
}

#[derive(Default)]
struct Document {
    stack: Vec<Open>,
    anchors: HashMap<usize, Value>,
    root: Option<Value>,
    expanded: usize,
}

enum Open {
    Seq(Vec<Value>, usize),
    Map(Mapping),
}

struct Mapping {
    map: Map<String, Value>,
    anchor: usize,
    /// The key read, waiting for its value.
    key: Option<Key>,
}

enum Key {
    Name(String),
    /// `<<`: its value is merged in.
    Merge,
}

impl Mapping {
    fn new(anchor: usize) -> Mapping {
        Mapping {
            map: Map::new(),
            anchor,
            key: None,
        }
    }
}

impl Document {
    fn open(&mut self, open: Open) {
        self.stack.push(open);
    }

    /// Whether the next node is a mapping's key.
    fn key_next(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map(m)) if m.key.is_none())
    }

    /// The key just read is `<<`: the value that follows is merged in.
    fn merge_next(&mut self) {
        if let Some(Open::Map(mapping)) = self.stack.last_mut() {
            mapping.key = Some(Key::Merge);
        }
    }

    /// A finished node: the root, an item, a key or a key's value.
    fn node(&mut self, value: Value, anchor: usize) -> Result<(), String> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(value);
                }
            }
            Some(Open::Seq(items, _)) => items.push(value),
            Some(Open::Map(mapping)) => match mapping.key.take() {
                None => mapping.key = Some(key(value)?),
                Some(Key::Name(name)) => {
                    mapping.map.insert(name, value);
                }
                Some(Key::Merge) => merge(&mut mapping.map, value)?,
            },
        }
        Ok(())
    }
}

/// A mapping key as sigs.k8s.io/yaml turns go-yaml's keys into JSON's strings.
fn key(value: Value) -> Result<Key, String> {
    match value {
        Value::String(s) => Ok(Key::Name(s)),
        Value::Bool(b) => Ok(Key::Name(b.to_string())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Key::Name(n.to_string())),
        _ => Err("unsupported mapping key (null, float or collection)".into()),
    }
}

/// go-yaml v2's merge: a mapping, or a list of mappings of which the first wins; keys
/// merged in replace those before `<<` and are replaced by those after it.
fn merge(into: &mut Map<String, Value>, value: Value) -> Result<(), String> {
    let maps = match value {
        Value::Object(map) => vec![map],
        Value::Array(items) => items
            .into_iter()
            .rev()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                _ => Err("map merge requires map or sequence of maps as the value".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("map merge requires map or sequence of maps as the value".into()),
    };
    for map in maps {
        into.extend(map);
    }
    Ok(())
}

/// A scalar as go-yaml v2 resolves it: quoted and block scalars and `!!str` are strings,
/// plain ones go through YAML 1.1's table.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let tag = tag.map(|t| {
        if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" {
            t.suffix.as_str()
        } else {
            ""
        }
    });
    if tag == Some("str") || tag == Some("binary") || style != TScalarStyle::Plain {
        return Ok(Value::String(text.to_string()));
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false));
        }
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            // JSON has no such number: sigs.k8s.io/yaml fails to marshal it.
            return Err("json: unsupported value: a YAML infinity or NaN".into());
        }
        _ => {}
    }
    let number = match text.as_bytes()[0] {
        b'.' => go_float(text),
        b'+' | b'-' | b'0'..=b'9' => number(text),
        _ => None,
    };
    Ok(number.unwrap_or_else(|| Value::String(text.to_string())))
}

/// resolve.go's 'D' and 'S' cases: an int (Go's ParseInt then ParseUint, base from the
/// prefix, underscores dropped), a float of YAML's shape, or a `0b` binary int.
fn number(text: &str) -> Option<Value> {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(n) = go_int(&plain) {
        return Some(n);
    }
    if yaml_style_float(&plain) {
        return go_float(&plain);
    }
    None
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint(s, 0, 64)`.
fn go_int(s: &str) -> Option<Value> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = strip_prefix_ci(digits, "0x") {
        (16, d)
    } else if let Some(d) = strip_prefix_ci(digits, "0o") {
        (8, d)
    } else if let Some(d) = strip_prefix_ci(digits, "0b") {
        (2, d)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok()?;
    if negative {
        let n = i128::try_from(magnitude).ok().map(|m| -m)?;
        i64::try_from(n).ok().map(Value::from)
    } else if let Ok(n) = i64::try_from(magnitude) {
        Some(Value::from(n))
    } else {
        u64::try_from(magnitude).ok().map(Value::from)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// resolve.go's `yamlStyleFloat`, the very expression.
fn yaml_style_float(s: &str) -> bool {
    static YAML_STYLE_FLOAT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").expect("a regex")
    });
    YAML_STYLE_FLOAT.is_match(s)
}

/// A float as the server holds it once it is JSON and decoded again: Go writes the
/// shortest digits that read back, without an exponent below 1e21 (`1e3` is `1000`);
/// what then reads as an int64 is one.
fn go_float(s: &str) -> Option<Value> {
    if !yaml_style_float(s) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    // Rust's Display of an f64 is those same shortest digits, zero-padded.
    match format!("{f}").parse::<i64>() {
        Ok(n) if f.abs() < 1e21 => Some(Value::from(n)),
        _ => Number::from_f64(f).map(Value::Number),
    }
}

/// Nodes in `value`, for the alias budget.
fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_on_is_a_bool_and_quoted_on_is_not() {
        let v = parse_apply(b"data:\n  DEBUG: on\n  QUOTED: \"on\"\n  AT: 12:30:00\n").unwrap();
        assert_eq!(
            v,
            json!({"data": {"DEBUG": true, "QUOTED": "on", "AT": "12:30:00"}})
        );
        let v = parse_apply(b"{\"data\": {\"DEBUG\": \"on\"}}").unwrap();
        assert_eq!(v, json!({"data": {"DEBUG": "on"}}));
        assert!(parse_apply(b"data: [").is_err());
    }

    #[test]
    fn numbers_as_go_parses_them() {
        let v =
            load("a: 0755\nb: 0x1F\nc: 1_000\nd: -0b11\ne: 1e3\nf: 1.5\ng: 0o17\nh: 08\n").unwrap();
        assert_eq!(
            v,
            json!({"a": 493, "b": 31, "c": 1000, "d": -3, "e": 1000, "f": 1.5, "g": 15, "h": 8})
        );
    }

    #[test]
    fn merges_and_aliases() {
        // `y` is YAML 1.1's true: as a key, "true".
        let v = load("base: &b {p: 1, q: 2}\nuse:\n  p: 0\n  <<: *b\n  q: 3\n  y: 4\n").unwrap();
        assert_eq!(v["use"], json!({"p": 1, "q": 3, "true": 4}));
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
        assert!(load(bomb).unwrap_err().contains("excessive aliasing"));
    }
}

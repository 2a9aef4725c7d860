//! Reading the manifest stream that flows between the tools.
//!
//! A stream is what `kubectl apply -f -` accepts: YAML documents separated by `---`,
//! JSON documents, and `kind: List` wrappers. Every document is read into a
//! `serde_json::Value` (Kubernetes objects are JSON) and remembers where it came from,
//! so errors can say `SOURCE: document N (line L): what`.

use crate::error::{Error, Result};
use crate::object::ObjectId;
use crate::yaml11;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// One Kubernetes object from the stream, with its place in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// File name, or `<stdin>`.
    pub source: String,
    /// 1-based number of the document in its source.
    pub index: usize,
    /// 1-based line where the document's text starts.
    pub line: usize,
}

impl Document {
    /// `SOURCE: document N (line L)`, the prefix of every message about this document.
    pub fn place(&self) -> String {
        format!(
            "{}: document {} (line {})",
            self.source, self.index, self.line
        )
    }

    /// The object's identity; documents from [`parse`] always have one.
    pub fn id(&self) -> ObjectId {
        ObjectId::of(&self.value).expect("documents are checked when parsed")
    }

    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }
}

/// The display name of a path argument: `-` is standard input.
pub fn source_name(path: &str) -> String {
    if path == "-" {
        "<stdin>".into()
    } else {
        path.into()
    }
}

/// Reads a whole file (or stdin for `-`) as UTF-8 text, dropping a leading BOM.
pub fn read_source(path: &str) -> Result<String> {
    let name = source_name(path);
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(Path::new(path)).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| Error::input(format!("{name}: cannot read: {e}")))?;
    text_of(&name, bytes)
}

/// Checks that input bytes are UTF-8 and strips a BOM, naming the line of bad bytes.
pub fn text_of(name: &str, bytes: Vec<u8>) -> Result<String> {
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.drain(..3);
            }
            Ok(text)
        }
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(Error::at(name, line, "invalid UTF-8"))
        }
    }
}

/// What to do with unquoted values that Kubernetes' YAML 1.1 reader resolves otherwise
/// than this YAML 1.2 reader (`on`, `yes`, `0755`, `1_000`...): see [`crate::yaml11`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Yaml11 {
    /// Read them as YAML 1.2 does (strings, mostly).
    #[default]
    Allow,
    /// Stop with an input error naming the value, so that a tool never sends the API
    /// server other data than `kubectl apply` would for the same file.
    Reject,
}

/// Parses a manifest stream into objects, checking that each has apiVersion and kind
/// and no mapping repeats a key. Empty documents (only comments or blank lines) are
/// skipped, as kubectl does; `kind: List` is flattened into its items.
pub fn parse(source: &str, text: &str) -> Result<Vec<Document>> {
    parse_with(source, text, Yaml11::Allow)
}

/// [`parse`], with a choice about values that YAML 1.1 reads otherwise.
pub fn parse_with(source: &str, text: &str, yaml11: Yaml11) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (index, (line, chunk)) in split_documents(text).into_iter().enumerate() {
        let index = index + 1;
        let place = |l: usize| format!("{source}: document {index} (line {l})");
        let is_json = chunk.trim_start().starts_with(['{', '[']);
        let value: Value = if is_json {
            serde_json::from_str::<UniqueKeys>(chunk)
                .map_err(|e| {
                    let at = place(line + e.line() - 1);
                    match duplicate_key(&e.to_string()) {
                        Some(duplicate) => Error::input(format!("{at}: {duplicate}")),
                        None => Error::input(format!(
                            "{at}: invalid JSON: {}",
                            unquoted(&strip_json_location(&e))
                        )),
                    }
                })?
                .0
        } else {
            serde_yaml::from_str::<UniqueKeys>(chunk)
                .map_err(|e| {
                    let at = e.location().map_or(line, |loc| line + loc.line() - 1);
                    let why = strip_location(&e);
                    match duplicate_key(&why) {
                        Some(duplicate) => {
                            // serde_yaml points at the mapping; the repeated key is more use.
                            let at = yaml11::repeated_key_line(chunk).map_or(at, |l| line + l - 1);
                            Error::input(format!("{}: {duplicate}", place(at)))
                        }
                        None => {
                            Error::input(format!("{}: invalid YAML: {}", place(at), unquoted(&why)))
                        }
                    }
                })?
                .0
        };
        if value.is_null() {
            continue;
        }
        learn_secrets(&value);
        if yaml11 == Yaml11::Reject && !is_json {
            reject_yaml11_ambiguity(chunk, &value, line, &place)?;
        }
        let first = first_content_line(chunk).map_or(line, |l| line + l);
        push_objects(&mut docs, value, source, index, first, &place(first))?;
    }
    Ok(docs)
}

/// Reads and parses one source (`-` for stdin).
pub fn read(path: &str) -> Result<Vec<Document>> {
    read_with(path, Yaml11::Allow)
}

/// [`read`], with a choice about values that YAML 1.1 reads otherwise.
pub fn read_with(path: &str, yaml11: Yaml11) -> Result<Vec<Document>> {
    let text = read_source(path)?;
    parse_with(&source_name(path), &text, yaml11)
}

fn reject_yaml11_ambiguity(
    chunk: &str,
    value: &Value,
    line: usize,
    place: &dyn Fn(usize) -> String,
) -> Result<()> {
    let found = yaml11::first_ambiguous(chunk).map_err(|why| {
        Error::input(format!("{}: invalid YAML: {}", place(line), unquoted(&why)))
    })?;
    let Some(found) = found else {
        return Ok(());
    };
    // The value itself is never quoted (it may be a secret, or a secret in the wrong
    // kind of object); for a Secret not even what it reads as: "the number 25068" gives
    // an unquoted `0060754` away.
    let reads = if holds_secret(value) {
        found.kubernetes_reads_kind
    } else {
        found.kubernetes_reads
    };
    let what = match &found.key {
        _ if found.is_key => format!("{}: the unquoted key", found.text),
        Some(key) => format!("{key}: the unquoted value"),
        None => "an unquoted list item".to_owned(),
    };
    Err(Error::input(format!(
        "{}: {what} is {reads} to Kubernetes (YAML 1.1) but {} here (YAML 1.2); \
         quote it to keep a string, or write the value Kubernetes should get",
        place(line + found.line - 1),
        found.yaml12_reads,
    )))
}

/// Tells the redaction choke point the values of every Secret read, before anything
/// can print them.
fn learn_secrets(value: &Value) {
    match value["items"].as_array() {
        Some(items) => crate::redact::learn_objects(items),
        None => crate::redact::learn_objects([value]),
    }
}

/// A parser's message without the input it quotes (`invalid type: string "VALUE",
/// expected ...`): a parse error may be about a secret value nobody has learned yet.
fn unquoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '"' | '`') {
            let mut escaped = false;
            for inner in chars.by_ref() {
                match inner {
                    '\\' if !escaped => escaped = true,
                    q if q == c && !escaped => break,
                    _ => escaped = false,
                }
            }
            out.push_str("(value not shown)");
        } else {
            out.push(c);
        }
    }
    out
}

fn holds_secret(value: &Value) -> bool {
    value["kind"] == "Secret"
        || value["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(holds_secret))
}

fn push_objects(
    docs: &mut Vec<Document>,
    value: Value,
    source: &str,
    index: usize,
    line: usize,
    place: &str,
) -> Result<()> {
    if !value.is_object() {
        return Err(Error::input(format!(
            "{place}: not a Kubernetes object (expected a mapping)"
        )));
    }
    let is_list = value["kind"]
        .as_str()
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        let Value::Object(mut map) = value else {
            unreachable!()
        };
        let Some(Value::Array(items)) = map.remove("items") else {
            unreachable!()
        };
        for item in items {
            push_objects(docs, item, source, index, line, place)?;
        }
        return Ok(());
    }
    ObjectId::check(&value).map_err(|why| Error::input(format!("{place}: {why}")))?;
    docs.push(Document {
        value,
        source: source.into(),
        index,
        line,
    });
    Ok(())
}

/// Splits a stream on `---` and `...` lines; returns (1-based start line, text) pairs.
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut chunks = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_separator =
            bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t") || bare == "...";
        if is_separator {
            chunks.push((start_line, &text[start_byte..offset]));
            // A `--- value` line starts a document whose content is on the marker line.
            if bare.len() > 3 && bare.starts_with("---") {
                start_byte = offset + 3;
                start_line = n + 1;
            } else {
                start_byte = offset + line.len();
                start_line = n + 2;
            }
        }
        offset += line.len();
    }
    chunks.push((start_line, &text[start_byte..]));
    chunks.retain(|(_, chunk)| first_content_line(chunk).is_some());
    chunks
}

/// 0-based line of the first line that is neither blank nor a comment.
fn first_content_line(chunk: &str) -> Option<usize> {
    chunk.lines().position(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    })
}

/// serde_json appends "at line L column C"; the line is reported on its own.
fn strip_json_location(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// serde_yaml appends "at line L column C"; we report our own stream-wide line.
fn strip_location(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

const DUPLICATE_KEY: &str = "duplicate key ";

/// The `duplicate key "K"` part of a parser error raised by [`UniqueKeys`].
fn duplicate_key(message: &str) -> Option<&str> {
    let start = message.find(DUPLICATE_KEY)?;
    let rest = &message[start..];
    // serde_json appends " at line L column C"; the key itself is a quoted string.
    Some(rest.find(" at line ").map_or(rest, |end| &rest[..end]))
}

/// A JSON value read like `serde_json::Value`, except that a mapping that repeats a key
/// is an error: `Value` keeps the last one, and kubectl refuses the document (two
/// documents that lost their `---` merge into one that way).
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> std::result::Result<Value, E> {
        Ok(n.into())
    }

    fn visit_u64<E>(self, n: u64) -> std::result::Result<Value, E> {
        Ok(n.into())
    }

    fn visit_f64<E>(self, n: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> std::result::Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        UniqueKeys::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "{DUPLICATE_KEY}{key:?}"
                )));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_and_tracks_lines() {
        let text = "# c\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\n\
                    {\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"b\"}}\n";
        let docs = parse("f.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            (docs[0].index, docs[0].line, docs[0].kind()),
            (1, 3, "ConfigMap")
        );
        assert_eq!(
            (docs[1].index, docs[1].line, docs[1].kind()),
            (2, 9, "Secret")
        );
    }

    #[test]
    fn flattens_lists() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n\
                    - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n";
        let names: Vec<String> = parse("-", text)
            .unwrap()
            .iter()
            .map(|d| d.id().name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn errors_name_document_and_line() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [\n";
        let err = parse("in.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("in.yaml: document 2 (line "), "{err}");
        let err = parse("in.yaml", "---\nkind: ConfigMap\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "in.yaml: document 1 (line 2): missing apiVersion"
        );
        let err = parse("in.yaml", "- a\n").unwrap_err();
        assert!(err.to_string().contains("not a Kubernetes object"));
    }

    #[test]
    fn duplicate_keys_are_refused_in_yaml_and_json() {
        // Two ConfigMaps that lost the `---` between them.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n\
                    apiVersion: v1\nkind: ConfigMap\n";
        let err = parse("in.yaml", text).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "in.yaml: document 2 (line 9): duplicate key \"apiVersion\""
        );
        let nested =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  A: '1'\n  A: '2'\n";
        let err = parse("in.yaml", nested).unwrap_err().to_string();
        assert!(err.starts_with("in.yaml: document 1 (line 6"), "{err}");
        assert!(err.ends_with(": duplicate key \"A\""), "{err}");
        let json = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n \"kind\": \"Secret\", \"metadata\": {\"name\": \"a\"}}\n";
        let err = parse("in.json", json).unwrap_err().to_string();
        assert_eq!(err, "in.json: document 1 (line 2): duplicate key \"kind\"");
    }

    #[test]
    fn values_kept_exactly_as_before_the_duplicate_check() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n\
                    data: {n: 1, f: 1.5, b: true, z: null, s: x, l: [1, 'a'], 1: one}\n";
        let value = &parse("in.yaml", text).unwrap()[0].value;
        let expected: Value = serde_yaml::from_str(text).unwrap();
        assert_eq!(value, &expected);
        assert_eq!(value["data"]["1"], "one");
    }

    #[test]
    fn yaml11_ambiguity_is_refused_only_when_asked() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n  DEBUG: on\n";
        assert_eq!(
            parse("in.yaml", text).unwrap()[1].value["data"]["DEBUG"],
            "on"
        );
        let err = parse_with("in.yaml", text, Yaml11::Reject).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = err.to_string();
        assert!(
            err.starts_with(
                "in.yaml: document 2 (line 9): DEBUG: the unquoted value is the boolean true"
            ),
            "{err}"
        );
        assert!(err.contains("quote it"), "{err}");
        let quoted = text.replace("DEBUG: on", "DEBUG: 'on'");
        assert_eq!(
            parse_with("in.yaml", &quoted, Yaml11::Reject)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn yaml11_messages_do_not_show_secret_values() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  PIN: 0755\n";
        let err = parse_with("in.yaml", text, Yaml11::Reject)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("in.yaml: document 1 (line 5): PIN: the unquoted value is a number"),
            "{err}"
        );
        assert!(!err.contains("0755") && !err.contains("493"), "{err}");
    }

    #[test]
    fn parse_errors_never_quote_input_scalars() {
        // Case 5 of the leak hunt: a tag the value does not fit.
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  K: !!int Xq9vS3cr3t\n";
        let err = parse("in.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("in.yaml: document 1 (line "), "{err}");
        assert!(!err.contains("Xq9vS3cr3t"), "{err}");
        let json = "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"data\": {\"K\": \"Xq9vS3cr3t\" \"x\"}}";
        let err = parse("in.json", json).unwrap_err().to_string();
        assert!(!err.contains("Xq9vS3cr3t"), "{err}");
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata:\n  K: !!float Xq9vS3cr3t\n";
        let err = parse("in.yaml", cm).unwrap_err().to_string();
        assert!(!err.contains("Xq9vS3cr3t"), "{err}");
    }

    #[test]
    fn our_emitter_never_trips_the_yaml11_check() {
        let tricky = [
            "on",
            "off",
            "yes",
            "no",
            "y",
            "n",
            "Y",
            "NO",
            "~",
            "null",
            "0755",
            "1_000",
            "12:30:00",
            "2001-12-14",
            "<<",
            "1e3",
            ".5",
            "-1",
            "+1",
            "0x1F",
            "true",
            "",
            " x",
            "a: b",
            "#c",
        ];
        let data: serde_json::Map<String, Value> = tricky
            .iter()
            .map(|s| (s.to_string(), Value::String(s.to_string())))
            .collect();
        let object = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": data,
            "list": tricky,
        });
        let text = crate::yaml::to_stream([&object]);
        let docs = parse_with("out", &text, Yaml11::Reject).unwrap();
        assert_eq!(docs[0].value, object);
    }

    #[test]
    fn reports_invalid_utf8_line() {
        let err = text_of("env", b"A=1\nB=\xff\n".to_vec()).unwrap_err();
        assert_eq!(err.to_string(), "env:2: invalid UTF-8");
        assert_eq!(text_of("env", b"\xef\xbb\xbfA=1".to_vec()).unwrap(), "A=1");
    }
}

//! Reading the manifest stream that flows between the tools.
//!
//! A stream is what `kubectl apply -f -` accepts: YAML documents separated by `---`,
//! JSON documents, and `kind: List` wrappers. Every document is read into a
//! `serde_json::Value` (Kubernetes objects are JSON) and remembers where it came from,
//! so errors can say `SOURCE: document N (line L): what`.

use crate::error::{Error, Result};
use crate::object::ObjectId;
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
        format!("{}: document {} (line {})", self.source, self.index, self.line)
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
    if path == "-" { "<stdin>".into() } else { path.into() }
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

/// Parses a manifest stream into objects, checking that each has apiVersion and kind.
/// Empty documents (only comments or blank lines) are skipped, as kubectl does;
/// `kind: List` is flattened into its items.
pub fn parse(source: &str, text: &str) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (index, (line, chunk)) in split_documents(text).into_iter().enumerate() {
        let index = index + 1;
        let place = |l: usize| format!("{source}: document {index} (line {l})");
        let value: Value = if chunk.trim_start().starts_with(['{', '[']) {
            serde_json::from_str(chunk).map_err(|e| {
                Error::input(format!("{}: invalid JSON: {e}", place(line + e.line() - 1)))
            })?
        } else {
            serde_yaml::from_str(chunk).map_err(|e| {
                let at = e.location().map_or(line, |loc| line + loc.line() - 1);
                Error::input(format!("{}: invalid YAML: {}", place(at), strip_location(&e)))
            })?
        };
        if value.is_null() {
            continue;
        }
        let first = first_content_line(chunk).map_or(line, |l| line + l);
        push_objects(&mut docs, value, source, index, first, &place(first))?;
    }
    Ok(docs)
}

/// Reads and parses one source (`-` for stdin).
pub fn read(path: &str) -> Result<Vec<Document>> {
    let text = read_source(path)?;
    parse(&source_name(path), &text)
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
        return Err(Error::input(format!("{place}: not a Kubernetes object (expected a mapping)")));
    }
    let is_list = value["kind"].as_str().is_some_and(|k| k == "List" || k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        let Value::Object(mut map) = value else { unreachable!() };
        let Some(Value::Array(items)) = map.remove("items") else { unreachable!() };
        for item in items {
            push_objects(docs, item, source, index, line, place)?;
        }
        return Ok(());
    }
    ObjectId::check(&value).map_err(|why| Error::input(format!("{place}: {why}")))?;
    docs.push(Document { value, source: source.into(), index, line });
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
        let is_separator = bare == "---"
            || bare.starts_with("--- ")
            || bare.starts_with("---\t")
            || bare == "...";
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

/// serde_yaml appends "at line L column C"; we report our own stream-wide line.
fn strip_location(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
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
        assert_eq!((docs[0].index, docs[0].line, docs[0].kind()), (1, 3, "ConfigMap"));
        assert_eq!((docs[1].index, docs[1].line, docs[1].kind()), (2, 9, "Secret"));
    }

    #[test]
    fn flattens_lists() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n\
                    - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n";
        let names: Vec<String> = parse("-", text).unwrap().iter().map(|d| d.id().name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn errors_name_document_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [\n";
        let err = parse("in.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("in.yaml: document 2 (line "), "{err}");
        let err = parse("in.yaml", "---\nkind: ConfigMap\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(err.to_string(), "in.yaml: document 1 (line 2): missing apiVersion");
        let err = parse("in.yaml", "- a\n").unwrap_err();
        assert!(err.to_string().contains("not a Kubernetes object"));
    }

    #[test]
    fn reports_invalid_utf8_line() {
        let err = text_of("env", b"A=1\nB=\xff\n".to_vec()).unwrap_err();
        assert_eq!(err.to_string(), "env:2: invalid UTF-8");
        assert_eq!(text_of("env", b"\xef\xbb\xbfA=1".to_vec()).unwrap(), "A=1");
    }
}

//! Reading the manifest stream that flows between the tools.
//!
//! A stream is what `kubectl apply -f -` accepts: YAML documents separated by `---`,
//! JSON documents, and `kind: List` wrappers. Every document is read into a
//! `serde_json::Value` (Kubernetes objects are JSON) and remembers where it came from,
//! so errors can say `SOURCE: document N (line L): what`.
//!
//! A failed stage must not look like an empty or shorter manifest set to the next one
//! (`kapply --prune` would delete what the missing objects stood for). Every tool writes
//! its whole output at the end, in one go, so a stage that failed leaves an empty pipe,
//! and one killed mid-write (or a `head -c`) a stream cut short. So: an empty pipe on
//! stdin is refused ([`read_source`]), and every YAML stream a kpipe tool writes begins
//! with [`BEGIN`] and ends with [`END`] ([`crate::yaml::to_stream`]), two comments that
//! kubectl and every YAML reader skip; a stream that begins with `BEGIN` and lacks `END`
//! is refused as cut off ([`parse`]). Input without `BEGIN` (written by hand, by helm or
//! kustomize) is read as before.
//!
//! What the API server refuses of a value YAML reads fine is [`server_rules`]'s; the
//! Secrets read are taught to the redaction choke point ([`crate::redact`]) as they are
//! parsed, before anything can print them.

mod server_rules;

use crate::error::{Error, Result};
use crate::object::ObjectId;
use crate::yaml11;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// The first line of every YAML stream a kpipe tool writes.
pub const BEGIN: &str = "# kpipe stream: begin";
/// The last line of a stream whose writer finished: without it, the stream was cut off.
pub const END: &str = "# kpipe stream: end";

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
///
/// An empty pipe on stdin is refused: it is what a stage before that failed leaves (kpipe
/// tools write nothing when they fail). An empty file, `/dev/null` or a terminal is
/// input like any other: that is how to say "nothing" on purpose.
pub fn read_source(path: &str) -> Result<String> {
    let name = source_name(path);
    // The user gave the path: messages print it whole, whatever value it contains.
    crate::redact::learn_printed_whole(&name);
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(Path::new(path)).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| Error::input(format!("{name}: cannot read: {e}")))?;
    if path == "-" && bytes.is_empty() && stdin_is_pipe() {
        return Err(Error::input(format!(
            "{name}: no input: the stage before me failed or wrote nothing"
        )));
    }
    text_of(&name, bytes)
}

/// Whether stdin is a pipe (a FIFO: what a shell's `|` makes).
fn stdin_is_pipe() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|m| m.file_type().is_fifo())
}

/// Refuses a kpipe stream cut off: one that begins with [`BEGIN`] but does not reach
/// [`END`] (checked for each `BEGIN`, so concatenated streams are checked one by one).
fn check_whole(source: &str, text: &str) -> Result<()> {
    let mut open = None;
    for (n, line) in text.lines().enumerate() {
        match line.trim_end() {
            BEGIN if open.is_some() => break,
            BEGIN => open = Some(n + 1),
            END => open = None,
            _ => {}
        }
    }
    let Some(begin) = open else {
        return Ok(());
    };
    Err(Error::input(if source == "<stdin>" {
        format!("{source}: input cut off: the stage before me failed or was killed")
    } else {
        format!(
            "{source}: input cut off: the kpipe stream that begins on line {begin} lacks its end \
             line `{END}` (the tool that wrote it failed or was killed)"
        )
    }))
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

/// Parses a manifest stream into objects as kubectl reads it ([`crate::yaml11`]),
/// checking that each has apiVersion and kind and that no value
/// that Kubernetes reads as a bool or number sits where the API server takes only
/// strings. A key repeated in a mapping keeps its last value, as kubectl reads it, with
/// a warning on stderr. Empty documents are skipped, as kubectl does; `kind: List` (and any
/// `...List` with items) is flattened into its items.
///
/// As kubectl, a stream whose first character is `{` is a stream of JSON objects;
/// otherwise it is YAML documents separated by lines starting `---`.
///
/// A kpipe stream (one that begins with [`BEGIN`]) without its [`END`] is refused as cut
/// off, before anything of it is read.
pub fn parse(source: &str, text: &str) -> Result<Vec<Document>> {
    check_whole(source, text)?;
    let mut docs = Vec::new();
    let chunks = if text.trim_start().starts_with('{') {
        split_json(source, text)?
    } else {
        split_documents(source, text)?
    };
    for (index, (line, chunk)) in chunks.into_iter().enumerate() {
        let index = index + 1;
        let place = |l: usize| format!("{source}: document {index} (line {l})");
        let chunk = chunk.strip_prefix('\u{feff}').unwrap_or(chunk);
        if let Some(l) = control_character_line(chunk) {
            return Err(Error::input(format!(
                "{}: a control character (such as NUL) is not allowed in YAML",
                place(line + l - 1)
            )));
        }
        let loaded = yaml11::load(chunk)
            .map_err(|e| Error::input(format!("{}: {}", place(line + e.line - 1), e.message)))?;
        for repeated in &loaded.repeated {
            crate::error::warn(&format!(
                "{source}:{}: key {:?} repeated; the last value is used, as kubectl does",
                line + repeated.line - 1,
                repeated.key
            ));
        }
        let Some(value) = loaded.value else {
            continue;
        };
        // Known to the redaction choke point before anything can print them.
        crate::redact::learn_objects_in(&value);
        let first = first_content_line(chunk).map_or(line, |l| line + l);
        if let Some((path, why)) = server_rules::rejects(&value) {
            let at = yaml11::line_of(chunk, &path).map_or(first, |l| line + l - 1);
            return Err(Error::input(format!("{}: {why}", place(at))));
        }
        push_objects(&mut docs, value, source, index, first, &place(first))?;
    }
    Ok(docs)
}

/// Reads and parses one source (`-` for stdin).
pub fn read(path: &str) -> Result<Vec<Document>> {
    let text = read_source(path)?;
    parse(&source_name(path), &text)
}

/// The 1-based line of the first character go-yaml refuses ("control characters are not
/// allowed"): C0 controls but tab and line breaks, DEL, C1 but NEL, surrogates' stand-ins.
fn control_character_line(text: &str) -> Option<usize> {
    let bad = |c: char| {
        let c = c as u32;
        (c < 0x20 && !matches!(c, 0x09 | 0x0a | 0x0d))
            || (0x7f..=0x9f).contains(&c) && c != 0x85
            || c == 0xfffe
            || c == 0xffff
    };
    let at = text.find(bad)?;
    Some(text[..at].bytes().filter(|&b| b == b'\n').count() + 1)
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

/// Splits a YAML stream as kubectl's YAMLReader does: a line that starts with `---` and
/// has nothing after it but blanks or a comment ends a document; anything else after
/// `---` is refused. Returns (1-based start line, text) pairs of non-empty documents.
fn split_documents<'t>(source: &str, text: &'t str) -> Result<Vec<(usize, &'t str)>> {
    let mut chunks = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(Error::at(
                    source,
                    n + 1,
                    "text after the document separator `---`: put it on the next line",
                ));
            }
            chunks.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = n + 2;
        }
        offset += line.len();
    }
    chunks.push((start_line, &text[start_byte..]));
    chunks.retain(|(_, chunk)| first_content_line(chunk).is_some());
    Ok(chunks)
}

/// Splits a stream of JSON values (`{...}{...}` or one per line, as kubectl's JSON
/// decoder reads them) by scanning brackets outside strings, in one pass.
fn split_json<'t>(source: &str, text: &'t str) -> Result<Vec<(usize, &'t str)>> {
    let mut chunks = Vec::new();
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut start, mut start_line, mut line) = (None, 1, 1);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == 0 {
                    start = Some(i);
                    start_line = line;
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    Error::at(
                        source,
                        line,
                        "invalid JSON: a closing bracket without an opening one",
                    )
                })?;
                if depth == 0
                    && let Some(s) = start.take()
                {
                    chunks.push((start_line, &text[s..=i]));
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth == 0 => {
                return Err(Error::at(
                    source,
                    line,
                    "invalid JSON: a stream that starts with `{` holds JSON objects only \
                     (use YAML documents with `---` to mix)",
                ));
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err(Error::at(
            source,
            line,
            "invalid JSON: unexpected end of input",
        ));
    }
    Ok(chunks)
}

/// 0-based line of the first line that is neither blank nor a comment.
fn first_content_line(chunk: &str) -> Option<usize> {
    chunk.lines().position(|l| {
        let t = l.trim().trim_start_matches('\u{feff}');
        !t.is_empty() && !t.starts_with('#')
    })
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
    fn repeated_keys_keep_the_last_value_in_yaml_and_json() {
        // Two ConfigMaps that lost the `---` between them: kubectl applies one, `b`.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n\
                    apiVersion: v1\nkind: Secret\n";
        let docs = parse("in.yaml", text).unwrap();
        assert_eq!(
            (docs[1].kind(), docs[1].id().name.as_str()),
            ("Secret", "b")
        );
        let json = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n \"kind\": \"Secret\", \"metadata\": {\"name\": \"a\"}}\n";
        assert_eq!(parse("in.json", json).unwrap()[0].kind(), "Secret");
    }

    #[test]
    fn a_kpipe_stream_without_its_end_line_is_cut_off() {
        let cm =
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let whole = crate::yaml::to_stream([&cm, &cm]);
        assert_eq!(parse("<stdin>", &whole).unwrap().len(), 2);
        // Concatenated streams, and hand-written documents after one, are whole.
        assert_eq!(
            parse("<stdin>", &(whole.clone() + &whole)).unwrap().len(),
            4
        );
        let hand = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n";
        assert_eq!(parse("<stdin>", &(whole.clone() + hand)).unwrap().len(), 3);
        assert_eq!(parse("<stdin>", hand).unwrap().len(), 1);
        // Cut anywhere before the end line's last character: refused.
        let end = whole.len() - "t\n".len();
        for cut in [end, whole.find("kind").unwrap(), BEGIN.len() + 1] {
            let err = parse("<stdin>", &whole[..cut]).unwrap_err();
            assert_eq!(
                err.to_string(),
                "<stdin>: input cut off: the stage before me failed or was killed"
            );
            assert_eq!(err.exit_code(), 2);
        }
        let unended = &whole[..whole.rfind(END).unwrap()];
        let err = parse("<stdin>", &(unended.to_owned() + &whole)).unwrap_err();
        assert!(err.to_string().contains("cut off"), "{err}");
        let err = parse("deploy.yaml", &whole[..end]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "deploy.yaml: input cut off: the kpipe stream that begins on line 1 lacks"
            ),
            "{err}"
        );
    }

    #[test]
    fn reports_invalid_utf8_line() {
        let err = text_of("env", b"A=1\nB=\xff\n".to_vec()).unwrap_err();
        assert_eq!(err.to_string(), "env:2: invalid UTF-8");
        assert_eq!(text_of("env", b"\xef\xbb\xbfA=1".to_vec()).unwrap(), "A=1");
    }
}

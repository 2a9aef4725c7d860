//! Keeping secret values out of every message, log and terminal: the one choke point.
//!
//! Secrets are learned once, where they enter a tool: the stream reader learns the
//! values of every Secret it reads ([`learn_objects_in`]), envsplit the values it
//! classifies as secret, kapply what the server returns (Secret data and
//! `last-applied-configuration`), the kube connection the credentials (token, client
//! key, exec plugin output). Every byte a tool writes to stderr goes through
//! [`eprint`], and stdout on a terminal through [`crate::write_stdout`]: both mask every
//! known value in every form a message can carry it in (plain, base64, JSON-escaped as
//! Rust and Go write it, Go-quoted, as a number the server reformats, each line of a
//! multi-line value), and the parts of structured values (a URL's password, `key=value`
//! pairs, JSON strings: [`parts`]). One Aho-Corasick automaton over the textual forms
//! does that in one pass, however many values there are; base64 and hex are found by
//! decoding every base64- or hex-looking run of a message and searching the decoded
//! bytes with the same automaton, so a value costs no pattern of its base64 or hex and is
//! found wherever its bytes sit in longer data; percent-encoding and the escapes of
//! JSON, Go, Python, Rust and shells are found likewise, by searching the message with
//! its escapes resolved ([`views`]). What reaches a terminal then has its control
//! characters escaped ([`printable`]): the cluster's text (logs, events) is anyone's.
//!
//! What is not masked: a value also used in an object's name, namespace or labels
//! (public to anyone who can list objects), and values too short or too common to mask
//! without mangling every message (`1`, `true`). Messages about Secret fields name the
//! key, never the value, so those are not printed either.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// What replaces a secret value wherever one would be shown.
pub const MASK: &str = "<redacted>";

/// The annotation `kubectl apply` (client-side) leaves: a JSON copy of the object,
/// values included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Values shorter than this are not masked: they would mangle every message and a
/// secret that short protects nothing.
const MIN_LEN: usize = 3;

/// Values too common to mask: `true` would turn every "true" of every message into
/// [`MASK`]. Messages never print a Secret's value on purpose, so these stay unsaid too.
const COMMON: &[&str] = &["true", "false", "null", "yes", "off", "True", "False"];

/// Parts of a structured value (see [`parts`]) shorter than this are not learned: a
/// URL's user `app`, a `port=5432` or `sslmode=off` would mask every message that names
/// them, and protect nothing. A whole value is masked from [`MIN_LEN`] on.
const PART_MIN_LEN: usize = 6;

/// Parts that are the names of services, their default users and options rather than
/// secrets: masking a URL's user `postgres` would turn `django.db.backends.postgresql`
/// into `django.db.backends.<redacted>ql` in every log line.
const COMMON_PARTS: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongodb",
    "redis",
    "rabbitmq",
    "admin",
    "default",
    "localhost",
    "require",
    "disable",
    "prefer",
    "verify-ca",
    "verify-full",
];

/// Whether an object carries secret material (a core/v1 Secret).
pub fn is_secret(obj: &Value) -> bool {
    obj["kind"] == "Secret" && obj["apiVersion"] == "v1"
}

/// Replaces every value under a Secret's `data` and `stringData`, and in its
/// `last-applied-configuration`, with [`MASK`]; other objects are left alone.
pub fn mask_secret(obj: &mut Value) {
    if !is_secret(obj) {
        return;
    }
    mask_values(obj);
    let annotation = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(|a| a.get_mut(LAST_APPLIED));
    if let Some(annotation) = annotation {
        let masked = annotation
            .as_str()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .map(|mut copy| {
                mask_values(&mut copy);
                serde_json::to_string(&copy).expect("JSON values serialize")
            });
        // Unreadable JSON is masked whole: it may still hold the values.
        *annotation = Value::String(masked.unwrap_or_else(|| MASK.into()));
    }
}

fn mask_values(obj: &mut Value) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = obj.get_mut(field) {
            for v in map.values_mut() {
                *v = Value::String(MASK.into());
            }
        }
    }
}

/// The values this process knows to be secret, and the automaton that finds them.
#[derive(Default)]
struct Known {
    /// Every value learned, each once: a tool learns the same Secret where it reads it
    /// and again from every server answer, and its forms are made only the first time.
    values: HashSet<String>,
    /// Every textual form of every value, each once.
    needles: HashSet<String>,
    /// Names, namespaces and labels: what is public anyway.
    public: HashSet<String>,
    /// Built on first use after the last change.
    matcher: Option<Arc<Matcher>>,
    /// Text the tools print whole on purpose (see [`learn_printed_whole`]).
    whole: HashSet<String>,
    /// Finds every occurrence of `whole` in a message; built on first use after a change.
    whole_matcher: Option<Arc<Option<AhoCorasick>>>,
}

struct Matcher {
    automaton: Option<AhoCorasick>,
}

static KNOWN: LazyLock<Mutex<Known>> = LazyLock::new(Mutex::default);

/// Set by `--show`-like flags: the user asked for Secret material on the terminal.
static SHOW_ON_TERMINAL: AtomicBool = AtomicBool::new(false);

fn known() -> std::sync::MutexGuard<'static, Known> {
    // A panic while holding the lock leaves valid data: keep using it.
    KNOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Learns the secret values of every Secret in `objects` (data decoded and as base64,
/// stringData, a value of any type, the copies in `last-applied-configuration`), and
/// what every object makes public (name, namespace, labels).
pub fn learn_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) {
    let mut values = Vec::new();
    let mut public = Vec::new();
    for obj in objects {
        public.extend(public_strings(obj).map(str::to_owned));
        if !is_secret(obj) {
            continue;
        }
        secret_values(obj, &mut values);
        if let Some(copy) = obj["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        {
            secret_values(&copy, &mut values);
        }
    }
    let mut known = known();
    let before = known.needles.len();
    for value in values {
        known.add(value);
    }
    // Server answers repeat what the input taught, and add public strings (the
    // namespace) that hide nothing: rebuild only for something that changes the patterns.
    let mut changed = known.needles.len() != before;
    for text in public {
        if !known.public.contains(&text) {
            changed |= !public_needles(&known.needles, [text.as_str()]).is_empty();
            known.public.insert(text);
        }
    }
    if changed {
        known.matcher = None;
    }
}

/// Learns the objects of one value as read or received (see [`learn_objects`]): the
/// items of a list (`kind: List`, a LIST answer), else the object itself.
pub fn learn_objects_in(value: &Value) {
    match value["items"].as_array() {
        Some(items) => learn_objects(items),
        None => learn_objects([value]),
    }
}

/// Learns one secret value (a credential, a value envsplit classifies as secret).
pub fn learn(value: &str) {
    let mut known = known();
    let before = known.needles.len();
    known.add(value.to_owned());
    if known.needles.len() != before {
        known.matcher = None;
    }
}

/// Marks `text` as printed whole: public text the tool itself prints, such as a path the
/// user gave or a key name. A known value inside one of its occurrences in a message is
/// left there (`plane-vars.env:23` stays whole when a password is `plane`: masking it
/// would mangle the path and confirm the value), and is masked everywhere else in the
/// same message. Unlike names and labels (which stop a value being masked at all), this
/// weakens no other masking.
pub fn learn_printed_whole(text: &str) {
    if !maskable(text) {
        return;
    }
    let mut known = known();
    if known.whole.insert(text.to_owned()) {
        known.whole_matcher = None;
    }
}

/// The values of a Secret's `data` (decoded too) and `stringData`, as text; values of
/// other types (a number, a nested map by mistake) by their scalars.
fn secret_values(obj: &Value, out: &mut Vec<String>) {
    for field in ["data", "stringData"] {
        let Some(Value::Object(map)) = obj.get(field) else {
            continue;
        };
        for value in map.values() {
            // The base64 of data is found by decoding, as the base64 of any value:
            // learning it apart would add patterns and, on every read-back of a
            // Secret, rebuild the matcher for nothing.
            if field == "data"
                && let Some(text) = value.as_str()
                && let Ok(plain) = STANDARD.decode(text)
            {
                match String::from_utf8(plain) {
                    Ok(plain) => {
                        out.push(plain);
                        continue;
                    }
                    // Binary data: its text parts, and the base64 as it is.
                    Err(e) => out.push(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                }
            }
            scalars(value, out);
        }
    }
}

fn scalars(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|v| scalars(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                scalars(v, out);
            }
        }
    }
}

/// The parts of a structured value that are secrets of their own, as an app may log
/// them apart from the value (a parsed `DATABASE_URL`): the user and password of every
/// URL in it (as written and percent-decoded) and the values of its query; the value of
/// every `key=value` pair (`password=x user=y`, `A=1;B=2`, `a=1&b=2`, an env file's
/// lines) and `key: value` line; every string and number of a JSON value. Parts shorter
/// than [`PART_MIN_LEN`], or in [`COMMON_PARTS`], are left out.
fn parts(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    url_parts(value, &mut out);
    pair_parts(value, &mut out);
    let trimmed = value.trim();
    if trimmed.starts_with(['{', '['])
        && let Ok(json) = serde_json::from_str::<Value>(trimmed)
    {
        json_leaves(&json, &mut out);
    }
    out.retain(|p| {
        p.chars().count() >= PART_MIN_LEN && !COMMON_PARTS.contains(&p.as_str()) && p != value
    });
    out
}

/// The user, password and query values of every `scheme://` URL in `value`.
fn url_parts(value: &str, out: &mut Vec<String>) {
    for (at, _) in value.match_indices("://") {
        let rest = &value[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(rest.len());
        let url = &rest[..end];
        // The password may hold an unencoded `/`, `?` or `#`: the host is after the last `@`.
        let authority_end = match url.rfind('@') {
            Some(at) => at + url[at..].find(['/', '?', '#']).unwrap_or(url.len() - at),
            None => url.find(['/', '?', '#']).unwrap_or(url.len()),
        };
        if let Some((userinfo, _host)) = url[..authority_end].rsplit_once('@') {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            push_decoded(user, out);
            push_decoded(password, out);
        }
        let tail = &url[authority_end..];
        if let Some((_, query)) = tail.split_once('?') {
            let query = query.split('#').next().unwrap_or_default();
            for pair in query.split(['&', ';']) {
                if let Some((_, v)) = pair.split_once('=') {
                    push_decoded(v, out);
                }
            }
        }
    }
}

/// The values of `key=value` pairs (whole lines, as in an env file, and pairs within a
/// line: `host=db password='a b'`, `A=1;B=2`, `a=1&b=2`) and of `key: value` lines.
fn pair_parts(value: &str, out: &mut Vec<String>) {
    let unquote = |v: &str| v.trim().trim_matches(['"', '\'']).to_owned();
    for line in value.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        for sep in ["=", ": "] {
            if let Some((key, v)) = line.split_once(sep)
                && is_key(key.trim())
            {
                push_decoded(&unquote(v), out);
            }
        }
    }
    let separator = |c: char| c.is_whitespace() || matches!(c, ';' | '&' | ',');
    for (at, _) in value.match_indices('=') {
        let key_start = value[..at].rfind(separator).map_or(0, |s| s + 1);
        if !is_key(&value[key_start..at]) {
            continue;
        }
        let after = &value[at + 1..];
        let v = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => after[1..].find(quote).map(|end| &after[1..=end]),
            _ => Some(&after[..after.find(separator).unwrap_or(after.len())]),
        };
        if let Some(v) = v {
            push_decoded(v, out);
        }
    }
}

/// Whether `s` reads as the key of a pair: a word of letters, digits, `_`, `-`, `.`.
fn is_key(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn json_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| json_leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| json_leaves(v, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// `s`, and its percent-decoding when that differs and is text.
fn push_decoded(s: &str, out: &mut Vec<String>) {
    if let Some(decoded) = percent_decoded(s).filter(|d| d != s) {
        out.push(decoded);
    }
    out.push(s.to_owned());
}

fn percent_decoded(s: &str) -> Option<String> {
    let mut view = View::of(s);
    view = view.percent_decoded(false)?;
    String::from_utf8(view.bytes).ok()
}

/// Every textual form `value` can take in a message (its base64 is found by decoding,
/// see [`base64_spans`]).
fn add_forms(needles: &mut HashSet<String>, value: &str) {
    if !maskable(value) {
        return;
    }
    let mut push = |s: String| {
        if maskable(&s) {
            needles.insert(s);
        }
    };
    // Most values escape to themselves: make their escaped forms only when they differ.
    if value.chars().any(escapes) {
        push(json_escaped(value));
        push(go_json_escaped(value));
        push(go_quoted(value));
    }
    // As the server echoes a number it read: `0x5EC12E7` comes back as `99357415`.
    let number = value.trim();
    if number.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') {
        for form in number_forms(number) {
            push(form);
        }
        if let Ok(n) = number.parse::<i128>() {
            push(format!("0x{n:x}"));
            push(format!("0x{n:X}"));
            push(format!("0{n:o}"));
        }
    }
    // A multi-line value (a PEM key) may be shown a line at a time.
    if value.contains('\n') {
        for line in value.lines().map(str::trim) {
            push(line.to_owned());
            push(json_escaped(line));
            push(go_quoted(line));
        }
    }
    push(value.to_owned());
}

/// Whether `c` is written otherwise by one of the escapes of [`add_forms`]: control
/// characters (DEL and Unicode's too), quotes, backslashes, what Go's JSON escapes.
fn escapes(c: char) -> bool {
    c.is_control() || matches!(c, '"' | '\\' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}')
}

/// The decimal numbers a reader may make of `text`, as a server echoes them back:
/// `0x5EC12E7` is 99357415, `0060754` is 25068 (YAML 1.1 octal) or 60754, `1_000` is
/// 1000.
fn number_forms(text: &str) -> Vec<String> {
    let plain = text.replace('_', "");
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.strip_prefix('+').unwrap_or(&plain)),
    };
    let lower = digits.to_ascii_lowercase();
    let mut readings = Vec::new();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            readings.push(i128::from_str_radix(rest, radix));
        }
    }
    if digits.len() > 1 && digits.starts_with('0') {
        readings.push(i128::from_str_radix(&digits[1..], 8));
    }
    readings.push(digits.parse::<i128>());
    readings
        .into_iter()
        .flatten()
        .map(|n| if negative { -n } else { n }.to_string())
        .collect()
}

fn maskable(s: &str) -> bool {
    s.chars().count() >= MIN_LEN && !COMMON.contains(&s) && s != MASK
}

/// The inside of the JSON string for `s`, as serde_json writes it.
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("strings serialize");
    quoted[1..quoted.len() - 1].to_owned()
}

/// The inside of the JSON string for `s` as Go's encoding/json writes it (kubectl's
/// last-applied-configuration, the server's `Invalid value: {...}`): HTML characters
/// and line separators escaped too.
fn go_json_escaped(s: &str) -> String {
    json_escaped(s)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space; what it rejects (a no-break space, U+200B, a BOM) `strconv.Quote` escapes.
fn go_prints(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup as Group, UnicodeGeneralCategory};
    c == ' '
        || matches!(
            c.general_category_group(),
            Group::Letter | Group::Mark | Group::Number | Group::Punctuation | Group::Symbol
        )
}

/// The inside of Go's `strconv.Quote(s)` (`%q`, `%#v`), as servers quote values.
fn go_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if go_prints(c) => out.push(c),
            c if (c as u32) < 0x1_0000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out
}

impl Known {
    /// Learns `value` in every form, and the parts of it that are secrets of their own.
    fn add(&mut self, value: String) {
        if self.values.contains(&value) {
            return;
        }
        add_forms(&mut self.needles, &value);
        let parts = parts(&value);
        self.values.insert(value);
        // Each part is shorter than its value: this ends.
        for part in parts {
            self.add(part);
        }
    }

    fn matcher(&mut self) -> Arc<Matcher> {
        if let Some(m) = &self.matcher {
            return Arc::clone(m);
        }
        let public_hits = public_needles(&self.needles, self.public.iter().map(String::as_str));
        let needles: Vec<&str> = self
            .needles
            .iter()
            .map(String::as_str)
            .filter(|n| !public_hits.contains(n))
            .collect();
        let automaton = (!needles.is_empty()).then(|| {
            // An NFA builds in time linear in the patterns' length, however long a
            // value is; a DFA could take minutes for a megabyte of values. The
            // noncontiguous one is the fastest to build and has the lowest peak memory
            // (a contiguous NFA is made from it, both alive at once): for 48k values,
            // building is most of the cost, searching messages a small part.
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::NoncontiguousNFA))
                .build(&needles)
                .expect("the patterns are small enough")
        });
        let m = Arc::new(Matcher { automaton });
        self.matcher = Some(Arc::clone(&m));
        m
    }

    fn whole_matcher(&mut self) -> Arc<Option<AhoCorasick>> {
        if let Some(m) = &self.whole_matcher {
            return Arc::clone(m);
        }
        let automaton = (!self.whole.is_empty()).then(|| {
            // Standard semantics: every occurrence, overlapping ones too (a key inside a
            // path), is found.
            AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::NoncontiguousNFA))
                .build(&self.whole)
                .expect("the patterns are small enough")
        });
        let m = Arc::new(automaton);
        self.whole_matcher = Some(Arc::clone(&m));
        m
    }
}

/// The parts of `text` printed whole (see [`learn_printed_whole`]), sorted and merged.
fn printed_whole(text: &str) -> Vec<(usize, usize)> {
    let matcher = known().whole_matcher();
    let Some(ac) = matcher.as_ref() else {
        return Vec::new();
    };
    let mut found: Vec<(usize, usize)> = ac
        .find_overlapping_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect();
    found.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
    for (start, end) in found {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The needles that occur inside a public string: masking `polls` would turn every
/// `polls-app` of every message into `<redacted>-app` and protect nothing. Public
/// strings are names and labels (at most a few hundred bytes each), so looking up each
/// of their substrings costs far less than an automaton over every needle.
fn public_needles<'a, 'p>(
    needles: &'a HashSet<String>,
    public: impl IntoIterator<Item = &'p str>,
) -> HashSet<&'a str> {
    let mut hits = HashSet::new();
    for text in public {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        for (n, &start) in bounds.iter().enumerate() {
            for &end in &bounds[n + 1..] {
                if let Some(hit) = needles.get(&text[start..end]) {
                    hits.insert(hit.as_str());
                }
            }
        }
    }
    hits
}

/// `text` with every known secret value replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let matcher = known().matcher();
    let Some(ac) = &matcher.automaton else {
        return Cow::Borrowed(text);
    };
    let mut spans: Vec<(usize, usize)> = ac.find_iter(text).map(|m| (m.start(), m.end())).collect();
    base64_spans(ac, text.as_bytes(), &mut spans);
    hex_spans(ac, text.as_bytes(), &mut spans);
    // Escaped and percent-encoded forms hold no raw newline: a line at a time keeps
    // the decodings of a long output small.
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        for view in views(line) {
            spans.extend(ac.find_iter(&view.bytes).map(|m| {
                let (start, end) = view.source(m.start(), m.end());
                (offset + start, offset + end)
            }));
        }
        offset += line.len();
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    // A match wholly inside text printed whole stays; one reaching outside it is masked.
    let whole = printed_whole(text);
    spans.retain(|&(start, end)| {
        let at = whole.partition_point(|&(s, _)| s <= start);
        !(at > 0 && end <= whole[at - 1].1)
    });
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    // Overlapping spans (a value and the base64 around it) are masked as one.
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for (start, end) in spans {
        if start >= done {
            out.push_str(&text[done..start]);
            out.push_str(MASK);
        }
        done = done.max(end);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// Adds to `spans` the parts of every base64-looking run of `text` whose decoding holds
/// a known value in any form. A run is decoded from each of its first four characters:
/// base64 glued to other letters (`token` + base64) is then read at its own start too,
/// and a value is found wherever its bytes sit in the data, not only at a multiple of
/// three. The span covers the characters that carry the value's bits.
fn base64_spans(ac: &AhoCorasick, text: &[u8], spans: &mut Vec<(usize, usize)>) {
    // The shortest value masked (MIN_LEN bytes) takes four characters of base64.
    const SHORTEST: usize = 4;
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let start = at;
        while at < text.len() && BASE64_DIGIT[text[at] as usize] != INVALID {
            at += 1;
        }
        if at == start {
            at += 1;
            continue;
        }
        let run = &text[start..at];
        for shift in 0..run.len().saturating_sub(SHORTEST - 1).min(4) {
            decode_base64(&run[shift..], &mut decoded);
            let from = start + shift;
            for m in ac.find_iter(&decoded) {
                let first = from + m.start() * 4 / 3;
                let last = (from + (m.end() * 4).div_ceil(3)).min(at);
                spans.push((first, last));
            }
        }
    }
}

const INVALID: u8 = 0xff;

/// The value of each base64 digit (standard alphabet), [`INVALID`] for other bytes.
static BASE64_DIGIT: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes base64 `digits` (no padding) into `out`, as far as whole bytes go: a
/// trailing digit's spare bits, which belong to data cut off here, are dropped.
fn decode_base64(digits: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut bits = 0u32;
    let mut count = 0;
    for &d in digits {
        bits = bits << 6 | u32::from(BASE64_DIGIT[d as usize]);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
}

/// Adds to `spans` the parts of every run of hex digits of `text` whose decoding (from
/// its first or its second digit) holds a known value in any form: a value costs no
/// pattern of its hex, upper or lower case.
fn hex_spans(ac: &AhoCorasick, text: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let start = at;
        while at < text.len() && text[at].is_ascii_hexdigit() {
            at += 1;
        }
        if at == start {
            at += 1;
            continue;
        }
        if at - start < 2 * MIN_LEN {
            continue;
        }
        for shift in 0..2 {
            decoded.clear();
            decoded.extend(
                text[start + shift..at]
                    .chunks_exact(2)
                    .map(|pair| hex_digit(pair[0]) << 4 | hex_digit(pair[1])),
            );
            let from = start + shift;
            for m in ac.find_iter(&decoded) {
                spans.push((from + 2 * m.start(), from + 2 * m.end()));
            }
        }
    }
}

fn hex_digit(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

/// A decoding of a message (escapes resolved, percent-encoding undone), each of its
/// bytes tied to the bytes of the message it comes from, so that a value found in the
/// decoding is masked where it is written.
struct View {
    bytes: Vec<u8>,
    /// For each byte of `bytes`: the range of the message's bytes it was read from.
    from: Vec<(usize, usize)>,
}

impl View {
    /// The message itself, each byte tied to its whole character.
    fn of(text: &str) -> View {
        let mut from = Vec::with_capacity(text.len());
        for (at, c) in text.char_indices() {
            from.extend(std::iter::repeat_n((at, at + c.len_utf8()), c.len_utf8()));
        }
        View {
            bytes: text.as_bytes().to_vec(),
            from,
        }
    }

    /// The message's range a match `start..end` in this view comes from.
    fn source(&self, start: usize, end: usize) -> (usize, usize) {
        (self.from[start].0, self.from[end - 1].1)
    }

    /// With the backslash escapes of JSON (`\u00e4`, surrogate pairs too), Go (`%q`,
    /// `%+q`: `\x01`, `\U0001f511`), Python's repr (`\'`, `\xe4`), Rust's `{:?}`
    /// (`\u{e4}`) and shells (`\!`, `'\''`, `'"'"'`) resolved; `None` without any.
    fn unescaped(&self) -> Option<View> {
        let b = &self.bytes;
        let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        if !b.contains(&b'\\') && !has(b"'\"'\"'") {
            return None;
        }
        let mut out = View {
            bytes: Vec::with_capacity(b.len()),
            from: Vec::with_capacity(b.len()),
        };
        let mut i = 0;
        while i < b.len() {
            let (bytes, len): (Vec<u8>, usize) = if b[i..].starts_with(b"'\\''") {
                (vec![b'\''], 4)
            } else if b[i..].starts_with(b"'\"'\"'") {
                (vec![b'\''], 5)
            } else if b[i] == b'\\' && i + 1 < b.len() {
                match escape_at(&b[i + 1..]) {
                    Some((bytes, len)) => (bytes, len + 1),
                    None => (vec![b'\\'], 1),
                }
            } else {
                (vec![b[i]], 1)
            };
            let source = (self.from[i].0, self.from[i + len - 1].1);
            out.from.extend(std::iter::repeat_n(source, bytes.len()));
            out.bytes.extend(bytes);
            i += len;
        }
        Some(out)
    }

    /// With `%XX` decoded (and `+` read as a space, as forms encode it, when `plus`);
    /// `None` without any `%XX`.
    fn percent_decoded(&self, plus: bool) -> Option<View> {
        let b = &self.bytes;
        let at_escape = |i: usize| {
            i + 2 < b.len()
                && b[i] == b'%'
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit()
        };
        if !(0..b.len()).any(at_escape) {
            return None;
        }
        let mut out = View {
            bytes: Vec::with_capacity(b.len()),
            from: Vec::with_capacity(b.len()),
        };
        let mut i = 0;
        while i < b.len() {
            if at_escape(i) {
                out.bytes
                    .push(hex_digit(b[i + 1]) << 4 | hex_digit(b[i + 2]));
                out.from.push((self.from[i].0, self.from[i + 2].1));
                i += 3;
            } else {
                out.bytes
                    .push(if plus && b[i] == b'+' { b' ' } else { b[i] });
                out.from.push(self.from[i]);
                i += 1;
            }
        }
        Some(out)
    }
}

/// The bytes the escape after a backslash stands for, and how many bytes it takes;
/// `None` for a backslash that escapes nothing (`\d`).
fn escape_at(rest: &[u8]) -> Option<(Vec<u8>, usize)> {
    let hex = |digits: &[u8]| -> Option<u32> {
        let text = std::str::from_utf8(digits).ok()?;
        (!text.is_empty() && text.bytes().all(|d| d.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(text, 16).ok())
            .flatten()
    };
    let utf8 = |c: char| c.to_string().into_bytes();
    let simple = |byte: u8| Some((vec![byte], 1));
    match rest[0] {
        b'n' => simple(b'\n'),
        b't' => simple(b'\t'),
        b'r' => simple(b'\r'),
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'v' => simple(0x0b),
        b'e' => simple(0x1b),
        b'0' if !rest.get(1).is_some_and(u8::is_ascii_digit) => simple(0),
        // A byte: Go's `%q` of bytes that are not UTF-8, Python's repr of bytes.
        b'x' => Some((vec![hex(rest.get(1..3)?)? as u8], 3)),
        b'u' if rest.get(1) == Some(&b'{') => {
            let close = rest.iter().position(|&c| c == b'}')?;
            Some((utf8(char::from_u32(hex(&rest[2..close])?)?), close + 1))
        }
        b'u' => {
            let unit = hex(rest.get(1..5)?)?;
            if (0xd800..0xdc00).contains(&unit)
                && rest.get(5..7) == Some(b"\\u")
                && let Some(low) = rest.get(7..11).and_then(hex)
                && (0xdc00..0xe000).contains(&low)
            {
                let c = char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?;
                return Some((utf8(c), 11));
            }
            Some((utf8(char::from_u32(unit)?), 5))
        }
        b'U' => Some((utf8(char::from_u32(hex(rest.get(1..9)?)?)?), 9)),
        // `\\`, `\"`, `\'`, `\/`, and what shells escape (`\!`, `\ `, `\$`).
        c if c.is_ascii_punctuation() || c == b' ' => simple(c),
        _ => None,
    }
}

/// Every decoding of `text` (a line) in which a value may hide: escapes resolved
/// (twice, for JSON in JSON), percent-encoding undone (with `+` as `%20`, and as a
/// space).
fn views(text: &str) -> Vec<View> {
    let mut views = Vec::new();
    // Most messages have nothing to decode: no view of them is made.
    let escaped = text.contains('\\') || text.contains("'\"'\"'");
    if !escaped && !text.contains('%') {
        return views;
    }
    let plain = View::of(text);
    if let Some(once) = plain.unescaped() {
        if let Some(twice) = once.unescaped() {
            views.push(twice);
        }
        views.push(once);
    }
    if let Some(decoded) = plain.percent_decoded(false) {
        if text.contains('+') {
            views.extend(plain.percent_decoded(true));
        }
        views.push(decoded);
    }
    views
}

/// The one way to stderr: writes `text` with every known secret masked.
pub fn eprint(text: &str) {
    let clean = for_terminal(text);
    // Nothing useful can be done if stderr itself is gone.
    let _ = std::io::stderr().lock().write_all(clean.as_bytes());
}

/// `text` as it may reach a terminal (stderr, or a progress line above a bar): every
/// known secret masked, then every control character escaped.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    match scrub(text) {
        Cow::Borrowed(text) => printable(text),
        Cow::Owned(masked) => Cow::Owned(printable(&masked).into_owned()),
    }
}

/// `text` with every control character but newline and tab written visibly: C0
/// controls (ESC, CR, BEL...) and DEL as `\x1b`, C1 controls as `\u009b`. Logs and
/// events are the cluster's text, anyone's: an OSC 52 sequence in a log line would
/// write the reader's clipboard, `ESC[2J` clear their screen, a CR hide what precedes it.
pub fn printable(text: &str) -> Cow<'_, str> {
    let raw = |c: char| c.is_control() && !matches!(c, '\n' | '\t');
    if !text.chars().any(raw) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c as u32 {
            _ if !raw(c) => out.push(c),
            n @ (0..0x20 | 0x7f) => out.push_str(&format!("\\x{n:02x}")),
            n => out.push_str(&format!("\\u{n:04x}")),
        }
    }
    Cow::Owned(out)
}

/// The user asked to see Secret material on the terminal (`--show`, `--show-secrets`).
pub fn show_on_terminal() {
    SHOW_ON_TERMINAL.store(true, Ordering::Relaxed);
}

/// What goes to stdout: on a terminal, masked (unless the user asked to see Secret
/// material) and with control characters escaped (see [`printable`]); into a pipe or a
/// file, as it is: that is the data.
pub fn for_stdout(text: &str) -> Cow<'_, str> {
    if !std::io::stdout().is_terminal() {
        Cow::Borrowed(text)
    } else if SHOW_ON_TERMINAL.load(Ordering::Relaxed) {
        printable(text)
    } else {
        for_terminal(text)
    }
}

/// A panic message goes through the same mask as everything else on stderr.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprint(&format!("internal error (panic{place}): {what}\n"));
    }));
}

/// The server's words about a Secret, with every value it echoes replaced by [`MASK`]:
/// after `Invalid value: `, inside `&value.valueUnstructured{Value:...}`, and any
/// quoted or Go-syntax value after `got `. Messages about other kinds are returned
/// as they are.
pub fn server_words(message: &str) -> Cow<'_, str> {
    if about_secret(message) {
        Cow::Owned(mask_echoed(message))
    } else {
        Cow::Borrowed(message)
    }
}

/// Where a server's message goes on with a value it echoes.
const MARKERS: &[&str] = &["Invalid value: ", "valueUnstructured{Value:", "got "];

/// `message` (a server's, known to be about a Secret) with every echoed value masked.
pub fn mask_echoed(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = MARKERS
            .iter()
            .filter_map(|m| rest.find(m).map(|at| (at, *m)))
            .min_by_key(|(at, _)| *at);
        let Some((at, marker)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        let end = if marker.starts_with("valueUnstructured") {
            // Up to the `}` that closes `{Value:`.
            value_end(rest, &['}'])
        } else if marker == "got " && !rest.starts_with(['"', '{', '[', '\'', '`']) {
            // `got string` (a type, not a value) or a `valueUnstructured` (next marker).
            0
        } else {
            value_end(rest, &[':', ',', ';', '\n'])
        };
        if end > 0 {
            out.push_str(MASK);
        }
        rest = &rest[end..];
    }
    out
}

/// Whether a server message is about a Secret (`Secret "s" is invalid`, `Kind=Secret`).
pub fn about_secret(message: &str) -> bool {
    message.starts_with("Secret ")
        || message.contains("Kind=Secret)")
        || message.contains("Kind=Secret;")
        || message.starts_with("secrets ")
}

/// Length of the value at the start of `text`: a quoted string, a balanced Go or JSON
/// value, else everything up to one of `stops` at nesting depth 0 (`: ` for a stop of
/// ':', as Go error text separates value and reason).
fn value_end(text: &str, stops: &[char]) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'`' | b'\'' => {
                // A quoted string: skip to its unescaped end.
                let quote = c;
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                if depth == 0
                    && (i >= bytes.len() || stops.contains(&(bytes[i] as char)) || bytes[i] == b' ')
                {
                    return i.min(bytes.len());
                }
                continue;
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' if depth > 0 => depth -= 1,
            _ if depth == 0 && stops.contains(&(c as char)) => {
                let colon_space = c != b':' || bytes.get(i + 1).is_none_or(|b| *b == b' ');
                if colon_space {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// What every reader of the cluster sees of an object: kind, name, namespace, labels.
fn public_strings(obj: &Value) -> impl Iterator<Item = &str> {
    let meta = &obj["metadata"];
    let labels = meta["labels"].as_object().into_iter().flat_map(|m| {
        m.iter()
            .flat_map(|(k, v)| [Some(k.as_str()), v.as_str()])
            .flatten()
    });
    [
        &obj["kind"],
        &meta["name"],
        &meta["generateName"],
        &meta["namespace"],
    ]
    .into_iter()
    .filter_map(Value::as_str)
    .chain(labels)
}

/// Refuses to put secret values on a terminal, where they end up in scrollback and
/// screen shares, unless the user asked (`--show`). Pass `std::io::stdout().is_terminal()`.
pub fn refuse_secrets_on_terminal<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
    stdout_is_terminal: bool,
    show: bool,
) -> crate::Result<()> {
    let has_values = |o: &Value| {
        ["data", "stringData"]
            .iter()
            .any(|f| o[f].as_object().is_some_and(|m| !m.is_empty()))
    };
    if stdout_is_terminal && !show && objects.into_iter().any(|o| is_secret(o) && has_values(o)) {
        return Err(crate::Error::input(
            "refusing to write Secret values to a terminal: pipe the output on, redirect it \
             to a file, or pass --show",
        ));
    }
    if show {
        show_on_terminal();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The registry is process-wide: each test uses values of its own.

    #[test]
    fn go_quoting_escapes_what_go_does_not_print() {
        // Recorded from Go itself: kubectl 1.32's go-template `printf "%q"`.
        let value = "tab\there nl\n cr\r bell\x07 del\x7f nbsp\u{a0} shy\u{ad} nel\u{85} \
                     zwsp\u{200b} lre\u{202a} bom\u{feff} pua\u{e000} ls\u{2028} emoji\u{1f600} \
                     tag\u{e0041} quote\" back\\ \u{e9} \u{f1} \u{4e2d} \u{301}";
        let go = "tab\\there nl\\n cr\\r bell\\a del\\x7f nbsp\\u00a0 shy\\u00ad nel\\u0085 \
                  zwsp\\u200b lre\\u202a bom\\ufeff pua\\ue000 ls\\u2028 emoji\u{1f600} \
                  tag\\U000e0041 quote\\\" back\\\\ \u{e9} \u{f1} \u{4e2d} \u{301}";
        assert_eq!(go_quoted(value), go);
    }

    #[test]
    fn masks_secret_data_and_last_applied_only() {
        let applied = r#"{"apiVersion":"v1","kind":"Secret","data":{"a":"c2VjcmV0"},"metadata":{"name":"s"}}"#;
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2VjcmV0"},
                           "stringData": {"b": "x"},
                           "metadata": {"annotations": {LAST_APPLIED: applied}}});
        mask_secret(&mut s);
        assert_eq!(s["data"]["a"], MASK);
        assert_eq!(s["stringData"]["b"], MASK);
        let copy = s["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap();
        assert!(!copy.contains("c2VjcmV0") && copy.contains(MASK), "{copy}");
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}});
        mask_secret(&mut cm);
        assert_eq!(cm["data"]["a"], "1");
    }

    #[test]
    fn secrets_reach_a_terminal_only_when_asked() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "eA=="}});
        let empty = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "e"}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x"}});
        assert!(refuse_secrets_on_terminal([&cm, &secret], true, false).is_err());
        assert!(refuse_secrets_on_terminal([&secret], false, false).is_ok());
        assert!(refuse_secrets_on_terminal([&cm, &empty], true, false).is_ok());
    }

    #[test]
    fn values_public_in_names_or_labels_are_not_scrubbed() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "quizz-secret", "labels": {"app": "quizz"}},
                            "stringData": {"DATABASE_NAME": "quizz", "PASSWORD": "hunter22"}});
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "quizz-app"}});
        learn_objects([&secret, &deployment]);
        assert_eq!(
            scrub("deployment.apps/quizz-app: password hunter22 rejected"),
            "deployment.apps/quizz-app: password <redacted> rejected"
        );
    }

    #[test]
    fn text_printed_whole_keeps_a_value_inside_it_and_only_there() {
        learn("plane");
        learn("vars.env:2");
        learn_printed_whole("plane-vars.env");
        assert_eq!(
            scrub("plane-vars.env:13: POSTGRES_PASSWORD: plane"),
            "plane-vars.env:13: POSTGRES_PASSWORD: <redacted>"
        );
        // A match reaching out of the public text is masked whole.
        assert_eq!(scrub("plane-vars.env:23: x"), "plane-<redacted>3: x");
        // Elsewhere, and inside other words, the value is masked as before.
        assert_eq!(
            scrub("airplane-vars: plane"),
            "air<redacted>-vars: <redacted>"
        );
    }

    #[test]
    fn scrubs_every_form() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "stringData": {"pw": "pa<ss\"x\u{1}", "n": "0x5EC12E7", "pem": "-----BEGIN K-----\nAAAAbbbbCCCC\n-----END K-----"},
                            "data": {"k": "c3VwZXJzZWNyZXQ="}});
        learn_objects([&secret]);
        for form in [
            "pa<ss\"x\u{1}",
            "pa<ss\\\"x\\u0001",
            "pa\\u003css\\\"x\\u0001",
            "pa<ss\\\"x\\x01",
            "supersecret",
            "c3VwZXJzZWNyZXQ",
            "99357415",
            "AAAAbbbbCCCC",
        ] {
            let clean = scrub(&format!("bad value [{form}] here")).into_owned();
            assert_eq!(clean, "bad value [<redacted>] here", "{form}");
        }
    }

    #[test]
    fn base64_is_found_wherever_the_value_sits() {
        let secret =
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"k": "b64-hidden-pw"}});
        learn_objects([&secret]);
        for data in ["b64-hidden-pw", "x:b64-hidden-pw", "ab:b64-hidden-pw;cd"] {
            let encoded = STANDARD.encode(data);
            for text in [
                format!("got {encoded} here"),
                format!("got {} here", encoded.trim_end_matches('=')),
                // Glued to other letters: read from every start.
                format!("got token{encoded} here"),
            ] {
                let clean = scrub(&text).into_owned();
                assert!(clean.contains(MASK), "{data}: {clean}");
                assert!(!clean.contains(&encoded[4..12]), "{data}: {clean}");
                assert!(
                    clean.starts_with("got ") && clean.ends_with(" here"),
                    "{clean}"
                );
            }
        }
        let plain = "apiVersion: v1 kind: Secret data: c2VjcmV0";
        assert_eq!(scrub(plain), plain);
    }

    #[test]
    fn parts_of_structured_values_are_learned_and_short_ones_are_not() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {
            "DATABASE_URL": "postgres://app_owner:p%40ss-w0rd!@db.internal:5432/polls?sslmode=require&sslpassword=k3y-pass",
            "DSN": "host=db user=dsn-user-1 password='dsn s3cret'",
            "ENV": "export API_TOKEN=tok-3141592\nLEVEL: info-level-9",
            "JSON": "{\"client\": {\"secret\": \"json-s3cret\", \"n\": 31415926}, \"port\": 5432}"}});
        learn_objects([&secret]);
        for part in [
            "app_owner",
            "p@ss-w0rd!",
            "p%40ss-w0rd!",
            "k3y-pass",
            "dsn-user-1",
            "dsn s3cret",
            "tok-3141592",
            "info-level-9",
            "json-s3cret",
            "31415926",
        ] {
            assert_eq!(scrub(&format!("got {part}.")), "got <redacted>.", "{part}");
        }
        // Short or common parts stay: they would mask every message.
        for kept in [
            "connecting to db on 5432 with sslmode=require",
            "user postgres",
        ] {
            assert_eq!(scrub(kept), kept);
        }
    }

    #[test]
    fn encoded_escaped_and_hex_forms_are_found_by_decoding() {
        let value = "it's a \"pa$$\" @ ä 🔑\u{1}";
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"k": value}});
        learn_objects([&secret]);
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        let ascii_json = value
            .encode_utf16()
            .map(|u| match u {
                0x20..0x7f if u != 0x22 && u != 0x5c => char::from(u as u8).to_string(),
                _ => format!("\\u{u:04x}"),
            })
            .collect::<String>();
        for form in [
            // Percent-encoded (as a URL path and as a form), either case.
            "it%27s%20a%20%22pa%24%24%22%20%40%20%C3%A4%20%F0%9F%94%91%01".to_owned(),
            "it%27s+a+%22pa%24%24%22+%40+%c3%a4+%f0%9f%94%91%01".to_owned(),
            // Python's repr, and json.dumps (ASCII only).
            "it\\'s a \"pa$$\" @ ä 🔑\\x01".to_owned(),
            ascii_json,
            // Rust's {:?} and a shell's quoting.
            value.escape_debug().to_string(),
            "'it'\\''s a \"pa$$\" @ ä 🔑\u{1}'".to_owned(),
            hex.clone(),
            hex.to_uppercase(),
        ] {
            let clean = scrub(&format!("[{form}]")).into_owned();
            assert_eq!(clean.matches(MASK).count(), 1, "{form}: {clean}");
            assert!(
                !clean.contains("pa$$") && !clean.contains("24243"),
                "{form}: {clean}"
            );
        }
    }

    #[test]
    fn control_characters_are_escaped_newlines_and_tabs_kept() {
        let text = "log:\t\u{1b}]52;c;aGk=\u{7}\u{1b}[2J\r\u{7f}\u{9b}x\nnext";
        assert_eq!(
            printable(text),
            "log:\t\\x1b]52;c;aGk=\\x07\\x1b[2J\\x0d\\x7f\\u009bx\nnext"
        );
        assert!(matches!(printable("plain\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_48k_key_secret_is_masked_whole() {
        let data: serde_json::Map<String, Value> = (0..48_000)
            .map(|i| (format!("K{i}"), Value::String(format!("value-{i:08}-xyz"))))
            .collect();
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "stringData": data});
        learn_objects([&secret]);
        // Its cost against the same stream unmasked is bench/scrub.sh's to measure.
        let text = "value-00047999-xyz value-00000001-xyz ".repeat(1_000);
        assert_eq!(scrub(&text), "<redacted> <redacted> ".repeat(1_000));
    }

    #[test]
    fn server_words_keep_the_words_and_hide_the_values() {
        let cases = [
            (
                "failed to create typed patch object (ns/s1; /v1, Kind=Secret): .data.k: expected string, got &value.valueUnstructured{Value:7060754348}",
                "failed to create typed patch object (ns/s1; /v1, Kind=Secret): .data.k: expected string, got &value.valueUnstructured{Value:<redacted>}",
            ),
            (
                "failed to create typed patch object (ns/s1; /v1, Kind=Secret): .stringData.k: expected string, got &value.valueUnstructured{Value:map[string]interface {}{\"nested\":\"V}A\\\"L\"}}",
                "failed to create typed patch object (ns/s1; /v1, Kind=Secret): .stringData.k: expected string, got &value.valueUnstructured{Value:<redacted>}",
            ),
            (
                "Secret \"s4\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters",
                "Secret \"s4\" is invalid: data[bad key]: Invalid value: <redacted>: a valid config key must consist of alphanumeric characters",
            ),
            (
                "Secret \"s\" is invalid: [data[a b]: Invalid value: \"a b\": bad, data[c]: Invalid value: {\"x\":[1,2]}: bad]",
                "Secret \"s\" is invalid: [data[a b]: Invalid value: <redacted>: bad, data[c]: Invalid value: <redacted>: bad]",
            ),
        ];
        for (server, shown) in cases {
            assert_eq!(server_words(server), shown);
        }
        let other = "ConfigMap \"c\" is invalid: data[x]: Invalid value: \"x y\": bad";
        assert_eq!(server_words(other), other);
    }
}

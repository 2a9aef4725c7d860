//! Keeping secret values out of every message, log and terminal: the one choke point.
//!
//! Secrets are learned once, where they enter a tool: the stream reader learns the
//! values of every Secret it reads ([`learn_objects`]), envsplit the values it
//! classifies as secret, kapply what the server returns (Secret data and
//! `last-applied-configuration`), the kube connection the credentials (token, client
//! key, exec plugin output). Every byte a tool writes to stderr goes through
//! [`eprint`], and stdout on a terminal through [`crate::write_stdout`]: both mask every
//! known value in every form a message can carry it in (plain, base64, JSON-escaped as
//! Rust and Go write it, Go-quoted, as a number the server reformats, each line of a
//! multi-line value). One Aho-Corasick automaton over the textual forms does that in one
//! pass, however many values there are; base64 is found by decoding every base64-looking
//! run of a message and searching the decoded bytes with the same automaton, so a value
//! costs no pattern of its base64 and is found wherever its bytes sit in longer base64.
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
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Known {
    fn add(&mut self, value: String) {
        if !self.values.contains(&value) {
            add_forms(&mut self.needles, &value);
            self.values.insert(value);
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

/// A handle on the process-wide registry for code that passes its secrets around
/// explicitly: learning through any handle teaches them all, and [`Scrubber::scrub`]
/// masks every value the process knows.
#[derive(Debug, Default, Clone)]
pub struct Scrubber(());

impl Scrubber {
    /// Learns the values of every Secret in `objects` (see [`learn_objects`]).
    pub fn learn<'a>(&mut self, objects: impl IntoIterator<Item = &'a Value>) {
        learn_objects(objects);
    }

    /// `text` with every known secret value masked (see [`scrub`]).
    pub fn scrub(&self, text: &str) -> String {
        scrub(text).into_owned()
    }
}

/// `text` with every known secret value replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let matcher = known().matcher();
    let Some(ac) = &matcher.automaton else {
        return Cow::Borrowed(text);
    };
    let mut spans: Vec<(usize, usize)> = ac.find_iter(text).map(|m| (m.start(), m.end())).collect();
    base64_spans(ac, text.as_bytes(), &mut spans);
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

/// The one way to stderr: writes `text` with every known secret masked.
pub fn eprint(text: &str) {
    let clean = scrub(text);
    // Nothing useful can be done if stderr itself is gone.
    let _ = std::io::stderr().lock().write_all(clean.as_bytes());
}

/// The user asked to see Secret material on the terminal (`--show`, `--show-secrets`).
pub fn show_on_terminal() {
    SHOW_ON_TERMINAL.store(true, Ordering::Relaxed);
}

/// What goes to stdout: masked when stdout is a terminal, unless the user asked.
pub fn for_stdout(text: &str) -> Cow<'_, str> {
    if std::io::stdout().is_terminal() && !SHOW_ON_TERMINAL.load(Ordering::Relaxed) {
        scrub(text)
    } else {
        Cow::Borrowed(text)
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

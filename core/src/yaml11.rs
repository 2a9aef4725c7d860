//! Reading one YAML document the way Kubernetes reads it.
//!
//! kubectl and the API server read YAML with go-yaml v2 behind sigs.k8s.io/yaml: a
//! YAML 1.1 resolver whose result is converted to JSON. Unquoted `on`, `yes`, `n` are
//! bools, `0755` is octal, `1_000` and `0x1F` are ints, `<<` merges a mapping, while
//! timestamps (`2001-12-14`) and base-60 numbers (`12:30:00`) stay strings. A document
//! that JSON cannot hold (`.inf`, `.nan`, a null or unsigned-64-bit key) is refused, as
//! kubectl refuses it. This module builds the same `serde_json::Value` from the events of
//! granit-parser (the parser behind kube's own serde-saphyr), which keep the style, tag
//! and position of every scalar. The builder keeps its own stack, so depth costs no
//! recursion, and it stops at go-yaml's depth limit before the parser goes deeper.
//!
//! Messages never quote a scalar of the input: a secret could be one.

use granit_parser::{Event, Parser, ScalarStyle, ScanError, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashSet;

/// go-yaml's limit on nesting (`exceeded max depth of 10000`).
pub const MAX_DEPTH: usize = 10_000;

/// Nodes that aliases may add to a document before it counts as an alias bomb.
const MAX_ALIASED_NODES: usize = 1_000_000;

/// What a node costs in [`Budget`] besides its text: about what it takes in memory.
const NODE_BYTES: usize = 32;

/// The expanded size (bytes of text plus [`NODE_BYTES`] a node) up to which aliases may
/// make up any share of a document, and from which they may make up only
/// [`MIN_ALIAS_SHARE`]: go-yaml v3's alias-ratio rule (99% up to 400,000 decoded nodes,
/// falling to 10% at 4,000,000), counted in bytes so that one long string repeated by
/// aliases (a "string bomb", which counts as few nodes) is bounded as well.
const SMALL_DOCUMENT_BYTES: usize = 4 << 20;
const LARGE_DOCUMENT_BYTES: usize = 40 << 20;
const MAX_ALIAS_SHARE: f64 = 0.99;
const MIN_ALIAS_SHARE: f64 = 0.10;

/// Why a document cannot be read, with the 1-based line (within the text read) it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub line: usize,
    pub message: String,
}

impl LoadError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        LoadError {
            line,
            message: message.into(),
        }
    }

    fn scan(e: &ScanError) -> Self {
        if matches!(e.kind(), granit_parser::ErrorKind::RecursionLimitExceeded) {
            return LoadError::new(e.marker().line(), too_deep());
        }
        LoadError::new(e.marker().line(), format!("invalid YAML: {}", e.info()))
    }
}

fn too_deep() -> String {
    format!("nested deeper than {MAX_DEPTH} levels (the limit of Kubernetes' YAML reader)")
}

/// A scalar as go-yaml v2 resolves it when decoding into `interface{}`.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer past i64, which go-yaml keeps as uint64.
    Uint(u64),
    Float(f64),
    Str(String),
    /// Unquoted `<<`.
    Merge,
}

/// A key written twice in one mapping. go-yaml v2 keeps the last value and kubectl
/// applies the object without a word; the tools do the same and say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedKey {
    /// 1-based line (within the text read) of the key that wins.
    pub line: usize,
    pub key: String,
}

/// One document as Kubernetes reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// `None` when the document is empty (only comments, or `null`...): as kubectl, the
    /// caller skips it.
    pub value: Option<Value>,
    /// Keys repeated in a mapping, in the order met.
    pub repeated: Vec<RepeatedKey>,
}

/// The first document of `text` as Kubernetes reads it.
pub fn load(text: &str) -> Result<Loaded, LoadError> {
    Builder::default().run(text)
}

/// The parser with go-yaml's nesting limit (granit's own default is far lower).
fn parser(text: &str) -> Parser<'_, granit_parser::StrInput<'_>> {
    let options = granit_parser::options! {
        flow_nesting_limit: MAX_DEPTH,
        block_nesting_limit: MAX_DEPTH,
    };
    Parser::new_from_str_with_options(text, options)
}

/// A collection being built.
enum Open {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        /// Its expanded size so far (see [`Budget`]).
        tally: Tally,
    },
    Map {
        map: Map<String, Value>,
        anchor: usize,
        tally: Tally,
        /// Keys written in this mapping itself, to note a repeated one; a key that a
        /// merge brought is overridden silently, as merging means.
        explicit: HashSet<String>,
        /// The key read, waiting for its value.
        key: Option<Key>,
        /// Whether that key's value is a merge, and the line of the key.
        line: usize,
    },
}

enum Key {
    Name(String),
    Merge,
}

/// How much of a document aliases made, checked before an alias is expanded: an alias
/// bomb is refused before it takes the memory it asks for.
#[derive(Default)]
struct Budget {
    /// The expanded size of everything read so far, aliases included.
    decoded: usize,
    /// The part of it that aliases added.
    aliased: usize,
    aliased_nodes: usize,
}

impl Budget {
    /// Counts an alias of a node of that tally; false when the document would then be
    /// more alias than its size allows.
    fn alias(&mut self, tally: Tally) -> bool {
        self.decoded += tally.size;
        self.aliased += tally.size;
        self.aliased_nodes += tally.nodes;
        let share = self.aliased as f64 / self.decoded as f64;
        self.aliased_nodes <= MAX_ALIASED_NODES && share <= allowed_alias_share(self.decoded)
    }
}

/// go-yaml v3's `allowedAliasRatio`, over bytes instead of nodes.
fn allowed_alias_share(decoded: usize) -> f64 {
    if decoded <= SMALL_DOCUMENT_BYTES {
        // Small documents: anything goes (the node limit still holds).
        return 1.0;
    }
    if decoded >= LARGE_DOCUMENT_BYTES {
        return MIN_ALIAS_SHARE;
    }
    let span = (LARGE_DOCUMENT_BYTES - SMALL_DOCUMENT_BYTES) as f64;
    let past = (decoded - SMALL_DOCUMENT_BYTES) as f64;
    MAX_ALIAS_SHARE - (MAX_ALIAS_SHARE - MIN_ALIAS_SHARE) * past / span
}

/// The expanded size (bytes of text plus [`NODE_BYTES`] a node) and node count of a
/// node, counted as it is built.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    size: usize,
    nodes: usize,
}

impl Tally {
    fn node(text: usize) -> Tally {
        Tally {
            size: NODE_BYTES + text,
            nodes: 1,
        }
    }

    fn add(&mut self, other: Tally) {
        self.size += other.size;
        self.nodes += other.nodes;
    }
}

/// An anchored node: its value and tally.
struct Anchored {
    value: Value,
    tally: Tally,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    /// Anchored nodes, by anchor id.
    anchors: Vec<Option<Anchored>>,
    budget: Budget,
    done: Option<Value>,
    repeated: Vec<RepeatedKey>,
}

impl Builder {
    fn run(mut self, text: &str) -> Result<Loaded, LoadError> {
        let mut started = false;
        for event in parser(text) {
            let (event, span) = event.map_err(|e| LoadError::scan(&e))?;
            let line = span.start.line();
            match event {
                Event::DocumentStart(..) => started = true,
                // go-yaml's Unmarshal reads the first document of its input.
                Event::DocumentEnd if started => break,
                Event::Scalar(text, style, anchor, tag) => {
                    let tally = Tally::node(text.len());
                    self.budget.decoded += tally.size;
                    let scalar = resolve(&text, style, tag.as_deref()).map_err(|why| {
                        // The key says which value (never the value itself: a secret).
                        let why = match self.value_key() {
                            Some(key) => format!("key {key:?}: {why}"),
                            None => why,
                        };
                        LoadError::new(line, why)
                    })?;
                    self.scalar(scalar, anchor, tally, line)?;
                }
                Event::SequenceStart(_, anchor, _) => {
                    self.open(line)?;
                    self.stack.push(Open::Seq {
                        items: Vec::new(),
                        anchor,
                        tally: Tally::node(0),
                    });
                }
                Event::MappingStart(_, anchor, _) => {
                    self.open(line)?;
                    self.stack.push(Open::Map {
                        map: Map::new(),
                        anchor,
                        tally: Tally::node(0),
                        explicit: HashSet::new(),
                        key: None,
                        line,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let (value, anchor, tally) = match self.stack.pop() {
                        Some(Open::Seq {
                            items,
                            anchor,
                            tally,
                        }) => (Value::Array(items), anchor, tally),
                        Some(Open::Map {
                            map, anchor, tally, ..
                        }) => (Value::Object(map), anchor, tally),
                        None => unreachable!("the parser balances collections"),
                    };
                    self.budget.decoded += NODE_BYTES;
                    self.remember(anchor, &value, tally);
                    self.node(value, tally, line)?;
                }
                Event::Alias(id) => {
                    let tally = self
                        .anchors
                        .get(id)
                        .and_then(Option::as_ref)
                        .map(|a| a.tally)
                        .ok_or_else(|| LoadError::new(line, "an alias refers to no anchor"))?;
                    // Counted before the copy is made: a bomb never takes its memory.
                    if !self.budget.alias(tally) {
                        return Err(LoadError::new(
                            line,
                            "the document contains excessive aliasing",
                        ));
                    }
                    let value = self.anchors[id].as_ref().map(|a| a.value.clone());
                    let value = value.expect("checked above");
                    if self.key_next() && !value.is_string() {
                        return Err(self.bad_key(line, &value));
                    }
                    match value {
                        Value::String(s) if self.key_next() => {
                            self.key(Key::Name(s), tally, line);
                        }
                        value => self.node(value, tally, line)?,
                    }
                }
                _ => {}
            }
        }
        Ok(Loaded {
            value: self.done.filter(|v| !v.is_null()),
            repeated: self.repeated,
        })
    }

    /// Before a collection starts: it cannot be a key, and the depth is bounded.
    fn open(&self, line: usize) -> Result<(), LoadError> {
        if self.key_next() {
            return Err(LoadError::new(
                line,
                "a mapping or sequence used as a mapping key",
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(LoadError::new(line, too_deep()));
        }
        Ok(())
    }

    fn key_next(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { key: None, .. }))
    }

    /// The key whose value comes next, if the next node is a mapping's value.
    fn value_key(&self) -> Option<&str> {
        match self.stack.last() {
            Some(Open::Map {
                key: Some(Key::Name(name)),
                ..
            }) => Some(name),
            _ => None,
        }
    }

    fn bad_key(&self, line: usize, value: &Value) -> LoadError {
        let what = match value {
            Value::Null => "a null mapping key (`~`, `null` or empty) cannot be a JSON key",
            _ => "a mapping or sequence used as a mapping key",
        };
        LoadError::new(line, what)
    }

    fn remember(&mut self, anchor: usize, value: &Value, tally: Tally) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize_with(anchor + 1, || None);
        }
        self.anchors[anchor] = Some(Anchored {
            value: value.clone(),
            tally,
        });
    }

    fn scalar(
        &mut self,
        scalar: Scalar,
        anchor: usize,
        tally: Tally,
        line: usize,
    ) -> Result<(), LoadError> {
        if self.key_next() {
            let key = match scalar {
                Scalar::Merge => Key::Merge,
                other => Key::Name(key_string(other).map_err(|why| LoadError::new(line, why))?),
            };
            if let Key::Name(name) = &key {
                self.remember(anchor, &Value::String(name.clone()), tally);
            }
            self.key(key, tally, line);
            return Ok(());
        }
        let value = json_value(scalar).map_err(|why| LoadError::new(line, why))?;
        self.remember(anchor, &value, tally);
        self.node(value, tally, line)
    }

    fn key(&mut self, key: Key, size: Tally, at: usize) {
        if let Some(Open::Map {
            key: slot,
            line,
            tally,
            ..
        }) = self.stack.last_mut()
        {
            *slot = Some(key);
            *line = at;
            tally.add(size);
        }
    }

    /// A complete value: the next item of a sequence, the value of a mapping's key, or
    /// the document.
    fn node(&mut self, value: Value, size: Tally, at: usize) -> Result<(), LoadError> {
        let repeated = &mut self.repeated;
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Open::Seq { items, tally, .. }) => {
                tally.add(size);
                items.push(value);
            }
            Some(Open::Map {
                map,
                explicit,
                key,
                line,
                tally,
                ..
            }) => {
                tally.add(size);
                match key.take() {
                    Some(Key::Name(name)) => {
                        // The later value replaces the earlier one whole (a repeated
                        // `metadata` drops the first one's labels), as in go-yaml v2.
                        if !explicit.insert(name.clone()) {
                            repeated.push(RepeatedKey {
                                line: *line,
                                key: name.clone(),
                            });
                        }
                        map.insert(name, value);
                    }
                    Some(Key::Merge) => {
                        merge(map, value).map_err(|why| LoadError::new(at, why))?;
                    }
                    None => unreachable!("scalar and alias keys are taken apart"),
                }
            }
        }
        Ok(())
    }
}

/// go-yaml v2's merge: a mapping, or a sequence of mappings of which earlier ones win,
/// written over the keys so far (later keys of the mapping then override it).
fn merge(into: &mut Map<String, Value>, value: Value) -> Result<(), &'static str> {
    const WANT_MAP: &str = "a merge key (<<) needs a mapping or a sequence of mappings";
    match value {
        Value::Object(from) => into.extend(from),
        Value::Array(items) => {
            for item in items.into_iter().rev() {
                let Value::Object(from) = item else {
                    return Err(WANT_MAP);
                };
                into.extend(from);
            }
        }
        _ => return Err(WANT_MAP),
    }
    Ok(())
}

/// The 1-based line of the scalar value at `path` (mapping keys, as JSON keys) in the
/// first document of `text`, for messages about a value found in the loaded object.
pub fn line_of(text: &str, path: &[String]) -> Option<usize> {
    /// Where the walk is: per open collection, the key (or index) of the node inside it.
    struct Level {
        map: bool,
        key_next: bool,
        segment: Option<String>,
        index: usize,
    }
    fn step(stack: &mut [Level]) {
        if let Some(level) = stack.last_mut() {
            if level.map {
                level.key_next = !level.key_next;
            } else {
                level.index += 1;
            }
        }
    }
    let here = |stack: &[Level]| {
        stack.len() == path.len()
            && stack.iter().zip(path).all(|(level, want)| {
                if level.map {
                    level.segment.as_deref() == Some(want)
                } else {
                    level.index.to_string() == *want
                }
            })
    };
    let mut stack: Vec<Level> = Vec::new();
    for event in parser(text) {
        let (event, span) = event.ok()?;
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let map = matches!(event, Event::MappingStart(..));
                stack.push(Level {
                    map,
                    key_next: true,
                    segment: None,
                    index: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                step(&mut stack);
            }
            Event::Scalar(value, style, _, tag) => {
                let key_next = stack.last().is_some_and(|l| l.map && l.key_next);
                if key_next {
                    let key = resolve(&value, style, tag.as_deref())
                        .ok()
                        .and_then(|s| key_string(s).ok());
                    if let Some(level) = stack.last_mut() {
                        level.segment = key;
                    }
                } else if here(&stack) {
                    return Some(span.start.line());
                }
                step(&mut stack);
            }
            Event::Alias(_) => step(&mut stack),
            Event::DocumentEnd => return None,
            _ => {}
        }
    }
    None
}

/// A mapping key as sigs.k8s.io/yaml turns it into a JSON key.
fn key_string(scalar: Scalar) -> Result<String, String> {
    Ok(match scalar {
        Scalar::Str(s) => s,
        Scalar::Bool(b) => b.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => go_format_float32(f),
        Scalar::Null => {
            return Err("a null mapping key (`~`, `null` or empty) cannot be a JSON key".into());
        }
        Scalar::Uint(_) => {
            return Err("a mapping key past the 64-bit signed range cannot be a JSON key".into());
        }
        Scalar::Merge => "<<".into(),
    })
}

/// A scalar value as it reaches the API server: converted to JSON by sigs.k8s.io/yaml,
/// then read back by kubectl into int64 where a number is whole and fits, else float64.
fn json_value(scalar: Scalar) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => i.into(),
        Scalar::Uint(u) => float(u as f64)?,
        Scalar::Float(f) => float(f)?,
        Scalar::Str(s) => Value::String(s),
        // A `<<` value (not key) is the string go-yaml's merge tag leaves.
        Scalar::Merge => Value::String("<<".into()),
    })
}

fn float(f: f64) -> Result<Value, String> {
    // 2^63: whole numbers below it come back from JSON as int64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !f.is_finite() {
        return Err(
            "an unquoted infinity or not-a-number cannot be converted to JSON \
             (kubectl refuses it too); quote it to keep a string"
                .into(),
        );
    }
    if f.fract() == 0.0 && f.abs() < TWO_63 {
        return Ok((f as i64).into());
    }
    Ok(Value::Number(
        Number::from_f64(f).expect("finite floats are JSON numbers"),
    ))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`, which sigs.k8s.io/yaml uses for float keys.
fn go_format_float32(f: f64) -> String {
    let f = f as f32;
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    if f.is_nan() {
        return ".nan".into();
    }
    // Shortest digits and exponent: `{:e}` gives `d.ddddde-x`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is a number");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{esign}{:02}", exp.abs());
    }
    format!("{sign}{}", f.abs())
}

/// go-yaml v2's `resolve()` for one scalar event, as decoded into `interface{}`.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Scalar, String> {
    let Some(tag) = tag else {
        return Ok(if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Scalar::Str(text.to_owned())
        });
    };
    let Some(name) = tag.suffix_in_namespace("tag:yaml.org,2002:") else {
        // Tags go-yaml does not know leave the text a string.
        return Ok(Scalar::Str(text.to_owned()));
    };
    let resolved = resolve_plain(text);
    let fits = match (&*name, &resolved) {
        ("str", _) => return Ok(Scalar::Str(text.to_owned())),
        ("binary", _) => return binary(text),
        ("null", Scalar::Null) | ("bool", Scalar::Bool(_)) => true,
        ("int", Scalar::Int(_) | Scalar::Uint(_)) => true,
        ("float", Scalar::Float(_)) => true,
        ("float", Scalar::Int(i)) => return Ok(Scalar::Float(*i as f64)),
        ("float", Scalar::Uint(u)) => return Ok(Scalar::Float(*u as f64)),
        ("merge", Scalar::Merge) => true,
        // Timestamps stay strings in `interface{}` (go-yaml's backward compatibility).
        ("timestamp", Scalar::Str(_)) => is_timestamp(text),
        // go-yaml refuses a value that is not what a tag it resolves says (`!!int abc`:
        // "cannot decode !!str as a !!int"), and so does kubectl.
        ("null" | "bool" | "int" | "float" | "timestamp", _) => false,
        ("map" | "seq" | "set" | "omap" | "pairs" | "value" | "yaml", _) => false,
        _ => return Ok(Scalar::Str(text.to_owned())),
    };
    if fits {
        Ok(resolved)
    } else {
        Err(format!("a scalar tagged !!{name} is not a valid {name}"))
    }
}

/// go-yaml v2's `parseTimestamp`: `2006-1-2`, then optionally `T`/`t` or a space and
/// `15:4:5` with a fraction, then (after `T`/`t` only, and there required) `Z` or an
/// offset `+07:00`.
fn is_timestamp(text: &str) -> bool {
    fn number(s: &str, min: usize, max: usize, range: std::ops::RangeInclusive<u32>) -> bool {
        (min..=max).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse().is_ok_and(|n: u32| range.contains(&n))
    }
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(at) => {
            let (date, rest) = text.split_at(at);
            (date, Some(rest.split_at(1)))
        }
        None => (text, None),
    };
    let fields: Vec<&str> = date.split('-').collect();
    let date_ok = matches!(fields.as_slice(), [y, m, d]
        if number(y, 4, 4, 0..=9999) && number(m, 1, 2, 1..=12) && number(d, 1, 2, 1..=31));
    let Some((separator, time)) = time else {
        return date_ok;
    };
    let (clock, zone) = if separator == " " {
        (time, None)
    } else {
        match time.find(['Z', '+', '-']) {
            Some(at) => (&time[..at], Some(&time[at..])),
            None => return false,
        }
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = matches!(parts.as_slice(), [h, m, s]
        if number(h, 1, 2, 0..=23) && number(m, 1, 2, 0..=59) && number(s, 1, 2, 0..=59))
        && number(fraction, 1, 9, 0..=u32::MAX);
    let zone_ok = zone.is_none_or(|z| {
        z == "Z"
            || z[1..]
                .split_once(':')
                .is_some_and(|(h, m)| number(h, 2, 2, 0..=23) && number(m, 2, 2, 0..=59))
    });
    date_ok && clock_ok && zone_ok
}

fn binary(text: &str) -> Result<Scalar, String> {
    use base64::Engine;
    let compact: String = text.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "a scalar tagged !!binary is not valid base64".to_owned())?;
    Ok(Scalar::Str(String::from_utf8_lossy(&bytes).into_owned()))
}

/// go-yaml v2's resolution of an untagged plain scalar.
fn resolve_plain(s: &str) -> Scalar {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Scalar::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Scalar::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        "<<" => return Scalar::Merge,
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => go_parse_float(s).map_or(Scalar::Str(s.to_owned()), Scalar::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            // A timestamp (`2001-12-14`) is no number, and stays a string in `interface{}`.
            let plain = s.replace('_', "");
            if let Some(int) = go_parse_int(&plain) {
                return match i64::try_from(int) {
                    Ok(i) => Scalar::Int(i),
                    Err(_) => Scalar::Uint(int as u64),
                };
            }
            if is_go_yaml_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Scalar::Float(f);
            }
            // go-yaml's last resort: binary with a sign after the prefix check.
            let binary = plain
                .strip_prefix("0b")
                .map(|d| (false, d))
                .or_else(|| plain.strip_prefix("-0b").map(|d| (true, d)));
            if let Some((negative, digits)) = binary
                && let Ok(n) = i64::from_str_radix(digits, 2)
            {
                return Scalar::Int(if negative { -n } else { n });
            }
            Scalar::Str(s.to_owned())
        }
        _ => Scalar::Str(s.to_owned()),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)` as go-yaml tries them:
/// a sign, then `0x`, `0o`, `0b` or a bare leading `0` (octal) picks the base.
fn go_parse_int(s: &str) -> Option<i128> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.get(..2).map(str::to_ascii_lowercase);
    let (digits, radix) = match lower.as_deref() {
        Some("0x") => (&unsigned[2..], 16),
        Some("0o") => (&unsigned[2..], 8),
        Some("0b") => (&unsigned[2..], 2),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (&unsigned[1..], 8),
        _ => (unsigned, 10),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let n = u128::from_str_radix(digits, radix).ok()?;
    let n = if negative { -(n as i128) } else { n as i128 };
    let max = if negative {
        i64::MAX.into()
    } else {
        u64::MAX.into()
    };
    (i128::from(i64::MIN)..=max).contains(&n).then_some(n)
}

/// Go's `strconv.ParseFloat` for go-yaml's float syntax: out of range is an error there
/// (the text stays a string), not an infinity.
fn go_parse_float(s: &str) -> Option<f64> {
    if !is_go_yaml_float(s) {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_go_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && (fraction.is_empty() || digits(fraction)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Value {
        load(text).unwrap().value.unwrap()
    }

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v2() {
        let v = read(
            "a: 0755\nb: on\nc: 12:30:00\nd: 1_000\ne: 2001-12-14\nf: 1.0\ng: 08\nh: 1e3\n\
             i: 0x1F\nj: 18446744073709551615\nk: !!str 12\nl: .5\nm: 1:20\nnn: ~\no: N\n\
             p: -0b101\nq: '0755'\nr: 0o17\ns: +12\nt: 1.5\nu: 123456789.0\n",
        );
        assert_eq!(
            v,
            json!({"a": 493, "b": true, "c": "12:30:00", "d": 1000, "e": "2001-12-14", "f": 1,
                   "g": 8, "h": 1000, "i": 31, "j": 18446744073709552000.0, "k": "12", "l": 0.5,
                   "m": "1:20", "nn": null, "o": false, "p": -5, "q": "0755", "r": 15, "s": 12,
                   "t": 1.5, "u": 123456789})
        );
    }

    #[test]
    fn keys_become_json_strings_like_sigs_yaml() {
        assert_eq!(
            read("y: 1\nn: 2\n10: 3\n1.5: 4\n"),
            json!({"true": 1, "false": 2, "10": 3, "1.5": 4})
        );
        assert_eq!(go_format_float32(1e6), "1e+06");
        assert_eq!(go_format_float32(100000.0), "100000");
        let err = load("a: 1\n~: 2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("null mapping key"), "{err:?}");
    }

    #[test]
    fn infinity_and_nan_are_refused_without_quoting() {
        for v in [".inf", "-.Inf", ".nan"] {
            let err = load(&format!("a: 1\nb: {v}\n")).unwrap_err();
            assert_eq!(err.line, 2);
            assert!(!err.message.contains(v), "{err:?}");
        }
        assert_eq!(read("a: '.inf'\n"), json!({"a": ".inf"}));
    }

    #[test]
    fn merge_keys_anchors_and_aliases() {
        let v = read(
            "base: &b {x: 1, w: 2}\nother: &o {w: 3, z: 4}\n\
             m: {<<: [*b, *o], x: 9}\nk:\n  x: 0\n  <<: *b\ns: *b\nq: {'<<': 1}\n",
        );
        assert_eq!(v["m"], json!({"x": 9, "w": 2, "z": 4}));
        // go-yaml v2 writes a merge over the keys before it.
        assert_eq!(v["k"], json!({"x": 1, "w": 2}));
        assert_eq!(v["s"], json!({"x": 1, "w": 2}));
        assert_eq!(v["q"], json!({"<<": 1}));
    }

    #[test]
    fn repeated_keys_keep_the_last_value_and_are_noted_at_their_line() {
        let loaded = load("a: 1\nb:\n  c: {x: 1}\n  d: [1, 2]\n  c: {z: 2}\na: 3\n").unwrap();
        assert_eq!(
            loaded.value,
            Some(json!({"a": 3, "b": {"c": {"z": 2}, "d": [1, 2]}}))
        );
        let at = |line, key: &str| RepeatedKey {
            line,
            key: key.into(),
        };
        assert_eq!(loaded.repeated, [at(5, "c"), at(6, "a")]);
        // Overriding what a merge brought is not a repetition.
        let merged = load("b: &b {x: 1}\nm: {<<: *b, x: 2}\n").unwrap();
        assert_eq!(merged.value.unwrap()["m"], json!({"x": 2}));
        assert!(merged.repeated.is_empty());
    }

    #[test]
    fn flow_style_and_json() {
        assert_eq!(
            read("{apiVersion: v1, kind: ResourceQuota, spec: {hard: {pods: 10}}}"),
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": {"pods": 10}}})
        );
        assert_eq!(
            read("{\"a\": [1, 2.5, true, null, \"on\"]}"),
            json!({"a": [1, 2.5, true, null, "on"]})
        );
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = load(&deep).unwrap_err();
        assert!(err.message.contains("deeper than"), "{err:?}");
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(load(&fine).is_ok());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = load(&text).unwrap_err();
        assert!(err.message.contains("excessive aliasing"), "{err:?}");
    }

    #[test]
    fn a_long_string_repeated_by_aliases_is_refused() {
        // Few nodes, but 100 kB times 1,000 aliases: 100 MB from a 104 kB document.
        let long = "x".repeat(100_000);
        let aliases = vec!["*s"; 1_000].join(", ");
        let err = load(&format!(
            "s: &s {long}
l: [{aliases}]
"
        ))
        .unwrap_err();
        assert!(err.message.contains("excessive aliasing"), "{err:?}");
        assert_eq!(err.line, 2);
        // Anchors used as they are meant to be stay fine, and so does a large document.
        let v = read(&format!(
            "s: &s {long}
l: [*s, *s, *s, *s, *s]
"
        ));
        assert_eq!(v["l"][4].as_str().map(str::len), Some(100_000));
        assert!((allowed_alias_share(LARGE_DOCUMENT_BYTES) - MIN_ALIAS_SHARE).abs() < 1e-9);
        assert!(allowed_alias_share(SMALL_DOCUMENT_BYTES + 1) > 0.98);
    }

    #[test]
    fn a_tag_the_value_does_not_fit_is_refused_naming_the_key() {
        for (tag, value) in [
            ("int", "abc"),
            ("bool", "abc"),
            ("float", "x1"),
            ("null", "abc"),
            ("timestamp", "abc"),
            ("timestamp", "2001-12-14T21:59:43"),
            ("timestamp", "2001-13-01"),
        ] {
            let err = load(&format!(
                "a: 1
PW: !!{tag} {value}
"
            ))
            .unwrap_err();
            assert_eq!(err.line, 2, "{tag} {value}");
            assert_eq!(
                err.message,
                format!("key \"PW\": a scalar tagged !!{tag} is not a valid {tag}")
            );
        }
        let v = read(
            "a: !!int \"12\"\nb: !!float 12\nc: !!timestamp 2001-12-14T21:59:43Z\n\
             d: !!timestamp 2001-2-3\ne: !!timestamp 2001-12-14t21:59:43.5+01:00\nf: !!foo x\n",
        );
        assert_eq!(
            v,
            json!({"a": 12, "b": 12, "c": "2001-12-14T21:59:43Z", "d": "2001-2-3",
                   "e": "2001-12-14t21:59:43.5+01:00", "f": "x"})
        );
    }

    #[test]
    fn finds_the_line_of_a_value() {
        let text = "a: 1\nb:\n  c: [x, y]\n  d: on\n";
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(line_of(text, &path(&["b", "d"])), Some(4));
        assert_eq!(line_of(text, &path(&["b", "c", "1"])), Some(3));
        assert_eq!(line_of(text, &path(&["b", "e"])), None);
    }

    #[test]
    fn empty_documents_are_none() {
        for text in ["# only a comment\n", "", "null\n"] {
            assert_eq!(load(text).unwrap().value, None);
        }
    }
}

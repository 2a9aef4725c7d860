//! Plain scalars that Kubernetes reads as something else than we do.
//!
//! kubectl and the API server read YAML with go-yaml v2 (behind sigs.k8s.io/yaml), a
//! YAML 1.1 resolver: unquoted `on`, `yes`, `n`, `0755`, `1_000`, `<<` are bools, octal
//! and underscored ints, merge keys. serde_yaml (YAML 1.2) reads the same text as
//! strings or other numbers, so a tool reading the stream with it would send the API
//! server other data than `kubectl apply` sends. The quoting style that decides this is
//! not visible in a parsed value, so the check walks parser events (granit-parser, the
//! parser behind kube's own serde-saphyr), which keep the style and position of every
//! scalar.

use granit_parser::{Event, Parser, ScalarStyle};
use std::collections::HashSet;

/// A plain scalar whose reading differs, with its 1-based line in the checked text.
#[derive(Debug, Clone, PartialEq)]
pub struct Ambiguous {
    pub line: usize,
    pub text: String,
    /// The mapping key whose value it is (`None` for a key or a list item), so that a
    /// message can say where without quoting the value.
    pub key: Option<String>,
    /// Whether it is itself a mapping key (which messages may name).
    pub is_key: bool,
    /// How Kubernetes reads it, for the message: "the boolean true".
    pub kubernetes_reads: String,
    /// The same without the value ("a boolean"), for values that must stay unsaid:
    /// "the number 25068" would give away an unquoted `0060754`.
    pub kubernetes_reads_kind: String,
    /// How serde_yaml reads it: "a string", mostly.
    pub yaml12_reads: String,
}

/// The first plain, untagged scalar of `text` that Kubernetes' YAML 1.1 reader resolves
/// differently from serde_yaml; an error when the text is not YAML.
pub fn first_ambiguous(text: &str) -> Result<Option<Ambiguous>, String> {
    // Per open collection: `Some(last key)` for a mapping, whether a key comes next.
    let mut stack: Vec<(bool, Option<String>, bool)> = Vec::new();
    fn node_done(stack: &mut [(bool, Option<String>, bool)]) {
        if let Some((true, _, key_next)) = stack.last_mut() {
            *key_next = !*key_next;
        }
    }
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| e.to_string())?;
        match event {
            Event::MappingStart(..) => stack.push((true, None, true)),
            Event::SequenceStart(..) => stack.push((false, None, false)),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            Event::Alias(_) => node_done(&mut stack),
            Event::Scalar(value, style, _, tag) => {
                let key = match stack.last() {
                    Some((true, key, false)) => key.clone(),
                    _ => None,
                };
                let is_key = matches!(stack.last(), Some((true, _, true)));
                if style == ScalarStyle::Plain && tag.is_none() {
                    let (kubernetes, here) = (yaml11(&value), yaml12(&value));
                    if kubernetes != here {
                        return Ok(Some(Ambiguous {
                            line: span.start.line(),
                            text: value.into_owned(),
                            key,
                            is_key,
                            kubernetes_reads: kubernetes.describe(),
                            kubernetes_reads_kind: kubernetes.kind(),
                            yaml12_reads: here.describe(),
                        }));
                    }
                }
                if let Some((true, last, true)) = stack.last_mut() {
                    *last = Some(value.into_owned());
                }
                node_done(&mut stack);
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The 1-based line of the first mapping key that repeats an earlier key of its mapping
/// (compared as written, which is how serde_yaml compares scalar keys too).
pub fn repeated_key_line(text: &str) -> Option<usize> {
    /// An open collection: for a mapping, its keys so far and whether a key comes next.
    enum Open {
        Sequence,
        Mapping {
            keys: HashSet<String>,
            key_next: bool,
        },
    }
    /// A node ended inside the innermost collection: a mapping alternates key, value.
    fn node_done(stack: &mut [Open]) {
        if let Some(Open::Mapping { key_next, .. }) = stack.last_mut() {
            *key_next = !*key_next;
        }
    }
    let mut stack = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        match event {
            Event::MappingStart(..) => stack.push(Open::Mapping {
                keys: HashSet::new(),
                key_next: true,
            }),
            Event::SequenceStart(..) => stack.push(Open::Sequence),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            Event::Scalar(value, ..) => {
                if let Some(Open::Mapping {
                    keys,
                    key_next: true,
                }) = stack.last_mut()
                    && !keys.insert(value.into_owned())
                {
                    return Some(span.start.line());
                }
                node_done(&mut stack);
            }
            Event::Alias(_) => node_done(&mut stack),
            _ => {}
        }
    }
    None
}

/// What a plain scalar resolves to.
#[derive(Debug, Clone, Copy)]
enum Reading {
    Str,
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// YAML 1.1 base-60 numbers (`12:30:00`); go-yaml leaves them strings, but PyYAML
    /// and other YAML 1.1 tools do not, so they are as ambiguous as the rest.
    Sexagesimal,
    /// `<<`, go-yaml's merge key.
    Merge,
}

impl PartialEq for Reading {
    fn eq(&self, other: &Self) -> bool {
        use Reading::*;
        match (self, other) {
            (Str, Str) | (Null, Null) | (Merge, Merge) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => false,
        }
    }
}

impl Reading {
    fn describe(self) -> String {
        match self {
            Reading::Str => "a string".into(),
            Reading::Null => "null".into(),
            Reading::Bool(b) => format!("the boolean {b}"),
            Reading::Int(i) => format!("the number {i}"),
            Reading::Float(f) => format!("the number {f}"),
            Reading::Sexagesimal => "a base-60 number".into(),
            Reading::Merge => "a merge key".into(),
        }
    }

    fn kind(self) -> String {
        match self {
            Reading::Bool(_) => "a boolean".into(),
            Reading::Int(_) | Reading::Float(_) => "a number".into(),
            other => other.describe(),
        }
    }
}

/// go-yaml v2's `resolve()` for an untagged plain scalar, as decoded into `interface{}`
/// (timestamps stay strings there), plus YAML 1.1's base-60 numbers.
fn yaml11(s: &str) -> Reading {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Reading::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Reading::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Reading::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Reading::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Reading::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Reading::Float(f64::NAN),
        "<<" => return Reading::Merge,
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => s.parse().map_or(Reading::Str, Reading::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            let plain = s.replace('_', "");
            if let Some(int) = go_parse_int(&plain) {
                Reading::Int(int)
            } else if is_go_yaml_float(&plain) {
                plain.parse().map_or(Reading::Str, Reading::Float)
            } else if is_sexagesimal(s) {
                Reading::Sexagesimal
            } else {
                Reading::Str
            }
        }
        _ => Reading::Str,
    }
}

/// serde_yaml 0.9's reading of an untagged plain scalar (YAML 1.2 core schema).
fn yaml12(s: &str) -> Reading {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Reading::Null,
        "true" | "True" | "TRUE" => return Reading::Bool(true),
        "false" | "False" | "FALSE" => return Reading::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Reading::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Reading::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Reading::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = serde_yaml_int(s) {
        return Reading::Int(int);
    }
    let unpositive = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('+') && unpositive.starts_with(['+', '-']) || has_leading_zero(s) {
        return Reading::Str;
    }
    match unpositive.parse::<f64>() {
        Ok(f) if f.is_finite() => Reading::Float(f),
        _ => Reading::Str,
    }
}

/// serde_yaml's ints: decimal without leading zeros, or `0x`, `0o`, `0b` after a sign.
fn serde_yaml_int(s: &str) -> Option<i128> {
    let negative = s.starts_with('-');
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (digits, radix) = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find_map(|(prefix, radix)| Some((unsigned.strip_prefix(prefix)?, radix)))
        .unwrap_or((unsigned, 10));
    if digits.starts_with(['+', '-']) || radix == 10 && has_leading_zero(s) {
        return None;
    }
    let n = i128::try_from(u128::from_str_radix(digits, radix).ok()?).ok()?;
    Some(if negative { -n } else { n })
}

/// YAML 1.2 reads `0755` as a string, not as a number with a leading zero.
fn has_leading_zero(s: &str) -> bool {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    unsigned.len() > 1
        && unsigned.starts_with('0')
        && unsigned[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint` as go-yaml does:
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

/// YAML 1.1 base-60 int or float: `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`.
fn is_sexagesimal(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return false;
    }
    let mut parts = whole.split(':');
    let head = parts.next().unwrap_or_default();
    let head_ok = head.starts_with(|c: char| c.is_ascii_digit())
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mut sixties = parts.peekable();
    let has_sixties = sixties.peek().is_some();
    head_ok
        && has_sixties
        && sixties.all(|p| {
            matches!(p.as_bytes(), [d] if d.is_ascii_digit())
                || matches!(p.as_bytes(), [t @ b'0'..=b'5', d] if t.is_ascii_digit() && d.is_ascii_digit())
        })
}

/// The decimal numbers a reader may make of `text`, as a server echoes them back:
/// `0x5EC12E7` is 99357415, `0060754` is 25068 to YAML 1.1 and 60754 to others,
/// `1_000` is 1000. For masking secret values in every form they come back in.
pub fn number_forms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if text.is_empty() {
        return out;
    }
    for reading in [yaml11(text), yaml12(text)] {
        match reading {
            Reading::Int(i) => out.push(i.to_string()),
            Reading::Float(f) if f.is_finite() => out.push(f.to_string()),
            _ => {}
        }
    }
    if let Ok(i) = text.replace('_', "").parse::<i128>() {
        out.push(i.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ambiguous(s: &str) -> bool {
        yaml11(s) != yaml12(s)
    }

    /// Plain values that Kubernetes and serde_yaml read differently.
    const AMBIGUOUS: &[&str] = &[
        "on",
        "On",
        "ON",
        "off",
        "yes",
        "Yes",
        "no",
        "NO",
        "y",
        "Y",
        "n",
        "N",
        "0755",
        "-010",
        "08",
        "1_000",
        "0x_1F",
        "12:30:00",
        "-1:30",
        "190:20:30.15",
        "<<",
    ];

    /// Plain values that both read alike (strings, or the same bool, null or number).
    const AGREED: &[&str] = &[
        "true",
        "False",
        "null",
        "~",
        "",
        "0",
        "-0",
        "+1",
        "42",
        "-17",
        "0x1F",
        "-0x1F",
        "+0o17",
        "0o17",
        "0b101",
        "1.5",
        ".5",
        "1.",
        "1e3",
        "-1.5E+3",
        ".inf",
        "-.Inf",
        ".nan",
        "polls",
        "nginx",
        "inf",
        "nan",
        "2001-12-14",
        "1.2.3",
        "v1",
        "a:b",
        "12:60",
        "0.0.0.0",
        "+-1",
        "-1-",
        "0x",
        "+",
        ".",
        "1e",
    ];

    #[test]
    fn words_and_numbers_kubernetes_reads_otherwise_are_ambiguous() {
        for s in AMBIGUOUS {
            assert!(ambiguous(s), "{s} should be ambiguous");
        }
    }

    #[test]
    fn values_both_readers_agree_on_pass() {
        for s in AGREED.iter().chain(["18446744073709551615", "-"].iter()) {
            assert!(
                !ambiguous(s),
                "{s}: 1.1 {:?} vs 1.2 {:?}",
                yaml11(s),
                yaml12(s)
            );
        }
    }

    /// The 1.2 side is our model of serde_yaml: hold it to the real thing.
    #[test]
    fn the_yaml12_reading_is_serde_yamls() {
        // (`-` alone and integers past u64 cannot stand as `k: VALUE` for serde_yaml.)
        for s in AMBIGUOUS.iter().chain(AGREED) {
            let expected = match serde_yaml::from_str::<serde_yaml::Value>(&format!("k: {s}"))
                .unwrap()["k"]
                .clone()
            {
                serde_yaml::Value::Null => Reading::Null,
                serde_yaml::Value::Bool(b) => Reading::Bool(b),
                serde_yaml::Value::Number(n) if n.is_f64() => Reading::Float(n.as_f64().unwrap()),
                serde_yaml::Value::Number(n) => Reading::Int(n.to_string().parse().unwrap()),
                _ => Reading::Str,
            };
            assert_eq!(yaml12(s), expected, "{s}");
        }
    }

    #[test]
    fn finds_the_line_of_a_repeated_key() {
        assert_eq!(
            repeated_key_line("a: 1\nb:\n  c: 1\n  d: [1, 2]\n  c: 2\n"),
            Some(5)
        );
        assert_eq!(
            repeated_key_line("a: {b: 1}\nc: [{b: 1}, {b: 2}]\nb: 3\n"),
            None
        );
        assert_eq!(repeated_key_line("a: 1\nb: 2\na: 3\n"), Some(3));
    }

    #[test]
    fn finds_the_first_plain_ambiguous_scalar_with_its_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  A: 'on'\n  B: \"0755\"\n  C: !!str yes\n  D: yes\n";
        let found = first_ambiguous(text).unwrap().unwrap();
        assert_eq!((found.line, found.text.as_str()), (7, "yes"));
        assert_eq!(found.kubernetes_reads, "the boolean true");
        assert_eq!(found.yaml12_reads, "a string");
        assert_eq!(first_ambiguous("a: 'on'\nb: |\n  on\n").unwrap(), None);
        let key = first_ambiguous("data:\n  on: x\n").unwrap().unwrap();
        assert_eq!((key.line, key.text.as_str()), (2, "on"));
    }
}

//! Reading env files, the one parser behind `envsplit` and `secretgen --from-env-file`.
//!
//! Two formats, because two tools read "env files" differently:
//! - [`Format::Dotenv`]: dotenv rules as the `dotenvy` crate implements them (quotes,
//!   escapes, `export `, comments, multi-line quoted values). dotenvy produces every
//!   value; this module adds what it lacks: line numbers, duplicate keys, and refusing a
//!   `$` that dotenv would silently expand.
//! - [`Format::Docker`]: what `docker run --env-file` and `kubectl create ... --from-env-file`
//!   do: one `KEY=value` per line, the value taken literally, a bare `KEY` read from the
//!   environment.
//!
//! Every problem is an [`Error::Input`] reading `FILE:LINE: reason`. No message ever
//! contains a value: a value may be a password.

use crate::error::{Error, Result};
use crate::object::{config_key_error, is_env_var_name};
use crate::stream::{read_source, source_name};
use std::collections::HashMap;

/// The env file dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// dotenv rules (dotenvy): quotes, escapes, `export`, comments, multi-line values.
    #[default]
    Dotenv,
    /// `docker run --env-file` / `kubectl --from-env-file`: values taken literally.
    Docker,
}

/// How to read an env file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub format: Format,
    /// dotenv only: expand `$VAR` / `${VAR}` as dotenvy does instead of refusing them.
    pub expand: bool,
}

/// One `KEY=value` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line where the entry starts.
    pub line: usize,
}

/// The entries of an env file, in file order, and what the reader should be warned about.
#[derive(Debug, Default)]
pub struct EnvFile {
    pub entries: Vec<Entry>,
    /// `FILE:LINE: warning: ...` lines, without the tool's prefix.
    pub warnings: Vec<String>,
}

/// Go's bufio.Scanner, which kubectl reads env files with, silently stops at a line this
/// long or longer and drops the rest of the file; we refuse such a line instead.
const DOCKER_MAX_LINE: usize = 64 * 1024;

/// Reads and parses an env file (`-` for stdin).
pub fn read(path: &str, options: Options) -> Result<EnvFile> {
    let text = read_source(path)?;
    parse(&source_name(path), &text, options)
}

/// Parses env file text (a BOM already removed) named `source` in messages.
pub fn parse(source: &str, text: &str, options: Options) -> Result<EnvFile> {
    if let Some(at) = text.find('\0') {
        return Err(Error::at(source, line_of(text, at), "NUL byte in the file"));
    }
    let mut problems = Problems::default();
    let mut file = match options.format {
        Format::Dotenv => parse_dotenv(source, text, options.expand, &mut problems)?,
        Format::Docker => parse_docker(source, text, &mut problems),
    };
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for entry in &file.entries {
        // Key names are the file's public half (kubectl describe shows them): messages
        // print them whole, even where one contains a secret value.
        if looks_like_a_key(&entry.key) {
            crate::redact::learn_printed_whole(&entry.key);
        }
        if let Some(why) = config_key_error(&entry.key) {
            problems.add::<()>(Err(Error::at(
                source,
                entry.line,
                format!("invalid key{}: {why}", shown_key(&entry.key)),
            )));
            continue;
        }
        if let Some(first) = first_line.insert(&entry.key, entry.line) {
            problems.add::<()>(Err(Error::at(
                source,
                entry.line,
                format!("duplicate key {} (first set on line {first})", entry.key),
            )));
            continue;
        }
        if !is_env_var_name(&entry.key) {
            file.warnings.push(format!(
                "{source}:{}: warning: key{} is a valid ConfigMap/Secret key but not a shell \
                 variable name: the app may not see it through envFrom",
                entry.line,
                shown_key(&entry.key)
            ));
        }
    }
    problems.into_result()?;
    Ok(file)
}

/// Every bad line of a file, reported in one run (the first [`MAX_PROBLEMS`]), so that
/// fixing a file does not take one run per line.
#[derive(Default)]
struct Problems(Vec<String>);

const MAX_PROBLEMS: usize = 20;

impl Problems {
    /// Keeps the value of a line's check, or notes its error.
    fn add<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.0.push(e.to_string());
                None
            }
        }
    }

    fn into_result(mut self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        // Entries are checked after the lines: report in file order.
        self.0.sort_by_key(|m| {
            m.split(':')
                .nth(1)
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(0)
        });
        let more = self.0.len().saturating_sub(MAX_PROBLEMS);
        self.0.truncate(MAX_PROBLEMS);
        if more > 0 {
            self.0.push(format!("... and {more} more bad lines"));
        }
        Err(Error::Input(self.0.join("\n")))
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_docker(source: &str, text: &str, problems: &mut Problems) -> EnvFile {
    let mut file = EnvFile::default();
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    for (index, raw) in lines.into_iter().enumerate() {
        let line = index + 1;
        if raw.len() >= DOCKER_MAX_LINE {
            problems.add::<()>(Err(Error::at(
                source,
                line,
                "line is 64 KiB or longer: kubectl and docker cannot read it \
                 (kubectl silently drops the rest of the file)",
            )));
            continue;
        }
        let content = raw.strip_suffix('\r').unwrap_or(raw).trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let (key, value) = match content.split_once('=') {
            Some((key, value)) => {
                if problems
                    .add(check_docker_key(source, line, key, true))
                    .is_none()
                {
                    continue;
                }
                (key, value.to_owned())
            }
            None => {
                // A line without '=' could be a pasted value: only show it once it is a key.
                if problems
                    .add(check_docker_key(source, line, content, false))
                    .is_none()
                {
                    continue;
                }
                let value = std::env::var(content).unwrap_or_else(|_| {
                    let shown = match shown_key(content).as_str() {
                        "" => " a line without '='".to_owned(),
                        key => key.to_owned(),
                    };
                    file.warnings.push(format!(
                        "{source}:{line}: warning:{shown} is not set in the environment: \
                         its value is empty (as with kubectl; docker would leave it out)"
                    ));
                    String::new()
                });
                (content, value)
            }
        };
        file.entries.push(Entry {
            key: key.to_owned(),
            value,
            line,
        });
    }
    file
}

/// kubectl's `validation.IsEnvVarName`; `key` is what comes before the line's '=', or
/// the whole line when `has_equals` is false.
fn check_docker_key(source: &str, line: usize, key: &str, has_equals: bool) -> Result<()> {
    if is_docker_key(key) && key != "." && key != ".." {
        return Ok(());
    }
    if key == "." || key == ".." {
        return Err(Error::at(
            source,
            line,
            format!("invalid key \"{key}\": must not be '.' or '..'"),
        ));
    }
    let what = if let Some(word) = key.strip_suffix([' ', '\t']).map(str::trim_end)
        && has_equals
        && is_docker_key(word)
        && looks_like_a_key(word)
    {
        // `KEY =value`: the key is whole and valid, only the blank is wrong.
        format!("invalid key (\"{word}\" followed by a space): no spaces around '='")
    } else if let Some(word) = key.strip_prefix("export ").map(str::trim_start)
        && is_docker_key(word)
        && looks_like_a_key(word)
    {
        format!(
            "invalid key (\"export {word}\"): `export` is dotenv syntax, which kubectl and \
             docker do not read: drop it, or read the file with --format dotenv"
        )
    } else if has_equals {
        not_a_key_line(key, KeyRules::Docker)
    } else {
        "not a KEY=VALUE line: no '=', and not a variable name alone either (letters, \
         digits, '_', '-' or '.', not starting with a digit); the line is not shown, it may \
         be a value"
            .to_owned()
    };
    Err(Error::at(source, line, what))
}

fn is_docker_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

/// Which key grammar a message explains.
#[derive(Clone, Copy, PartialEq)]
enum KeyRules {
    Dotenv,
    Docker,
}

/// `not a KEY=VALUE line: ...` for a line whose text before '=' (`before`) is not a key:
/// what is wrong, by kind, and never any part of the line. A pasted value (a PEM block,
/// a base64 line ending in `=` padding, a password after a space instead of '=') reads
/// as a key up to its first odd character, so no prefix of it is safe to show.
fn not_a_key_line(before: &str, rules: KeyRules) -> String {
    let grammar = match rules {
        KeyRules::Dotenv => "letters, digits, '_' and '.', not starting with a digit",
        KeyRules::Docker => "letters, digits, '_', '-' or '.', not starting with a digit",
    };
    let what = if before.trim().is_empty() {
        "nothing before '='".to_owned()
    } else if rules == KeyRules::Dotenv && is_docker_key(before) {
        "a dotenv key has no '-' (use --format docker for keys with '-')".to_owned()
    } else if before.starts_with(|c: char| c.is_ascii_digit()) {
        format!("the text before '=' starts with a digit (a key is {grammar})")
    } else if before.contains([' ', '\t']) {
        format!("the text before '=' has a space (a key is {grammar})")
    } else {
        format!("the text before '=' has a character a key cannot have (a key is {grammar})")
    };
    format!("not a KEY=VALUE line: {what}; the line is not shown, it may be a value")
}

/// One logical line of a dotenv file: a physical line, or several when a quoted value
/// spans lines.
struct Logical<'a> {
    line: usize,
    text: &'a str,
}

fn parse_dotenv(
    source: &str,
    text: &str,
    expand: bool,
    problems: &mut Problems,
) -> Result<EnvFile> {
    let mut file = EnvFile::default();
    for logical in logical_lines(source, text)? {
        let checked = check_dotenv_line(source, logical.line, logical.text, expand);
        let Some(Some(key)) = problems.add(checked) else {
            continue;
        };
        // Read alone, a line can only expand from the environment: with --expand this
        // pass just finds the line of a syntax error, and the values come from below.
        let Some(value) = problems.add(dotenvy_value(source, &logical, &key)) else {
            continue;
        };
        file.entries.push(Entry {
            key,
            value,
            line: logical.line,
        });
    }
    if expand && !problems.0.is_empty() {
        return Ok(file);
    }
    if expand {
        // Expansion sees earlier keys of the same file, so dotenvy reads it whole.
        let whole = format!("{text}\n");
        let values: Vec<(String, String)> = dotenvy::from_read_iter(whole.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| Error::runtime(format!("{source}: internal error: dotenvy failed")))?;
        if values.len() != file.entries.len()
            || values
                .iter()
                .zip(&file.entries)
                .any(|((k, _), e)| *k != e.key)
        {
            return Err(Error::runtime(format!(
                "{source}: internal error: dotenvy read the file differently from envfile"
            )));
        }
        for (entry, (_, value)) in file.entries.iter_mut().zip(values) {
            entry.value = value;
        }
    }
    Ok(file)
}

/// Where dotenvy's reader splits the file (its `QuotedLines`): a line ends at a newline
/// outside quotes, or at a `#` comment after whitespace.
fn logical_lines<'a>(source: &str, text: &'a str) -> Result<Vec<Logical<'a>>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Complete,
        WhiteSpace,
        Escape,
        Strong,
        StrongEscape,
        Weak,
        WeakEscape,
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut state = State::Complete;
    let mut offset = 0;
    for (n, physical) in text.split_inclusive('\n').enumerate() {
        let begins = offset == start;
        offset += physical.len();
        if begins && physical.trim_start().starts_with('#') {
            start = offset;
            start_line = n + 2;
            continue;
        }
        let mut comment_at = None;
        for (i, c) in physical.char_indices() {
            state = match state {
                State::WhiteSpace if c == '#' => {
                    comment_at = Some(i);
                    break;
                }
                State::WhiteSpace | State::Complete => match c {
                    '\\' => State::Escape,
                    '"' => State::Weak,
                    '\'' => State::Strong,
                    c if state == State::Complete
                        && c.is_whitespace()
                        && c != '\n'
                        && c != '\r' =>
                    {
                        State::WhiteSpace
                    }
                    _ => State::Complete,
                },
                State::Escape => State::Complete,
                State::Weak => match c {
                    '\\' => State::WeakEscape,
                    '"' => State::Complete,
                    _ => State::Weak,
                },
                State::WeakEscape => State::Weak,
                State::Strong => match c {
                    '\\' => State::StrongEscape,
                    '\'' => State::Complete,
                    _ => State::Strong,
                },
                State::StrongEscape => State::Strong,
            };
        }
        let end = match comment_at {
            Some(i) => offset - physical.len() + i,
            // WhiteSpace or Escape only remain at the end of a file without a final
            // newline, where dotenvy fails; a missing newline should not change the file.
            None if matches!(state, State::Complete | State::WhiteSpace | State::Escape) => offset,
            None => continue,
        };
        out.push(Logical {
            line: start_line,
            text: &text[start..end],
        });
        start = offset;
        start_line = n + 2;
        state = State::Complete;
    }
    if start < text.len() {
        if matches!(
            state,
            State::Weak | State::WeakEscape | State::Strong | State::StrongEscape
        ) {
            let key = key_before_equals(&text[start..]);
            return Err(Error::at(
                source,
                start_line,
                format!("{key}unterminated quote"),
            ));
        }
        out.push(Logical {
            line: start_line,
            text: &text[start..],
        });
    }
    Ok(out)
}

/// ` "KEY"` for a message, when `key` reads as a key: a line that is not one may be a
/// pasted value (a PEM block, a password after a space instead of '='), never shown.
fn shown_key(key: &str) -> String {
    if looks_like_a_key(key) {
        format!(" \"{key}\"")
    } else {
        String::new()
    }
}

/// Whether `text` has the shape of an env var or config key rather than of data:
/// short, and not the mixed-case run of letters and digits of base64 or a token.
fn looks_like_a_key(text: &str) -> bool {
    // A leading digit makes an invalid key, and is how a number (a PIN) starts.
    let shaped = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let has = |f: fn(&char) -> bool| text.chars().any(|c| f(&c));
    let data_like = text.len() >= 16
        && !has(|c| matches!(c, '_' | '-' | '.'))
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_uppercase)
        && has(char::is_ascii_digit);
    shaped && !data_like
}

/// `KEY: ` when the text starts with a plausible key and '=', for messages.
fn key_before_equals(text: &str) -> String {
    let text = text.trim_start();
    let text = text.strip_prefix("export ").map_or(text, str::trim_start);
    match text.split_once('=') {
        Some((key, _)) if is_dotenv_key(key.trim_end()) => format!("{}: ", key.trim_end()),
        _ => String::new(),
    }
}

fn is_dotenv_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The line's key, or `None` for a blank or comment line; an error says what dotenvy
/// would reject (or silently change) and how to fix it, never showing the value.
fn check_dotenv_line(
    source: &str,
    line: usize,
    text: &str,
    expand: bool,
) -> Result<Option<String>> {
    let fail = |what: String| Err(Error::at(source, line, what));
    let rest = text.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let Some((before, value)) = rest.split_once('=') else {
        return fail("missing '=' (a line must read KEY=value)".into());
    };
    let before = before.trim_end();
    let key = match before.strip_prefix("export") {
        Some(k) if k.starts_with(char::is_whitespace) => k.trim_start(),
        _ => before,
    };
    if !is_dotenv_key(key) {
        return fail(not_a_key_line(key, KeyRules::Dotenv));
    }
    let value = value.trim_start();
    if value.is_empty() || value.starts_with('#') {
        return Ok(Some(key.to_owned()));
    }
    // dotenvy's value grammar, to explain its errors and find `$` before it expands them.
    let (mut strong, mut weak, mut escaped, mut ended) = (false, false, false, false);
    for c in value.chars() {
        if ended {
            match c {
                ' ' | '\t' => continue,
                '#' => break,
                _ => {
                    return fail(format!(
                        "{key}: unquoted value contains a space: quote the value, or read the \
                         file as docker and kubectl do with --format docker"
                    ));
                }
            }
        } else if escaped {
            if !matches!(c, '\\' | '\'' | '"' | '$' | ' ' | 'n') {
                return fail(format!(
                    "{key}: unsupported escape sequence (dotenv knows \\n \\\\ \\' \\\" \\$ and \
                     \\ followed by a space; use single quotes or --format docker for a literal \
                     backslash)"
                ));
            }
            escaped = false;
        } else if strong {
            strong = c != '\'';
        } else if c == '$' {
            if expand {
                return Ok(Some(key.to_owned()));
            }
            return fail(format!(
                "{key}: '$' would be expanded by dotenv rules, changing the value: keep it \
                 literal with single quotes (KEY='...') or \\$, or use --format docker; pass \
                 --expand to expand it"
            ));
        } else if weak {
            match c {
                '"' => weak = false,
                '\\' => escaped = true,
                _ => {}
            }
        } else {
            match c {
                '\'' => strong = true,
                '"' => weak = true,
                '\\' => escaped = true,
                ' ' | '\t' => ended = true,
                _ => {}
            }
        }
    }
    if strong || weak {
        return fail(format!("{key}: unterminated quote"));
    }
    if escaped {
        return fail(format!(
            "{key}: value ends in a lone backslash, which dotenv would drop: write \\\\ or quote it"
        ));
    }
    Ok(Some(key.to_owned()))
}

/// The value as dotenvy reads this one logical line.
fn dotenvy_value(source: &str, logical: &Logical, key: &str) -> Result<String> {
    // dotenvy fails on a last line without a newline; the comment cut may have removed it.
    let text = format!("{}\n", logical.text);
    let mut items = dotenvy::from_read_iter(text.as_bytes());
    match (items.next(), items.next()) {
        (Some(Ok((k, value))), None) if k == key => Ok(value),
        _ => Err(Error::at(
            source,
            logical.line,
            format!("{key}: dotenv cannot parse this line"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dotenv(text: &str) -> Result<Vec<(String, String, usize)>> {
        let file = parse("env", text, Options::default())?;
        Ok(file
            .entries
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect())
    }

    fn err(text: &str, format: Format) -> String {
        parse(
            "env",
            text,
            Options {
                format,
                expand: false,
            },
        )
        .unwrap_err()
        .to_string()
    }

    fn kv(k: &str, v: &str, l: usize) -> (String, String, usize) {
        (k.into(), v.into(), l)
    }

    #[test]
    fn dotenv_quotes_escapes_export_comments_multiline() {
        let text = "# c\nA=1\nexport B='x y'\nC=\"l1\nl2\" # tail\n\nD=a\\ b\nE=\"q\\\"q\\n\"\nF=v #c\nG=\n";
        assert_eq!(
            dotenv(text).unwrap(),
            [
                kv("A", "1", 2),
                kv("B", "x y", 3),
                kv("C", "l1\nl2", 4),
                kv("D", "a b", 7),
                kv("E", "q\"q\n", 8),
                kv("F", "v", 9),
                kv("G", "", 10),
            ]
        );
    }

    #[test]
    fn dotenv_accepts_crlf_and_no_final_newline() {
        assert_eq!(
            dotenv("A=1\r\nB=2 ").unwrap(),
            [kv("A", "1", 1), kv("B", "2", 2)]
        );
    }

    #[test]
    fn dotenv_refuses_dollar_unless_single_quoted_or_escaped() {
        let e = err("X=1\nKEY=ab$cd\n", Format::Dotenv);
        assert!(e.starts_with("env:2: KEY: '$' would be expanded"), "{e}");
        assert!(!e.contains("ab$cd"));
        assert!(err("K=\"a$b\"", Format::Dotenv).contains("'$'"));
        assert_eq!(
            dotenv("K='a$b'\nL=a\\$b\n").unwrap(),
            [kv("K", "a$b", 1), kv("L", "a$b", 2)]
        );
        let bad = parse(
            "env",
            "A=1\nB=\"${A}\\t\"\n",
            Options {
                format: Format::Dotenv,
                expand: true,
            },
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("env:2: B: dotenv cannot parse this line")
        );
        let expanded = parse(
            "env",
            "A=x\nB=${A}y\n",
            Options {
                format: Format::Dotenv,
                expand: true,
            },
        );
        assert_eq!(expanded.unwrap().entries[1].value, "xy");
    }

    #[test]
    fn dotenv_errors_name_line_and_reason() {
        let dotenv_err = |t| err(t, Format::Dotenv);
        assert_eq!(
            dotenv_err("A=1\nnoequals\n"),
            "env:2: missing '=' (a line must read KEY=value)"
        );
        assert!(dotenv_err("1A=x").starts_with("env:1: not a KEY=VALUE line: "));
        assert!(dotenv_err("A=1\nB=\"open\nC=2\n").starts_with("env:2: B: unterminated quote"));
        assert!(dotenv_err("P=a b").contains("P: unquoted value contains a space"));
        assert!(dotenv_err("P=\"a\\tb\"").contains("unsupported escape"));
        assert!(dotenv_err("P=abc\\").contains("lone backslash"));
        assert_eq!(
            dotenv_err("A=1\nB=2\nA=3\n"),
            "env:3: duplicate key A (first set on line 1)"
        );
        assert_eq!(dotenv_err("A=1\nB=x\0y\n"), "env:2: NUL byte in the file");
    }

    /// Where dotenvy reads a whole file, our per-line reading gives the same pairs, and
    /// where dotenvy fails, so do we.
    #[test]
    fn agrees_with_dotenvy_reading_the_whole_file() {
        let inputs = [
            "A=1\nB=2\n",
            "  export   A = 'x y' \n#c\nB=\"multi\nline # not a comment\n\"\nC=v#no-comment\n",
            "A='it''s'\nB=\"a'b\"\nC='a\"b'\nD=\"\\\"\"\n",
            "A=\"x\" # c \"q\nB='l1\n#l2\nl3'\nC=2",
            "A=a\\ b\nB=\\'x\\'\nC=\"\\n\"\nD=é✓\n",
            "A=\nB= #\nC=   \nexport=e\n_x.y=1\n",
            "A=\"unterminated\nB=2\n",
            "A='unterminated\n",
            "A=a b\n",
            "A=\"\\t\"\n",
            "1A=x\n",
            "A\n",
            "A=x\r\nB=\"y\r\nz\"\r\n",
        ];
        let (mut both_read, mut both_failed) = (0, 0);
        for text in inputs {
            let theirs: Result<Vec<(String, String)>, _> =
                dotenvy::from_read_iter(format!("{text}\n").as_bytes()).collect();
            let ours = parse("env", text, Options::default());
            match (theirs, ours) {
                (Ok(theirs), Ok(ours)) => {
                    let ours: Vec<_> = ours.entries.into_iter().map(|e| (e.key, e.value)).collect();
                    assert_eq!(ours, theirs, "{text:?}");
                    both_read += 1;
                }
                (Err(_), Err(_)) => both_failed += 1,
                (theirs, ours) => panic!("{text:?}: dotenvy {theirs:?}, envfile {ours:?}"),
            }
        }
        assert_eq!((both_read, both_failed), (7, 6));
    }

    #[test]
    fn docker_takes_values_literally() {
        let file = parse(
            "env",
            "  A=\"q\" #c\r\nB= x \r\r\n#c\n\nC=a=b\nPATH\nd.e-f=1\n",
            Options {
                format: Format::Docker,
                expand: false,
            },
        )
        .unwrap();
        let got: Vec<_> = file
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            got,
            [
                ("A", "\"q\" #c", 1),
                ("B", " x \r", 2),
                ("C", "a=b", 5),
                ("PATH", path.as_str(), 6),
                ("d.e-f", "1", 7)
            ]
        );
        assert_eq!(file.warnings.len(), 1, "{:?}", file.warnings);
        assert!(file.warnings[0].starts_with("env:7: warning: key \"d.e-f\""));
    }

    #[test]
    fn invalid_lines_never_show_what_may_be_a_value() {
        // Case 4 of the leak hunt: a space instead of '=', a YAML-style line, a PEM block.
        for format in [Format::Dotenv, Format::Docker] {
            let e = err("API_TOKEN S3CR3Tzz==\n", format);
            assert!(
                e.starts_with("env:1: not a KEY=VALUE line: the text before '=' has a space"),
                "{e}"
            );
            assert!(!e.contains("API_TOKEN") && !e.contains("S3CR3T"), "{e}");
            let e = err("DATABASE_URL: postgres://u:PASSW0RD@h/db?ssl=on\n", format);
            assert!(e.starts_with("env:1: not a KEY=VALUE line"), "{e}");
            for piece in ["DATABASE", "PASSW0RD", "postgres"] {
                assert!(!e.contains(piece), "{e}");
            }
            let pem = "K=1\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
            let e = err(pem, format);
            assert!(e.starts_with("env:2: "), "{e}");
            assert!(!e.contains("BEGIN"), "{e}");
        }
        let file = parse(
            "env",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
            Options {
                format: Format::Docker,
                expand: false,
            },
        )
        .unwrap();
        assert!(!file.warnings[0].contains("MIIE"), "{:?}", file.warnings);
    }

    /// A pasted key or password printed no part of itself, not even the run of key
    /// characters before its first '+', '/', ':' or space (a PEM key in docker format
    /// showed seven such fragments).
    #[test]
    fn no_fragment_of_a_pasted_line_is_shown() {
        let pasted = [
            "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7Vd+Xs3/9kQzL",
            "nD0kR8fT2b/uW1mxYq7+Hc4gP5sZ0aVe6jLt/3oNwFbKi8r+Ul9yGdQh2cMpAeTn",
            "Pq4r/vLk8sXw2+Je0Ty7fNbM5hZc1/dUaG6oR3i+WQs9mEpV4lHxCjK2nBt7Ya==",
            "hunter2pass!word",
            "s3cr3t_v4lue zq9=xk7 qq",
            "p@ss:w0rd=",
        ];
        let text = format!("A=1\n{}\n", pasted.join("\n"));
        for format in [Format::Dotenv, Format::Docker] {
            let e = err(&text, format);
            assert_eq!(e.lines().count(), pasted.len(), "{e}");
            for line in pasted {
                let chars: Vec<char> = line.chars().collect();
                for piece in chars.windows(5) {
                    let piece: String = piece.iter().collect();
                    assert!(
                        !e.contains(&piece),
                        "{format:?}: {piece:?} of {line:?}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn docker_rejects_what_kubectl_rejects() {
        assert!(
            err("A =1", Format::Docker)
                .starts_with("env:1: invalid key (\"A\" followed by a space):")
        );
        assert!(
            err("export A=1", Format::Docker)
                .starts_with("env:1: invalid key (\"export A\"): `export` is dotenv syntax")
        );
        assert!(
            err("1A=1", Format::Docker).starts_with(
                "env:1: not a KEY=VALUE line: the text before '=' starts with a digit"
            )
        );
        assert!(
            err("my-key=1", Format::Dotenv)
                .contains("a dotenv key has no '-' (use --format docker")
        );
        assert!(err("..=1", Format::Docker).contains("must not be '.' or '..'"));
        assert!(err("A=1\nA=2", Format::Docker).contains("duplicate key A (first set on line 1)"));
        let long = format!("A={}\n", "x".repeat(DOCKER_MAX_LINE));
        assert!(err(&long, Format::Docker).contains("64 KiB"));
    }
}

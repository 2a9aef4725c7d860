//! envsplit: an env file in, a ConfigMap (plain settings) and a Secret (credentials) out.
//!
//! Each key goes to one side: the first `--config`/`--secret` glob that matches it, in
//! command-line order, then the first matching line of `--rules FILE`, then the default
//! split of [`credential`] (the value's shape, then what the key names). The Secret
//! carries its values in `stringData`; `secretgen` turns them into base64 `data`.

mod credential;

use clap::{Arg, ArgAction, ArgMatches, FromArgMatches, Parser};
use globset::{Glob, GlobMatcher};
use kpipe_core::envfile::{self, Entry, Format};
use kpipe_core::object::{MAX_OBJECT_BYTES, dns1123_label_error, dns1123_subdomain_error};
use kpipe_core::{Error, Result};
use serde_json::{Map, Value, json};
use std::fmt;
use std::io::IsTerminal;

const LONG_ABOUT: &str = "\
Reads an env file and writes a ConfigMap with the plain settings and a Secret (type Opaque,
values in stringData) with the credentials, as a YAML stream on stdout that begins with the
line `# kpipe stream: begin` and ends with `# kpipe stream: end` (comments to kubectl; the
next kpipe tool refuses a stream without its end line as cut off).

Which side a key goes to, first match wins:
  1. --config GLOB / --secret GLOB, in the order given on the command line
  2. --rules FILE: lines `secret GLOB` or `config GLOB`, `#` comments
  3. the default, first match wins:
     a. secret when the value is a URL with a password (user:pass@, ?password=), a
        webhook URL with its token (Slack, Discord), a known token (sk_live_, ghp_,
        xoxb-, AKIA...), a PEM private key or a JWT;
     b. config for a public or publishable key and NEXT_PUBLIC_*, VITE_* (browsers see them);
     c. config when the key's last part names a setting (_URL _HOST _USER _ID _PATH
        _LENGTH _EXPIRY _METHOD _EMAIL _ENABLED ...) or its first a switch (ENABLE_,
        SKIP_ ...), except _ACCESS_KEY_ID and an empty connection string;
     d. secret when a part is a credential word (SECRET(S) PASSWORD(S) PASS PWD PW PIN
        TOKEN(S) KEY(S) APIKEY CREDENTIAL(S) CREDS DSN SALT SIGNING PAT SK OTP IV), or
        the key ends in AUTH or INVITATION_CODE;
     e. secret when the value looks random (long hex, long mixed-case with digits);
     config otherwise. Measured on real env files: bench/heuristic.sh.
--explain tells, on stderr, which rule decided each key (never the value).

Values are never changed silently: in dotenv format a `$` that dotenv would expand is an
error unless --expand is given. Secret values are not written to a terminal unless --show.

Examples:
  # the tutorial's split: six settings are config, everything else is secret
  envsplit --app polls --config DJANGO_ALLOWED_HOSTS --config STATIC_ENDPOINT_URL \\
      --config STATIC_BUCKET_NAME --config DJANGO_LOGLEVEL --config DEBUG \\
      --config DATABASE_ENGINE --secret '*' env | secretgen
  # see what the default heuristic decides
  envsplit --app polls --explain env > /dev/null
  # read a file written for `docker run --env-file` exactly as kubectl does
  envsplit --app polls --format docker env

Exit status: 0 done, 2 bad input (FILE:LINE: reason; FILE `-` an empty pipe: the stage
before failed) with nothing on stdout, 1 runtime failure, 141 stdout closed.";

/// Split an env file into a ConfigMap and a Secret.
#[derive(Debug, Parser)]
#[command(name = "envsplit", version, about, long_about = LONG_ABOUT)]
pub struct Args {
    /// The env file; `-` reads standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: String,

    /// App name: objects are APP-config and APP-secret, labelled app=APP.
    #[arg(long, value_name = "APP")]
    pub app: String,

    /// Name of the ConfigMap [default: APP-config].
    #[arg(long, value_name = "NAME")]
    pub config_name: Option<String>,

    /// Name of the Secret [default: APP-secret].
    #[arg(long, value_name = "NAME")]
    pub secret_name: Option<String>,

    /// Namespace to put in both objects' metadata.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    #[command(flatten)]
    pub globs: GlobFlags,

    /// File of classification rules: `secret GLOB` or `config GLOB` per line.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<String>,

    /// Env file dialect.
    #[arg(long, value_enum, default_value_t = Format::Dotenv)]
    pub format: Format,

    /// dotenv: expand $VAR and ${VAR} (environment first, then earlier keys).
    #[arg(long)]
    pub expand: bool,

    /// Print to stderr, per key, the side and the rule that decided it.
    #[arg(long)]
    pub explain: bool,

    /// Emit both objects even when one has no keys.
    #[arg(long)]
    pub always_both: bool,

    /// Write Secret values even when stdout is a terminal.
    #[arg(long)]
    pub show: bool,

    /// Skip the 1 MiB per-object check (the API server still enforces it).
    #[arg(long)]
    pub no_size_limit: bool,
}

/// `--config GLOB` and `--secret GLOB`, kept in command-line order because the first
/// match wins: `--config DEBUG --secret '*'` must differ from `--secret '*' --config DEBUG`.
#[derive(Debug, Default, Clone)]
pub struct GlobFlags {
    pub ordered: Vec<(Side, String)>,
}

impl FromArgMatches for GlobFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut ordered: Vec<(usize, Side, String)> = Vec::new();
        for (id, side) in [("config", Side::Config), ("secret", Side::Secret)] {
            if let (Some(indices), Some(values)) =
                (matches.indices_of(id), matches.get_many::<String>(id))
            {
                ordered.extend(indices.zip(values).map(|(i, v)| (i, side, v.clone())));
            }
        }
        ordered.sort_by_key(|(i, _, _)| *i);
        Ok(GlobFlags {
            ordered: ordered.into_iter().map(|(_, s, g)| (s, g)).collect(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for GlobFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let glob = |id: &'static str, help: &'static str| {
            Arg::new(id)
                .long(id)
                .value_name("GLOB")
                .action(ArgAction::Append)
                .help(help)
        };
        cmd.arg(glob(
            "config",
            "Keys matching GLOB go to the ConfigMap (repeatable)",
        ))
        .arg(glob(
            "secret",
            "Keys matching GLOB go to the Secret (repeatable)",
        ))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Where a key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Config,
    Secret,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Config => "config",
            Side::Secret => "secret",
        })
    }
}

/// One classification rule and where it came from, for --explain.
struct Rule {
    side: Side,
    matcher: GlobMatcher,
    origin: String,
}

/// Parts of keys whose values are random secrets by nature, which `secretgen --generate`
/// can make up.
const GENERATED_PARTS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "PASS",
    "PWD",
    "PW",
    "TOKEN",
    "TOKENS",
    "SALT",
    "SIGNING",
];

/// Parts of keys whose values are not random: where something is, who, or a public half.
const NOT_GENERATED_PARTS: &[&str] = &[
    "URL", "URI", "DSN", "HOST", "PORT", "PATH", "FILE", "DIR", "ENDPOINT", "ID", "USER",
    "USERNAME", "NAME", "PUBLIC", "PUB", "CERT", "CA", "REGION", "BUCKET", "EMAIL",
];

/// Whether an empty secret `key` is something `secretgen --generate` should fill: a
/// secret key, password, token or salt, never a URL, path, public key or ID.
fn generatable(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    let parts: Vec<&str> = upper.split(['_', '-', '.']).collect();
    let any = |words: &[&str]| parts.iter().any(|p| words.contains(p));
    any(GENERATED_PARTS) && !any(NOT_GENERATED_PARTS)
}

pub fn run(args: Args) -> Result<()> {
    let app = &args.app;
    let config_name = args
        .config_name
        .clone()
        .unwrap_or_else(|| format!("{app}-config"));
    let secret_name = args
        .secret_name
        .clone()
        .unwrap_or_else(|| format!("{app}-secret"));
    check_names(&args, &config_name, &secret_name)?;
    let rules = load_rules(&args)?;
    let options = envfile::Options {
        format: args.format,
        expand: args.expand,
    };
    let file = envfile::read(&args.file, options)?;
    let source = kpipe_core::stream::source_name(&args.file);

    let mut config = Map::new();
    let mut secret = Map::new();
    let mut notes: Vec<String> = file
        .warnings
        .iter()
        .map(|w| format!("envsplit: {w}"))
        .collect();
    let (mut config_bytes, mut secret_bytes) = (0, 0);
    if file.entries.is_empty() {
        notes.push(format!("envsplit: {source}: warning: no keys"));
    }
    for entry in file.entries {
        let (side, why) = classify(&rules, &entry);
        if args.explain {
            // Made of the path, the key, the side and the rule, never of the value: a
            // value equal to a word of it (`secret`, `PASSWORD`) must not mangle it.
            let line = format!("{source}:{}: {}: {side} ({why})", entry.line, entry.key);
            kpipe_core::redact::learn_printed_whole(&line);
            notes.push(format!("envsplit: {line}"));
        }
        let (map, total, kind) = match side {
            Side::Config => (&mut config, &mut config_bytes, "ConfigMap"),
            Side::Secret => (&mut secret, &mut secret_bytes, "Secret"),
        };
        *total += entry.value.len();
        if *total > MAX_OBJECT_BYTES && !args.no_size_limit {
            return Err(Error::at(
                &source,
                entry.line,
                format!(
                    "{}: the {kind}'s values pass {MAX_OBJECT_BYTES} bytes, the API server's \
                     1 MiB object limit: split the file",
                    entry.key
                ),
            ));
        }
        if side == Side::Secret && entry.value.is_empty() {
            let help = if generatable(&entry.key) {
                format!(", or let `secretgen --generate {}` do it", entry.key)
            } else {
                String::new()
            };
            notes.push(format!(
                "envsplit: {source}:{}: warning: secret key {} is empty: fill it in{help}",
                entry.line, entry.key
            ));
        }
        map.insert(entry.key, Value::String(entry.value));
    }

    let mut objects = Vec::new();
    if !config.is_empty() || args.always_both {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(&args, &config_name),
            "data": config,
        }));
    }
    if !secret.is_empty() || args.always_both {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(&args, &secret_name),
            "type": "Opaque",
            "stringData": secret,
        }));
    }
    // The values classified secret are masked wherever a message could show them.
    kpipe_core::redact::learn_objects(&objects);
    kpipe_core::redact::refuse_secrets_on_terminal(
        &objects,
        std::io::stdout().is_terminal(),
        args.show,
    )?;
    if !notes.is_empty() {
        kpipe_core::redact::eprint(&format!("{}\n", notes.join("\n")));
    }
    kpipe_core::write_stdout(&kpipe_core::yaml::to_stream(&objects))
}

fn metadata(args: &Args, name: &str) -> Value {
    let mut meta = json!({
        "name": name,
        "labels": {
            "app": args.app,
            "app.kubernetes.io/name": args.app,
            "app.kubernetes.io/managed-by": "kpipe",
        },
    });
    if let Some(ns) = &args.namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn check_names(args: &Args, config_name: &str, secret_name: &str) -> Result<()> {
    for (flag, name) in [
        ("--config-name", config_name),
        ("--secret-name", secret_name),
    ] {
        if let Some(why) = dns1123_subdomain_error(name) {
            return Err(Error::input(format!(
                "{flag} (or --app): invalid name {name:?}: {why}"
            )));
        }
    }
    if let Some(ns) = &args.namespace
        && let Some(why) = dns1123_label_error(ns)
    {
        return Err(Error::input(format!(
            "--namespace: invalid namespace {ns:?}: {why}"
        )));
    }
    let app = args.app.as_bytes();
    let label_ok = app.len() <= 63
        && app.first().is_some_and(u8::is_ascii_alphanumeric)
        && app.last().is_some_and(u8::is_ascii_alphanumeric)
        && app
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !label_ok {
        return Err(Error::input(format!(
            "--app: {:?} is not a valid label value (at most 63 letters, digits, '-', '_' or \
             '.', starting and ending with a letter or digit)",
            args.app
        )));
    }
    Ok(())
}

fn glob(pattern: &str, place: &str) -> Result<GlobMatcher> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| Error::input(format!("{place}: invalid glob {pattern:?}: {}", e.kind())))
}

fn load_rules(args: &Args) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (side, pattern) in &args.globs.ordered {
        let flag = format!("--{side}");
        rules.push(Rule {
            side: *side,
            matcher: glob(pattern, &flag)?,
            origin: format!("{flag} '{pattern}'"),
        });
    }
    if let Some(path) = &args.rules {
        let text = kpipe_core::stream::read_source(path)?;
        for (n, line) in text.lines().enumerate() {
            let place = format!("{path}:{}", n + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let side = match line.split_once(char::is_whitespace) {
                Some(("secret", pattern)) => (Side::Secret, pattern.trim()),
                Some(("config", pattern)) => (Side::Config, pattern.trim()),
                _ => {
                    return Err(Error::input(format!(
                        "{place}: expected `secret GLOB` or `config GLOB`"
                    )));
                }
            };
            rules.push(Rule {
                side: side.0,
                matcher: glob(side.1, &place)?,
                origin: format!("{place}: {} {}", side.0, side.1),
            });
        }
    }
    Ok(rules)
}

/// The side of one key and the reason, which never includes the value.
fn classify(rules: &[Rule], entry: &Entry) -> (Side, String) {
    if let Some(rule) = rules.iter().find(|r| r.matcher.is_match(&entry.key)) {
        return (rule.side, rule.origin.clone());
    }
    let judgement = credential::judge(&entry.key, &entry.value);
    let side = if judgement.secret {
        Side::Secret
    } else {
        Side::Config
    };
    (side, judgement.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> Entry {
        Entry {
            key: key.into(),
            value: value.into(),
            line: 1,
        }
    }

    fn side(rules: &[Rule], key: &str, value: &str) -> Side {
        classify(rules, &entry(key, value)).0
    }

    #[test]
    fn only_random_secrets_get_the_generate_hint() {
        for key in [
            "DJANGO_SECRET_KEY",
            "DATABASE_PASSWORD",
            "API_TOKEN",
            "PASSWORD_SALT",
            "DB_PW",
        ] {
            assert!(generatable(key), "{key}");
        }
        for key in [
            "DATABASE_URL",
            "SECRET_FILE_PATH",
            "JWT_PUBLIC_KEY",
            "CLIENT_SECRET_ID",
            "SENTRY_DSN",
            "AWS_ACCESS_KEY_ID",
            "TLS_CERT",
        ] {
            assert!(!generatable(key), "{key}");
        }
    }

    #[test]
    fn first_matching_flag_wins_in_order() {
        let rule = |side, p: &str| Rule {
            side,
            matcher: glob(p, "t").unwrap(),
            origin: p.into(),
        };
        let rules = [rule(Side::Config, "DEBUG"), rule(Side::Secret, "*")];
        assert_eq!(side(&rules, "DEBUG", ""), Side::Config);
        assert_eq!(side(&rules, "NAME", ""), Side::Secret);
        let rules = [rule(Side::Secret, "*"), rule(Side::Config, "DEBUG")];
        assert_eq!(side(&rules, "DEBUG", ""), Side::Secret);
        let rules = [rule(Side::Config, "{A,B}_*")];
        assert_eq!(classify(&rules, &entry("B_PASSWORD", "")).1, "{A,B}_*");
    }

    #[test]
    fn glob_flags_keep_command_line_order() {
        let args = Args::try_parse_from([
            "envsplit", "--app", "a", "--secret", "X", "--config", "Y", "--secret", "Z",
        ])
        .unwrap();
        let order: Vec<_> = args
            .globs
            .ordered
            .iter()
            .map(|(s, g)| format!("{s}:{g}"))
            .collect();
        assert_eq!(order, ["secret:X", "config:Y", "secret:Z"]);
    }
}

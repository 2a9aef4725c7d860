//! secretgen: turns Secrets' `stringData` into base64 `data`, fills in generated values,
//! or makes a Secret from an env file, as `kubectl create secret generic` does.
//!
//! As a filter it owns only core/v1 Secrets; every other object passes through in order.
//! The output is a fixed point: running secretgen on its own output changes nothing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
mod registry;

use clap::{ArgGroup, Parser, ValueEnum};
use kpipe_core::envfile::{self, Format};
use kpipe_core::object::{
    MAX_OBJECT_BYTES, config_key_error, dns1123_label_error, dns1123_subdomain_error,
};
use kpipe_core::redact::is_secret;
use kpipe_core::stream::{self, Document};
use kpipe_core::{Error, Result};
use rand::TryRngCore;
use rand::rngs::OsRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};
use std::io::IsTerminal;

const LONG_ABOUT: &str = "\
As a filter (the default): reads a manifest stream (files or stdin) and, for every Secret,
moves stringData into data as standard base64 (stringData wins over data for the same
key, as the API server does). Every other object passes through unchanged and in order.
Running it twice gives the same bytes as running it once. An empty pipe on stdin, or a
kpipe stream cut off before its last line `# kpipe stream: end`, is what a stage before
that failed leaves: secretgen says so in one line and does nothing else.

--generate KEY[:LENGTH] fills KEY from the operating system's CSPRNG when it is missing or
empty in a Secret; a value that is set is never replaced. Default: 50 characters of
Django's get_random_secret_key alphabet. Alone, it makes a NEW value on every run. With
--keep-from FILE (the live Secrets, as `kubectl get secret NAME -o yaml` prints them; an
empty file when there are none yet) a generated key keeps the value the Secret of the
same name already has (or its immutable version NAME-<10 hex>, as `manifest-gen
--versioned-config` names it), so re-deploying changes nothing; --rotate KEY makes a new
one anyway. `make deploy` does both (see README, Day 2).

With --from-env-file FILE --name NAME it makes a Secret from an env file like
`kubectl create secret generic NAME --from-env-file FILE` (same parser as envsplit).

With --docker-config FILE --name NAME (or --docker-username, --docker-password and
optionally --docker-server, --docker-email) it adds to the stream an image pull Secret
(type kubernetes.io/dockerconfigjson) equal to `kubectl create secret docker-registry
NAME --from-file=.dockerconfigjson=FILE` (or `--docker-username ...`); stdin is read only
when it is not a terminal. A docker config whose credentials live in a credential helper
(credsStore, credHelpers: Docker Desktop) is refused: the cluster cannot use them.
Reference the Secret with `manifest-gen --image-pull-secret NAME`.

Secret values are not written to a terminal unless --show.

Examples:
  envsplit --app polls env | secretgen --generate DJANGO_SECRET_KEY | kapply
  kubectl get secret polls-secret -o yaml --ignore-not-found > live.yaml   # mode 0600
  envsplit --app polls env | secretgen --generate DJANGO_SECRET_KEY --keep-from live.yaml
  secretgen --name polls-secret --from-env-file polls-secrets > secret.yaml
  secretgen --show < secret.yaml          # look at the result on a terminal
  envsplit env | secretgen --docker-config ~/.docker/config.json --name regcred \\
    | manifest-gen --image registry.example.com/polls:v1 --image-pull-secret regcred

Exit status: 0 done, 2 bad input (invalid base64, invalid key, object over 1 MiB; the
message names the object; an empty pipe or a cut-off stream) with nothing on stdout,
1 runtime failure, 141 stdout closed.";

/// Encode, generate and create Kubernetes Secret values.
#[derive(Debug, Parser)]
#[command(name = "secretgen", version, about, long_about = LONG_ABOUT)]
#[command(group = ArgGroup::new("made").args(["from_env_file", "docker_config", "docker_username"]))]
pub struct Args {
    /// Manifest streams to read; `-` is standard input.
    #[arg(
        value_name = "FILE",
        default_value = "-",
        conflicts_with = "from_env_file"
    )]
    pub files: Vec<String>,

    /// Fill KEY with LENGTH random characters when missing or empty (repeatable).
    #[arg(long, value_name = "KEY[:LENGTH]", value_parser = parse_generate)]
    pub generate: Vec<Generate>,

    /// Keep the value a --generate key has in the Secret of the same name in FILE, or in
    /// its version NAME-<10 hex> (the live Secrets: `kubectl get secret NAME -o yaml`).
    #[arg(long, value_name = "FILE")]
    pub keep_from: Option<String>,

    /// Generate KEY anew even when --keep-from has a value for it (one of the --generate
    /// keys; repeatable).
    #[arg(long, value_name = "KEY")]
    pub rotate: Vec<String>,

    /// Characters of generated values.
    #[arg(long, value_enum, default_value_t = Charset::Django)]
    pub charset: Charset,

    /// Only generate into the Secrets with these names (repeatable) [default: every
    /// Opaque Secret].
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,

    /// Make a Secret from this env file instead of reading a stream.
    #[arg(long, value_name = "FILE", requires = "name")]
    pub from_env_file: Option<String>,

    /// Name of the Secret made with --from-env-file or --docker-*.
    #[arg(long, value_name = "NAME", requires = "made")]
    pub name: Option<String>,

    /// Namespace of the Secret made with --from-env-file or --docker-*.
    #[arg(long, short = 'n', value_name = "NAMESPACE", requires = "made")]
    pub namespace: Option<String>,

    /// Add an image pull Secret NAME with this docker config file (`~/.docker/config.json`)
    /// as its .dockerconfigjson, as kubectl create secret docker-registry --from-file does.
    #[arg(
        long,
        value_name = "FILE",
        requires = "name",
        conflicts_with = "from_env_file"
    )]
    pub docker_config: Option<String>,

    /// Registry of the pull Secret made from --docker-username [default: https://index.docker.io/v1/]
    #[arg(long, value_name = "SERVER", requires = "docker_username")]
    pub docker_server: Option<String>,

    /// Add an image pull Secret NAME for this registry user (with --docker-password),
    /// as kubectl create secret docker-registry does.
    #[arg(long, value_name = "USER", requires_all = ["name", "docker_password"],
          conflicts_with_all = ["from_env_file", "docker_config"])]
    pub docker_username: Option<String>,

    /// Password or token of --docker-username (visible to other local users in the
    /// process list, as with kubectl: prefer --docker-config)
    #[arg(long, value_name = "PASSWORD", requires = "docker_username")]
    pub docker_password: Option<String>,

    /// Email of --docker-username (optional)
    #[arg(long, value_name = "EMAIL", requires = "docker_username")]
    pub docker_email: Option<String>,

    /// Env file dialect for --from-env-file.
    #[arg(long, value_enum, default_value_t = Format::Dotenv)]
    pub format: Format,

    /// dotenv: expand $VAR and ${VAR} (environment first, then earlier keys).
    #[arg(long)]
    pub expand: bool,

    /// Write Secret values even when stdout is a terminal.
    #[arg(long)]
    pub show: bool,

    /// Skip the 1 MiB per-Secret check (the API server still enforces it).
    #[arg(long)]
    pub no_size_limit: bool,
}

/// One `--generate KEY[:LENGTH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generate {
    pub key: String,
    pub length: usize,
}

/// Django's `get_random_secret_key()`: 50 characters of its alphabet.
const DEFAULT_LENGTH: usize = 50;
const MAX_LENGTH: usize = 64 * 1024;

fn parse_generate(spec: &str) -> Result<Generate, String> {
    let (key, length) = match spec.split_once(':') {
        Some((key, n)) => {
            let length = n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LENGTH).contains(n));
            (
                key,
                length.ok_or_else(|| format!("LENGTH must be 1 to {MAX_LENGTH}, not {n:?}"))?,
            )
        }
        None => (spec, DEFAULT_LENGTH),
    };
    if let Some(why) = config_key_error(key) {
        return Err(format!("invalid key {key:?}: {why}"));
    }
    Ok(Generate {
        key: key.to_owned(),
        length,
    })
}

/// The alphabets generated values are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Charset {
    /// Django's get_random_secret_key: a-z 0-9 !@#$%^&*(-_=+)
    Django,
    /// A-Z a-z 0-9
    Alnum,
    /// 0-9 a-f
    Hex,
    /// A-Z a-z 0-9 - _ (safe in URLs and file names)
    Urlsafe,
}

impl Charset {
    fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Django => b"abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)",
            Charset::Alnum => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            Charset::Hex => b"0123456789abcdef",
            Charset::Urlsafe => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        }
    }
}

/// `length` characters drawn uniformly from the charset with the OS CSPRNG.
pub fn random_value(charset: Charset, length: usize) -> String {
    // A failing OS RNG is not something to recover from; rand panics with the cause.
    let mut rng = OsRng.unwrap_err();
    let alphabet = charset.alphabet();
    (0..length)
        .map(|_| char::from(*alphabet.choose(&mut rng).expect("non-empty alphabet")))
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    if let Some(key) = args
        .rotate
        .iter()
        .find(|k| !args.generate.iter().any(|g| &g.key == *k))
    {
        return Err(Error::input(format!(
            "--rotate {key}: not a --generate key; a value set in the input is changed there"
        )));
    }
    let kept = match &args.keep_from {
        Some(path) => {
            let live = stream::read(path)?;
            // The live values are secrets like the stream's, before anything prints.
            kpipe_core::redact::learn_objects(live.iter().map(|d| &d.value));
            live.into_iter()
                .map(|d| d.value)
                .filter(is_secret)
                .collect()
        }
        None => Vec::new(),
    };
    let mut docs = match &args.from_env_file {
        Some(path) => vec![from_env_file(&args, path)?],
        None => {
            let mut docs = Vec::new();
            for file in &args.files {
                // Making a pull Secret by hand on a terminal: nobody is typing a stream.
                if file == "-"
                    && registry_credentials(&args).is_some()
                    && std::io::stdin().is_terminal()
                {
                    continue;
                }
                docs.extend(stream::read(file)?);
            }
            if let Some(credentials) = registry_credentials(&args) {
                docs.push(pull_secret(&args, &credentials, &docs)?);
            }
            docs
        }
    };
    let mut filled = vec![false; args.generate.len()];
    for doc in &mut docs {
        if is_secret(&doc.value) {
            encode(doc, &args, &kept, &mut filled)?;
        }
    }
    if let Some(missing) = args.generate.iter().zip(&filled).find(|(_, done)| !**done) {
        return Err(Error::input(format!(
            "--generate {}: no Secret to put it in{}",
            missing.0.key,
            if args.only.is_empty() {
                ""
            } else {
                " (with --only)"
            }
        )));
    }
    let values: Vec<&Value> = docs.iter().map(|d| &d.value).collect();
    // Generated values and those of --from-env-file are secrets like the stream's.
    kpipe_core::redact::learn_objects(values.iter().copied());
    kpipe_core::redact::refuse_secrets_on_terminal(
        values.iter().copied(),
        std::io::stdout().is_terminal(),
        args.show,
    )?;
    kpipe_core::write_stdout(&kpipe_core::yaml::to_stream(values))
}

fn registry_credentials(args: &Args) -> Option<registry::Credentials<'_>> {
    if let Some(path) = &args.docker_config {
        return Some(registry::Credentials::ConfigFile(path));
    }
    let username = args.docker_username.as_deref()?;
    Some(registry::Credentials::Login {
        server: args
            .docker_server
            .as_deref()
            .unwrap_or(registry::DOCKER_HUB),
        username,
        password: args.docker_password.as_deref().unwrap_or_default(),
        email: args.docker_email.as_deref(),
    })
}

/// The image pull Secret, after the stream, which must not hold one of the same name.
fn pull_secret(
    args: &Args,
    credentials: &registry::Credentials,
    docs: &[Document],
) -> Result<Document> {
    let (name, namespace) = name_and_namespace(args)?;
    let value = registry::secret(name, namespace, credentials)?;
    let id = kpipe_core::ObjectId::of(&value);
    if let Some(same) = docs
        .iter()
        .find(|d| kpipe_core::ObjectId::of(&d.value) == id)
    {
        return Err(Error::input(format!(
            "--name {name}: the stream already has {} ({})",
            same.id(),
            same.place()
        )));
    }
    Ok(Document {
        value,
        source: "--name".to_owned(),
        index: 1,
        line: 1,
    })
}

/// `--name` and `-n` of a Secret secretgen makes, checked.
fn name_and_namespace(args: &Args) -> Result<(&str, Option<&str>)> {
    let name = args.name.as_deref().unwrap_or_default();
    if let Some(why) = dns1123_subdomain_error(name) {
        return Err(Error::input(format!(
            "--name: invalid name {name:?}: {why}"
        )));
    }
    if let Some(ns) = &args.namespace
        && let Some(why) = dns1123_label_error(ns)
    {
        return Err(Error::input(format!(
            "--namespace: invalid namespace {ns:?}: {why}"
        )));
    }
    Ok((name, args.namespace.as_deref()))
}

/// A Secret as `kubectl create secret generic NAME --from-env-file FILE` makes it.
fn from_env_file(args: &Args, path: &str) -> Result<Document> {
    let (name, namespace) = name_and_namespace(args)?;
    let options = envfile::Options {
        format: args.format,
        expand: args.expand,
    };
    let file = envfile::read(path, options)?;
    for warning in &file.warnings {
        kpipe_core::redact::eprint(&format!("secretgen: {warning}\n"));
    }
    let string_data: Map<String, Value> = file
        .entries
        .into_iter()
        .map(|e| (e.key, Value::String(e.value)))
        .collect();
    let mut metadata = json!({ "name": name });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    let value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": string_data,
    });
    Ok(Document {
        value,
        source: stream::source_name(path),
        index: 1,
        line: 1,
    })
}

/// The base64 value of `key` in the live Secret `kept` holds for the Secret `obj`: same
/// name, or its immutable version's (`NAME-<10 hex>`, as `manifest-gen
/// --versioned-config` names it), and same namespace when both say one. A Secret of the
/// very name wins over a version.
fn kept_value<'a>(kept: &'a [Value], obj: &Map<String, Value>, key: &str) -> Option<&'a str> {
    let meta = obj.get("metadata")?;
    let name = meta.get("name").and_then(Value::as_str)?;
    let namespace = meta.get("namespace").and_then(Value::as_str);
    let same_namespace = |live: &&Value| match (namespace, live["metadata"]["namespace"].as_str()) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let live_name = |live: &Value| {
        live["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    kept.iter()
        .filter(same_namespace)
        .find(|live| live_name(live) == name)
        .or_else(|| {
            kept.iter()
                .filter(same_namespace)
                .find(|live| is_version_of(&live_name(live), name))
        })
        .and_then(|live| live["data"][key].as_str())
        .filter(|v| !v.is_empty() && STANDARD.decode(v).is_ok())
}

/// `NAME-<10 lowercase hex>`: an immutable version of the Secret NAME.
fn is_version_of(live: &str, name: &str) -> bool {
    live.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hash| {
            hash.len() == 10
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Moves stringData into data, fills generated keys, and checks keys, base64 and size.
fn encode(doc: &mut Document, args: &Args, kept: &[Value], filled: &mut [bool]) -> Result<()> {
    let place = format!("{}: {}", doc.place(), doc.id());
    let fail = |what: String| Err(Error::input(format!("{place}: {what}")));
    let obj = doc
        .value
        .as_object_mut()
        .expect("stream documents are mappings");
    let mut data = match obj.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return fail("data must be a mapping".into()),
    };
    let mut size = 0;
    for (key, value) in &data {
        if let Some(why) = config_key_error(key) {
            return fail(format!("data: invalid key {key:?}: {why}"));
        }
        let Some(text) = value.as_str() else {
            return fail(format!("data.{key} must be a base64 string"));
        };
        match STANDARD.decode(text) {
            Ok(bytes) => size += bytes.len(),
            Err(_) => return fail(format!("data.{key} is not valid base64 (standard, padded)")),
        }
    }
    match obj.remove("stringData") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                if let Some(why) = config_key_error(&key) {
                    return fail(format!("stringData: invalid key {key:?}: {why}"));
                }
                let Some(text) = value.as_str() else {
                    return fail(format!(
                        "stringData.{key} must be a string (quote it in YAML)"
                    ));
                };
                if let Some(Value::String(old)) = data.get(&key) {
                    size -= STANDARD.decode(old).map_or(0, |b| b.len());
                }
                size += text.len();
                data.insert(key, Value::String(STANDARD.encode(text)));
            }
        }
        Some(_) => return fail("stringData must be a mapping".into()),
    }
    let opaque = obj.get("type").is_none_or(|t| t == "Opaque");
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    let chosen = args.only.is_empty() || name.is_some_and(|n| args.only.iter().any(|o| o == n));
    if opaque && chosen {
        for (spec, done) in args.generate.iter().zip(filled.iter_mut()) {
            *done = true;
            let set = data
                .get(&spec.key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty());
            let rotate = args.rotate.contains(&spec.key);
            if set && rotate {
                return fail(format!(
                    "--rotate {}: the input sets this key; change its value there",
                    spec.key
                ));
            }
            if set {
                continue;
            }
            let value = match kept_value(kept, obj, &spec.key).filter(|_| !rotate) {
                Some(live) => live.to_owned(),
                None => STANDARD.encode(random_value(args.charset, spec.length)),
            };
            size += STANDARD.decode(&value).map_or(0, |b| b.len());
            data.insert(spec.key.clone(), Value::String(value));
        }
    }
    if size > MAX_OBJECT_BYTES && !args.no_size_limit {
        return fail(format!(
            "data holds {size} bytes, over the API server's limit of {MAX_OBJECT_BYTES} (1 MiB)"
        ));
    }
    obj.insert("data".into(), Value::Object(data));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_versioned_live_secret_is_a_version_of_its_base_name() {
        assert!(is_version_of("polls-secret-0a1b2c3d4e", "polls-secret"));
        for other in [
            "polls-secret",
            "polls-secret-0a1b2c3d4",
            "polls-secret-0A1B2C3D4E",
            "polls-secret-0a1b2c3d4g",
            "polls-secretx0a1b2c3d4e",
            "polls-secret-x-0a1b2c3d4e",
        ] {
            assert!(!is_version_of(other, "polls-secret"), "{other}");
        }
    }

    #[test]
    fn generate_spec_parses_key_and_length() {
        assert_eq!(
            parse_generate("K").unwrap(),
            Generate {
                key: "K".into(),
                length: 50
            }
        );
        assert_eq!(parse_generate("K:12").unwrap().length, 12);
        assert!(parse_generate("K:0").is_err());
        assert!(parse_generate("K:x").is_err());
        assert!(parse_generate("a b").is_err());
    }

    #[test]
    fn random_values_use_the_charset_and_differ() {
        for charset in [
            Charset::Django,
            Charset::Alnum,
            Charset::Hex,
            Charset::Urlsafe,
        ] {
            let a = random_value(charset, 200);
            assert_eq!(a.len(), 200);
            assert!(
                a.bytes().all(|c| charset.alphabet().contains(&c)),
                "{charset:?}: {a}"
            );
            assert_ne!(a, random_value(charset, 200));
        }
        // Uniform draws: in 4000 characters every one of 16 symbols shows up.
        let many = random_value(Charset::Hex, 4000);
        assert!(
            Charset::Hex
                .alphabet()
                .iter()
                .all(|c| many.as_bytes().contains(c))
        );
    }
}

//! The ConfigMap and Secret the pods read through `envFrom`, found in the input stream,
//! and the config hash over their content that rolls the pods when a value changes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kpipe_core::{Document, Error, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What the Deployment's `envFrom` references, and the hash of what the stream holds of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSources {
    pub config_map: Option<String>,
    pub secret: Option<String>,
    /// sha256 (hex) over the names and data of the referenced objects found in the stream;
    /// `None` when the stream holds neither.
    pub config_hash: Option<String>,
    /// DJANGO_ALLOWED_HOSTS as the pods will see it, when the stream's sources set it.
    pub allowed_hosts: Option<Setting>,
    /// With `--versioned-config`: the stream's objects the pods read, by position in the
    /// stream, each to be written as its immutable version (`config_map`/`secret` hold
    /// the versioned names already).
    pub versions: Vec<Version>,
}

/// A ConfigMap or Secret of the stream, written as an immutable version of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Position of the object in the input stream.
    pub position: usize,
    /// `<name>-<hash>`.
    pub name: String,
}

/// Hex digits of the content hash in a versioned name (as kustomize's generators'
/// suffix: long enough that two contents of one object never meet by chance).
pub const VERSION_HASH_LEN: usize = 10;

/// One env var of the pods' environment, and where it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    /// `FILE: document N (line L): Kind/name`, for messages.
    pub origin: String,
    /// Set by a Secret: its value never goes into a message.
    pub secret: bool,
}

/// Where the names come from besides the stream.
pub struct Wanted<'a> {
    pub config_map: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub default_config_map: String,
    pub default_secret: String,
    /// The namespace the generated objects go to, when one was given.
    pub namespace: Option<&'a str>,
    /// `--versioned-config`: the found objects become immutable versions named by content.
    pub versioned: bool,
}

/// Picks the envFrom sources: a flag wins; otherwise the stream's only ConfigMap and only
/// Opaque Secret. When the stream holds neither, the tutorial's names are referenced;
/// when it holds one of them, only that one (a reference to a missing object would keep
/// the pods from starting).
pub fn resolve(docs: &[Document], wanted: &Wanted) -> Result<EnvSources> {
    let in_namespace = |d: &&Document| match (wanted.namespace, d.id().namespace) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    };
    let config_maps: Vec<&Document> = docs
        .iter()
        .filter(|d| is_config_map(d))
        .filter(in_namespace)
        .collect();
    let secrets: Vec<&Document> = docs
        .iter()
        .filter(|d| is_env_secret(d))
        .filter(in_namespace)
        .collect();

    let versioned = wanted.versioned;
    let (config_map, config_doc) = pick(
        &config_maps,
        wanted.config_map,
        "ConfigMap",
        "--config-map",
        versioned,
    )?;
    let (secret, secret_doc) = pick(&secrets, wanted.secret, "Secret", "--secret", versioned)?;
    let stream_has_none = config_maps.is_empty() && secrets.is_empty();
    let mut config_map =
        config_map.or_else(|| stream_has_none.then(|| wanted.default_config_map.clone()));
    let mut secret = secret.or_else(|| stream_has_none.then(|| wanted.default_secret.clone()));

    let found: Vec<&Document> = [config_doc, secret_doc].into_iter().flatten().collect();
    // The name each found object is hashed under: its own, or with --versioned-config the
    // one without a version suffix, so that a stream manifest-gen already versioned hashes
    // (and so names its Job and versions) as the plain stream did.
    let mut named = Vec::new();
    for doc in &found {
        let name = if versioned {
            base_name(doc)?
        } else {
            doc.id().name
        };
        named.push((*doc, name));
    }
    let config_hash = if named.is_empty() {
        None
    } else {
        Some(content_hash(&named)?)
    };
    let allowed_hosts = setting(&found, crate::django::ALLOWED_HOSTS)?;
    let mut versions = Vec::new();
    if versioned {
        for (doc, base) in &named {
            let name = version_name(doc, base)?;
            let position = docs
                .iter()
                .position(|d| std::ptr::eq(d, *doc))
                .expect("a found object is one of the stream's");
            let reference = if doc.kind() == "Secret" {
                &mut secret
            } else {
                &mut config_map
            };
            *reference = Some(name.clone());
            versions.push(Version { position, name });
        }
    }
    Ok(EnvSources {
        config_map,
        secret,
        config_hash,
        allowed_hosts,
        versions,
    })
}

/// `<base>-<hash>`: the first [`VERSION_HASH_LEN`] hex digits of a sha256 over the
/// object's kind, base name and stored data (stringData and base64 data alike).
fn version_name(doc: &Document, base: &str) -> Result<String> {
    let hash = content_hash(&[(doc, base.to_owned())])?;
    let name = format!("{base}-{}", &hash[..VERSION_HASH_LEN]);
    if let Some(why) = kpipe_core::object::dns1123_subdomain_error(&name) {
        return Err(Error::input(format!(
            "{}: {}: its versioned name {name:?} is not valid: {why}",
            doc.place(),
            doc.id()
        )));
    }
    Ok(name)
}

/// The object's name without its version suffix when it carries the one its content
/// gives (a stream manifest-gen --versioned-config wrote, read again), else its name:
/// versioning it again must not add a second suffix.
fn base_name(doc: &Document) -> Result<String> {
    let name = doc.id().name;
    if let Some((base, suffix)) = name.rsplit_once('-')
        && !base.is_empty()
        && suffix.len() == VERSION_HASH_LEN
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        let hash = content_hash(&[(doc, base.to_owned())])?;
        if hash[..VERSION_HASH_LEN] == *suffix {
            return Ok(base.to_owned());
        }
    }
    Ok(name)
}

/// The object of the stream at a [`Version`]'s position, as its version: renamed and
/// `immutable: true`. Everything else of it (labels, annotations, data) is kept.
pub fn versioned_object(doc: &Document, version: &Version) -> Value {
    let mut value = doc.value.clone();
    if let Some(object) = value.as_object_mut() {
        object.insert("immutable".to_owned(), Value::Bool(true));
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            meta.insert("name".to_owned(), Value::String(version.name.clone()));
        }
    }
    value
}

/// `key` as the pods see it. `found` lists the ConfigMap first: envFrom lists it after the
/// Secret, and the last source that sets a key wins.
fn setting(found: &[&Document], key: &str) -> Result<Option<Setting>> {
    for doc in found {
        if let Some(bytes) = stored_data(doc)?.remove(key) {
            return Ok(Some(Setting {
                value: String::from_utf8_lossy(&bytes).into_owned(),
                origin: format!("{}: {}", doc.place(), doc.id()),
                secret: doc.kind() == "Secret",
            }));
        }
    }
    Ok(None)
}

fn is_config_map(d: &Document) -> bool {
    d.kind() == "ConfigMap" && d.api_version() == "v1"
}

/// Secrets of another type (TLS, registry credentials) are not environment.
fn is_env_secret(d: &Document) -> bool {
    d.kind() == "Secret"
        && d.api_version() == "v1"
        && match d.value.get("type") {
            None | Some(Value::Null) => true,
            Some(kind) => kind == "Opaque",
        }
}

/// The name to reference and the stream's object of that name, if any.
/// With `versioned`, a flag's name also finds the stream's version of that object.
fn pick<'a>(
    candidates: &[&'a Document],
    flag: Option<&str>,
    kind: &str,
    flag_name: &str,
    versioned: bool,
) -> Result<(Option<String>, Option<&'a Document>)> {
    if let Some(name) = flag {
        let doc = candidates
            .iter()
            .copied()
            .find(|d| d.id().name == name)
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .filter(|_| versioned)
                    .find(|d| base_name(d).is_ok_and(|base| base == name))
            });
        return Ok((Some(name.to_owned()), doc));
    }
    match candidates {
        [] => Ok((None, None)),
        // Its name goes into the Deployment: say where a missing one is missing.
        [only] if only.id().name.is_empty() => Err(Error::input(format!(
            "{}: {kind} has no metadata.name, and the pods' envFrom needs one",
            only.place()
        ))),
        [only] => Ok((Some(only.id().name), Some(only))),
        [first, second, ..] => Err(Error::input(format!(
            "the input holds more than one {kind}: {} ({}) and {} ({}); \
             name the one the pods read with {flag_name} NAME",
            first.id(),
            first.place(),
            second.id(),
            second.place()
        ))),
    }
}

/// sha256 over kind, name (the one given with each) and every key and value of each
/// object, as the API server will store them: a Secret's `data` is decoded and its
/// `stringData` wins over it, so a Secret hashes the same before and after secretgen moves
/// stringData into data. Every field is length-prefixed so that no two different configs
/// feed the same bytes.
fn content_hash(objects: &[(&Document, String)]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut feed = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for (doc, name) in objects {
        let entries = stored_data(doc)?;
        feed(doc.kind().as_bytes());
        feed(name.as_bytes());
        feed(&(entries.len() as u64).to_be_bytes());
        for (key, value) in &entries {
            feed(key.as_bytes());
            feed(value);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Key -> bytes of a ConfigMap (data + binaryData) or Secret (data decoded, then stringData).
fn stored_data(doc: &Document) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut entries = BTreeMap::new();
    let (plain, encoded) = if doc.kind() == "Secret" {
        ("stringData", "data")
    } else {
        ("data", "binaryData")
    };
    for (key, value) in fields(doc, encoded)? {
        let text = text_of(value);
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            Error::input(format!(
                "{}: {}: {encoded}.{key} is not valid base64",
                doc.place(),
                doc.id()
            ))
        })?;
        entries.insert(key.clone(), bytes);
    }
    for (key, value) in fields(doc, plain)? {
        entries.insert(key.clone(), text_of(value).into_bytes());
    }
    Ok(entries)
}

fn fields<'a>(doc: &'a Document, field: &str) -> Result<Vec<(&'a String, &'a Value)>> {
    match doc.value.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => Ok(map.iter().collect()),
        Some(_) => Err(Error::input(format!(
            "{}: {}: {field} must be a mapping",
            doc.place(),
            doc.id()
        ))),
    }
}

/// A value as the API server would read it; numbers and bools (which it rejects in data)
/// still hash by their text, so that the hash is defined for every input.
fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Document> {
        kpipe_core::stream::parse("<stdin>", text).unwrap()
    }

    fn wanted() -> Wanted<'static> {
        Wanted {
            config_map: None,
            secret: None,
            default_config_map: "polls-config".into(),
            default_secret: "polls-secret".into(),
            namespace: None,
            versioned: false,
        }
    }

    fn versioned() -> Wanted<'static> {
        Wanted {
            versioned: true,
            ..wanted()
        }
    }

    const CM: &str =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: polls-config}\ndata: {DEBUG: 'True'}\n";

    #[test]
    fn no_stream_references_the_tutorial_names_without_hash() {
        let s = resolve(&[], &wanted()).unwrap();
        assert_eq!(s.config_map.as_deref(), Some("polls-config"));
        assert_eq!(s.secret.as_deref(), Some("polls-secret"));
        assert_eq!(s.config_hash, None);
    }

    #[test]
    fn string_data_and_base64_data_hash_the_same() {
        let plain = format!(
            "{CM}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData: {{K: hunter22}}\n"
        );
        let encoded = format!(
            "{CM}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\ntype: Opaque\ndata: {{K: aHVudGVyMjI=}}\n"
        );
        let a = resolve(&docs(&plain), &wanted()).unwrap();
        let b = resolve(&docs(&encoded), &wanted()).unwrap();
        assert_eq!(a.config_hash, b.config_hash);
        assert_eq!(a.secret.as_deref(), Some("s"));
        assert!(!a.config_hash.unwrap().contains("hunter22"));
    }

    #[test]
    fn string_data_wins_over_data() {
        let both = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {K: b2xk}\nstringData: {K: new}\n";
        let new = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {K: new}\n";
        assert_eq!(
            resolve(&docs(both), &wanted()).unwrap(),
            resolve(&docs(new), &wanted()).unwrap()
        );
    }

    #[test]
    fn tls_secrets_are_not_environment() {
        let tls =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: polls-tls}\ntype: kubernetes.io/tls\n";
        let s = resolve(&docs(&format!("{CM}---\n{tls}")), &wanted()).unwrap();
        assert_eq!(s.secret, None);
        assert_eq!(s.config_map.as_deref(), Some("polls-config"));
    }

    #[test]
    fn bad_base64_names_object_and_key_only() {
        let bad = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {K: 'not base64!'}\n";
        let err = resolve(&docs(bad), &wanted()).unwrap_err().to_string();
        assert!(err.contains("Secret/s") && err.contains("data.K"), "{err}");
        assert!(!err.contains("not base64!"), "{err}");
    }

    const SECRET: &str =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: polls-secret}\nstringData: {K: hunter22}\n";

    fn stream(parts: &[&str]) -> Vec<Document> {
        docs(&parts.join("---\n"))
    }

    #[test]
    fn versions_are_named_by_their_own_content() {
        let s = resolve(&stream(&[CM, SECRET]), &versioned()).unwrap();
        let cm = s.config_map.unwrap();
        let secret = s.secret.unwrap();
        assert!(cm.starts_with("polls-config-") && cm.len() == 13 + VERSION_HASH_LEN);
        assert!(secret.starts_with("polls-secret-") && secret.len() == 13 + VERSION_HASH_LEN);
        assert_eq!(
            s.versions,
            [
                Version {
                    position: 0,
                    name: cm.clone()
                },
                Version {
                    position: 1,
                    name: secret.clone()
                }
            ]
        );
        // A changed secret value renames the Secret alone.
        let changed = SECRET.replace("hunter22", "hunter23");
        let t = resolve(&stream(&[CM, &changed]), &versioned()).unwrap();
        assert_eq!(t.config_map.unwrap(), cm);
        assert_ne!(t.secret.unwrap(), secret);
    }

    #[test]
    fn a_secret_versions_the_same_in_string_data_and_base64_data() {
        let encoded = "apiVersion: v1\nkind: Secret\nmetadata: {name: polls-secret}\ntype: Opaque\ndata: {K: aHVudGVyMjI=}\n";
        let a = resolve(&stream(&[SECRET]), &versioned()).unwrap();
        let b = resolve(&stream(&[encoded]), &versioned()).unwrap();
        assert_eq!(a.secret, b.secret);
        assert_eq!(a.config_hash, b.config_hash);
    }

    #[test]
    fn a_versioned_stream_is_not_versioned_twice() {
        let first = resolve(&stream(&[CM, SECRET]), &versioned()).unwrap();
        let (cm, secret) = (
            first.config_map.clone().unwrap(),
            first.secret.clone().unwrap(),
        );
        let again = stream(&[
            &CM.replace("name: polls-config", &format!("name: {cm}")),
            &SECRET.replace("name: polls-secret", &format!("name: {secret}")),
        ]);
        let second = resolve(&again, &versioned()).unwrap();
        assert_eq!(second, first);
        // A flag naming the object finds its version too.
        let flagged = resolve(
            &again,
            &Wanted {
                config_map: Some("polls-config"),
                ..versioned()
            },
        )
        .unwrap();
        assert_eq!(flagged, first);
        // A suffix that is not the content's is part of the name.
        let stale = CM.replace("name: polls-config", "name: polls-config-0123456789");
        let third = resolve(&stream(&[&stale]), &versioned()).unwrap();
        assert!(
            third
                .config_map
                .unwrap()
                .starts_with("polls-config-0123456789-")
        );
    }

    #[test]
    fn without_the_flag_nothing_is_versioned_and_a_named_outsider_is_referenced_as_given() {
        let plain = resolve(&stream(&[CM, SECRET]), &wanted()).unwrap();
        assert_eq!(plain.config_map.as_deref(), Some("polls-config"));
        assert!(plain.versions.is_empty());
        let outside = resolve(
            &stream(&[CM]),
            &Wanted {
                secret: Some("made-elsewhere"),
                ..versioned()
            },
        )
        .unwrap();
        assert_eq!(outside.secret.as_deref(), Some("made-elsewhere"));
        assert_eq!(outside.versions.len(), 1);
    }

    #[test]
    fn the_versioned_object_is_renamed_and_immutable_and_keeps_the_rest() {
        let input = stream(&[
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {x: z}}\nimmutable: false\ndata: {A: b}\n",
        ]);
        let s = resolve(&input, &versioned()).unwrap();
        let value = versioned_object(&input[0], &s.versions[0]);
        assert_eq!(value["immutable"], true);
        assert_eq!(value["metadata"]["name"], s.versions[0].name.as_str());
        assert_eq!(value["metadata"]["labels"]["x"], "z");
        assert_eq!(value["data"], input[0].value["data"]);
    }
}

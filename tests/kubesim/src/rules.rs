//! Per-kind rules the real server enforces and tools trip on: names, Secret and
//! ConfigMap values, immutable fields, Ingress hosts, size, and the defaults it fills in.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;
use crate::status::{ApiError, Cause, DNS1123_SUBDOMAIN_HINT};

/// etcd's request limit, which the server applies to ConfigMap and Secret data.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;

// The name rules are kubesim's own, written from apimachinery's validation (IsDNS1123Label,
// IsDNS1123Subdomain) and checked against the recorded server answers (see the tests),
// never shared with the tools: a simulator that used the tools' rules could not catch
// their mistakes.

/// apimachinery's DNS-1123 label regex, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_label(s: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(alphanumeric)
        && s.ends_with(alphanumeric)
        && s.chars().all(|c| alphanumeric(c) || c == '-')
}

/// Why `name` is not a DNS-1123 label (Namespace and Service names), as the server says.
fn dns1123_label_error(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > 63 {
        Some("must be no more than 63 characters".into())
    } else if !is_dns1123_label(name) {
        Some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character"
                .into(),
        )
    } else {
        None
    }
}

/// Why `name` is not a DNS-1123 subdomain (most object names), as the server says.
fn dns1123_subdomain_error(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > 253 {
        Some("must be no more than 253 characters".into())
    } else if !name.split('.').all(is_dns1123_label) {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
             characters, '-' or '.', and must start and end with an alphanumeric character"
                .into(),
        )
    } else {
        None
    }
}

fn is(rt: &ResourceType, group: &str, plural: &str) -> bool {
    rt.group == group && rt.plural == plural && !rt.custom
}

/// `/v1, Kind=ConfigMap` as the apply machinery's messages name a kind.
fn gvk(rt: &ResourceType) -> String {
    format!("{}/{}, Kind={}", rt.group, rt.version, rt.kind)
}

/// A decoded JSON value as Go's `%#v` prints it inside `valueUnstructured{Value:...}`:
/// maps with sorted keys, lists, Go-quoted strings, int64 or float64 numbers.
fn go_value(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", go_quote(k), go_value(&map[k])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::String(s) => go_quote(s),
        Value::Null => "interface {}(nil)".into(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

/// Go's `strconv.Quote`: `\x` escapes for control bytes where JSON writes `\u00XX`,
/// `\u`/`\U` for any other rune Go does not print (`unicode.IsPrint`: no control,
/// format, private-use, unassigned or separator rune but the ASCII space).
pub fn go_quote(s: &str) -> String {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    let unprintable = |c: char| {
        c != ' '
            && matches!(
                c.general_category(),
                G::Control
                    | G::Format
                    | G::Surrogate
                    | G::PrivateUse
                    | G::Unassigned
                    | G::SpaceSeparator
                    | G::LineSeparator
                    | G::ParagraphSeparator
            )
    };
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if unprintable(c) && (c as u32) > 0xffff => {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
            c if unprintable(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a float64: shortest digits, an exponent from 1e21 on.
fn go_float(f: f64) -> String {
    if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp:0>2}"),
            Some((mantissa, exp)) => format!("{mantissa}e-{:0>2}", &exp[1..]),
            None => text,
        }
    } else {
        f.to_string()
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        _ => "null",
    }
}

/// ConfigMap and Secret values must be strings. An apply patch fails while the
/// server builds its typed patch (500, fixture 22); a JSON body fails to decode (400).
pub fn check_string_values(rt: &ResourceType, obj: &Value, apply: bool) -> Result<(), ApiError> {
    let fields: &[&str] = if is(rt, "", "configmaps") {
        &["data", "binaryData"]
    } else if is(rt, "", "secrets") {
        &["data", "stringData"]
    } else {
        return Ok(());
    };
    for field in fields {
        let Some(map) = obj.get(*field).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in map {
            if value.is_string() {
                continue;
            }
            return Err(if apply {
                let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                ApiError::internal(format!(
                    "failed to create typed patch object ({ns}/{name}; {}): .{field}.{key}: expected string, got &value.valueUnstructured{{Value:{}}}",
                    gvk(rt),
                    go_value(value)
                ))
            } else {
                ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: json: cannot unmarshal {t} into Go struct field {kind}.{field} of type string",
                    kind = rt.kind,
                    v = rt.version,
                    t = go_type(value)
                ))
            });
        }
    }
    Ok(())
}

/// Secret `stringData` is write-only: merged into base64 `data`, never stored.
/// Invalid base64 in `data` fails the conversion, as a 500 (fixture 26).
pub fn fold_secret_string_data(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    if !is(rt, "", "secrets") {
        return Ok(());
    }
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for value in data.values() {
            let text = value.as_str().unwrap_or_default();
            if let Err(e) = STANDARD.decode(text) {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                let at = match e {
                    base64::DecodeError::InvalidByte(i, _)
                    | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                    _ => text.len(),
                };
                return Err(ApiError::internal(format!(
                    "failed to convert new object (/{name}; {}) to proper version: unable to convert unstructured object to {}: error decoding from json: illegal base64 data at input byte {at}",
                    gvk(rt),
                    gvk(rt)
                )));
            }
        }
    }
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        let data = obj
            .as_object_mut()
            .expect("objects are maps")
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(data) = data {
            for (k, v) in string_data {
                data.insert(
                    k,
                    Value::from(STANDARD.encode(v.as_str().unwrap_or_default())),
                );
            }
        }
    }
    Ok(())
}

/// Validation of a complete object about to be stored; `old` for updates.
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut causes = Vec::new();
    let name_error = if is(rt, "", "namespaces") || is(rt, "", "services") {
        dns1123_label_error(name)
    } else {
        dns1123_subdomain_error(name).map(|e| format!("{e} {DNS1123_SUBDOMAIN_HINT}"))
    };
    if let Some(why) = name_error {
        causes.push(Cause::invalid("metadata.name", &format!("{name:?}"), &why));
    }
    label_causes(&obj["metadata"]["labels"], &mut causes);
    if is(rt, "", "configmaps") || is(rt, "", "secrets") {
        config_key_causes(obj, &mut causes);
    }
    annotation_causes(&obj["metadata"]["annotations"], &mut causes);
    if is(rt, "apiextensions.k8s.io", "customresourcedefinitions") {
        let spec = &obj["spec"];
        let expected = format!(
            "{}.{}",
            spec["names"]["plural"].as_str().unwrap_or_default(),
            spec["group"].as_str().unwrap_or_default()
        );
        if name != expected {
            causes.push(Cause::invalid(
                "metadata.name",
                &format!("{name:?}"),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
    }
    if is(rt, "", "configmaps") || is(rt, "", "secrets") {
        // As the API server counts: keys plus decoded bytes (a Secret's data and a
        // ConfigMap's binaryData are base64 on the wire).
        let secret = is(rt, "", "secrets");
        let size: usize = ["data", "binaryData"]
            .iter()
            .filter_map(|f| obj.get(*f).and_then(Value::as_object).map(|m| (*f, m)))
            .flat_map(|(field, m)| {
                let encoded = secret || field == "binaryData";
                m.iter().map(move |(k, v)| {
                    let text = v.as_str().unwrap_or_default();
                    let bytes = if encoded {
                        base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .map_or(text.len(), |b| b.len())
                    } else {
                        text.len()
                    };
                    k.len() + bytes
                })
            })
            .sum();
        if size > MAX_OBJECT_BYTES {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                message: format!("Too long: must have at most {MAX_OBJECT_BYTES} bytes"),
                field: "data".into(),
            });
        }
    }
    if is(rt, "networking.k8s.io", "ingresses") {
        ingress_hosts(obj, &mut causes);
    }
    if let Some(old) = old {
        let immutable = |field: &str, path: &[&str], causes: &mut Vec<Cause>| {
            let get = |v: &Value| {
                path.iter()
                    .fold(v.clone(), |v, p| v.get(*p).cloned().unwrap_or(Value::Null))
            };
            let (before, after) = (get(old), get(obj));
            if before != after {
                causes.push(Cause::invalid(
                    field,
                    &after.to_string(),
                    "field is immutable",
                ));
            }
        };
        if is(rt, "apps", "deployments") {
            immutable("spec.selector", &["spec", "selector"], &mut causes);
        }
        if is(rt, "batch", "jobs") {
            immutable("spec.template", &["spec", "template"], &mut causes);
        }
        if is(rt, "", "configmaps") || is(rt, "", "secrets") {
            immutable_data(rt, obj, old, &mut causes);
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, name, causes))
    }
}

/// A ConfigMap or Secret stored with `immutable: true` (ValidateConfigMapUpdate,
/// ValidateSecretUpdate): its data cannot change and `immutable` cannot be unset; its
/// metadata can. A Secret's stringData is folded into data before this, as the real
/// server converts it before validating.
fn immutable_data(rt: &ResourceType, obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    if old["immutable"] != true {
        return;
    }
    let forbidden = |field: &str| Cause {
        reason: "FieldValueForbidden",
        message: "Forbidden: field is immutable when `immutable` is set".into(),
        field: field.into(),
    };
    if obj["immutable"] != true {
        causes.push(forbidden("immutable"));
    }
    // Go's maps: absent and empty are both nil once stored.
    let map = |v: &Value, field: &str| match v.get(field) {
        Some(Value::Object(m)) if !m.is_empty() => Some(m.clone()),
        _ => None,
    };
    let fields: &[&str] = if is(rt, "", "secrets") {
        &["data"]
    } else {
        &["data", "binaryData"]
    };
    for field in fields {
        if map(obj, field) != map(old, field) {
            causes.push(forbidden(field));
        }
    }
}

const QUALIFIED_NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// apimachinery's RegexError wording, double spaces included.
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{regex}')",
        examples.join(" or ")
    )
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
/// Data keys of ConfigMaps and Secrets, as the real server words it:
/// `data[bad key]: Invalid value: "bad key": a valid config key must consist of ...`.
fn config_key_causes(obj: &Value, causes: &mut Vec<Cause>) {
    for field in ["data", "binaryData"] {
        let Some(map) = obj.get(field).and_then(Value::as_object) else {
            continue;
        };
        for key in map.keys() {
            let why = if key.is_empty() || key.len() > 253 {
                "must be no more than 253 characters".to_owned()
            } else if key == "." || key == ".." {
                format!("must not be '{key}'")
            } else if !key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            {
                regex_error(
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    "[-._a-zA-Z0-9]+",
                    &["key.name", "KEY_NAME", "key-name"],
                )
            } else {
                continue;
            };
            causes.push(Cause::invalid(
                format!("{field}[{key}]"),
                &go_quote(key),
                &why,
            ));
        }
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Why a label key breaks apimachinery's IsQualifiedName, one message per rule.
fn qualified_name_errors(key: &str) -> Vec<String> {
    let name_regex = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
    let examples = ["MyName", "my.name", "123-abc"];
    let mut errors = Vec::new();
    let name = match key.split('/').collect::<Vec<_>>().as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else if let Some(why) = dns1123_subdomain_error(prefix) {
                let hint = if why.starts_with("a lowercase") {
                    format!(" {DNS1123_SUBDOMAIN_HINT}")
                } else {
                    String::new()
                };
                errors.push(format!("prefix part {why}{hint}"));
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MESSAGE, name_regex, &examples)
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MESSAGE, name_regex, &examples)
        ));
    }
    errors
}

/// Why a label value breaks apimachinery's IsValidLabelValue.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            &format!(
                "a valid label must be an empty string or {}",
                QUALIFIED_NAME_MESSAGE.trim_start_matches("must ")
            ),
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// metadata.labels as ValidateLabels checks them: keys, then values.
fn label_causes(labels: &Value, causes: &mut Vec<Cause>) {
    let Some(labels) = labels.as_object() else {
        return;
    };
    for (key, value) in labels {
        for why in qualified_name_errors(key) {
            causes.push(Cause::invalid("metadata.labels", &format!("{key:?}"), &why));
        }
        let value = value.as_str().unwrap_or_default();
        for why in label_value_errors(value) {
            causes.push(Cause::invalid(
                "metadata.labels",
                &format!("{value:?}"),
                &why,
            ));
        }
    }
}

/// The most bytes metadata.annotations may hold, keys and values together.
const MAX_ANNOTATION_BYTES: usize = 256 * 1024;

/// metadata.annotations as ValidateAnnotations checks them: each key a qualified name
/// (compared lower-cased), and all of them together at most 256 KiB.
fn annotation_causes(annotations: &Value, causes: &mut Vec<Cause>) {
    let Some(annotations) = annotations.as_object() else {
        return;
    };
    let mut size = 0;
    for (key, value) in annotations {
        for why in qualified_name_errors(&key.to_lowercase()) {
            causes.push(Cause::invalid(
                "metadata.annotations",
                &format!("{key:?}"),
                &why,
            ));
        }
        size += key.len() + value.as_str().map_or(0, str::len);
    }
    if size > MAX_ANNOTATION_BYTES {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            message: format!("Too long: must have at most {MAX_ANNOTATION_BYTES} bytes"),
            field: "metadata.annotations".into(),
        });
    }
}

fn ingress_hosts(obj: &Value, causes: &mut Vec<Cause>) {
    let mut check = |field: String, host: &str| {
        let bare = host.strip_prefix("*.").unwrap_or(host);
        if let Some(why) = dns1123_subdomain_error(bare) {
            causes.push(Cause::invalid(
                field,
                &format!("{host:?}"),
                &format!("{why} {DNS1123_SUBDOMAIN_HINT}"),
            ));
        }
    };
    let items = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for (i, rule) in items(&obj["spec"]["rules"]).iter().enumerate() {
        if let Some(host) = rule["host"].as_str() {
            check(format!("spec.rules[{i}].host"), host);
        }
    }
    for (i, tls) in items(&obj["spec"]["tls"]).iter().enumerate() {
        for (j, host) in items(&tls["hosts"]).iter().enumerate() {
            if let Some(host) = host.as_str() {
                check(format!("spec.tls[{i}].hosts[{j}]"), host);
            }
        }
    }
}

/// What admission adds before the write is recorded, so the writer owns it: a
/// namespace's `kubernetes.io/metadata.name` label (fixture 12).
pub fn admit(rt: &ResourceType, obj: &mut Value) {
    if is(rt, "", "namespaces") && obj["metadata"].is_object() {
        let name = obj["metadata"]["name"].clone();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    }
}

/// Fills in what the real server defaults, so objects read back as they would
/// from a cluster (fixtures 27 and 29). Idempotent: a no-op apply stays a no-op.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if rt.custom {
        return;
    }
    crate::fields::default_port_protocols(obj);
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => default(obj, &["spec", "finalizers"], json!(["kubernetes"])),
        ("", "secrets") => default(obj, &["type"], json!("Opaque")),
        ("", "services") => {
            default(obj, &["spec", "type"], json!("ClusterIP"));
            default(obj, &["spec", "sessionAffinity"], json!("None"));
        }
        ("apps", "deployments") => {
            default(obj, &["spec", "replicas"], json!(1));
            default(
                obj,
                &["spec", "strategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            pod_template_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        ("", "pods") => {
            pod_template_defaults(&mut obj["spec"]);
            default(obj, &["spec", "enableServiceLinks"], json!(true));
            default(obj, &["spec", "priority"], json!(0));
        }
        ("apps", "replicasets") => {
            default(obj, &["spec", "replicas"], json!(1));
            pod_template_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        ("batch", "jobs") => {
            // The job controller finds its pods by these labels, keyed by the Job's uid.
            let uid = obj["metadata"]["uid"].clone();
            let name = obj["metadata"]["name"].clone();
            let labels = json!({
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            });
            if obj["spec"]["manualSelector"] != json!(true) {
                default(
                    obj,
                    &["spec", "selector"],
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                );
                for (k, v) in labels.as_object().expect("literal map") {
                    default(obj, &["metadata", "labels", k], v.clone());
                    default(
                        obj,
                        &["spec", "template", "metadata", "labels", k],
                        v.clone(),
                    );
                }
            }
            default(obj, &["spec", "manualSelector"], json!(false));
            default(
                obj,
                &["spec", "podReplacementPolicy"],
                json!("TerminatingOrFailed"),
            );
            default(obj, &["spec", "parallelism"], json!(1));
            default(obj, &["spec", "completions"], json!(1));
            default(obj, &["spec", "backoffLimit"], json!(6));
            default(obj, &["spec", "completionMode"], json!("NonIndexed"));
            default(obj, &["spec", "suspend"], json!(false));
            pod_template_defaults(&mut obj["spec"]["template"]["spec"]);
        }
        _ => {}
    }
}

fn default(obj: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = obj;
    for p in parents {
        if !cur.is_object() {
            return;
        }
        cur = cur
            .as_object_mut()
            .expect("checked")
            .entry(*p)
            .or_insert_with(|| json!({}));
    }
    if let Some(m) = cur.as_object_mut() {
        m.entry(*last).or_insert(value);
    }
}

fn pod_template_defaults(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, &["restartPolicy"], json!("Always"));
    default(spec, &["terminationGracePeriodSeconds"], json!(30));
    default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default(spec, &["securityContext"], json!({}));
    default(spec, &["schedulerName"], json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                let image = c["image"].as_str().unwrap_or_default();
                let tag = image.rsplit('/').next().unwrap_or_default();
                let pull = if !tag.contains(':') || tag.ends_with(":latest") {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                default(c, &["imagePullPolicy"], json!(pull));
                default(c, &["resources"], json!({}));
                default(
                    c,
                    &["terminationMessagePath"],
                    json!("/dev/termination-log"),
                );
                default(c, &["terminationMessagePolicy"], json!("File"));
            }
        }
    }
}

/// The status a new object starts with when written through the main resource.
pub fn initial_status(rt: &ResourceType) -> Option<Value> {
    match (rt.custom, rt.group.as_str(), rt.plural.as_str()) {
        (true, _, _) => None,
        (_, "", "namespaces") => Some(json!({"phase": "Active"})),
        (_, "", "services") | (_, "networking.k8s.io", "ingresses") => {
            Some(json!({"loadBalancer": {}}))
        }
        (_, "", "pods") => Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
        (_, "apiextensions.k8s.io", _) => None,
        (_, _, _) if rt.status_subresource => Some(json!({})),
        _ => None,
    }
}

/// What the real server writes into a CustomResourceDefinition's status once its
/// names are accepted: Established, so the new resource is served at once.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtins;

    fn rt(plural: &str) -> ResourceType {
        builtins().into_iter().find(|t| t.plural == plural).unwrap()
    }

    /// The cause a real kube-apiserver gave for a name (recorded in tests/fixtures).
    fn recorded_name_cause(fixture: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/apiserver/");
        let text = std::fs::read_to_string(format!("{path}{fixture}")).unwrap();
        let record: Value = serde_json::from_str(&text).unwrap();
        record["response"]["body"]["details"]["causes"][0]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn name_rules_say_what_the_recorded_server_said() {
        let cause = Cause::invalid(
            "metadata.name",
            "\"Bad_Name\"",
            &format!(
                "{} {DNS1123_SUBDOMAIN_HINT}",
                dns1123_subdomain_error("Bad_Name").unwrap()
            ),
        );
        assert_eq!(cause.message, recorded_name_cause("24-invalid-name.json"));
        for good in [
            "polls",
            "polls-config",
            "a.b-c.d",
            "0",
            "x".repeat(253).as_str(),
        ] {
            assert_eq!(dns1123_subdomain_error(good), None, "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", ".a", "A", "a_b", &"x".repeat(254)] {
            assert!(dns1123_subdomain_error(bad).is_some(), "{bad:?}");
        }
        assert_eq!(dns1123_label_error("polls"), None);
        for bad in ["a.b", &"x".repeat(64), "-a", ""] {
            assert!(dns1123_label_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn string_data_becomes_base64_data() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"A": "s3cr3t"}, "data": {"B": "b3RoZXI="}});
        fold_secret_string_data(&rt("secrets"), &mut s).unwrap();
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "data": {"A": "czNjcjN0", "B": "b3RoZXI="}})
        );
        let mut bad = json!({"metadata": {"name": "bad64"}, "data": {"K": "***notbase64"}});
        let e = fold_secret_string_data(&rt("secrets"), &mut bad).unwrap_err();
        assert_eq!(e.code, 500);
        assert!(
            e.message.ends_with("illegal base64 data at input byte 0"),
            "{}",
            e.message
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old =
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}}}});
        let new =
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "b"}}}});
        let e = validate(&rt("deployments"), &new, Some(&old)).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.starts_with("Deployment.apps \"d\" is invalid: spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"b\"}}: field is immutable"), "{}", e.message);
    }

    #[test]
    fn immutable_config_maps_and_secrets_keep_their_data() {
        let cm = |data: Value, immutable: Value| json!({"metadata": {"name": "c", "labels": {"v": "1"}}, "immutable": immutable, "data": data});
        let old = cm(json!({"A": "1"}), json!(true));
        // Metadata may change; the same data may be written again.
        let relabelled = json!({"metadata": {"name": "c", "labels": {"v": "2"}}, "immutable": true, "data": {"A": "1"}});
        validate(&rt("configmaps"), &relabelled, Some(&old)).unwrap();

        let e = validate(
            &rt("configmaps"),
            &cm(json!({"A": "2"}), json!(true)),
            Some(&old),
        )
        .unwrap_err();
        assert_eq!((e.code, e.reason.as_deref()), (422, Some("Invalid")));
        assert_eq!(
            e.message,
            "ConfigMap \"c\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        );
        let causes = &e.details.as_ref().unwrap()["causes"];
        assert_eq!(
            causes[0],
            json!({"reason": "FieldValueForbidden", "message": "Forbidden: field is immutable when `immutable` is set", "field": "data"})
        );

        for unset in [json!(false), Value::Null] {
            let e =
                validate(&rt("configmaps"), &cm(json!({"A": "1"}), unset), Some(&old)).unwrap_err();
            assert_eq!(
                e.message,
                "ConfigMap \"c\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set"
            );
        }
        let binary = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"A": "1"}, "binaryData": {"B": "AA=="}});
        let e = validate(&rt("configmaps"), &binary, Some(&old)).unwrap_err();
        assert!(
            e.message
                .ends_with("binaryData: Forbidden: field is immutable when `immutable` is set"),
            "{}",
            e.message
        );

        // A mutable one may change, and may become immutable.
        let mutable = cm(json!({"A": "1"}), Value::Null);
        validate(
            &rt("configmaps"),
            &cm(json!({"A": "2"}), json!(true)),
            Some(&mutable),
        )
        .unwrap();

        // A Secret: its stringData is folded into data first, as the real server does.
        let old = json!({"metadata": {"name": "s"}, "immutable": true, "data": {"K": "b2xk"}});
        let mut new =
            json!({"metadata": {"name": "s"}, "immutable": true, "stringData": {"K": "new"}});
        fold_secret_string_data(&rt("secrets"), &mut new).unwrap();
        let e = validate(&rt("secrets"), &new, Some(&old)).unwrap_err();
        assert_eq!(
            e.message,
            "Secret \"s\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
        );
        assert!(!e.message.contains("new") && !e.message.contains("b2xk"));
        let mut same = json!({"metadata": {"name": "s", "annotations": {"a": "b"}}, "immutable": true, "stringData": {"K": "old"}});
        fold_secret_string_data(&rt("secrets"), &mut same).unwrap();
        validate(&rt("secrets"), &same, Some(&old)).unwrap();
    }

    #[test]
    fn label_keys_and_values_are_validated_as_the_real_server_words_it() {
        let cm = |labels: Value| json!({"metadata": {"name": "c", "labels": labels}});
        assert!(
            validate(
                &rt("configmaps"),
                &cm(json!({"app.kubernetes.io/name": "polls", "tier": ""})),
                None
            )
            .is_ok()
        );
        let e = validate(&rt("configmaps"), &cm(json!({"bad key": "ok"})), None).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        let long = "v".repeat(64);
        let e = validate(
            &rt("configmaps"),
            &cm(json!({"app": long, "Bad_/x": "-bad"})),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "ConfigMap \"c\" is invalid: [metadata.labels: Invalid value: \"Bad_/x\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character {DNS1123_SUBDOMAIN_HINT}, metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?'), metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters]"
            )
        );
        let causes = e.to_status()["details"]["causes"].clone();
        assert_eq!(causes[0]["field"], "metadata.labels");
        assert_eq!(causes[0]["reason"], "FieldValueInvalid");
    }

    #[test]
    fn a_crd_must_be_named_plural_dot_group() {
        let crd = |name: &str| json!({"metadata": {"name": name}, "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"}}});
        let crds = rt("customresourcedefinitions");
        assert!(validate(&crds, &crd("widgets.example.com"), None).is_ok());
        let e = validate(&crds, &crd("widget.example.com"), None).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "CustomResourceDefinition.apiextensions.k8s.io \"widget.example.com\" is invalid: metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group"
        );
    }

    #[test]
    fn bool_in_configmap_is_rejected() {
        let cm = json!({"metadata": {"name": "boolish"}, "data": {"DEBUG": true}});
        let e = check_string_values(&rt("configmaps"), &cm, true).unwrap_err();
        assert_eq!(
            e.message,
            "failed to create typed patch object (/boolish; /v1, Kind=ConfigMap): .data.DEBUG: expected string, got &value.valueUnstructured{Value:true}"
        );
    }

    #[test]
    fn secret_values_are_echoed_as_a_real_v1_36_server_echoes_them() {
        let secret = |value: Value| json!({"metadata": {"name": "s1", "namespace": "ns"}, "stringData": {"k": value}});
        let echo = |value: Value| {
            check_string_values(&rt("secrets"), &secret(value), true)
                .unwrap_err()
                .message
        };
        assert_eq!(
            echo(json!(7060754348u64)),
            "failed to create typed patch object (ns/s1; /v1, Kind=Secret): .stringData.k: expected string, got &value.valueUnstructured{Value:7060754348}"
        );
        assert!(
            echo(json!({"nested": "VALUE", "a": [1, "x\u{1}"]})).ends_with(
                "got &value.valueUnstructured{Value:map[string]interface {}{\"a\":[]interface {}{1, \"x\\x01\"}, \"nested\":\"VALUE\"}}"
            )
        );
        let bad_key = json!({"metadata": {"name": "s4"}, "data": {"bad key": "eA=="}});
        let e = validate(&rt("secrets"), &bad_key, None).unwrap_err();
        assert_eq!(
            e.message,
            "Secret \"s4\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        );
    }
}

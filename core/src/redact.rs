//! Keeping secret values out of every message, log and terminal.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// What replaces a secret value wherever one would be shown.
pub const MASK: &str = "<redacted>";

/// Whether an object carries secret material (a core/v1 Secret).
pub fn is_secret(obj: &Value) -> bool {
    obj["kind"] == "Secret" && obj["apiVersion"] == "v1"
}

/// Replaces every value under a Secret's `data` and `stringData` with [`MASK`];
/// other objects are left alone.
pub fn mask_secret(obj: &mut Value) {
    if !is_secret(obj) {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = obj.get_mut(field) {
            for v in map.values_mut() {
                *v = Value::String(MASK.into());
            }
        }
    }
}

/// Remembers the secret values of a stream and scrubs them (plain and base64) from any
/// text, such as an API server message that echoes a rejected value back.
#[derive(Debug, Default, Clone)]
pub struct Scrubber {
    needles: Vec<String>,
}

/// Values shorter than this are not scrubbed: they would mangle every message and a
/// secret that short protects nothing.
const MIN_SCRUB_LEN: usize = 3;

impl Scrubber {
    /// Learns the values of every Secret in `objects`.
    ///
    /// A value that is part of an object's name, namespace or labels is public already
    /// (anyone who can list the objects sees it) and is not scrubbed: masking the
    /// tutorial's `DATABASE_NAME=polls` would turn every `polls-app` in every message
    /// into `<redacted>-app` and protect nothing.
    pub fn learn<'a>(&mut self, objects: impl IntoIterator<Item = &'a Value>) {
        let objects: Vec<&Value> = objects.into_iter().collect();
        for obj in objects.iter().filter(|o| is_secret(o)) {
            if let Some(Value::Object(map)) = obj.get("stringData") {
                for v in map.values().filter_map(Value::as_str) {
                    self.add(v);
                    self.add(&STANDARD.encode(v));
                }
            }
            if let Some(Value::Object(map)) = obj.get("data") {
                for v in map.values().filter_map(Value::as_str) {
                    self.add(v);
                    if let Ok(plain) = STANDARD.decode(v)
                        && let Ok(text) = String::from_utf8(plain)
                    {
                        self.add(&text);
                    }
                }
            }
        }
        let public: Vec<&str> = objects.iter().flat_map(|o| public_strings(o)).collect();
        self.needles
            .retain(|n| !public.iter().any(|p| p.contains(n.as_str())));
        // Longest first, so a value that contains another is masked whole.
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    }

    fn add(&mut self, value: &str) {
        if value.len() >= MIN_SCRUB_LEN && !self.needles.iter().any(|n| n == value) {
            self.needles.push(value.to_owned());
            // Servers quote values in messages as JSON does; mask that form too.
            let quoted = serde_json::to_string(value).unwrap_or_default();
            let inner = &quoted[1..quoted.len().saturating_sub(1)];
            if inner != value && inner.len() >= MIN_SCRUB_LEN {
                self.needles.push(inner.to_owned());
            }
        }
    }

    /// `text` with every known secret value replaced by [`MASK`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secret_data_only() {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2VjcmV0"},
                           "stringData": {"b": "x"}});
        mask_secret(&mut s);
        assert_eq!(s["data"]["a"], MASK);
        assert_eq!(s["stringData"]["b"], MASK);
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
        assert!(refuse_secrets_on_terminal([&secret], true, true).is_ok());
        assert!(refuse_secrets_on_terminal([&secret], false, false).is_ok());
        assert!(refuse_secrets_on_terminal([&cm, &empty], true, false).is_ok());
    }

    #[test]
    fn values_public_in_names_or_labels_are_not_scrubbed() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "polls-secret", "labels": {"app": "polls"}},
                            "stringData": {"DATABASE_NAME": "polls", "PASSWORD": "hunter22"}});
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                "metadata": {"name": "polls-app"}});
        let mut s = Scrubber::default();
        s.learn([&secret, &deployment]);
        let clean = s.scrub("deployment.apps/polls-app: password hunter22 rejected");
        assert_eq!(
            clean,
            "deployment.apps/polls-app: password <redacted> rejected"
        );
    }

    #[test]
    fn scrubs_plain_base64_and_quoted_forms() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "stringData": {"pw": "hunter2\"x"}, "data": {"k": "c3VwZXJzZWNyZXQ="}});
        let mut s = Scrubber::default();
        s.learn([&secret]);
        let msg = "bad value hunter2\"x and \"hunter2\\\"x\" and supersecret and aHVudGVyMiJ4";
        let clean = s.scrub(msg);
        assert!(!clean.contains("hunter2"), "{clean}");
        assert!(!clean.contains("supersecret"), "{clean}");
        assert!(!clean.contains("aHVudGVyMiJ4"), "{clean}");
    }
}

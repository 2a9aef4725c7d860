//! Apply patches are YAML read the way kube-apiserver reads it: YAML 1.1, where
//! a plain `on`, `yes` or `off` is a boolean (fixture 22). serde_yaml reads YAML 1.2,
//! so those scalars are turned back into booleans here.

use serde_json::Value;

use crate::status::ApiError;

/// YAML 1.1 booleans that YAML 1.2 reads as strings.
const YAML11_BOOLS: &[(&str, bool)] = &[
    ("y", true),
    ("Y", true),
    ("yes", true),
    ("Yes", true),
    ("YES", true),
    ("on", true),
    ("On", true),
    ("ON", true),
    ("n", false),
    ("N", false),
    ("no", false),
    ("No", false),
    ("NO", false),
    ("off", false),
    ("Off", false),
    ("OFF", false),
];

/// Parses an `application/apply-patch+yaml` body.
pub fn parse_apply(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut value: Value = serde_yaml::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let text = String::from_utf8_lossy(bytes);
    if !text.trim_start().starts_with('{') {
        let plain = plain_bool_entries(&text);
        if !plain.is_empty() {
            retype(&mut value, &plain);
        }
    }
    Ok(value)
}

/// `key: on` lines whose value is an unquoted YAML 1.1 boolean.
fn plain_bool_entries(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            let (key, value) = line.split_once(": ")?;
            let value = value.split(" #").next().unwrap_or_default().trim();
            let b = YAML11_BOOLS.iter().find(|(word, _)| *word == value)?.1;
            Some((key.trim().trim_matches(['"', '\'']).to_string(), b))
        })
        .collect()
}

fn retype(value: &mut Value, plain: &[(String, bool)]) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if let Value::String(s) = v
                    && let Some((_, b)) = plain
                        .iter()
                        .find(|(key, b)| key == k && YAML11_BOOLS.contains(&(s.as_str(), *b)))
                {
                    *v = Value::Bool(*b);
                } else {
                    retype(v, plain);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| retype(v, plain)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_on_is_a_bool_and_quoted_on_is_not() {
        let v = parse_apply(b"data:\n  DEBUG: on\n  QUOTED: \"on\"\n  AT: 12:30:00\n").unwrap();
        assert_eq!(
            v,
            json!({"data": {"DEBUG": true, "QUOTED": "on", "AT": "12:30:00"}})
        );
        let v = parse_apply(b"{\"data\": {\"DEBUG\": \"on\"}}").unwrap();
        assert_eq!(v, json!({"data": {"DEBUG": "on"}}));
    }
}

//! Request bodies in YAML, read the way kube-apiserver reads them: YAML 1.1 through
//! sigs.k8s.io/yaml, where a plain `on`, `yes` or `off` is a boolean (fixture 22) and
//! `0755` is octal. kpipe's own reader (the one the tools use) does exactly that.

use kpipe_core::yaml11;
use serde_json::Value;

use crate::status::ApiError;

/// Reads a YAML (or JSON) body; `what` starts the 400's message, as the server words it.
pub fn parse(bytes: &[u8], what: &str) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request(format!("{what}: invalid UTF-8")))?;
    let loaded = yaml11::load(text)
        .map_err(|e| ApiError::bad_request(format!("{what}: line {}: {}", e.line, e.message)))?;
    Ok(loaded.value.unwrap_or(Value::Null))
}

/// Parses an `application/apply-patch+yaml` body.
pub fn parse_apply(bytes: &[u8]) -> Result<Value, ApiError> {
    parse(bytes, "error decoding YAML")
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
        assert!(parse_apply(b"data: [").is_err());
    }
}

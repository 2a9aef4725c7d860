//! `labelSelector` and `fieldSelector` query parameters.

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Both selectors of a list or watch request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

/// Splits on commas outside parentheses (`a in (x,y),b`).
fn split_terms(s: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_term(term: &str) -> Result<Requirement, ApiError> {
    let set = |rest: &str| -> Vec<String> {
        rest.trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(|v| v.trim().to_string())
            .collect()
    };
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, rest)) = term.split_once(" notin ") {
        return Ok(Requirement::NotIn(k.trim().into(), set(rest)));
    }
    if let Some((k, rest)) = term.split_once(" in ") {
        return Ok(Requirement::In(k.trim().into(), set(rest)));
    }
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(k.trim().into()));
    }
    if term.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(format!(
            "unable to parse requirement: {term:?}"
        )));
    }
    Ok(Requirement::Exists(term.into()))
}

fn holds(req: &Requirement, value: impl Fn(&str) -> Option<String>) -> bool {
    match req {
        Requirement::Equals(k, v) => value(k).as_deref() == Some(v),
        Requirement::NotEquals(k, v) => value(k).as_deref() != Some(v),
        Requirement::In(k, vs) => value(k).is_some_and(|x| vs.contains(&x)),
        Requirement::NotIn(k, vs) => value(k).is_none_or(|x| !vs.contains(&x)),
        Requirement::Exists(k) => value(k).is_some(),
        Requirement::NotExists(k) => value(k).is_none(),
    }
}

impl Selector {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Selector, ApiError> {
        let labels = split_terms(labels.unwrap_or_default())
            .iter()
            .map(|t| parse_term(t))
            .collect::<Result<_, _>>()?;
        let fields: Vec<Requirement> = split_terms(fields.unwrap_or_default())
            .iter()
            .map(|t| parse_term(t))
            .collect::<Result<_, _>>()?;
        for f in &fields {
            let (Requirement::Equals(k, _) | Requirement::NotEquals(k, _)) = f else {
                return Err(ApiError::bad_request(
                    "invalid field selector: only = and != are supported",
                ));
            };
            // Real servers allow a few fields per kind (involvedObject.name for Events,
            // status.phase for Pods...); any dotted path of the object is served here.
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
        }
        Ok(Selector { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        let label = |k: &str| meta["labels"][k].as_str().map(String::from);
        let field = |k: &str| {
            let value = k.split('.').fold(obj, |v, part| &v[part]);
            Some(match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        };
        self.labels.iter().all(|r| holds(r, label)) && self.fields.iter().all(|r| holds(r, field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_and_field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "n", "labels": {"app": "polls", "tier": "web"}}});
        let s = |l: &str, f: &str| Selector::parse(Some(l), Some(f)).unwrap().matches(&obj);
        assert!(s("app=polls", ""));
        assert!(s("app in (x,polls),tier", "metadata.name=a"));
        assert!(!s("app!=polls", ""));
        assert!(!s("", "metadata.name=b"));
        assert!(s("!missing,tier notin (db)", "metadata.namespace=n"));
        assert!(s("", "metadata.name!=b,spec.missing="));
        assert!(Selector::parse(None, Some("spec x=1")).is_err());
    }
}

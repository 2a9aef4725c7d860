//! Planning: each input object placed (namespace, body to send) before any write.

use crate::api::Target;
use crate::discover::Resolved;
use kpipe_core::{Document, Error, ObjectId, Result};
use kube::core::ApiResource;
use kube::discovery::Scope;
use serde_json::Value;

/// One object ready to apply.
pub(crate) struct Item {
    /// Position in the input, for output in input order.
    pub position: usize,
    pub id: ObjectId,
    pub resolved: Resolved,
    /// The object as sent: namespace set for namespaced kinds, removed for the others.
    pub body: Value,
    /// Why it cannot be applied, found after planning (its CRD failed).
    pub blocked: Option<String>,
}

impl Item {
    pub fn target(&self, resource: &ApiResource) -> Target {
        Target {
            resource: resource.clone(),
            namespace: self.id.namespace.clone(),
            name: self.id.name.clone(),
        }
    }
}

/// Places every object: namespace, the body to send. A namespace that
/// contradicts `-n` is bad input, as in kubectl.
pub(crate) fn plan(
    docs: Vec<Document>,
    resolved: Vec<Resolved>,
    namespace: &str,
    namespace_from_flag: bool,
) -> Result<Vec<Item>> {
    let mut items = Vec::with_capacity(docs.len());
    for (position, (doc, resolved)) in docs.into_iter().zip(resolved).enumerate() {
        let mut id = doc.id();
        let mut body = doc.value.clone();
        let meta = body
            .as_object_mut()
            .expect("documents are objects")
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        let meta = meta
            .as_object_mut()
            .expect("metadata is checked to be a mapping");
        match resolved.scope {
            Scope::Cluster => {
                meta.remove("namespace");
                id.namespace = None;
            }
            Scope::Namespaced => {
                let ns = match &id.namespace {
                    Some(own) if namespace_from_flag && own != namespace => {
                        return Err(Error::input(format!(
                            "{}: {}/{}: its namespace \"{own}\" does not match -n \"{namespace}\" \
                             (as kubectl, kapply does not move objects: drop -n or pass -n {own})",
                            doc.place(),
                            id.kind,
                            id.name
                        )));
                    }
                    Some(own) => own.clone(),
                    None => namespace.to_owned(),
                };
                meta.insert("namespace".into(), Value::String(ns.clone()));
                id.namespace = Some(ns);
            }
        }
        items.push(Item {
            position,
            id,
            resolved,
            body,
            blocked: None,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(text: &str, scope: Scope, ns: &str, from_flag: bool) -> Result<Vec<Item>> {
        let docs = kpipe_core::stream::parse("in.yaml", text).unwrap();
        let resolved = docs
            .iter()
            .map(|d| Resolved {
                resource: ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                    "",
                    "v1",
                    d.kind(),
                )),
                scope: scope.clone(),
                pending_crd: None,
            })
            .collect();
        plan(docs, resolved, ns, from_flag)
    }

    #[test]
    fn namespaced_objects_get_the_default_namespace_and_keep_their_own() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: other}\n";
        let items = planned(text, Scope::Namespaced, "polls", false).unwrap();
        assert_eq!(items[0].body["metadata"]["namespace"], "polls");
        assert_eq!(items[1].id.namespace.as_deref(), Some("other"));
    }

    #[test]
    fn a_namespace_other_than_the_flag_is_bad_input() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: other}\n";
        let err = planned(text, Scope::Namespaced, "polls", true)
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with("in.yaml: document 1 (line 1): ConfigMap/b: its namespace \"other\" does not match -n \"polls\""));
    }

    #[test]
    fn cluster_scoped_objects_lose_their_namespace() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: polls, namespace: stray}\n";
        let items = planned(text, Scope::Cluster, "polls", true).unwrap();
        assert!(items[0].body["metadata"].get("namespace").is_none());
        assert_eq!(items[0].id.namespace, None);
    }
}

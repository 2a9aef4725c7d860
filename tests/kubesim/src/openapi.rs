//! The OpenAPI v3 documents kubectl reads before it writes: it looks up the PATCH
//! operation of a kind for a `fieldValidation` parameter, and when it finds one it
//! leaves validation to the server (`--validate=strict` works without schemas).
//! Schemas are left out: `kubectl explain` is not supported.

use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// GET /openapi/v3: one entry per served group/version.
pub fn root(types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for t in types {
        let gv = gv_path(&t.group, &t.version);
        let url = format!("/openapi/v3/{gv}");
        paths.insert(gv, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// GET /openapi/v3/api/v1 or /openapi/v3/apis/G/V; None when nothing is served there.
pub fn group_version(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for t in served {
        let base = if t.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                t.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), t.plural)
        };
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let patch = json!({
            "operationId": format!("patch{}", t.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
            "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
        });
        paths.insert(format!("{base}/{{name}}"), json!({"patch": patch}));
        if t.status_subresource {
            paths.insert(format!("{base}/{{name}}/status"), json!({"patch": patch}));
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-kubesim"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

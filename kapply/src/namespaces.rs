//! `--create-namespace`: the namespaces a run writes into are made when missing (as
//! `helm install --create-namespace`), before anything else is written, the ApplySet
//! parent included. They stay outside the set (no set label), so no prune deletes them.

use crate::api::{Caller, Target};
use crate::reporter::Reporter;
use kpipe_core::{Error, Result};
use kube::core::ApiResource;
use kube::core::params::PatchParams;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};

fn target(name: &str) -> Target {
    Target {
        resource: ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            plural: "namespaces".into(),
        },
        namespace: None,
        name: name.to_owned(),
    }
}

/// Creates each of `wanted` that does not exist, with one line each on stderr; in a
/// dry run only says so. Returns the namespaces that are missing still (a dry run's),
/// whose objects the server cannot check yet.
pub(crate) async fn create_missing(
    caller: &Caller,
    reporter: &Reporter,
    wanted: &BTreeSet<String>,
    field_manager: &str,
    dry_run: bool,
) -> Result<HashSet<String>> {
    let mut missing = HashSet::new();
    for name in wanted {
        let target = target(name);
        let what = format!("namespace/{name}");
        let live = caller
            .get(&target, &what)
            .await
            .map_err(|f| Error::runtime(format!("{what}: {}", f.message())))?;
        if live.is_some() {
            continue;
        }
        if dry_run {
            reporter.say(&format!(
                "kapply: {what} would be created (--create-namespace; dry run: nothing written)\n"
            ));
            missing.insert(name.clone());
            continue;
        }
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        caller
            .apply(&target, &body, &PatchParams::apply(field_manager), &what)
            .await
            .map_err(|f| Error::runtime(format!("{what}: creating it: {}", f.message())))?;
        reporter.say(&format!(
            "kapply: {what} created (--create-namespace: not part of any set, never pruned)\n"
        ));
    }
    Ok(missing)
}

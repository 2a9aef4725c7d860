//! What a prune or a delete keeps of the set's objects it found: an object a kept
//! object uses (a Secret a Deployment reads, the Service an Ingress routes to), and a
//! Namespace that something else still lives in. Decided before anything is deleted,
//! from the objects this run applied and the live objects around the found ones.
//!
//! Kept objects are: the objects this run applied, and the live objects in the
//! namespaces concerned that this run does not delete. An object all of whose owners
//! (ownerReferences) are known here (applied, listed, or being deleted) counts through
//! them: a ReplicaSet through its Deployment, a Pod through its ReplicaSet, a Job
//! through its CronJob; what a deleted owner owns goes with it.

use crate::api::Caller;
use crate::applyset::{Live, identified};
use crate::failure::Failure;
use crate::references::{self, Referent};
use crate::report::kubectl_name;
use futures::StreamExt;
use kpipe_core::{Error, ObjectId, Result};
use kube::core::ApiResource;
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Users named in a kept line before `and N more`.
const NAMED: usize = 3;

/// A found object that stays, and why.
pub struct Kept {
    pub live: Live,
    pub why: String,
}

/// The found objects split into those to delete and those kept.
pub struct Selection {
    pub doomed: Vec<Live>,
    pub kept: Vec<Kept>,
}

/// Splits `found` (the set's objects a prune or delete would remove) into what goes
/// and what stays. `applied` are the objects this run applied, as the server answered;
/// `parent` the set's parent when this run deletes it too. The live objects around are
/// read only when a found object is a Namespace or of a kind others use by name.
pub async fn select(
    caller: &Caller,
    found: Vec<Live>,
    applied: &[&Value],
    parent: Option<&ObjectId>,
    concurrency: usize,
) -> Result<Selection> {
    let mut whole = BTreeSet::new();
    let mut users_only = BTreeSet::new();
    for (id, _, _) in &found {
        if is_namespace(id) {
            whole.insert(id.name.clone());
        } else if Referent::of(id.group(), &id.kind).is_some()
            && let Some(ns) = &id.namespace
        {
            users_only.insert(ns.clone());
        }
    }
    if whole.is_empty() && users_only.is_empty() {
        return Ok(Selection {
            doomed: found,
            kept: Vec::new(),
        });
    }
    let served = served(caller).await?;
    let mut lists = Vec::new();
    for ns in &whole {
        lists.extend(served.iter().map(|r| (ns.clone(), r)));
    }
    for ns in users_only.difference(&whole) {
        let users = served
            .iter()
            .filter(|r| references::USERS.contains(&(r.group.as_str(), r.kind.as_str())));
        lists.extend(users.map(|r| (ns.clone(), r)));
    }
    let listed: Vec<(String, std::result::Result<Vec<Live>, String>)> =
        futures::stream::iter(lists)
            .map(|(ns, resource)| async move {
                let what = format!("list of {} in namespace {ns}", resource.plural);
                let objects = caller
                    .list_selected(resource, Some(&ns), None, &what)
                    .await
                    .map_err(|f: Failure| format!("{what}: {}", f.message()))
                    .map(|objects| identified(resource, objects));
                (ns, objects)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let mut around = Around::default();
    let mut seen = HashSet::new();
    for (ns, objects) in listed {
        match objects {
            Ok(objects) => around.objects.extend(
                objects
                    .into_iter()
                    .filter(|(_, _, o)| uid(o).is_none_or(|u| seen.insert(u.to_owned()))),
            ),
            Err(why) => {
                around.unreadable.entry(ns).or_insert(why);
            }
        }
    }
    Ok(decide(found, applied, parent, &around))
}

/// The live objects read around the found ones.
#[derive(Default)]
struct Around {
    /// Each object once, whatever group it was listed under.
    objects: Vec<Live>,
    /// Namespaces a list failed in: why.
    unreadable: BTreeMap<String, String>,
}

/// The namespaced kinds the server serves and lists, each once (its preferred version).
async fn served(caller: &Caller) -> Result<Vec<ApiResource>> {
    let discovery = caller
        .retrying("discovery", || async {
            let client = caller.client().clone();
            match Discovery::new(client.clone()).run_aggregated().await {
                Ok(found) => Ok(found),
                // A server before aggregated discovery: one request per group.
                Err(_) => Discovery::new(client).run().await.map_err(Failure::from),
            }
        })
        .await
        .map_err(|f| Error::runtime(format!("discovery: {}", f.message())))?;
    Ok(discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| caps.scope == Scope::Namespaced && caps.supports_operation(verbs::LIST))
        .map(|(resource, _)| resource)
        .collect())
}

fn uid(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

fn is_namespace(id: &ObjectId) -> bool {
    id.kind == "Namespace" && id.group().is_empty()
}

/// Whether every owner of `object` is known here (and so counts, or goes, for it).
fn counts_through_owners(object: &Value, known: &HashSet<&str>) -> bool {
    let owners = object["metadata"]["ownerReferences"].as_array();
    owners.is_some_and(|refs| {
        !refs.is_empty()
            && refs
                .iter()
                .all(|r| r["uid"].as_str().is_some_and(|u| known.contains(u)))
    })
}

/// `a, b, c and 2 more`.
fn some_of(names: &[String]) -> String {
    let shown = names[..names.len().min(NAMED)].join(", ");
    match names.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn decide(
    found: Vec<Live>,
    applied: &[&Value],
    parent: Option<&ObjectId>,
    around: &Around,
) -> Selection {
    let doomed_uids: HashSet<String> = found
        .iter()
        .filter_map(|(_, _, o)| uid(o).map(str::to_owned))
        .collect();
    let applied: Vec<(ObjectId, &Value)> = applied
        .iter()
        .filter_map(|o| Some((ObjectId::of(o)?, *o)))
        .collect();
    let known: HashSet<&str> = doomed_uids
        .iter()
        .map(String::as_str)
        .chain(applied.iter().filter_map(|(_, o)| uid(o)))
        .chain(around.objects.iter().filter_map(|(_, _, o)| uid(o)))
        .collect();

    // Users: what this run applied, then what lives around and is not deleted (once).
    let mut users: Vec<(ObjectId, &Value)> = Vec::new();
    let mut user_uids = HashSet::new();
    let around_kept = around
        .objects
        .iter()
        .filter(|(_, _, o)| uid(o).is_none_or(|u| !doomed_uids.contains(u)))
        .map(|(id, _, o)| (id.clone(), o));
    for (id, object) in applied.iter().cloned().chain(around_kept) {
        if counts_through_owners(object, &known) {
            continue;
        }
        if uid(object).is_none_or(|u| user_uids.insert(u.to_owned())) {
            users.push((id, object));
        }
    }

    let mut doomed: Vec<Option<Live>> = found.into_iter().map(Some).collect();
    let mut kept: Vec<Kept> = Vec::new();
    // What a kept object uses is kept in turn (a kept ServiceAccount's pull secret).
    loop {
        let mut more = Vec::new();
        for slot in &mut doomed {
            let Some((id, _, _)) = slot else { continue };
            let Some(referent) = Referent::of(id.group(), &id.kind) else {
                continue;
            };
            let ns = id.namespace.clone();
            if let Some(why) = ns.as_ref().and_then(|ns| around.unreadable.get(ns)) {
                let why = format!("cannot tell what uses it ({why})");
                more.push((slot.take().expect("checked"), why));
                continue;
            }
            let kept_users = kept.iter().map(|k| (k.live.0.clone(), &k.live.2));
            let by: Vec<String> = users
                .iter()
                .cloned()
                .chain(kept_users)
                .filter(|(user, _)| user.namespace == ns)
                .flat_map(|(user, object)| {
                    references::uses(user.group(), &user.kind, object)
                        .into_iter()
                        .filter(|u| u.what == referent && u.name == id.name)
                        .map(move |u| format!("{} ({})", kubectl_name(&user), u.how))
                })
                .collect();
            if !by.is_empty() {
                more.push((
                    slot.take().expect("checked"),
                    format!("used by {}", some_of(&by)),
                ));
            }
        }
        if more.is_empty() {
            break;
        }
        kept.extend(more.into_iter().map(|(live, why)| Kept { live, why }));
    }

    let leaving: HashSet<String> = doomed
        .iter()
        .flatten()
        .filter_map(|(_, _, o)| uid(o).map(str::to_owned))
        .collect();
    for slot in &mut doomed {
        let Some((id, _, _)) = slot else { continue };
        if !is_namespace(id) {
            continue;
        }
        let ns = Some(id.name.clone());
        let why = match around.unreadable.get(&id.name) {
            Some(why) => Some(format!("cannot tell what lives in it ({why})")),
            None => {
                let occupants = occupants(&ns, &applied, around, &leaving, &known, parent);
                (!occupants.is_empty()).then(|| format!("{} still in it", some_of(&occupants)))
            }
        };
        if let Some(why) = why {
            kept.push(Kept {
                live: slot.take().expect("checked"),
                why,
            });
        }
    }
    Selection {
        doomed: doomed.into_iter().flatten().collect(),
        kept,
    }
}

/// What lives in namespace `ns` apart from what this run deletes, by kubectl name:
/// not Events (a record of what happened, removed with their namespace), not what
/// every namespace holds from the control plane (the `default` ServiceAccount, the
/// `kube-root-ca.crt` ConfigMap), not Endpoints (kept by the endpoints controller for
/// the Service of their name), not what counts through its owners, not objects
/// without a uid (views such as metrics.k8s.io's, not stored objects).
fn occupants(
    ns: &Option<String>,
    applied: &[(ObjectId, &Value)],
    around: &Around,
    leaving: &HashSet<String>,
    known: &HashSet<&str>,
    parent: Option<&ObjectId>,
) -> Vec<String> {
    let listed = around.objects.iter().map(|(id, _, o)| (id, o));
    let created = applied.iter().map(|(id, o)| (id, *o));
    let mut names = BTreeSet::new();
    let mut seen = HashSet::new();
    for (id, object) in listed.chain(created) {
        let Some(uid) = uid(object) else { continue };
        let system = matches!(
            (id.group(), id.kind.as_str(), id.name.as_str()),
            (_, "Event", _)
                | ("", "ServiceAccount", "default")
                | ("", "ConfigMap", "kube-root-ca.crt")
                | ("", "Endpoints", _)
        );
        if &id.namespace != ns
            || system
            || leaving.contains(uid)
            || parent == Some(id)
            || !seen.insert(uid)
            || counts_through_owners(object, known)
        {
            continue;
        }
        names.insert(kubectl_name(id));
    }
    names.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;
    use serde_json::json;

    /// A live object of `api_version`/`kind` in namespace `ns` (None: cluster-scoped),
    /// its uid its name, with `rest` merged in.
    fn live(api_version: &str, kind: &str, ns: Option<&str>, name: &str, rest: Value) -> Live {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let mut object = json!({"metadata": {"name": name, "uid": format!("uid-{name}")}});
        if let Some(ns) = ns {
            object["metadata"]["namespace"] = json!(ns);
        }
        if let (Some(object), Value::Object(rest)) = (object.as_object_mut(), rest) {
            for (k, v) in rest {
                if k == "metadata" {
                    let meta = object["metadata"].as_object_mut().unwrap();
                    meta.extend(v.as_object().unwrap().clone());
                } else {
                    object.insert(k, v);
                }
            }
        }
        identified(&resource, vec![object]).pop().unwrap()
    }

    fn owned_by(owner: &str) -> Value {
        json!({"metadata": {"ownerReferences": [{"uid": format!("uid-{owner}"), "controller": true}]}})
    }

    /// A pod spec whose container reads Secret `secret` (`envFrom`).
    fn reads(secret: &str) -> Value {
        json!({"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": secret}}]}]})
    }

    fn outcome(selection: &Selection) -> (Vec<String>, Vec<String>) {
        let doomed = selection
            .doomed
            .iter()
            .map(|(id, _, _)| kubectl_name(id))
            .collect();
        let kept = selection
            .kept
            .iter()
            .map(|k| format!("{} kept: {}", kubectl_name(&k.live.0), k.why))
            .collect();
        (doomed, kept)
    }

    fn around(objects: Vec<Live>) -> Around {
        Around {
            objects,
            unreadable: BTreeMap::new(),
        }
    }

    #[test]
    fn what_a_deleted_owner_owns_goes_with_it_and_an_unknown_owner_keeps_its_object() {
        let secret = live("v1", "Secret", Some("app"), "s", json!({}));
        let deployment = live(
            "apps/v1",
            "Deployment",
            Some("app"),
            "web",
            json!({"spec": {"template": {"spec": reads("s")}}}),
        );
        let rs = {
            let mut rs = live(
                "apps/v1",
                "ReplicaSet",
                Some("app"),
                "web-1",
                owned_by("web"),
            );
            rs.2["spec"] = json!({"template": {"spec": reads("s")}});
            rs
        };
        let pod = {
            let mut pod = live("v1", "Pod", Some("app"), "web-1-x", owned_by("web-1"));
            pod.2["spec"] = reads("s");
            pod
        };
        let found = vec![secret.clone(), deployment.clone()];
        let listed = around(vec![deployment.clone(), rs.clone(), pod.clone()]);
        let (doomed, kept) = outcome(&decide(found, &[], None, &listed));
        assert_eq!(doomed, ["secret/s", "deployment.apps/web"]);
        assert!(kept.is_empty(), "{kept:?}");

        // A pod whose owner is unknown here (an operator's custom resource) is a user.
        let mut orphan = live("v1", "Pod", Some("app"), "runner", owned_by("operator"));
        orphan.2["spec"] = reads("s");
        let listed = around(vec![orphan]);
        let (doomed, kept) = outcome(&decide(vec![secret.clone()], &[], None, &listed));
        assert!(doomed.is_empty());
        assert_eq!(kept, ["secret/s kept: used by pod/runner (envFrom)"]);

        // A user in another namespace does not count.
        let elsewhere = live("v1", "Pod", Some("other"), "p", json!({"spec": reads("s")}));
        let (doomed, _) = outcome(&decide(vec![secret], &[], None, &around(vec![elsewhere])));
        assert_eq!(doomed, ["secret/s"]);
    }

    #[test]
    fn what_a_kept_object_uses_is_kept_in_turn_and_users_are_named_once() {
        let account = live(
            "v1",
            "ServiceAccount",
            Some("app"),
            "runner",
            json!({"imagePullSecrets": [{"name": "registry"}]}),
        );
        let registry = live("v1", "Secret", Some("app"), "registry", json!({}));
        let spec = json!({"containers": [{"name": "c"}], "serviceAccountName": "runner"});
        let applied = live(
            "apps/v1",
            "Deployment",
            Some("app"),
            "web",
            json!({"spec": {"template": {"spec": spec}}}),
        );
        // Applied and listed: the same object, named once.
        let listed = around(vec![applied.clone()]);
        let found = vec![registry, account];
        let (doomed, kept) = outcome(&decide(found, &[&applied.2], None, &listed));
        assert!(doomed.is_empty(), "{doomed:?}");
        assert_eq!(
            kept,
            [
                "serviceaccount/runner kept: used by deployment.apps/web (serviceAccountName)",
                "secret/registry kept: used by serviceaccount/runner (imagePullSecrets)",
            ]
        );
    }

    #[test]
    fn a_namespace_goes_only_when_what_stays_in_it_is_the_control_planes_or_owned() {
        let shop = live("v1", "Namespace", None, "shop", json!({}));
        let member = live("v1", "ConfigMap", Some("shop"), "catalog", json!({}));
        let web = live("apps/v1", "Deployment", Some("shop"), "web", json!({}));
        let listed = vec![
            member.clone(),
            web.clone(),
            live(
                "apps/v1",
                "ReplicaSet",
                Some("shop"),
                "web-1",
                owned_by("web"),
            ),
            live("v1", "Pod", Some("shop"), "web-1-x", owned_by("web-1")),
            live("v1", "Event", Some("shop"), "web.1", json!({})),
            live(
                "events.k8s.io/v1",
                "Event",
                Some("shop"),
                "web.2",
                json!({}),
            ),
            live("v1", "ServiceAccount", Some("shop"), "default", json!({})),
            live(
                "v1",
                "ConfigMap",
                Some("shop"),
                "kube-root-ca.crt",
                json!({}),
            ),
            live("v1", "Endpoints", Some("shop"), "web", json!({})),
        ];
        let found = vec![shop.clone(), member.clone(), web.clone()];
        let (doomed, kept) = outcome(&decide(found, &[], None, &around(listed.clone())));
        assert_eq!(doomed.len(), 3, "{kept:?}");

        let mut more = listed.clone();
        more.push(live("v1", "ConfigMap", Some("shop"), "by-hand", json!({})));
        more.push(live("v1", "Secret", Some("shop"), "polls", json!({})));
        more.push(live("v1", "Secret", Some("shop"), "more", json!({})));
        more.push(live("v1", "Secret", Some("shop"), "most", json!({})));
        let found = vec![shop.clone(), member.clone(), web.clone()];
        let (doomed, kept) = outcome(&decide(found, &[], None, &around(more.clone())));
        assert_eq!(doomed, ["configmap/catalog", "deployment.apps/web"]);
        assert_eq!(
            kept,
            [
                "namespace/shop kept: configmap/by-hand, secret/more, secret/most and 1 more still in it"
            ]
        );
        // The set's parent does not count when it goes too (--delete-all).
        more.truncate(listed.len() + 2);
        let parent = ObjectId {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some("shop".into()),
            name: "polls".into(),
        };
        let found = vec![shop.clone(), member.clone(), web.clone()];
        let (_, kept) = outcome(&decide(found, &[], Some(&parent), &around(more)));
        assert_eq!(kept, ["namespace/shop kept: configmap/by-hand still in it"]);

        // What cannot be read is not known to be empty.
        let mut unreadable = around(listed);
        unreadable.unreadable.insert(
            "shop".into(),
            "list of widgets in namespace shop: 403 Forbidden".into(),
        );
        let (_, kept) = outcome(&decide(vec![shop], &[], None, &unreadable));
        assert_eq!(
            kept,
            [
                "namespace/shop kept: cannot tell what lives in it (list of widgets in namespace shop: 403 Forbidden)"
            ]
        );
    }
}

//! ApplySets (KEP-3659) as kubectl implements them: a parent object (a Secret by
//! default) labelled with the set's id and annotated with the kinds and namespaces its
//! members live in; every member labelled `applyset.kubernetes.io/part-of: ID`.
//!
//! A run widens the parent's annotations to what is there plus what is coming (so an
//! interrupted run leaks nothing), applies, deletes the members the input no longer
//! has, and narrows the annotations to the input. Only objects carrying the set's
//! label are ever listed, checked again, and deleted; a failed apply deletes nothing;
//! what a kept object uses and a Namespace others live in are kept ([`crate::keep`]).
//! A deletion never starts after SIGINT/SIGTERM, and a dry run sends none.

use crate::api::{Caller, Target};
use crate::cli::DryRun;
use crate::failure::Failure;
use crate::graph::{self, Change};
use crate::keep::{self, Kept};
use crate::report::kubectl_name;
use crate::reporter::{Reporter, Results};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use kpipe_core::interrupt::Interrupt;
use kpipe_core::{Error, ObjectId, Result};
use kube::core::params::{DeleteParams, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersion};
use kube::discovery::{self, Scope};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
pub const ID: &str = "applyset.kubernetes.io/id";
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
pub const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
/// What kubectl before 1.27's final design wrote instead of contains-group-kinds.
const GROUP_RESOURCES: &str = "applyset.kubernetes.io/contains-group-resources";
/// The label a CRD needs for its kind to be allowed as a parent.
const PARENT_TYPE: &str = "applyset.kubernetes.io/is-parent-type";

const TOOL: &str = "kapply";

/// `kapply/vX.Y.Z`, the tooling annotation's value.
fn tooling() -> String {
    format!("{TOOL}/v{}", env!("CARGO_PKG_VERSION"))
}

/// The set's id, as the KEP defines it: `applyset-` + unpadded URL-safe base64 of
/// sha256(`NAME.NAMESPACE.KIND.GROUP`) + `-v1`.
pub fn id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}"));
    format!("applyset-{}-v1", URL_SAFE_NO_PAD.encode(digest))
}

/// A kind and its group, written `Kind.group` (`Kind` for the core group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

impl GroupKind {
    fn parse(text: &str) -> GroupKind {
        match text.split_once('.') {
            Some((kind, group)) => GroupKind {
                group: group.into(),
                kind: kind.into(),
            },
            None => GroupKind {
                group: String::new(),
                kind: text.into(),
            },
        }
    }
}

impl std::fmt::Display for GroupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// A member of the input: where it lives, as the prune must find it.
#[derive(Clone)]
pub struct Member {
    pub id: ObjectId,
    pub resource: ApiResource,
    pub scope: Scope,
}

impl Member {
    fn group_kind(&self) -> GroupKind {
        GroupKind {
            group: self.id.group().into(),
            kind: self.id.kind.clone(),
        }
    }
}

/// A kind the set may hold, resolved to its resource.
#[derive(Clone)]
struct Kind {
    resource: ApiResource,
    scope: Scope,
}

/// The set and its parent, as found on the server.
pub struct ApplySet {
    parent: Target,
    pub id: String,
    /// What the parent's annotations say the set holds (before this run).
    kinds: BTreeSet<GroupKind>,
    namespaces: BTreeSet<String>,
    exists: bool,
    /// The parent as last read or written: a write that would not change it is not sent.
    live: std::sync::Mutex<Option<Value>>,
}

/// `--applyset` as kubectl reads it: `NAME` (a Secret), or `RESOURCE[.GROUP]/NAME`
/// where RESOURCE is a plural, singular or kind (`configmaps/x`, `Secret/x`,
/// `applysets.example.com/x`).
fn parse_ref(text: &str) -> Result<(String, String, String)> {
    let (resource, name) = match text.split_once('/') {
        Some((resource, name)) => (resource, name),
        None => ("secrets", text),
    };
    if name.is_empty() || resource.is_empty() || name.contains('/') {
        return Err(Error::input(format!(
            "--applyset {text:?}: expected NAME or RESOURCE[.GROUP]/NAME (e.g. polls, configmaps/polls)"
        )));
    }
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    Ok((resource.to_lowercase(), group.to_owned(), name.to_owned()))
}

impl ApplySet {
    /// Finds the parent's type through discovery, reads the parent and checks it is
    /// this tool's set with this id. Another tool's set is refused unless `force`.
    pub async fn open(caller: &Caller, spec: &str, namespace: &str, force: bool) -> Result<Self> {
        let (wanted, group, name) = parse_ref(spec)?;
        let (resource, scope) = parent_type(caller, &wanted, &group, spec).await?;
        let namespaced = scope == Scope::Namespaced;
        let custom =
            !(group.is_empty() && matches!(resource.plural.as_str(), "secrets" | "configmaps"));
        if custom {
            check_parent_type(caller, &resource, spec).await?;
        }
        let parent = Target {
            namespace: namespaced.then(|| namespace.to_owned()),
            name: name.clone(),
            resource,
        };
        let set_id = id(
            &name,
            if namespaced { namespace } else { "" },
            &parent.resource.kind,
            &parent.resource.group,
        );
        let mut set = ApplySet {
            parent,
            id: set_id,
            kinds: BTreeSet::new(),
            namespaces: BTreeSet::new(),
            exists: false,
            live: std::sync::Mutex::new(None),
        };
        let what = set.describe();
        let live = caller
            .get(&set.parent, &what)
            .await
            .map_err(|f| Error::runtime(format!("{what}: {}", f.message())))?;
        if let Some(live) = live {
            set.exists = true;
            set.read(&live, force)?;
            *set.live.lock().expect("not poisoned") = Some(live);
        } else if custom {
            return Err(Error::runtime(format!(
                "{what} does not exist: a custom resource parent is not created automatically \
                 (as in kubectl); create it first"
            )));
        }
        if let Some(ns) = &set.parent.namespace {
            set.namespaces.insert(ns.clone());
        }
        Ok(set)
    }

    /// The parent's namespace (none for a cluster-scoped parent).
    pub fn namespace(&self) -> Option<String> {
        self.parent.namespace.clone()
    }

    /// The parent's name.
    pub fn name(&self) -> &str {
        &self.parent.name
    }

    /// `applyset secret/polls in namespace default`, for messages.
    pub fn describe(&self) -> String {
        let id = ObjectId {
            api_version: self.parent.resource.api_version.clone(),
            kind: self.parent.resource.kind.clone(),
            namespace: self.parent.namespace.clone(),
            name: self.parent.name.clone(),
        };
        let mut text = format!("applyset {}", kubectl_name(&id));
        if let Some(ns) = &id.namespace {
            text.push_str(&format!(" in namespace {ns}"));
        }
        text
    }

    /// Whether `id` names this set's parent.
    pub fn is_parent(&self, id: &ObjectId) -> bool {
        id.group() == self.parent.resource.group
            && id.kind == self.parent.resource.kind
            && id.namespace == self.parent.namespace
            && id.name == self.parent.name
    }

    fn parent_id(&self) -> ObjectId {
        ObjectId {
            api_version: self.parent.resource.api_version.clone(),
            kind: self.parent.resource.kind.clone(),
            namespace: self.parent.namespace.clone(),
            name: self.parent.name.clone(),
        }
    }

    /// Checks the live parent and reads what it says the set holds.
    fn read(&mut self, live: &Value, force: bool) -> Result<()> {
        let what = self.describe();
        let meta = &live["metadata"];
        let text = |field: &str, key: &str| meta[field][key].as_str().map(str::to_owned);
        if !force {
            let refuse = |why: String| {
                Err(Error::runtime(format!(
                    "{what}: {why}; kapply changes only sets it made (--force-applyset takes \
                     this one over)"
                )))
            };
            match text("annotations", TOOLING) {
                None => {
                    return refuse(format!(
                        "the object exists but has no {TOOLING} annotation: it is not an ApplySet parent"
                    ));
                }
                Some(tool) => {
                    let base = tool.rsplit_once('/').map_or(tool.as_str(), |(b, _)| b);
                    if base != TOOL {
                        return refuse(format!("it is managed by {base:?} ({TOOLING}: {tool})"));
                    }
                }
            }
            match text("labels", ID) {
                Some(found) if found == self.id => {}
                Some(found) => {
                    return refuse(format!(
                        "its {ID} label is {found:?}, not {:?} as the KEP defines it for this parent",
                        self.id
                    ));
                }
                None => return refuse(format!("it has no {ID} label")),
            }
        }
        if let Some(kinds) = text("annotations", GROUP_KINDS) {
            self.kinds = list(&kinds).map(GroupKind::parse).collect();
        } else if let Some(resources) = text("annotations", GROUP_RESOURCES) {
            // The older annotation names resources (`deployments.apps`); kinds are
            // found for them when the set is listed.
            self.kinds = list(&resources)
                .map(|r| {
                    let mut gk = GroupKind::parse(r);
                    gk.kind = format!("resource:{}", gk.kind);
                    gk
                })
                .collect();
        }
        if let Some(namespaces) = text("annotations", NAMESPACES) {
            self.namespaces = list(&namespaces).map(str::to_owned).collect();
        }
        Ok(())
    }

    /// Adds the set's label to every member. A member that already names another set
    /// is bad input, as in kubectl.
    pub fn label(&self, id: &ObjectId, body: &mut Value) -> Result<()> {
        let labels = body["metadata"]
            .as_object_mut()
            .expect("metadata is set by plan")
            .entry("labels")
            .or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        match labels[PART_OF].as_str() {
            Some(other) if other != self.id => Err(Error::input(format!(
                "{id}: its {PART_OF} label says it belongs to {other}, not to this set ({})",
                self.id
            ))),
            _ => {
                labels[PART_OF] = json!(self.id);
                Ok(())
            }
        }
    }

    /// Server-side apply of the parent's label and annotations, by kapply's own field
    /// manager for sets (as kubectl uses `kubectl-applyset`), forced on a conflict.
    async fn write_parent(
        &self,
        caller: &Caller,
        kinds: &BTreeSet<GroupKind>,
        namespaces: &BTreeSet<String>,
        dry_run: bool,
    ) -> Result<()> {
        let own_namespace = self.parent.namespace.as_deref().unwrap_or_default();
        // Sorted as text, as kubectl writes it (not by group first).
        let kinds: BTreeSet<String> = kinds.iter().map(ToString::to_string).collect();
        let kinds: Vec<String> = kinds.into_iter().collect();
        let namespaces: Vec<&str> = namespaces
            .iter()
            .map(String::as_str)
            .filter(|ns| *ns != own_namespace)
            .collect();
        let mut metadata = json!({
            "name": self.parent.name,
            "labels": {ID: self.id},
            "annotations": {
                TOOLING: tooling(),
                GROUP_KINDS: kinds.join(","),
                NAMESPACES: namespaces.join(","),
            },
        });
        if let Some(ns) = &self.parent.namespace {
            metadata["namespace"] = json!(ns);
        }
        let body = json!({
            "apiVersion": self.parent.resource.api_version,
            "kind": self.parent.resource.kind,
            "metadata": metadata,
        });
        let manager = format!("{TOOL}-applyset");
        let mut params = PatchParams::apply(&manager).force();
        if dry_run {
            params = params.dry_run();
        } else if let Some(live) = self.live.lock().expect("not poisoned").as_ref()
            && crate::unchanged::proven(&body, live, &manager)
        {
            return Ok(());
        }
        let what = self.describe();
        caller
            .apply(&self.parent, &body, &params, &what)
            .await
            .map(|written| {
                if !dry_run {
                    *self.live.lock().expect("not poisoned") = Some(written);
                }
            })
            .map_err(|f| {
                let doing = if dry_run {
                    "checking the parent (dry run)"
                } else {
                    "writing the parent"
                };
                let mut text = format!("{what}: {doing}: {}", f.message());
                if let (Failure::Api { status, .. }, Some(ns)) = (&f, &self.parent.namespace)
                    && status.code == 404
                    && status
                        .details
                        .as_ref()
                        .is_some_and(|d| d.kind == "namespaces")
                {
                    text.push_str(&format!(
                        "; namespace {ns} does not exist: create it, or run again with \
                         --create-namespace"
                    ));
                }
                Error::runtime(text)
            })
    }

    /// Before applying: the parent covers what the set held and what is coming.
    pub async fn widen(&self, caller: &Caller, members: &[Member], dry_run: bool) -> Result<()> {
        let (kinds, namespaces) = self.updated(members);
        let kinds = kinds.union(&self.kinds).cloned().collect();
        let namespaces = namespaces.union(&self.namespaces).cloned().collect();
        self.write_parent(caller, &kinds, &namespaces, dry_run)
            .await
    }

    /// After a complete prune: the parent says what the input holds, no more.
    pub async fn narrow(&self, caller: &Caller, members: &[Member]) -> Result<()> {
        let (kinds, namespaces) = self.updated(members);
        self.write_parent(caller, &kinds, &namespaces, false).await
    }

    fn updated(&self, members: &[Member]) -> (BTreeSet<GroupKind>, BTreeSet<String>) {
        let kinds = members.iter().map(Member::group_kind).collect();
        let namespaces = members
            .iter()
            .filter(|m| m.scope == Scope::Namespaced)
            .filter_map(|m| m.id.namespace.clone())
            .collect();
        (kinds, namespaces)
    }

    /// The live members of the set that `keep` does not name, found by one labelled
    /// LIST per kind and namespace the set may hold (the parent's record and the
    /// input's), each checked again for the set's label. An object whose uid is in
    /// `applied` is one this run applied, whatever group it is listed under (an Event
    /// is served as `v1` and as `events.k8s.io/v1`).
    async fn find_members(
        &self,
        caller: &Caller,
        reporter: &Reporter,
        keep: &[Member],
        applied: &HashSet<&str>,
        concurrency: usize,
    ) -> Result<Vec<Live>> {
        let mut kinds: BTreeMap<GroupKind, Kind> = BTreeMap::new();
        for member in keep {
            kinds.entry(member.group_kind()).or_insert_with(|| Kind {
                resource: member.resource.clone(),
                scope: member.scope.clone(),
            });
        }
        for gk in &self.kinds {
            if kinds.contains_key(gk) {
                continue;
            }
            match resolve_kind(caller, gk).await? {
                Some((found, kind)) => {
                    kinds.entry(found).or_insert(kind);
                }
                None => reporter.say(&format!(
                    "kapply: {}: {gk} is not served any more: nothing of that kind to find\n",
                    self.describe()
                )),
            }
        }
        let mut namespaces = self.namespaces.clone();
        namespaces.extend(
            keep.iter()
                .filter(|m| m.scope == Scope::Namespaced)
                .filter_map(|m| m.id.namespace.clone()),
        );
        let mut lists = Vec::new();
        for kind in kinds.values() {
            match kind.scope {
                Scope::Cluster => lists.push((kind, None)),
                Scope::Namespaced => {
                    lists.extend(namespaces.iter().map(|ns| (kind, Some(ns.as_str()))));
                }
            }
        }
        let selector = format!("{PART_OF}={}", self.id);
        let found: Vec<Result<Vec<Live>>> = futures::stream::iter(lists)
            .map(|(kind, namespace)| {
                let selector = &selector;
                async move {
                    let what = match namespace {
                        Some(ns) => {
                            format!("list of {} in namespace {ns}", kind.resource.plural)
                        }
                        None => format!("list of {}", kind.resource.plural),
                    };
                    let objects = caller
                        .list_selected(&kind.resource, namespace, Some(selector), &what)
                        .await
                        .map_err(|f| Error::runtime(format!("{what}: {}", f.message())))?;
                    let labelled = objects
                        .into_iter()
                        .filter(|o| o["metadata"]["labels"][PART_OF] == self.id.as_str());
                    Ok(identified(&kind.resource, labelled))
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let keep: HashSet<(String, String, Option<String>, String)> = keep
            .iter()
            .map(|m| {
                (
                    m.id.group().to_owned(),
                    m.id.kind.clone(),
                    m.id.namespace.clone(),
                    m.id.name.clone(),
                )
            })
            .collect();
        let mut members = Vec::new();
        for list in found {
            members.extend(list?.into_iter().filter(|(id, _, object)| {
                let uid = object["metadata"]["uid"].as_str();
                !uid.is_some_and(|uid| applied.contains(uid))
                    && !keep.contains(&(
                        id.group().to_owned(),
                        id.kind.clone(),
                        id.namespace.clone(),
                        id.name.clone(),
                    ))
            }));
        }
        Ok(members)
    }
}

/// A live member of the set: who it is, where, and the object as listed.
pub type Live = (ObjectId, Target, Value);

/// Listed objects of `resource` (whose items carry no kind), with who and where they are.
pub fn identified(resource: &ApiResource, objects: impl IntoIterator<Item = Value>) -> Vec<Live> {
    objects
        .into_iter()
        .filter_map(|mut object| {
            object["apiVersion"] = json!(resource.api_version);
            object["kind"] = json!(resource.kind);
            let id = ObjectId::of(&object)?;
            let target = Target {
                resource: resource.clone(),
                namespace: id.namespace.clone(),
                name: id.name.clone(),
            };
            Some((id, target, object))
        })
        .collect()
}

/// How a prune or a delete goes.
pub struct Removal<'a> {
    pub caller: &'a Caller,
    pub reporter: &'a Reporter,
    /// `Server`: dry-run DELETEs; `Client`: none at all, only the lines.
    pub dry_run: DryRun,
    /// Where each removal's line (or with --diff its diff) goes.
    pub results: Results,
    pub concurrency: usize,
    /// Groups the input's CRDs define, whose kinds are deleted first.
    pub crd_groups: HashSet<String>,
    /// SIGINT/SIGTERM: no deletion starts after one.
    pub interrupt: &'a Interrupt,
}

/// How long deletions in flight may still finish after SIGINT/SIGTERM.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(1);

/// What became of one deletion.
enum Deletion {
    Done,
    Failed(Failure),
    /// Not started: a signal came first.
    NotStarted,
    /// Still unanswered when the grace after a signal ran out.
    CutShort,
}

/// What a prune or delete did, and what it left.
#[derive(Default)]
pub struct Left {
    /// How many objects were deleted (or would be, in a dry run).
    pub deleted: usize,
    /// Deletions that failed, with why.
    pub failed: Failed,
    /// Not deleted: SIGINT/SIGTERM came before their deletion started.
    pub kept: Vec<ObjectId>,
    /// Deletions a signal cut short: they may or may not have happened.
    pub unsure: Vec<ObjectId>,
}

impl Left {
    /// Whether every deletion asked for happened.
    pub fn is_whole(&self) -> bool {
        self.failed.is_empty() && self.kept.is_empty() && self.unsure.is_empty()
    }

    fn extend(&mut self, other: Left) {
        self.deleted += other.deleted;
        self.failed.extend(other.failed);
        self.kept.extend(other.kept);
        self.unsure.extend(other.unsure);
    }
}

impl Removal<'_> {
    /// Says why each kept object stays (`secret/x kept: used by ...`); they remain
    /// members of the set, as the parent must record.
    fn report_kept(&self, kept: &[Kept]) -> Vec<Member> {
        let mut kept: Vec<&Kept> = kept.iter().collect();
        // By name: the set's kinds are listed at once and come back in any order.
        kept.sort_by_key(|k| (kubectl_name(&k.live.0), k.live.0.namespace.clone()));
        kept.into_iter()
            .map(|k| {
                let (id, target, _) = &k.live;
                self.reporter
                    .say(&format!("kapply: {} kept: {}\n", kubectl_name(id), k.why));
                Member {
                    id: id.clone(),
                    resource: target.resource.clone(),
                    scope: if target.namespace.is_some() {
                        Scope::Namespaced
                    } else {
                        Scope::Cluster
                    },
                }
            })
            .collect()
    }

    /// Deletes `objects` wave after wave of the change graph's deletions (the built-in
    /// order reversed, then kapp's delete rules of the objects as they live), the
    /// objects of a wave in parallel, each deletion accepted by the server before the
    /// next wave; prints `kind/name VERB` for each. After SIGINT/SIGTERM no deletion
    /// starts and those in flight get [`IN_FLIGHT_GRACE`].
    async fn remove(&self, objects: Vec<Live>, verb: &str) -> Result<Left> {
        let schedule = {
            let changes: Vec<Change> = objects
                .iter()
                .map(|(id, _, object)| Change { id, object })
                .collect();
            graph::deletions(&changes, &self.crd_groups).map_err(|e| {
                Error::runtime(format!("nothing {verb}: the objects' change rules: {e}"))
            })?
        };
        let mut slots: Vec<Option<Live>> = objects.into_iter().map(Some).collect();
        let waves: Vec<Vec<Live>> = schedule
            .waves
            .iter()
            .map(|wave| {
                wave.iter()
                    .map(|&i| slots[i].take().expect("once"))
                    .collect()
            })
            .collect();
        let mut params = DeleteParams::background();
        params.dry_run = self.dry_run == DryRun::Server;
        let suffix = match self.dry_run {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        };
        let mut left = Left::default();
        for mut objects in waves {
            objects.sort_by_key(|(id, _, _)| id.to_string());
            // Unordered, as apply: a deletion that waits out a retry holds one slot of
            // `concurrency`, not every slot behind it.
            let mut results: Vec<(usize, Deletion)> =
                futures::stream::iter(objects.iter().enumerate())
                    .map(|(at, (id, target, _))| {
                        let params = &params;
                        async move { (at, self.delete(id, target, params).await) }
                    })
                    .buffer_unordered(self.concurrency)
                    .collect()
                    .await;
            results.sort_by_key(|(at, _)| *at);
            let results = results.into_iter().map(|(_, result)| result);
            let mut text = String::new();
            for ((id, _, live), result) in objects.into_iter().zip(results) {
                match result {
                    Deletion::Done => {
                        left.deleted += 1;
                        let line = format!("{} {verb}{suffix}\n", kubectl_name(&id));
                        match self.results {
                            Results::Diffs => text.push_str(&crate::diff::removal(&id, &live)),
                            Results::Lines => text.push_str(&line),
                            // -o name silences an apply's lines, not a removal's.
                            Results::OnStderr | Results::Names => {
                                self.reporter.say(&format!("kapply: {line}"));
                            }
                        }
                    }
                    Deletion::Failed(failure) => left.failed.push((id, failure)),
                    Deletion::NotStarted => left.kept.push(id),
                    Deletion::CutShort => left.unsure.push(id),
                }
            }
            self.reporter.write(&text)?;
        }
        Ok(left)
    }

    /// One deletion, unless a signal came before it started (none is sent in a client
    /// dry run).
    async fn delete(&self, id: &ObjectId, target: &Target, params: &DeleteParams) -> Deletion {
        if self.interrupt.received().is_some() {
            return Deletion::NotStarted;
        }
        if self.dry_run == DryRun::Client {
            return Deletion::Done;
        }
        let grace = async {
            self.interrupt.wait().await;
            tokio::time::sleep(IN_FLIGHT_GRACE).await;
        };
        let what = id.to_string();
        tokio::select! {
            result = self.caller.delete(target, params, &what) => match result {
                Ok(_) => Deletion::Done,
                Err(failure) => Deletion::Failed(failure),
            },
            () = grace => Deletion::CutShort,
        }
    }
}

/// Deletions that failed, with why.
pub type Failed = Vec<(ObjectId, Failure)>;

/// Deletes the members of the set the input no longer has, but those kept objects use
/// and Namespaces other objects live in ([`keep`]), and those `retained` names (the
/// config versions earlier releases keep for a rollback, with why), then (all gone, no
/// signal, no dry run) narrows the parent to the input and what was kept. `applied` are
/// the objects this run applied, as the server answered.
pub async fn prune(
    set: &ApplySet,
    how: &Removal<'_>,
    members: &[Member],
    applied: &[&Value],
    retained: &[(ObjectId, String)],
) -> Result<Left> {
    let uids = applied
        .iter()
        .filter_map(|o| o["metadata"]["uid"].as_str())
        .collect();
    let found = set
        .find_members(how.caller, how.reporter, members, &uids, how.concurrency)
        .await?;
    let (found, mut kept): (Vec<Live>, Vec<Kept>) =
        found
            .into_iter()
            .fold((Vec::new(), Vec::new()), |(mut found, mut kept), live| {
                match retained.iter().find(|(id, _)| same_object(id, &live.0)) {
                    Some((_, why)) => kept.push(Kept {
                        live,
                        why: why.clone(),
                    }),
                    None => found.push(live),
                }
                (found, kept)
            });
    let mut selection = keep::select(how.caller, found, applied, None, how.concurrency).await?;
    let applied_ids: Vec<(ObjectId, &Value)> = applied
        .iter()
        .filter_map(|o| Some((ObjectId::of(o)?, *o)))
        .collect();
    let upserted: Vec<Change> = applied_ids
        .iter()
        .map(|(id, object)| Change { id, object })
        .collect();
    let deleted: Vec<Change> = selection
        .doomed
        .iter()
        .map(|(id, _, object)| Change { id, object })
        .collect();
    for warning in graph::unkept_rules(&upserted, &deleted) {
        how.reporter.say(&format!("kapply: warning: {warning}\n"));
    }
    kept.append(&mut selection.kept);
    let kept = how.report_kept(&kept);
    let left = how.remove(selection.doomed, "pruned").await?;
    if left.is_whole() && how.dry_run == DryRun::None && how.interrupt.received().is_none() {
        let held: Vec<Member> = members.iter().cloned().chain(kept).collect();
        set.narrow(how.caller, &held).await?;
    }
    Ok(left)
}

/// The same object, whichever version of its group names it.
fn same_object(a: &ObjectId, b: &ObjectId) -> bool {
    a.group() == b.group() && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

/// `--delete-all`: every member of the set, in reverse order, then the parent (only
/// once every member is), then waits until they are gone (as `kubectl delete` waits;
/// a signal ends the wait). What [`keep`] keeps stays, and so does the parent,
/// narrowed to it.
pub async fn delete_all(set: &ApplySet, how: &Removal<'_>) -> Result<Left> {
    if !set.exists {
        how.reporter.say(&format!(
            "kapply: {} does not exist: nothing to delete\n",
            set.describe()
        ));
        return Ok(Left::default());
    }
    let found = set
        .find_members(
            how.caller,
            how.reporter,
            &[],
            &HashSet::new(),
            how.concurrency,
        )
        .await?;
    let parent = set.parent_id();
    let selection = keep::select(how.caller, found, &[], Some(&parent), how.concurrency).await?;
    let kept = how.report_kept(&selection.kept);
    let members = selection.doomed;
    let mut targets: Vec<(ObjectId, Target)> = members
        .iter()
        .map(|(id, target, _)| (id.clone(), target.clone()))
        .collect();
    let mut left = how.remove(members, "deleted").await?;
    if !left.is_whole() {
        // The parent keeps track of what is left.
        return Ok(left);
    }
    if kept.is_empty() {
        let parent = (parent, set.parent.clone(), Value::Null);
        targets.push((parent.0.clone(), parent.1.clone()));
        let removal = Removal {
            crd_groups: HashSet::new(),
            ..*how
        };
        left.extend(removal.remove(vec![parent], "deleted").await?);
    } else {
        how.reporter.say(&format!(
            "kapply: {} kept: it still tracks the {} kept\n",
            set.describe(),
            match kept.len() {
                1 => "object".to_owned(),
                n => format!("{n} objects"),
            }
        ));
        if how.dry_run == DryRun::None && how.interrupt.received().is_none() {
            set.narrow(how.caller, &kept).await?;
        }
    }
    if left.is_whole() && how.dry_run == DryRun::None {
        tokio::select! {
            failed = wait_gone(how, &targets) => left.failed.extend(failed),
            _ = how.interrupt.wait() => {}
        }
    }
    Ok(left)
}

/// How long to wait for deletions when no --timeout bounds the run.
const GONE_WAIT: Duration = Duration::from_secs(120);
/// Deletions done within this long are not worth a notice.
const ANNOUNCE_AFTER: Duration = Duration::from_millis(500);
/// Waits until each object is gone (what a finalizer or foreground deletion holds) with
/// kube-runtime's `await_condition`, a watch of the object, under the retry policy.
async fn wait_gone(how: &Removal<'_>, targets: &[(ObjectId, Target)]) -> Failed {
    let caller = how.caller;
    let until = caller
        .deadline()
        .unwrap_or_else(|| Instant::now() + GONE_WAIT);
    let left = AtomicUsize::new(targets.len());
    let left = &left;
    let waits = futures::stream::iter(targets)
        .map(|(id, target)| async move {
            let api: kube::Api<DynamicObject> = match &target.namespace {
                Some(ns) => {
                    kube::Api::namespaced_with(caller.client().clone(), ns, &target.resource)
                }
                None => kube::Api::all_with(caller.client().clone(), &target.resource),
            };
            let what = id.to_string();
            let gone = caller.retrying(&what, || async {
                await_condition(api.clone(), &target.name, is_gone)
                    .await
                    .map(drop)
                    .map_err(Failure::from)
            });
            let gone = kpipe_core::api::bounded(Some(until), gone)
                .await
                .unwrap_or(Err(Failure::OutOfTime));
            left.fetch_sub(1, Ordering::Relaxed);
            gone.err().map(|failure| (id.clone(), failure))
        })
        .buffer_unordered(how.concurrency)
        .filter_map(std::future::ready)
        .collect::<Failed>();
    tokio::pin!(waits);
    tokio::select! {
        failed = &mut waits => failed,
        () = tokio::time::sleep(ANNOUNCE_AFTER) => {
            how.reporter.say(&format!(
                "kapply: waiting for {} to be gone\n",
                crate::report::counted(left.load(Ordering::Relaxed), "deleted object")
            ));
            waits.await
        }
    }
}

fn is_gone(object: Option<&DynamicObject>) -> bool {
    object.is_none()
}

fn list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A group as discovery names it: the core group by its one version, `v1`.
fn group_name(group: &str) -> &str {
    if group.is_empty() { "v1" } else { group }
}

/// A group's discovery ("" is the core group), under the retry policy as every request.
async fn discover_group(caller: &Caller, group: &str) -> Result<discovery::ApiGroup, Failure> {
    let what = format!("discovery of {}", group_name(group));
    caller
        .retrying(&what, || async {
            if group.is_empty() {
                discovery::pinned_group(caller.client(), &GroupVersion::gv("", "v1")).await
            } else {
                discovery::group(caller.client(), group).await
            }
            .map_err(Failure::from)
        })
        .await
}

/// The resource of a parent type through discovery: its group's preferred version,
/// the resource named by plural, singular or kind.
async fn parent_type(
    caller: &Caller,
    wanted: &str,
    group: &str,
    spec: &str,
) -> Result<(ApiResource, Scope)> {
    let found = discover_group(caller, group).await.map_err(|f| {
        Error::runtime(format!(
            "--applyset {spec}: discovery of {}: {}",
            group_name(group),
            f.message()
        ))
    })?;
    found
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| {
            r.plural == wanted
                || r.kind.to_lowercase() == wanted
                || format!("{}s", r.kind.to_lowercase()) == wanted
        })
        .map(|(r, caps)| (r, caps.scope))
        .ok_or_else(|| {
            Error::input(format!(
                "--applyset {spec}: the server has no resource {wanted:?} in group {group:?}"
            ))
        })
}

/// The kinds that may be a parent, for messages.
const PARENT_KINDS: &str = "a Secret (NAME or secrets/NAME), a ConfigMap (configmaps/NAME) \
     or a custom resource whose CustomResourceDefinition carries the \
     applyset.kubernetes.io/is-parent-type label";

/// Whether a custom resource may be a parent: its CRD carries the parent-type label.
/// Built-in kinds other than Secret and ConfigMap have no CRD and may not, as in kubectl.
async fn check_parent_type(caller: &Caller, resource: &ApiResource, spec: &str) -> Result<()> {
    let built_in = || {
        Err(Error::input(format!(
            "--applyset {spec}: a {} cannot be an ApplySet parent; a parent is {PARENT_KINDS}",
            resource.kind
        )))
    };
    if resource.group.is_empty() {
        return built_in();
    }
    let crds = ApiResource::from_gvk_with_plural(
        &GroupVersion::gv("apiextensions.k8s.io", "v1").with_kind("CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let name = format!("{}.{}", resource.plural, resource.group);
    let crd = caller
        .get(
            &Target {
                resource: crds,
                namespace: None,
                name: name.clone(),
            },
            &format!("CustomResourceDefinition/{name}"),
        )
        .await
        .map_err(|f| Error::runtime(f.message()))?;
    let Some(crd) = crd else {
        return built_in();
    };
    if crd["metadata"]["labels"].get(PARENT_TYPE).is_some() {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{} is not permitted as an ApplySet parent: its CustomResourceDefinition {name} \
             needs the {PARENT_TYPE} label (as kubectl requires)",
            resource.kind
        )))
    }
}

/// A kind the parent records, resolved through discovery of its group; None when the
/// server does not serve it (any more).
async fn resolve_kind(caller: &Caller, gk: &GroupKind) -> Result<Option<(GroupKind, Kind)>> {
    let group = match discover_group(caller, &gk.group).await {
        Ok(group) => group,
        Err(Failure::Api { status, .. }) if status.code == 404 => return Ok(None),
        Err(failure) => {
            return Err(Error::runtime(format!(
                "discovery of {gk}: {}",
                failure.message()
            )));
        }
    };
    let by_resource = gk.kind.strip_prefix("resource:");
    Ok(group
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| match by_resource {
            Some(plural) => r.plural == plural,
            None => r.kind == gk.kind,
        })
        .map(|(resource, caps)| {
            let found = GroupKind {
                group: resource.group.clone(),
                kind: resource.kind.clone(),
            };
            (
                found,
                Kind {
                    resource,
                    scope: caps.scope,
                },
            )
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_keps_hash_of_name_namespace_kind_group() {
        // Computed apart (Python's hashlib and urlsafe_b64encode, padding stripped).
        assert_eq!(
            id("polls", "default", "Secret", ""),
            "applyset-vS1dmJLpR3vh7ng1pQB7lZnkFii6AMlsbYx1M_bzff8-v1"
        );
        let made = id("x", "", "ApplySet", "example.com");
        assert!(made.starts_with("applyset-") && made.ends_with("-v1"));
        assert!(!made.contains('=') && !made.contains('+') && !made.contains('/'));
        assert_eq!(made.len(), "applyset-".len() + 43 + "-v1".len());
    }

    #[test]
    fn group_kinds_read_and_write_as_kubectl_writes_them() {
        for text in ["Deployment.apps", "Secret", "Certificate.cert-manager.io"] {
            assert_eq!(GroupKind::parse(text).to_string(), text);
        }
        assert_eq!(GroupKind::parse("Deployment.apps").group, "apps");
    }

    #[test]
    fn parent_references_as_kubectls_flag_takes_them() {
        assert_eq!(
            parse_ref("polls").unwrap(),
            ("secrets".into(), String::new(), "polls".into())
        );
        assert_eq!(
            parse_ref("ConfigMaps/polls").unwrap(),
            ("configmaps".into(), String::new(), "polls".into())
        );
        assert_eq!(
            parse_ref("applysets.example.com/x").unwrap(),
            ("applysets".into(), "example.com".into(), "x".into())
        );
        for bad in ["", "secrets/", "/x", "a/b/c"] {
            assert_eq!(parse_ref(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}

//! kapply: fast, ordered, retrying server-side apply of a manifest stream.
//!
//! The whole input is read and checked first (parse, names, duplicates, namespaces,
//! kinds the server serves); only then is anything written. Objects are applied by
//! rank ([`order`]), the objects of one rank in parallel, each with one server-side
//! apply PATCH; the live objects before (to tell created, configured and unchanged
//! apart) are fetched up front, all in parallel. Every request is retried on transient
//! failures ([`retry`]).

mod api;
mod diff;
mod discover;
mod input;
mod order;
mod report;
mod retry;

use api::{Caller, Target};
use clap::{Parser, ValueEnum};
use discover::{InputCrd, Resolved};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use kpipe_core::connect::ConnectArgs;
use kpipe_core::redact::{Scrubber, mask_secret};
use kpipe_core::time::parse_duration;
use kpipe_core::{Document, Error, ObjectId, Result};
use kube::core::ApiResource;
use kube::core::params::PatchParams;
use kube::discovery::Scope;
use order::Rank;
use report::{Change, FailureKind};
use retry::{Backoff, Failure};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::time::Duration;
use tokio::time::Instant;

const LONG_ABOUT: &str = "\
Applies a stream of Kubernetes objects with server-side apply, in dependency order,
in parallel within each step, retrying what a busy API server refuses for a moment.

The whole input is read and checked before the first write: a bad document, an object
in another namespace than -n, or a kind the cluster does not serve, and nothing is applied.
A repeated key, or an unquoted value that Kubernetes (YAML 1.1) reads otherwise than
YAML 1.2 (`DEBUG: on` is a bool there), is a bad document: quote it (`DEBUG: \"on\"`).
Order, in as few steps as Kubernetes needs: 1. Namespaces and CustomResourceDefinitions;
2. what pods consume (ServiceAccount, RBAC, ConfigMap, Secret, PersistentVolumeClaim);
3. everything else at once (Services, workloads, Jobs, Ingresses, custom resources the
server serves); 4. kinds of this input's CRDs, once those are Established.

Each object gets one line on stdout (on stderr with -o), as kubectl prints it:
  configmap/polls-config created
  deployment.apps/polls-app configured
  ingress.networking.k8s.io/polls unchanged

Examples:
  envsplit env | secretgen | manifest-gen --image IMG --host HOST | kapply -n polls
  kapply -f k8s/ --dry-run=server          # what would change, checked by the server
  kapply -f k8s/ --diff                    # unified diff of live vs. applied, no writes
  kapply -f stack.yaml -o yaml | certwait  # the live objects, for the next tool
  kapply -f stack.yaml --force-conflicts   # take over fields someone set with kubectl

Exit codes:
  0    every object applied (or checked, or diffed)
  1    some objects failed (each reported on stderr, the others applied), or the cluster
       does not serve a kind of the input (nothing applied), or it cannot be reached
  2    bad input or usage: nothing was applied
  124  --timeout ran out (what was not done is reported)
  141  stdout was closed";

/// Server-side apply of a manifest stream: ordered, parallel, retrying.
#[derive(Parser, Debug)]
#[command(name = "kapply", version, about, long_about = LONG_ABOUT)]
pub struct Args {
    /// Manifest file, directory (its *.yaml, *.yml, *.json, sorted) or - for stdin;
    /// repeatable. Default: stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub files: Vec<String>,

    /// The field manager that owns what kapply applies.
    #[arg(long, value_name = "NAME", default_value = "kapply")]
    pub field_manager: String,

    /// Take over fields another field manager owns instead of failing with a conflict.
    #[arg(long)]
    pub force_conflicts: bool,

    /// `server`: the API server checks and defaults everything, nothing is stored.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = DryRun::None)]
    pub dry_run: DryRun,

    /// Print a unified diff of each live object against the result of applying it
    /// (checked by the server, Secret values masked); apply nothing.
    #[arg(long, conflicts_with = "output")]
    pub diff: bool,

    /// Print the objects as the server returned them instead of result lines.
    #[arg(short = 'o', long, value_name = "FORMAT", value_enum)]
    pub output: Option<Output>,

    /// Keep metadata.managedFields in -o output.
    #[arg(long)]
    pub show_managed_fields: bool,

    /// Write Secret data in -o output to a terminal too (into a pipe it always goes).
    #[arg(long)]
    pub show_secrets: bool,

    /// Objects of one step applied at the same time.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Retries of a request that failed transiently (429, 5xx, connection reset or
    /// refused, timeout), with capped exponential backoff and jitter.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub retries: u32,

    /// Give up on everything not done after this long (e.g. 30s, 5m; 0 = never).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    None,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

/// From this many objects of one resource in one namespace, one LIST replaces their GETs.
const LIST_FROM: usize = 8;

/// One object ready to apply.
struct Item {
    /// Position in the input, for output in input order.
    position: usize,
    id: ObjectId,
    rank: Rank,
    resolved: Resolved,
    /// The object as sent: namespace set for namespaced kinds, removed for the others.
    body: Value,
    /// Why it cannot be applied, found after planning (its CRD failed).
    blocked: Option<String>,
}

impl Item {
    fn target(&self, resource: &ApiResource) -> Target {
        Target {
            resource: resource.clone(),
            namespace: self.id.namespace.clone(),
            name: self.id.name.clone(),
        }
    }
}

/// What happened to one object.
enum Outcome {
    Done {
        change: Change,
        object: Value,
        diff: String,
    },
    /// Not checkable in a dry run (its namespace or CRD comes with this input).
    Skipped(String),
    Failed(Failure),
}

struct Run {
    caller: Caller,
    params: PatchParams,
    dry_run: bool,
    diff: bool,
    concurrency: usize,
    scrubber: Scrubber,
    /// Namespaces this input creates, which a dry run cannot find yet.
    input_namespaces: HashSet<String>,
}

pub async fn run(args: Args) -> Result<()> {
    let docs = input::read_all(&args.files)?;
    input::check(&docs)?;
    let mut scrubber = Scrubber::default();
    scrubber.learn(docs.iter().map(|d| &d.value));

    let connection = args.connect.connect().await?;
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let caller = Caller::new(
        connection.client.clone(),
        Backoff::new(args.retries),
        deadline,
        scrubber.clone(),
        progress_bar(docs.len()),
    );

    let crds = InputCrd::of(&docs);
    let resolved = discover::resolve(&caller, &docs, &crds, &connection.server).await?;
    let items = plan(
        docs,
        resolved,
        &crds,
        &connection.namespace,
        connection.namespace_from_flag,
    )?;

    let dry_run = args.dry_run == DryRun::Server || args.diff;
    let mut params = PatchParams::apply(&args.field_manager);
    if args.force_conflicts {
        params = params.force();
    }
    if dry_run {
        params = params.dry_run();
    }
    let input_namespaces = items
        .iter()
        .filter(|i| i.id.kind == "Namespace" && i.id.group().is_empty())
        .map(|i| i.id.name.clone())
        .collect();
    let run = Run {
        caller,
        params,
        dry_run,
        diff: args.diff,
        concurrency: args.concurrency.into(),
        scrubber,
        input_namespaces,
    };
    let total = items.len();
    let outcomes = run.apply_all(items, &crds, args.output.is_none()).await?;

    let failures: Vec<FailureKind> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(f) => Some(FailureKind::of(f)),
            _ => None,
        })
        .collect();
    if let Some(format) = args.output {
        let mask = std::io::stdout().is_terminal() && !args.show_secrets;
        let objects: Vec<Value> = outcomes
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Done { object, .. } => Some(object),
                _ => None,
            })
            .map(|mut object| {
                if !args.show_managed_fields
                    && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    meta.remove("managedFields");
                }
                if mask {
                    mask_secret(&mut object);
                }
                object
            })
            .collect();
        kpipe_core::write_stdout(&render(&objects, format))?;
    }

    if failures.is_empty() {
        return Ok(());
    }
    let summary = report::summary(&failures, total, dry_run);
    if failures.contains(&FailureKind::TimedOut) {
        Err(Error::Timeout(summary))
    } else {
        Err(Error::Summary(summary))
    }
}

/// From this many objects a terminal gets a progress bar on stderr.
const PROGRESS_FROM: usize = 20;

/// A progress bar over the objects on a terminal; elsewhere a hidden one, so that
/// logs get plain lines only.
fn progress_bar(objects: usize) -> ProgressBar {
    if objects < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{spinner} {pos}/{len} objects {wide_bar} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    // Cleared however the run ends, so that an error message stands alone.
    ProgressBar::new(objects as u64)
        .with_style(style)
        .with_finish(ProgressFinish::AndClear)
}

/// Places every object: rank, namespace, the body to send. A namespace that
/// contradicts `-n` is bad input, as in kubectl.
fn plan(
    docs: Vec<Document>,
    resolved: Vec<Resolved>,
    crds: &[InputCrd],
    namespace: &str,
    namespace_from_flag: bool,
) -> Result<Vec<Item>> {
    let crd_groups: HashSet<String> = crds.iter().map(|c| c.group.clone()).collect();
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
        match resolved.scope() {
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
        let rank = order::rank(id.group(), &id.kind, &crd_groups);
        items.push(Item {
            position,
            id,
            rank,
            resolved,
            body,
            blocked: None,
        });
    }
    Ok(items)
}

impl Run {
    /// Applies rank after rank, printing result lines as each rank ends, on stdout when
    /// `lines`, else on stderr; the outcomes come back in input order.
    async fn apply_all(
        &self,
        items: Vec<Item>,
        crds: &[InputCrd],
        lines: bool,
    ) -> Result<Vec<Outcome>> {
        let mut ranks: BTreeMap<Rank, Vec<Item>> = BTreeMap::new();
        for item in items {
            ranks.entry(item.rank).or_default().push(item);
        }
        if !self.caller.progress().is_hidden() {
            self.caller
                .progress()
                .enable_steady_tick(Duration::from_millis(120));
        }
        let all: Vec<&Item> = ranks.values().flatten().collect();
        let mut live = self.prefetch(&all).await;
        let mut outcomes = Vec::new();
        // CRDs of this input that were applied, by name: their kinds can be resolved.
        let mut applied_crds: HashSet<String> = HashSet::new();
        let mut discovered: HashMap<String, Result<ApiResource, String>> = HashMap::new();
        for (rank, mut items) in ranks {
            if rank == Rank::Custom && !self.dry_run {
                self.confirm_pending(&mut items, crds, &applied_crds, &mut discovered)
                    .await;
            }
            let befores: Vec<_> = items.iter().map(|i| live.remove(&i.position)).collect();
            // Unordered, so that one object waiting out a backoff does not hold the
            // others back; the results are put back in input order for the output.
            let mut results: Vec<(usize, Outcome)> =
                futures::stream::iter(items.iter().zip(befores).enumerate())
                    .map(|(index, (item, before))| async move {
                        let outcome = self.apply_one(item, before).await;
                        self.caller.progress().inc(1);
                        (index, outcome)
                    })
                    .buffer_unordered(self.concurrency)
                    .collect()
                    .await;
            results.sort_by_key(|(index, _)| *index);
            let results = results.into_iter().map(|(_, outcome)| outcome);
            let mut text = String::new();
            for (item, outcome) in items.iter().zip(results) {
                match &outcome {
                    Outcome::Done { change, diff, .. } => {
                        if item.id.kind == "CustomResourceDefinition"
                            && item.id.group() == "apiextensions.k8s.io"
                        {
                            applied_crds.insert(item.id.name.clone());
                        }
                        let line = report::result_line(&item.id, *change, self.dry_run);
                        if self.diff {
                            text.push_str(diff);
                        } else if lines {
                            text.push_str(&line);
                        } else {
                            // stdout carries the objects: what changed is a diagnostic.
                            self.caller.say(&format!("kapply: {line}"));
                        }
                    }
                    Outcome::Skipped(why) => {
                        self.caller.say(&format!("kapply: {}: {why}\n", item.id));
                    }
                    Outcome::Failed(failure) => {
                        self.caller.say(&report::failure(
                            &item.id,
                            failure,
                            self.caller.retries(),
                            &self.scrubber,
                        ));
                    }
                }
                outcomes.push((item.position, outcome));
            }
            self.caller
                .progress()
                .suspend(|| kpipe_core::write_stdout(&text))?;
        }
        self.caller.progress().finish_and_clear();
        outcomes.sort_by_key(|(position, _)| *position);
        Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
    }

    /// Waits for the input's CRDs to be Established and resolves their kinds through
    /// discovery; an object whose CRD failed is failed with a reason.
    async fn confirm_pending(
        &self,
        items: &mut [Item],
        crds: &[InputCrd],
        applied: &HashSet<String>,
        discovered: &mut HashMap<String, Result<ApiResource, String>>,
    ) {
        for item in items.iter_mut() {
            let Resolved::Pending {
                resource,
                scope,
                crd,
            } = &item.resolved
            else {
                continue;
            };
            let key = format!("{}/{}", resource.api_version, resource.kind);
            if !discovered.contains_key(&key) {
                let result = if !applied.contains(crd) {
                    Err(format!(
                        "not applied: its CustomResourceDefinition/{crd} failed"
                    ))
                } else {
                    let definition = crds
                        .iter()
                        .find(|c| &c.name == crd)
                        .expect("pending kinds come from input CRDs");
                    discover::wait_for_crd(&self.caller, definition, &resource.version)
                        .await
                        .map_err(|f| {
                            format!(
                                "CustomResourceDefinition/{crd} did not become usable: {}",
                                f.message()
                            )
                        })
                };
                discovered.insert(key.clone(), result);
            }
            match &discovered[&key] {
                Ok(found) => {
                    item.resolved = Resolved::Served {
                        resource: found.clone(),
                        scope: scope.clone(),
                    }
                }
                Err(why) => item.blocked = Some(why.clone()),
            }
        }
    }

    /// The live objects before anything is written, fetched all at once: one LIST per
    /// larger group (same resource and namespace) instead of a GET per object, GETs in
    /// parallel for the rest. By input position; kinds not served yet are left out.
    async fn prefetch(&self, items: &[&Item]) -> HashMap<usize, Result<Option<Value>, Failure>> {
        type Group<'a> = Vec<(&'a Item, &'a ApiResource)>;
        let mut groups: BTreeMap<(String, String, Option<String>), Group> = BTreeMap::new();
        for item in items {
            if let Resolved::Served { resource, .. } = &item.resolved {
                let key = (
                    resource.api_version.clone(),
                    resource.plural.clone(),
                    item.id.namespace.clone(),
                );
                groups.entry(key).or_default().push((item, resource));
            }
        }
        let mut known = HashMap::new();
        let mut singles = Vec::new();
        for members in groups.into_values() {
            match self.list_group(&members).await {
                Some(mut by_name) => {
                    for (member, _) in members {
                        known.insert(member.position, Ok(by_name.remove(&member.id.name)));
                    }
                }
                None => singles.extend(members),
            }
        }
        let fetched: Vec<(usize, Result<Option<Value>, Failure>)> = futures::stream::iter(singles)
            .map(|(item, resource)| async move {
                let before = self
                    .caller
                    .get(&item.target(resource), &item.id.to_string())
                    .await;
                (item.position, before)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        known.extend(fetched);
        known
    }

    /// The live objects of a group by name, from one LIST; `None` when the group is too
    /// small for that to pay or the LIST failed (GETs then tell).
    async fn list_group(
        &self,
        members: &[(&Item, &ApiResource)],
    ) -> Option<HashMap<String, Value>> {
        let (first, resource) = members.first()?;
        if members.len() < LIST_FROM {
            return None;
        }
        let namespace = first.id.namespace.as_deref();
        let what = match namespace {
            Some(ns) => format!("list of {} in namespace {ns}", resource.plural),
            None => format!("list of {}", resource.plural),
        };
        let objects = self.caller.list(resource, namespace, &what).await.ok()?;
        let by_name = objects
            .into_iter()
            .filter_map(|mut object| {
                let name = object["metadata"]["name"].as_str()?.to_owned();
                // List items may leave out what the list itself says.
                object["apiVersion"] = resource.api_version.clone().into();
                object["kind"] = resource.kind.clone().into();
                Some((name, object))
            })
            .collect();
        Some(by_name)
    }

    async fn apply_one(
        &self,
        item: &Item,
        live: Option<Result<Option<Value>, Failure>>,
    ) -> Outcome {
        if let Some(why) = &item.blocked {
            return Outcome::Failed(Failure::Transport {
                message: why.clone(),
                transient: false,
            });
        }
        let resource = match &item.resolved {
            Resolved::Served { resource, .. } => resource,
            Resolved::Pending { crd, resource, .. } => {
                return if self.dry_run {
                    Outcome::Skipped(format!(
                        "not checked: {} is served only once CustomResourceDefinition/{crd} of this input is applied",
                        resource.api_version
                    ))
                } else {
                    Outcome::Failed(Failure::Transport {
                        message: format!("not applied: {} is not served", resource.api_version),
                        transient: false,
                    })
                };
            }
        };
        let target = item.target(resource);
        let what = item.id.to_string();
        let before = match live {
            Some(fetched) => fetched,
            None => self.caller.get(&target, &what).await,
        };
        let before = match before {
            Ok(before) => before,
            Err(failure) => return Outcome::Failed(failure),
        };
        let after = match self
            .caller
            .apply(&target, &item.body, &self.params, &what)
            .await
        {
            Ok(after) => after,
            Err(failure) => return self.dry_run_gap(item, failure),
        };
        let change = classify(before.as_ref(), &after, self.dry_run);
        let diff = if self.diff {
            diff::unified(&item.id, before.as_ref(), &after)
        } else {
            String::new()
        };
        Outcome::Done {
            change,
            object: after,
            diff,
        }
    }

    /// In a dry run, an object in a namespace this same input creates cannot be found
    /// by the server yet; that is a gap in what can be checked, not a failure.
    fn dry_run_gap(&self, item: &Item, failure: Failure) -> Outcome {
        if let Failure::Api { status, .. } = &failure
            && self.dry_run
            && status.code == 404
            && let Some(ns) = &item.id.namespace
            && self.input_namespaces.contains(ns)
            && status
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces")
        {
            return Outcome::Skipped(format!(
                "not checked: namespace \"{ns}\" is created by this input"
            ));
        }
        Outcome::Failed(failure)
    }
}

/// Created, configured or unchanged, from the live object before and the answer after.
/// A real apply that changes nothing keeps the resourceVersion, but a controller's status
/// write between our read and our apply moves it too (a new Deployment's first status
/// lands just then), so a moved version still counts as unchanged when only status and
/// bookkeeping differ. A dry run never moves it, so there the objects are compared.
fn classify(before: Option<&Value>, after: &Value, dry_run: bool) -> Change {
    let Some(before) = before else {
        return Change::Created;
    };
    let same = if dry_run {
        without_volatile(before) == without_volatile(after)
    } else {
        before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
            || without_status(before) == without_status(after)
    };
    if same {
        Change::Unchanged
    } else {
        Change::Configured
    }
}

/// The object minus what a dry run rewrites even when nothing changes.
fn without_volatile(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object["metadata"]["managedFields"].as_array_mut() {
        for entry in fields.iter_mut().filter_map(Value::as_object_mut) {
            entry.remove("time");
        }
    }
    object
}

/// The object minus what others write without changing what was applied: its status,
/// and the resourceVersion and managedFields that such a write moves.
fn without_status(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("resourceVersion");
        metadata.remove("managedFields");
    }
    object
}

/// `-o yaml` is a stream, `-o json` one object or a `List`, as kubectl prints them.
fn render(objects: &[Value], format: Output) -> String {
    match format {
        Output::Yaml => kpipe_core::yaml::to_stream(objects),
        Output::Json => {
            let value = match objects {
                [one] => one.clone(),
                many => {
                    serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": many})
                }
            };
            serde_json::to_string_pretty(&value).expect("JSON values serialize") + "\n"
        }
    }
}

#[cfg(test)]
mod fixtures {
    use serde_json::Value;

    pub fn body(name: &str) -> Value {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
    }

    pub fn status(name: &str) -> kube::core::Status {
        serde_json::from_value(body(name)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_from_fixtures_14_15_16() {
        let created = fixtures::body("14-ssa-create.json");
        let noop = fixtures::body("15-ssa-noop.json");
        let changed = fixtures::body("16-ssa-change.json");
        assert_eq!(classify(None, &created, false), Change::Created);
        assert_eq!(classify(Some(&created), &noop, false), Change::Unchanged);
        assert_eq!(classify(Some(&noop), &changed, false), Change::Configured);
    }

    #[test]
    fn a_status_write_between_read_and_apply_is_not_our_change() {
        let live = fixtures::body("15-ssa-noop.json");
        let mut after = live.clone();
        after["metadata"]["resourceVersion"] = "999999".into();
        after["status"] = serde_json::json!({"observedGeneration": 1, "replicas": 1});
        assert_eq!(classify(Some(&live), &after, false), Change::Unchanged);
        after["metadata"]["labels"]["tier"] = "web".into();
        assert_eq!(classify(Some(&live), &after, false), Change::Configured);
    }

    #[test]
    fn dry_run_compares_content_because_fixture_19_keeps_the_resource_version() {
        let live = fixtures::body("16-ssa-change.json");
        let dry = fixtures::body("19-ssa-dryrun.json");
        assert_eq!(
            live["metadata"]["resourceVersion"],
            dry["metadata"]["resourceVersion"]
        );
        assert_eq!(classify(Some(&live), &dry, true), Change::Configured);
        let mut same = live.clone();
        same["metadata"]["managedFields"][0]["time"] = "2030-01-01T00:00:00Z".into();
        assert_eq!(classify(Some(&live), &same, true), Change::Unchanged);
    }

    fn planned(text: &str, scope: Scope, ns: &str, from_flag: bool) -> Result<Vec<Item>> {
        let docs = kpipe_core::stream::parse("in.yaml", text).unwrap();
        let resolved = docs
            .iter()
            .map(|d| Resolved::Served {
                resource: ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                    "",
                    "v1",
                    d.kind(),
                )),
                scope: scope.clone(),
            })
            .collect();
        plan(docs, resolved, &[], ns, from_flag)
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
        assert_eq!(items[0].rank, Rank::Foundation);
    }

    #[test]
    fn json_output_is_a_list_when_there_are_several() {
        let a = serde_json::json!({"kind": "ConfigMap"});
        let one: Value =
            serde_json::from_str(&render(std::slice::from_ref(&a), Output::Json)).unwrap();
        assert_eq!(one, a);
        let two: Value =
            serde_json::from_str(&render(&[a.clone(), a.clone()], Output::Json)).unwrap();
        assert_eq!(two["kind"], "List");
        assert_eq!(two["items"].as_array().unwrap().len(), 2);
        assert_eq!(render(&[a], Output::Yaml), "---\nkind: ConfigMap\n");
    }
}

//! kapply: fast, ordered, retrying server-side apply of a manifest stream.
//!
//! The whole input is read and checked first (parse, names, duplicates, namespaces,
//! kinds the server serves); only then is anything written. Changes run in the waves
//! of one change graph ([`graph`], [`waves`]), the objects of a wave in parallel, each
//! with one server-side apply PATCH, or none when the live object provably holds it
//! already ([`unchanged`]); the live objects before (to tell created, configured and
//! unchanged apart) are fetched up front, all in parallel. Every request is retried on transient
//! failures ([`api::Caller::retrying`]); what a failure is, and whether it is transient,
//! is [`failure`]'s.

mod api;
mod apply;
mod applyset;
mod checks;
mod cli;
mod conflicts;
mod diagnose;
mod diff;
mod discover;
mod failure;
mod fetch;
mod graph;
mod input;
mod keep;
mod namespaces;
mod plan;
mod ready;
mod references;
mod release;
mod report;
mod selector;
mod unchanged;
mod wait;
mod waves;

pub use cli::{Args, DryRun, Output};

use api::Caller;
use apply::{Outcome, Run};
use applyset::{ApplySet, Member, Removal};
use discover::InputCrd;
use indicatif::ProgressBar;
use kpipe_core::api::RetryPolicy;
use kpipe_core::interrupt::Interrupt;
use kpipe_core::redact::mask_secret;
use kpipe_core::{Document, Error, ObjectId, Result};
use kube::core::params::PatchParams;
use report::FailureKind;
use serde_json::Value;
use std::collections::HashSet;
use std::io::IsTerminal;
use tokio::time::Instant;

pub async fn run(args: Args) -> Result<()> {
    args.check()?;
    if args.delete_all {
        return delete_all(args).await;
    }
    if args.history {
        return release::history(&args).await;
    }
    if args.is_release() {
        return release::run(&args).await;
    }
    let deadline = deadline(&args);
    let docs = read_input(&args, deadline).await?;
    apply(&args, docs, &Context::new(deadline)).await
}

/// When `--timeout` runs out, counted from now.
fn deadline(args: &Args) -> Option<Instant> {
    (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout)
}

/// -f, -R, -k and -l: the objects to apply, checked as the server would check them.
async fn read_input(args: &Args, deadline: Option<Instant>) -> Result<Vec<Document>> {
    let mut docs = match &args.kustomize {
        Some(dir) => input::kustomize(dir)?,
        None => input::read_all(&args.files, args.recursive, deadline).await?,
    };
    if let Some(selector) = &args.selector {
        let selector = selector::Selector::parse(selector)?;
        docs.retain(|d| selector.matches(&d.value["metadata"]["labels"]));
        if docs.is_empty() {
            // Not bad input (the same files apply without -l): kubectl exits 1 here too.
            return Err(Error::runtime(format!(
                "no objects passed to apply: none in the input match the selector {:?}",
                args.selector.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(docs)
}

/// What one apply of a stream is told besides the flags.
pub(crate) struct Context {
    /// Counted from the start: reading -f URLs counts too.
    deadline: Option<Instant>,
    /// Result lines (or -o objects) on stdout. An --atomic rollback sends its lines to
    /// stderr and its objects nowhere: stdout already holds the failed release's.
    stdout: bool,
    /// Set members a prune keeps, with why: earlier releases' config versions.
    retained: Vec<(ObjectId, String)>,
    /// Set once the first write was sent: until then a failure changed nothing.
    wrote: std::sync::atomic::AtomicBool,
}

impl Context {
    fn new(deadline: Option<Instant>) -> Self {
        Context {
            deadline,
            stdout: true,
            retained: Vec::new(),
            wrote: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether anything was written to the cluster.
    pub(crate) fn wrote(&self) -> bool {
        self.wrote.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Applies `docs` as the flags say: check, plan, apply in order, wait, prune, report.
pub(crate) async fn apply(args: &Args, docs: Vec<Document>, ctx: &Context) -> Result<()> {
    let deadline = ctx.deadline;
    let lines_on_stdout = args.output.is_none() && ctx.stdout;
    checks::check(&docs)?;
    // A client dry run reads the cluster only to list what --prune would delete.
    let client_dry_run = (args.dry_run == DryRun::Client)
        .then(|| client_dry_run(&docs, args.output, args.show_secrets));
    if let Some(text) = &client_dry_run
        && args.applyset.is_none()
    {
        return kpipe_core::write_stdout(text);
    }
    let client = client_dry_run.is_some();
    let reading = |e: Error| match (client, e) {
        (true, Error::Runtime(why)) => Error::runtime(format!(
            "--dry-run=client with --applyset reads the set from the cluster to list what \
             would be pruned, and cannot: {why}"
        )),
        (_, e) => e,
    };
    if args.show_secrets {
        kpipe_core::redact::show_on_terminal();
    }
    let connection = args.connect.connect(deadline).await.map_err(reading)?;
    let caller = Caller::new(
        connection.client.clone(),
        RetryPolicy::new(args.retry_for),
        deadline,
        apply::progress_bar(docs.len()),
    );

    let crds = InputCrd::of(&docs);
    let resolved = discover::resolve(&caller, &docs, &crds, &connection.server)
        .await
        .map_err(reading)?;
    let mut items = plan::plan(
        docs,
        resolved,
        &connection.namespace,
        connection.namespace_from_flag,
    )?;

    let dry_run = args.dry_run != DryRun::None || args.diff;
    let set = match &args.applyset {
        Some(spec) => {
            let set = ApplySet::open(&caller, spec, &connection.namespace, args.force_applyset)
                .await
                .map_err(reading)?;
            // Pruned as a member, it would be deleted and then made again, empty.
            if let Some(item) = items.iter().find(|i| set.is_parent(&i.id)) {
                return Err(Error::input(format!(
                    "{} is the parent of --applyset {spec}: a set cannot hold its own \
                     parent; leave it out of the input",
                    item.id
                )));
            }
            for item in &mut items {
                set.label(&item.id, &mut item.body)?;
            }
            Some(set)
        }
        None => None,
    };
    let members: Vec<Member> = items
        .iter()
        .map(|item| Member {
            id: item.id.clone(),
            resource: item.resolved.resource.clone(),
            scope: item.resolved.scope.clone(),
        })
        .collect();
    if let Some(text) = client_dry_run {
        kpipe_core::write_stdout(&text)?;
        let Some(set) = set.as_ref().filter(|_| args.prune) else {
            return Ok(());
        };
        let interrupt = Interrupt::install()?;
        let removal = Removal {
            caller: &caller,
            dry_run: DryRun::Client,
            diff: false,
            lines: lines_on_stdout,
            concurrency: args.concurrency.into(),
            crd_groups: crds.iter().map(|c| c.group.clone()).collect(),
            interrupt: &interrupt,
        };
        // Nothing is sent, so nothing can fail; a signal only cuts the list short.
        applyset::prune(set, &removal, &members, &[], &ctx.retained)
            .await
            .map_err(reading)?;
        return match interrupt.received() {
            Some(signal) => Err(Error::Interrupted(
                signal,
                format!("interrupted by {}", signal.name()),
            )),
            None => Ok(()),
        };
    }
    let input_namespaces: HashSet<String> = items
        .iter()
        .filter(|i| i.id.kind == "Namespace" && i.id.group().is_empty())
        .map(|i| i.id.name.clone())
        .collect();
    // From the first write on, a signal stops work instead of the process.
    let interrupt = Interrupt::install()?;
    let mut params = PatchParams::apply(&args.field_manager);
    if args.force_conflicts {
        params = params.force();
    }
    if dry_run {
        params = params.dry_run();
    }
    let mut run = Run {
        caller,
        params,
        dry_run,
        diff: args.diff,
        concurrency: args.concurrency.into(),
        input_namespaces,
        would_create: HashSet::new(),
        interrupt,
        names_only: args.output == Some(Output::Name),
        prefetched: std::sync::Mutex::default(),
    };
    // Conflicts stop the run before anything is written (a dry run meets them itself).
    if !dry_run && !args.force_conflicts {
        let all: Vec<&plan::Item> = items.iter().collect();
        let live = run.prefetch(&all).await;
        conflicts::refuse_conflicts(&run.caller, &items, &live, &run.params, run.concurrency)
            .await?;
        *run.prefetched.lock().expect("not poisoned") = live;
    }
    ctx.wrote
        .store(!dry_run, std::sync::atomic::Ordering::SeqCst);
    // The first writes: the namespaces the parent and the objects go into.
    if args.create_namespace {
        let wanted = items
            .iter()
            .filter_map(|i| i.id.namespace.clone())
            .chain(set.as_ref().and_then(ApplySet::namespace))
            .filter(|ns| !run.input_namespaces.contains(ns))
            .collect();
        run.would_create =
            namespaces::create_missing(&run.caller, &wanted, &args.field_manager, dry_run).await?;
    }
    // A dry run cannot write a parent into a namespace it only would create.
    if let Some(set) = set.as_ref().filter(|s| {
        s.namespace()
            .is_none_or(|ns| !run.would_create.contains(&ns))
    }) {
        set.widen(&run.caller, &members, dry_run).await?;
    }
    let mut total = items.len();
    let ids: Vec<ObjectId> = {
        let mut sorted: Vec<&plan::Item> = items.iter().collect();
        sorted.sort_by_key(|i| i.position);
        sorted.into_iter().map(|i| i.id.clone()).collect()
    };
    let applied = run
        .apply_waves(items, &crds, lines_on_stdout, args.wait)
        .await?;
    let live = applied.live();
    let outcomes = applied.outcomes;
    let pruning = set.as_ref().filter(|_| args.prune);
    let interrupted = run.interrupt.received().map(|signal| {
        let mut summary = report::interrupted(&ids, &outcomes, dry_run);
        if pruning.is_some() {
            summary.push_str("; nothing pruned: the run was interrupted");
        }
        Error::Interrupted(
            signal,
            format!("interrupted by {}: {summary}", signal.name()),
        )
    });
    let not_ready = match &applied.waited {
        Some((end, watched)) if *end != wait::End::AllReady && interrupted.is_none() => {
            Some((run.explain_not_ready(watched).await, end))
        }
        _ => None,
    };

    let mut failures: Vec<FailureKind> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(f) => Some(FailureKind::of(f)),
            _ => None,
        })
        .collect();
    // Only a whole run prunes: every object applied and, with --wait, ready.
    let mut prune_interrupted = None;
    if let Some(set) = pruning.filter(|_| interrupted.is_none()) {
        let not_pruned = if !failures.is_empty() {
            Some("not every object applied".to_owned())
        } else if let Some((count, end)) = &not_ready {
            let objects = if *count == 1 { "object" } else { "objects" };
            Some(match end {
                wait::End::TimedOut => format!("{count} {objects} not ready in time"),
                _ => format!("{count} {objects} not ready"),
            })
        } else {
            None
        };
        match not_pruned {
            Some(why) => run
                .caller
                .say(&format!("kapply: nothing pruned from {}: {why}\n", set.id)),
            None => {
                let removal = Removal {
                    caller: &run.caller,
                    dry_run: if dry_run {
                        DryRun::Server
                    } else {
                        DryRun::None
                    },
                    diff: args.diff,
                    lines: lines_on_stdout,
                    concurrency: run.concurrency,
                    crd_groups: crds.iter().map(|c| c.group.clone()).collect(),
                    interrupt: &run.interrupt,
                };
                let applied: Vec<&Value> = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        Outcome::Done { object, .. } => Some(object),
                        _ => None,
                    })
                    .collect();
                let left =
                    applyset::prune(set, &removal, &members, &applied, &ctx.retained).await?;
                total += left.failed.len();
                failures.extend(report_failed(&run.caller, &left.failed));
                prune_interrupted = run.interrupt.received().map(|signal| {
                    let summary = report::interrupted_removal("pruned", &left);
                    Error::Interrupted(
                        signal,
                        format!("interrupted by {} while pruning: {summary}", signal.name()),
                    )
                });
            }
        }
    }
    let skipped = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Skipped(_)))
        .count();
    let differing = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Done { diff, .. } if !diff.is_empty()))
        .count();
    let verdict = verdict(Verdict {
        interrupted: interrupted.or(prune_interrupted),
        not_ready: not_ready.as_ref().map(|(count, end)| (*count, *end)),
        failures: &failures,
        total,
        dry_run,
        differing: if args.diff { differing } else { 0 },
        skipped,
    });
    // With --wait, objects are printed once all are ready (nothing half-written). A run
    // that fails writes its YAML stream without the end line: the next kpipe tool
    // refuses it as the output of a failed stage.
    if let Some(format) = args.output.filter(|_| ctx.stdout && not_ready.is_none()) {
        let mask = std::io::stdout().is_terminal() && !args.show_secrets;
        let objects: Vec<Value> = outcomes
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Done { object, .. } => Some(object),
                _ => None,
            })
            .map(|object| {
                let mut object = ObjectId::of(&object)
                    .and_then(|id| live.get(&id).cloned())
                    .unwrap_or(object);
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
        kpipe_core::write_stdout(&report::render(&objects, format, verdict.is_ok()))?;
    }
    verdict
}

/// How a run ended, for [`verdict`].
struct Verdict<'a> {
    interrupted: Option<Error>,
    not_ready: Option<(usize, &'a wait::End)>,
    failures: &'a [FailureKind],
    total: usize,
    dry_run: bool,
    /// Objects that differ from the live state, counted with --diff only.
    differing: usize,
    skipped: usize,
}

/// The run's result: the first of interrupted, not ready, failed, differing (--diff),
/// not checked (dry run).
fn verdict(run: Verdict<'_>) -> Result<()> {
    if let Some(interrupted) = run.interrupted {
        return Err(interrupted);
    }
    if let Some((count, end)) = run.not_ready {
        let summary = waves::summary(end, count, run.total);
        return match end {
            wait::End::TimedOut => Err(Error::Timeout(summary)),
            _ => Err(Error::Summary(summary)),
        };
    }
    if run.failures.is_empty() {
        // As `kubectl diff`: exit 1 when something differs.
        if run.differing > 0 {
            let objects = if run.differing == 1 {
                "object"
            } else {
                "objects"
            };
            return Err(Error::Summary(format!(
                "{} of {} {objects} differ from the live state",
                run.differing, run.total
            )));
        }
        // A dry run succeeds only when the server checked every object.
        if run.skipped > 0 {
            return Err(Error::Summary(format!(
                "{} of {} objects not checked (see above); {} checked",
                run.skipped,
                run.total,
                run.total - run.skipped
            )));
        }
        return Ok(());
    }
    let summary = report::summary(run.failures, run.total, run.dry_run);
    if run.failures.contains(&FailureKind::TimedOut) {
        Err(Error::Timeout(summary))
    } else {
        Err(Error::Summary(summary))
    }
}

/// Reports each object a prune or delete could not remove; their kinds for the summary.
fn report_failed(caller: &Caller, failed: &applyset::Failed) -> Vec<FailureKind> {
    failed
        .iter()
        .map(|(id, failure)| {
            caller.say(&report::failure(id, failure, caller.retry_budget()));
            FailureKind::of(failure)
        })
        .collect()
}

/// `--delete-all`: the whole set and its parent, nothing read from the input.
async fn delete_all(args: Args) -> Result<()> {
    let spec = args.applyset.as_deref().expect("clap requires --applyset");
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let connection = args.connect.connect(deadline).await?;
    let caller = Caller::new(
        connection.client.clone(),
        RetryPolicy::new(args.retry_for),
        deadline,
        ProgressBar::hidden(),
    );
    let set = ApplySet::open(&caller, spec, &connection.namespace, args.force_applyset).await?;
    let interrupt = Interrupt::install()?;
    let removal = Removal {
        caller: &caller,
        dry_run: args.dry_run,
        diff: false,
        lines: true,
        concurrency: args.concurrency.into(),
        crd_groups: HashSet::new(),
        interrupt: &interrupt,
    };
    let left = applyset::delete_all(&set, &removal).await?;
    let kinds = report_failed(&caller, &left.failed);
    if let Some(signal) = interrupt.received() {
        let summary = report::interrupted_removal("deleted", &left);
        let parent = if left.is_whole() {
            String::new()
        } else {
            format!("; the parent {} keeps track of what is left", set.id)
        };
        return Err(Error::Interrupted(
            signal,
            format!("interrupted by {}: {summary}{parent}", signal.name()),
        ));
    }
    if left.failed.is_empty() {
        if left.is_whole() {
            release::forget(&caller, &set, &connection.namespace, args.dry_run).await;
        }
        return Ok(());
    }
    let summary = format!(
        "{} objects of {} not deleted; its parent keeps track of them",
        left.failed.len(),
        set.id
    );
    if kinds.contains(&FailureKind::TimedOut) {
        Err(Error::Timeout(summary))
    } else {
        Err(Error::Summary(summary))
    }
}

/// `--dry-run=client`: the input as read, without a cluster: result lines, or the
/// objects (Secret data masked on a terminal unless --show-secrets, as -o always does).
fn client_dry_run(docs: &[Document], output: Option<Output>, show_secrets: bool) -> String {
    match output {
        None => docs
            .iter()
            .map(|d| format!("{} created (dry run)\n", report::kubectl_name(&d.id())))
            .collect(),
        Some(format) => {
            let mut objects: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
            if std::io::stdout().is_terminal() && !show_secrets {
                objects.iter_mut().for_each(mask_secret);
            }
            report::render(&objects, format, true)
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

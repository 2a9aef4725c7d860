//! kapply: fast, ordered, retrying server-side apply of a manifest stream.
//!
//! The whole input is read and checked first (parse, names, duplicates, namespaces,
//! kinds the server serves); only then is anything written. Objects are applied by
//! rank ([`order`]), the objects of one rank in parallel, each with one server-side
//! apply PATCH; the live objects before (to tell created, configured and unchanged
//! apart) are fetched up front, all in parallel. Every request is retried on transient
//! failures ([`retry`]).

mod api;
mod apply;
mod applyset;
mod cli;
mod diagnose;
mod diff;
mod discover;
mod groups;
mod input;
mod order;
mod plan;
mod ready;
mod report;
mod retry;
mod stages;
mod wait;

pub use cli::{Args, DryRun, Output};

use api::Caller;
use apply::{Outcome, Run};
use applyset::{ApplySet, Member, Removal};
use discover::{InputCrd, Resolved};
use indicatif::ProgressBar;
use kpipe_core::api::RetryPolicy;
use kpipe_core::interrupt::Interrupt;
use kpipe_core::redact::{Scrubber, mask_secret};
use kpipe_core::{Document, Error, ObjectId, Result};
use kube::core::params::PatchParams;
use report::FailureKind;
use serde_json::Value;
use std::collections::HashSet;
use std::io::IsTerminal;
use tokio::time::Instant;

pub async fn run(args: Args) -> Result<()> {
    if args.delete_all {
        return delete_all(args).await;
    }
    let mut docs = match &args.kustomize {
        Some(dir) => input::kustomize(dir)?,
        None => input::read_all(&args.files, args.recursive).await?,
    };
    if let Some(selector) = &args.selector {
        let selector = input::Selector::parse(selector)?;
        docs.retain(|d| selector.matches(&d.value["metadata"]["labels"]));
        if docs.is_empty() {
            // Not bad input (the same files apply without -l): kubectl exits 1 here too.
            return Err(Error::runtime(format!(
                "no objects passed to apply: none in the input match the selector {:?}",
                args.selector.as_deref().unwrap_or_default()
            )));
        }
    }
    input::check(&docs)?;
    if args.dry_run == DryRun::Client {
        return client_dry_run(&docs, args.output);
    }
    if args.show_secrets {
        kpipe_core::redact::show_on_terminal();
    }
    // The stream reader taught the choke point every value of the input.
    let scrubber = Scrubber::default();

    let connection = args.connect.connect().await?;
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let caller = Caller::new(
        connection.client.clone(),
        RetryPolicy::new(args.retry_for),
        deadline,
        scrubber.clone(),
        apply::progress_bar(docs.len()),
    );

    let crds = InputCrd::of(&docs);
    let resolved = discover::resolve(&caller, &docs, &crds, &connection.server).await?;
    let mut items = plan::plan(
        docs,
        resolved,
        &crds,
        &connection.namespace,
        connection.namespace_from_flag,
    )?;

    let dry_run = args.dry_run == DryRun::Server || args.diff;
    let set = match &args.applyset {
        Some(spec) => {
            let set =
                ApplySet::open(&caller, spec, &connection.namespace, args.force_applyset).await?;
            for item in &mut items {
                set.label(&item.id, &mut item.body)?;
            }
            Some(set)
        }
        None => None,
    };
    let members: Vec<Member> = items
        .iter()
        .map(|item| {
            let (Resolved::Served { resource, scope }
            | Resolved::Pending {
                resource, scope, ..
            }) = &item.resolved;
            Member {
                id: item.id.clone(),
                resource: resource.clone(),
                scope: scope.clone(),
            }
        })
        .collect();
    if let Some(set) = &set {
        set.widen(&caller, &members, dry_run).await?;
    }
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
        interrupt: Interrupt::install()?,
        names_only: args.output == Some(Output::Name),
    };
    let mut total = items.len();
    let ids: Vec<ObjectId> = {
        let mut sorted: Vec<&plan::Item> = items.iter().collect();
        sorted.sort_by_key(|i| i.position);
        sorted.into_iter().map(|i| i.id.clone()).collect()
    };
    let applied = run
        .apply_in_stages(items, &crds, args.output.is_none(), args.wait)
        .await?;
    let live = applied.live();
    let outcomes = applied.outcomes;
    let interrupted = run.interrupt.received().map(|signal| {
        let summary = report::interrupted(&ids, &outcomes, dry_run);
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
    if let Some(set) = set.as_ref().filter(|_| args.prune) {
        if failures.is_empty() {
            let removal = Removal {
                caller: &run.caller,
                dry_run,
                diff: args.diff,
                lines: args.output.is_none(),
                concurrency: run.concurrency,
                crd_groups: crds.iter().map(|c| c.group.clone()).collect(),
            };
            let failed = applyset::prune(set, &removal, &members).await?;
            total += failed.len();
            failures.extend(report_failed(&run.caller, &failed, &run.scrubber));
        } else {
            run.caller.say(&format!(
                "kapply: nothing pruned from {}: not every object applied\n",
                set.id
            ));
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
        interrupted,
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
    if let Some(format) = args.output.filter(|_| not_ready.is_none()) {
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
        let summary = stages::summary(end, count, run.total);
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
fn report_failed(
    caller: &Caller,
    failed: &applyset::Failed,
    scrubber: &Scrubber,
) -> Vec<FailureKind> {
    failed
        .iter()
        .map(|(id, failure)| {
            caller.say(&report::failure(
                id,
                failure,
                caller.retry_budget(),
                scrubber,
            ));
            FailureKind::of(failure)
        })
        .collect()
}

/// `--delete-all`: the whole set and its parent, nothing read from the input.
async fn delete_all(args: Args) -> Result<()> {
    let spec = args.applyset.as_deref().expect("clap requires --applyset");
    let connection = args.connect.connect().await?;
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    let caller = Caller::new(
        connection.client.clone(),
        RetryPolicy::new(args.retry_for),
        deadline,
        Scrubber::default(),
        ProgressBar::hidden(),
    );
    let set = ApplySet::open(&caller, spec, &connection.namespace, args.force_applyset).await?;
    let removal = Removal {
        caller: &caller,
        dry_run: args.dry_run == DryRun::Server,
        diff: false,
        lines: true,
        concurrency: args.concurrency.into(),
        crd_groups: HashSet::new(),
    };
    let failed = applyset::delete_all(&set, &removal).await?;
    if failed.is_empty() {
        return Ok(());
    }
    let kinds = report_failed(&caller, &failed, &Scrubber::default());
    let summary = format!(
        "{} objects of {} not deleted; its parent keeps track of them",
        failed.len(),
        set.id
    );
    if kinds.contains(&FailureKind::TimedOut) {
        Err(Error::Timeout(summary))
    } else {
        Err(Error::Summary(summary))
    }
}

/// `--dry-run=client`: the input as read, without a cluster: result lines, or the
/// objects (Secret data masked on a terminal, as -o always does).
fn client_dry_run(docs: &[Document], output: Option<Output>) -> Result<()> {
    let text = match output {
        None => docs
            .iter()
            .map(|d| format!("{} created (dry run)\n", report::kubectl_name(&d.id())))
            .collect(),
        Some(format) => {
            let mut objects: Vec<Value> = docs.iter().map(|d| d.value.clone()).collect();
            if std::io::stdout().is_terminal() {
                objects.iter_mut().for_each(mask_secret);
            }
            report::render(&objects, format, true)
        }
    };
    kpipe_core::write_stdout(&text)
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

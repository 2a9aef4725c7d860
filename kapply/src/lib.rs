//! kapply: fast, ordered, retrying server-side apply of a manifest stream.
//!
//! The whole input is read and checked first (parse, names, duplicates, namespaces,
//! kinds the server serves); only then is anything written. Changes run in the waves
//! of one change graph ([`graph`], [`waves`]), the objects of a wave in parallel, each
//! with one server-side apply PATCH, or none when the live object provably holds it
//! already ([`unchanged`]); the live objects before (to tell created, configured and
//! unchanged apart) are fetched up front, all in parallel. Every request is retried on transient
//! failures ([`api::Caller::retrying`]); what a failure is, and whether it is transient,
//! is [`failure`]'s. Everything printed, results, diagnostics and the progress bar,
//! goes through the run's one [`reporter`].

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
mod outcome;
mod pipeline;
mod plan;
mod ready;
mod references;
mod release;
mod report;
mod reporter;
mod selector;
mod unchanged;
mod wait;
mod waves;

pub use cli::{Args, DryRun, Output};

use api::Caller;
use applyset::{ApplySet, Removal};
use kpipe_core::api::RetryPolicy;
use kpipe_core::interrupt::Interrupt;
use kpipe_core::{Error, Result};
use pipeline::{Context, apply, deadline, read_input, report_failed};
use report::FailureKind;
use reporter::{Reporter, Results};
use std::collections::HashSet;

/// One kapply run: --delete-all, --history, a release ([`release`]), or an apply of
/// the input as read.
pub async fn run(args: Args) -> Result<()> {
    args.check()?;
    let reporter = Reporter::install();
    if args.delete_all {
        return delete_all(&args, &reporter).await;
    }
    if args.history {
        return release::history(&args, &reporter).await;
    }
    if args.is_release() {
        return release::run(&args, &reporter).await;
    }
    let deadline = deadline(&args);
    let docs = read_input(&args, deadline).await?;
    apply(&args, docs, &Context::new(deadline), &reporter).await
}

/// `--delete-all`: the whole set and its parent, nothing read from the input.
async fn delete_all(args: &Args, reporter: &Reporter) -> Result<()> {
    let spec = args.applyset.as_deref().expect("clap requires --applyset");
    let deadline = deadline(args);
    let connection = args.connect.connect(deadline).await?;
    let caller = Caller::new(
        connection.client.clone(),
        RetryPolicy::new(args.retry_for),
        deadline,
        reporter.clone(),
    );
    let set = ApplySet::open(&caller, spec, &connection.namespace, args.force_applyset).await?;
    let interrupt = Interrupt::install()?;
    let removal = Removal {
        caller: &caller,
        reporter,
        dry_run: args.dry_run,
        results: Results::Lines,
        concurrency: args.concurrency.into(),
        crd_groups: HashSet::new(),
        interrupt: &interrupt,
    };
    let left = applyset::delete_all(&set, &removal).await?;
    let kinds = report_failed(reporter, &left.failed, caller.retry_budget());
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
            release::forget(&caller, reporter, &set, &connection.namespace, args.dry_run).await;
        }
        return Ok(());
    }
    let summary = format!(
        "{} of {} not deleted; its parent keeps track of them",
        crate::report::counted(left.failed.len(), "object"),
        set.id
    );
    if kinds.contains(&FailureKind::TimedOut) {
        Err(Error::Timeout(summary))
    } else {
        Err(Error::Summary(summary))
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

//! One apply of a manifest stream, as read -> plan -> run -> report: the input read
//! and checked, the objects placed and the ApplySet opened ([`Plan`]), the change
//! graph's waves applied and waited for and the set pruned ([`Ran`]), then the verdict
//! and the `-o` objects. Releases ([`crate::release`]) run it too.

use crate::api::Caller;
use crate::apply::Run;
use crate::applyset::{ApplySet, Member, Removal};
use crate::cli::{Args, DryRun, Output};
use crate::discover::InputCrd;
use crate::outcome::Outcome;
use crate::report::FailureKind;
use crate::reporter::{Reporter, Results};
use crate::waves::Applied;
use crate::{
    applyset, checks, conflicts, discover, input, namespaces, plan, report, selector, wait, waves,
};
use kpipe_core::api::RetryPolicy;
use kpipe_core::interrupt::Interrupt;
use kpipe_core::redact::mask_secret;
use kpipe_core::{Document, Error, ObjectId, Result};
use kube::core::params::PatchParams;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::time::Duration;
use tokio::time::Instant;

/// When `--timeout` runs out, counted from now.
pub(crate) fn deadline(args: &Args) -> Option<Instant> {
    (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout)
}

/// -f, -R, -k and -l: the objects to apply, checked as the server would check them.
pub(crate) async fn read_input(args: &Args, deadline: Option<Instant>) -> Result<Vec<Document>> {
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
    pub stdout: bool,
    /// Set members a prune keeps, with why: earlier releases' config versions.
    pub retained: Vec<(ObjectId, String)>,
    /// Set once the first write was sent: until then a failure changed nothing.
    wrote: std::sync::atomic::AtomicBool,
}

impl Context {
    pub(crate) fn new(deadline: Option<Instant>) -> Self {
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

/// Applies `docs` as the flags say: plan, run, report.
pub(crate) async fn apply(
    args: &Args,
    docs: Vec<Document>,
    ctx: &Context,
    reporter: &Reporter,
) -> Result<()> {
    let result = plan_run_report(args, docs, ctx, reporter).await;
    // However the apply ended, the progress bar goes: an error message stands alone.
    reporter.end_progress();
    result
}

/// [`apply`]'s steps: the input, checked, is planned, run and reported; a client dry
/// run only plans, to list what a prune would delete.
async fn plan_run_report(
    args: &Args,
    docs: Vec<Document>,
    ctx: &Context,
    reporter: &Reporter,
) -> Result<()> {
    checks::check(&docs)?;
    if args.dry_run == DryRun::Client {
        return client_dry_run(args, docs, ctx, reporter).await;
    }
    let plan = Plan::make(args, docs, ctx.deadline, reporter, std::convert::identity).await?;
    let ran = plan.run(args, ctx).await?;
    ran.report(args, ctx, reporter)
}

/// The input made ready to apply: every object's kind resolved and the object placed,
/// the set it joins opened.
struct Plan<'a> {
    caller: Caller,
    reporter: &'a Reporter,
    items: Vec<plan::Item>,
    crds: Vec<InputCrd>,
    set: Option<ApplySet>,
    /// The input as members of the set.
    members: Vec<Member>,
}

impl<'a> Plan<'a> {
    /// Connects, resolves every object's kind (discovery), places it (namespace, body),
    /// and opens the set it joins (--applyset), whose label it gets. `reading` words a
    /// failure to read the cluster.
    async fn make(
        args: &Args,
        docs: Vec<Document>,
        deadline: Option<Instant>,
        reporter: &'a Reporter,
        reading: fn(Error) -> Error,
    ) -> Result<Plan<'a>> {
        if args.show_secrets {
            kpipe_core::redact::show_on_terminal();
        }
        let connection = args.connect.connect(deadline).await.map_err(reading)?;
        let caller = Caller::new(
            connection.client.clone(),
            RetryPolicy::new(args.retry_for),
            deadline,
            reporter.clone(),
        );
        reporter.start_progress(docs.len());
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
        let members = items
            .iter()
            .map(|item| Member {
                id: item.id.clone(),
                resource: item.resolved.resource.clone(),
                scope: item.resolved.scope.clone(),
            })
            .collect();
        Ok(Plan {
            caller,
            reporter,
            items,
            crds,
            set,
            members,
        })
    }

    /// Groups the input's CRDs define, whose kinds are deleted first.
    fn crd_groups(&self) -> HashSet<String> {
        self.crds.iter().map(|c| c.group.clone()).collect()
    }

    /// Runs the plan: conflicts refused before the first write, the namespaces created
    /// and the set's parent widened, the change graph's waves applied (with --wait,
    /// waited for), then the set pruned.
    async fn run(self, args: &Args, ctx: &Context) -> Result<Ran> {
        let crd_groups = self.crd_groups();
        let Plan {
            caller,
            reporter,
            items,
            crds,
            set,
            members,
        } = self;
        let mut run = runner(caller, reporter, &items, args, ctx)?;
        prepare(&mut run, &items, set.as_ref(), &members, args, ctx).await?;
        let ids: Vec<ObjectId> = {
            let mut sorted: Vec<&plan::Item> = items.iter().collect();
            sorted.sort_by_key(|i| i.position);
            sorted.into_iter().map(|i| i.id.clone()).collect()
        };
        let applied = run.apply_waves(items, &crds, args.wait).await?;
        let pruning = set.as_ref().filter(|_| args.prune);
        let mut ran = Ran::of(&run, applied, &ids, pruning.is_some()).await;
        if let Some(set) = pruning.filter(|_| ran.interrupted.is_none()) {
            let how = Removal {
                caller: &run.caller,
                reporter,
                dry_run: if run.dry_run {
                    DryRun::Server
                } else {
                    DryRun::None
                },
                results: run.results,
                concurrency: run.concurrency,
                crd_groups,
                interrupt: &run.interrupt,
            };
            ran.prune(set, &how, &members, &ctx.retained).await?;
        }
        Ok(ran)
    }
}

/// What applies the objects: how they are sent, where their results go; from now on a
/// signal stops work instead of the process.
fn runner<'a>(
    caller: Caller,
    reporter: &'a Reporter,
    items: &[plan::Item],
    args: &Args,
    ctx: &Context,
) -> Result<Run<'a>> {
    // --diff is a server dry run of its own.
    let dry_run = args.dry_run != DryRun::None || args.diff;
    let mut params = PatchParams::apply(&args.field_manager);
    if args.force_conflicts {
        params = params.force();
    }
    if dry_run {
        params = params.dry_run();
    }
    Ok(Run {
        caller,
        reporter,
        params,
        dry_run,
        results: Results::of(args.output, args.diff, ctx.stdout),
        concurrency: args.concurrency.into(),
        input_namespaces: items
            .iter()
            .filter(|i| i.id.kind == "Namespace" && i.id.group().is_empty())
            .map(|i| i.id.name.clone())
            .collect(),
        would_create: HashSet::new(),
        interrupt: Interrupt::install()?,
        prefetched: std::sync::Mutex::default(),
    })
}

/// What comes before the objects: conflicts refused while nothing is written yet (a dry
/// run meets them itself), then the first writes, the namespaces the parent and the
/// objects go into (--create-namespace) and the set's parent, widened.
async fn prepare(
    run: &mut Run<'_>,
    items: &[plan::Item],
    set: Option<&ApplySet>,
    members: &[Member],
    args: &Args,
    ctx: &Context,
) -> Result<()> {
    if !run.dry_run && !args.force_conflicts {
        let all: Vec<&plan::Item> = items.iter().collect();
        let live = run.prefetch(&all).await;
        conflicts::refuse_conflicts(
            &run.caller,
            run.reporter,
            items,
            &live,
            &run.params,
            run.concurrency,
        )
        .await?;
        *run.prefetched.lock().expect("not poisoned") = live;
    }
    ctx.wrote
        .store(!run.dry_run, std::sync::atomic::Ordering::SeqCst);
    if args.create_namespace {
        let wanted = items
            .iter()
            .filter_map(|i| i.id.namespace.clone())
            .chain(set.and_then(ApplySet::namespace))
            .filter(|ns| !run.input_namespaces.contains(ns))
            .collect();
        run.would_create = namespaces::create_missing(
            &run.caller,
            run.reporter,
            &wanted,
            &args.field_manager,
            run.dry_run,
        )
        .await?;
    }
    // A dry run cannot write a parent into a namespace it only would create.
    if let Some(set) = set.filter(|s| {
        s.namespace()
            .is_none_or(|ns| !run.would_create.contains(&ns))
    }) {
        set.widen(&run.caller, members, run.dry_run).await?;
    }
    Ok(())
}

/// What the run did, for the report.
struct Ran {
    /// In input order.
    outcomes: Vec<Outcome>,
    /// The objects waited for, as last seen (status included), by identity.
    live: HashMap<ObjectId, Value>,
    /// SIGINT/SIGTERM stopped the apply or the prune: what was not done.
    interrupted: Option<Error>,
    /// With --wait: how many objects are not ready, and how the wait ended.
    not_ready: Option<(usize, wait::End)>,
    /// Every failure's kind, deletions' included.
    failures: Vec<FailureKind>,
    /// The objects applied and the deletions that failed.
    total: usize,
    dry_run: bool,
}

impl Ran {
    /// How applying went: `ids` in input order; `pruning` whether a prune was to follow.
    /// With --wait, why each object is not ready is told.
    async fn of(run: &Run<'_>, applied: Applied, ids: &[ObjectId], pruning: bool) -> Ran {
        let live = applied.live();
        let Applied { outcomes, waited } = applied;
        let interrupted = run.interrupt.received().map(|signal| {
            let mut summary = report::interrupted(ids, &outcomes, run.dry_run);
            if pruning {
                summary.push_str("; nothing pruned: the run was interrupted");
            }
            Error::Interrupted(
                signal,
                format!("interrupted by {}: {summary}", signal.name()),
            )
        });
        let not_ready = match waited {
            Some((end, watched)) if end != wait::End::AllReady && interrupted.is_none() => {
                Some((run.explain_not_ready(&watched).await, end))
            }
            _ => None,
        };
        let failures = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Failed(f) => Some(FailureKind::of(f)),
                _ => None,
            })
            .collect();
        Ran {
            outcomes,
            live,
            interrupted,
            not_ready,
            failures,
            total: ids.len(),
            dry_run: run.dry_run,
        }
    }

    /// Only a whole run prunes: every object applied and, with --wait, ready; else it
    /// says why nothing was pruned. Deletions that failed are reported and counted.
    async fn prune(
        &mut self,
        set: &ApplySet,
        how: &Removal<'_>,
        members: &[Member],
        retained: &[(ObjectId, String)],
    ) -> Result<()> {
        let not_pruned = if !self.failures.is_empty() {
            Some("not every object applied".to_owned())
        } else if let Some((count, end)) = &self.not_ready {
            let objects = crate::report::counted(*count, "object");
            Some(match end {
                wait::End::TimedOut => format!("{objects} not ready in time"),
                _ => format!("{objects} not ready"),
            })
        } else {
            None
        };
        if let Some(why) = not_pruned {
            how.reporter
                .say(&format!("kapply: nothing pruned from {}: {why}\n", set.id));
            return Ok(());
        }
        let applied: Vec<&Value> = self
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Done { object, .. } => Some(object),
                _ => None,
            })
            .collect();
        let left = applyset::prune(set, how, members, &applied, retained).await?;
        self.total += left.failed.len();
        self.failures.extend(report_failed(
            how.reporter,
            &left.failed,
            how.caller.retry_budget(),
        ));
        self.interrupted = how.interrupt.received().map(|signal| {
            let summary = report::interrupted_removal("pruned", &left);
            Error::Interrupted(
                signal,
                format!("interrupted by {} while pruning: {summary}", signal.name()),
            )
        });
        Ok(())
    }

    /// The verdict, and with -o the objects on stdout, as the server has them.
    fn report(self, args: &Args, ctx: &Context, reporter: &Reporter) -> Result<()> {
        let skipped = self
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Skipped(_)))
            .count();
        let differing = self
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Done { diff, .. } if !diff.is_empty()))
            .count();
        // With --wait, objects are printed once all are ready (nothing half-written). A
        // run that fails writes its YAML stream without the end line: the next kpipe
        // tool refuses it as the output of a failed stage.
        let output = args
            .output
            .filter(|_| ctx.stdout && self.not_ready.is_none());
        let verdict = verdict(Verdict {
            interrupted: self.interrupted,
            not_ready: self.not_ready,
            failures: &self.failures,
            total: self.total,
            dry_run: self.dry_run,
            differing: if args.diff { differing } else { 0 },
            skipped,
        });
        if let Some(format) = output {
            let mask = std::io::stdout().is_terminal() && !args.show_secrets;
            let objects: Vec<Value> = self
                .outcomes
                .into_iter()
                .filter_map(|o| match o {
                    Outcome::Done { object, .. } => Some(object),
                    _ => None,
                })
                .map(|object| {
                    let mut object = ObjectId::of(&object)
                        .and_then(|id| self.live.get(&id).cloned())
                        .unwrap_or(object);
                    if !args.show_managed_fields
                        && let Some(meta) =
                            object.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        meta.remove("managedFields");
                    }
                    if mask {
                        mask_secret(&mut object);
                    }
                    object
                })
                .collect();
            reporter.write(&report::render(&objects, format, verdict.is_ok()))?;
        }
        verdict
    }
}

/// How a run ended, for [`verdict`].
struct Verdict<'a> {
    interrupted: Option<Error>,
    not_ready: Option<(usize, wait::End)>,
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
        let summary = waves::summary(&end, count, run.total);
        return match end {
            wait::End::TimedOut => Err(Error::Timeout(summary)),
            _ => Err(Error::Summary(summary)),
        };
    }
    if run.failures.is_empty() {
        // As `kubectl diff`: exit 1 when something differs.
        if run.differing > 0 {
            let verb = if run.differing == 1 {
                "differs"
            } else {
                "differ"
            };
            return Err(Error::Summary(format!(
                "{} of {} {verb} from the live state",
                run.differing,
                crate::report::counted(run.total, "object")
            )));
        }
        // A dry run succeeds only when the server checked every object.
        if run.skipped > 0 {
            return Err(Error::Summary(format!(
                "{} of {} not checked (see above); {} checked",
                run.skipped,
                crate::report::counted(run.total, "object"),
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

/// Reports each object a prune or delete could not remove (each retried for up to
/// `retried`); their kinds for the summary.
pub(crate) fn report_failed(
    reporter: &Reporter,
    failed: &applyset::Failed,
    retried: Duration,
) -> Vec<FailureKind> {
    failed
        .iter()
        .map(|(id, failure)| {
            reporter.say(&report::failure(id, failure, retried));
            FailureKind::of(failure)
        })
        .collect()
}

/// `--dry-run=client`: the input as read, without a cluster; with --applyset, the set
/// is read from the cluster to list what --prune would delete.
async fn client_dry_run(
    args: &Args,
    docs: Vec<Document>,
    ctx: &Context,
    reporter: &Reporter,
) -> Result<()> {
    let text = client_dry_run_output(&docs, args.output, args.show_secrets);
    if args.applyset.is_none() {
        return reporter.write(&text);
    }
    let plan = Plan::make(args, docs, ctx.deadline, reporter, reading_for_client).await?;
    reporter.write(&text)?;
    let Some(set) = plan.set.as_ref().filter(|_| args.prune) else {
        return Ok(());
    };
    let interrupt = Interrupt::install()?;
    let how = Removal {
        caller: &plan.caller,
        reporter,
        dry_run: DryRun::Client,
        results: Results::of(args.output, false, ctx.stdout),
        concurrency: args.concurrency.into(),
        crd_groups: plan.crd_groups(),
        interrupt: &interrupt,
    };
    // Nothing is sent, so nothing can fail; a signal only cuts the list short.
    applyset::prune(set, &how, &plan.members, &[], &ctx.retained)
        .await
        .map_err(reading_for_client)?;
    match interrupt.received() {
        Some(signal) => Err(Error::Interrupted(
            signal,
            format!("interrupted by {}", signal.name()),
        )),
        None => Ok(()),
    }
}

/// A client dry run reads the cluster only for --applyset: a failure to read it says so.
fn reading_for_client(e: Error) -> Error {
    match e {
        Error::Runtime(why) => Error::runtime(format!(
            "--dry-run=client with --applyset reads the set from the cluster to list what \
             would be pruned, and cannot: {why}"
        )),
        e => e,
    }
}

/// What `--dry-run=client` prints: result lines, or the objects (Secret data masked on
/// a terminal unless --show-secrets, as -o always does).
fn client_dry_run_output(docs: &[Document], output: Option<Output>, show_secrets: bool) -> String {
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

//! Flags and help text.

use clap::{ArgGroup, Parser, ValueEnum};
use kpipe_core::connect::ConnectArgs;
use kpipe_core::time::parse_duration;
use std::time::Duration;

const LONG_ABOUT: &str = "\
Applies a stream of Kubernetes objects with server-side apply, in dependency order,
in parallel within each step, retrying what a busy API server refuses for a moment.

The whole input is read and checked before the first write: a bad document, an object
in another namespace than -n, or a kind the cluster does not serve, and nothing is applied.
Files are read exactly as kubectl reads them (YAML 1.1: `0755` is 493, `on` is true,
merge keys, flow style, JSON streams, `kind: List`). A repeated key is a bad document, and
so is a value the API server would refuse as read (`DEBUG: on` in a ConfigMap is a bool
there): quote it (`DEBUG: \"on\"`). An empty pipe on stdin, or a kpipe stream cut off
before its last line `# kpipe stream: end`, is what a stage before that failed leaves:
nothing is applied or pruned. -o yaml writes such a stream, without the end line when the
run fails (so `| certwait` stops too); -o json and -o name carry no such line.
Order, in as few steps as Kubernetes needs, as waves of one change graph (kapp's
model): 1. Namespaces and CustomResourceDefinitions; 2. what pods consume
(ServiceAccount, RBAC, ConfigMap, Secret, PersistentVolumeClaim); 3. everything else at
once (Services, workloads, Jobs, Ingresses, custom resources the server serves); 4. kinds
of this input's CRDs, once those are Established; deletions in reverse. kapp's change
rules reorder them: `kapp.k14s.io/change-group: G` and `kapp.k14s.io/change-rule:
upsert after upserting G`, `upsert before upserting G`, `delete after deleting G`,
`delete before deleting G` (deletions come after every upsert, so `upsert after deleting`
and `delete before upserting` cannot hold: a prune that meets one warns).
A re-apply sends nothing for an object whose live state provably holds the input
(every value, and kapply's field manager owning exactly those fields): `unchanged`.

Each object gets one line on stdout (on stderr with -o yaml|json; -o name prints only
the names, on stdout), as kubectl prints it:
  configmap/polls-config created
  deployment.apps/polls-app configured
  ingress.networking.k8s.io/polls unchanged

Examples:
  envsplit env | secretgen | manifest-gen --image IMG --host HOST | kapply -n polls
  kapply -f k8s/ --dry-run=server          # what would change, checked by the server
  kapply -f k8s/ --diff                    # unified diff of live vs. applied, no writes
  kapply -f stack.yaml -o yaml | certwait  # the live objects, for the next tool
  kapply -f stack.yaml --force-conflicts   # take over fields someone set with kubectl
  kapply -n new --create-namespace         # make namespace/new first if it is missing
  kapply -f stack.yaml --wait --timeout 5m # applied AND running, or why not
  kapply -f stack.yaml --applyset polls --prune   # ... and delete what the stack dropped
  kapply --applyset polls --delete-all     # remove the whole set and its parent
  kapply --applyset polls --prune --release --atomic --wait -f stack.yaml
                                           # a recorded release, undone when it fails
  kapply --applyset polls --history        # what ran when, and how it ended
  kapply --applyset polls --prune --rollback --wait   # back to the release before

ApplySets (KEP-3659, as `KUBECTL_APPLYSET=true kubectl apply --prune --applyset`):
--applyset NAME names a parent object, a Secret in the -n namespace (or
RESOURCE[.GROUP]/NAME: configmaps/polls, or a custom resource whose CRD is labelled
applyset.kubernetes.io/is-parent-type). Every applied object gets the label
applyset.kubernetes.io/part-of=ID; the parent records the set's kinds and namespaces.
With --prune, once every object applied, the set's objects the input no longer has
are deleted, last kind first (`configmap/old pruned`). A set made by another tool
(kubectl, ...) is refused unless --force-applyset. The same parent gives kubectl and
kapply the same id, so `kubectl get all -l applyset.kubernetes.io/part-of=ID` lists
the set.

Releases (--release, as helm records an upgrade): each apply that reached the cluster
becomes revision N of the set, a Secret kpipe-release.NAME.vN next to the parent with
the applied stream (gzipped) and, in labels and annotations (never a secret value), its
time, images, config versions (the stream's immutable ConfigMaps and Secrets), issuer
and result. Applying the newest good release again records nothing. A prune keeps the
config versions of the last --keep-releases good releases (`configmap/polls-config-1a2b
kept: config version of revision 4, kept for a rollback ...`); --history-max records are
kept. --atomic (with --wait) applies the last good release again when this one fails,
and says so; the exit status stays the failure's. --rollback [N] applies revision N (by
default the release before the newest good one) again, as a new revision. --history
lists them; --delete-all deletes them once the set is gone.

What --prune and --delete-all never do:
  - delete an object without the set's label, or the parent as a member: an input
    that holds the parent is refused (exit 2)
  - prune after a run that was not whole: when an object failed to apply, was not
    ready (--wait) or --timeout ran out, nothing is pruned (`nothing pruned: ...`)
  - start a deletion after SIGINT/SIGTERM: a signal while applying or waiting prunes
    nothing; during a prune or --delete-all no new deletion starts, those in flight
    get 1s, and the objects deleted and kept are named (exit 130/143); the parent
    stays while any member is left
  - write in a dry run: --dry-run=server and --diff send only dry-run requests,
    --dry-run=client only reads the cluster (to list what would be pruned or
    deleted) and says so when it cannot be reached
  - ignore a flag: -l with --applyset (as kubectl refuses it), --delete-all with
    input flags (-f, -R, -l, --wait, --field-manager, --force-conflicts, -o, --diff),
    --diff or --wait with --dry-run, are refused before any request (exit 2)
  - delete what this run applied: an object is matched by uid, so one served under
    two groups (Event as v1 and events.k8s.io/v1) is never pruned
  - delete what a kept object uses: a Secret, ConfigMap, ServiceAccount, Service or
    PVC named by a kept pod template (env, envFrom, volumes, projected volumes,
    imagePullSecrets, serviceAccountName; init and ephemeral containers too), an
    Ingress (TLS Secret, backend Services) or a ServiceAccount stays, with a line:
    `secret/polls-secret kept: used by deployment.apps/polls-app (envFrom)`
  - delete a Namespace anything else still lives in (`namespace/shop kept:
    configmap/by-hand still in it`); when its contents cannot be listed, it is kept
  - prune after a cut-off input: an empty pipe or a kpipe stream without its end
    line (the stage before failed) is refused (exit 2) before any request

Exit codes:
  0    every object applied (or checked, or diffed); with --wait, and ready
  1    applying would take over fields another field manager owns (found by a
       server dry run before the first write: nothing applied; --force-conflicts
       takes them over), or some objects failed (each reported on stderr, the
       others applied), or with
       --wait some did not become ready (each explained on stderr), or the cluster
       does not serve a kind of the input (nothing applied), or it cannot be reached,
       or -l matched no object (as kubectl), or stdout is closed (`>&-`)
  2    bad input or usage: nothing was applied
  124  --timeout ran out (what was not done or not ready is reported)
  130  SIGINT (143: SIGTERM): writes in flight finished (at most 2s), the objects not
       applied are named; nothing pruned (during a prune: deletions in flight get 1s,
       what was deleted and kept is named)
  141  stdout was closed";

/// Server-side apply of a manifest stream: ordered, parallel, retrying.
#[derive(Parser, Debug)]
#[command(name = "kapply", version, about, long_about = LONG_ABOUT)]
#[command(group(ArgGroup::new("set_action").args(["prune", "delete_all", "history"])))]
pub struct Args {
    /// Manifest file, directory (its *.yaml, *.yml, *.json, sorted), http(s) URL or -
    /// for stdin; repeatable. Default: stdin. A URL is read as kubectl reads it:
    /// redirects followed (stopped at the 10th), through HTTPS_PROXY / HTTP_PROXY but
    /// for the hosts of NO_PROXY and loopback, only a 200 answer taken; https with the
    /// system's certificate roots, never unverified, and never redirected to plain
    /// http. At most 64 MiB, within --timeout; 30s to connect, at most 30s of silence.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|URL|-")]
    pub files: Vec<String>,

    /// Read the directories of -f and all their subdirectories.
    #[arg(short = 'R', long, requires = "files")]
    pub recursive: bool,

    /// Apply what `kubectl kustomize DIR` (or, without kubectl, `kustomize build DIR`)
    /// renders from a kustomization directory, as kubectl's -k.
    #[arg(short = 'k', long, value_name = "DIR", conflicts_with_all = ["files", "recursive"])]
    pub kustomize: Option<String>,

    /// Apply only the objects of the input whose labels match, as kubectl's -l:
    /// `key=value`, `key!=value`, `key`, `!key`, `key in (a,b)`, `key notin (a,b)`,
    /// comma-separated, all of which must hold. Not with --applyset: a prune would
    /// delete the members the selector left out (kubectl refuses it too).
    #[arg(
        short = 'l',
        long,
        value_name = "SELECTOR",
        conflicts_with = "applyset"
    )]
    pub selector: Option<String>,

    /// The field manager that owns what kapply applies.
    #[arg(long, value_name = "NAME", default_value = "kapply")]
    pub field_manager: String,

    /// Take over fields another field manager owns instead of failing with a conflict.
    /// Without it, objects whose live fields another manager owns are checked with a
    /// server dry run before the first write, and a conflict stops the run, naming the
    /// fields, their managers and what would change, with nothing applied.
    #[arg(long)]
    pub force_conflicts: bool,

    /// `server`: the API server checks and defaults everything, nothing is stored.
    /// `client`: only read and check the input, and print it as kapply would send it
    /// (with -o json: the objects as kubectl reads the same files); no cluster needed,
    /// except with --applyset, whose members it reads (never writes) to list what
    /// would be pruned or deleted.
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
    #[arg(long, requires = "output")]
    pub show_managed_fields: bool,

    /// Write Secret data in -o output to a terminal too (into a pipe it always goes).
    #[arg(long, requires = "output")]
    pub show_secrets: bool,

    /// Objects of one step applied at the same time.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// How long a request that failed transiently (429, 5xx, connection reset or
    /// refused, timeout) is tried again: backoff up to 1s between tries, or what the
    /// server's Retry-After asks for, with jitter. The default rides out an API server
    /// restart (told in two lines: when it stops answering and when it answers again).
    /// A connection refused before the server ever answered fails at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub retry_for: Duration,

    /// After applying, wait until every object is ready: Deployments, StatefulSets and
    /// DaemonSets rolled out, Jobs complete, PVCs bound, LoadBalancer Services with an
    /// address, CRDs established, anything else with a Ready/Available condition for
    /// its generation. A rollout whose pods cannot start (image pull back-off, crash
    /// loop, missing Secret/ConfigMap) or passes its progress deadline, or a failed
    /// Job, fails the wait at once; then, and on timeout, kapply says why: pods,
    /// container reasons, the crashing container's last log lines, Warning events.
    /// Objects annotated with kapp change rules (`kapp.k14s.io/change-rule: upsert
    /// after upserting GROUP`, or `upsert before upserting` on the group's side) are
    /// applied only once the changes they follow are ready.
    #[arg(long)]
    pub wait: bool,

    /// Give up on everything not done after this long (e.g. 30s, 5m; 0 = never);
    /// with --wait, this bounds the wait too.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,

    /// The ApplySet the input makes up: NAME (a Secret in the -n namespace) or
    /// RESOURCE[.GROUP]/NAME, as kubectl's --applyset takes it. Needs --prune or
    /// --delete-all.
    #[arg(long, value_name = "[RESOURCE[.GROUP]/]NAME", requires = "set_action")]
    pub applyset: Option<String>,

    /// Delete the objects of --applyset that the input no longer has (only those with
    /// the set's label), once every object applied and, with --wait, became ready.
    /// Nothing is pruned after a failure, a timeout or SIGINT/SIGTERM; a signal during
    /// the prune stops it (no new deletion starts). Kept, with a line saying why: what
    /// this run applied (by uid), what a kept object uses, a Namespace others live in.
    /// With --dry-run or --diff: what would be pruned, nothing deleted.
    #[arg(long, requires = "applyset")]
    pub prune: bool,

    /// Delete every object of --applyset and then its parent, last kind first, and
    /// wait until they are gone (within --timeout). Reads no input, so takes none of
    /// the input's flags. SIGINT/SIGTERM stops it: no new deletion starts, and the
    /// parent stays while a member is left. With --dry-run: what would be deleted.
    /// Once the parent is gone, the set's release records (--release) go too.
    #[arg(
        long,
        requires = "applyset",
        conflicts_with_all = [
            "files", "kustomize", "recursive", "selector", "prune", "diff", "output", "wait",
            "field_manager", "force_conflicts", "create_namespace", "release", "rollback",
        ],
    )]
    pub delete_all: bool,

    /// Create the namespaces the objects (and the --applyset parent) go into when they
    /// do not exist, before anything else is written, as helm's --create-namespace.
    /// They are not members of the set and never pruned. In a dry run: said, not done.
    #[arg(long)]
    pub create_namespace: bool,

    /// Record this apply as a release of --applyset (as helm records an upgrade): a
    /// Secret `kpipe-release.NAME.vN` next to the parent holding the applied stream
    /// (gzipped; Secret values stay inside a Secret), with its time, images, config
    /// versions, issuer and result. A prune then keeps the config versions (immutable
    /// ConfigMaps and Secrets) of the last --keep-releases good releases, so that a
    /// rollback finds what its pods read. Not in a dry run.
    #[arg(long, requires = "applyset")]
    pub release: bool,

    /// With --release and --wait: when the release fails (an object not applied, a
    /// rollout or migration Job failed or not ready in time), apply the last good
    /// release again and wait for it, as `helm upgrade --atomic`; the exit status is
    /// still the failure's. Not after SIGINT/SIGTERM: a signal stops work.
    #[arg(long, requires_all = ["release", "wait"])]
    pub atomic: bool,

    /// Apply a recorded release of --applyset again instead of reading input: the one
    /// before the newest good release, or revision N. Recorded as a new release.
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        requires = "applyset",
        conflicts_with_all = ["files", "kustomize", "recursive", "selector"],
    )]
    pub rollback: Option<Option<u32>>,

    /// List the recorded releases of --applyset: revision, time, status, images,
    /// config versions, issuer, description. Reads no input.
    #[arg(
        long,
        conflicts_with_all = [
            "files", "kustomize", "recursive", "selector", "prune", "diff", "output", "wait",
            "field_manager", "force_conflicts", "create_namespace", "release", "rollback",
            "dry_run",
        ],
    )]
    pub history: bool,

    /// Good releases whose config versions a prune keeps (the newest included).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_releases: u32,

    /// Release records kept; older ones are deleted after a good release.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub history_max: u32,

    /// Change an ApplySet another tool made (its applyset.kubernetes.io/tooling says
    /// so), making it kapply's.
    #[arg(long, requires = "applyset")]
    pub force_applyset: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl Args {
    /// Whether this run records a release (`--rollback` is one too).
    pub fn is_release(&self) -> bool {
        self.release || self.rollback.is_some()
    }

    /// Combinations clap cannot see (they depend on a flag's value): refused before
    /// any request, as bad usage.
    pub fn check(&self) -> kpipe_core::Result<()> {
        let dry_run = match self.dry_run {
            DryRun::None => None,
            DryRun::Client => Some("--dry-run=client"),
            DryRun::Server => Some("--dry-run=server"),
        };
        let refuse = |why: String| Err(kpipe_core::Error::input(why));
        if let (true, Some(dry_run)) = (self.diff, dry_run) {
            return refuse(format!(
                "--diff cannot be used with {dry_run}: --diff is a server dry run of its own"
            ));
        }
        if self.keep_releases > self.history_max {
            return refuse(format!(
                "--keep-releases {} needs as many release records: --history-max is {}",
                self.keep_releases, self.history_max
            ));
        }
        if self.wait
            && let Some(dry_run) = dry_run.or(self.diff.then_some("--diff"))
        {
            return refuse(format!(
                "--wait cannot be used with {dry_run}: a dry run makes nothing to wait for"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    None,
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
    /// `kind.group/name`, one a line, as `kubectl -o name`.
    Name,
}

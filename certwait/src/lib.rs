//! certwait: wait until cert-manager has issued TLS certificates, and explain it when it
//! has not. See README.md.
//!
//! Flow: find the Certificates to wait for (names, `--all`, or a manifest stream), check
//! that the cluster serves cert-manager.io/v1, follow each namespace's Certificates with
//! list + watch ([`watch`]), report every change of the Ready/Issuing conditions, stop at
//! the first new failed issuance (unless `--keep-waiting`) or at the deadline with the
//! chain cmctl would show ([`chain`]), and on success print what was issued ([`issued`]).

pub mod api;
pub mod chain;
pub mod issued;
pub mod progress;
pub mod status;
pub mod target;
pub mod watch;

use chain::IssuerState;
use clap::Parser;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kpipe_core::connect::ConnectArgs;
use kpipe_core::stream::{self, Yaml11};
use kpipe_core::time::{format_elapsed, parse_duration};
use kpipe_core::{Error, Result};
use progress::Progress;
use serde_json::Value;
use status::Verdict;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use target::{CertKey, IssuerRef, Target};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use watch::Update;

const LONG_ABOUT: &str = "\
Wait until cert-manager has issued TLS certificates: every Certificate must reach
Ready=True for its current generation. Progress (each change of the Ready and Issuing
conditions) goes to stderr; when all are ready, one line per certificate goes to stdout:

    NAMESPACE/NAME <TAB> DNS names (comma-separated) <TAB> issuer <TAB> notAfter

read from the Secret's tls.crt (never its key). A certificate from Let's Encrypt's
staging CA gets a warning: browsers do not trust it; switch the Ingress to the
production ClusterIssuer when everything works.

What to wait for:
  NAME...    Certificates in the namespace (-n, else the context's). One that does not
             exist yet is waited for: ingress-shim creates it after the Ingress.
  --all      every Certificate in the namespace.
  stdin      with no NAME and stdin not a terminal: a manifest stream. Every Certificate
             in it, and for every Ingress annotated cert-manager.io/cluster-issuer or
             cert-manager.io/issuer, the Certificate named after each spec.tls[].secretName.

It stops early, with exit 1 and the chain `cmctl status certificate` shows
(Certificate -> CertificateRequest -> Order -> Challenges, and the issuer), when
cert-manager records a failed issuance after certwait started (its next try is about an
hour away), or when the referenced Issuer/ClusterIssuer does not exist or is not Ready
(cert-manager would leave the certificate pending forever). --keep-waiting waits anyway.

Examples:
  certwait polls-tls
  certwait -n web --all --timeout 10m
  manifest-gen --image ... --host polls.example.com | kapply -o yaml | certwait
  certwait -q polls-tls | cut -f4            # just notAfter

Exit status:
  0    every certificate is ready
  1    issuance failed, cert-manager or the issuer is missing or not ready, API error
  2    usage or bad input (nothing was waited for)
  124  timed out (as timeout(1)); the diagnosis is printed first";

/// Wait until cert-manager has issued TLS certificates, and explain it when it has not.
#[derive(Parser, Debug)]
#[command(name = "certwait", version, long_about = LONG_ABOUT)]
pub struct Args {
    /// Certificates to wait for; without NAME: --all, or a manifest stream on stdin.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,

    /// Wait for every Certificate in the namespace.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,

    /// Give up after this long (exit 124), e.g. 90s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Keep waiting after a failed issuance or a missing/unready issuer (cert-manager
    /// retries failures with backoff, the first time after about an hour).
    #[arg(long)]
    pub keep_waiting: bool,

    /// No progress on stderr (errors, warnings and diagnoses are still shown).
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Where the Certificates to wait for come from.
enum Wanted {
    Names(Vec<String>),
    All,
    Stream(Vec<kpipe_core::Document>),
}

pub async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let wanted = wanted(&args)?;
    let connection = args.connect.connect().await?;
    let namespace = connection.namespace.clone();
    let (targets, issuers_in_stream) = match wanted {
        Wanted::Names(names) => {
            let targets = names
                .into_iter()
                .map(|name| {
                    Target::named(CertKey {
                        namespace: namespace.clone(),
                        name,
                    })
                })
                .collect();
            (targets, Vec::new())
        }
        Wanted::All => (Vec::new(), Vec::new()),
        Wanted::Stream(docs) => {
            let found = target::from_stream(&docs, &namespace, connection.namespace_from_flag)?;
            (found.targets, found.issuers_in_stream)
        }
    };
    ensure_cert_manager(&connection.client, &connection.server).await?;

    let mut waiter = Waiter {
        client: connection.client.clone(),
        keep_waiting: args.keep_waiting,
        timeout: args.timeout,
        started_at,
        progress: Progress::new(args.quiet, started),
        all_namespace: args.all.then(|| namespace.clone()),
        issuers_in_stream,
        default_namespace: namespace,
        tracked: targets
            .into_iter()
            .map(|t| (t.key.clone(), Tracked::new(t)))
            .collect(),
        listed: BTreeSet::new(),
        issuers: HashMap::new(),
    };
    let mut watchers = JoinSet::new();
    let (tx, rx) = mpsc::unbounded_channel();
    for (namespace, only) in waiter.namespaces_to_watch() {
        watchers.spawn(watch::follow(
            connection.client.clone(),
            namespace,
            only,
            tx.clone(),
        ));
    }
    // The channel closes when every watcher has given up, which `wait` reports.
    drop(tx);
    let outcome = waiter.wait(rx).await;
    watchers.abort_all();
    outcome?;
    waiter.report_issued().await
}

fn wanted(args: &Args) -> Result<Wanted> {
    if args.all {
        return Ok(Wanted::All);
    }
    if !args.names.is_empty() {
        for name in &args.names {
            if let Some(why) = kpipe_core::object::dns1123_subdomain_error(name) {
                return Err(Error::input(format!(
                    "invalid Certificate name {name:?}: {why}"
                )));
            }
        }
        return Ok(Wanted::Names(args.names.clone()));
    }
    if std::io::stdin().is_terminal() {
        return Err(Error::input(
            "nothing to wait for: give Certificate NAMEs, --all, or a manifest stream on stdin \
             (e.g. `kapply -o yaml | certwait`); see --help",
        ));
    }
    let docs = stream::read_with("-", Yaml11::Reject)?;
    // Checked before connecting, so bad input never depends on a kubeconfig; the
    // namespace only matters once connected.
    if target::from_stream(&docs, "", false)?.targets.is_empty() {
        return Err(Error::input(
            "<stdin>: no Certificate, and no Ingress annotated with \
             cert-manager.io/cluster-issuer or cert-manager.io/issuer: nothing to wait for",
        ));
    }
    Ok(Wanted::Stream(docs))
}

/// Exit 1 at once, rather than wait out the timeout, when there is nothing to wait on.
async fn ensure_cert_manager(client: &kube::Client, server: &str) -> Result<()> {
    let not_installed = "cert-manager is not installed: the cluster does not serve \
                         cert-manager.io/v1 Certificates (https://cert-manager.io/docs/installation/)";
    match api::retry(|| client.list_api_group_resources(api::CERT_MANAGER_V1)).await {
        Ok(list) if list.resources.iter().any(|r| r.name == "certificates") => Ok(()),
        Ok(_) => Err(Error::runtime(not_installed)),
        Err(e) if api::status_code(&e) == Some(404) => Err(Error::runtime(not_installed)),
        Err(e) => Err(Error::runtime(format!(
            "API server {server}: {}",
            api::describe(&e)
        ))),
    }
}

/// One certificate being waited for.
struct Tracked {
    target: Target,
    /// The Certificate as last seen; `None` while it does not exist.
    cert: Option<Value>,
    /// The last state reported, to report only changes.
    shown: Option<String>,
    /// `status.lastFailureTime` when first seen ("" for none): a different one is new.
    baseline_failure: Option<String>,
    issuer_checked: bool,
    ready: bool,
}

impl Tracked {
    fn new(target: Target) -> Tracked {
        Tracked {
            target,
            cert: None,
            shown: None,
            baseline_failure: None,
            issuer_checked: false,
            ready: false,
        }
    }

    /// The issuer the input asks for (the Certificate's spec says it once cert-manager has
    /// caught up), else the one in the Certificate's spec.
    fn issuer(&self) -> Option<IssuerRef> {
        self.target.issuer.clone().or_else(|| {
            self.cert
                .as_ref()
                .and_then(|c| IssuerRef::of_certificate(c, &self.target.key.namespace))
        })
    }

    /// How the Certificate differs from what the input asks for (see
    /// [`Target::spec_mismatch`]); `None` also while it does not exist.
    fn spec_mismatch(&self) -> Option<String> {
        self.cert
            .as_ref()
            .and_then(|c| self.target.spec_mismatch(c))
    }
}

struct Waiter {
    client: kube::Client,
    keep_waiting: bool,
    timeout: Duration,
    started_at: Timestamp,
    progress: Progress,
    /// `--all`: every Certificate that shows up in this namespace is waited for.
    all_namespace: Option<String>,
    issuers_in_stream: Vec<Value>,
    default_namespace: String,
    tracked: BTreeMap<CertKey, Tracked>,
    /// Namespaces whose first list has arrived.
    listed: BTreeSet<String>,
    issuers: HashMap<IssuerRef, IssuerState>,
}

impl Waiter {
    /// One watch per namespace; narrowed by a field selector when it holds a single name.
    fn namespaces_to_watch(&self) -> Vec<(String, Option<String>)> {
        if let Some(namespace) = &self.all_namespace {
            return vec![(namespace.clone(), None)];
        }
        let mut names: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for key in self.tracked.keys() {
            names.entry(&key.namespace).or_default().push(&key.name);
        }
        names
            .into_iter()
            .map(|(ns, names)| {
                (
                    ns.to_owned(),
                    (names.len() == 1).then(|| names[0].to_owned()),
                )
            })
            .collect()
    }

    async fn wait(&mut self, mut updates: mpsc::UnboundedReceiver<Update>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            tokio::select! {
                update = updates.recv() => {
                    let Some(update) = update else {
                        return Err(Error::runtime("every watch ended unexpectedly"));
                    };
                    self.apply(update).await?;
                }
                () = tokio::time::sleep_until(deadline) => return Err(self.timed_out().await),
            }
            if !self.tracked.is_empty() && self.tracked.values().all(|t| t.ready) {
                return Ok(());
            }
        }
    }

    async fn apply(&mut self, update: Update) -> Result<()> {
        match update {
            Update::Listed { namespace, certs } => {
                self.listed.insert(namespace.clone());
                if self.all_namespace.as_ref() == Some(&namespace) {
                    // After a re-list, certificates deleted meanwhile are no longer wanted.
                    self.tracked
                        .retain(|key, _| certs.iter().any(|c| name_of(c) == key.name));
                    for cert in &certs {
                        self.track(&namespace, cert);
                    }
                    if self.tracked.is_empty() {
                        return Err(Error::runtime(format!(
                            "no Certificates in namespace {namespace} (--all)"
                        )));
                    }
                }
                let keys: Vec<CertKey> = self
                    .tracked
                    .keys()
                    .filter(|k| k.namespace == namespace)
                    .cloned()
                    .collect();
                for key in keys {
                    let cert = certs.iter().find(|c| name_of(c) == key.name).cloned();
                    self.see(&key, cert).await?;
                }
            }
            Update::Applied { namespace, cert } => {
                if self.all_namespace.as_ref() == Some(&namespace) {
                    self.track(&namespace, &cert);
                }
                let key = CertKey {
                    namespace,
                    name: name_of(&cert).to_owned(),
                };
                if self.tracked.contains_key(&key) && self.listed.contains(&key.namespace) {
                    self.see(&key, Some(cert)).await?;
                }
            }
            Update::Deleted { namespace, name } => {
                let key = CertKey { namespace, name };
                if self.all_namespace.is_some() {
                    if self.tracked.remove(&key).is_some() {
                        self.progress
                            .note(&format!("{key}: deleted, no longer waited for"));
                    }
                } else if self.tracked.contains_key(&key) {
                    self.see(&key, None).await?;
                }
            }
            Update::Note(text) => self.progress.note(&text),
            Update::Fatal(e) => {
                self.progress.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    fn track(&mut self, namespace: &str, cert: &Value) {
        let key = CertKey {
            namespace: namespace.to_owned(),
            name: name_of(cert).to_owned(),
        };
        self.tracked
            .entry(key.clone())
            .or_insert_with(|| Tracked::new(Target::named(key)));
    }

    /// A certificate's new state: report a change, and decide whether it is ready,
    /// failed, or held up by its issuer.
    async fn see(&mut self, key: &CertKey, cert: Option<Value>) -> Result<()> {
        let started_at = self.started_at;
        let Some(tracked) = self.tracked.get_mut(key) else {
            return Ok(());
        };
        tracked.cert = cert;
        let (state, verdict) = match &tracked.cert {
            None => (
                "waiting for the Certificate to be created".to_owned(),
                Verdict::Pending,
            ),
            Some(cert) => {
                let failed_at = cert["status"]["lastFailureTime"]
                    .as_str()
                    .unwrap_or_default();
                let baseline = tracked
                    .baseline_failure
                    .get_or_insert_with(|| failed_at.to_owned());
                match tracked.target.spec_mismatch(cert) {
                    // Its conditions are about the old spec (`make promote` before
                    // ingress-shim switched the issuer): neither ready nor failed.
                    Some(diff) => (
                        format!("waiting for cert-manager to update the Certificate ({diff})"),
                        Verdict::Pending,
                    ),
                    None => (
                        status::summary(cert),
                        status::verdict(cert, started_at, Some(baseline)),
                    ),
                }
            }
        };
        tracked.ready = verdict == Verdict::Ready;
        if tracked.shown.as_ref() != Some(&state) {
            tracked.shown = Some(state.clone());
            if tracked.ready {
                self.progress.finish(key, &state);
            } else {
                self.progress.change(key, &state);
            }
        }
        match verdict {
            Verdict::Ready => Ok(()),
            Verdict::Failed {
                last_failure_time,
                message,
            } if !self.keep_waiting => {
                self.explain(key).await;
                Err(Error::runtime(format!(
                    "{key}: issuance failed at {last_failure_time}: {message}\n\
                     cert-manager retries with exponential backoff, the first time after about \
                     an hour; fix the cause above, then `cmctl renew -n {} {}` retries at once, \
                     or wait with --keep-waiting",
                    key.namespace, key.name
                )))
            }
            Verdict::Failed {
                last_failure_time, ..
            } => {
                self.progress.note(&format!(
                    "{key}: issuance failed at {last_failure_time}; waiting for cert-manager's \
                     next attempt (--keep-waiting)"
                ));
                Ok(())
            }
            Verdict::Pending => self.check_issuer(key).await,
        }
    }

    /// Once per certificate that is not ready: is its issuer there and Ready?
    async fn check_issuer(&mut self, key: &CertKey) -> Result<()> {
        let Some(tracked) = self.tracked.get_mut(key) else {
            return Ok(());
        };
        if tracked.issuer_checked {
            return Ok(());
        }
        let Some(issuer) = tracked.issuer() else {
            return Ok(());
        };
        tracked.issuer_checked = true;
        if !issuer.is_cert_manager() {
            return Ok(());
        }
        let state = match self.issuers.get(&issuer) {
            Some(state) => state.clone(),
            None => {
                let state = chain::issuer_state(&self.client, &issuer).await;
                self.issuers.insert(issuer.clone(), state.clone());
                state
            }
        };
        let Some(problem) = state.problem(&issuer) else {
            return Ok(());
        };
        let just_applied = self
            .issuers_in_stream
            .iter()
            .any(|o| issuer.is(o, &self.default_namespace));
        if just_applied {
            self.progress.note(&format!(
                "{key}: {problem}; it was just applied, waiting for it"
            ));
            Ok(())
        } else if self.keep_waiting {
            self.progress.always(&format!(
                "certwait: warning: {key}: {problem}; cert-manager will not issue the certificate \
                 until that is fixed (--keep-waiting: waiting anyway)"
            ));
            Ok(())
        } else {
            self.explain(key).await;
            Err(Error::runtime(format!(
                "{key}: {problem}; cert-manager leaves the certificate pending until that is \
                 fixed (--keep-waiting waits anyway)"
            )))
        }
    }

    /// Prints the cmctl-style chain of one certificate on stderr (even with -q).
    async fn explain(&mut self, key: &CertKey) {
        let Some(tracked) = self.tracked.get(key) else {
            return;
        };
        let chain = chain::gather(
            &self.client,
            key,
            tracked.cert.as_ref(),
            tracked.issuer().as_ref(),
        )
        .await;
        let mut text = chain::render(&chain);
        if let Some(diff) = tracked.spec_mismatch() {
            text.push_str(&format!(
                "Hint: the Certificate does not have the spec the input asks for yet ({diff}): \
                 was the input applied? For an Ingress, cert-manager's ingress-shim updates the \
                 Certificate a moment after, and only one the Ingress controls \
                 (`kubectl describe ingress`, `kubectl -n cert-manager get pods`)\n"
            ));
        }
        self.progress.clear();
        self.progress.always(&text);
    }

    async fn timed_out(&mut self) -> Error {
        let pending: Vec<CertKey> = self
            .tracked
            .iter()
            .filter(|(_, t)| !t.ready)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &pending {
            self.explain(key).await;
        }
        let what = if pending.is_empty() {
            // Only with --all, before the namespace could be listed at all.
            format!(
                "the Certificates of namespace {}",
                self.all_namespace.as_deref().unwrap_or_default()
            )
        } else {
            pending
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Error::Timeout(format!(
            "timed out after {} waiting for {what}",
            format_elapsed(self.timeout)
        ))
    }

    /// All ready: one line per certificate on stdout, staging warnings on stderr.
    async fn report_issued(&mut self) -> Result<()> {
        self.progress.clear();
        let mut out = String::new();
        for (key, tracked) in &self.tracked {
            let cert = tracked.cert.as_ref().expect("ready certificates were seen");
            let secret_name = cert["spec"]["secretName"].as_str().unwrap_or(&key.name);
            let line = match self.read_tls_crt(&key.namespace, secret_name).await {
                Ok(issued) => {
                    if issued.is_staging() {
                        self.progress.always(&staging_warning(key, &issued.issuer));
                    }
                    [
                        key.to_string(),
                        issued.dns_names.join(","),
                        issued.issuer,
                        issued.not_after,
                    ]
                }
                Err(why) => {
                    self.progress.always(&format!(
                        "certwait: warning: {key}: cannot read the certificate in Secret \
                         {}/{secret_name}: {why}; showing the Certificate's status instead",
                        key.namespace
                    ));
                    let names: Vec<&str> = cert["spec"]["dnsNames"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let not_after = cert["status"]["notAfter"].as_str().unwrap_or("-");
                    [
                        key.to_string(),
                        names.join(","),
                        "-".to_owned(),
                        not_after.to_owned(),
                    ]
                }
            };
            out.push_str(&line.join("\t"));
            out.push('\n');
        }
        kpipe_core::write_stdout(&out)
    }

    /// The Secret's tls.crt, parsed. Messages never include the Secret's data.
    async fn read_tls_crt(&self, namespace: &str, name: &str) -> Result<issued::Issued, String> {
        let secrets: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), namespace);
        let secret = api::retry(|| secrets.get(name))
            .await
            .map_err(|e| api::describe(&e))?;
        // Its tls.key is a secret like any other: known before anything prints.
        if let Ok(value) = serde_json::to_value(&secret) {
            let mut value = value;
            value["apiVersion"] = "v1".into();
            value["kind"] = "Secret".into();
            kpipe_core::redact::learn_objects([&value]);
        }
        let crt = secret
            .data
            .as_ref()
            .and_then(|d| d.get("tls.crt"))
            .ok_or("the Secret has no tls.crt")?;
        issued::parse_tls_crt(&crt.0)
    }
}

fn staging_warning(key: &CertKey, issuer: &str) -> String {
    format!(
        "certwait: warning: {key} was issued by Let's Encrypt's STAGING CA ({issuer}): browsers \
         will not trust it. When everything works, switch the Ingress to the production \
         ClusterIssuer letsencrypt-prod (`make promote`, or `manifest-gen --issuer \
         letsencrypt-prod ... | kapply`) and run certwait again."
    )
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

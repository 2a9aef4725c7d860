//! Following the Certificates' updates until all are ready, one fails, or time runs out.

use crate::certmanager::Certificate;
use crate::chain::{self, IssuerState};
use crate::progress::Progress;
use crate::status::{self, Verdict};
use crate::target::{CertKey, IssuerRef, Target};
use crate::watch::Update;
use jiff::Timestamp;
use kpipe_core::api::bounded;
use kpipe_core::time::format_elapsed;
use kpipe_core::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the diagnosis may take once the deadline has passed.
const DIAGNOSIS_GRACE: Duration = Duration::from_millis(400);

/// How often a Certificate that does not exist is talked about: a terminal's progress
/// line is cheap to rewrite, a log gets a line now and then. Without them certwait would
/// be silent until the timeout (5 minutes in `make deploy`) when nothing makes it.
const REMIND_TERMINAL: Duration = Duration::from_secs(3);
const REMIND_PLAIN: Duration = Duration::from_secs(10);

/// What the wait loop reacts to next.
enum Next {
    Update(Update),
    /// Every watch has ended.
    Closed,
    Remind,
}

/// One certificate being waited for.
pub(crate) struct Tracked {
    target: Target,
    /// The Certificate as last seen; `None` while it does not exist.
    pub(crate) cert: Option<Certificate>,
    /// The last state reported, to report only changes.
    shown: Option<String>,
    /// `status.lastFailureTime` when first seen ("" for none): a different one is new.
    baseline_failure: Option<String>,
    issuer_checked: bool,
    ready: bool,
}

impl Tracked {
    pub(crate) fn new(target: Target) -> Tracked {
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
    pub(crate) fn issuer(&self) -> Option<IssuerRef> {
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

pub(crate) struct Waiter {
    pub(crate) client: kube::Client,
    pub(crate) keep_waiting: bool,
    pub(crate) timeout: Duration,
    /// When `timeout` runs out: bounds every wait, request and step of handling.
    pub(crate) deadline: Instant,
    pub(crate) started_at: Timestamp,
    pub(crate) progress: Progress,
    /// `--all`: every Certificate that shows up in this namespace is waited for.
    pub(crate) all_namespace: Option<String>,
    pub(crate) issuers_in_stream: Vec<IssuerRef>,
    pub(crate) tracked: BTreeMap<CertKey, Tracked>,
    /// Namespaces whose first list has arrived.
    pub(crate) listed: BTreeSet<String>,
    pub(crate) issuers: HashMap<IssuerRef, IssuerState>,
}

impl Waiter {
    /// One watch per namespace; narrowed by a field selector when it holds a single name.
    pub(crate) fn namespaces_to_watch(&self) -> Vec<(String, Option<String>)> {
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

    pub(crate) async fn wait(
        &mut self,
        mut updates: mpsc::UnboundedReceiver<Update>,
    ) -> Result<()> {
        let deadline = Some(self.deadline);
        let every = if self.progress.is_live() {
            REMIND_TERMINAL
        } else {
            REMIND_PLAIN
        };
        let mut reminders = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            let next = async {
                tokio::select! {
                    update = updates.recv() => update.map_or(Next::Closed, Next::Update),
                    _ = reminders.tick() => Next::Remind,
                }
            };
            let update = match bounded(deadline, next).await {
                None => return Err(self.timed_out().await),
                Some(Next::Closed) => {
                    return Err(Error::runtime("every watch ended unexpectedly"));
                }
                Some(Next::Remind) => {
                    self.remind_missing();
                    continue;
                }
                Some(Next::Update(update)) => update,
            };
            // Handling an update (issuer lookup, diagnosis) asks the server too.
            match bounded(deadline, self.apply(update)).await {
                None => return Err(self.timed_out().await),
                Some(result) => result?,
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
                    self.see(&key, Some(*cert)).await?;
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

    /// For each Certificate still absent once its namespace was listed: what certwait
    /// waits for, and what usually keeps it from existing.
    fn remind_missing(&mut self) {
        let elapsed = format_elapsed(self.progress.elapsed());
        let missing: Vec<CertKey> = self
            .tracked
            .iter()
            .filter(|(k, t)| t.cert.is_none() && self.listed.contains(&k.namespace))
            .map(|(k, _)| k.clone())
            .collect();
        for key in missing {
            self.progress.remind(
                &key,
                &format!(
                    "still no Certificate after {elapsed}: cert-manager's ingress-shim makes it \
                     for an Ingress annotated cert-manager.io/cluster-issuer with a tls \
                     secretName {}; is the Ingress applied (`kubectl get ingress -n {}`) and \
                     cert-manager running (`kubectl -n cert-manager get pods`)?",
                    key.name, key.namespace
                ),
            );
        }
    }

    fn track(&mut self, namespace: &str, cert: &Certificate) {
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
    async fn see(&mut self, key: &CertKey, cert: Option<Certificate>) -> Result<()> {
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
                let failed_at = status::last_failure_time(cert).unwrap_or_default();
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
                self.explain(key, None).await;
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
        let just_applied = self.issuers_in_stream.iter().any(|o| issuer.is(o));
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
            self.explain(key, None).await;
            Err(Error::runtime(format!(
                "{key}: {problem}; cert-manager leaves the certificate pending until that is \
                 fixed (--keep-waiting waits anyway)"
            )))
        }
    }

    /// Prints the cmctl-style chain of one certificate on stderr (even with -q).
    /// Past `until`, the chain shows what certwait already knows: the Certificate.
    async fn explain(&mut self, key: &CertKey, until: Option<Instant>) {
        let Some(tracked) = self.tracked.get(key) else {
            return;
        };
        let issuer = tracked.issuer();
        let gathered = chain::gather(&self.client, key, tracked.cert.as_ref(), issuer.as_ref());
        let chain = bounded(until, gathered)
            .await
            .unwrap_or_else(|| chain::Chain {
                key: key.clone(),
                cert: tracked.cert.clone(),
                issuer: None,
                request: None,
                order: None,
                challenges: Vec::new(),
                unreadable: vec![
                    "the rest of the chain: the API server did not answer in time".into(),
                ],
            });
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
        // The diagnosis gets a moment past the deadline, no more: a server that does not
        // answer must not hold the exit back.
        let until = Instant::now() + DIAGNOSIS_GRACE;
        for key in &pending {
            self.explain(key, Some(until)).await;
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
}

pub(crate) fn name_of(cert: &Certificate) -> &str {
    cert.metadata.name.as_deref().unwrap_or_default()
}

//! certwait: wait until cert-manager has issued TLS certificates, and explain it when it
//! has not. See README.md.
//!
//! Flow: find the Certificates to wait for (names, `--all`, or a manifest stream), check
//! that the cluster serves cert-manager.io/v1, follow each namespace's Certificates with
//! list + watch ([`watch`]), report every change of the Ready/Issuing conditions, stop at
//! the first new failed issuance (unless `--keep-waiting`) or at the deadline with the
//! chain cmctl would show ([`chain`]), and on success print what was issued (read from
//! each Secret by [`issued`], printed by `report`).
pub mod api;
pub mod certmanager;
pub mod chain;
mod cli;
pub mod issued;
pub mod progress;
mod report;
pub mod status;
pub mod target;
mod wait;
pub mod watch;

pub use cli::Args;

use cli::Wanted;
use jiff::Timestamp;
use kpipe_core::api::bounded;
use kpipe_core::time::format_elapsed;
use kpipe_core::{Error, Result};
use progress::Progress;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;
use target::{CertKey, Target};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use wait::{Tracked, Waiter};

pub async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let wanted = cli::wanted(&args)?;
    let deadline = tokio::time::Instant::from_std(started) + args.timeout;
    let connection = args.connect.connect(Some(deadline)).await?;
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
    bounded(
        Some(deadline),
        ensure_cert_manager(&connection.client, &connection.server),
    )
    .await
    .unwrap_or_else(|| {
        Err(Error::Timeout(format!(
            "timed out after {} asking {} whether it serves cert-manager.io/v1",
            format_elapsed(args.timeout),
            connection.server
        )))
    })?;

    let mut waiter = Waiter {
        client: connection.client.clone(),
        keep_waiting: args.keep_waiting,
        timeout: args.timeout,
        deadline,
        started_at,
        progress: Progress::new(args.quiet, started),
        all_namespace: args.all.then_some(namespace),
        issuers_in_stream,
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

/// Exit 1 at once, rather than wait out the timeout, when there is nothing to wait on.
async fn ensure_cert_manager(client: &kube::Client, server: &str) -> Result<()> {
    let not_installed = "cert-manager is not installed: the cluster does not serve \
                         cert-manager.io/v1 Certificates (https://cert-manager.io/docs/installation/)";
    match api::retry(|| client.list_api_group_resources(certmanager::CERT_MANAGER_V1)).await {
        Ok(list) if list.resources.iter().any(|r| r.name == "certificates") => Ok(()),
        Ok(_) => Err(Error::runtime(not_installed)),
        Err(e) if api::status_code(&e) == Some(404) => Err(Error::runtime(not_installed)),
        Err(e) => Err(Error::runtime(format!(
            "API server {server}: {}",
            api::describe(&e)
        ))),
    }
}

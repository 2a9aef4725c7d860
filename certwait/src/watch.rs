//! Following a namespace's Certificates with kube-runtime's watcher: list, then watch
//! from the list's resourceVersion, resumed after a dropped stream, listed again after
//! 410 Gone, with the backoff of every kpipe request between failed attempts
//! ([`kpipe_core::api::watch_backoff`]). Failures that will not get better (403, 404)
//! end the wait, as they end `kapply --wait` ([`kpipe_core::api::fatal_watch_failure`]).

use crate::api;
use crate::certmanager::{self, Certificate};
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc::UnboundedSender;
/// What a watcher reports to the waiting loop.
#[derive(Debug)]
pub enum Update {
    /// The namespace's Certificates (all, or the one named) as of a (re-)list.
    Listed {
        namespace: String,
        certs: Vec<Certificate>,
    },
    /// A Certificate was created or changed.
    Applied {
        namespace: String,
        cert: Box<Certificate>,
    },
    Deleted {
        namespace: String,
        name: String,
    },
    /// Something worth telling the user while waiting (a retry, a re-list).
    Note(String),
    /// The watch cannot continue.
    Fatal(kpipe_core::Error),
}

/// Follows the Certificates of `namespace` (only `name` if given) until the receiver
/// goes away.
pub async fn follow(
    client: kube::Client,
    namespace: String,
    name: Option<String>,
    tx: UnboundedSender<Update>,
) {
    let certs = certmanager::certificates(&client, &namespace);
    let mut config = watcher::Config::default();
    if let Some(name) = &name {
        config = config.fields(&format!("metadata.name={name}"));
    }
    let stream = watcher::watcher(certs, config).backoff(kpipe_core::api::watch_backoff());
    let mut stream = std::pin::pin!(stream);
    // A (re-)list arrives as Init, InitApply per object, InitDone.
    let mut listing = Vec::new();
    let mut failing = false;
    while let Some(event) = stream.next().await {
        let update = match event {
            Ok(Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(Event::InitApply(cert)) => {
                listing.push(cert);
                continue;
            }
            Ok(Event::InitDone) => Update::Listed {
                namespace: namespace.clone(),
                certs: std::mem::take(&mut listing),
            },
            Ok(Event::Apply(cert)) => Update::Applied {
                namespace: namespace.clone(),
                cert: Box::new(cert),
            },
            Ok(Event::Delete(cert)) => Update::Deleted {
                namespace: namespace.clone(),
                name: cert.metadata.name.clone().unwrap_or_default(),
            },
            // kube-runtime's watcher lists again by itself.
            Err(watcher::Error::WatchError(status)) if status.code == 410 => Update::Note(format!(
                "watch in {namespace} expired (410 {}): listing again",
                status.reason
            )),
            Err(e) => {
                if let Some((verb, e)) = kpipe_core::api::fatal_watch_failure(&e) {
                    let _ = tx.send(Update::Fatal(fatal(&namespace, verb, e)));
                    return;
                }
                match failure(&e) {
                    // Said once per outage, not once per attempt; a connection that
                    // broke is told by kpipe_core::transport, once for every request.
                    _ if failing => continue,
                    Some(e) if api::status_code(e).is_none() => continue,
                    _ => {
                        failing = true;
                        Update::Note(format!(
                            "watching Certificates in {namespace} failed, retrying: {}",
                            failure(&e).map_or_else(|| e.to_string(), api::describe)
                        ))
                    }
                }
            }
        };
        if !matches!(update, Update::Note(_)) {
            failing = false;
        }
        if tx.send(update).is_err() {
            return;
        }
    }
}

/// The API error or broken request behind a watcher failure.
fn failure(e: &watcher::Error) -> Option<&kube::Error> {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => Some(e),
        _ => None,
    }
}

fn fatal(namespace: &str, verb: &str, e: &kube::Error) -> kpipe_core::Error {
    let resource = "certificates.cert-manager.io";
    let mut what = kpipe_core::api::cannot(verb, resource, Some(namespace), e);
    if api::status_code(e) == Some(404) {
        what.push_str(" (was cert-manager removed, or does the namespace not exist?)");
    }
    kpipe_core::Error::runtime(what)
}

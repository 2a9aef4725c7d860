//! Following a namespace's Certificates: list, then watch from the list's resourceVersion.
//!
//! A watch stream that ends (server timeout, dropped connection) is resumed from the last
//! resourceVersion seen, so no change is missed and none is replayed. When that version
//! is too old (410 Gone, as an HTTP status or as an ERROR event, see fixture 47) the
//! namespace is listed again. Transient errors are retried with backoff; anything else
//! ends the wait.

use crate::api::{self, Backoff};
use futures::StreamExt;
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

/// What a watcher reports to the waiting loop.
#[derive(Debug)]
pub enum Update {
    /// The namespace's Certificates (all, or the one named) as of a (re-)list.
    Listed {
        namespace: String,
        certs: Vec<Value>,
    },
    /// A Certificate was created or changed.
    Applied {
        namespace: String,
        cert: Value,
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
    let certs = api::certificates(&client, &namespace);
    let selector = name.map(|n| format!("metadata.name={n}"));
    let mut list_params = ListParams::default();
    let mut watch_params = WatchParams::default();
    if let Some(selector) = &selector {
        list_params = list_params.fields(selector);
        watch_params = watch_params.fields(selector);
    }
    let mut backoff = Backoff::default();
    let mut gone = Backoff::default();
    let send = |update: Update| tx.send(update).is_ok();

    'list: loop {
        let list = match certs.list(&list_params).await {
            Ok(list) => list,
            Err(e) if api::is_transient(&e) => {
                if !pause_before_retry(&mut backoff, "listing", &namespace, &e, &tx).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                send(Update::Fatal(fatal(&namespace, &e)));
                return;
            }
        };
        backoff.reset();
        let mut version = list.metadata.resource_version.clone().unwrap_or_default();
        let certs_now = list.items.iter().map(to_value).collect();
        if !send(Update::Listed {
            namespace: namespace.clone(),
            certs: certs_now,
        }) {
            return;
        }
        loop {
            let stream = match certs.watch(&watch_params, &version).await {
                Ok(stream) => stream,
                Err(e) if api::status_code(&e) == Some(410) => {
                    send(Update::Note(format!(
                        "watch in {namespace} expired (410 Gone): listing again"
                    )));
                    pause_if_gone_again(&mut gone).await;
                    continue 'list;
                }
                Err(e) if api::is_transient(&e) => {
                    if !pause_before_retry(&mut backoff, "watching", &namespace, &e, &tx).await {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    send(Update::Fatal(fatal(&namespace, &e)));
                    return;
                }
            };
            let mut stream = std::pin::pin!(stream);
            let mut events = 0;
            while let Some(event) = stream.next().await {
                let update = match event {
                    Ok(WatchEvent::Added(cert) | WatchEvent::Modified(cert)) => {
                        version = cert.metadata.resource_version.clone().unwrap_or(version);
                        Update::Applied {
                            namespace: namespace.clone(),
                            cert: to_value(&cert),
                        }
                    }
                    Ok(WatchEvent::Deleted(cert)) => {
                        version = cert.metadata.resource_version.clone().unwrap_or(version);
                        let name = cert.metadata.name.clone().unwrap_or_default();
                        Update::Deleted {
                            namespace: namespace.clone(),
                            name,
                        }
                    }
                    Ok(WatchEvent::Bookmark(bookmark)) => {
                        version = bookmark.metadata.resource_version;
                        continue;
                    }
                    Ok(WatchEvent::Error(status)) if status.code == 410 => {
                        send(Update::Note(format!(
                            "watch in {namespace} expired (410 {}): listing again",
                            status.reason
                        )));
                        pause_if_gone_again(&mut gone).await;
                        continue 'list;
                    }
                    // Any other ERROR event or a broken stream: resume from `version`.
                    Ok(WatchEvent::Error(_)) | Err(_) => break,
                };
                events += 1;
                backoff.reset();
                gone.reset();
                if !send(update) {
                    return;
                }
            }
            // A stream that ends at once, again and again, must not spin.
            if events == 0 {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Tells the user why and for how long, then waits; false once nobody listens any more.
async fn pause_before_retry(
    backoff: &mut Backoff,
    doing: &str,
    namespace: &str,
    e: &kube::Error,
    tx: &UnboundedSender<Update>,
) -> bool {
    let delay = backoff.next_delay();
    let note = format!(
        "{doing} Certificates in {namespace} failed, retrying in {delay:?}: {}",
        api::describe(e)
    );
    if tx.send(Update::Note(note)).is_err() {
        return false;
    }
    tokio::time::sleep(delay).await;
    true
}

/// The first 410 is answered by listing again at once, as after a compaction. 410 after
/// 410 with no event in between means watches cannot be served at all: listing still
/// sees every change, but must not run in a tight loop.
async fn pause_if_gone_again(gone: &mut Backoff) {
    let delay = gone.next_delay();
    if gone.attempts() > 1 {
        tokio::time::sleep(delay).await;
    }
}

fn to_value(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

fn fatal(namespace: &str, e: &kube::Error) -> kpipe_core::Error {
    let what = match api::status_code(e) {
        Some(404) => format!(
            "cannot list Certificates in namespace {namespace}: {} (was cert-manager removed, \
             or does the namespace not exist?)",
            api::describe(e)
        ),
        Some(401 | 403) => format!(
            "not allowed to list/watch Certificates in namespace {namespace}: {}",
            api::describe(e)
        ),
        _ => format!(
            "watching Certificates in namespace {namespace}: {}",
            api::describe(e)
        ),
    };
    kpipe_core::Error::runtime(what)
}

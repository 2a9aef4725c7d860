//! Simulated controllers: kube-rs clients of the simulated API server, as real ones are.
//! They watch, create and update objects and write status through the /status
//! subresource, so everything they do goes through (and tests) the server's API.
//!
//! - cert-manager (`--cert-manager`): the Let's Encrypt ClusterIssuers, ingress-shim
//!   and issuance, see [`certmanager`];
//! - Deployments, ReplicaSets and Jobs (always) make Pods, see [`workloads`] and
//!   [`jobs`]; a simulated kubelet runs them (or fails them as told), see [`kubelet`].

mod certmanager;
mod jobs;
mod kubelet;
mod options;
mod support;
mod workloads;

pub use options::{CertFailure, ControllerOptions, FailState, PodFailure};

/// Starts the simulated controllers in the background against `client`. With
/// cert-manager on, it returns once the ClusterIssuers exist and are Ready (the server
/// has installed the CRDs before), so clients never see them missing.
pub async fn start(client: kube::Client, opts: &ControllerOptions) -> kpipe_core::Result<()> {
    if opts.cert_manager {
        certmanager::start(&client, opts).await.map_err(|e| {
            kpipe_core::Error::runtime(format!("starting the cert-manager simulation: {e}"))
        })?;
    }
    workloads::spawn(&client);
    jobs::spawn(&client);
    kubelet::spawn(&client, opts);
    Ok(())
}

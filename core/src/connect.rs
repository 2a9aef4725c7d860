//! Connecting to the API server the way kubectl does, in one place for every tool.
//!
//! Order of sources: `--kubeconfig FILE`, else `KUBECONFIG` (several files, merged) or
//! `~/.kube/config`, else the in-cluster service account. `--context`, `--cluster`,
//! `--user` pick from the kubeconfig; `-n` beats the context's namespace, which beats
//! `default`. Client certificates, tokens, CA data and exec credential plugins come
//! from kube-rs. TLS verification is off only where the kubeconfig itself says
//! `insecure-skip-tls-verify: true`.

use crate::error::{Error, Result};
use crate::time::parse_duration;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use std::time::Duration;

/// The connection flags every cluster-facing tool shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster service account).
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,

    /// The kubeconfig cluster to use instead of the context's.
    #[arg(long, value_name = "NAME", global = true)]
    pub cluster: Option<String>,

    /// The kubeconfig user to use instead of the context's.
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    /// Namespace for namespaced objects (default: the context's, else "default").
    #[arg(short = 'n', long, value_name = "NS", global = true)]
    pub namespace: Option<String>,

    /// Timeout for a single API request, e.g. 30s or 1m; 0 means none.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
    pub request_timeout: Option<Duration>,
}

/// A ready client and the namespace to work in.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    /// `-n` if given, else the context's or the service account's namespace.
    pub namespace: String,
    /// Whether the namespace came from `-n`, which objects must then agree with.
    pub namespace_from_flag: bool,
    /// The API server's address, for messages.
    pub server: String,
}

impl ConnectArgs {
    /// Builds the kube-rs configuration these flags describe.
    pub async fn config(&self) -> Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let mut config = if let Some(path) = &self.kubeconfig {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                Error::input(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| Error::input(format!("kubeconfig {}: {e}", path.display())))?
        } else if has_local_kubeconfig() {
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::input(format!("kubeconfig: {e}")))?
        } else if self.context.is_some() || self.cluster.is_some() || self.user.is_some() {
            return Err(Error::input(
                "--context/--cluster/--user need a kubeconfig, and none was found \
                 (set KUBECONFIG or --kubeconfig)",
            ));
        } else {
            kube::Config::incluster().map_err(|e| {
                Error::runtime(format!(
                    "no kubeconfig found (KUBECONFIG, --kubeconfig, ~/.kube/config) and not \
                     running in a cluster: {e}"
                ))
            })?
        };
        // The tools retry on their own terms (--retries, backoff, Retry-After).
        config.default_retry = false;
        if let Some(timeout) = self.request_timeout.filter(|t| !t.is_zero()) {
            config.read_timeout = Some(timeout);
            config.write_timeout = Some(timeout);
            config.connect_timeout = Some(timeout);
        }
        Ok(config)
    }

    /// Connects: builds the configuration and the client.
    pub async fn connect(&self) -> Result<Connection> {
        let config = self.config().await?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::runtime(format!("cannot set up a client for {server}: {e}")))?;
        Ok(Connection {
            client,
            namespace,
            namespace_from_flag: self.namespace.is_some(),
            server,
        })
    }
}

fn has_local_kubeconfig() -> bool {
    if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".kube").join("config"))
        .is_some_and(|p| p.exists())
}

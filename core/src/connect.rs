//! Connecting to the API server the way kubectl does, in one place for every tool.
//!
//! Order of sources: `--kubeconfig FILE`, else `KUBECONFIG` (several files, merged) or
//! `~/.kube/config`, else the in-cluster service account. `--context`, `--cluster`,
//! `--user` pick from the kubeconfig; `-n` beats the context's namespace, which beats
//! `default`. Client certificates, tokens, CA data and exec credential plugins come
//! from kube-rs. TLS verification is off only where the kubeconfig itself says
//! `insecure-skip-tls-verify: true`, and then with a warning on every run; together
//! with a CA it is refused, as kubectl refuses it.

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
            kube::Config::from_custom_kubeconfig(as_kubectl_reads(kubeconfig)?, &options)
                .await
                .map_err(|e| Error::input(format!("kubeconfig {}: {e}", path.display())))?
        } else if let Some(kubeconfig) = local_kubeconfig()? {
            kube::Config::from_custom_kubeconfig(as_kubectl_reads(kubeconfig)?, &options)
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
        if config.accept_invalid_certs {
            if config.root_cert.is_some() {
                return Err(Error::input(format!(
                    "kubeconfig: the cluster of {} sets both insecure-skip-tls-verify and a \
                     certificate authority; kubectl refuses that too (specifying a root \
                     certificates file with the insecure flag is not allowed): drop one",
                    config.cluster_url
                )));
            }
            warn_insecure(&config.cluster_url);
        }
        // The tools retry on their own terms (kpipe_core::api::retry).
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

/// `KUBECONFIG`'s files merged, skipping those that do not exist (as kubectl does),
/// else ~/.kube/config; `None` when there is none.
fn local_kubeconfig() -> Result<Option<Kubeconfig>> {
    let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".kube").join("config"))
            .into_iter()
            .collect(),
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in paths.iter().filter(|p| p.exists()) {
        let next = Kubeconfig::read_from(path)
            .map_err(|e| Error::input(format!("cannot read kubeconfig {}: {e}", path.display())))?;
        merged = Some(match merged {
            None => next,
            Some(first) => first
                .merge(next)
                .map_err(|e| Error::input(format!("kubeconfig {}: {e}", path.display())))?,
        });
    }
    Ok(merged)
}

/// What kubectl reads differently from kube-rs: a `tokenFile`'s token is trimmed (files
/// written with `echo` end in a newline, which no HTTP header may hold).
fn as_kubectl_reads(mut kubeconfig: Kubeconfig) -> Result<Kubeconfig> {
    for auth in kubeconfig
        .auth_infos
        .iter_mut()
        .filter_map(|named| named.auth_info.as_mut())
    {
        if auth.token.is_some() {
            continue;
        }
        if let Some(file) = auth.token_file.take() {
            let token = std::fs::read_to_string(&file).map_err(|e| {
                Error::input(format!("kubeconfig: cannot read tokenFile {file}: {e}"))
            })?;
            auth.token = Some(token.trim().to_owned().into());
        }
    }
    Ok(kubeconfig)
}

/// One line on stderr, every run: nothing proves the server is the one meant.
fn warn_insecure(server: &http::Uri) {
    let tool = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "kpipe".into());
    eprintln!(
        "{tool}: warning: TLS verification is off for {server} (insecure-skip-tls-verify in \
         the kubeconfig): anyone on the way can read and change what is sent"
    );
}

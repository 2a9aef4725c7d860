//! kubesim: a Kubernetes API server simulator for kpipe's tests and `make demo`.
//!
//! It serves the API (discovery, CRUD, server-side apply with managedFields,
//! status subresources, watch) over HTTPS with its own CA and a bearer token, for
//! the built-in kinds kpipe deploys and any CustomResourceDefinition applied to it.
//! No container runs: simulated controllers (see [`controllers`]) write the objects
//! and status a real cluster's would, Pods included.
//!
//! Tests start one per test with [`serve`]; `make demo` runs `kubesim serve`.

mod cluster;
pub mod controllers;
mod convert;
mod faults;
mod fields;
mod kinds;
mod logs;
mod openapi;
mod podsecurity;
mod protobuf;
mod rules;
mod select;
mod server;
mod status;
mod store;
mod table;
mod tls;
mod typed;
pub mod yaml11;

/// Go's `strconv.Quote`, as the server quotes values in its messages (its tests check
/// it against Go's own, through kubectl).
pub use rules::go_quote;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use clap::{Parser, Subcommand};
use hyper_util::rt::{TokioExecutor, TokioIo};
use kpipe_core::{Error, Result};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use cluster::Cluster;
pub use controllers::ControllerOptions;

/// The cert-manager CRDs `--cert-manager` installs (from the cert-manager project).
const CERT_MANAGER_CRDS: &[&str] = &[
    include_str!("../crds/cert-manager.io_certificates.yaml"),
    include_str!("../crds/cert-manager.io_certificaterequests.yaml"),
    include_str!("../crds/cert-manager.io_issuers.yaml"),
    include_str!("../crds/cert-manager.io_clusterissuers.yaml"),
    include_str!("../crds/acme.cert-manager.io_orders.yaml"),
    include_str!("../crds/acme.cert-manager.io_challenges.yaml"),
];

const LONG_ABOUT: &str = "\
A Kubernetes API server simulator: the stand-in cluster for kpipe's tests and `make demo`.

`kubesim serve` listens on 127.0.0.1 (HTTPS with a CA made at start, bearer-token
auth), writes a kubeconfig for it, and serves discovery, get/list/watch, create,
update, delete, server-side apply with managedFields and conflicts, merge/JSON/
strategic patches and status subresources for namespaces, configmaps, secrets,
services, serviceaccounts, events, pods (and pods/log), deployments, replicasets,
jobs, ingresses, horizontalpodautoscalers, poddisruptionbudgets and any
CustomResourceDefinition. No container runs: simulated controllers make ReplicaSets
and Pods for Deployments and Pods for Jobs, a simulated scheduler and kubelet start
them (or fail them as --pods-fail says), and with --cert-manager a simulated
cert-manager issues Certificates.

Examples:
  kubesim serve --kubeconfig-out /tmp/kubesim.kubeconfig --cert-manager &
  KUBECONFIG=/tmp/kubesim.kubeconfig kubectl get ns
  kubesim serve --kubeconfig-out kc --faults '503:3@PATCH,watch-close:5'
  kubesim serve --kubeconfig-out kc --latency write=12ms,read=2ms   # as a real server
  kubesim serve --kubeconfig-out kc --pods-fail ':broken$=ImagePullBackOff'

Exit status: 0 when stopped by SIGTERM/SIGINT, 1 on a runtime failure, 2 on bad usage.";

#[derive(Debug, Parser)]
#[command(name = "kubesim", version, about = "Kubernetes API server simulator for tests and demos", long_about = LONG_ABOUT)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the simulated API until SIGTERM/SIGINT.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Write a kubeconfig (cluster, user and context `kubesim`) here once serving.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,

    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,

    /// Serve plain HTTP instead of HTTPS, without authentication (kubectl sends no
    /// credentials over plain HTTP).
    #[arg(long)]
    pub http: bool,

    /// Fault injection rules, comma-separated: CODE:N[@METHOD[/PATH]] (PATH?watch: its watches only), reset:N[@METHOD],
    /// lost:N[@METHOD] (served, then the answer is lost), rate:CODE:P, latency:DURATION, watch-close:N, watch-gone:N, hang (accept and never
    /// answer), trickle:DURATION (one byte of each answer per DURATION),
    /// storm:DURATION[+START] (429 with Retry-After to everything) and
    /// down:DURATION[+START] (connections reset, watches cut), freeze:DURATION[+START]
    /// (nothing answers until it ends: a stopped process) and restart:DURATION[+START]
    /// (the listener closed, connections reset, then back on the same port), all counted
    /// from the first request. The simulated controllers are exempt: the faults are met by the clients
    /// under test.
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub faults: String,

    /// How long a real API server takes to answer, added to every request of a client
    /// (not the simulated controllers', not watches): `write=12ms,read=2ms` (a write
    /// goes through admission and etcd, a read is served from the watch cache), or one
    /// duration for both. For benchmarks that show what users of a real cluster see.
    #[arg(long, value_name = "SPEC", value_parser = server::Latency::parse, default_value = "0")]
    pub latency: server::Latency,

    /// Load objects from FILE at start if it exists; save them there on exit.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    #[command(flatten)]
    pub controllers: ControllerOptions,
}

/// How to start a simulator from a library (tests).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// 0: any free port.
    pub port: u16,
    /// Plain HTTP instead of HTTPS.
    pub http: bool,
    /// Initial fault rules (see `kubesim serve --help`).
    pub faults: String,
    /// Added to every client request (see `kubesim serve --help`).
    pub latency: server::Latency,
    /// Objects to start with (a file written by [`RunningServer::save_state`]).
    pub state: Option<PathBuf>,
    /// Simulated controllers to run; None runs none. `cert_manager` in them also
    /// installs the cert-manager CRDs.
    pub controllers: Option<ControllerOptions>,
    /// Install the cert-manager CRDs even without controllers.
    pub cert_manager_crds: bool,
}

/// A simulator serving in the background of the current tokio runtime.
pub struct RunningServer {
    url: String,
    kubeconfig: String,
    cluster: Arc<Cluster>,
    shared: Arc<server::Shared>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
}

impl RunningServer {
    /// `https://127.0.0.1:PORT` (or http://).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig for this server (YAML), as `--kubeconfig-out` writes it.
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// A kube-rs client for this server, configured from its kubeconfig.
    pub async fn client(&self) -> Result<kube::Client> {
        client_for(&self.kubeconfig).await
    }

    /// The kube-rs configuration [`RunningServer::client`] uses, to adjust (retries, timeouts).
    pub async fn config(&self) -> Result<kube::Config> {
        config_for(&self.kubeconfig).await
    }

    /// Starts the simulated controllers as clients of this server. Their requests
    /// carry [`server::CONTROLLER_HEADER`]: faults are for the client under test.
    pub async fn start_controllers(&self, opts: &ControllerOptions) -> Result<()> {
        let mut config = self.config().await?;
        // Their own port, which a `restart` fault leaves alone: they stand for the
        // cluster's controllers, not for the clients under test.
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| Error::runtime(format!("cannot listen for the controllers: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::runtime(e.to_string()))?;
        let scheme = if self.acceptor.is_some() {
            "https"
        } else {
            "http"
        };
        config.cluster_url = format!("{scheme}://{address}")
            .parse()
            .map_err(client_error)?;
        tokio::spawn(accept_loop(
            listener,
            self.acceptor.clone(),
            self.shared.clone(),
            self.shutdown.subscribe(),
            false,
        ));
        config.headers.push((
            http::HeaderName::from_static(server::CONTROLLER_HEADER),
            http::HeaderValue::from_static("1"),
        ));
        let client = kube::Client::try_from(config).map_err(client_error)?;
        controllers::start(client, opts).await
    }

    /// Replaces the fault rules at run time (see `kubesim serve --help`).
    pub fn set_faults(&self, spec: &str) -> Result<()> {
        self.shared.faults.set(spec).map_err(Error::input)
    }

    /// Writes every object to `path`, as `--state` does on exit.
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let objects: Vec<Value> = self
            .cluster
            .snapshot()
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        let text = serde_json::to_string_pretty(&json!({"objects": objects}))
            .expect("JSON values serialize");
        tls::write_atomically(path, &text)
    }

    /// Stops accepting connections and waits for the listener to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn client_error(e: impl std::fmt::Display) -> Error {
    Error::runtime(format!("cannot configure a client for kubesim: {e}"))
}

async fn config_for(kubeconfig: &str) -> Result<kube::Config> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).map_err(client_error)?;
    kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(client_error)
}

async fn client_for(kubeconfig: &str) -> Result<kube::Client> {
    kube::Client::try_from(config_for(kubeconfig).await?).map_err(client_error)
}

fn load_state(cluster: &Cluster, path: &Path) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let state: Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("{}: not a kubesim state file: {e}", path.display())))?;
    let saved = state["objects"].as_array().cloned().unwrap_or_default();
    // Custom resources need their CRDs' types, wherever the CRDs are in the file.
    let mut types = kinds::builtins();
    types.extend(
        saved
            .iter()
            .filter(|o| o["kind"] == "CustomResourceDefinition")
            .flat_map(kinds::from_crd),
    );
    let mut objects = Vec::new();
    for object in saved {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = object["kind"].as_str().unwrap_or_default();
        let Some(rt) = types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
        else {
            return Err(Error::input(format!(
                "{}: {kind} {api_version} is not served (its CRD is missing)",
                path.display()
            )));
        };
        let text = |field: &str| {
            object["metadata"][field]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let key = store::Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: text("namespace"),
            name: text("name"),
        };
        objects.push((key, object));
    }
    cluster.restore(objects);
    Ok(())
}

/// Installs the cert-manager CRDs as a client applying them would.
fn install_cert_manager_crds(cluster: &Cluster) -> Result<()> {
    let crd_type = cluster
        .find_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("CRDs are built in");
    for text in CERT_MANAGER_CRDS {
        let crd =
            yaml11::load(text).map_err(|e| Error::runtime(format!("bad embedded CRD: {e}")))?;
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let target = cluster::Target {
            rt: crd_type.clone(),
            namespace: None,
            name: Some(name),
            subresource: None,
        };
        let opts = cluster::WriteOptions {
            field_manager: Some("kubesim".into()),
            force: true,
            ..Default::default()
        };
        cluster
            .patch(&target, cluster::Patch::Apply(crd), &opts)
            .map_err(|e| {
                Error::runtime(format!(
                    "cannot install the cert-manager CRDs: {}",
                    e.message
                ))
            })?;
    }
    Ok(())
}

/// Starts a simulator on 127.0.0.1 in the current tokio runtime.
pub async fn serve(opts: ServeOptions) -> Result<RunningServer> {
    let cluster = Arc::new(Cluster::new());
    if let Some(path) = &opts.state {
        load_state(&cluster, path)?;
    }
    if opts.cert_manager_crds || opts.controllers.as_ref().is_some_and(|c| c.cert_manager) {
        install_cert_manager_crds(&cluster)?;
    }
    let faults = Arc::new(faults::Faults::default());
    faults.set(&opts.faults).map_err(Error::input)?;

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.port)))
        .await
        .map_err(|e| Error::runtime(format!("cannot listen on 127.0.0.1:{}: {e}", opts.port)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::runtime(e.to_string()))?;
    let token: String = {
        use rand::Rng;
        rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    };
    let (url, ca_pem, acceptor) = if opts.http {
        (format!("http://{address}"), None, None)
    } else {
        let credentials = tls::Credentials::generate()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(credentials.server_config()?);
        (
            format!("https://{address}"),
            Some(credentials.ca_pem),
            Some(acceptor),
        )
    };
    let kubeconfig = tls::kubeconfig(&url, ca_pem.as_deref(), &token);
    let shared = Arc::new(server::Shared {
        cluster: cluster.clone(),
        faults,
        latency: opts.latency,
        writes_in_flight: AtomicUsize::new(0),
        write_steps: AtomicUsize::new(0),
        token: (!opts.http).then_some(token),
        address: address.to_string(),
    });
    let (shutdown, stop) = watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor.clone(),
        shared.clone(),
        stop,
        true,
    ));
    let running = RunningServer {
        url,
        kubeconfig,
        cluster,
        shared,
        shutdown,
        task,
        acceptor,
    };
    if let Some(controller_opts) = &opts.controllers {
        running.start_controllers(controller_opts).await?;
    }
    Ok(running)
}

/// Accepts and serves connections until `stop`. With `restartable` (the port of the
/// clients under test), a `restart` fault closes the listener, resets every open
/// connection, and listens again on the same address once it is over.
async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<server::Shared>,
    mut stop: watch::Receiver<bool>,
    restartable: bool,
) {
    let Ok(address) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    // Bumped at each restart: every connection then ends at once.
    let (killed, _) = watch::channel(0u32);
    let mut check = tokio::time::interval(std::time::Duration::from_millis(20));
    loop {
        let restarts = restartable && shared.faults.has_restart();
        let accepting = async {
            match &listener {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        let stream = tokio::select! {
            _ = stop.changed() => return,
            _ = check.tick(), if restarts => {
                let gone = shared.faults.restarting();
                if gone && listener.is_some() {
                    listener = None;
                    killed.send_modify(|n| *n += 1);
                    eprintln!("kubesim: restart: not listening, connections reset");
                } else if !gone && listener.is_none() {
                    listener = TcpListener::bind(address).await.ok();
                    if listener.is_some() {
                        eprintln!("kubesim: restart: listening again on {address}");
                    }
                }
                continue;
            }
            accepted = accepting => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        if restarts {
            // A killed process's connections end with a reset, not a goodbye.
            #[allow(deprecated)] // SO_LINGER 0 closes at once: nothing blocks on drop.
            let _ = stream.set_linger(Some(std::time::Duration::ZERO));
        }
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        let mut kill = killed.subscribe();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| server::handle(shared.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // A client that hangs up or fails the handshake ends only its connection.
            let serve = async {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            };
            tokio::select! {
                () = serve => {}
                _ = kill.changed() => {}
            }
        });
    }
}

/// `kubesim serve`: serve until SIGTERM/SIGINT, then save `--state` and exit 0.
pub async fn run(args: Args) -> Result<()> {
    let Command::Serve(args) = args.command;
    // Before anyone can know we are up: a signal sent right after the kubeconfig
    // appears must stop us cleanly, not kill us.
    let stop = StopSignals::install()?;
    let running = serve(ServeOptions {
        port: args.port,
        http: args.http,
        faults: args.faults.clone(),
        latency: args.latency,
        state: args.state.clone(),
        controllers: None,
        cert_manager_crds: args.controllers.cert_manager,
    })
    .await?;
    eprintln!("kubesim: serving {}", running.url());
    running.start_controllers(&args.controllers).await?;
    if let Some(path) = &args.kubeconfig_out {
        tls::write_atomically(path, running.kubeconfig())?;
    }
    stop.wait().await;
    if let Some(path) = &args.state {
        running.save_state(path)?;
    }
    running.stop().await;
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let fail = |e: std::io::Error| Error::runtime(format!("cannot handle signals: {e}"));
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).map_err(fail)?,
            int: signal(SignalKind::interrupt()).map_err(fail)?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
